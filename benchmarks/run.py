"""Run every benchmark and write ``results.md``, ``results.json`` and PNG charts.

Usage, from the repository root::

    .venv/bin/python -m benchmarks.run --out benchmarks/results           # a few minutes
    .venv/bin/python -m benchmarks.run --out /tmp/bench --smoke           # seconds
    .venv/bin/python -m benchmarks.run --out benchmarks/results --only pipeline

Touches: the output folder (generated sheets are cached in ``<out>/data``), loopback
ports of sandbox child processes, and temporary sandbox stores (tmpfs when available).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks import data
from benchmarks.pipeline import measure
from benchmarks.report import PipelineRow, Results, charts, markdown, to_json

FACES = ("command", "pipeline", "pacing", "latency", "readback")


@dataclass(frozen=True)
class Sizes:
    """How big each face runs."""

    sheets: tuple[tuple[str, str, int], ...]  # (label, kind, rows)
    repeats: int  # spectrum-tools runs per sheet (the naive way runs once)
    pacing_orders: int
    pacing_limit: int
    pacing_window_s: float
    latency_workers: tuple[int, ...]
    latency_rounds: int
    latency_repeats: int
    naive_orders: int
    readback_orders: int  # orders read back in bulk and one GET per order
    reupload_orders: int  # orders of the re-upload sheet (half already applied)
    readback_paced_per_min: float  # the scaled pace the projection is checked at


FULL = Sizes(
    sheets=(
        ("CSV 100k", "csv", 100_000),
        ("CSV 1M", "csv", 1_000_000),
        ("XLSX 200k", "xlsx", 200_000),
    ),
    repeats=3,
    pacing_orders=150,
    pacing_limit=20,
    pacing_window_s=6.0,
    # 1-64 are the levels; 256 shows where this 2-core machine's CPU gives out.
    latency_workers=(1, 4, 16, 64, 256),
    latency_rounds=30,
    latency_repeats=2,
    naive_orders=50,
    readback_orders=20_000,
    reupload_orders=2_000,
    readback_paced_per_min=3_000.0,
)
SMOKE = Sizes(
    sheets=(("CSV 2k", "csv", 2_000), ("CSV 10k", "csv", 10_000), ("XLSX 2k", "xlsx", 2_000)),
    repeats=1,
    pacing_orders=12,
    pacing_limit=10,
    pacing_window_s=2.0,
    latency_workers=(1, 4, 16, 64),
    latency_rounds=2,
    latency_repeats=1,
    naive_orders=5,
    readback_orders=400,
    reupload_orders=60,
    readback_paced_per_min=6_000.0,
)


def _sheet(out: Path, kind: str, rows: int) -> Path:
    """The generated sheet, cached under ``<out>/data`` (generation is deterministic)."""
    path = out / "data" / f"updates-{rows}-v{data.VERSION}.{kind}"
    if not path.exists():
        frame = data.make_update_rows(rows)
        (data.write_xlsx if kind == "xlsx" else data.write_csv)(frame, path)
    return path


def _load() -> str:
    try:
        return "/".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "?"


def _say(message: str) -> None:
    print(message, flush=True)


def run(out: Path, sizes: Sizes, faces: tuple[str, ...], smoke: bool, command: str) -> Results:
    """Run the chosen faces; return the results."""
    import numpy
    import pandas

    res = Results(
        environment={
            "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "platform": f"{platform.system()} {platform.machine()}",
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "pandas": pandas.__version__,
            "numpy": numpy.__version__,
            "load_start": _load(),
            "latency_repeats": sizes.latency_repeats,
            "command": command,
        },
        smoke=smoke,
    )
    if "command" in faces:
        from benchmarks.command import core_import_ms, full_cli_import_s, measure_commands

        label, kind, rows = max((s for s in sizes.sheets if s[1] == "csv"), key=lambda s: s[2])
        path = _sheet(out, kind, rows)
        _say(f"command: spectrum-tools validate {path.name} vs the naive script ...")
        command = measure_commands(label, rows, path, sizes.repeats)
        res.commands.append(command)
        _say(
            f"  validate {command.best.seconds:.2f} s ({command.best.peak_mb:.0f} MB), naive "
            f"{command.naive['naive'].seconds:.2f} s: {command.speedup('naive'):.1f}x; "
            f"naive with object strings {command.naive['naive-object'].seconds:.2f} s: "
            f"{command.speedup('naive-object'):.1f}x"
        )
        res.imports = core_import_ms()
        res.imports["full_cli_import_s"] = full_cli_import_s()
        _say(
            f"  import sheets+validation+planning {res.imports['total_ms']:.0f} ms "
            f"(heavy stacks loaded: {res.imports['heavy_modules'] or 'none'}); "
            f"import spectrum_tools.cli {res.imports['full_cli_import_s']:.2f} s"
        )
    if "pipeline" in faces:
        for label, kind, rows in sizes.sheets:
            path = _sheet(out, kind, rows)
            _say(f"pipeline: {label} ({path.name}) ...")
            spectrum = measure("spectrum", path, sizes.repeats)
            naive = measure("naive", path, 1)
            plain = measure("naive-object", path, 1) if kind == "csv" else None
            row = PipelineRow(label, kind, rows, naive, spectrum, plain)
            res.pipeline.append(row)
            _say(
                f"  naive {naive.best['seconds']:.2f} s, spectrum-tools "
                f"{spectrum.best['seconds']:.2f} s: {row.speedup:.1f}x"
                + (f"; naive with object strings {row.object_speedup:.1f}x" if plain else "")
            )
    if "pacing" in faces:
        from benchmarks.pacing import run_pacing

        _say(
            f"pacing: {sizes.pacing_orders} orders, {sizes.pacing_limit} per "
            f"{sizes.pacing_window_s:g} s ..."
        )
        res.pacing = run_pacing(
            out,
            orders=sizes.pacing_orders,
            limit=sizes.pacing_limit,
            window_s=sizes.pacing_window_s,
        )
        for p in res.pacing:
            _say(
                f"  {p.label}: {p.share_of_limit:.1%} of the limit, {p.status_403} x 403, "
                f"{p.updated}/{p.orders} updated"
            )
    if "latency" in faces:
        from benchmarks.latency import run_latency

        shown = ", ".join(map(str, sizes.latency_workers))
        _say(f"latency: {shown} workers at 100 ms ...")
        res.latency, res.counts = run_latency(
            out,
            workers=sizes.latency_workers,
            rounds=sizes.latency_rounds,
            repeats=sizes.latency_repeats,
            naive_orders=sizes.naive_orders,
        )
        for r in res.latency:
            _say(f"  {r.workers} workers: {r.throughput:.1f}/s, {r.share_of_bound:.0%} of bound")
    if "readback" in faces:
        from benchmarks.readback import run_readback

        _say(
            f"readback: {sizes.readback_orders:,} orders read back; re-upload of "
            f"{sizes.reupload_orders:,} orders, half applied ..."
        )
        res.readback = run_readback(
            out,
            orders=sizes.readback_orders,
            reupload_orders=sizes.reupload_orders,
            paced_per_min=sizes.readback_paced_per_min,
        )
        for r in res.readback.reads:
            _say(
                f"  {r.label}: {r.searches} searches + {r.gets} GETs, {r.wall_s:.1f} s; "
                f"projected at 100/min {r.projected_s / 60:.1f} min"
            )
        for u in res.readback.reuploads:
            _say(
                f"  re-upload {u.label}: {u.read_requests} reads + {u.status_requests} status "
                f"requests, {u.wall_s:.1f} s; projected at 100/min {u.projected_s / 60:.1f} min"
            )
    res.environment["load_end"] = _load()
    return res


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, write the report; return the exit code."""
    parser = argparse.ArgumentParser(description="Run the spectrum-tools benchmarks.")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds)")
    parser.add_argument(
        "--only", default=",".join(FACES), help=f"comma-separated subset of {', '.join(FACES)}"
    )
    args = parser.parse_args(argv)
    faces = tuple(f.strip() for f in args.only.split(",") if f.strip())
    unknown = set(faces) - set(FACES)
    if unknown:
        parser.error(f"unknown face(s): {', '.join(sorted(unknown))}")
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks.run " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    started = time.monotonic()
    res = run(out, SMOKE if args.smoke else FULL, faces, args.smoke, command)
    names = charts(res, out)
    (out / "results.md").write_text(markdown(res, names), encoding="utf-8")
    (out / "results.json").write_text(to_json(res), encoding="utf-8")
    _say(f"done in {time.monotonic() - started:.0f} s")
    _say(f"wrote {out / 'results.md'}")
    for name in [*names, "results.json"]:
        _say(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
