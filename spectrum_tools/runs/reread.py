"""Read again before re-sending: resume, retry and undo never overwrite someone else's change.

I/O: the network (reads only, through :func:`~spectrum_tools.readback.preview.preview_plan`).

:func:`reread` reads the current state of the orders a resume, retry or undo is about to
send, narrows the plan as any send does (line items already set are not sent; an order
with nothing to change is ``unchanged``), and leaves alone every line item whose current
status is none of the statuses the run could have left there
(:func:`~spectrum_tools.readback.guard.changed_since`), unless ``force``.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import pandas as pd

from spectrum_tools.client import SpectrumClient
from spectrum_tools.engine import SendOptions
from spectrum_tools.planning import Plan
from spectrum_tools.readback.guard import changed_since
from spectrum_tools.readback.preview import Preview, preview_plan
from spectrum_tools.results import OrderResult
from spectrum_tools.schema import DETAILS, LINE_ID, OUTCOME, PO, Outcome

__all__ = ["Reread", "reread"]


@dataclass(frozen=True)
class Reread:
    """A plan re-read and narrowed before it is sent again.

    Attributes
    ----------
    plan
        What to send: only line items that change and nobody changed since.
    preview
        The read (current -> wanted per line item).
    left_alone
        The line items left alone: ``purchaseOrderNumber, recipeSetReadableId,
        current_status, details`` ("changed since run 7: now cancelled").
    notes
        Order -> text for its result's details, naming what was left alone.
    """

    plan: Plan
    preview: Preview
    left_alone: pd.DataFrame
    notes: Mapping[str, str]

    def set_aside_results(self, before: Plan) -> list[OrderResult]:
        """Results for the orders of ``before`` that the re-read set aside (for a resume,
        which records them itself: a new run records its set-aside orders when it starts)."""
        aside = self.plan.set_aside.set_index(PO)
        known = set(before.set_aside[PO])
        return [
            OrderResult.unsent(r, Outcome(str(aside.at[po, OUTCOME])), str(aside.at[po, DETAILS]))
            for r in before.requests()
            if (po := r.purchase_order) in aside.index and po not in known
        ]


def reread(
    plan: Plan,
    client: SpectrumClient,
    options: SendOptions,
    *,
    run_id: int,
    expected: Mapping[tuple[str, str], Collection[str]],
    force: bool = False,
    progress: bool = False,
    stop: threading.Event | None = None,
) -> Reread:
    """Read ``plan``'s orders again and take out what must not be sent.

    Parameters
    ----------
    plan
        What a resume, retry or undo would send.
    client, options
        The environment; the pace of the reads (and ``retry_without_missing``).
    run_id
        The run being resumed, retried or undone (for the words).
    expected
        (purchase order, line item) -> the statuses the run could have left there; a
        line item holding anything else was changed by someone else since.
    force
        Send such line items all the same.
    progress, stop
        Progress bars; an event to stop reading.

    Returns
    -------
    Reread
    """
    preview = preview_plan(plan, client, options, progress=progress, stop=stop)
    changed = changed_since(preview.lines, expected, run_id=run_id)
    if force or changed.empty:
        return Reread(preview.plan, preview, changed.iloc[0:0], {})
    narrowed = preview.plan
    sending = set(narrowed.orders[PO])
    changed = changed[changed[PO].isin(sending)].reset_index(drop=True)
    by_order = changed.groupby(PO, sort=False)
    whole: dict[str, str] = {}
    keep: dict[str, set[str]] = {}
    notes: dict[str, str] = {}
    counts = dict(zip(narrowed.orders[PO], narrowed.orders["line_count"], strict=True))
    sent_ids = narrowed.line_items().groupby(PO, sort=False)[LINE_ID].agg(set)
    for po, group in by_order:
        said = [f"{i}: {d}" for i, d in zip(group[LINE_ID], group[DETAILS], strict=True)]
        texts = "; ".join(said[:5]) + (f"; and {len(said) - 5} more" if len(said) > 5 else "")
        if len(group) >= counts[po]:
            whole[str(po)] = f"left alone, {texts}"
        else:
            keep[str(po)] = set(sent_ids[po]) - set(group[LINE_ID])
            notes[str(po)] = f" Left alone, {texts}."
    narrowed = narrowed.set_aside_orders(whole, Outcome.SKIPPED).keep_lines(keep)
    return Reread(narrowed, preview, changed, notes)
