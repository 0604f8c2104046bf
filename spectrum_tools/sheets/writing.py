"""Write tables to ``.csv`` and ``.xlsx`` safely: ids stay text, nothing is executable.

I/O: writes the files it is given. A CSV text cell that Excel would run as a formula is
escaped (see :func:`spectrum_tools.cells.excel_safe`, undone on read); an XLSX cell is a
typed string, which Excel never runs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from spectrum_tools.cells import cell_text, excel_safe
from spectrum_tools.errors import ConfigError
from spectrum_tools.sheets.columns import column_letter

__all__ = ["write_table", "write_workbook"]

# Characters an .xlsx cannot hold (openpyxl raises IllegalCharacterError on them), and the
# texts openpyxl would store as error cells rather than strings.
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_EXCEL_ERRORS = frozenset({"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"})


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write one table to ``.csv`` or ``.xlsx``, ids as text and nothing executable.

    CSV is UTF-8 with a BOM (so Excel reads accents right); a text cell starting with
    ``= + - @`` tab or CR gets a leading ``'`` (the OWASP CSV-injection escape, which
    :func:`spectrum_tools.read_updates` undoes). XLSX cells are typed strings, which Excel
    never runs.

    Raises
    ------
    ConfigError
        The extension is neither ``.csv`` nor ``.xlsx``.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix == ".xlsx":
        return write_workbook(target, {"Sheet1": df})
    if suffix != ".csv":
        raise ConfigError(f"{target}: write .csv or .xlsx, not {suffix or 'no extension'!r}")
    safe = df.copy()
    for col in safe.columns:
        if safe[col].dtype == object or pd.api.types.is_string_dtype(safe[col]):
            escaped = [excel_safe(v) if isinstance(v, str) else v for v in safe[col].tolist()]
            # dtype=object: a list of ints and None would otherwise become floats ("200.0").
            safe[col] = pd.Series(escaped, index=safe.index, dtype=object)
    # Headers too: an analyst's column may be called "=Notes".
    safe.columns = pd.Index([excel_safe(str(c)) for c in safe.columns], dtype=object)
    target.parent.mkdir(parents=True, exist_ok=True)
    # CRLF as Excel writes it; it also makes pandas quote a cell holding a bare CR.
    safe.to_csv(target, index=False, encoding="utf-8-sig", lineterminator="\r\n")
    return target


def write_workbook(
    path: str | Path,
    sheets: Mapping[str, pd.DataFrame],
    *,
    decorate: Any = None,
) -> Path:
    """Write several tables to one ``.xlsx``: typed text cells, sized columns, filters.

    Parameters
    ----------
    path
        The workbook to write (parent folders are created).
    sheets
        Sheet name -> table. Text stays text; ints, floats and bools stay numbers.
    decorate
        Optional callable ``decorate(workbook)`` run before saving (charts, extra sheets).

    Returns
    -------
    pathlib.Path
        The path written.
    """
    from openpyxl import Workbook  # only writing workbooks needs it (import cost)
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    book = Workbook(write_only=True)
    bold = Font(bold=True)
    for name, df in sheets.items():
        ws = book.create_sheet(title=name[:31])
        ws.freeze_panes = "A2"
        widths = [min(60, max(8, len(str(c)) + 2)) for c in df.columns]
        for i, col in enumerate(df.columns):
            sample = df[col].head(200).tolist()
            longest = max((len(str(v)) for v in sample), default=0)
            widths[i] = min(60, max(widths[i], longest + 2))
            ws.column_dimensions[column_letter(i)].width = widths[i]
        if len(df.columns):
            ws.auto_filter.ref = f"A1:{column_letter(len(df.columns) - 1)}{len(df) + 1}"
        header = []
        for col in df.columns:
            cell = WriteOnlyCell(ws, value=str(col))
            cell.data_type = "s"
            cell.font = bold
            header.append(cell)
        ws.append(header)
        for record in df.itertuples(index=False, name=None):
            ws.append([_xlsx_cell(ws, v) for v in record])
    if decorate is not None:
        decorate(book)
    book.save(target)
    return target


def _xlsx_cell(ws: Any, value: object) -> Any:
    from openpyxl.cell import WriteOnlyCell

    if type(value) is str:  # most cells of a report: the fast path (100k-order reports)
        if not value:
            return None  # reads back as "" all the same, and costs nothing to write
        if _XML_ILLEGAL.search(value):
            value = _XML_ILLEGAL.sub("\ufffd", value)  # a pasted control character
        if value[0] != "=" and value not in _EXCEL_ERRORS:
            return value  # openpyxl stores any other text as a plain string cell
    if value is None or value is pd.NA or value is pd.NaT:  # a blank cell, not "<NA>" text
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, bool | int | float) and not isinstance(value, str):
        return value
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        return _xlsx_cell(ws, value.item())
    text = value if isinstance(value, str) else _XML_ILLEGAL.sub("\ufffd", cell_text(value))
    cell = WriteOnlyCell(ws, value=text)
    # openpyxl treats "=..." as a formula; a typed string cell is never executed.
    cell.data_type = "s"
    return cell
