"""Run reports: the workbook and CSVs an analyst opens after a send.

End to end: every report here comes from a real send to the sandbox over HTTP, and is read
back with openpyxl (the way Excel sees cell types) or with ``read_updates`` (the way the
toolkit reads an uploaded error file).
"""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from support.sandboxes import SANDBOX_TOKEN, MakeSandbox

import spectrum_tools.report as report_module
from spectrum_tools import (
    SpectrumClient,
    export_csv,
    plan_updates,
    read_updates,
    send_updates,
    validate_updates,
    write_report,
)
from spectrum_tools.cli import main
from spectrum_tools.errors import ConfigError, JournalError
from spectrum_tools.planning import Plan
from spectrum_tools.sandbox import SandboxServer

FAST = 60_000.0
FORMULA = '=HYPERLINK("http://x")'

# A small Spectrum: ids that Excel would turn into numbers if they were not text cells.
ORDERS = pd.DataFrame(
    {
        "purchaseOrderNumber": ["PO-1", "PO-1", "PO-1", "00098765", "PO-3"],
        "recipeSetId": ["00123456", "12345678", "ABCD1234", "EFGH5678", "IJKL9012"],
        "workflowStatus": ["not-started"] * 5,
    }
)


def _sheet() -> pd.DataFrame:
    """An analyst's sheet: ids as text, a formula in Notes, a missing id, an invalid row."""
    return pd.DataFrame(
        {
            "PO Number": ["PO-1", "PO-1", "PO-1", "00098765", "PO-3", "PO-9"],
            "Recipe Set ID": ["00123456", "12345678", "ABCD1234", "EFGH5678", "NOPE0000", "X1"],
            "New Status": ["Completed", "on hold", "approved", "delivered", "approved", "shipped"],
            "Notes": [FORMULA, "+1 555", "-5", "@sum", "plain", ""],
        }
    )


def _send(sandbox: SandboxServer, tmp_path: Path) -> tuple[pd.DataFrame, Plan]:
    client = SpectrumClient(sandbox.base_url, token=SANDBOX_TOKEN)
    plan = plan_updates(validate_updates(read_updates(_sheet())))
    results = send_updates(
        plan, client, progress=False, max_per_minute=FAST, runs_dir=tmp_path / "runs"
    )
    return results, plan


@pytest.fixture
def sent(make_sandbox: MakeSandbox, tmp_path: Path) -> tuple[pd.DataFrame, Plan]:
    return _send(make_sandbox(seed_from=ORDERS), tmp_path)


def _rows(ws: object) -> list[tuple[object, ...]]:
    return list(ws.iter_rows(values_only=True))  # type: ignore[attr-defined]


def _column(ws: object, header: str) -> list[openpyxl.cell.Cell]:
    rows = list(ws.iter_rows())  # type: ignore[attr-defined]
    index = [c.value for c in rows[0]].index(header)
    return [row[index] for row in rows[1:]]


def _summary(book: openpyxl.Workbook) -> dict[tuple[str, str], object]:
    return {(s, i): v for s, i, v in _rows(book["Summary"])[1:]}


# --------------------------------------------------------------------------- workbook


def test_report_has_four_sheets_with_the_columns_an_analyst_needs(
    sent: tuple[pd.DataFrame, Plan], tmp_path: Path
) -> None:
    results, plan = sent
    path = write_report(results, tmp_path / "out" / "report.xlsx", plan=plan)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["Summary", "Orders", "Lines", "Invalid rows"]
    orders = _rows(book["Orders"])
    assert list(orders[0][:4]) == ["purchaseOrderNumber", "outcome", "http_status", "details"]
    assert {r[0]: r[1] for r in orders[1:]} == {
        "PO-1": "updated",
        "00098765": "updated",
        "PO-3": "not_found",
        "PO-9": "invalid",
    }
    lines = _rows(book["Lines"])
    assert list(lines[0]) == [
        "purchaseOrderNumber",
        "recipeSetReadableId",
        "workflowStatus",
        "Notes",
        "source_row",
        "outcome",
        "details",
        "attempts",
    ]
    assert len(lines) == 1 + 6
    by_id = {r[1]: r for r in lines[1:]}
    assert by_id["NOPE0000"][5] == "not_found"
    assert "NOPE0000" in str(by_id["NOPE0000"][6])
    invalid = _rows(book["Invalid rows"])
    assert invalid[0][0] == "source_row"
    assert invalid[0][-1] == "problem"
    assert [(r[0], r[2]) for r in invalid[1:]] == [(7, "X1")]
    assert "shipped" in str(invalid[1][-1])


