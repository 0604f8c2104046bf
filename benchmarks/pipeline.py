"""Face 1: the local pipeline (read + validate + plan) against the naive pandas way.

Touches: the generated sheets it reads; each measurement runs in a fresh child process
(``python -m benchmarks.pipeline spectrum|naive FILE``) that prints one JSON line, so peak
memory is the child's own high-water mark (``ru_maxrss``), which tracemalloc would
undercount (it misses memory that numpy, the CSV parser and calamine take outside
Python's allocator).

The naive way is what an analyst writes without this toolkit: the default reader
(``pd.read_csv``, or ``pd.read_excel`` with its default engine, openpyxl), drop rows with
a blank key cell, lower-case and hyphenate the statuses, keep the known ones, then a
Python loop over ``groupby`` building one payload dict per order. It does less than the
pipeline: no id checks, no duplicate or conflict detection, no holding back of orders
with a bad row, and ``read_csv`` type inference may turn all-digit ids into numbers.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
_KNOWN = (
    "not-started",
    "in-progress",
    "in-progress-step-1",
    "completed",
    "revision",
    "on-hold",
    "approved",
    "released",
    "delivered",
    "cancelled",
)


def _peak_mb() -> float:
    # Linux reports ru_maxrss in KiB (macOS in bytes).
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1024**2


def run_spectrum(path: Path) -> dict[str, Any]:
    """read_updates -> validate_updates -> plan_updates; also time building every body."""
    from spectrum_tools import plan_updates, read_updates, validate_updates

    started = time.perf_counter()
    cpu = time.process_time()
    rows = read_updates(path)
    read_s = time.perf_counter() - started
    validated = validate_updates(rows)
    validate_s = time.perf_counter() - started - read_s
    plan = plan_updates(validated)
    seconds = time.perf_counter() - started
    cpu_s = time.process_time() - cpu
    peak = _peak_mb()
    # Not part of the pipeline (a plan builds request bodies lazily, as they are sent),
    # timed to show that materialising all of them up front would be cheap too.
    before = time.perf_counter()
    bodies = sum(1 for request in plan.requests() if request.body)
    bodies_s = time.perf_counter() - before
    return {
        "seconds": seconds,
        "cpu_s": cpu_s,
        "peak_mb": peak,
        "rows": len(rows),
        "valid_rows": int(validated["valid"].sum()),
        "requests": plan.request_count,
        "stages": {"read": read_s, "validate": validate_s, "plan": seconds - read_s - validate_s},
        "bodies_s": bodies_s,
        "bodies": bodies,
    }


def run_naive(path: Path, *, object_strings: bool = False) -> dict[str, Any]:
    """The default pandas reader, light cleaning, and a loop over groupby.

    ``object_strings``: pandas' pre-3.0 object strings instead of its default ``str``
    dtype (with pyarrow installed, pandas 3 reads text as Arrow strings, and the
    ``groupby`` loop over them is about twice as slow).
    """
    import pandas as pd

    if object_strings:
        with warnings.catch_warnings():  # deprecated in pandas 3, still honoured
            warnings.simplefilter("ignore")
            pd.set_option("future.infer_string", False)

    started = time.perf_counter()
    cpu = time.process_time()
    # pandas' default engine for .xlsx is openpyxl; named here so an upgrade cannot change it.
    xlsx = path.suffix == ".xlsx"
    df = pd.read_excel(path, engine="openpyxl") if xlsx else pd.read_csv(path)
    read_s = time.perf_counter() - started
    n_rows = len(df)
    df = df.dropna(subset=["PO Number", "Recipe Set ID", "New Status"])
    status = df["New Status"].astype(str).str.strip().str.lower()
    df = df.assign(**{"New Status": status.str.replace(" ", "-").str.replace("_", "-")})
    df = df[df["New Status"].isin(_KNOWN)]
    payloads = []
    for po, group in df.groupby("PO Number", sort=False):
        items = [
            {"recipeSetReadableId": str(line_id), "workflowStatus": status}
            for line_id, status in zip(group["Recipe Set ID"], group["New Status"], strict=True)
        ]
        payloads.append({"purchaseOrderNumber": str(po), "lineItems": items})
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "cpu_s": time.process_time() - cpu,
        "peak_mb": _peak_mb(),
        "rows": n_rows,
        "requests": len(payloads),
        "stages": {"read": read_s, "clean+loop": seconds - read_s},
    }


@dataclass(frozen=True)
class Measurement:
    """Best-of-N timings of one implementation on one file, each run in a fresh process."""

    impl: str
    runs: list[dict[str, Any]]

    @property
    def best(self) -> dict[str, Any]:
        """The fastest run (the least disturbed by other work on the machine)."""
        return min(self.runs, key=lambda r: float(r["seconds"]))

    @property
    def peak_mb(self) -> float:
        """The highest peak RSS over the runs."""
        return max(float(r["peak_mb"]) for r in self.runs)

    @property
    def baseline_mb(self) -> float:
        """RSS of the child after its imports, before any work (the same for every run)."""
        return min(float(r["baseline_mb"]) for r in self.runs)


def measure(impl: str, path: Path, repeats: int, timeout_s: float = 600.0) -> Measurement:
    """Run ``impl`` on ``path`` in ``repeats`` fresh child processes."""
    runs = []
    for _ in range(repeats):
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.pipeline", impl, str(path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{impl} on {path.name} failed:\n{done.stderr[-2000:]}")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return Measurement(impl, runs)


def _main() -> int:
    impl, path = sys.argv[1], Path(sys.argv[2])
    if impl.startswith("cmd-"):  # the naive way as a whole command: pandas and nothing else
        run_naive(path, object_strings=impl == "cmd-naive-object")
        return 0
    # Imports are not part of the timing: both sides load their readers up front.
    import openpyxl  # noqa: F401
    import pandas  # noqa: F401
    import python_calamine  # noqa: F401

    import spectrum_tools  # noqa: F401

    baseline = _peak_mb()
    if impl == "spectrum":
        result = run_spectrum(path)
    else:
        result = run_naive(path, object_strings=impl == "naive-object")
    result["baseline_mb"] = baseline
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
