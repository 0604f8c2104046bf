"""Write the benchmark results: ``results.md`` (tables), ``results.json`` and PNG charts.

Touches: only files in the output folder it is given.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.command import CommandRow
from benchmarks.latency import LatencyResult, RequestCount
from benchmarks.pacing import PacingResult
from benchmarks.pipeline import Measurement
from benchmarks.readback import ReadbackResults, ReadRun, ReuploadRun

# Spectrum's documented safe pace, for "how long would it take" columns.
SAFE_PER_MIN = 100.0


@dataclass(frozen=True)
class PipelineRow:
    """One dataset of face 1: both implementations on the same file."""

    label: str
    kind: str
    rows: int
    naive: Measurement
    spectrum: Measurement
    naive_object: Measurement | None = None  # the naive way on pre-3.0 object strings

    @property
    def object_speedup(self) -> float:
        """Speed-up over the naive way with object strings (its faster variant)."""
        if self.naive_object is None:
            return float("nan")
        return float(self.naive_object.best["seconds"]) / float(self.spectrum.best["seconds"])

    @property
    def speedup(self) -> float:
        """Naive wall time over spectrum-tools wall time (best runs)."""
        return float(self.naive.best["seconds"]) / float(self.spectrum.best["seconds"])

    @property
    def cpu_speedup(self) -> float:
        """The same ratio on CPU time, which other load on the machine disturbs less."""
        return float(self.naive.best["cpu_s"]) / float(self.spectrum.best["cpu_s"])


@dataclass
class Results:
    """Everything one run measured."""

    environment: dict[str, Any]
    smoke: bool
    pipeline: list[PipelineRow] = field(default_factory=list)
    commands: list[CommandRow] = field(default_factory=list)
    imports: dict[str, Any] = field(default_factory=dict)
    pacing: list[PacingResult] = field(default_factory=list)
    latency: list[LatencyResult] = field(default_factory=list)
    counts: RequestCount | None = None
    readback: ReadbackResults | None = None


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    """One target of the issue, with what was measured and whether it was met."""

    name: str
    measured: str
    met: bool | None  # None: not evaluated (smoke sizes, or that face was not run)


def targets(res: Results) -> list[Target]:
    """Evaluate the issue's targets on the measured results."""
    out: list[Target] = []
    big_csv = next((r for r in res.pipeline if r.kind == "csv" and r.rows >= 1_000_000), None)
    xlsx = next((r for r in res.pipeline if r.kind == "xlsx" and r.rows >= 200_000), None)
    big_cmd = next((c for c in res.commands if c.rows >= 1_000_000), None)
    if big_cmd is not None:
        out.append(
            Target(
                "CLI `validate` of a 1M-row CSV at least 10x the naive command",
                f"{big_cmd.speedup('naive'):.1f}x ({big_cmd.best.seconds:.2f} s vs "
                f"{big_cmd.naive['naive'].seconds:.2f} s); "
                f"{big_cmd.speedup('naive-object'):.1f}x vs naive on object strings",
                big_cmd.speedup("naive") >= 10,
            )
        )
        peak = max(r.peak_mb for r in big_cmd.spectrum)
        out.append(
            Target("CLI `validate` 1M-row CSV under 1 GB peak", f"{peak:,.0f} MB", peak < 1024)
        )
    if res.imports:
        heavy = res.imports["heavy_modules"]
        out.append(
            Target(
                "reading/validation/planning import no HTTP, retry, server or Jupyter stack",
                f"{res.imports['total_ms']:.0f} ms; loaded: {', '.join(heavy) or 'none of them'}",
                not heavy,
            )
        )
    if big_csv is not None:
        best = big_csv.spectrum.best
        out.append(
            Target(
                "1M-row CSV read + validate + plan at least 10x faster than naive",
                f"{big_csv.speedup:.1f}x wall, {big_csv.cpu_speedup:.1f}x CPU; "
                f"{big_csv.object_speedup:.1f}x vs naive on object strings",
                big_csv.speedup >= 10,
            )
        )
        out.append(Target("1M-row CSV under 3 s", f"{best['seconds']:.2f} s", best["seconds"] < 3))
        peak = big_csv.spectrum.peak_mb
        out.append(Target("1M-row CSV under 1 GB peak", f"{peak:,.0f} MB", peak < 1024))
    if xlsx is not None:
        out.append(
            Target(
                "200k-row XLSX at least 5x faster than openpyxl",
                f"{xlsx.speedup:.1f}x wall, {xlsx.cpu_speedup:.1f}x CPU",
                xlsx.speedup >= 5,
            )
        )
    at = next((p for p in res.pacing if p.configured_per_min <= p.limit_per_min), None)
    over = next((p for p in res.pacing if p.configured_per_min > p.limit_per_min), None)
    if at is not None:
        out.append(
            Target(
                "paced at the limit: >= 97% of it, zero 403s",
                f"{at.share_of_limit:.1%}, {at.status_403} x 403",
                None if res.smoke else at.share_of_limit >= 0.97 and at.status_403 == 0,
            )
        )
    if over is not None:
        out.append(
            Target(
                "configured over the limit: every order updated",
                f"{over.updated}/{over.orders} updated, {over.status_403} x 403 seen",
                None if res.smoke else over.updated == over.orders,
            )
        )
    if res.latency:
        ok = [_latency_ok(r) for r in res.latency]
        shown = ", ".join(
            f"{r.workers}: {r.share_of_bound:.0%}"
            + (" (CPU-bound)" if r.share_of_bound < 0.9 and ok_ else "" if ok_ else " (missed)")
            for r, ok_ in zip(res.latency, ok, strict=True)
        )
        out.append(
            Target(
                ">= 90% of workers/latency until the CPU saturates",
                shown,
                None if res.smoke else all(ok),
            )
        )
    if res.counts is not None:
        c = res.counts
        out.append(
            Target(
                "one request per order (not per row)",
                f"{c.per_order_requests} requests for {c.rows} rows / {c.orders} orders",
                c.per_order_requests == c.orders,
            )
        )
    if res.readback is not None:
        out += _readback_targets(res.readback)
    return out


