"""Step 2 of the app: the sheet to send (upload or path), its sheet and column mapping.

Reads the chosen file (I/O). The mapping dropdowns are pre-filled by the library's alias
rules (:func:`~spectrum_tools.sheets.resolve_columns`); the sheet reading itself is the
library's (:func:`~spectrum_tools.sheets.read_updates`, :func:`~spectrum_tools.sheets.list_sheets`).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import ipywidgets as w
import pandas as pd

from spectrum_tools.errors import ConfigError, SpreadsheetError
from spectrum_tools.schema import KEY_COLUMNS
from spectrum_tools.sheets import list_sheets, read_header, read_updates, resolve_columns
from spectrum_tools.widgets import _render

__all__ = ["SourcePanel"]

_NOT_SET: Final = ""
# The upload widget sends the whole file through the browser and the kernel's websocket:
# past this, a path on disk is the way.
UPLOAD_ADVICE_BYTES: Final = 10 * 1024 * 1024


class SourcePanel:
    """Upload or path, sheet dropdown and column-mapping dropdowns.

    Parameters
    ----------
    on_change
        Called (no arguments) whenever what would be read changes, so later steps reset.
    on_error
        Called with an exception raised while loading, to show it as one line.
    """

    def __init__(
        self, on_change: Callable[[], None], on_error: Callable[[BaseException], None]
    ) -> None:
        self._on_change = on_change
        self._on_error = on_error
        self._data: bytes | None = None
        self._label = ""
        self._path: Path | None = None
        self._loading = False
        self.upload = w.FileUpload(
            accept=".xlsx,.xlsm,.csv,.txt", multiple=False, description="Upload"
        )
        self.path = w.Text(
            placeholder="/path/to/updates.xlsx (better than upload past ~10 MB)",
            description="or path",
            layout=w.Layout(width="560px"),
            style={"description_width": "110px"},
        )
        self.load_button = w.Button(description="Load", icon="folder-open")
        self.sheet = w.Dropdown(
            options=[("(no file yet)", _NOT_SET)],
            value=_NOT_SET,
            description="Sheet",
            disabled=True,
            style={"description_width": "110px"},
            layout=w.Layout(width="420px"),
        )
        self.columns = {
            field: w.Dropdown(
                options=[("(not set)", _NOT_SET)],
                value=_NOT_SET,
                description=field,
                style={"description_width": "170px"},
                layout=w.Layout(width="480px"),
            )
            for field in KEY_COLUMNS
        }
        self.status = w.HTML()
        self.upload.observe(self._uploaded, names="value")
        self.load_button.on_click(self._load_clicked)
        self.sheet.observe(self._sheet_changed, names="value")
        for dropdown in self.columns.values():
            dropdown.observe(self._mapping_changed, names="value")
        self.box = w.VBox(
            [
                w.HTML("<h3>2. Input</h3>"),
                w.HBox([self.upload, self.path, self.load_button]),
                self.sheet,
                w.HTML("<i>Columns (pre-filled from the header names; change if wrong):</i>"),
                *self.columns.values(),
                self.status,
            ]
        )

    # ------------------------------------------------------------------ state

    @property
    def loaded(self) -> bool:
        """Whether a file is loaded."""
        return self._data is not None

    @property
    def label(self) -> str:
        """The file's name (or path), as messages and the journal show it."""
        return self._label

    def source(self) -> str | Path | io.BytesIO:
        """What to give :func:`~spectrum_tools.read_updates`: the path, or the upload's bytes.

        Raises
        ------
        ConfigError
            Nothing loaded yet.
        """
        if self._data is None:
            raise ConfigError("load a sheet first: upload one, or type its path and press Load")
        if self._path is not None:
            return self._path
        return _named(self._data, self._label)

    def read_options(self) -> dict[str, Any]:
        """``sheet`` and ``columns`` for :func:`~spectrum_tools.read_updates`.

        Raises
        ------
        ConfigError
            A column is not mapped.
        """
        missing = [f for f, d in self.columns.items() if d.value == _NOT_SET]
        if missing:
            raise ConfigError(f"pick the column for {', '.join(missing)} in step 2")
        return {
            "sheet": self.sheet.value or None,
            "columns": {f: d.value for f, d in self.columns.items()},
        }

    def read(self) -> pd.DataFrame:
        """Read the rows with the chosen sheet and mapping."""
        return read_updates(self.source(), **self.read_options())

    # ------------------------------------------------------------------ loading

    def load_path(self, path: str | Path) -> None:
        """Load a file from disk (raises :class:`SpreadsheetError` when unreadable)."""
        target = Path(path).expanduser()
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            raise SpreadsheetError("no such file", file=str(target)) from None
        except IsADirectoryError:
            raise SpreadsheetError("this is a folder, not a file", file=str(target)) from None
        except OSError as exc:
            raise SpreadsheetError(
                f"cannot read the file ({exc.strerror})", file=str(target)
            ) from None
        self._set(data, str(target), target)

    def _load_clicked(self, _button: object = None) -> None:
        try:
            if not self.path.value.strip():
                raise ConfigError("type the path of the sheet to load")
            self.load_path(self.path.value.strip())
        except Exception as exc:
            self._on_error(exc)

    def _uploaded(self, change: dict[str, Any]) -> None:
        files = change["new"]
        if not files:
            return
        try:
            first = files[0]
            data, label = bytes(first["content"]), str(first["name"])
            # The bytes now live in the kernel; emptying the widget keeps the analyst's
            # data out of widget state a saved notebook would carry.
            self.upload.value = ()
            self._set(data, label, None)
        except Exception as exc:
            self._on_error(exc)

    def _set(self, data: bytes, label: str, path: Path | None) -> None:
        names = list_sheets(_named(data, label))  # SpreadsheetError for a bad workbook
        self._data, self._label, self._path = data, label, path
        self._loading = True
        try:
            if names:
                self.sheet.options = [(n, n) for n in names]
                self.sheet.value = _default_sheet(data, label, names)
                self.sheet.disabled = False
            else:
                self.sheet.options = [("(CSV: no sheets)", _NOT_SET)]
                self.sheet.value = _NOT_SET
                self.sheet.disabled = True
            self._fill_columns()
        finally:
            self._loading = False
        size = len(data)
        advice = (
            "; for files this big, a path on disk is faster than the upload button"
            if path is None and size > UPLOAD_ADVICE_BYTES
            else ""
        )
        self.status.value += _render.info_line(f"Loaded {label} ({size / 1024:,.0f} KB){advice}.")
        self._on_change()

    def _sheet_changed(self, _change: object) -> None:
        if self._loading or self._data is None:
            return
        try:
            self._loading = True
            self._fill_columns()
        except Exception as exc:
            self._on_error(exc)
        finally:
            self._loading = False
        self._on_change()

    def _mapping_changed(self, _change: object) -> None:
        if not self._loading:
            self._on_change()

    def _fill_columns(self) -> None:
        assert self._data is not None
        header = _header_cells(self._data, self._label, self.sheet.value or None)
        found, problems = resolve_columns(header)
        names = list(dict.fromkeys(h for h in header if h))
        for field, dropdown in self.columns.items():
            dropdown.options = [("(not set)", _NOT_SET), *[(n, n) for n in names]]
            index = found.get(field)
            dropdown.value = header[index] if index is not None and header[index] else _NOT_SET
        self.status.value = (
            _render.error_line("; ".join(problems) + ": pick the columns above") if problems else ""
        )


def _named(data: bytes, label: str) -> io.BytesIO:
    """The bytes as a file-like object whose name the reader puts in its messages."""
    buffer = io.BytesIO(data)
    buffer.name = label
    return buffer


def _default_sheet(data: bytes, label: str, names: list[str]) -> str:
    """The sheet :func:`read_updates` would pick: the first with the needed columns."""
    for name in names:
        header = _header_cells(data, label, name)
        if not resolve_columns(header)[1]:
            return name
    return names[0]


def _header_cells(data: bytes, label: str, sheet: str | None) -> list[str]:
    """The header row of a sheet, found the way :func:`read_updates` finds it."""
    return read_header(_named(data, label), sheet=sheet)
