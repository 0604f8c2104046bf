"""The benchmark suite runs end to end at smoke sizes, so its scripts cannot rot.

No timing is asserted (CI machines vary); only that ``python -m benchmarks.run --smoke``
writes the report with every face's rows, the charts and the raw JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
    # Generated data stays in the output folder.
    assert any((out / "data").iterdir())
