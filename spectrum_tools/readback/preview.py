"""See before you write: what a plan would change in Spectrum, and the plan that does only that.

I/O: the network, through :func:`~spectrum_tools.readback.reader.read_orders` (reads only:
no status is ever sent from here).

:func:`preview_plan` reads the current state of a plan's orders and returns a
:class:`Preview`: per line item current -> wanted, per order what will happen (``send``,
``unchanged``, ``not_found``, and the plan's own ``invalid`` / ``skipped``), counts, the
request count and ETA of what will really be sent, and :attr:`Preview.plan`, the narrowed
plan that sends only line items that change. Sending that exact plan is the façade's job
(:func:`spectrum_tools.runs.send_plan`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

import pandas as pd

from spectrum_tools.client import SpectrumClient
from spectrum_tools.engine import SendOptions
from spectrum_tools.planning import Plan
from spectrum_tools.readback.answers import OrderState
from spectrum_tools.readback.changes import (
    CHANGE,
    CURRENT_STATUS,
    DECISION,
    LEAVES_FINAL,
    READ_AT,
    READ_NOTE,
    READ_VIA,
    SEEN,
    SEND_IDS,
    WANTED_STATUS,
    Change,
    Decision,
    Seen,
    current_frame,
    line_changes,
    order_decisions,
)
from spectrum_tools.readback.reader import Reading, read_orders
from spectrum_tools.results import RunStop
from spectrum_tools.schema import (
    DETAILS,
    LINE_COUNT,
    LINE_ID,
    MISSING_IDS,
    OUTCOME,
    PO,
    SOURCE_ROWS,
    Outcome,
)

__all__ = ["LINE_COLUMNS", "ORDER_COLUMNS", "SEND_COUNT", "Preview", "preview_plan"]

SEND_COUNT: Final = "send_count"
LINE_COLUMNS: Final = (
    PO,
    LINE_ID,
    CURRENT_STATUS,
    WANTED_STATUS,
    CHANGE,
    LEAVES_FINAL,
    DECISION,
    SEEN,
    READ_AT,
    READ_VIA,
    READ_NOTE,
    SOURCE_ROWS,
)
"""The columns of :attr:`Preview.lines`, in this order."""
ORDER_COLUMNS: Final = (PO, DECISION, LINE_COUNT, SEND_COUNT, MISSING_IDS, DETAILS, SOURCE_ROWS)
"""The columns of :attr:`Preview.orders`, in this order."""


@dataclass(frozen=True)
class Preview:
    """What sending a plan would change, read from Spectrum just now.

    Attributes
    ----------
    plan
        The plan to send: only orders with something to change, each with only the line
        items that change; orders already set are set aside as ``unchanged``, orders
        Spectrum would refuse whole as ``not_found``.
    lines
        One row per line item of the original plan (:data:`LINE_COLUMNS`): current ->
        wanted, ``change`` (``change``, ``already_set``, ``unknown``,
        ``not_in_spectrum``), ``leaves_final`` (out of ``delivered``/``cancelled``),
        and its order's ``decision``.
    orders
        One row per order of the sheet (:data:`ORDER_COLUMNS`), set-aside ones included:
        ``decision`` is ``send``, ``unchanged``, ``not_found``, ``invalid`` or ``skipped``.
    options
        The pace the ETA assumes.
    read_back
        Whether Spectrum was read (False: nothing is known about current statuses).
    statuses_shown
        False when Spectrum's answers carried no statuses (the degraded path).
    searches, gets
        Read requests made.
    notes
        What the analyst should hear once, in plain words.
    stopped
        Why the read stopped early, or None.
    missing
        Purchase order -> line items left out because Spectrum does not have them (the
        order ends ``partial`` when the rest goes through).
    """

    plan: Plan
    lines: pd.DataFrame
    orders: pd.DataFrame
    options: SendOptions
    read_back: bool
    statuses_shown: bool | None = None
    searches: int = 0
    gets: int = 0
    notes: tuple[str, ...] = ()
    stopped: RunStop | None = None
    missing: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        """Status requests sending :attr:`plan` takes (one per order, before retries)."""
        return self.plan.request_count

    @property
    def eta_s(self) -> float:
        """Seconds sending :attr:`plan` takes at :attr:`options`' pace."""
        return self.options.eta_seconds(self.requests)

    @property
    def counts(self) -> dict[str, int]:
        """Line-item and order counts for a one-screen summary."""
        change = self.lines[CHANGE].value_counts()
        decision = self.orders[DECISION].value_counts()
        out = {f"lines_{c.value}": int(change.get(c.value, 0)) for c in Change}
        out["lines_leaving_final"] = int(self.lines[LEAVES_FINAL].sum())
        for d in ("send", "unchanged", "not_found", "invalid", "skipped"):
            out[f"orders_{d}"] = int(decision.get(d, 0))
        out["requests"] = self.requests
        return out

    def transitions(self) -> pd.DataFrame:
        """How many line items go from each current status to each wanted one.

        Returns
        -------
        pandas.DataFrame
            ``current_status`` ("unknown" when not known), ``wanted_status``, ``count``,
            ``leaves_final``; line items that change or whose status is unknown only.
        """
        moving = self.lines[self.lines[CHANGE].isin([Change.CHANGE.value, Change.UNKNOWN.value])]
        current = moving[CURRENT_STATUS].where(moving[CURRENT_STATUS] != "", "unknown")
        table = (
            pd.DataFrame(
                {
                    CURRENT_STATUS: current,
                    WANTED_STATUS: moving[WANTED_STATUS],
                    LEAVES_FINAL: moving[LEAVES_FINAL],
                }
            )
            .groupby([CURRENT_STATUS, WANTED_STATUS], sort=True)
            .agg(count=(LEAVES_FINAL, "size"), leaves_final=(LEAVES_FINAL, "any"))
            .reset_index()
        )
        return table.sort_values("count", ascending=False, kind="stable").reset_index(drop=True)

    def before_images(self) -> pd.DataFrame:
        """Each line item's status before the run, when it was read and how.

        Returns
        -------
        pandas.DataFrame
            ``purchaseOrderNumber``, ``recipeSetReadableId``, ``current_status`` (empty:
            unknown), ``read_at``, ``read_via`` of the line items :attr:`plan` sends.
        """
        sent = self.lines[self.lines[DECISION] == Decision.SEND.value]
        sent = sent[sent[CHANGE].isin([Change.CHANGE.value, Change.UNKNOWN.value])]
        return sent[[PO, LINE_ID, CURRENT_STATUS, READ_AT, READ_VIA]].reset_index(drop=True)


