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
from spectrum_tools.schema import KEY_COLUMNS, LINE_ID, PO, STATUS
from spectrum_tools.sheets import list_sheets, read_header, read_updates, resolve_columns
from spectrum_tools.widgets import _render

__all__ = ["COLUMN_LABELS", "SourcePanel"]

_NOT_SET: Final = ""
# The three columns, in analysts' words.
COLUMN_LABELS: Final = {
    PO: "PO number column",
    LINE_ID: "Line item (recipe set) column",
    STATUS: "New status column",
}
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
        self,
        on_change: Callable[[], None],
        on_error: Callable[[BaseException], None],
        *,
        on_loaded: Callable[[], None] = lambda: None,
        sample: Path | None = None,
    ) -> None:
        self._on_change = on_change
        self._on_error = on_error
        self._on_loaded = on_loaded
        self._sample = sample
        self._data: bytes | None = None
        self._label = ""
        self._path: Path | None = None
        self._loading = False
        self._header: list[str] = []
        self.version = 0  # one more for every file loaded
        self.upload = w.FileUpload(
            accept=".xlsx,.xlsm,.csv,.txt", multiple=False, description="Upload"
        )
        self.path = w.Text(
            placeholder="or the file's path: /path/to/updates.xlsx (best past ~10 MB)",
            layout=w.Layout(width="460px"),
        )
        self.load_button = w.Button(description="Load", icon="folder-open")
        self.sample_button = w.Button(
            description="Try the sample",
            icon="flask",
            tooltip="load a practice sheet (for the sandbox)",
            layout=w.Layout(width="170px", min_width="170px"),
        )
        self.sample_button.layout.display = None if sample is not None else "none"
        self.note = w.HTML()
        self.note.add_class("spectrum-note")
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
                description=COLUMN_LABELS[field],
                style={"description_width": "220px"},
                layout=w.Layout(width="560px"),
            )
            for field in KEY_COLUMNS
        }
        self.status = w.HTML()
        self.upload.observe(self._uploaded, names="value")
        self.load_button.on_click(self._load_clicked)
        self.sample_button.on_click(self._sample_clicked)
        self.sheet.observe(self._sheet_changed, names="value")
        for dropdown in self.columns.values():
            dropdown.observe(self._mapping_changed, names="value")
        self.box = w.VBox(
            [
                w.HTML("<h3>2. Your sheet</h3>"),
                w.HBox([self.upload, self.path, self.load_button, self.sample_button, self.note]),
                self.sheet,
                w.HTML(
                    "<i>Which column holds what (filled in from your headers; change if wrong):</i>"
                ),
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
    def header(self) -> list[str]:
        """The sheet's header row, left to right (the analyst's own column names)."""
        return list(self._header)

    def headers(self) -> dict[str, str]:
        """API field -> the analyst's column for it (as mapped)."""
        return {f: str(d.value) for f, d in self.columns.items() if d.value != _NOT_SET}

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
            names = ", ".join(COLUMN_LABELS[f] for f in missing)
            raise ConfigError(f"pick the {names} in step 2")
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
            self.load_path(self.path.value.strip())  # the box keeps what was typed
            self.upload.value = ()  # the upload counter says no upload is loaded
        except Exception as exc:
            self._on_error(exc)

    def _sample_clicked(self, _button: object = None) -> None:
        try:
            if self._sample is None:
                raise ConfigError("no sample sheet here")
            self.load_path(self._sample)
            self.path.value = str(self._sample)
            self.upload.value = ()
        except Exception as exc:
            self._on_error(exc)

    def _uploaded(self, change: dict[str, Any]) -> None:
        files = change["new"]
        if not files:
            return
        first = files[0]
        if not len(first["content"]):
            return  # our own emptied copy (below), or an empty file: nothing new
        try:
            data, label = bytes(first["content"]), str(first["name"])
            # The bytes now live in the kernel. The widget keeps the file's name and size
            # but not its content, so a saved notebook carries none of the analyst's data
            # and the upload counter still says one file is loaded.
            self.upload.value = ({**first, "content": memoryview(b"")},)
            self._set(data, label, None)
            self.path.value = ""  # the path box does not name another file
        except Exception as exc:
            self.upload.value = ()
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
        self.version += 1
        self.note.value = _render.success_line(
            f"Loaded {Path(label).name} ({size / 1024:,.0f} KB){advice}."
        )
        self._on_loaded()
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
        self._header = [str(h) for h in header]
        found, problems = resolve_columns(header)
        names = list(dict.fromkeys(h for h in header if h))
        for field, dropdown in self.columns.items():
            dropdown.options = [("(not set)", _NOT_SET), *[(n, n) for n in names]]
            index = found.get(field)
            dropdown.value = header[index] if index is not None and header[index] else _NOT_SET
        self.status.value = (
            _render.error_line(_plain_problems(problems) + ": pick the columns above")
            if problems
            else ""
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


def _plain_problems(problems: list[str]) -> str:
    """The reader's column problems with the analysts' names of the columns."""
    text = "; ".join(problems)
    for field, label in COLUMN_LABELS.items():
        text = text.replace(field, label.removesuffix(" column"))
    return text
