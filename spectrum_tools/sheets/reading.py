"""Read analysts' spreadsheets into update rows: the public reading entry points.

I/O: reads CSV/XLSX files and file-like uploads (and accepts DataFrames). Reading keeps
every cell as text, so ids survive (``00123`` stays ``00123``, a numeric Excel cell
``12345678`` becomes ``"12345678"``, ``NA`` stays ``NA``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import IO

import pandas as pd

from spectrum_tools.errors import ColumnError, SpreadsheetError
from spectrum_tools.sheets.columns import HEADER_SCAN_ROWS, find_header
from spectrum_tools.sheets.delimited import csv_grid
from spectrum_tools.sheets.frames import frame_from_dataframe, frame_from_grid
from spectrum_tools.sheets.grid import Grid
from spectrum_tools.sheets.sniffing import OLE_MAGIC, ZIP_MAGIC
from spectrum_tools.sheets.workbook import (
    is_visible_worksheet,
    open_sheet,
    open_workbook,
    sheet_grid,
    sheet_rows,
)

__all__ = ["Source", "list_sheets", "read_header", "read_updates"]

Source = str | Path | IO[bytes] | pd.DataFrame
"""What :func:`read_updates` accepts: a path, a binary file-like object, or a DataFrame."""


def read_updates(
    source: Source,
    *,
    sheet: str | None = None,
    columns: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Read status-update rows from a workbook, CSV, upload or DataFrame, every cell as text.

    Parameters
    ----------
    source
        A path to ``.xlsx``/``.xlsm``/``.csv``/``.txt``, a binary file-like object (a
        notebook upload), or a DataFrame. The format is recognised from the content.
    sheet
        Workbook sheet name. Default: the first visible sheet whose header has the
        needed columns.
    columns
        Overrides for column detection: API field -> header text.

    Returns
    -------
    pandas.DataFrame
        Columns ``purchaseOrderNumber``, ``recipeSetReadableId``, ``workflowStatus``,
        ``source_sheet``, ``source_row`` (the row number the spreadsheet shows), then the
        sheet's other columns. All cells are ``str`` (pandas' default string dtype, on
        Arrow); nothing is trimmed or dropped yet.

    Raises
    ------
    SpreadsheetError
        One line naming the file, sheet, row and column: unreadable file, unknown
        sheet, missing or ambiguous columns, ragged CSV rows.

    Examples
    --------
    >>> import io
    >>> df = read_updates(io.BytesIO(b"PO;Recipe Set ID;Status\\n00123;AB12CD34;In Progress\\n"))
    >>> df.loc[0, ["purchaseOrderNumber", "workflowStatus"]].tolist(), int(df.loc[0, "source_row"])
    (['00123', 'In Progress'], 2)
    """
    if isinstance(source, pd.DataFrame):
        return frame_from_dataframe(source, columns)
    data, label = _read_bytes(source)
    if not data or data.isspace():  # as ``not data.strip()``, without copying the file
        raise SpreadsheetError("the file is empty", file=label)
    if data.startswith(OLE_MAGIC):
        raise SpreadsheetError(
            "this is a password-protected workbook or an old .xls file; "
            "save it as .xlsx without a password, or as CSV UTF-8",
            file=label,
        )
    if data.startswith(ZIP_MAGIC):
        return frame_from_grid(_xlsx_grid(data, label, sheet, columns), columns)
    if label.lower().endswith((".xlsx", ".xlsm", ".xls")):
        looks = "binary data of another kind" if b"\x00" in data[:4096] else "text"
        raise SpreadsheetError(
            f"this is not an Excel workbook (it holds {looks}); save it again from "
            "Excel as .xlsx" + (", or rename it to .csv" if looks == "text" else ""),
            file=label,
        )
    if sheet is not None:
        raise SpreadsheetError(f"sheet {sheet!r} was given but this is a CSV file", file=label)
    return frame_from_grid(csv_grid(data, label), columns)


