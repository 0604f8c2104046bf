"""What Spectrum says an order holds: order answers read defensively. Pure: no I/O.

Spectrum's order answers (``GET /api/order/order-number/{po}`` and each element of
``POST /api/orders/search``) are only partly documented (docs/spectrum-api.md, "Reading
orders back"):

* the line items are ``lineItems``; some public client code spells them ``line_items``;
* a line item names itself ``recipeSetReadableId`` or ``recipeSetId`` (the same readable
  id the status endpoint takes);
* whether a line item carries its ``workflowStatus`` is not documented. When it is absent
  the status is ``None`` ("unknown"), never guessed.

:func:`parse_order` turns one answer into an :class:`OrderState`;
:func:`search_windows` lists the look-back windows a bulk read asks for, newest first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from spectrum_tools.schema import PO, STATUS

__all__ = [
    "MAX_WINDOW",
    "OrderState",
    "answer_order_number",
    "parse_order",
    "search_windows",
    "unpadded",
]

MAX_WINDOW: Final = timedelta(days=31)
"""The longest last-modification window one search may ask for (without
``ignoreDateRestriction``, which may take over 30 s: docs/spectrum-api.md, "Search")."""

_ID_KEYS: Final = ("recipeSetReadableId", "recipeSetId")
_ITEM_KEYS: Final = ("lineItems", "line_items")


@dataclass(frozen=True)
class OrderState:
    """One order as Spectrum reported it.

    Attributes
    ----------
    purchase_order
        The order's number.
    statuses
        Line-item id -> status as Spectrum spelled it, or ``None`` when the answer
        carries no usable status for that line item.
    notes
        Line-item id -> why its status is odd (not text, listed twice...).
    error
        Non-empty when the order could not be read or the answer cannot be used at all
        (then ``statuses`` is empty).
    found
        False when Spectrum says there is no such order (HTTP 404 on read).
    via
        How it was read: ``"search"`` (a bulk search window) or ``"order"`` (one GET).
    read_at
        When the answer came (ISO 8601, UTC).
    hint
        For an order not found: an order Spectrum does have that differs only in leading
        zeros ("did you mean 00012345?"), when a search saw one.
    """

    purchase_order: str
    statuses: Mapping[str, str | None] = field(default_factory=dict)
    notes: Mapping[str, str] = field(default_factory=dict)
    error: str = ""
    found: bool = True
    via: str = ""
    read_at: str = ""
    hint: str = ""

    @property
    def shows_statuses(self) -> bool:
        """Whether the answer carried a status for at least one line item."""
        return any(s is not None for s in self.statuses.values())


def answer_order_number(order: object) -> str | None:
    """The ``purchaseOrderNumber`` of an order answer, or None when it has none usable.

    Examples
    --------
    >>> answer_order_number({"purchaseOrderNumber": " PO-1 "}), answer_order_number([])
    ('PO-1', None)
    """
    if not isinstance(order, Mapping):
        return None
    named = order.get(PO)
    if isinstance(named, bool) or not isinstance(named, str | int):
        return None
    text = str(named).strip()
    return text or None


def parse_order(po: str, order: Mapping[str, Any]) -> OrderState:
    """Read one order answer: line-item id -> status (``None`` when Spectrum gives none).

    Parameters
    ----------
    po
        The purchase order that was asked for.
    order
        The JSON object Spectrum answered with.

    Returns
    -------
    OrderState
        With ``error`` set when the answer names another order or has no list of line
        items. Line items without a usable id are ignored; a line item listed twice with
        different statuses has status ``None`` and a note.

    Examples
    --------
    >>> s = parse_order("P1", {"purchaseOrderNumber": "P1", "line_items": [
    ...     {"recipeSetId": "AAAA1111", "workflowStatus": "completed"},
    ...     {"recipeSetReadableId": "BBBB2222"}]})
    >>> dict(s.statuses), s.shows_statuses
    ({'AAAA1111': 'completed', 'BBBB2222': None}, True)
    """
    named = answer_order_number(order)
    if named is not None and named != po:
        return OrderState(po, error=f"Spectrum answered with another order ({named!r})")
    items = next((order[k] for k in _ITEM_KEYS if k in order), None)
    if not isinstance(items, list):
        return OrderState(po, error="the answer has no lineItems list; cannot read this order")
    statuses: dict[str, str | None] = {}
    notes: dict[str, str] = {}
    for item in items:
        if not isinstance(item, Mapping):
            continue
        line_id = _line_id(item)
        if line_id is None:
            continue
        raw = item.get(STATUS)
        status = raw.strip() if isinstance(raw, str) and raw.strip() else None
        if raw is not None and status is None:
            notes[line_id] = f"Spectrum's workflowStatus for it is not text: {str(raw)[:40]!r}"
        if line_id in statuses and statuses[line_id] != status:
            notes[line_id] = "Spectrum lists this line item twice, with different statuses"
            statuses[line_id] = None
            continue
        statuses.setdefault(line_id, status)
    return OrderState(po, statuses=statuses, notes=notes)


def _line_id(item: Mapping[str, Any]) -> str | None:
    raw = next((item[k] for k in _ID_KEYS if k in item), None)
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        return None
    text = str(raw).strip()
    return text or None


def search_windows(
    end: datetime, look_back: timedelta, span: timedelta = MAX_WINDOW
) -> list[tuple[datetime, datetime]]:
    """The last-modification windows a bulk read asks for, newest first.

    Consecutive windows of at most ``span`` cover ``[end - look_back, end]``; each starts
    where the next older one ends, so together they leave no gap.

    Examples
    --------
    >>> from datetime import UTC
    >>> end = datetime(2026, 12, 1, tzinfo=UTC)
    >>> [(a.date().isoformat(), b.date().isoformat())
    ...  for a, b in search_windows(end, timedelta(days=40))]
    [('2026-10-31', '2026-12-01'), ('2026-10-22', '2026-10-31')]
    """
    if span <= timedelta(0):
        raise ValueError("a search window must be longer than zero")
    windows: list[tuple[datetime, datetime]] = []
    oldest = end - max(look_back, timedelta(0))
    upper = end
    while upper > oldest:
        lower = max(oldest, upper - span)
        windows.append((lower, upper))
        upper = lower
    return windows


def unpadded(identifier: str) -> str:
    """An id without its leading zeros: how Excel turns ``00012345`` into ``12345``.

    Examples
    --------
    >>> unpadded("00012345"), unpadded("000")
    ('12345', '0')
    """
    return identifier.lstrip("0") or "0"
