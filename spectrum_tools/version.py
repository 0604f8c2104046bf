"""The installed spectrum-tools version, from the package metadata. Pure: no I/O of ours.

A leaf: it imports nothing of the package, so any module (the journal records the version
of every run) can import it without importing the package root.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Final

__all__ = ["__version__"]

_UNKNOWN: Final = "0+unknown"


def _installed_version() -> str:
    try:
        return version("spectrum-tools")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return _UNKNOWN


__version__: Final = _installed_version()
"""The version recorded in journals and shown by the package, e.g. ``"0.1.0"``."""
