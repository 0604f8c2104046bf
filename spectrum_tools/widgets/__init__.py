"""Jupyter widgets over the library: :class:`BulkUpdateApp`, one bulk run step by step.

Thin panels over :mod:`spectrum_tools`: no business logic of their own (see
``widgets/app.py``). Needs the ``jupyter`` extra (``pip install 'spectrum-tools[jupyter]'``);
importing this package alone imports no widget library, so the CLI can find the bundled
notebooks (:func:`notebooks_dir`) without it.

Examples
--------
>>> from spectrum_tools.widgets import notebooks_dir
>>> (notebooks_dir() / "bulk_update.ipynb").is_file()
True
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spectrum_tools.widgets.app import BulkUpdateApp

__all__ = ["BulkUpdateApp", "notebooks_dir"]


def notebooks_dir() -> Path:
    """Return the bundled ``notebooks/`` folder (next to ``sample_data/``).

    Like :func:`spectrum_tools.sandbox.sample_data_dir`, it is found relative to this
    package (the repository root, two levels up): a checkout or an editable install.

    Raises
    ------
    FileNotFoundError
        When the package was installed without the repository around it.
    """
    folder = Path(__file__).resolve().parents[2] / "notebooks"
    if not (folder / "bulk_update.ipynb").is_file():
        raise FileNotFoundError(
            f"no notebooks at {folder}: install spectrum-tools editable (pip install -e .) "
            "from a checkout"
        )
    return folder


def __getattr__(name: str) -> Any:
    if name == "BulkUpdateApp":
        try:
            from spectrum_tools.widgets.app import BulkUpdateApp
        except ModuleNotFoundError as exc:  # ipywidgets is an optional dependency
            raise ModuleNotFoundError(
                f"{exc.name} is missing: pip install 'spectrum-tools[jupyter]'"
            ) from None
        return BulkUpdateApp
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