def _readback_targets(rb: ReadbackResults) -> list[Target]:
    out: list[Target] = []
    bulk = next((r for r in rb.reads if r.label == "bulk read"), None)
    each = next((r for r in rb.reads if r.label == "one GET per order"), None)
    if bulk is not None and each is not None:
        uncovered = bulk.orders - bulk.via_search
        out.append(
            Target(
                f"bulk read of {bulk.orders:,} orders: a few searches, then a GET only for "
                "orders no window covered",
                f"{bulk.searches} searches + {bulk.gets:,} GETs ({uncovered:,} orders not in "
                f"any window) vs {each.gets:,} GETs; all {bulk.read:,} read",
                bulk.searches <= 10
                and bulk.gets == uncovered
                and bulk.read == bulk.orders
                and each.gets == each.orders == each.read,
            )
        )
    rec = next((r for r in rb.reads if r.label == "reconcile, bulk"), None)
    if rec is not None and bulk is not None:
        out.append(
            Target(
                "reconcile reads through the same bulk read",
                f"{rec.searches} searches + {rec.gets:,} GETs for {rec.orders:,} orders",
                (rec.searches, rec.gets) == (bulk.searches, bulk.gets) and rec.read == rec.orders,
            )
        )
    on = next((u for u in rb.reuploads if u.label == "with read-back"), None)
    off = next((u for u in rb.reuploads if u.label == "without read-back"), None)
    if on is not None and off is not None:
        left = on.orders - on.applied_before
        out.append(
            Target(
                "re-upload, half applied: read-back sends only the orders that change",
                f"{on.status_requests:,} status requests ({on.outcomes.get('unchanged', 0):,} "
                f"unchanged) + {on.read_requests} reads vs {off.status_requests:,} without",
                on.status_requests == left
                and on.outcomes.get("unchanged", 0) == on.applied_before
                and off.status_requests == off.orders
                and all(u.holding_wanted_after == u.orders for u in rb.reuploads),
            )
        )
    return out


