"""Could something newer be there now? Line items someone else changed since a run. Pure.

Resume, retry and undo re-send statuses a run decided earlier. Before they do, the current
state is read again (:func:`~spectrum_tools.readback.preview.preview_plan`), and a line item
whose current status is none of the statuses the run could have left there was changed by
someone else since: it is left alone (unless forced) and reported.

* resume / retry: expected is the line item's before-image (not applied yet) or the run's
  target (applied);
* undo: expected is what the run set (then it is restored) or the before-image (already
  restored).

A line item whose current status is unknown (Spectrum's answers carry no statuses, or
the order could not be read) is never called changed: nothing is concluded from a
status nobody saw.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Final

import pandas as pd

from spectrum_tools.readback.changes import CURRENT_STATUS, SEEN, Seen
from spectrum_tools.schema import DETAILS, LINE_ID, PO

__all__ = ["CHANGED_SINCE", "changed_since"]

CHANGED_SINCE: Final = "changed_since"


def changed_since(
    lines: pd.DataFrame,
    expected: Mapping[tuple[str, str], Collection[str]],
    *,
    run_id: int,
) -> pd.DataFrame:
    """The line items whose current status is not one the run could have left.

    Parameters
    ----------
    lines
        A preview's lines (``purchaseOrderNumber``, ``recipeSetReadableId``,
        ``current_status``, ``seen``).
    expected
        (purchase order, line item) -> the statuses the run could have left there. A line
        item not in it has no expectation (never reported).
    run_id
        The run, for the words.

    Returns
    -------
    pandas.DataFrame
        ``purchaseOrderNumber``, ``recipeSetReadableId``, ``current_status``, ``details``
        ("changed since run 7: now cancelled"), one row per such line item.

    Examples
    --------
    >>> lines = pd.DataFrame({"purchaseOrderNumber": ["P1", "P1", "P2"],
    ...     "recipeSetReadableId": ["A", "B", "C"],
    ...     "current_status": ["completed", "cancelled", ""],
    ...     "seen": ["status", "status", "no_status"]})
    >>> expect = {("P1", "A"): {"completed", "on-hold"}, ("P1", "B"): {"completed"},
    ...           ("P2", "C"): {"completed"}}
    >>> changed_since(lines, expect, run_id=7)["details"].tolist()
    ['changed since run 7: now cancelled']
    """
    keys = list(zip(lines[PO].tolist(), lines[LINE_ID].tolist(), strict=True))
    known = (lines[SEEN] == Seen.STATUS.value).to_numpy()
    current = lines[CURRENT_STATUS].tolist()
    mask = [
        bool(ok) and key in expected and have not in expected[key]
        for key, have, ok in zip(keys, current, known, strict=True)
    ]
    out = lines.loc[mask, [PO, LINE_ID, CURRENT_STATUS]].reset_index(drop=True)
    out[DETAILS] = [f"changed since run {run_id}: now {s}" for s in out[CURRENT_STATUS]]
    return out
