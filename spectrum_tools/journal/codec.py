"""Turning journal rows back into the toolkit's objects, and rows of a sheet into JSON.

Pure: no I/O. The journal stores the validated rows as JSON (ids kept as text, with the
analyst's header names and corrections from their ``attrs``), each order as a row, and each
line item as a row; these functions go both ways.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import pandas as pd

from spectrum_tools.journal.schema import IN_FLIGHT
from spectrum_tools.planning import Plan
from spectrum_tools.results import OrderResult
from spectrum_tools.schema import (
    DETAILS,
    LINE_COUNT,
    MISSING_IDS,
    OUTCOME,
    PO,
    SOURCE_ROW,
    SOURCE_ROWS,
    Outcome,
)
from spectrum_tools.sheets import CORRECTIONS, HEADER_ROW, HEADERS

__all__ = ["order_result", "rebuild_plan", "rows_from_json", "rows_to_json"]


def order_result(order: Any) -> OrderResult:
    """An order row of the journal (a named tuple) as an :class:`OrderResult`."""
    details = str(order.details or "")
    if order.state == IN_FLIGHT:
        details = (
            f"in flight when the run ended (sent {order.attempts} time(s), no final answer "
            "recorded); resuming re-sends it" + (f"; last answer: {details}" if details else "")
        )
    elif order.outcome == Outcome.PENDING.value and not details:
        details = "not sent yet"
    status = order.http_status
    return OrderResult(
        purchase_order=str(order.purchaseOrderNumber),
        outcome=Outcome(order.outcome),
        http_status=None if status is None or pd.isna(status) else int(status),
        details=details,
        line_count=int(order.line_count),
        missing_ids=tuple(i for i in str(order.missing_ids or "").split(",") if i),
        attempts=int(order.attempts),
        elapsed_s=float(order.elapsed_s or 0.0),
        source_rows=str(order.source_rows),
    )


def rebuild_plan(
    rows: pd.DataFrame,
    orders: pd.DataFrame,
    lines: Sequence[tuple[int, str, str]],
    *,
    send_partial_orders: bool,
) -> Plan:
    """The run's Plan from the journal's own records (not by planning the rows again).

    The journal holds what was actually planned and sent; planning the rows again with a
    newer spectrum-tools could give other payloads.
    """
    requests = orders.loc[orders["kind"] == "request"]
    aside = orders.loc[orders["kind"] == "set_aside"]
    seqs = requests["seq"].to_numpy(dtype=np.int64)
    line_seq = np.fromiter((s for s, _, _ in lines), dtype=np.int64, count=len(lines))
    top = int(max(seqs.max(initial=-1), line_seq.max(initial=-1))) + 1
    sizes = np.bincount(line_seq, minlength=top)[seqs].astype(np.int64)
    return Plan.from_parts(
        rows,
        purchase_orders=requests[PO].tolist(),
        source_rows=requests[SOURCE_ROWS].tolist(),
        line_counts=sizes,
        ids=[i for _, i, _ in lines],
        statuses=[s for _, _, s in lines],
        set_aside=pd.DataFrame(
            {
                PO: pd.Series(aside[PO].tolist(), dtype=object),
                OUTCOME: pd.Series(aside[OUTCOME].tolist(), dtype=object),
                LINE_COUNT: aside[LINE_COUNT].to_numpy(dtype=np.int64),
                SOURCE_ROWS: pd.Series(aside[SOURCE_ROWS].tolist(), dtype=object),
                DETAILS: pd.Series(aside[DETAILS].tolist(), dtype=object),
                MISSING_IDS: pd.Series(aside["missing_ids"].fillna("").tolist(), dtype=object),
            }
        ),
        send_partial_orders=send_partial_orders,
    )


def rows_to_json(rows: pd.DataFrame) -> str:
    """The validated rows as JSON: column names, dtypes and values, ids kept as text.

    Examples
    --------
    >>> frame = pd.DataFrame({"purchaseOrderNumber": ["00123"], "source_row": [2]})
    >>> rows_from_json(rows_to_json(frame)).equals(frame)
    True
    >>> frame.attrs = {"headers": {"purchaseOrderNumber": "PO #"},
    ...                "corrections": ((2, "PO #", "1", "01"),)}
    >>> rows_from_json(rows_to_json(frame)).attrs == frame.attrs
    True
    """
    columns = [str(c) for c in rows.columns]
    attrs = {key: rows.attrs[key] for key in _KEPT_ATTRS if key in rows.attrs}
    data = []
    for position in range(rows.shape[1]):
        values = rows.iloc[:, position]
        data.append([None if _is_missing(v) else _plain(v) for v in values.tolist()])
    return json.dumps(
        {"columns": columns, "dtypes": [str(t) for t in rows.dtypes], "data": data}
        | ({"attrs": attrs} if attrs else {}),
        default=str,
    )


def rows_from_json(text: str) -> pd.DataFrame:
    """The rows :func:`rows_to_json` stored."""
    stored = json.loads(text)
    series = []
    for values, dtype in zip(stored["data"], stored["dtypes"], strict=True):
        column = pd.Series(values, dtype=object)
        with contextlib.suppress(TypeError, ValueError):  # else keep object: values matter
            column = column.astype(dtype)
        series.append(column)
    frame = pd.concat(series, axis=1) if series else pd.DataFrame()
    frame.columns = stored["columns"]
    if SOURCE_ROW in frame.columns and frame[SOURCE_ROW].dtype == object:
        frame[SOURCE_ROW] = pd.to_numeric(frame[SOURCE_ROW], errors="coerce")
    kept = stored.get("attrs", {})
    kept = kept if isinstance(kept, dict) else {}
    if isinstance(kept.get(HEADERS), dict):
        frame.attrs[HEADERS] = {str(k): str(v) for k, v in kept[HEADERS].items()}
    if isinstance(kept.get(HEADER_ROW), int):
        frame.attrs[HEADER_ROW] = kept[HEADER_ROW]
    corrections = kept.get(CORRECTIONS)
    if isinstance(corrections, list):  # only well-formed (row, header, old, new) records
        frame.attrs[CORRECTIONS] = tuple(
            (c[0], str(c[1]), str(c[2]), str(c[3]))
            for c in corrections
            if isinstance(c, list) and len(c) == 4 and isinstance(c[0], int)
        )
    return frame


# The small attrs worth keeping with a run: what the analyst called the columns, where the
# header was, and what they corrected in the app. (Not NUMBER_CELLS: one entry per row.)
_KEPT_ATTRS: Final = (HEADERS, HEADER_ROW, CORRECTIONS)


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _plain(value: object) -> object:
    """A JSON-ready scalar (numpy scalars become Python ones)."""
    if isinstance(value, np.generic):
        return value.item()
    return value
