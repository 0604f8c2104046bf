"""What a sheet would change in Spectrum: current -> wanted, per line item and per order. Pure.

Given the line items a plan wants (``purchaseOrderNumber``, ``recipeSetReadableId``,
``workflowStatus``) and what a read found (:class:`~spectrum_tools.readback.answers.OrderState`
per order), :func:`current_frame` says what Spectrum holds for each line item,
:func:`line_changes` classifies each one, and :func:`order_decisions` decides each order:

* ``send`` — at least one line item changes (or its current status is unknown: an
  unknown status is never taken for "already set"); only those line items are sent;
* ``unchanged`` — every line item already holds the wanted status: nothing is sent;
* ``not_found`` — Spectrum does not have the order, or some of its line items: the
  update would be refused whole (docs/spectrum-api.md, "Update workflow status"), so no
  request is wasted on it. With ``retry_without_missing`` the order is sent without the
  missing line items instead (and ends ``partial`` when that succeeds).

Nothing here touches the network or disk, or changes the frames it is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

import numpy as np
import pandas as pd

from spectrum_tools.readback.answers import OrderState, unpadded
from spectrum_tools.schema import DETAILS, LINE_ID, MISSING_IDS, PO, STATUS
from spectrum_tools.statuses import WorkflowStatus, normalise_status

__all__ = [
    "CHANGE",
    "CURRENT_COLUMNS",
    "CURRENT_STATUS",
    "DECISION",
    "FINAL_STATUSES",
    "LEAVES_FINAL",
    "READ_AT",
    "READ_NOTE",
    "READ_VIA",
    "SEEN",
    "SEND_IDS",
    "WANTED_STATUS",
    "Change",
    "Decision",
    "Seen",
    "current_frame",
    "line_changes",
    "order_decisions",
]

CURRENT_STATUS: Final = "current_status"
WANTED_STATUS: Final = "wanted_status"
READ_AT: Final = "read_at"
READ_VIA: Final = "read_via"
READ_NOTE: Final = "read_note"
SEEN: Final = "seen"
CHANGE: Final = "change"
LEAVES_FINAL: Final = "leaves_final"
DECISION: Final = "decision"
SEND_IDS: Final = "send_ids"

CURRENT_COLUMNS: Final = (PO, LINE_ID, CURRENT_STATUS, SEEN, READ_AT, READ_VIA, READ_NOTE)
"""The columns of :func:`current_frame`, in this order."""

FINAL_STATUSES: Final = frozenset({WorkflowStatus.DELIVERED.value, WorkflowStatus.CANCELLED.value})
"""Statuses an order normally never leaves: moving a line item out of one is flagged."""


class Seen(StrEnum):
    """What the read found for one line item."""

    STATUS = "status"  # Spectrum reported its status
    NO_STATUS = "no_status"  # the line item exists; the answer carries no status for it
    NO_LINE = "no_line"  # the order exists without this line item
    NO_ORDER = "no_order"  # Spectrum has no such order
    UNREAD = "unread"  # the order could not be read


class Change(StrEnum):
    """How one line item of the sheet compares with what Spectrum holds."""

    CHANGE = "change"  # Spectrum holds another status: it will be sent
    ALREADY_SET = "already_set"  # Spectrum already holds the wanted status
    UNKNOWN = "unknown"  # current status unknown (not shown, or not read): sent
    NOT_IN_SPECTRUM = "not_in_spectrum"  # no such order, or no such line item in it


class Decision(StrEnum):
    """What happens to one order after the read."""

    SEND = "send"
    UNCHANGED = "unchanged"
    NOT_FOUND = "not_found"


def current_frame(wanted: pd.DataFrame, states: Mapping[str, OrderState]) -> pd.DataFrame:
    """What Spectrum holds for each wanted line item.

    Parameters
    ----------
    wanted
        The line items asked about: at least ``purchaseOrderNumber`` and
        ``recipeSetReadableId``.
    states
        Purchase order -> what the read found. An order missing from it is ``unread``.

    Returns
    -------
    pandas.DataFrame
        One row per row of ``wanted``, in its order, with :data:`CURRENT_COLUMNS`:
        ``current_status`` is Spectrum's status in the API's spelling when it was shown
        (empty otherwise), ``seen`` a :class:`Seen` value, ``read_at``/``read_via`` when
        and how the order was read, ``read_note`` anything odd, in words.

    Examples
    --------
    >>> w = pd.DataFrame({"purchaseOrderNumber": ["P1", "P1", "P2"],
    ...                   "recipeSetReadableId": ["A", "B", "C"]})
    >>> s = {"P1": OrderState("P1", {"A": "Completed"}, via="search"),
    ...      "P2": OrderState("P2", found=False, via="order")}
    >>> current_frame(w, s)[["current_status", "seen"]].values.tolist()
    [['completed', 'status'], ['', 'no_line'], ['', 'no_order']]
    """
    rows: list[tuple[str, str, str, str, str, str, str]] = []
    for po, line_id in zip(wanted[PO].tolist(), wanted[LINE_ID].tolist(), strict=True):
        state = states.get(po)
        rows.append((po, line_id, *_seen(line_id, state)))
    return pd.DataFrame(rows, columns=list(CURRENT_COLUMNS), dtype=object)


def _seen(line_id: str, state: OrderState | None) -> tuple[str, str, str, str, str]:
    """(current_status, seen, read_at, read_via, read_note) of one line item."""
    if state is None:
        return "", Seen.UNREAD.value, "", "", "not read"
    when, via = state.read_at, state.via
    if not state.found:
        text = f"Spectrum does not know order {state.purchase_order} (HTTP 404)"
        text += f"; {state.hint}" if state.hint else ""
        return "", Seen.NO_ORDER.value, when, via, text
    if state.error:
        return "", Seen.UNREAD.value, when, via, state.error
    if line_id not in state.statuses:
        near = next((i for i in state.statuses if i.casefold() == line_id.casefold()), None)
        twin = next((i for i in state.statuses if unpadded(i) == unpadded(line_id)), None)
        hint = (
            f"; Spectrum has {near!r} (different case)"
            if near
            else f"; did you mean {twin}?"
            if twin
            else ""
        )
        return "", Seen.NO_LINE.value, when, via, f"the order has no line item {line_id}{hint}"
    have = state.statuses[line_id]
    note = state.notes.get(line_id, "")
    if have is None:
        return (
            "",
            Seen.NO_STATUS.value,
            when,
            via,
            note or "Spectrum's answer carries no workflowStatus for it",
        )
    known = normalise_status(have)
    if known is None:  # shown as Spectrum spelled it: a status we do not know differs
        return have, Seen.STATUS.value, when, via, note or "a status this toolkit does not know"
    return known.value, Seen.STATUS.value, when, via, note


def line_changes(wanted: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    """Classify each wanted line item against what Spectrum holds.

    Parameters
    ----------
    wanted
        ``purchaseOrderNumber``, ``recipeSetReadableId``, ``workflowStatus`` (the API
        spelling, as planned), one row per line item.
    current
        :func:`current_frame` of the same rows, in the same order.

    Returns
    -------
    pandas.DataFrame
        ``wanted``'s three columns (``workflowStatus`` renamed ``wanted_status``), then
        ``current_status``, ``change`` (a :class:`Change` value), ``leaves_final`` (the
        line item would move out of ``delivered`` or ``cancelled``), ``seen``,
        ``read_at``, ``read_via``, ``read_note``.
    """
    if len(wanted) != len(current):
        raise ValueError("wanted and current must describe the same line items")
    out = pd.DataFrame(
        {
            PO: wanted[PO].to_numpy(object),
            LINE_ID: wanted[LINE_ID].to_numpy(object),
            WANTED_STATUS: wanted[STATUS].to_numpy(object),
            CURRENT_STATUS: current[CURRENT_STATUS].to_numpy(object),
        }
    )
    seen = current[SEEN].to_numpy(object)
    same = out[CURRENT_STATUS].to_numpy(object) == out[WANTED_STATUS].to_numpy(object)
    missing = np.isin(seen, [Seen.NO_LINE.value, Seen.NO_ORDER.value])
    change = np.where(
        missing,
        Change.NOT_IN_SPECTRUM.value,
        np.where(
            seen == Seen.STATUS.value,
            np.where(same, Change.ALREADY_SET.value, Change.CHANGE.value),
            Change.UNKNOWN.value,
        ),
    )
    out[CHANGE] = change.astype(object)
    out[LEAVES_FINAL] = out[CURRENT_STATUS].isin(FINAL_STATUSES).to_numpy() & ~same
    for col in (SEEN, READ_AT, READ_VIA, READ_NOTE):
        out[col] = current[col].to_numpy(object)
    return out


def order_decisions(changes: pd.DataFrame, *, retry_without_missing: bool = False) -> pd.DataFrame:
    """Decide each order from its line items' changes.

    Parameters
    ----------
    changes
        :func:`line_changes`.
    retry_without_missing
        Send an order without the line items Spectrum does not have (instead of setting
        the whole order aside as ``not_found``).

    Returns
    -------
    pandas.DataFrame
        One row per order, in first-appearance order: ``purchaseOrderNumber``,
        ``decision`` (a :class:`Decision` value), ``send_ids`` (tuple of the line-item
        ids to send), ``missing_ids`` (tuple of those Spectrum does not have) and
        ``details`` (in words).

    Examples
    --------
    >>> ch = pd.DataFrame({"purchaseOrderNumber": ["P1", "P1", "P2", "P3"],
    ...     "recipeSetReadableId": ["A", "B", "C", "D"],
    ...     "change": ["change", "already_set", "already_set", "not_in_spectrum"]})
    >>> order_decisions(ch)[["decision", "send_ids"]].values.tolist()
    [['send', ('A',)], ['unchanged', ()], ['not_found', ()]]
    """
    out: list[tuple[str, str, tuple[str, ...], tuple[str, ...], str]] = []
    no_order = (
        changes[SEEN] == Seen.NO_ORDER.value
        if SEEN in changes
        else pd.Series(False, index=changes.index)
    )
    frame = changes[[PO, LINE_ID, CHANGE]].assign(_no_order=no_order)
    for po, group in frame.groupby(PO, sort=False):
        ids = group[LINE_ID].tolist()
        kinds = group[CHANGE].tolist()
        if bool(group["_no_order"].all()):
            text = f"Spectrum has no order {po}: the update would be refused"
            out.append((str(po), Decision.NOT_FOUND.value, (), tuple(ids), text))
            continue
        missing = tuple(i for i, k in zip(ids, kinds, strict=True) if k == Change.NOT_IN_SPECTRUM)
        send = tuple(
            i
            for i, k in zip(ids, kinds, strict=True)
            if k in (Change.CHANGE.value, Change.UNKNOWN.value)
        )
        out.append((str(po), *_decide(send, missing, len(ids), retry_without_missing)))
    return pd.DataFrame(out, columns=[PO, DECISION, SEND_IDS, MISSING_IDS, DETAILS], dtype=object)


def _decide(
    send: tuple[str, ...], missing: tuple[str, ...], total: int, retry_without_missing: bool
) -> tuple[str, tuple[str, ...], tuple[str, ...], str]:
    set_already = total - len(send) - len(missing)
    if missing and not (retry_without_missing and send):
        text = f"Spectrum does not have {_ids(missing)}: the update would be refused whole"
        if retry_without_missing:
            text += "; nothing else in the order needs changing"
        return Decision.NOT_FOUND.value, (), missing, text
    if not send:
        return Decision.UNCHANGED.value, (), (), _already(total)
    parts = [f"{len(send)} line item(s) to change"]
    if set_already:
        parts.append(f"{set_already} already set, left out")
    if missing:
        parts.append(f"left out, not in Spectrum: {', '.join(missing)}")
    return Decision.SEND.value, send, missing, "; ".join(parts)


def _ids(ids: tuple[str, ...]) -> str:
    shown = ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
    return f"line item(s) {shown}"


def _already(total: int) -> str:
    return "already set in Spectrum" if total == 1 else f"all {total} line items already set"