def list_sheets(source: str | Path | IO[bytes]) -> list[str]:
    """Return the visible worksheet names of a workbook (``[]`` for a CSV).

    Raises
    ------
    SpreadsheetError
        The file cannot be read.
    """
    data, label = _read_bytes(source)
    if not data.startswith(ZIP_MAGIC):
        return []
    book = open_workbook(data, label)
    return [m.name for m in book.sheets_metadata if is_visible_worksheet(m)]


def read_header(source: str | Path | IO[bytes], *, sheet: str | None = None) -> list[str]:
    """Return the header row of a sheet, found the way :func:`read_updates` finds it.

    The header may sit below title rows. When no row has the needed columns, the first
    non-blank row is returned, so a person can map the columns by hand.

    Parameters
    ----------
    source
        A path or a binary file-like object (``.xlsx`` or ``.csv``).
    sheet
        The workbook sheet; ignored for a CSV. Default: the first visible sheet.

    Raises
    ------
    SpreadsheetError
        The file cannot be read, or the sheet does not exist.

    Examples
    --------
    >>> import io
    >>> read_header(io.BytesIO(b"Report\\n\\nPO;Recipe Set ID;Status\\nP1;A;done\\n"))
    ['PO', 'Recipe Set ID', 'Status']
    """
    data, label = _read_bytes(source)
    if data.startswith(ZIP_MAGIC):
        book = open_workbook(data, label)
        names = list(book.sheet_names)
        visible = [m.name for m in book.sheets_metadata if is_visible_worksheet(m)]
        name = sheet if sheet is not None else (visible or names or [""])[0]
        if name not in names:
            raise SpreadsheetError(
                f"no sheet {name!r}; the sheets are {', '.join(map(repr, names))}", file=label
            )
        rows = sheet_rows(open_sheet(book, name, label), label, nrows=HEADER_SCAN_ROWS)
    else:
        rows = csv_grid(data, label).head(HEADER_SCAN_ROWS)
    index, _, _ = find_header(rows, None)
    if index is None:
        index = next((i for i, r in enumerate(rows) if any(str(c).strip() for c in r)), None)
    return [] if index is None else [str(c).strip() for c in rows[index]]


def _read_bytes(source: str | Path | IO[bytes]) -> tuple[bytes, str]:
    if isinstance(source, str | Path):
        path = Path(source)
        label = str(source)
        try:
            return path.read_bytes(), label
        except FileNotFoundError:
            raise SpreadsheetError("no such file", file=label) from None
        except IsADirectoryError:
            raise SpreadsheetError("this is a folder, not a file", file=label) from None
        except OSError as exc:
            raise SpreadsheetError(f"cannot read the file ({exc.strerror})", file=label) from None
    label = str(getattr(source, "name", "") or "upload")
    data = source.read()
    if isinstance(data, str):  # a text-mode handle: accept it, it is unambiguous
        return data.encode("utf-8"), label
    return bytes(data), label


def _xlsx_grid(
    data: bytes, label: str, sheet: str | None, columns: Mapping[str, str] | None
) -> Grid:
    book = open_workbook(data, label)
    names: list[str] = list(book.sheet_names)
    if sheet is not None:
        if sheet not in names:
            raise SpreadsheetError(
                f"no sheet {sheet!r}; the sheets are {', '.join(map(repr, names))}", file=label
            )
        return sheet_grid(open_sheet(book, sheet, label), label)
    visible = [m.name for m in book.sheets_metadata if is_visible_worksheet(m)]
    heads = {}
    for name in visible:
        opened = open_sheet(book, name, label)  # parsed once, for the scan and the read
        head = sheet_rows(opened, label, nrows=HEADER_SCAN_ROWS)
        if find_header(head, columns)[0] is not None:
            return sheet_grid(opened, label)
        heads[name] = head
    if len(heads) == 1:  # one sheet: say exactly what it lacks, as for a CSV
        name, head = next(iter(heads.items()))
        frame_from_grid(Grid.from_rows(head, label, name), columns)
    raise ColumnError(
        "no sheet has the columns purchaseOrderNumber, recipeSetReadableId and workflowStatus "
        f"(sheets: {', '.join(map(repr, heads)) or 'none visible'}); pick one with --sheet "
        "/ sheet= to see what it lacks",
        file=label,
    )
