"""Face 4: read-back. Bulk reads versus one GET per order, and a re-upload with and
without reading Spectrum's current state first (issue 12).

Touches: sandbox child processes on loopback ports (see ``sandbox_proc``), their seed
files under ``<out>/data``, and a temporary runs folder (journal) under ``<out>``, deleted
afterwards.

Every run is measured at a fast pace (the sandbox's rate limit off, the client's pace at
its highest): requests are counted by endpoint from the sandbox's own request log, wall
time on this machine. Spectrum's documented pace is 100 requests a minute per endpoint,
so one GET per order for 20,000 orders would take 200 minutes: those runs are never
made at that pace. Their time at it is *projected* from the request counts instead
(:func:`projected_s`), and one run of each kind is also made at a scaled pace, to check
the projection against a clock.

1. **Read** (:func:`run_reads`): 20,000 orders of 4 line items seeded in the sandbox, each
   last modified 1 to 85 days ago (19 in 20) or 100 to 200 days ago
   (:func:`spectrum_tools.sandbox.seed_age`); ``read_orders`` with searches (a few
   31-day windows back to about three months, then a GET per order no window covered)
   and with ``search=False`` (one GET per order); then ``reconcile`` of the same sheet,
   ``bulk=True`` and ``bulk=False``.
2. **Re-upload** (:func:`run_reupload`): a sheet of 2,000 orders whose first half was
   already applied directly in the sandbox (by someone else: this toolkit's journal does
   not know it, so its skip rule cannot help), sent again with ``send_updates(...,
   read_back=True)`` and ``read_back=False``, each against a fresh sandbox.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from benchmarks.data import make_orders, updates_for
from benchmarks.sandbox_proc import TOKEN, SandboxProcess

__all__ = [
    "DOCUMENTED_PER_MIN",
    "ReadRun",
    "ReadbackResults",
    "ReuploadRun",
    "projected_s",
    "run_readback",
]

DOCUMENTED_PER_MIN = 100.0
"""Spectrum's documented safe pace, per endpoint (docs/spectrum-api.md, "Rate limiting")."""

# SendOptions' highest pace: request slots 60 us apart, so pacing is not what is measured.
_FAST = 1_000_000.0
# The pacer's safety margin (spectrum_tools.engine.pacer.Pacer._MARGIN): slots are 2 %
# further apart than the configured pace.
_MARGIN = 1.02
# Endpoints as the sandbox's request log names them.
SEARCH, GET, STATUS = "orders-search", "order-number", "order-status"
_WANTED = "in-progress"  # what every sheet here sets (the store starts at not-started)


def projected_s(phases: Sequence[int], per_minute: float = DOCUMENTED_PER_MIN) -> float:
    """Seconds the paced runs ``phases`` (requests in each) take at ``per_minute``.

    Each endpoint is paced on a budget of its own, and the toolkit runs its phases one
    after the other (searches, then GETs, then status writes), each starting on a fresh
    budget: ``n`` requests of a phase take ``(n - 1)`` slots of ``60 / per_minute * 1.02``
    seconds, and the phases add up. Request latency is left out (at 100 a minute a slot is
    0.6 s, far longer than a request).

    Examples
    --------
    >>> round(projected_s([20_000]) / 60)  # one GET per order, 20,000 orders
    204
    >>> projected_s([3, 0, 1])
    1.224
    """
    return sum(max(0, n - 1) * 60.0 / per_minute * _MARGIN for n in phases)


def _by_endpoint(sandbox: SandboxProcess) -> Counter[str]:
    return Counter(str(r["endpoint"]) for r in sandbox.requests_log())


# --------------------------------------------------------------------------- reads


@dataclass(frozen=True)
class ReadRun:
    """One read of every order of the sheet, as the sandbox saw it."""

    label: str
    orders: int
    searches: int  # POST /api/orders/search (sandbox log)
    gets: int  # GET /api/order/order-number/{po} (sandbox log)
    wall_s: float
    pace_per_min: float  # the client's configured pace
    read: int  # orders read (found, or a 404)
    via_search: int  # orders a search returned
    client_requests: int  # what spectrum-tools reported sending (every attempt)

    @property
    def requests(self) -> int:
        """Requests in all."""
        return self.searches + self.gets

    @property
    def projected_s(self) -> float:
        """Projected wall time at the documented pace: searches, then GETs."""
        return projected_s([self.searches, self.gets])

    @property
    def projected_at_own_pace_s(self) -> float:
        """The same projection at the pace this run was configured with."""
        return projected_s([self.searches, self.gets], self.pace_per_min)


