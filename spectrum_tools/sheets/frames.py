"""Turn a :class:`Grid` (or an analyst's DataFrame) into the frame of update rows. Pure.

The frame has ``purchaseOrderNumber``, ``recipeSetReadableId``, ``workflowStatus``,
``source_sheet``, ``source_row``, then the sheet's other columns; every cell column is
text of the default string dtype (:data:`spectrum_tools.cells.TEXT`).

The frame's ``attrs`` say where its columns came from, for messages and for the files
handed back to the analyst: :data:`HEADERS` (API field -> the analyst's header text),
:data:`HEADER_ROW` (the sheet row of the header, 1-based) and :data:`NUMBER_CELLS` (API
field -> ``source_row`` numbers of id cells the workbook stored as numbers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa

from spectrum_tools.cells import text_array, text_series, unescape
from spectrum_tools.errors import ColumnError
from spectrum_tools.schema import KEY_COLUMNS, LINE_ID, PO, SOURCE_ROW, SOURCE_SHEET
from spectrum_tools.sheets.columns import (
    HEADER_SCAN_ROWS,
    closest_header,
    column_letter,
    find_header,
    resolve_columns,
)
from spectrum_tools.sheets.delimited import unescape_column
from spectrum_tools.sheets.grid import Grid

__all__ = [
    "CORRECTIONS",
    "HEADERS",
    "HEADER_ROW",
    "NUMBER_CELLS",
    "SheetRows",
    "frame_from_dataframe",
    "frame_from_grid",
]

HEADERS: Final = "headers"
"""``attrs`` key: API field -> the header text the analyst's sheet uses for it."""
HEADER_ROW: Final = "header_row"
"""``attrs`` key: the sheet row (1-based) the header was found on; 1 for a DataFrame."""
NUMBER_CELLS: Final = "number_cells"
"""``attrs`` key: API field -> :class:`SheetRows` whose id cell was a number."""
CORRECTIONS: Final = "corrections"
"""``attrs`` key: the analyst's corrections to the rows as read, a tuple of
``(sheet row, header, original, corrected)`` tuples (the app's fix grid sets it; the
journal keeps it with the run and the report shows it)."""


class SheetRows:
    """An immutable set of sheet row numbers, cheap to keep in a frame's ``attrs``.

    pandas deep-copies ``attrs`` on every operation and compares them in ``concat``; this
    is shared instead of copied, and compares by value.

    Examples
    --------
    >>> rows = SheetRows([5, 2])
    >>> rows.rows.tolist(), len(rows), SheetRows([2, 5]) == rows
    ([2, 5], 2, True)
    """

    __slots__ = ("_rows",)

    def __init__(self, rows: Sequence[int] | np.ndarray) -> None:
        self._rows = np.unique(np.asarray(rows, dtype=np.int64))
        self._rows.setflags(write=False)

    @property
    def rows(self) -> np.ndarray:
        """The row numbers, sorted, read-only."""
        return self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SheetRows) and np.array_equal(self._rows, other._rows)

    def __hash__(self) -> int:
        return hash(self._rows.tobytes())

    def __deepcopy__(self, memo: dict[int, object]) -> SheetRows:
        return self

    def __repr__(self) -> str:
        return f"SheetRows({len(self._rows)} rows)"


def frame_from_grid(grid: Grid, columns: Mapping[str, str] | None) -> pd.DataFrame:
    """The update rows under the grid's header row.

    Raises
    ------
    ColumnError
        No row among the first 20 has the needed columns (names what the first row lacks).
    """
    head = grid.head(HEADER_SCAN_ROWS)
    header_at, found, problems = find_header(head, columns)
    if header_at is None:
        closest, problems = closest_header(head, columns)
        seen = head[closest] if closest is not None else []
        shown = ", ".join(repr(c) for c in seen if c.strip())[:300]
        raise ColumnError(
            f"{'; '.join(problems)}. Found columns: {shown or 'none'}",
            file=grid.file,
            sheet=grid.sheet or None,
            row=None if closest is None else closest + 1,
        )
    header = head[header_at]
    body = [column.slice(header_at + 1) for column in grid.columns]
    if grid.sheet == "":  # a CSV: undo write_table's formula escape, header cells too
        header = [unescape(h) for h in header]
        body = [unescape_column(column) for column in body]
    frame = _assemble(body, header, found, sheet=grid.sheet, first_row=header_at + 2)
    frame.attrs[HEADER_ROW] = header_at + 1
    frame.attrs[NUMBER_CELLS] = {
        field: SheetRows([r + 1 for r in grid.numbers.get(found[field], ()) if r > header_at])
        for field in (PO, LINE_ID)
    }
    return frame