# A run counts as CPU-bound when the whole machine (this run and anything else on it) was
# at least this busy during it.
SATURATED = 0.85


def cpu_bound(result: LatencyResult) -> bool:
    """Whether the run was limited by CPU: the client or the sandbox used a whole core (a
    Python process cannot use more, with the GIL), or the machine was nearly all busy."""
    one_core = max(result.client_cpu_s, result.server_cpu_s) / result.wall_s >= SATURATED
    machine = result.machine_busy is not None and result.machine_busy >= SATURATED
    return one_core or machine


def _latency_ok(result: LatencyResult) -> bool:
    return result.share_of_bound >= 0.9 or cpu_bound(result)


# --------------------------------------------------------------------------- markdown


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def _minutes(requests: int) -> str:
    minutes = requests / SAFE_PER_MIN
    return f"{minutes / 60:,.1f} h" if minutes >= 120 else f"{minutes:,.1f} min"


def markdown(res: Results, charts: Sequence[str]) -> str:
    """The results as a markdown document."""
    env = res.environment
    lines = ["# spectrum-tools benchmarks", ""]
    lines.append(
        f"{env['date']} · {env['platform']} · {env['cpus']} CPUs · Python {env['python']} · "
        f"pandas {env['pandas']} · numpy {env['numpy']} · load average "
        f"{env['load_start']} at start, {env.get('load_end', '?')} at end"
        + (" · **smoke sizes**" if res.smoke else "")
    )
    lines += ["", f"Reproduce: `{env['command']}`", ""]

    if res.commands:
        lines += [
            "## 0. Whole commands: `spectrum-tools validate` vs the naive script",
            "",
            "Each is one fresh process timed from start to exit (interpreter start and every "
            "import included); peak = its peak RSS. Naive: `python -m benchmarks.pipeline "
            "cmd-naive FILE` imports only pandas; `naive-object` is the same script with "
            "pandas' pre-3.0 object strings (its groupby loop is faster on them).",
            "",
        ]
        rows = []
        for c in res.commands:
            for name, run in [("spectrum-tools validate", c.best), *c.naive.items()]:
                ratio = c.naive[name].seconds / c.best.seconds if name in c.naive else 1.0
                rows.append(
                    [
                        c.label,
                        name,
                        f"{run.seconds:.2f}",
                        f"{run.cpu_s:.2f}",
                        f"{run.peak_mb:,.0f}",
                        f"**{ratio:.1f}x**" if name in c.naive else "",
                    ]
                )
        lines += _table(
            ["Sheet", "Command", "Wall s", "CPU s", "Peak MB", "validate is faster by"], rows
        )
        if res.imports:
            i = res.imports
            lines += [
                "",
                f"`import spectrum_tools.sheets, .validation, .planning` (package root "
                f"bypassed): {i['total_ms']:.0f} ms (pandas {i['pandas_ms']:.0f} ms, pyarrow "
                f"{i['pyarrow_ms']:.0f} ms, spectrum-tools' own modules "
                f"{i['spectrum_tools_ms']:.0f} ms); HTTP/retry/server/Jupyter modules loaded: "
                f"{', '.join(i['heavy_modules']) or 'none'}. `import spectrum_tools.cli` today: "
                f"{i['full_cli_import_s']:.2f} s (the package root and the CLI import lazily: "
                "`validate` loads no sending stack).",
            ]
        lines.append("")

    if res.pipeline:
        lines += [
            "## 1. Local pipeline: read + validate + plan",
            "",
            "Each number is one fresh process (best of "
            f"{len(res.pipeline[0].spectrum.runs)} for spectrum-tools, "
            f"{len(res.pipeline[0].naive.runs)} for naive). Naive: `pd.read_csv` / "
            "`pd.read_excel` (openpyxl), light status cleaning, a loop over `groupby` "
            "building one payload per order. Peak = the process's peak RSS (about "
            f"{res.pipeline[0].spectrum.baseline_mb:.0f} MB of it is Python + pandas "
            "after import).",
            "",
        ]
        rows = []
        for r in res.pipeline:
            n, s = r.naive.best, r.spectrum.best
            rows.append(
                [
                    r.label,
                    f"{r.rows:,}",
                    f"{n['seconds']:.2f}",
                    f"{s['seconds']:.2f}",
                    f"**{r.speedup:.1f}x**",
                    f"{r.cpu_speedup:.1f}x",
                    f"{r.naive.peak_mb:,.0f}",
                    f"{r.spectrum.peak_mb:,.0f}",
                    f"{s['requests']:,}",
                ]
            )
        lines += _table(
            [
                "Sheet",
                "Rows",
                "Naive s",
                "spectrum-tools s",
                "Speed-up",
                "CPU speed-up",
                "Naive peak MB",
                "spectrum-tools peak MB",
                "Requests",
            ],
            rows,
        )
        lines += ["", "spectrum-tools stages (seconds, best run):", ""]
        stage_rows = []
        for r in res.pipeline:
            s = r.spectrum.best
            st = s["stages"]
            stage_rows.append(
                [
                    r.label,
                    f"{st['read']:.2f}",
                    f"{st['validate']:.2f}",
                    f"{st['plan']:.2f}",
                    f"{s['bodies_s']:.2f}",
                    f"{s['valid_rows']:,}",
                ]
            )
        lines += _table(
            ["Sheet", "read", "validate", "plan", "(all JSON bodies, built lazily)", "Valid rows"],
            stage_rows,
        )
        lines.append("")

    if res.pacing:
        p0 = res.pacing[0]
        lines += [
            "## 2. Pacing against the sandbox's rate limit",
            "",
            f"Sandbox: {p0.limit} requests per {p0.window_s:g} s sliding window "
            f"({p0.limit_per_min:.0f}/min: Spectrum's 100 per 60 s, time-scaled), 4 workers. "
            "Counted from the sandbox's request log.",
            "",
        ]
        rows = [
            [
                p.label,
                f"{p.configured_per_min:.0f}/min",
                str(p.requests),
                str(p.status_403),
                f"{p.updated}/{p.orders}",
                f"{p.achieved_per_min:.1f}/min",
                f"{p.share_of_limit:.1%}",
                f"{p.max_in_window} (limit {p.limit})",
                f"{p.wall_s:.1f}",
            ]
            for p in res.pacing
        ]
        lines += _table(
            [
                "Run",
                "Configured",
                "Requests",
                "403s",
                "Updated",
                "Achieved",
                "Of limit",
                f"Most in any {p0.window_s:g} s",
                "Wall s",
            ],
            rows,
        )
        lines.append("")

    if res.latency:
        lat = res.latency[0].latency_s
        lines += [
            "## 3. Latency hiding",
            "",
            f"Sandbox latency {lat * 1000:.0f} ms, rate limit off, sandbox in its own process "
            f"(best of {env.get('latency_repeats', 1)} runs per row); bound = workers / latency. "
            "Client and sandbox CPU are shares of one core; machine busy is the share of all "
            f"{env['cpus']} cores in use by anything during the run. A row is CPU-bound "
            "(excused from the 90% target) when the client or the sandbox kept a whole core "
            f"busy (at least {SATURATED:.0%}: one Python process cannot use more) or the "
            f"machine was at least {SATURATED:.0%} busy.",
            "",
        ]
        rows = []
        for lr in res.latency:
            busy = lr.machine_busy
            rows.append(
                [
                    str(lr.workers),
                    str(lr.requests),
                    f"{lr.throughput:.1f}",
                    f"{lr.bound:.0f}",
                    f"**{lr.share_of_bound:.0%}**",
                    f"{lr.client_cpu_ms_per_order:.2f}",
                    f"{lr.client_cpu_s / lr.wall_s:.0%}",
                    f"{lr.server_cpu_s / lr.wall_s:.0%}",
                    "?" if busy is None else f"{busy:.0%}",
                    "latency" if lr.share_of_bound >= 0.9 else "CPU" if cpu_bound(lr) else "?",
                ]
            )
        lines += _table(
            [
                "Workers",
                "Requests",
                "Requests/s",
                "Bound/s",
                "Of bound",
                "Client CPU ms/order",
                "Client CPU",
                "Sandbox CPU",
                "Machine busy",
                "Bound by",
            ],
            rows,
        )
        lines.append("")

    if res.counts is not None or res.pipeline:
        lines += [
            "## Requests versus rows",
            "",
            f"Time at Spectrum's safe pace of {SAFE_PER_MIN:.0f} requests a minute.",
            "",
        ]
        rows = []
        if res.counts is not None:
            c = res.counts
            rows.append(
                [
                    f"sent to the sandbox ({c.orders} orders)",
                    f"{c.rows:,}",
                    f"{c.per_order_requests:,}",
                    f"{c.per_row_requests:,}",
                    _minutes(c.per_order_requests),
                    _minutes(c.per_row_requests),
                ]
            )
        for r in res.pipeline:
            s = r.spectrum.best
            rows.append(
                [
                    f"{r.label} (planned)",
                    f"{r.rows:,}",
                    f"{s['requests']:,}",
                    f"{r.rows:,}",
                    _minutes(int(s["requests"])),
                    _minutes(r.rows),
                ]
            )
        lines += _table(
            [
                "Sheet",
                "Rows",
                "spectrum-tools requests",
                "Per-row loop requests",
                "At 100/min",
                "Per-row at 100/min",
            ],
            rows,
        )
        lines.append("")

    if res.readback is not None:
        lines += _readback_markdown(res.readback)

    lines += ["## Targets", ""]
    mark = {True: "met", False: "**missed**", None: "not evaluated"}
    lines += _table(
        ["Target", "Measured", "Result"],
        [[t.name, t.measured, mark[t.met]] for t in targets(res)],
    )
    lines.append("")
    if charts:
        lines += ["## Charts", ""] + [f"![{c}]({c})" for c in charts] + [""]
    return "\n".join(lines)