def test_sheets_have_header_filters_sized_columns_and_frozen_headers(
    sent: tuple[pd.DataFrame, Plan], tmp_path: Path
) -> None:
    results, plan = sent
    book = openpyxl.load_workbook(write_report(results, tmp_path / "r.xlsx", plan=plan))
    for name in ("Orders", "Lines", "Invalid rows"):
        ws = book[name]
        assert ws.auto_filter.ref is not None and ws.auto_filter.ref.startswith("A1:"), name
        assert ws.freeze_panes == "A2", name
        assert ws.column_dimensions["A"].width >= len("purchaseOrderNumber") or name != "Orders"
    assert book["Lines"].column_dimensions["G"].width > 20  # the details column is wide


def test_summary_counts_outcomes_statuses_and_has_a_chart(
    sent: tuple[pd.DataFrame, Plan], tmp_path: Path
) -> None:
    results, plan = sent
    book = openpyxl.load_workbook(write_report(results, tmp_path / "r.xlsx", plan=plan))
    summary = _summary(book)
    assert summary[("orders by outcome", "updated")] == 2
    assert summary[("orders by outcome", "not_found")] == 1
    assert summary[("orders by outcome", "invalid")] == 1
    assert summary[("lines by outcome", "updated")] == 4
    assert summary[("lines by workflow status", "completed")] == 1
    assert summary[("lines updated by workflow status", "on-hold")] == 1
    # One PUT per order sent: PO-3 is not_found from the read (NOPE0000), without a request.
    assert summary[("run", "Requests sent")] == 2
    assert summary[("run", "Environment (host)")] == results.attrs["host"]
    charts = book["Summary"]._charts
    assert len(charts) == 1
    # The chart plots exactly the "orders by outcome" rows.
    ref = charts[0].series[0].val.numRef.f
    rows = _rows(book["Summary"])
    plotted = [i + 1 for i, r in enumerate(rows) if r[0] == "orders by outcome"]
    assert ref == f"'Summary'!$C${plotted[0]}:$C${plotted[-1]}"


def test_ids_stay_text_cells(sent: tuple[pd.DataFrame, Plan], tmp_path: Path) -> None:
    results, plan = sent
    book = openpyxl.load_workbook(write_report(results, tmp_path / "r.xlsx", plan=plan))
    ids = {c.value: c.data_type for c in _column(book["Lines"], "recipeSetReadableId")}
    assert ids["00123456"] == "s"
    assert ids["12345678"] == "s"
    orders = {c.value: c.data_type for c in _column(book["Orders"], "purchaseOrderNumber")}
    assert orders["00098765"] == "s"


def test_formula_like_notes_are_string_cells_never_formulas(
    sent: tuple[pd.DataFrame, Plan], tmp_path: Path
) -> None:
    results, plan = sent
    book = openpyxl.load_workbook(write_report(results, tmp_path / "r.xlsx", plan=plan))
    notes = [c for c in _column(book["Lines"], "Notes") if c.value]
    assert {c.value for c in notes} >= {FORMULA, "+1 555", "-5", "@sum"}
    assert all(c.data_type == "s" for c in notes)