def frame_from_dataframe(df: pd.DataFrame, columns: Mapping[str, str] | None) -> pd.DataFrame:
    """The update rows of an analyst's DataFrame (headers resolved like a sheet's).

    A ``source_row`` / ``source_sheet`` column is kept as the rows' origin; without one,
    rows are numbered as if the frame was written with ``df.to_excel(index=False)``.

    Raises
    ------
    ColumnError
        The frame lacks one of the needed columns, or one is ambiguous.
    """
    headers = [str(c) for c in df.columns]
    found, problems = resolve_columns(headers, columns)
    if problems:
        raise ColumnError(
            f"{'; '.join(problems)}. Found columns: {', '.join(map(repr, headers))[:300]}",
            file="DataFrame",
        )
    keep = [i for i, h in enumerate(headers) if h not in (SOURCE_ROW, SOURCE_SHEET)]
    body = [text_array(df.iloc[:, i]) for i in keep]
    sheet: str | list[str] = ""
    first_row: int | list[int] = 2  # as if written with df.to_excel(index=False)
    if SOURCE_ROW in headers:
        first_row = [int(v) for v in pd.to_numeric(df[SOURCE_ROW]).tolist()]
    if SOURCE_SHEET in headers:
        sheet = [str(v) for v in df[SOURCE_SHEET].tolist()]
    renumber = {old: new for new, old in enumerate(keep)}
    header = [headers[i] for i in keep]
    frame = _assemble(
        body, header, {f: renumber[i] for f, i in found.items()}, sheet=sheet, first_row=first_row
    )
    frame.attrs[HEADER_ROW] = 1
    frame.attrs[NUMBER_CELLS] = {
        field: SheetRows(frame[SOURCE_ROW].to_numpy()[_numeric_cells(df.iloc[:, found[field]])])
        for field in (PO, LINE_ID)
    }
    return frame


def _numeric_cells(values: pd.Series) -> np.ndarray:
    """Which cells of an analyst's column are numbers (a boolean mask)."""
    if pd.api.types.is_bool_dtype(values):
        return np.zeros(len(values), dtype=bool)
    if pd.api.types.is_numeric_dtype(values):
        return np.asarray(values.notna(), dtype=bool)
    if values.dtype != object:
        return np.zeros(len(values), dtype=bool)
    return np.fromiter(
        (
            isinstance(v, int | float | np.number) and not isinstance(v, bool) and v == v
            for v in values.tolist()
        ),
        dtype=bool,
        count=len(values),
    )


def _assemble(
    body: Sequence[pa.Array | pa.ChunkedArray],
    header: Sequence[str],
    found: Mapping[str, int],
    *,
    sheet: str | Sequence[str],
    first_row: int | Sequence[int],
) -> pd.DataFrame:
    n = len(body[0]) if body else 0
    index = pd.RangeIndex(n)
    out: dict[str, pd.Series] = {
        field: text_series(body[found[field]], index) for field in KEY_COLUMNS
    }
    if isinstance(sheet, str):
        out[SOURCE_SHEET] = text_series(pa.repeat(pa.scalar(sheet, pa.large_string()), n), index)
    else:
        out[SOURCE_SHEET] = text_series(pa.array(list(sheet), pa.large_string()), index)
    if isinstance(first_row, int):
        rows = np.arange(first_row, first_row + n, dtype=np.int64)
    else:
        rows = np.asarray(list(first_row), dtype=np.int64)
    out[SOURCE_ROW] = pd.Series(rows, index=index)
    headers = {field: str(header[found[field]]).strip() for field in KEY_COLUMNS}
    taken = set(out)
    for position, column in enumerate(body):
        if position in found.values():
            continue
        name = str(header[position]).strip() if position < len(header) else ""
        name = name or f"column {column_letter(position)}"
        if name in taken:
            name = f"{name} ({column_letter(position)})"
        if not name or name in taken:
            continue
        taken.add(name)
        out[name] = text_series(column, index)
    frame = pd.DataFrame(out, index=index, copy=False)
    frame.attrs[HEADERS] = headers
    return frame
