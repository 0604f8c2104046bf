"""Group validated rows into one status-update request per purchase order. Pure: no I/O.

A :class:`Plan` is everything a run will do, computed before anything is sent: the
requests (one per order, carrying all its line items, in exactly the API's JSON shape),
the orders held back because a row of theirs is invalid, and the orders skipped because an
earlier run already applied them. A dry run is just the plan.

Grouping is vectorised (factorize + stable sort): no Python loop over ``groupby`` groups.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from spectrum_tools.cells import arrow_text, text_array, text_series
from spectrum_tools.columnar import group_codes, rows_where
from spectrum_tools.schema import (
    DETAILS,
    LINE_COUNT,
    LINE_ID,
    MISSING_IDS,
    OUTCOME,
    PAYLOAD,
    PO,
    PROBLEM,
    SOURCE_ROW,
    SOURCE_ROWS,
    STATUS,
    VALID,
    LineItem,
    Outcome,
    StatusUpdate,
)
from spectrum_tools.validation import is_validated, line_codes, validate_updates

__all__ = ["Plan", "Request", "plan_updates"]

_ORDER_COLUMNS = [PO, LINE_COUNT, SOURCE_ROWS]
_SET_ASIDE_COLUMNS = [PO, OUTCOME, LINE_COUNT, SOURCE_ROWS, DETAILS]


@dataclass(frozen=True)
class Request:
    """One ``PUT /api/order/status`` call: a purchase order and all its line items."""

    purchase_order: str
    line_items: tuple[LineItem, ...]
    source_rows: str

    @property
    def body(self) -> StatusUpdate:
        """The JSON body, exactly as the API documents it."""
        return {"purchaseOrderNumber": self.purchase_order, "lineItems": list(self.line_items)}

    @property
    def line_count(self) -> int:
        """How many line items the request carries."""
        return len(self.line_items)

    def without(self, ids: set[str]) -> Request:
        """The same request minus the given line-item ids (for a re-send without missing ids)."""
        kept = tuple(li for li in self.line_items if li["recipeSetReadableId"] not in ids)
        return replace(self, line_items=kept)


@dataclass(frozen=True)
class Plan:
    """The requests a run will send, and the orders it will not send, with reasons.

    Build one with :func:`plan_updates`. A plan is immutable and cheap to inspect.

    Attributes
    ----------
    rows
        The validated rows (the analyst's own rows, with ``valid`` and ``problem``).
    orders
        One row per request, in the order orders first appear in the sheet:
        ``purchaseOrderNumber``, ``line_count``, ``source_rows``.
    set_aside
        Orders that will not be sent: ``outcome`` is ``invalid`` (a row failed
        validation) or ``skipped`` (already applied), with ``details`` saying why.
    send_partial_orders
        Whether valid rows of orders with invalid rows are sent anyway.
    """

    rows: pd.DataFrame
    orders: pd.DataFrame
    set_aside: pd.DataFrame
    send_partial_orders: bool = False
    _id_text: np.ndarray | pa.Array | pa.ChunkedArray = field(
        repr=False, default_factory=lambda: np.empty(0, dtype=object)
    )
    _statuses: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0, dtype=object))
    _bounds: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(1, dtype=np.int64))

    @cached_property
    def _ids(self) -> np.ndarray:
        """Every line item's id, request after request, as a numpy object array: made from
        Arrow text on first use, so a plan only counted never makes a str per line item."""
        if isinstance(self._id_text, np.ndarray):
            return self._id_text
        ids: np.ndarray = self._id_text.to_numpy(zero_copy_only=False)
        return ids

    @classmethod
    def from_parts(
        cls,
        rows: pd.DataFrame,
        *,
        purchase_orders: Sequence[str],
        source_rows: Sequence[str],
        line_counts: Sequence[int] | np.ndarray,
        ids: Sequence[str],
        statuses: Sequence[str],
        set_aside: pd.DataFrame | None = None,
        send_partial_orders: bool = False,
    ) -> Plan:
        """Build a plan from its requests, given flat (the public way besides planning).

        The journal rebuilds a run's plan with it from what it recorded, without planning
        the rows again (a newer spectrum-tools could plan them differently).

        Parameters
        ----------
        rows
            The validated rows.
        purchase_orders, source_rows, line_counts
            One entry per request, in plan order.
        ids, statuses
            Every request's line items, request after request (``line_counts`` splits them).
        set_aside
            The orders not sent, with ``outcome`` and ``details`` (default: none).
        send_partial_orders
            Whether the plan sends the valid rows of orders with invalid rows.

        Examples
        --------
        >>> rows = pd.DataFrame({"purchaseOrderNumber": ["P1"], "valid": [True]})
        >>> plan = Plan.from_parts(rows, purchase_orders=["P1"], source_rows=["2"],
        ...     line_counts=[1], ids=["AAAA1111"], statuses=["completed"])
        >>> plan.request(0).body
        {'purchaseOrderNumber': 'P1', 'lineItems': [{'recipeSetReadableId': 'AAAA1111', 'workflowStatus': 'completed'}]}
        """  # noqa: E501
        sizes = np.asarray(line_counts, dtype=np.int64)
        if set_aside is None:
            set_aside = pd.DataFrame({c: pd.Series(dtype=object) for c in _SET_ASIDE_COLUMNS})
        return cls(
            rows=rows,
            orders=pd.DataFrame(
                {
                    PO: pd.Series(list(purchase_orders), dtype=object),
                    LINE_COUNT: sizes,
                    SOURCE_ROWS: pd.Series(list(source_rows), dtype=object),
                }
            ),
            set_aside=set_aside,
            send_partial_orders=send_partial_orders,
            _id_text=np.array(list(ids), dtype=object),
            _statuses=np.array(list(statuses), dtype=object),
            _bounds=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        )

    def only(self, purchase_orders: Iterable[str]) -> Plan:
        """A plan holding only the given orders' requests and rows, nothing set aside.

        Resume and retry send such a part of a recorded plan.
        """
        wanted = set(purchase_orders)
        picked = [r for r in self.requests() if r.purchase_order in wanted]
        items = [li for r in picked for li in r.line_items]
        return Plan.from_parts(
            self.rows.loc[self.rows[PO].isin(wanted)].reset_index(drop=True),
            purchase_orders=[r.purchase_order for r in picked],
            source_rows=[r.source_rows for r in picked],
            line_counts=[r.line_count for r in picked],
            ids=[li["recipeSetReadableId"] for li in items],
            statuses=[li["workflowStatus"] for li in items],
            set_aside=self.set_aside.iloc[0:0].copy(),
            send_partial_orders=self.send_partial_orders,
        )

    @property
    def request_count(self) -> int:
        """How many HTTP requests sending this plan takes (one per order)."""
        return len(self.orders)

    def __len__(self) -> int:
        return self.request_count

    def __repr__(self) -> str:
        held = (self.set_aside[OUTCOME] == Outcome.INVALID).sum()
        skipped = (self.set_aside[OUTCOME] == Outcome.SKIPPED).sum()
        return (
            f"<Plan: {self.request_count} requests for {len(self.rows)} rows; "
            f"{held} orders held back as invalid, {skipped} skipped>"
        )

    def request(self, index: int) -> Request:
        """The ``index``-th request of the plan."""
        start, stop = int(self._bounds[index]), int(self._bounds[index + 1])
        items = tuple(
            LineItem(recipeSetReadableId=i, workflowStatus=s)
            for i, s in zip(self._ids[start:stop], self._statuses[start:stop], strict=True)
        )
        return Request(
            purchase_order=str(self.orders[PO].iat[index]),
            line_items=items,
            source_rows=str(self.orders[SOURCE_ROWS].iat[index]),
        )

    def requests(self) -> Iterator[Request]:
        """Every request, in plan order (built lazily: a million rows cost nothing up front)."""
        # The same requests as request(i), from plain lists rather than a pandas lookup and
        # numpy slices per request (8x faster: 0.55 s for 237k requests).
        orders = self.orders[PO].tolist()
        source_rows = self.orders[SOURCE_ROWS].tolist()
        bounds = self._bounds.tolist()
        ids, statuses = self._ids.tolist(), self._statuses.tolist()
        for index in range(self.request_count):
            start, stop = bounds[index], bounds[index + 1]
            items = [
                LineItem(recipeSetReadableId=i, workflowStatus=s)
                for i, s in zip(ids[start:stop], statuses[start:stop], strict=True)
            ]
            yield Request(
                purchase_order=str(orders[index]),
                line_items=tuple(items),
                source_rows=str(source_rows[index]),
            )

    def preview(self, limit: int | None = None) -> pd.DataFrame:
        """One row per request with its JSON ``payload``, for eyes and notebooks.

        Examples
        --------
        >>> rows = pd.DataFrame({"purchaseOrderNumber": ["P1", "P1"],
        ...     "recipeSetReadableId": ["AAAA1111", "BBBB2222"],
        ...     "workflowStatus": ["completed", "on hold"]})
        >>> plan_updates(rows).preview().loc[0, "payload"]
        '{"purchaseOrderNumber": "P1", "lineItems": [{"recipeSetReadableId": "AAAA1111", "workflowStatus": "completed"}, {"recipeSetReadableId": "BBBB2222", "workflowStatus": "on-hold"}]}'
        """  # noqa: E501
        count = self.request_count if limit is None else min(limit, self.request_count)
        out = self.orders.head(count).copy()
        out[PAYLOAD] = [json.dumps(r.body) for r in itertools.islice(self.requests(), count)]
        return out.reset_index(drop=True)

    def summary(self) -> dict[str, int]:
        """Counts for a one-screen summary: rows, valid/invalid rows, orders, requests."""
        valid = int(self.rows[VALID].sum()) if len(self.rows) else 0
        outcome = self.set_aside[OUTCOME]
        return {
            "rows": len(self.rows),
            "valid_rows": valid,
            "invalid_rows": len(self.rows) - valid,
            "orders": self.request_count + len(self.set_aside),
            "orders_held_invalid": int((outcome == Outcome.INVALID).sum()),
            "orders_skipped": int((outcome == Outcome.SKIPPED).sum()),
            "requests": self.request_count,
        }

    def skip(self, details: Mapping[str, str]) -> Plan:
        """A new plan without the given orders, which are set aside as ``skipped``.

        Parameters
        ----------
        details
            Purchase order -> why it is skipped (e.g. "already applied by run 12").
        """
        return self.set_aside_orders(details, Outcome.SKIPPED)

    def set_aside_orders(
        self,
        details: Mapping[str, str],
        outcome: Outcome,
        *,
        missing_ids: Mapping[str, Sequence[str]] | None = None,
    ) -> Plan:
        """A new plan without the given orders, set aside with ``outcome`` and ``details``.

        Parameters
        ----------
        details
            Purchase order -> why it is not sent. Orders not in the plan are ignored.
        outcome
            Their final outcome (``skipped``, ``unchanged``, ``not_found``...).
        missing_ids
            Purchase order -> line-item ids Spectrum does not have, when known.
        """
        keep = ~self.orders[PO].isin(list(details)).to_numpy()
        if keep.all():
            return self
        gone = self.orders.loc[~keep].copy()
        gone[OUTCOME] = outcome.value
        gone[DETAILS] = gone[PO].map(details)
        columns = list(_SET_ASIDE_COLUMNS)
        if missing_ids:
            gone[MISSING_IDS] = gone[PO].map(lambda po: ",".join(missing_ids.get(po, ())))
            columns.append(MISSING_IDS)
        sizes = np.diff(self._bounds)
        kept_lines = np.repeat(keep, sizes)
        bounds = np.concatenate([[0], np.cumsum(sizes[keep])]).astype(np.int64)
        return replace(
            self,
            orders=self.orders.loc[keep].reset_index(drop=True),
            set_aside=pd.concat([self.set_aside, gone[columns]], ignore_index=True),
            _id_text=self._ids[kept_lines],
            _statuses=self._statuses[kept_lines],
            _bounds=bounds,
        )

    def keep_lines(self, keep: Mapping[str, Collection[str]]) -> Plan:
        """A new plan whose given orders send only the given line items.

        Parameters
        ----------
        keep
            Purchase order -> the line-item ids it still sends. Orders not named keep all
            their line items; an order left with none must be set aside first.

        Examples
        --------
        >>> rows = pd.DataFrame({"purchaseOrderNumber": ["P1", "P1"],
        ...     "recipeSetReadableId": ["AAAA1111", "BBBB2222"],
        ...     "workflowStatus": ["completed", "on hold"]})
        >>> plan = plan_updates(rows).keep_lines({"P1": {"BBBB2222"}})
        >>> plan.request(0).body["lineItems"], plan.orders["line_count"].tolist()
        ([{'recipeSetReadableId': 'BBBB2222', 'workflowStatus': 'on-hold'}], [1])
        """
        if not keep:
            return self
        sizes = np.diff(self._bounds)
        owner = np.repeat(self.orders[PO].to_numpy(object), sizes)
        wanted = {(po, i) for po, ids in keep.items() for i in ids}
        named = np.isin(owner, list(keep))
        kept = ~named | np.fromiter(
            ((po, i) in wanted for po, i in zip(owner, self._ids, strict=True)),
            dtype=bool,
            count=len(owner),
        )
        counts = np.add.reduceat(kept.astype(np.int64), self._bounds[:-1]) if len(kept) else sizes
        if (counts == 0).any():
            empty = self.orders[PO].to_numpy(object)[counts == 0]
            raise ValueError(f"orders left with no line items: {', '.join(map(str, empty[:5]))}")
        orders = self.orders.copy()
        orders[LINE_COUNT] = counts
        return replace(
            self,
            orders=orders,
            _id_text=self._ids[kept],
            _statuses=self._statuses[kept],
            _bounds=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        )

    def line_items(self) -> pd.DataFrame:
        """Every line item the plan sends, request after request.

        Returns
        -------
        pandas.DataFrame
            ``purchaseOrderNumber``, ``recipeSetReadableId``, ``workflowStatus`` (the
            API spelling) and ``source_rows`` of its order.
        """
        sizes = np.diff(self._bounds)
        return pd.DataFrame(
            {
                PO: np.repeat(self.orders[PO].to_numpy(object), sizes),
                LINE_ID: self._ids,
                STATUS: self._statuses,
                SOURCE_ROWS: np.repeat(self.orders[SOURCE_ROWS].to_numpy(object), sizes),
            }
        )


def plan_updates(rows: pd.DataFrame, *, send_partial_orders: bool = False) -> Plan:
    """Turn update rows into one request per purchase order.

    Parameters
    ----------
    rows
        Rows from :func:`spectrum_tools.read_updates`, or what
        :func:`spectrum_tools.validate_updates` returned for them in this process. Any
        other rows are validated here first: a ``valid`` column that came with the input
        (a file ``validate -o`` wrote, a hand-made frame) is never trusted.
    send_partial_orders
        By default an order with any invalid row is held back whole, so a sheet is never
        half-applied. When True, the valid rows of such orders are sent anyway.

    Returns
    -------
    Plan
        The requests, in the order their purchase orders first appear, each carrying all
        the order's distinct valid line items; plus the orders set aside with reasons.

    Examples
    --------
    >>> rows = pd.DataFrame({"purchaseOrderNumber": ["P1", "P2", "P1", "P3"],
    ...     "recipeSetReadableId": ["AAAA1111", "CCCC3333", "BBBB2222", ""],
    ...     "workflowStatus": ["completed", "in progress", "on hold", "approved"]})
    >>> plan = plan_updates(rows)
    >>> plan.orders.to_dict("records")
    [{'purchaseOrderNumber': 'P1', 'line_count': 2, 'source_rows': '2,4'}, {'purchaseOrderNumber': 'P2', 'line_count': 1, 'source_rows': '3'}]
    >>> plan.set_aside.loc[0, ["purchaseOrderNumber", "outcome", "details"]].tolist()
    ['P3', 'invalid', 'row 5: blank recipeSetReadableId']
    """  # noqa: E501
    validated = rows if is_validated(rows) else validate_updates(rows)
    valid = validated[VALID].to_numpy(bool)
    # Orders by integer code (numbered by first appearance): no per-row Python work.
    po_codes, po_names = pd.factorize(validated[PO])
    bad_order = np.zeros(len(po_names), dtype=bool)
    bad_order[po_codes[~valid]] = True
    in_bad_order = bad_order[po_codes]
    sendable = valid & (validated[PO] != "").to_numpy(bool)
    if not send_partial_orders:
        sendable &= ~in_bad_order

    # Orders set aside as invalid: every row of an order with an invalid row (or, with
    # send_partial_orders, orders none of whose rows is sendable).
    if send_partial_orders:
        sent_order = np.zeros(len(po_names), dtype=bool)
        sent_order[po_codes[sendable]] = True
        held_mask = in_bad_order & ~sent_order[po_codes]
        partial_mask = in_bad_order & ~held_mask & ~valid
    else:
        held_mask = in_bad_order
        partial_mask = np.zeros(len(po_codes), dtype=bool)
    reported = held_mask | partial_mask
    held_rows = rows_where(validated[[PO, SOURCE_ROW, VALID, PROBLEM]], reported)
    set_aside = _held_orders(held_rows, partial_mask[reported])

    # Sendable line items, duplicates folded into their first row, grouped by order.
    take = pa.array(np.flatnonzero(sendable))
    ids = arrow_text(validated[LINE_ID]).take(take)
    codes, order_po = pd.factorize(po_codes[sendable])  # orders in sheet order
    n_orders = len(order_po)
    lines = line_codes(validated)[sendable]
    if (lines < 0).any():  # a row marked valid by hand despite a blank key
        lines = group_codes(arrow_text(validated[PO]).take(take), ids)
    line = pd.factorize(lines)[0]  # numbered in sheet order
    first = line > np.maximum.accumulate(np.concatenate([[-1], line[:-1]]))
    order = np.argsort(codes, kind="stable")
    all_rows = _join_groups(
        codes, validated[SOURCE_ROW].to_numpy()[sendable], n_orders, order=order
    )

    kept = order[first[order]]
    line_counts = np.bincount(codes[kept], minlength=n_orders)
    bounds = np.concatenate([[0], np.cumsum(line_counts)]).astype(np.int64)
    index = pd.RangeIndex(n_orders)
    orders = pd.DataFrame(
        {
            PO: text_series(text_array(pd.Series(po_names)).take(pa.array(order_po)), index),
            LINE_COUNT: line_counts,
            SOURCE_ROWS: text_series(all_rows, index),
        },
        index=index,
    )
    kept_at = pa.array(kept)
    return Plan(
        rows=validated,
        orders=orders[_ORDER_COLUMNS],
        set_aside=set_aside,
        send_partial_orders=send_partial_orders,
        _id_text=ids.take(kept_at),
        _statuses=_shared_text(arrow_text(validated[STATUS]))[sendable][kept],
        _bounds=bounds,
    )


def _shared_text(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Arrow text as a numpy object array holding one str object per distinct value (a
    column of a few statuses, not a million separate copies of them)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    encoded = pc.dictionary_encode(values)
    texts = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
    shared: np.ndarray = texts[encoded.indices.to_numpy(zero_copy_only=False)]
    return shared


def _join_groups(
    codes: np.ndarray,
    values: np.ndarray,
    groups: int,
    sep: str = ",",
    *,
    order: np.ndarray | None = None,
) -> pa.Array:
    """Join ``values`` per group code (first-seen order kept within each group), in Arrow.

    ``order``: ``np.argsort(codes, kind="stable")``, when the caller has it already.
    """
    if order is None:
        order = np.argsort(codes, kind="stable")
    text = pc.cast(pa.array(values[order]), pa.large_string())
    offsets = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=groups))])
    lists = pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), text)
    return pc.binary_join(lists, pa.scalar(sep, pa.large_string()))


def _held_orders(rows: pd.DataFrame, partial: np.ndarray) -> pd.DataFrame:
    """Orders not sent because of invalid rows, with the row problems as details.

    ``partial`` marks invalid rows of orders whose valid rows are sent anyway
    (``send_partial_orders``): they are reported, but their order is not set aside.
    """
    held = rows.loc[~partial]
    if held.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in _SET_ASIDE_COLUMNS})
    codes, uniques = pd.factorize(held[PO].to_numpy(dtype=object))
    n = len(uniques)
    all_rows = _join_groups(codes, held[SOURCE_ROW].to_numpy(), n).to_pylist()
    bad = ~held[VALID].to_numpy(bool)
    # A conflict's text already names all its rows: say it once per order, not per row.
    notes = pd.DataFrame(
        {
            "code": codes[bad],
            "note": [
                p if p.startswith("conflicting statuses") else f"row {r}: {p}"
                for r, p in zip(
                    held[SOURCE_ROW][bad].tolist(), held[PROBLEM][bad].tolist(), strict=True
                )
            ],
        }
    ).drop_duplicates()
    details = _join_groups(
        notes["code"].to_numpy(), notes["note"].to_numpy(dtype=object), n, sep="; "
    ).to_pylist()
    return pd.DataFrame(
        {
            PO: pd.Series(uniques, dtype=object),
            OUTCOME: Outcome.INVALID.value,
            LINE_COUNT: np.bincount(codes, minlength=n),
            SOURCE_ROWS: all_rows,
            DETAILS: details,
        }
    )[_SET_ASIDE_COLUMNS]