def run_reads(
    out: Path, *, orders: int, reconcile: bool = True, paced_per_min: float | None = None
) -> list[ReadRun]:
    """Seed ``orders`` orders; read them in bulk and one GET per order; reconcile both ways.

    ``paced_per_min``: also make the bulk read at this pace, to check the projection.
    """
    from spectrum_tools import SendOptions, SpectrumClient
    from spectrum_tools.readback import read_orders
    from spectrum_tools.reconcile import reconcile as reconcile_sheet

    store = make_orders(orders, prefix="HA-US-READ")
    seed = out / "data" / f"readback-orders-{orders}.csv"
    seed.parent.mkdir(parents=True, exist_ok=True)
    store.to_csv(seed, index=False)
    pos = store["purchaseOrderNumber"].drop_duplicates().tolist()
    sheet = updates_for(store, _WANTED)
    fast = SendOptions(max_per_minute=_FAST)
    runs: list[ReadRun] = []
    # Every request of the largest run is kept in the log, with room to spare.
    with (
        SandboxProcess(seed, rate_limit=None, log_size=2 * orders + 1_000) as sandbox,
        SpectrumClient(sandbox.base_url, token=TOKEN) as client,
    ):

        def read(label: str, search: bool, options: SendOptions) -> None:
            sandbox.clear_log()
            started = time.perf_counter()
            reading = read_orders(pos, client, options=options, search=search, progress=False)
            wall = time.perf_counter() - started
            seen = _by_endpoint(sandbox)
            states = reading.states.values()
            runs.append(
                ReadRun(
                    label=label,
                    orders=len(pos),
                    searches=seen[SEARCH],
                    gets=seen[GET],
                    wall_s=wall,
                    pace_per_min=options.max_per_minute,
                    read=sum(1 for s in states if s.found and not s.error),
                    via_search=sum(1 for s in states if s.via == "search"),
                    client_requests=reading.requests,
                )
            )

        def reconciled(label: str, bulk: bool) -> None:
            sandbox.clear_log()
            started = time.perf_counter()
            frame = reconcile_sheet(sheet, client, fast, bulk=bulk, progress=False)
            wall = time.perf_counter() - started
            seen = _by_endpoint(sandbox)
            compared = frame.drop_duplicates("purchaseOrderNumber")
            runs.append(
                ReadRun(
                    label=label,
                    orders=len(compared),
                    searches=seen[SEARCH],
                    gets=seen[GET],
                    wall_s=wall,
                    pace_per_min=fast.max_per_minute,
                    # Every line item is read and differs (the store holds not-started).
                    read=int(
                        frame.groupby("purchaseOrderNumber")["state"]
                        .agg(lambda s: bool((s == "differs").all()))
                        .sum()
                    ),
                    via_search=0,
                    client_requests=int(frame.attrs["requests"]),
                )
            )

        read("bulk read", True, fast)
        read("one GET per order", False, fast)
        if paced_per_min is not None:
            read(
                f"bulk read, paced at {paced_per_min:,.0f}/min",
                True,
                SendOptions(max_per_minute=paced_per_min),
            )
        if reconcile:
            reconciled("reconcile, bulk", True)
            reconciled("reconcile, one GET per order", False)
    return runs


# --------------------------------------------------------------------------- re-upload


