"""Face 2: pacing against the sandbox's rate limit, time-scaled so it runs in seconds.

Touches: a sandbox child process on a loopback port (see ``sandbox_proc``), and the seed
file of its orders under ``<out>/data``.

Spectrum allows 100 requests per 60 s. The benchmark shrinks the window (e.g. 20 requests
per 6 s, 200 a minute) so that ~150 requests take under a minute, and scales the
client's throttle pause by the same factor (10 s per 60 s window -> 1 s per 6 s). Two runs:

* configured at the server's limit: the achieved rate over the run (from the sandbox's own
  request log) should be at least 97 % of the limit, with no 403 at all;
* configured above it (2x): Spectrum answers 403, the run slows down and retries, and
  every order should still end up updated.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.data import make_orders, updates_for
from benchmarks.sandbox_proc import TOKEN, SandboxProcess


@dataclass(frozen=True)
class PacingResult:
    """One paced run against the rate-limited sandbox."""

    label: str
    limit_per_min: float
    configured_per_min: float
    orders: int
    rows: int
    requests: int
    status_403: int
    updated: int
    achieved_per_min: float  # requests the sandbox accepted (not 403), first to last
    max_in_window: int  # most requests (403s included) arriving in any one window
    window_s: float
    limit: int
    wall_s: float
    arrivals: list[float]
    statuses: list[int]

    @property
    def share_of_limit(self) -> float:
        """Achieved rate as a share of the server's limit."""
        return self.achieved_per_min / self.limit_per_min


def _rate(times: list[float]) -> float:
    """Requests per minute over a run: n - 1 gaps between the first and last arrival."""
    if len(times) < 2 or times[-1] <= times[0]:
        return 0.0
    return (len(times) - 1) * 60.0 / (times[-1] - times[0])


def _max_in_window(times: list[float], window_s: float) -> int:
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window_s:
            start += 1
        best = max(best, end - start + 1)
    return best


def run_pacing(
    out: Path, *, orders: int, limit: int, window_s: float, workers: int = 4
) -> list[PacingResult]:
    """Run the at-limit and over-limit runs; return their results."""
    from spectrum_tools import SendOptions, SpectrumClient, plan_updates
    from spectrum_tools.engine import run_plan
    from spectrum_tools.results import results_frame

    store = make_orders(orders, prefix="HA-US-PACE")
    seed = out / "data" / f"pacing-orders-{orders}.csv"
    seed.parent.mkdir(parents=True, exist_ok=True)
    store.to_csv(seed, index=False)
    rows = updates_for(store)
    plan = plan_updates(rows)
    if plan.request_count != orders:
        raise RuntimeError(f"planned {plan.request_count} requests for {orders} orders")
    limit_per_min = limit * 60.0 / window_s
    results = []
    runs = [("at the limit", limit_per_min), ("2x over the limit", 2 * limit_per_min)]
    for label, configured in runs:
        with SandboxProcess(seed, rate_limit=limit, rate_window_s=window_s) as sandbox:
            options = SendOptions(
                max_per_minute=configured,
                workers=workers,
                throttle_pause_s=10.0 * window_s / 60.0,  # the default, time-scaled
            )
            client = SpectrumClient(sandbox.base_url, token=TOKEN, pool_size=workers)
            started = time.monotonic()
            sent, stopped = run_plan(plan, client, options)
            wall = time.monotonic() - started
            client.close()
            frame = results_frame(plan, sent)
            log: list[dict[str, Any]] = [
                r for r in sandbox.requests_log() if r["endpoint"] == "order-status"
            ]
        if stopped is not None:
            raise RuntimeError(f"the {label} run stopped: {stopped}")
        arrivals = [float(r["monotonic"]) for r in log]
        accepted = [float(r["monotonic"]) for r in log if r["status"] != 403]
        results.append(
            PacingResult(
                label=label,
                limit_per_min=limit_per_min,
                configured_per_min=configured,
                orders=plan.request_count,
                rows=len(rows),
                requests=len(log),
                status_403=sum(1 for r in log if r["status"] == 403),
                updated=int((frame["outcome"] == "updated").sum()),
                achieved_per_min=_rate(accepted),
                max_in_window=_max_in_window(arrivals, window_s),
                window_s=window_s,
                limit=limit,
                wall_s=wall,
                arrivals=[t - arrivals[0] for t in arrivals] if arrivals else [],
                statuses=[int(r["status"]) for r in log],
            )
        )
    return results