def preview_plan(
    plan: Plan,
    client: SpectrumClient,
    options: SendOptions | None = None,
    *,
    read_back: bool = True,
    progress: bool = False,
    stop: threading.Event | None = None,
) -> Preview:
    """Read what Spectrum holds for ``plan``'s orders and decide what to send.

    Parameters
    ----------
    plan
        The plan (orders already set aside by it stay aside).
    client
        The environment to read.
    options
        Pace and retries of the reads, and the pace the ETA assumes;
        ``retry_without_missing`` decides whether an order with line items Spectrum does
        not have is sent without them (else it is ``not_found`` without a request).
    read_back
        False reads nothing: every order is sent whole, as planned.
    progress, stop
        Progress bars; an event to stop reading.

    Returns
    -------
    Preview

    Examples
    --------
    >>> from spectrum_tools.planning import plan_updates
    >>> from spectrum_tools.sandbox import SandboxServer, SandboxSettings
    >>> rows = pd.DataFrame({"PO": ["HA-US-DEV00011101", "HA-US-DEV00011101"],
    ...     "Recipe Set ID": ["TEBMKVGB", "LKIHFPB5"], "Status": ["Not Started", "completed"]})
    >>> from spectrum_tools.sheets import read_updates
    >>> plan = plan_updates(read_updates(rows))
    >>> with SandboxServer(settings=SandboxSettings(rate_limit=None)) as sandbox:
    ...     client = SpectrumClient(sandbox.base_url, token=sandbox.token)
    ...     preview = preview_plan(plan, client)
    >>> preview.lines[["current_status", "wanted_status", "change"]].values.tolist()
    [['not-started', 'not-started', 'already_set'], ['not-started', 'completed', 'change']]
    >>> preview.plan.request(0).body["lineItems"]
    [{'recipeSetReadableId': 'LKIHFPB5', 'workflowStatus': 'completed'}]
    """
    opts = options or SendOptions()
    wanted = plan.line_items()
    if read_back and len(wanted):
        reading = read_orders(
            wanted[PO].tolist(), client, options=opts, progress=progress, stop=stop
        )
    else:
        reading = Reading(states={})
    states: Mapping[str, OrderState] = reading.states
    current = current_frame(wanted, states) if read_back else _not_read(wanted)
    changes = line_changes(wanted, current)
    decisions = order_decisions(changes, retry_without_missing=opts.retry_without_missing)
    by_order = decisions.set_index(PO)
    lines = changes.copy()
    lines[DECISION] = changes[PO].map(by_order[DECISION])
    lines[SOURCE_ROWS] = wanted[SOURCE_ROWS].to_numpy(object)
    lines = lines[list(LINE_COLUMNS)]
    narrowed = _narrow(plan, decisions)
    missing = {
        str(po): tuple(ids)
        for po, decision, ids in zip(
            decisions[PO], decisions[DECISION], decisions[MISSING_IDS], strict=True
        )
        if decision == Decision.SEND.value and ids
    }
    return Preview(
        plan=narrowed,
        lines=lines.reset_index(drop=True),
        orders=_orders(plan, decisions),
        options=opts,
        read_back=read_back,
        statuses_shown=reading.statuses_shown,
        searches=reading.searches,
        gets=reading.gets,
        notes=reading.notes,
        stopped=reading.stopped,
        missing=missing,
    )


