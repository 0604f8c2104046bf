"""`spectrum-tools validate`: summary, per-row output, exit codes, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from spectrum_tools.cli import main

SAMPLES = Path(__file__).resolve().parent.parent / "sample_data"


def _csv(tmp_path: Path, text: str, name: str = "rows.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_all_valid_sheet_exits_0_and_summarises(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _csv(
        tmp_path, "PO,Recipe Set ID,Status\nP1,AAAA1111,In Progress\nP2,BBBB2222,completed\n"
    )
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Rows:" in out and "2" in out
    assert "Requests:        2" in out


def test_invalid_rows_exit_1_with_reasons(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _csv(tmp_path, "PO,Recipe Set ID,Status\nP1,AAAA1111,shipped\n,BBBB2222,completed\n")
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert "unknown workflowStatus" in out
    assert "blank purchaseOrderNumber" in out


def test_sample_workbook_summary_and_xlsx_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "rows.xlsx"
    code = main(["validate", str(SAMPLES / "status_updates.xlsx"), "--output", str(target)])
    assert code == 1  # the sample has messy rows on purpose
    out = capsys.readouterr().out
    assert "conflicting statuses" in out
    book = openpyxl.load_workbook(target)
    sheet = book.active
    header = [c.value for c in sheet[1]]
    for column in (
        "purchaseOrderNumber",
        "recipeSetReadableId",
        "workflowStatus",
        "source_row",
        "valid",
        "problem",
    ):
        assert column in header
    ids = [row[header.index("recipeSetReadableId")] for row in sheet.iter_rows(min_row=2)]
    assert all(cell.data_type == "s" for cell in ids if cell.value is not None)
    assert "12345678" in [cell.value for cell in ids]  # numeric Excel cell kept as text


def test_csv_output(tmp_path: Path) -> None:
    path = _csv(tmp_path, "PO;Recipe Set ID;Status\n00123;AAAA1111;ON_HOLD\n")
    target = tmp_path / "out.csv"
    assert main(["validate", str(path), "-o", str(target)]) == 0
    text = target.read_text(encoding="utf-8-sig")
    assert "00123" in text and "on-hold" in text


@pytest.mark.badinput
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["validate", "missing.xlsx"], "missing.xlsx: no such file"),
        (["validate", "{SAMPLES}/status_updates.xlsx", "--sheet", "Nope"], "no sheet 'Nope'"),
        (["validate"], "the following arguments are required: file"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_usage_and_unreadable_exit_2_with_one_line(
    args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [a.replace("{SAMPLES}", str(SAMPLES)) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.badinput
def test_missing_column_names_missing_and_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _csv(tmp_path, "PO,Recipe,State\nP1,AAAA1111,completed\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "recipeSetReadableId" in err and "workflowStatus" in err
    assert "'Recipe'" in err and "'State'" in err
    assert err.count("\n") == 1


def test_console_script_runs_as_a_real_process(tmp_path: Path) -> None:
    path = _csv(tmp_path, "PO,Recipe Set ID,Status\nP1,AAAA1111,completed\n")
    script = Path(sys.executable).parent / "spectrum-tools"
    done = subprocess.run(
        [str(script), "validate", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "Requests:" in done.stdout
    bad = subprocess.run(
        [str(script), "validate", str(tmp_path / "nope.csv")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr and "nope.csv" in bad.stderr
