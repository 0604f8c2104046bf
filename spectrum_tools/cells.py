"""The text of a spreadsheet cell (one, or a whole column), and the spreadsheet-escape rule.

Pure: no I/O. A leaf: every layer that turns cells into text (reading, validation,
writing) uses these rules, so ``12345678.0`` is ``"12345678"`` everywhere and an escaped CSV
cell reads back as exactly what was written.

Columns of text are pandas' default string dtype backed by Arrow (:data:`TEXT`, what
``str`` means in pandas 3 with pyarrow installed), and Arrow ``large_string`` arrays
inside the pipeline. Not ``pd.ArrowDtype(pa.string())``: grouping on that dtype is several
times slower.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = [
    "ESCAPED_PATTERN",
    "FORMULA_START",
    "TEXT",
    "arrow_text",
    "cell_text",
    "excel_safe",
    "is_escaped",
    "text_array",
    "text_series",
    "unescape",
]

TEXT: Final = pd.StringDtype("pyarrow", na_value=np.nan)
"""The dtype of every text column the toolkit makes: pandas' default ``str`` on Arrow."""

# A cell starting with one of these is run as a formula by Excel when it opens a CSV
# (the OWASP CSV-injection list: = + - @ tab and carriage return).
FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
# A cell escaped by excel_safe: one or more leading quotes before a formula character.
# The same text is a valid RE2 pattern (Arrow's regex engine) and a Python one.
ESCAPED_PATTERN: Final = r"^'+[=+\-@\t\r]"
_ESCAPED = re.compile(ESCAPED_PATTERN)


def cell_text(value: object) -> str:
    """Render one cell as the text an analyst means by it.

    Examples
    --------
    >>> cell_text(12345678.0), cell_text(float('nan')), cell_text(True), cell_text(1.5)
    ('12345678', '', 'TRUE', '1.5')
    """
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if math.isnan(value):  # an empty cell of a float column
            return ""
        # Whole numbers up to 2**53 are exact; beyond that Excel already lost digits, and
        # the scientific repr makes validation flag the id instead of sending garbage.
        if value.is_integer() and abs(value) <= 2**53:
            return str(int(value))
        return repr(value)
    if _is_missing(value):  # before datetime: NaT is a datetime that has no time
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ") if value.time() != dt.time() else value.date().isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _is_missing(value: object) -> bool:
    # pandas' NA and NaT without importing pandas: both are singletons of these names.
    return type(value).__name__ in ("NAType", "NaTType")


def excel_safe(value: str) -> str:
    """Escape text that Excel would run as a formula when it opens a CSV.

    Examples
    --------
    >>> excel_safe("=1+1"), excel_safe("'=x"), excel_safe("plain")
    ("'=1+1", "''=x", 'plain')
    """
    if value.startswith(FORMULA_START) or _ESCAPED.match(value):
        return "'" + value  # unescape strips exactly one leading quote back off
    return value


def is_escaped(value: str) -> bool:
    """Whether ``value`` is a cell :func:`excel_safe` escaped."""
    return _ESCAPED.match(value) is not None


def unescape(value: str) -> str:
    """Undo :func:`excel_safe` (a text it did not escape is returned as it is).

    Examples
    --------
    >>> unescape(excel_safe("=1+1")), unescape("'=x"), unescape("'quoted")
    ('=1+1', '=x', "'quoted")
    """
    return value[1:] if _ESCAPED.match(value) else value


def text_array(values: pd.Series | pd.Index) -> pa.LargeStringArray:
    """A column's cells as Arrow text: each rendered by :func:`cell_text`, missing as ``""``.

    Zero-copy for a column that already is Arrow-backed text.

    Examples
    --------
    >>> text_array(pd.Series(["00123", None, 12345678.0], dtype=object)).to_pylist()
    ['00123', '', '12345678']
    """
    dtype = values.dtype
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow":
        arrow = pa.array(values.array)
        if arrow.null_count:
            arrow = arrow.fill_null("")
        return arrow.cast(pa.large_string())
    cells = values.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(cells, skipna=False) != "string":
        cells = np.fromiter(
            (v if type(v) is str else cell_text(v) for v in cells), dtype=object, count=len(cells)
        )
    return pa.array(cells, type=pa.large_string())


def arrow_text(values: pd.Series) -> pa.LargeStringArray | pa.ChunkedArray:
    """Like :func:`text_array`, but a column already held as Arrow text without missing
    cells comes back as its own Arrow data, chunks and all (no copy into one buffer).

    Examples
    --------
    >>> column = pd.Series(["a", "b"], dtype=TEXT)
    >>> arrow_text(column) is arrow_text(column), arrow_text(column).to_pylist()
    (True, ['a', 'b'])
    """
    arrow = getattr(values.array, "__arrow_array__", None)
    if values.dtype == TEXT and arrow is not None:
        data = arrow()
        arrow_large = isinstance(data, pa.ChunkedArray | pa.Array)
        if arrow_large and data.type == pa.large_string() and not data.null_count:
            return data
    return text_array(values)


def text_series(
    values: pa.Array | pa.ChunkedArray, index: pd.Index | None = None, name: str | None = None
) -> pd.Series:
    """An Arrow text array as a pandas column of the default string dtype (:data:`TEXT`)."""
    return pd.Series(values, dtype=TEXT, index=index, name=name, copy=False)