def _not_read(wanted: pd.DataFrame) -> pd.DataFrame:
    frame = current_frame(wanted, {})
    frame[SEEN] = Seen.UNREAD.value
    frame[READ_NOTE] = "not read (read-back off)"
    return frame


def _narrow(plan: Plan, decisions: pd.DataFrame) -> Plan:
    """The plan that sends only what changes (pure)."""
    kind = decisions[DECISION]
    details = dict(zip(decisions[PO], decisions[DETAILS], strict=True))
    unchanged = {po: details[po] for po in decisions.loc[kind == Decision.UNCHANGED, PO]}
    refused = decisions.loc[kind == Decision.NOT_FOUND]
    narrowed = plan.set_aside_orders(unchanged, Outcome.UNCHANGED)
    narrowed = narrowed.set_aside_orders(
        {po: details[po] for po in refused[PO]},
        Outcome.NOT_FOUND,
        missing_ids=dict(zip(refused[PO], refused[MISSING_IDS], strict=True)),
    )
    sending = decisions.loc[kind == Decision.SEND]
    return narrowed.keep_lines(dict(zip(sending[PO], sending[SEND_IDS], strict=True)))


def _orders(plan: Plan, decisions: pd.DataFrame) -> pd.DataFrame:
    """One row per order of the sheet: the read's decisions, then what the plan set aside."""
    counts = plan.orders.set_index(PO)
    sent = pd.DataFrame(
        {
            PO: decisions[PO],
            DECISION: decisions[DECISION],
            LINE_COUNT: decisions[PO].map(counts[LINE_COUNT]).astype("int64"),
            SEND_COUNT: decisions[SEND_IDS].map(len).astype("int64"),
            MISSING_IDS: decisions[MISSING_IDS].map(",".join),
            DETAILS: decisions[DETAILS],
            SOURCE_ROWS: decisions[PO].map(counts[SOURCE_ROWS]),
        }
    )
    aside = plan.set_aside
    held = pd.DataFrame(
        {
            PO: aside[PO],
            DECISION: aside[OUTCOME],
            LINE_COUNT: aside[LINE_COUNT].astype("int64"),
            SEND_COUNT: 0,
            MISSING_IDS: "",
            DETAILS: aside[DETAILS],
            SOURCE_ROWS: aside[SOURCE_ROWS],
        }
    )
    frames = [f for f in (sent, held) if len(f)]
    out = pd.concat(frames, ignore_index=True) if frames else sent
    first = pd.to_numeric(out[SOURCE_ROWS].astype(str).str.split(",").str[0], errors="coerce")
    return out.iloc[first.fillna(0).argsort(kind="stable")][list(ORDER_COLUMNS)].reset_index(
        drop=True
    )