@dataclass(frozen=True)
class ReuploadRun:
    """One send of the whole sheet, half of it already applied."""

    label: str
    read_back: bool
    orders: int
    applied_before: int  # orders whose every line item already held the wanted status
    searches: int
    gets: int
    status_requests: int  # PUT /api/order/status (sandbox log)
    wall_s: float
    pace_per_min: float
    outcomes: dict[str, int] = field(default_factory=dict)
    holding_wanted_after: int = 0  # orders whose every line item holds it after the run

    @property
    def read_requests(self) -> int:
        """Searches and GETs."""
        return self.searches + self.gets

    @property
    def requests(self) -> int:
        """Requests in all."""
        return self.read_requests + self.status_requests

    @property
    def phases(self) -> list[int]:
        """Requests of each paced phase, in the order they run."""
        return [self.searches, self.gets, self.status_requests]

    @property
    def projected_s(self) -> float:
        """Projected wall time at the documented pace: searches, GETs, then writes."""
        return projected_s(self.phases)

    @property
    def projected_at_own_pace_s(self) -> float:
        """The same projection at the pace this run was configured with."""
        return projected_s(self.phases, self.pace_per_min)


def run_reupload(
    out: Path, *, orders: int, paced_per_min: float | None = None
) -> list[ReuploadRun]:
    """Send a sheet of ``orders`` orders, its first half already applied, with and without
    read-back (each on a fresh sandbox); ``paced_per_min`` adds a read-back run at that
    pace, to check the projection."""
    store = make_orders(orders, prefix="HA-US-REUP")
    seed = out / "data" / f"reupload-orders-{orders}.csv"
    seed.parent.mkdir(parents=True, exist_ok=True)
    store.to_csv(seed, index=False)
    variants = [("with read-back", True, _FAST), ("without read-back", False, _FAST)]
    if paced_per_min is not None:
        variants.append((f"with read-back, paced at {paced_per_min:,.0f}/min", True, paced_per_min))
    return [
        _reupload(out, seed, store, label, read_back, pace) for label, read_back, pace in variants
    ]


def _reupload(
    out: Path, seed: Path, store: pd.DataFrame, label: str, read_back: bool, pace: float
) -> ReuploadRun:
    from spectrum_tools import SendOptions, SpectrumClient, send_updates
    from spectrum_tools.readback import read_orders

    pos = store["purchaseOrderNumber"].drop_duplicates().tolist()
    applied = pos[: len(pos) // 2]
    runs_dir = out / "tmp-runs"
    shutil.rmtree(runs_dir, ignore_errors=True)
    try:
        with (
            SandboxProcess(seed, rate_limit=None, log_size=4 * len(pos) + 1_000) as sandbox,
            SpectrumClient(sandbox.base_url, token=TOKEN) as client,
        ):
            lines = store.groupby("purchaseOrderNumber", sort=False)["recipeSetId"]
            for po in applied:  # applied directly: this toolkit's journal knows nothing of it
                sandbox.stage(po, dict.fromkeys(lines.get_group(po), _WANTED))
            sandbox.clear_log()
            started = time.perf_counter()
            frame = send_updates(
                updates_for(store, _WANTED),
                client,
                SendOptions(max_per_minute=pace),
                read_back=read_back,
                progress=False,
                runs_dir=runs_dir,
            )
            wall = time.perf_counter() - started
            seen = _by_endpoint(sandbox)
            after = read_orders(
                pos, client, options=SendOptions(max_per_minute=_FAST), progress=False
            )
    finally:
        shutil.rmtree(runs_dir, ignore_errors=True)
    holding = sum(
        1
        for s in after.states.values()
        if s.statuses and all(v == _WANTED for v in s.statuses.values())
    )
    return ReuploadRun(
        label=label,
        read_back=read_back,
        orders=len(pos),
        applied_before=len(applied),
        searches=seen[SEARCH],
        gets=seen[GET],
        status_requests=seen[STATUS],
        wall_s=wall,
        pace_per_min=pace,
        outcomes=dict(Counter(str(o) for o in frame["outcome"])),
        holding_wanted_after=holding,
    )


# --------------------------------------------------------------------------- the face


@dataclass
class ReadbackResults:
    """Both halves of the face."""

    reads: list[ReadRun]
    reuploads: list[ReuploadRun]


def run_readback(
    out: Path,
    *,
    orders: int,
    reupload_orders: int,
    paced_per_min: float | None,
    reconcile: bool = True,
) -> ReadbackResults:
    """Run both halves (see the module docstring)."""
    return ReadbackResults(
        reads=run_reads(out, orders=orders, reconcile=reconcile, paced_per_min=paced_per_min),
        reuploads=run_reupload(out, orders=reupload_orders, paced_per_min=paced_per_min),
    )