def to_json(res: Results) -> str:
    """The raw results (every run) as JSON."""
    return json.dumps(
        {
            "environment": res.environment,
            "smoke": res.smoke,
            "commands": [
                {
                    "label": c.label,
                    "rows": c.rows,
                    "spectrum": [r.__dict__ for r in c.spectrum],
                    "naive": {k: v.__dict__ for k, v in c.naive.items()},
                }
                for c in res.commands
            ],
            "imports": res.imports,
            "pipeline": [
                {
                    "label": r.label,
                    "kind": r.kind,
                    "rows": r.rows,
                    "naive": r.naive.runs,
                    "naive_object": None if r.naive_object is None else r.naive_object.runs,
                    "spectrum": r.spectrum.runs,
                }
                for r in res.pipeline
            ],
            "pacing": [p.__dict__ for p in res.pacing],
            "latency": [r.__dict__ for r in res.latency],
            "counts": None if res.counts is None else res.counts.__dict__,
            "readback": None
            if res.readback is None
            else {
                "reads": [{**r.__dict__, "projected_s": r.projected_s} for r in res.readback.reads],
                "reuploads": [
                    {**u.__dict__, "projected_s": u.projected_s} for u in res.readback.reuploads
                ],
            },
            "targets": [t.__dict__ for t in targets(res)],
        },
        indent=1,
    )


