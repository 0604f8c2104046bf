"""Whole-column work on the toolkit's frames of Arrow-backed text: keeping rows, and
numbering distinct keys. Pure: no I/O, inputs never mutated.

Both exist because pandas' general paths are slow on Arrow text split into many chunks
(as the CSV reader leaves it): a boolean ``.loc`` goes through a chunked take, and a
hashing pass over a million ids costs more than all of the checks done on them, so a
pair of keys is hashed once, not once per column and again for the pair.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["group_codes", "rows_where"]

# Joins a pair of keys into one text to hash; used only when no first key contains it.
_JOIN = "\x00"


def rows_where(frame: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """``frame.loc[mask].reset_index(drop=True)``, column by column.

    Each column keeps its dtype (a text column is filtered by Arrow, without a copy into
    one buffer first); ``attrs`` and the column labels are kept.

    Parameters
    ----------
    frame
        Any frame.
    mask
        One bool per row: the rows to keep.

    Returns
    -------
    pandas.DataFrame
        A new frame of the kept rows, numbered from 0.

    Examples
    --------
    >>> frame = pd.DataFrame({"a": pd.Series(["x", "y", "z"], dtype="str"), "n": [1, 2, 3]})
    >>> kept = rows_where(frame, np.array([True, False, True]))
    >>> kept.to_dict("list"), kept.index.tolist()
    ({'a': ['x', 'z'], 'n': [1, 3]}, [0, 1])
    """
    if not frame.columns.is_unique:
        return frame.loc[mask].reset_index(drop=True)
    index = pd.RangeIndex(int(np.count_nonzero(mask)))
    kept = pd.DataFrame(
        {
            position: pd.Series(frame.iloc[:, position].array[mask], index=index, copy=False)
            for position in range(frame.shape[1])
        },
        index=index,
        copy=False,
    )
    kept.columns = frame.columns
    kept.attrs = frame.attrs
    return kept


def group_codes(*columns: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Dense int64 codes of the distinct combinations of text columns, numbered by first
    appearance (row 0 has code 0; a new code is one more than the highest before it).

    Two columns are hashed once, as one joined text (``first + "\\x00" + second``), when
    no first value contains ``"\\x00"`` (then the join cannot make two pairs equal);
    otherwise, and for any other number of columns, each column is hashed and the codes
    combined. Text is hashed by Arrow's dictionary encoding.

    Examples
    --------
    >>> po = pa.array(["P1", "P2", "P1", "P1"], pa.large_string())
    >>> line = pa.array(["A", "A", "B", "A"], pa.large_string())
    >>> group_codes(po, line).tolist()
    [0, 1, 2, 0]
    >>> group_codes(pa.array(["P\\x00", "P"]), pa.array(["A", "\\x00A"])).tolist()
    [0, 1]
    """
    if len(columns) == 2 and not pc.any(pc.match_substring(columns[0], _JOIN)).as_py():
        first, second = (_large(c) for c in columns)
        joined = pc.binary_join_element_wise(first, second, pa.scalar(_JOIN, pa.large_string()))
        return _codes(joined)
    codes: np.ndarray | None = None
    for values in columns:
        column_codes = _codes(values)  # dense, by first appearance
        if codes is None:
            codes = column_codes
        else:
            distinct = int(column_codes.max()) + 1 if len(column_codes) else 1
            codes = pd.factorize(codes * distinct + column_codes)[0].astype(np.int64)
    return codes if codes is not None else np.zeros(0, dtype=np.int64)


def _codes(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    encoded = pc.dictionary_encode(values)  # numbered by first appearance
    if isinstance(encoded, pa.ChunkedArray):  # one dictionary for all chunks
        encoded = encoded.combine_chunks()
    return np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)


def _large(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    return values if values.type == pa.large_string() else values.cast(pa.large_string())
