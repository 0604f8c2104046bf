"""What not to send: line items earlier runs already applied (skip), and line items later
runs have set since a run (superseded).

I/O: reads the run journal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from spectrum_tools.journal import Journal, RunRecord
from spectrum_tools.planning import Plan
from spectrum_tools.results import OrderResult
from spectrum_tools.schema import LINE_ID, PO, STATUS, Outcome

__all__ = [
    "Superseded",
    "skip_applied",
]

# --------------------------------------------------------------------------- skip rules


def skip_applied(
    plan: Plan,
    environment: str,
    *,
    runs_dir: str | Path | None = None,
    journal: Journal | None = None,
) -> Plan:
    """Set aside as ``skipped`` the orders whose line items are all already applied there.

    An order with at least one line item not known to be applied is kept whole (the
    whole order is re-sent: a status PUT is idempotent).

    Parameters
    ----------
    plan
        The plan about to be sent.
    environment
        The environment key (``client.environment_key``): only runs to that very
        environment count, so ``https://gw/staging`` never skips for ``https://gw/prod``.
    runs_dir, journal
        Where past runs are: an open journal, or a runs folder (nothing is created when
        it has no journal yet).

    Returns
    -------
    Plan
        The plan without the skipped orders; they are in ``set_aside`` with ``details``
        naming the run(s): "already applied by run 7".
    """
    if journal is None:
        if not Journal.location(runs_dir).is_file():
            return plan
        with Journal(runs_dir) as opened:
            return skip_applied(plan, environment, journal=opened)
    if plan.request_count == 0:
        return plan
    applied = journal.applied(environment)
    if applied.empty:
        return plan
    wanted = pd.DataFrame(
        [
            (r.purchase_order, li["recipeSetReadableId"], li["workflowStatus"])
            for r in plan.requests()
            for li in r.line_items
        ],
        columns=[PO, LINE_ID, STATUS],
    )
    merged = wanted.merge(applied, on=[PO, LINE_ID, STATUS], how="left")
    done = merged.groupby(PO, sort=False)["run_id"].agg(["count", "size"])
    complete = done.index[done["count"] == done["size"]]
    if complete.empty:
        return plan
    by = merged.loc[merged[PO].isin(complete)].groupby(PO, sort=False)["run_id"]
    details = {str(po): _applied_text(sorted({int(r) for r in runs})) for po, runs in by}
    return plan.skip(details)


def _applied_text(runs: Sequence[int]) -> str:
    if len(runs) == 1:
        return f"already applied by run {runs[0]}"
    return "already applied by runs " + ", ".join(str(r) for r in runs)


# --------------------------------------------------------------------------- superseded


@dataclass(frozen=True)
class Superseded:
    """What a resume or retry of a run must not send: line items later runs set since.

    ``skipped``: order -> "superseded by run N" (nothing left to send); ``left_out``:
    order -> the line items taken out of an order that is still sent; ``notes``: order ->
    the text its result's details get.
    """

    skipped: dict[str, str]
    left_out: dict[str, tuple[str, ...]]
    notes: dict[str, str]

    @classmethod
    def of(
        cls, journal: Journal, record: RunRecord, plan: Plan, environment: str, *, force: bool
    ) -> Superseded:
        if force or plan.request_count == 0:
            return cls({}, {}, {})
        later = journal.touched_after(record.run_id, environment)
        if later.empty:
            return cls({}, {}, {})
        by_item = {
            (str(po), str(li)): int(run)
            for po, li, run in later[[PO, LINE_ID, "run_id"]].itertuples(index=False)
        }
        skipped: dict[str, str] = {}
        left_out: dict[str, tuple[str, ...]] = {}
        notes: dict[str, str] = {}
        for request in plan.requests():
            po = request.purchase_order
            hits = {
                li["recipeSetReadableId"]: by_item[(po, li["recipeSetReadableId"])]
                for li in request.line_items
                if (po, li["recipeSetReadableId"]) in by_item
            }
            if not hits:
                continue
            runs = _runs_text(sorted(set(hits.values())))
            left_out[po] = tuple(hits)
            if len(hits) == request.line_count:
                skipped[po] = f"superseded by {runs}: not sent again (--force sends it)"
            else:
                notes[po] = f" Superseded by {runs}, not sent again: {_clipped_ids(tuple(hits))}."
        return cls(skipped, left_out, notes)

    def apply(self, plan: Plan) -> Plan:
        """``plan`` without the superseded line items and orders (a resume's part)."""
        if not self.left_out:
            return plan
        kept = [
            r.without(set(self.left_out.get(r.purchase_order, ())))
            for r in plan.requests()
            if r.purchase_order not in self.skipped
        ]
        items = [li for r in kept for li in r.line_items]
        return Plan.from_parts(
            plan.rows,
            purchase_orders=[r.purchase_order for r in kept],
            source_rows=[r.source_rows for r in kept],
            line_counts=[r.line_count for r in kept],
            ids=[li["recipeSetReadableId"] for li in items],
            statuses=[li["workflowStatus"] for li in items],
            set_aside=plan.set_aside,
            send_partial_orders=plan.send_partial_orders,
        )

    def skipped_results(self, plan: Plan) -> list[OrderResult]:
        """The ``skipped`` results of the orders left with nothing to send."""
        return [
            OrderResult.unsent(r, Outcome.SKIPPED, self.skipped[r.purchase_order])
            for r in plan.requests()
            if r.purchase_order in self.skipped
        ]


def _runs_text(runs: Sequence[int]) -> str:
    return f"run {runs[0]}" if len(runs) == 1 else "runs " + ", ".join(str(r) for r in runs)


def _clipped_ids(ids: tuple[str, ...], limit: int = 20) -> str:
    shown = ", ".join(ids[:limit])
    return shown if len(ids) <= limit else f"{shown} and {len(ids) - limit} more"