# --------------------------------------------------------------------------- read-back


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    if minutes >= 120:
        return f"{minutes / 60:.1f} h"
    return f"{minutes:.1f} min" if minutes >= 1 else f"{seconds:.0f} s"


def _fast(runs: Sequence[ReadRun | ReuploadRun]) -> list[Any]:
    return [r for r in runs if r.pace_per_min >= 1_000_000]


def _readback_markdown(rb: ReadbackResults) -> list[str]:
    reads, reups = _fast(rb.reads), _fast(rb.reuploads)
    lines = [
        "## 4. Read-back: bulk read vs one GET per order; re-upload with vs without",
        "",
        "Sandbox in its own process, rate limit off; the client at its highest pace, 4 "
        "workers. Requests are counted by endpoint from the sandbox's request log. Orders "
        "have 4 line items, each order last modified 1 to 85 days ago (19 in 20) or 100 to "
        "200 days ago (the sandbox's `seed_age`); searches look back about three months in "
        "31-day windows. **Measured s** is wall time at that fast pace on this machine. "
        "**Projected at 100/min** is computed, not measured: Spectrum's documented pace is "
        "100 requests a minute per endpoint, and the toolkit's phases run one after the "
        "other (searches, then GETs, then status writes), each on its own budget, so "
        "projected = sum over phases of (requests - 1) x 60 / 100 x 1.02 (the pacer's 2% "
        "margin).",
        "",
    ]
    lines += _table(
        ["Run", "Orders", "Searches", "GETs", "Requests", "Measured s", "Projected at 100/min"],
        [
            [
                r.label,
                f"{r.orders:,}",
                f"{r.searches:,}",
                f"{r.gets:,}",
                f"{r.requests:,}",
                f"{r.wall_s:.1f}",
                f"**{_duration(r.projected_s)}** (projected)",
            ]
            for r in reads
        ],
    )
    if reups:
        u0 = reups[0]
        lines += [
            "",
            f"Re-upload: a sheet of {u0.orders:,} orders setting every line item to "
            f"`in-progress`; the first {u0.applied_before:,} orders were already set directly "
            "in the sandbox (by someone else: this toolkit's journal does not know, so its "
            "skip rule cannot help). `send_updates(..., read_back=True / False)`, journaled, "
            "each on a fresh sandbox. Orders holding the wanted status afterwards (read "
            "back once more): "
            + "; ".join(f"{u.label} {u.holding_wanted_after:,}/{u.orders:,}" for u in reups)
            + ".",
            "",
        ]
        lines += _table(
            [
                "Run",
                "Status requests",
                "Read requests",
                "Outcomes",
                "Measured s",
                "Projected at 100/min",
            ],
            [
                [
                    u.label,
                    f"{u.status_requests:,}",
                    f"{u.read_requests:,} ({u.searches} searches + {u.gets:,} GETs)",
                    ", ".join(f"{v:,} {k}" for k, v in sorted(u.outcomes.items())),
                    f"{u.wall_s:.1f}",
                    f"**{_duration(u.projected_s)}** (projected)",
                ]
                for u in reups
            ],
        )
    paced = [r for r in [*rb.reads, *rb.reuploads] if r.pace_per_min < 1_000_000]
    if paced:
        lines += [
            "",
            "Projection check: the same runs configured at a scaled pace, measured, against "
            "the projection at that pace (the sandbox does not throttle here; the difference "
            "is request latency and start-up).",
            "",
        ]
        lines += _table(
            ["Run", "Requests", "Measured s", "Projected s", "Measured / projected"],
            [
                [
                    ("re-upload " if isinstance(r, ReuploadRun) else "") + r.label,
                    f"{r.requests:,}",
                    f"{r.wall_s:.2f}",
                    f"{r.projected_at_own_pace_s:.2f}",
                    f"{r.wall_s / r.projected_at_own_pace_s:.2f}"
                    if r.projected_at_own_pace_s
                    else "-",
                ]
                for r in paced
            ],
        )
    lines.append("")
    return lines