def test_error_codes_and_control_characters_in_notes_do_not_break_the_report(
    make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox(seed_from=ORDERS)
    sheet = pd.DataFrame(
        {
            "PO": ["PO-1", "PO-1"],
            "Recipe Set ID": ["00123456", "12345678"],
            "Status": ["completed", "completed"],
            "Notes": ["#N/A", "pasted\x07bell"],
        }
    )
    client = SpectrumClient(sandbox.base_url, token=SANDBOX_TOKEN)
    plan = plan_updates(validate_updates(read_updates(sheet)))
    results = send_updates(plan, client, progress=False, max_per_minute=FAST, journal=False)
    book = openpyxl.load_workbook(write_report(results, tmp_path / "r.xlsx", plan=plan))
    notes = _column(book["Lines"], "Notes")
    assert [(c.value, c.data_type) for c in notes] == [("#N/A", "s"), ("pasted\ufffdbell", "s")]


def test_lines_sheet_reads_back_as_the_analysts_rows(
    sent: tuple[pd.DataFrame, Plan], tmp_path: Path
) -> None:
    results, plan = sent
    path = write_report(results, tmp_path / "r.xlsx", plan=plan)
    # No sheet named: the error file is the one sheet with the three columns.
    again = read_updates(path)
    assert again["source_sheet"].unique().tolist() == ["Lines"]
    keys = ["purchaseOrderNumber", "recipeSetReadableId", "Notes"]
    original = read_updates(_sheet())
    assert again[keys].to_dict("records") == original[keys].to_dict("records")
    assert again["outcome"].tolist() == [
        "updated",
        "updated",
        "updated",
        "updated",
        "not_found",
        "invalid",
    ]


def test_fixed_error_file_goes_through_a_second_round(
    make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox(seed_from=ORDERS)
    results, plan = _send(sandbox, tmp_path)
    first = write_report(results, tmp_path / "r1.xlsx", plan=plan)
    again = read_updates(first)
    fixed = again[again["outcome"] != "updated"].copy()
    fixed.loc[fixed["recipeSetReadableId"] == "NOPE0000", "recipeSetReadableId"] = "IJKL9012"
    fixed.loc[fixed["workflowStatus"] == "shipped", "purchaseOrderNumber"] = "PO-3"
    fixed.loc[fixed["workflowStatus"] == "shipped", "recipeSetReadableId"] = "IJKL9012"
    fixed = fixed[fixed["workflowStatus"] != "shipped"]
    client = SpectrumClient(sandbox.base_url, token=SANDBOX_TOKEN)
    plan2 = plan_updates(validate_updates(read_updates(fixed)))
    results2 = send_updates(
        plan2, client, progress=False, max_per_minute=FAST, runs_dir=tmp_path / "runs"
    )
    second = openpyxl.load_workbook(write_report(results2, tmp_path / "r2.xlsx", plan=plan2))
    header = _rows(second["Lines"])[0]
    # The toolkit's own columns are not piled up round after round.
    assert header.count("source_row") == 1
    assert not any(str(h).startswith("source_row (") for h in header)
    assert [r[5] for r in _rows(second["Lines"])[1:]] == ["updated"]


def test_report_of_a_run_id_comes_from_the_journal(
    sent: tuple[pd.DataFrame, Plan], tmp_path: Path
) -> None:
    results, _ = sent
    run_id = results.attrs["run_id"]
    assert isinstance(run_id, int)
    path = write_report(run_id, tmp_path / "r.xlsx", runs_dir=tmp_path / "runs")
    book = openpyxl.load_workbook(path)
    summary = _summary(book)
    assert summary[("run", "Run")] == run_id
    assert summary[("run", "Input file")] == "Plan"  # what send_updates was given
    assert len(str(summary[("run", "Input file hash")])) >= 32
    assert summary[("run", "Started")] and summary[("run", "Finished")]
    assert summary[("run", "State")] == "finished"
    assert len(_rows(book["Lines"])) == 1 + 6
    assert [r[0] for r in _rows(book["Invalid rows"])[1:]] == [7]


def test_results_without_plan_take_lines_from_the_journal_they_name(
    sent: tuple[pd.DataFrame, Plan], tmp_path: Path
) -> None:
    results, _ = sent
    book = openpyxl.load_workbook(write_report(results, tmp_path / "r.xlsx"))
    assert len(_rows(book["Lines"])) == 1 + 6
    assert len(_rows(book["Invalid rows"])) == 1 + 1


def test_results_without_plan_or_journal_say_what_is_missing(
    make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox(seed_from=ORDERS)
    client = SpectrumClient(sandbox.base_url, token=SANDBOX_TOKEN)
    results = send_updates(_sheet(), client, progress=False, max_per_minute=FAST, journal=False)
    book = openpyxl.load_workbook(write_report(results, tmp_path / "r.xlsx"))
    assert len(_rows(book["Orders"])) == 1 + 4
    assert len(_rows(book["Lines"])) == 1
    assert "pass plan=" in str(_summary(book)[("run", "Note")])


def test_long_tables_continue_on_a_second_sheet(
    sent: tuple[pd.DataFrame, Plan], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report_module, "EXCEL_MAX_DATA_ROWS", 4)
    results, plan = sent
    book = openpyxl.load_workbook(write_report(results, tmp_path / "r.xlsx", plan=plan))
    assert "Lines (2)" in book.sheetnames
    assert len(_rows(book["Lines"])) - 1 + len(_rows(book["Lines (2)"])) - 1 == 6


def test_report_refuses_other_extensions_and_unknown_inputs(
    sent: tuple[pd.DataFrame, Plan], tmp_path: Path
) -> None:
    results, plan = sent
    with pytest.raises(ConfigError, match="xlsx"):
        write_report(results, tmp_path / "r.csv", plan=plan)
    with pytest.raises(ConfigError, match="run record"):
        write_report("1", tmp_path / "r.xlsx")  # type: ignore[arg-type]
    with pytest.raises(JournalError, match="no run 999"):
        write_report(999, tmp_path / "r.xlsx", runs_dir=tmp_path / "runs")
    with pytest.raises(JournalError, match="no run journal"):
        write_report(1, tmp_path / "r.xlsx", runs_dir=tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()  # a report never creates a runs folder


# --------------------------------------------------------------------------- CSV


def test_csv_export_writes_the_same_tables_safely(
    sent: tuple[pd.DataFrame, Plan], tmp_path: Path
) -> None:
    results, plan = sent
    written = export_csv(results, tmp_path / "csv", plan=plan)
    assert [p.name for p in written] == [
        "summary.csv",
        "orders.csv",
        "lines.csv",
        "invalid-rows.csv",
    ]
    raw = (tmp_path / "csv" / "lines.csv").read_text(encoding="utf-8-sig")
    assert "'=HYPERLINK" in raw and ",=HYPERLINK" not in raw
    assert ",'+1 555," in raw and ",'-5," in raw and ",'@sum," in raw
    again = read_updates(tmp_path / "csv" / "lines.csv")
    assert again["Notes"].tolist() == _sheet()["Notes"].tolist()
    assert again["recipeSetReadableId"].tolist()[:2] == ["00123456", "12345678"]
    orders = pd.read_csv(tmp_path / "csv" / "orders.csv", dtype=str, keep_default_na=False)
    assert orders["http_status"].tolist()[:2] == ["200", "200"]  # not "200.0"


def test_csv_export_escapes_formula_like_headers_and_reads_them_back(
    make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sheet = _sheet().rename(columns={"Notes": "=Notes"})
    client = SpectrumClient(make_sandbox(seed_from=ORDERS).base_url, token=SANDBOX_TOKEN)
    plan = plan_updates(validate_updates(read_updates(sheet)))
    results = send_updates(plan, client, progress=False, max_per_minute=FAST, journal=False)
    export_csv(results, tmp_path, plan=plan)
    header = (tmp_path / "lines.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    assert header.split(",")[3] == "'=Notes"
    assert read_updates(tmp_path / "lines.csv")["=Notes"].tolist()[0] == FORMULA


# --------------------------------------------------------------------------- CLI


def test_cli_report_writes_xlsx_csv_files_and_folders(
    sent: tuple[pd.DataFrame, Plan], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = str(sent[0].attrs["run_id"])
    runs = ["--runs-dir", str(tmp_path / "runs")]
    assert main(["report", run, "-o", str(tmp_path / "r.xlsx"), *runs]) == 0
    assert openpyxl.load_workbook(tmp_path / "r.xlsx").sheetnames[0] == "Summary"
    assert main(["report", run, "-o", str(tmp_path / "run.csv"), *runs]) == 0
    assert (tmp_path / "run-lines.csv").is_file()
    assert main(["report", run, "-o", f"{tmp_path / 'folder'}/", *runs]) == 0
    assert (tmp_path / "folder" / "orders.csv").is_file()
    out = capsys.readouterr().out
    assert out.count("Report written to") == 1 + 4 + 4


def test_cli_report_errors_are_one_line_and_exit_2(
    sent: tuple[pd.DataFrame, Plan], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = ["--runs-dir", str(tmp_path / "runs")]
    assert main(["report", "999", "-o", str(tmp_path / "r.xlsx"), *runs]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no run 999" in err
    assert main(["report", "abc", "-o", str(tmp_path / "r.xlsx")]) == 2
    assert main(["report", "1", "-o", str(tmp_path / "r.pdf"), *runs]) == 2
    assert "FILE.xlsx" in capsys.readouterr().err
    assert not (tmp_path / "r.xlsx").exists()
