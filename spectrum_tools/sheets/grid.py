"""A sheet as read, before its header is found: columns of cell text, and where it came from.

Pure: no I/O. Every reader (CSV, workbook) produces a :class:`Grid`; the frame of update
rows is made from it (see ``frames``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

__all__ = ["Grid"]


@dataclass(frozen=True)
class Grid:
    """Cell texts by column, left to right, all columns one length; ``""`` for an empty cell.

    Attributes
    ----------
    columns
        Arrow ``large_string`` arrays (chunked or not), one per column, header rows included.
    file
        The file's label for messages.
    sheet
        The workbook sheet name; ``""`` for a CSV.
    numbers
        Column index -> the 0-based rows whose cell the workbook stored as a number (not
        as text): an id there may have lost its leading zeros. Empty for a CSV.
    """

    columns: Sequence[pa.Array | pa.ChunkedArray]
    file: str
    sheet: str
    numbers: Mapping[int, Sequence[int]] = field(default_factory=dict)

    @property
    def height(self) -> int:
        """How many rows the sheet has (title and header rows included)."""
        return len(self.columns[0]) if self.columns else 0

    def head(self, n: int) -> list[list[str]]:
        """The first ``n`` rows, as lists of cell texts."""
        cut = [column.slice(0, n).to_pylist() for column in self.columns]
        return [list(row) for row in zip(*cut, strict=True)]

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[str]], file: str, sheet: str) -> Grid:
        """A grid from rows of cell texts (short rows are padded with empty cells)."""
        width = max((len(r) for r in rows), default=0)
        columns = [
            pa.array([r[c] if c < len(r) else "" for r in rows], type=pa.large_string())
            for c in range(width)
        ]
        return cls(columns, file, sheet)