# --------------------------------------------------------------------------- charts


def charts(res: Results, out: Path) -> list[str]:
    """Draw the PNG charts; return their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    if res.pipeline:
        fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
        labels = [r.label for r in res.pipeline]
        x = range(len(labels))
        width = 0.38
        naive_s = [float(r.naive.best["seconds"]) for r in res.pipeline]
        ours_s = [float(r.spectrum.best["seconds"]) for r in res.pipeline]
        ax_t.bar([i - width / 2 for i in x], naive_s, width, label="naive pandas", color="#bbb")
        ax_t.bar([i + width / 2 for i in x], ours_s, width, label="spectrum-tools", color="#2a6")
        for i, r in enumerate(res.pipeline):
            ax_t.annotate(
                f"{r.speedup:.1f}x",
                (i + width / 2, ours_s[i]),
                ha="center",
                va="bottom",
                fontsize=9,
            )
        ax_t.set_yscale("log")
        ax_t.set_ylabel("seconds (log scale)")
        ax_t.set_title("read + validate + plan")
        ax_t.set_xticks(list(x), labels)
        ax_t.legend()
        naive_m = [r.naive.peak_mb for r in res.pipeline]
        ours_m = [r.spectrum.peak_mb for r in res.pipeline]
        ax_m.bar([i - width / 2 for i in x], naive_m, width, label="naive pandas", color="#bbb")
        ax_m.bar([i + width / 2 for i in x], ours_m, width, label="spectrum-tools", color="#2a6")
        ax_m.set_ylabel("peak RSS, MB")
        ax_m.set_title("peak memory (whole process)")
        ax_m.set_xticks(list(x), labels)
        fig.tight_layout()
        fig.savefig(out / "pipeline.png", dpi=110)
        plt.close(fig)
        names.append("pipeline.png")
    if res.pacing:
        fig, ax = plt.subplots(figsize=(8, 4.2))
        for p, color in zip(res.pacing, ("#2a6", "#d62"), strict=False):
            ax.step(
                p.arrivals,
                range(1, len(p.arrivals) + 1),
                where="post",
                color=color,
                label=f"{p.label} ({p.configured_per_min:.0f}/min)",
            )
            bad = [
                (t, i + 1)
                for i, (t, s) in enumerate(zip(p.arrivals, p.statuses, strict=True))
                if s == 403
            ]
            if bad:
                ax.scatter(*zip(*bad, strict=True), marker="x", color=color, label="403")
        p0 = res.pacing[0]
        end = max(p.arrivals[-1] for p in res.pacing if p.arrivals)
        ax.plot([0, end], [0, end * p0.limit_per_min / 60], "k--", lw=1, label="server limit")
        ax.set_xlabel("seconds since the first request")
        ax.set_ylabel("requests arrived at the sandbox")
        ax.set_title(f"Pacing: {p0.limit} per {p0.window_s:g} s sliding window")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "pacing.png", dpi=110)
        plt.close(fig)
        names.append("pacing.png")
    if res.latency:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        w = [r.workers for r in res.latency]
        ax.plot(w, [r.bound for r in res.latency], "k--", label="bound: workers / latency")
        ax.plot(w, [0.9 * r.bound for r in res.latency], ":", color="#888", label="90% of bound")
        ax.plot(w, [r.throughput for r in res.latency], "o-", color="#2a6", label="measured")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(w, [str(v) for v in w])
        ax.set_xlabel("workers")
        ax.set_ylabel("requests per second")
        ax.set_title(f"Latency hiding at {res.latency[0].latency_s * 1000:.0f} ms per request")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "latency.png", dpi=110)
        plt.close(fig)
        names.append("latency.png")
    return names
