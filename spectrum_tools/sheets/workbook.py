"""Read ``.xlsx``/``.xlsm`` workbooks with calamine into :class:`Grid` s of cell texts.

Untrusted files: the zip directory is checked before anything is inflated (zip bombs, a
zip that is no workbook). Numbers, dates and booleans become the text an analyst sees
(see :func:`spectrum_tools.cells.cell_text`); a merged cell's value fills its whole area.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from spectrum_tools.cells import cell_text
from spectrum_tools.errors import SpreadsheetError
from spectrum_tools.sheets.grid import Grid

__all__ = [
    "check_workbook_archive",
    "is_visible_worksheet",
    "open_sheet",
    "open_workbook",
    "sheet_grid",
    "sheet_rows",
]

# Untrusted workbooks: refuse archives that would inflate beyond these.
# Reading costs about 5x the sheet XML in memory: 1 GiB of XML is ~5 GB of RAM already.
_MAX_UNZIPPED_BYTES = 1024**3
_MAX_ZIP_RATIO = 200


def check_workbook_archive(data: bytes, label: str) -> None:
    """Refuse a workbook that is not a valid zip, is no Excel workbook, or would inflate
    past the size limits (a zip bomb). Reads only the zip's directory.

    Raises
    ------
    SpreadsheetError
        One line naming ``label``.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except zipfile.BadZipFile:
        raise SpreadsheetError("the workbook is corrupt (not a valid .xlsx)", file=label) from None
    total = sum(i.file_size for i in infos)
    packed = max(1, sum(i.compress_size for i in infos))
    if total > _MAX_UNZIPPED_BYTES or (total > 50 * 1024**2 and total / packed > _MAX_ZIP_RATIO):
        raise SpreadsheetError(
            f"the workbook would expand to {total / 1024**2:,.0f} MB; refusing to open it "
            "(a damaged or malicious file)",
            file=label,
        )
    if not any(i.filename == "xl/workbook.xml" for i in infos):
        raise SpreadsheetError("this zip file is not an Excel workbook", file=label)


def open_workbook(data: bytes, label: str) -> Any:
    """A calamine workbook of checked bytes.

    Raises
    ------
    SpreadsheetError
        The archive fails :func:`check_workbook_archive`, or calamine cannot read it.
    """
    import python_calamine  # only workbooks need it

    check_workbook_archive(data, label)
    try:
        return python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
    except Exception as exc:  # calamine raises several unrelated types for bad files
        raise SpreadsheetError(
            f"the workbook cannot be read ({type(exc).__name__})", file=label
        ) from None


def is_visible_worksheet(meta: Any) -> bool:
    """Whether a calamine sheet's metadata is a visible worksheet (not a chart, not hidden)."""
    return str(meta.typ).endswith("WorkSheet") and str(meta.visible).endswith(".Visible")


def open_sheet(book: Any, name: str, label: str) -> Any:
    """A calamine sheet of ``book`` (this parses the whole sheet: open it once).

    Raises
    ------
    SpreadsheetError
        The sheet cannot be read.
    """
    try:
        return book.get_sheet_by_name(name)
    except Exception as exc:
        raise SpreadsheetError(
            f"the sheet cannot be read ({type(exc).__name__})", file=label, sheet=name
        ) from None


def sheet_rows(sheet: Any, label: str, nrows: int | None = None) -> list[list[str]]:
    """The rows of an open sheet as cell texts, merged areas filled (a header scan)."""
    raw, merged = _raw(sheet, label, nrows)
    rows = [[cell_text(v) for v in row] for row in raw]
    _fill_merged(rows, merged)
    return rows


def sheet_grid(sheet: Any, label: str) -> Grid:
    """A whole open sheet as a :class:`Grid`: converted column by column into Arrow text."""
    raw, merged = _raw(sheet, label, None)
    if merged:  # rare: fill the areas on the rows, then take the columns
        rows = [[cell_text(v) for v in row] for row in raw]
        _fill_merged(rows, merged)
        return Grid.from_rows(rows, label, sheet.name)
    width = max((len(r) for r in raw), default=0)
    if any(len(r) != width for r in raw):
        raw = [[*r, *[""] * (width - len(r))] for r in raw]
    columns: list[pa.Array] = []
    numbers: dict[int, list[int]] = {}
    for index, cells in enumerate(zip(*raw, strict=True)):
        column, numeric = _text_column(cells)
        columns.append(column)
        if numeric:
            numbers[index] = numeric
    return Grid(columns, label, sheet.name, numbers)


def _text_column(cells: Sequence[object]) -> tuple[pa.Array, list[int]]:
    """The cells as Arrow text, and the rows whose cell is a number (int or float)."""
    try:  # a column of text cells converts in one C pass
        return pa.array(cells, type=pa.large_string()).fill_null(""), []
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # numbers, dates, booleans: their text
        numeric = [i for i, v in enumerate(cells) if type(v) is int or type(v) is float]
        text = pa.array([v if type(v) is str else cell_text(v) for v in cells], pa.large_string())
        return text, numeric


def _raw(sheet: Any, label: str, nrows: int | None) -> tuple[list[list[Any]], list[Any]]:
    try:
        raw: list[list[Any]] = sheet.to_python(skip_empty_area=False, nrows=nrows)
        merged = sheet.merged_cell_ranges or []
    except Exception as exc:
        raise SpreadsheetError(
            f"the sheet cannot be read ({type(exc).__name__})", file=label, sheet=sheet.name
        ) from None
    return raw, merged


def _fill_merged(rows: list[list[str]], merged: Sequence[Any]) -> None:
    # A merged cell shows its value across the whole area; the analyst reads it that way.
    for (r0, c0), (r1, c1) in merged:
        if r0 >= len(rows) or c0 >= len(rows[r0]):
            continue
        value = rows[r0][c0]
        for r in range(r0, min(r1 + 1, len(rows))):
            for c in range(c0, min(c1 + 1, len(rows[r]))):
                rows[r][c] = value
