"""Read a CSV (or other delimited text) file into a :class:`Grid` of cell texts.

Pure: parses bytes already read. The encoding and the delimiter are sniffed (see
``sniffing``); every cell stays text exactly as the file holds it (``00123``, ``1E5``,
``NA`` and 30-digit ids included).

A regular file (every row as wide as the header) goes through Arrow's multithreaded CSV
reader straight into Arrow text columns. Anything else (title rows narrower than the
header, blank lines, a ragged row) goes through pandas' C parser, which pads short rows
and names the line of a row that is too wide.
"""

from __future__ import annotations

import io
import re

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from spectrum_tools.cells import ESCAPED_PATTERN
from spectrum_tools.errors import SpreadsheetError
from spectrum_tools.sheets.grid import Grid
from spectrum_tools.sheets.sniffing import SNIFF_CHARS, decode, sniff_delimiter

__all__ = ["csv_grid", "unescape_column"]

# Arrow splits the file into blocks parsed in parallel; 1 MiB keeps both cores busy on a
# few-MB export and the per-block overhead small on a 40 MB one.
_BLOCK_BYTES = 1 << 20


def csv_grid(data: bytes, label: str) -> Grid:
    """Parse a delimited text file; every cell is text.

    Raises
    ------
    SpreadsheetError
        Binary data, an empty file, or a row wider than the rows above it (named by line).
    """
    if data.isascii() and b"\x00" not in data[:4096]:
        # Plain ASCII, the usual export, is UTF-8 as it is: only the part sniffed is decoded.
        delim, width = sniff_delimiter(data[:SNIFF_CHARS].decode("ascii"))
        columns = _arrow_columns(data, delim, width)
        if columns is None:
            columns = _pandas_columns(data, "", delim, width, label)
        return Grid(columns, label, "")
    text, utf8 = decode(data, label)
    delim, width = sniff_delimiter(text)
    columns = _arrow_columns(utf8, delim, width)
    if columns is None:
        columns = _pandas_columns(utf8 if utf8 is data else None, text, delim, width, label)
    return Grid(columns, label, "")


def _arrow_columns(utf8: bytes, delim: str, width: int) -> list[pa.ChunkedArray] | None:
    """The columns through Arrow's reader, or None when the file is not a regular table."""
    names = [str(i) for i in range(width)]
    try:
        table = pa_csv.read_csv(
            pa.py_buffer(utf8),
            read_options=pa_csv.ReadOptions(
                column_names=names, use_threads=True, block_size=_BLOCK_BYTES
            ),
            parse_options=pa_csv.ParseOptions(
                delimiter=delim,
                quote_char='"',
                double_quote=True,
                escape_char=False,
                newlines_in_values=True,  # a quoted note may hold a line break
                ignore_empty_lines=False,  # a blank line is a row: row numbers stay true
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.large_string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                check_utf8=True,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # a ragged row, a blank line, invalid UTF-8: the careful path decides
    return [table.column(i) for i in range(width)]  # chunked: no copy into one buffer


def _pandas_columns(
    utf8: bytes | None, text: str, delim: str, width: int, label: str
) -> list[pa.Array]:
    """The columns through pandas' C parser: short rows padded, wide rows an error.

    Parses ``utf8`` when given (``text`` is then not used), else ``text``.
    """
    try:
        frame = pd.read_csv(
            io.BytesIO(utf8) if utf8 is not None else io.StringIO(text),
            encoding="utf-8",
            sep=delim,
            header=None,
            names=range(width),
            index_col=False,
            dtype=object,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            engine="c",
        )
    except pd.errors.ParserError as exc:
        match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if match:
            want, line, saw = match.groups()
            raise SpreadsheetError(
                f"has {saw} cells but the rows above have {want}; "
                f"check for a stray {delim!r} or an unclosed quote",
                file=label,
                row=int(line),
            ) from None
        raise SpreadsheetError(
            f"cannot be parsed as CSV ({' '.join(str(exc).split())})", file=label
        ) from None
    except pd.errors.EmptyDataError:
        raise SpreadsheetError("the file is empty", file=label) from None
    return [
        pa.array(frame[c].where(frame[c].notna(), "").to_numpy(dtype=object), pa.large_string())
        for c in frame.columns
    ]


def unescape_column(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Undo the formula escape ``write_table`` applies to CSV cells (see ``cells``).

    One vectorised prefix test per column; the regex runs only on a column that holds a
    cell starting with ``'``.
    """
    if not pc.any(pc.starts_with(column, "'")).as_py():
        return column
    escaped = pc.match_substring_regex(column, ESCAPED_PATTERN)
    return pc.if_else(escaped, pc.utf8_slice_codeunits(column, 1), column)
