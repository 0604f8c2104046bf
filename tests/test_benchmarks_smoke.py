"""The benchmark suite runs end to end at smoke sizes, so its scripts cannot rot.

No timing is asserted (CI machines vary); only that ``python -m benchmarks.run --smoke``
writes the report with every face's rows, the charts and the raw JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_smoke_run_writes_tables_and_charts(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"wrote {out / 'results.md'}" in done.stdout

    report = (out / "results.md").read_text(encoding="utf-8")
    for heading in (
        "## 1. Local pipeline",
        "## 2. Pacing",
        "## 3. Latency hiding",
        "## 4. Read-back",
        "## Requests versus rows",
        "## Targets",
    ):
        assert heading in report
    rows = {line.split("|")[1].strip() for line in report.splitlines() if line.startswith("| ")}
    # Face 1: every sheet, both ways; face 2: both runs; face 3: every worker count.
    assert {"CSV 2k", "CSV 10k", "XLSX 2k"} <= rows
    assert {"at the limit", "2x over the limit"} <= rows
    assert {"1", "4", "16", "64"} <= rows
    assert "sent to the sandbox (5 orders)" in rows
    # Face 4: both reads, both reconciles, both re-uploads, and the paced projection checks.
    assert {"bulk read", "one GET per order", "reconcile, bulk"} <= rows
    assert {"reconcile, one GET per order", "with read-back", "without read-back"} <= rows
    assert {"bulk read, paced at 6,000/min", "re-upload with read-back, paced at 6,000/min"} <= rows
    assert "| one GET per order | 400 | 0 | 400 | 400 |" in report
    assert "(projected)" in report
    # Requests versus rows: one request per order, one per row for the naive loop.
    assert "| sent to the sandbox (5 orders) | 20 | 5 | 20 |" in report
    assert "| one request per order (not per row) | 5 requests for 20 rows / 5 orders | met |" in (
        report
    )

    for chart in ("pipeline.png", "pacing.png", "latency.png"):
        image = (out / chart).read_bytes()
        assert image.startswith(PNG_MAGIC) and len(image) > 5_000, chart
        assert f"![{chart}]({chart})" in report

    raw = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert raw["smoke"] is True
    assert [p["label"] for p in raw["pipeline"]] == ["CSV 2k", "CSV 10k", "XLSX 2k"]
    for sheet in raw["pipeline"]:
        # Both ways planned the same sheet; spectrum-tools holds back orders with bad rows.
        assert 0 < sheet["spectrum"][0]["requests"] <= sheet["naive"][0]["requests"]
    assert [r["workers"] for r in raw["latency"]] == [1, 4, 16, 64]
    assert all(p["updated"] == p["orders"] for p in raw["pacing"])
    _assert_readback(raw["readback"])
    readback_targets = [
        t
        for t in raw["targets"]
        if t["name"].startswith(("bulk read of 400 orders", "reconcile reads", "re-upload"))
    ]
    assert len(readback_targets) == 3
    assert all(t["met"] is True for t in readback_targets), readback_targets
    # Generated data stays in the output folder.
    assert any((out / "data").iterdir())


def _assert_readback(raw: dict[str, list[dict[str, Any]]]) -> None:
    """What the sandbox saw: a few searches then GETs for the rest, versus one GET each;
    the re-upload with read-back sends only the half not applied yet."""
    reads = {r["label"]: r for r in raw["reads"]}
    bulk, each = reads["bulk read"], reads["one GET per order"]
    assert each == {**each, "orders": 400, "searches": 0, "gets": 400, "read": 400}
    assert 1 <= bulk["searches"] <= 5
    assert bulk["read"] == 400 and 0 < bulk["via_search"] < 400
    assert bulk["gets"] == 400 - bulk["via_search"]
    assert bulk["client_requests"] == bulk["searches"] + bulk["gets"]
    # Projected at 100/min per endpoint: one GET per order is 399 slots of 0.612 s.
    assert each["projected_s"] == pytest.approx(399 * 0.612)
    assert bulk["projected_s"] < each["projected_s"] / 5
    rec = reads["reconcile, bulk"]
    assert (rec["searches"], rec["gets"], rec["read"]) == (bulk["searches"], bulk["gets"], 400)
    assert reads["reconcile, one GET per order"]["gets"] == 400

    ups = {u["label"]: u for u in raw["reuploads"]}
    on, off = ups["with read-back"], ups["without read-back"]
    assert (on["orders"], on["applied_before"]) == (60, 30)
    assert on["status_requests"] == 30 and on["outcomes"] == {"unchanged": 30, "updated": 30}
    assert 1 <= on["searches"] <= 5
    assert (off["status_requests"], off["searches"], off["gets"]) == (60, 0, 0)
    assert off["outcomes"] == {"updated": 60}
    assert all(u["holding_wanted_after"] == 60 for u in raw["reuploads"])
