"""The bulk-update app, driven through its widgets (set values, click buttons) in pytest.

Every step runs against a real sandbox: the app's own bundled one, or the ``sandbox``
fixture reached through an environments file. Nothing of the library is mocked.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ipywidgets as w
import openpyxl
import pandas as pd
import pytest

from spectrum_tools.engine import SendOptions
from spectrum_tools.journal import Journal
from spectrum_tools.planning import plan_updates
from spectrum_tools.report import write_report
from spectrum_tools.results import OrderResult
from spectrum_tools.sandbox import SandboxServer, SandboxSettings, sample_data_dir
from spectrum_tools.schema import Outcome
from spectrum_tools.sheets import read_updates
from spectrum_tools.validation import validate_updates
from spectrum_tools.widgets import BulkUpdateApp
from spectrum_tools.widgets.environment import CUSTOM
from spectrum_tools.widgets.preview import LINE_COLUMNS, build_send_preview, preview_table
from spectrum_tools.widgets.run import RunPanel, WidgetProgress

SAMPLE_CSV = sample_data_dir() / "status_updates.csv"
SAMPLE_XLSX = sample_data_dir() / "status_updates.xlsx"
FAST = SandboxSettings(rate_limit=None)
MakeApp = Callable[..., BulkUpdateApp]


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[MakeApp]:
    """Apps with their runs folder in tmp_path and no real environment variables."""
    made: list[BulkUpdateApp] = []

    def make(**kwargs: Any) -> BulkUpdateApp:
        kwargs.setdefault("runs_dir", tmp_path / "runs")
        kwargs.setdefault("environments_file", None)
        kwargs.setdefault("environ", {})
        kwargs.setdefault("sandbox_settings", SandboxSettings(rate_limit=None))
        kwargs.setdefault("max_per_minute", 6000)
        app = BulkUpdateApp(**kwargs)
        made.append(app)
        return app

    yield make
    for app in made:
        app.close()


def environments(tmp_path: Path, sandbox: SandboxServer, *, production: bool) -> Path:
    path = tmp_path / "spectrum-environments.toml"
    path.write_text(
        "[environments.live]\n"
        f'base_url = "{sandbox.base_url}"\n'
        f"production = {'true' if production else 'false'}\n",
        encoding="utf-8",
    )
    return path


def host_of(sandbox: SandboxServer) -> str:
    return sandbox.base_url.removeprefix("http://").rstrip("/")


def upload(app: BulkUpdateApp, path: Path) -> None:
    data = path.read_bytes()
    app.upload.value = (
        {
            "name": path.name,
            "type": "",
            "size": len(data),
            "content": memoryview(data),
            "last_modified": datetime.now(UTC),
        },
    )


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def all_state(app: BulkUpdateApp) -> str:
    """Every widget's synced state, as it would be saved into a notebook."""
    seen: list[dict[str, Any]] = []

    def walk(widget: w.Widget) -> None:
        seen.append(widget.get_state())
        for child in getattr(widget, "children", ()):
            walk(child)

    walk(app.widget)
    return json.dumps(seen, default=repr)


def message(app: BulkUpdateApp) -> str:
    """The latest message, as the analyst sees it next to the button that caused it."""
    return html.unescape(str(app.last_note.value))


def assert_one_line_error(app: BulkUpdateApp, *words: str) -> None:
    text = message(app)
    assert "spectrum-error" in text, text
    assert "Traceback" not in text
    assert "\n" not in text
    for word in words:
        assert word in text, text


def preview_and_send(app: BulkUpdateApp, *, confirm: str = "") -> None:
    """Preview, press Send, (type the name,) press "Yes, send"."""
    app.preview_button.click()
    assert not app.send_button.disabled, message(app)
    app.send_button.click()
    app.confirm_input.value = confirm
    app.yes_button.click()


def writes(sandbox: SandboxServer) -> list[dict[str, Any]]:
    """The status requests the sandbox answered (reads of the current state left out)."""
    return [dict(r) for r in sandbox.requests() if r["endpoint"] == "order-status"]


def texts_of(widget: w.Widget) -> str:
    """Every text the analyst can read in the app: HTML, descriptions, placeholders, options."""
    seen: list[str] = []

    def walk(node: w.Widget) -> None:
        for name in ("value", "description", "placeholder", "tooltip"):
            value = getattr(node, name, None)
            if isinstance(value, str):
                seen.append(value)
        for label in getattr(node, "_options_labels", ()):
            seen.append(str(label))
        for child in getattr(node, "children", ()):
            walk(child)

    walk(widget)
    return "\n".join(seen)


# --------------------------------------------------------------------------- 1 environment


def test_environment_menu_offers_sandbox_file_environments_and_a_custom_url(
    make_app: MakeApp, tmp_path: Path, sandbox: SandboxServer
) -> None:
    app = make_app(environments_file=environments(tmp_path, sandbox, production=True))
    values = [value for _label, value in app.environment_dropdown.options]
    assert values == ["sandbox", "live", CUSTOM]
    assert "SANDBOX" in app.production_badge.value
    assert app.token_input.layout.display == "none"  # the sandbox needs none

    app.environment_dropdown.value = "live"
    assert "PRODUCTION" in app.production_badge.value
    assert "spectrum-badge-production" in app.production_badge.value
    assert app.send_button.button_style == "danger"
    assert app.token_input.layout.display is None

    app.environment_dropdown.value = CUSTOM
    assert app.custom_url.layout.display is None
    app.custom_url.value = "https://spectrum.example.com"
    assert "treated as PRODUCTION" in app.production_badge.value


def test_an_environment_file_marked_not_production_gets_no_production_badge(
    make_app: MakeApp, tmp_path: Path, sandbox: SandboxServer
) -> None:
    app = make_app(
        environments_file=environments(tmp_path, sandbox, production=False), environment="live"
    )
    assert "PRODUCTION" not in app.production_badge.value
    assert app.send_button.button_style == "primary"


@pytest.mark.badinput
def test_a_bad_environments_file_is_one_line_and_the_sandbox_still_works(
    make_app: MakeApp, tmp_path: Path
) -> None:
    bad = tmp_path / "envs.toml"
    bad.write_text("[environments.x]\nbase_url = 3\n", encoding="utf-8")
    app = make_app(environments_file=bad, input_path=SAMPLE_CSV)
    assert_one_line_error(app, "envs.toml", "environments.x.base_url")
    assert [v for _l, v in app.environment_dropdown.options] == ["sandbox", CUSTOM]
    app.validate_button.click()
    assert "205" in app.validation_summary.value


@pytest.mark.badinput
def test_a_bad_custom_url_is_refused_in_one_line(make_app: MakeApp) -> None:
    app = make_app(input_path=SAMPLE_CSV)
    app.environment_dropdown.value = CUSTOM
    app.custom_url.value = "http://spectrum.example.com"
    assert "refusing plain http" in app.production_badge.value
    app.preview_button.click()
    assert_one_line_error(app, "refusing plain http")
    assert app.last_note is app.preview_panel.note
    assert app.send_button.disabled


def test_test_connection_reads_one_order_of_the_sheet_and_says_what_it_found(
    make_app: MakeApp, tmp_path: Path, sandbox: SandboxServer
) -> None:
    app = make_app(
        environments_file=environments(tmp_path, sandbox, production=False),
        environment="live",
        environ={"SPECTRUM_API_TOKEN": sandbox.token},
    )
    app.test_connection_button.click()  # no sheet yet: a search of the last day
    assert app.last_note is app.environment_panel.note
    assert f"Connected to {host_of(sandbox)}" in message(app)
    assert "orders changed in the last day" in message(app)
    assert [r["path"] for r in sandbox.requests()] == ["/api/orders/search"]

    app.path_input.value = str(SAMPLE_CSV)
    app.load_button.click()
    app.test_connection_button.click()
    assert "order HA-US-DEV00011101 found" in message(app), message(app)
    assert [r["method"] for r in sandbox.requests()] == ["POST", "GET"]  # reads only


@pytest.mark.badinput
def test_test_connection_with_a_wrong_token_says_so_in_one_line(
    make_app: MakeApp, tmp_path: Path, sandbox: SandboxServer
) -> None:
    app = make_app(
        environments_file=environments(tmp_path, sandbox, production=False),
        environment="live",
        environ={"SPECTRUM_API_TOKEN": "wrong-token"},
    )
    app.test_connection_button.click()
    assert_one_line_error(app)
    assert app.last_note is app.environment_panel.note
    assert "wrong-token" not in all_state(app)


# --------------------------------------------------------------------------- 2 input


def test_nothing_is_loaded_until_the_analyst_loads_a_file_or_tries_the_sample(
    make_app: MakeApp,
) -> None:
    app = make_app()
    assert not app.source_panel.loaded
    assert app.path_input.value == ""
    assert app.send_button.disabled and app.preview_grid.frame is None
    app.sample_button.click()
    assert app.source_panel.loaded
    assert "Loaded status_updates.xlsx" in app.source_panel.note.value
    assert app.path_input.value.endswith("status_updates.xlsx")


def test_upload_prefills_the_column_mapping_and_the_counter_shows_the_file(
    make_app: MakeApp,
) -> None:
    app = make_app()
    app.path_input.value = "typed/by/hand.csv"
    upload(app, SAMPLE_CSV)
    assert app.sheet_dropdown.disabled  # a CSV has no sheets
    assert {f: d.value for f, d in app.column_dropdowns.items()} == {
        "purchaseOrderNumber": "PO Number",
        "recipeSetReadableId": "Recipe Set ID",
        "workflowStatus": "New Status",
    }
    assert "Loaded status_updates.csv" in app.source_panel.note.value
    # The counter says one file; the widget keeps its name, never its content.
    assert len(app.upload.value) == 1 and app.upload.value[0]["name"] == "status_updates.csv"
    assert len(app.upload.value[0]["content"]) == 0
    assert "HA-US-DEV00011101" not in all_state(app)
    assert app.path_input.value == ""  # the path box does not name another file
    app.validate_button.click()
    assert "<b>211</b> rows" in app.validation_summary.value


def test_the_path_box_keeps_what_was_typed_and_the_upload_counter_resets(
    make_app: MakeApp, tmp_path: Path
) -> None:
    app = make_app()
    upload(app, SAMPLE_CSV)
    typed = str(SAMPLE_XLSX.parent / ".." / SAMPLE_XLSX.parent.name / SAMPLE_XLSX.name)
    app.path_input.value = typed
    app.load_button.click()
    assert app.path_input.value == typed
    assert app.upload.value == ()  # no upload is what is loaded now
    assert app.source_panel.label.endswith("status_updates.xlsx")


def test_a_workbook_path_lists_its_sheets_and_picks_the_one_with_the_columns(
    make_app: MakeApp,
) -> None:
    app = make_app()
    app.path_input.value = str(SAMPLE_XLSX)
    app.load_button.click()
    assert [v for _l, v in app.sheet_dropdown.options] == ["Notes", "Updates"]
    assert app.sheet_dropdown.value == "Updates"
    assert app.column_dropdowns["workflowStatus"].value == "New Status"
    app.sheet_dropdown.value = "Notes"
    assert app.column_dropdowns["workflowStatus"].value == ""
    app.validate_button.click()
    assert_one_line_error(app, "pick the PO number column")
    assert app.last_note is app.validate_panel.note
    app.sheet_dropdown.value = "Updates"
    app.validate_button.click()
    assert "<b>211</b> rows" in app.validation_summary.value


def test_unknown_headers_are_mapped_by_hand(make_app: MakeApp, tmp_path: Path) -> None:
    sheet = tmp_path / "odd.csv"
    sheet.write_text(
        "Ref;Item code;Target\nHA-US-DEV00011101;TEBMKVGB;In Progress\n", encoding="utf-8"
    )
    app = make_app(input_path=sheet)
    assert "no column for PO number" in app.source_panel.status.value
    assert app.column_dropdowns["purchaseOrderNumber"].description == "PO number column"
    app.validate_button.click()
    assert_one_line_error(app, "pick the PO number column")
    app.column_dropdowns["purchaseOrderNumber"].value = "Ref"
    app.column_dropdowns["recipeSetReadableId"].value = "Item code"
    app.column_dropdowns["workflowStatus"].value = "Target"
    app.validate_button.click()
    assert "<b>1</b> valid" in app.validation_summary.value


@pytest.mark.badinput
def test_a_missing_or_broken_file_is_one_line(make_app: MakeApp, tmp_path: Path) -> None:
    app = make_app()
    app.path_input.value = str(tmp_path / "nope.xlsx")
    app.load_button.click()
    assert_one_line_error(app, "nope.xlsx", "no such file")
    assert app.last_note is app.source_panel.note
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 this is not a workbook")
    upload(app, broken)
    assert_one_line_error(app, "broken.xlsx")
    assert app.upload.value == ()  # the counter does not claim a file was loaded
    app.preview_button.click()
    assert_one_line_error(app, "load a sheet first")


def test_the_app_speaks_the_analysts_language(make_app: MakeApp) -> None:
    app = make_app(input_path=SAMPLE_CSV)
    app.validate_button.click()
    app.preview_button.click()
    text = texts_of(app.widget)
    for developer in ("papermill", "auto_send", "Run all", "SPECTRUM_API_TOKEN", "kernel"):
        assert developer not in text, developer
    assert "PO number column" in text
    # A disabled button looks disabled: the app's style greys it out.
    assert "spectrum-app" in app.widget._dom_classes
    assert ".jupyter-button:disabled" in text and "grayscale" in text


# --------------------------------------------------------------------------- 3 validate, fix


def test_validate_shows_counts_problems_and_a_grid_of_the_invalid_rows(
    make_app: MakeApp,
) -> None:
    app = make_app(input_path=SAMPLE_XLSX)
    app.validate_button.click()
    summary = app.validation_summary.value
    assert "<b>211</b> rows: <b>205</b> valid, <b>6</b> invalid" in summary
    assert "<b>46</b> to send" in summary
    assert "spectrum-problem-counts" in app.invalid_rows.value
    cells = app.fix_panel._cells
    assert sorted({row for row, _f in cells}) == [9, 15, 35, 39, 52, 58]  # the 6 invalid
    assert cells[(35, "workflowStatus")].value == "shipped"  # the analyst's own spelling
    problems = {row: html.unescape(label.value) for row, label in app.fix_panel._problems.items()}
    assert "did you mean 'delivered'?" in problems[35]
    assert "blank workflowStatus" in problems[39]
    assert "conflicting statuses" in problems[9]
    assert app.last_note is app.validate_panel.note
    # Problems by kind in the analyst's words: their header, not the API field name.
    kinds = html.unescape(app.invalid_rows.value)
    assert "unknown New Status" in kinds and "workflowStatus" not in kinds


def test_apply_suggestions_takes_each_suggested_status_and_keeps_the_sheets_spelling(
    make_app: MakeApp, tmp_path: Path
) -> None:
    app = make_app(input_path=SAMPLE_XLSX)
    assert app.suggestions_button.disabled  # nothing to suggest before Validate
    app.validate_button.click()
    offer = html.unescape(app.validate_panel.suggestions.value)
    assert "shipped → <b>delivered</b> (1 row)" in offer
    assert app.suggestions_button.description == "Apply 1 suggestion"
    assert not app.suggestions_button.disabled

    app.suggestions_button.click()

    assert "<b>206</b> valid" in app.validation_summary.value
    assert 35 not in app.fix_panel._problems  # no longer among the rows to fix
    assert "Took the suggested status on 1 row " in app.last_message
    # Pressing it again puts the sheet's own spelling back (and Send needs a new preview).
    app.suggestions_button.click()
    assert "<b>205</b> valid" in app.validation_summary.value
    app.suggestions_button.click()
    preview_and_send(app)
    assert app.wait(30)
    assert app.results is not None
    assert app.results.set_index("purchaseOrderNumber").loc["HA-US-DEV00011108", "outcome"] == (
        "updated"
    )
    # The report's Lines keep the sheet's spelling next to the status sent.
    lines = pd.read_excel(
        tmp_path / "runs" / "reports" / "run-1-report.xlsx",
        sheet_name="Lines",
        dtype=str,
        engine="openpyxl",
    ).fillna("")
    row = lines.loc[lines["source_row"] == "35"].iloc[0]
    assert (row["workflowStatus"], row["original_status"]) == ("delivered", "shipped")


def test_the_teams_status_aliases_from_the_environments_file_apply_in_the_app(
    make_app: MakeApp, tmp_path: Path
) -> None:
    envs = tmp_path / "team.toml"
    envs.write_text('[statuses.aliases]\nshipped = "delivered"\n', encoding="utf-8")
    app = make_app(input_path=SAMPLE_XLSX, environments_file=envs)
    app.validate_button.click()
    assert "<b>206</b> valid" in app.validation_summary.value  # "shipped" is theirs
    assert app.suggestions_button.disabled


@pytest.mark.badinput
def test_a_bad_status_alias_is_one_line_and_the_environments_still_load(
    make_app: MakeApp, tmp_path: Path, sandbox: SandboxServer
) -> None:
    envs = environments(tmp_path, sandbox, production=False)
    envs.write_text(
        envs.read_text(encoding="utf-8") + '\n[statuses.aliases]\nshipped = "gone"\n',
        encoding="utf-8",
    )
    app = make_app(input_path=SAMPLE_XLSX, environments_file=envs)
    assert_one_line_error(app, "shipped", "gone")
    assert "live" in [v for _l, v in app.environment_dropdown.options]  # still there
    app.validate_button.click()
    assert "<b>205</b> valid" in app.validation_summary.value  # the built-in spellings


def test_fixing_an_invalid_row_in_the_grid_revalidates_and_is_recorded_in_the_report(
    make_app: MakeApp, tmp_path: Path
) -> None:
    app = make_app(input_path=SAMPLE_XLSX)
    app.validate_button.click()
    app.fix_panel.edit(35, "workflowStatus", "delivered")
    assert "fine now" in app.fix_panel._problems[35].value
    assert "<b>206</b> valid" in app.validation_summary.value
    app.fix_panel._leave_out[58].value = True
    assert "left out" in app.fix_panel._problems[58].value
    corrections = app.corrections
    assert corrections.to_dict("records") == [
        {"row": 35, "column": "New Status", "original": "shipped", "corrected": "delivered"},
        {"row": 58, "column": "(whole row)", "original": "", "corrected": "(row left out)"},
    ]
    preview_and_send(app)
    assert app.wait(30)
    assert app.results is not None
    sent = app.results.set_index("purchaseOrderNumber")
    assert sent.loc["HA-US-DEV00011108", "outcome"] == "updated"  # row 35's order went
    report = tmp_path / "runs" / "reports" / "run-1-report.xlsx"
    book = openpyxl.load_workbook(report)
    assert book.sheetnames[-1] == "Corrections"
    rows = list(book["Corrections"].iter_rows(values_only=True))
    assert rows[0] == ("row", "column", "original", "corrected")
    assert rows[1] == ("35", "New Status", "shipped", "delivered")
    assert book["Summary"]._charts, "the Summary chart is there with the Corrections"
    # The corrections are kept with the run: a report written later (another kernel, the
    # CLI's `report 1`) from the journal has them too.
    # The error file: the row left out is there (to send another day), the fixed one not.
    errors = read_updates(tmp_path / "runs" / "reports" / "run-1-errors.xlsx")
    by_row = errors.set_index("row in the sheet")
    assert by_row.loc["58", "outcome"] == "left_out"
    assert by_row.loc["58", "reason"] == "left out before sending"
    assert "35" not in by_row.index
    later = write_report(1, tmp_path / "later.xlsx", runs_dir=tmp_path / "runs")
    again = list(openpyxl.load_workbook(later)["Corrections"].iter_rows(values_only=True))
    assert again == rows


# --------------------------------------------------------------------------- 4 preview


def test_preview_is_a_table_with_counts_and_the_json_behind_a_toggle(
    make_app: MakeApp,
) -> None:
    app = make_app(input_path=SAMPLE_CSV)
    app.max_per_minute.value = 60
    app.preview_button.click()  # validates on the way, then reads what Spectrum holds
    summary = html.unescape(app.preview_summary.value)
    # The order with a line item Spectrum lacks is refused from the read: no request.
    assert "<b>45</b> requests" in summary
    assert "will be sent <b>45</b>" in summary
    assert "refused: Spectrum does not know a line item <b>1</b>" in summary
    assert "held back: a row needs fixing <b>5</b>" in summary
    assert "<b>172</b> to change, <b>16</b> already set, <b>1</b> not in Spectrum" in summary
    assert "about <b>44 s</b>" in summary  # 44 gaps of a second
    assert "spectrum-transitions" in summary and "not-started</td><td>→</td>" in summary
    assert "spectrum-final-warning" not in summary  # nothing leaves delivered/cancelled
    grid = app.preview_grid.frame
    assert grid is not None
    assert list(grid.columns) == [
        "PO number",
        "Line item",
        "Current → new",
        "Current status",
        "New status",
        "What happens",
        "Note",
    ]
    first = grid.iloc[0]
    assert first["PO number"] == "HA-US-DEV00011101" and first["What happens"] == "will be sent"
    assert first["Current → new"] == "not-started → delivered"
    by_what = grid["What happens"].value_counts()
    assert by_what["will be sent"] == 165  # 172 changes, less the refused order's 7
    assert by_what["refused with its order (Spectrum does not know another line item)"] == 7
    assert by_what["already set: not sent"] == 16
    assert by_what["refused: Spectrum does not have this line item"] == 1
    assert by_what["held back: a row needs fixing"] > 0
    refused = grid[grid["What happens"].str.startswith("refused: Spectrum")].iloc[0]
    assert refused["Line item"] == "HS7SW33X" and refused["Current status"] == "(unknown)"
    # The JSON is behind a closed toggle, and holds only line items that change.
    assert app.preview_panel.json_toggle.selected_index is None
    payloads = app.sample_payloads.value
    assert payloads.count("spectrum-payload") == 3
    assert "HA-US-DEV00011101" in payloads and "lineItems" in payloads
    app.max_per_minute.value = 600
    assert "above 100 a minute" in app.preview_panel.pace_note.value


def test_without_a_token_the_preview_is_the_plan_alone_and_says_so() -> None:
    rows = pd.DataFrame(
        {
            "purchaseOrderNumber": ["P1", "P1", "P2", "P2"],
            "recipeSetReadableId": ["AAAA1111", "BBBB2222", "CCCC3333", "DDDD4444"],
            "workflowStatus": ["completed", "on hold", "shipped", "completed"],
        }
    )
    plan = plan_updates(validate_updates(rows))
    preview = build_send_preview(plan, None, SendOptions(max_per_minute=60))
    assert tuple(preview.lines.columns) == LINE_COLUMNS
    assert not preview.read_back and preview.plan is plan
    assert preview.lines["decision"].tolist() == ["send", "send"]
    assert set(preview.lines["change"]) == {"unknown"}
    assert preview.orders[["purchaseOrderNumber", "decision"]].values.tolist() == [
        ["P1", "send"],
        ["P2", "invalid"],
    ]
    assert preview.requests == 1 and preview.eta_s == 0.0
    assert "No API token yet" in preview.notes[0]
    table = preview_table(preview, plan)
    assert table["Current → new"].tolist()[:2] == ["? → completed", "? → on-hold"]
    assert table["What happens"].tolist() == [
        "will be sent (current status unknown)",
        "will be sent (current status unknown)",
        "held back: a row needs fixing",
        "held back: a row needs fixing",
    ]


def test_send_is_enabled_only_after_a_preview_of_the_current_file_and_settings(
    make_app: MakeApp, tmp_path: Path
) -> None:
    app = make_app(input_path=SAMPLE_XLSX)
    assert app.send_button.disabled
    app.send_button.click()  # even clicked from code, nothing happens but a message
    assert_one_line_error(app, "press Preview first")
    assert app.last_note is app.run_panel.note
    app.validate_button.click()
    assert app.send_button.disabled  # validating is not previewing
    changes: list[tuple[str, Callable[[], object]]] = [
        ("pace", lambda: setattr(app.max_per_minute, "value", 5000)),
        ("workers", lambda: setattr(app.workers, "value", 2)),
        ("re-send rest", lambda: setattr(app.retry_without_missing, "value", True)),
        ("partial orders", lambda: setattr(app.send_partial_orders, "value", True)),
        ("force", lambda: setattr(app.force, "value", True)),
        ("column", lambda: setattr(app.column_dropdowns["workflowStatus"], "value", "Notes")),
        ("sheet", lambda: setattr(app.sheet_dropdown, "value", "Notes")),
        ("environment", lambda: setattr(app.environment_dropdown, "value", CUSTOM)),
        ("fix", lambda: app.fix_panel.edit(35, "workflowStatus", "delivered")),
        ("file", lambda: app.load_button.click()),
    ]
    for what, change in changes:
        app.environment_dropdown.value = "sandbox"
        app.sheet_dropdown.value = "Updates"
        app.column_dropdowns["workflowStatus"].value = "New Status"
        app.validate_button.click()
        app.preview_button.click()
        assert not app.send_button.disabled, what
        change()
        assert app.send_button.disabled, what
        app.send_button.click()
        assert_one_line_error(app)
    assert app.sandbox is None or writes(app.sandbox) == []  # previews read, never write


# --------------------------------------------------------------------------- 5, 6 send, results


def test_send_asks_with_host_orders_requests_and_eta_then_shows_results_and_files(
    make_app: MakeApp, tmp_path: Path
) -> None:
    app = make_app(input_path=SAMPLE_XLSX)
    app.preview_button.click()
    app.send_button.click()
    assert not app.running  # nothing goes before "Yes, send"
    question = app.run_panel.question.value
    assert app.sandbox is not None
    parts = ("<b>45</b> requests", "165 line items that change", f"<b>{host_of(app.sandbox)}</b>")
    for part in (*parts, "Not sent: 1 refused; 5 held back", "about <b>"):
        assert part in question, question
    assert "spectrum-final-warning" not in question
    app.cancel_button.click()
    assert "Not sent" in message(app) and not app.run_panel.asking
    assert writes(app.sandbox) == []

    app.send_button.click()
    app.yes_button.click()
    assert app.running  # the click returned while the run goes on in the background
    assert app.wait(30)
    assert not app.running
    assert app.progress.value == app.progress.max == 45
    assert app.progress.bar_style == "success"
    assert "updated <b>45</b>" in app.counts.value
    assert len(writes(app.sandbox)) == 45  # the refused order cost no request
    assert "not_found 1" in app.results_summary.value
    assert "Finished" in app.eta.value
    assert "Run 1 finished" in message(app)
    assert app.last_note is app.run_panel.note
    assert "spectrum-chart" in app.outcome_chart.value
    grid = app.results_grid.frame
    assert grid is not None
    assert grid["outcome"].tolist()[:2] == ["not_found", "invalid"]  # failures first
    assert list(grid.columns)[:3] == ["PO number", "outcome", "details"]
    assert "seconds" in grid.columns and "rows in the sheet" in grid.columns  # none cut off
    assert 'download="run-1-report.xlsx"' in app.report_link.value
    assert 'download="run-1-errors.xlsx"' in app.errors_link.value
    assert 'download="run-1-succeeded.xlsx"' in app.success_link.value
    assert app.results is not None and app.run_id == 1
    assert not app.retry_button.disabled  # one order was not found
    assert app.send_button.disabled  # another send needs another preview
    assert app.stop_button.disabled is True
    with Journal(tmp_path / "runs") as journal:
        assert journal.runs().loc[0, "state"] == "finished"


def test_the_error_file_holds_only_rows_that_did_not_go_through_in_the_analysts_columns(
    make_app: MakeApp, tmp_path: Path
) -> None:
    app = make_app(input_path=SAMPLE_CSV)
    preview_and_send(app)
    assert app.wait(30)
    folder = tmp_path / "runs" / "reports"
    errors = read_updates(folder / "run-1-errors.xlsx")  # loads again as a sheet to send
    book = openpyxl.load_workbook(folder / "run-1-errors.xlsx")
    header = [c.value for c in next(book.active.iter_rows(max_row=1))]
    assert header == [
        "PO Number",
        "Recipe Set ID",
        "New Status",
        "Notes",
        "outcome",
        "reason",
        "row in the sheet",
    ]
    assert set(errors["outcome"]) == {"invalid", "not_found"}
    by_row = errors.set_index("row in the sheet")
    assert by_row.loc["35", "workflowStatus"] == "shipped"  # the original value, not fixed up
    assert "did you mean 'delivered'?" in by_row.loc["35", "reason"]
    done = read_updates(folder / "run-1-succeeded.xlsx")
    assert set(done["outcome"]) == {"updated"}
    kept = set(done["workflowStatus"])
    assert {" delivered ", "ON_HOLD", "canceled"} <= kept  # as typed, not normalised
    assert len(errors) + len(done) == 211


def test_loading_a_new_file_clears_the_last_run_from_the_screen(make_app: MakeApp) -> None:
    app = make_app(input_path=SAMPLE_CSV)
    preview_and_send(app)
    assert app.wait(30)
    assert app.progress.value == 45 and app.results_grid.frame is not None
    app.path_input.value = str(SAMPLE_XLSX)
    app.load_button.click()
    assert app.progress.value == 0
    assert app.counts.value == "" and app.eta.value == ""
    assert app.results_grid.frame is None and app.outcome_chart.value == ""
    assert app.report_link.value == "" and app.errors_link.value == ""
    assert app.results is None and app.run_panel.note.value == ""


def test_production_sends_only_after_the_name_is_typed(
    make_app: MakeApp, tmp_path: Path, sandbox: SandboxServer
) -> None:
    token = sandbox.token
    app = make_app(
        environments_file=environments(tmp_path, sandbox, production=True),
        environment="live",
        input_path=SAMPLE_CSV,
    )
    app.token_input.value = token
    assert app.token_input.value == ""  # taken out of widget state at once
    assert "Token received" in app.environment_panel.token_note.value

    app.preview_button.click()
    app.send_button.click()
    assert app.confirm_input.layout.display is None  # the name box shows for production
    assert "PRODUCTION" in app.run_panel.question.value
    app.yes_button.click()
    assert_one_line_error(app, "live is production", "type 'live'")
    app.confirm_input.value = "LIVE"
    app.yes_button.click()
    assert_one_line_error(app, "you typed 'LIVE'")
    assert writes(sandbox) == []  # nothing was sent
    assert not app.running

    app.confirm_input.value = "live"
    app.yes_button.click()
    assert app.wait(30)
    assert "Run 1 finished" in message(app)
    assert len(writes(sandbox)) == 45
    assert app.confirm_input.value == ""  # a second send must be confirmed again
    app.include_not_found.value = True
    app.retry_button.click()  # a retry sends to production too
    app.yes_button.click()
    assert_one_line_error(app, "live is production")
    assert len(writes(sandbox)) == 45
    assert token not in all_state(app)
    assert token not in repr(app)


@pytest.mark.security
def test_the_token_never_lands_in_widget_state(
    make_app: MakeApp, tmp_path: Path, sandbox: SandboxServer
) -> None:
    app = make_app(
        environments_file=environments(tmp_path, sandbox, production=False),
        environment="live",
        input_path=SAMPLE_CSV,
    )
    app.token_input.value = "  " + sandbox.token + "  "
    assert sandbox.token not in all_state(app)
    preview_and_send(app)
    assert app.wait(30)
    assert "Run 1 finished" in message(app), message(app)
    assert sandbox.token not in all_state(app)
    assert sandbox.token not in repr(app)
    app.environment_dropdown.value = "sandbox"
    app.environment_dropdown.value = "live"  # changing environment forgets the token
    assert app.environment_panel.typed_token() is None


def test_a_real_environment_without_a_token_previews_but_does_not_send(
    make_app: MakeApp, tmp_path: Path, sandbox: SandboxServer
) -> None:
    app = make_app(
        environments_file=environments(tmp_path, sandbox, production=False),
        environment="live",
        input_path=SAMPLE_CSV,
    )
    app.preview_button.click()
    summary = html.unescape(app.preview_summary.value)
    assert "<b>46</b> requests" in summary  # the plan alone: every order, nothing read
    assert "No API token yet" in summary and "Current statuses not read" in summary
    assert "? → delivered" in set(app.preview_grid.frame["Current → new"])
    app.send_button.click()
    assert_one_line_error(app, "no API token for live")
    assert sandbox.requests() == []  # not even a read
    app.token_input.value = sandbox.token
    app.send_button.click()  # a preview without read-back is not sent once a token is there
    assert_one_line_error(app, "press Preview again")
    assert sandbox.requests() == []
    app.preview_button.click()
    assert "<b>45</b> requests" in app.preview_summary.value
    assert "Current statuses not read" not in app.preview_summary.value
    assert writes(sandbox) == []


def test_a_wrong_token_stops_the_run_in_one_line_with_orders_pending(
    make_app: MakeApp, tmp_path: Path, sandbox: SandboxServer
) -> None:
    app = make_app(
        environments_file=environments(tmp_path, sandbox, production=False),
        environment="live",
        input_path=SAMPLE_CSV,
        environ={"SPECTRUM_API_TOKEN": "wrong-token"},
    )
    app.preview_button.click()  # the read is refused: nothing to preview, nothing to send
    assert_one_line_error(app, "Could not read what", "token")
    assert app.last_note is app.preview_panel.note
    assert app.send_button.disabled and app.preview_grid.frame is None
    app.send_button.click()
    assert_one_line_error(app, "press Preview first")
    assert writes(sandbox) == []
    assert "wrong-token" not in all_state(app)


def test_a_stopped_run_looks_stopped_and_resume_completes_it(make_app: MakeApp) -> None:
    settings = SandboxSettings(rate_limit=None, latency_s=0.15)
    app = make_app(input_path=SAMPLE_CSV, sandbox_settings=settings)
    app.workers.value = 1
    preview_and_send(app)
    assert app.running
    wait_until(lambda: app.progress.value >= 2)
    app.preview_button.click()
    app.send_button.click()  # a second run while one goes is refused
    assert_one_line_error(app, "a run is going")
    app.stop_button.click()
    assert "Stopping" in message(app) and app.last_note is app.run_panel.note
    assert app.wait(30)
    results = app.results
    assert results is not None
    pending = int((results["outcome"] == "pending").sum())
    assert 0 < pending < 45
    # Not a full bar reading "45 of 45": an orange bar, "Stopped: N pending", Resume.
    assert app.progress.value == 45 - pending < app.progress.max
    assert app.progress.bar_style == "warning"
    assert f"Stopped: {pending} orders pending" in app.eta.value
    assert app.resume_stopped_button.layout.display is None
    assert not app.resume_stopped_button.disabled
    assert "pending" in message(app)
    assert app.unfinished_runs.value == 1

    settings.latency_s = 0.0
    app.resume_stopped_button.click()
    assert f"<b>{pending}</b> pending orders" in app.run_panel.question.value
    app.yes_button.click()
    assert app.wait(30)
    assert app.results is not None
    assert not (app.results["outcome"] == "pending").any()
    assert app.run_id == 1  # the same run, completed
    assert "Run 1 finished" in message(app)
    assert app.unfinished_runs.value == 0
    assert app.progress.bar_style == "success"
    # The bar and the counts are of the whole run, not only of the orders resumed.
    assert app.progress.value == app.progress.max == 45
    counts = app.counts.value
    assert "45 of 45 orders sent" in counts and "updated <b>45</b>" in counts
    assert f"({45 - pending} of them in earlier sessions)" in counts


def test_resume_a_run_from_before_a_kernel_restart(make_app: MakeApp, tmp_path: Path) -> None:
    first = make_app(
        input_path=SAMPLE_CSV, sandbox_settings=SandboxSettings(rate_limit=None, latency_s=0.15)
    )
    first.workers.value = 1
    preview_and_send(first)
    wait_until(lambda: first.progress.value >= 2)
    assert first.sandbox is not None
    port = first.sandbox.port
    first.stop_button.click()
    assert first.wait(30)
    first.close()  # the kernel goes away, and its sandbox with it

    second = make_app(input_path=None)
    labels = [label for label, _v in second.unfinished_runs.options]
    assert labels[0].startswith("run 1: status_updates.csv on 127.0.0.1:")
    second.resume_button.click()
    second.yes_button.click()
    assert second.wait(30), message(second)
    assert "Run 1 finished" in message(second), message(second)
    assert second.sandbox is not None and second.sandbox.port == port
    assert second.results is not None
    assert set(second.results["outcome"]) <= {"updated", "not_found", "invalid"}
    # From another kernel the rows come from the journal: the error file is still there.
    assert 'download="run-1-errors.xlsx"' in second.errors_link.value


def test_resume_picks_the_runs_own_environment(
    make_app: MakeApp, tmp_path: Path, sandbox: SandboxServer
) -> None:
    app = make_app(
        environments_file=environments(tmp_path, sandbox, production=False),
        environment="live",
        input_path=SAMPLE_CSV,
        environ={"SPECTRUM_API_TOKEN": sandbox.token},
    )
    app.workers.value = 1
    sandbox.settings.latency_s = 0.15
    preview_and_send(app)
    wait_until(lambda: app.progress.value >= 2)
    app.stop_button.click()
    assert app.wait(30)
    sandbox.settings.latency_s = 0.0
    app.environment_dropdown.value = "sandbox"  # the analyst looks at something else
    app.resume_button.click()
    assert app.environment_dropdown.value == "live"  # the run's own environment
    assert host_of(sandbox) in app.run_panel.question.value
    app.yes_button.click()
    assert app.wait(30)
    assert "Run 1 finished" in message(app), message(app)


def test_retry_failures_sends_them_again_as_a_linked_run(
    make_app: MakeApp, tmp_path: Path, sandbox: SandboxServer
) -> None:
    app = make_app(
        environments_file=environments(tmp_path, sandbox, production=False),
        environment="live",
        input_path=SAMPLE_CSV,
        environ={"SPECTRUM_API_TOKEN": sandbox.token},
    )
    # Spectrum answers 500 to every attempt at one order: it ends failed.
    sandbox.settings.fail_first = {"HA-US-DEV00011104": 4}
    preview_and_send(app)
    assert app.wait(60)
    assert "failed 1" in app.results_summary.value, app.results_summary.value
    assert not app.retry_button.disabled
    app.retry_button.click()
    assert "send <b>1</b> orders again" in app.run_panel.question.value
    app.yes_button.click()
    assert app.wait(30)
    assert app.run_id == 2, message(app)
    assert app.results is not None
    assert app.results[["purchaseOrderNumber", "outcome"]].values.tolist() == [
        ["HA-US-DEV00011104", "updated"]
    ]
    with Journal(tmp_path / "runs") as journal:
        assert int(journal.runs().loc[1, "parent_run"]) == 1
    assert 'download="run-2-report.xlsx"' in app.report_link.value
    assert app.retry_button.disabled  # nothing left to retry


# --------------------------------------------------------------------------- read-back, undo


def statuses(sandbox: SandboxServer) -> dict[tuple[str, str], str]:
    lines = sandbox.store.line_statuses()
    return {
        (po, line): status
        for po, line, status in lines[
            ["purchaseOrderNumber", "recipeSetId", "workflowStatus"]
        ].itertuples(index=False)
    }


def _other(status: str) -> str:
    return "on-hold" if status == "completed" else "completed"


def three_orders_sheet(tmp_path: Path, sandbox: SandboxServer) -> tuple[Path, list[str]]:
    """A sheet of three real orders: the first already set, the second half set, the third
    all to change. Returns the sheet and the three POs."""
    now = statuses(sandbox)
    pos = sorted({po for po, _line in now})[:3]
    rows = ["PO Number,Recipe Set ID,New Status"]
    for n, po in enumerate(pos):
        lines = [(line, st) for (p, line), st in now.items() if p == po]
        for k, (line, status) in enumerate(lines):
            keep = n == 0 or (n == 1 and k > 0)
            rows.append(f"{po},{line},{status if keep else _other(status)}")
    sheet = tmp_path / "three.csv"
    sheet.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return sheet, pos


def test_the_preview_reads_back_and_send_sends_only_what_changes(
    make_app: MakeApp, tmp_path: Path, sandbox: SandboxServer
) -> None:
    sheet, (same, half, moved) = three_orders_sheet(tmp_path, sandbox)
    before = statuses(sandbox)
    app = make_app(
        environments_file=environments(tmp_path, sandbox, production=False),
        environment="live",
        input_path=sheet,
        environ={"SPECTRUM_API_TOKEN": sandbox.token},
    )
    app.preview_button.click()
    summary = html.unescape(app.preview_summary.value)
    assert "will be sent <b>2</b>" in summary and "already set: not sent <b>1</b>" in summary
    assert "<b>2</b> requests" in summary
    grid = app.preview_grid.frame
    assert grid is not None
    by_line = grid.set_index(["PO number", "Line item"])
    half_lines = [line for (po, line) in before if po == half]
    changed, kept = half_lines[0], half_lines[1]
    wanted = _other(before[(half, changed)])
    assert by_line.loc[(half, changed), "Current → new"] == f"{before[(half, changed)]} → {wanted}"
    assert by_line.loc[(half, changed), "What happens"] == "will be sent"
    assert by_line.loc[(half, kept), "What happens"] == "already set: not sent"
    assert by_line.loc[(half, kept), "Current → new"] == f"already {before[(half, kept)]}"
    assert set(by_line.loc[same, "What happens"]) == {"already set: not sent"}
    assert writes(sandbox) == []  # the preview only read

    app.send_button.click()
    assert "<b>2</b> requests" in app.run_panel.question.value
    assert "Not sent: 1 already set" in app.run_panel.question.value
    app.yes_button.click()
    assert app.wait(30)
    sent = {r["purchaseOrderNumber"]: r["recipeSetReadableIds"] for r in writes(sandbox)}
    assert set(sent) == {half, moved}  # the order already set cost no request
    assert sent[half] == [changed]  # only the line item that changes
    assert app.results is not None
    outcome = app.results.set_index("purchaseOrderNumber")["outcome"]
    assert outcome[same] == "unchanged" and outcome[half] == outcome[moved] == "updated"
    after = statuses(sandbox)
    assert after[(half, changed)] == wanted and after[(half, kept)] == before[(half, kept)]
    assert "unchanged 1" in app.results_summary.value
    assert not app.undo_button.disabled  # a finished run that changed something


def test_undo_restores_before_images_and_keeps_a_line_item_changed_since(
    make_app: MakeApp, tmp_path: Path, sandbox: SandboxServer
) -> None:
    sheet, (same, _half, moved) = three_orders_sheet(tmp_path, sandbox)
    before = statuses(sandbox)
    app = make_app(
        environments_file=environments(tmp_path, sandbox, production=True),
        environment="live",
        input_path=sheet,
        environ={"SPECTRUM_API_TOKEN": sandbox.token},
    )
    preview_and_send(app, confirm="live")
    assert app.wait(30)
    assert app.run_id == 1
    sent = statuses(sandbox)
    moved_lines = [line for (po, line) in before if po == moved]
    # Someone else changes a line item of the run after it.
    sandbox.store.apply_status_update(
        moved, [{"recipeSetReadableId": moved_lines[0], "workflowStatus": "cancelled"}]
    )
    writes_before_undo = len(writes(sandbox))

    app.undo_button.click()
    table = app.undo_grid.frame
    assert table is not None
    by_line = table.set_index(["PO number", "Line item"])
    assert by_line.loc[(moved, moved_lines[0]), "What happens"] == (
        "left alone: changed since run 1: now cancelled"
    )
    assert by_line.loc[(moved, moved_lines[1]), "What happens"] == "will be restored"
    assert by_line.loc[(moved, moved_lines[1]), "Back to"] == before[(moved, moved_lines[1])]
    assert same not in set(table["PO number"])  # the run did not change it
    assert "<b>1</b> left alone" in app.undo_summary.value
    question = app.run_panel.question.value
    assert "Undo run 1" in question and "PRODUCTION" in question
    assert len(writes(sandbox)) == writes_before_undo  # reading only, so far
    app.yes_button.click()  # production keeps the typed name
    assert_one_line_error(app, "live is production")
    app.confirm_input.value = "live"
    app.yes_button.click()
    assert app.wait(30)
    assert app.run_id == 2, message(app)
    after = statuses(sandbox)
    for (po, line), status in before.items():
        if (po, line) == (moved, moved_lines[0]):
            assert after[(po, line)] == "cancelled"  # kept: someone changed it since
        else:
            assert after[(po, line)] == status, (po, line, sent[(po, line)])
    assert "Run 1 undone as run 2" in html.unescape(app.undo_summary.value)
    assert "1 line items left alone" in html.unescape(app.undo_summary.value)
    assert "Run 2 (undo of run 1)" in app.results_summary.value
    assert "Run 2 finished" in message(app), message(app)
    assert app.results_grid.frame is not None and len(app.results_grid.frame) == 2
    assert 'download="run-2-report.xlsx"' in app.report_link.value
    assert app.results is not None and set(app.results["outcome"]) == {"updated"}
    with Journal(tmp_path / "runs") as journal:
        assert int(journal.runs().loc[1, "parent_run"]) == 1


def test_undo_an_earlier_run_picked_from_the_history_in_a_new_kernel(
    make_app: MakeApp, tmp_path: Path, sandbox: SandboxServer
) -> None:
    sheet, (_same, half, moved) = three_orders_sheet(tmp_path, sandbox)
    before = statuses(sandbox)
    kwargs: dict[str, Any] = {
        "environments_file": environments(tmp_path, sandbox, production=False),
        "environment": "live",
        "environ": {"SPECTRUM_API_TOKEN": sandbox.token},
    }
    first = make_app(input_path=sheet, **kwargs)
    preview_and_send(first)
    assert first.wait(30)
    first.close()

    second = make_app(**kwargs)  # another kernel: only the journal knows run 1
    labels = [label for label, _v in second.run_history.options]
    assert labels[0].startswith("run 1: three.csv on ") and "2 orders changed" in labels[0]
    assert second.undo_button.disabled  # no run on screen
    second.environment_dropdown.value = "sandbox"
    second.undo_picked_button.click()
    assert second.environment_dropdown.value == "live"  # the run's own environment
    assert second.undo_grid.frame is not None
    assert set(second.undo_grid.frame["What happens"]) == {"will be restored"}
    second.yes_button.click()
    assert second.wait(30)
    assert statuses(sandbox) == before
    assert "Run 2 finished" in message(second), message(second)
    assert {r["purchaseOrderNumber"] for r in writes(sandbox)[-2:]} == {half, moved}
    second.run_history.value = 2  # undoing the undo: nothing was changed since
    assert [v for _l, v in second.run_history.options] == [2, 1]


def test_buttons_in_the_wrong_order_give_one_line_next_to_the_button(make_app: MakeApp) -> None:
    app = make_app()
    panels = app.environment_panel, app.source_panel, app.validate_panel, app.preview_panel
    run, out = app.run_panel, app.results_panel
    for button, note, words in [
        (app.validate_button, panels[2].note, "load a sheet first"),
        (app.preview_button, panels[3].note, "load a sheet first"),
        (app.send_button, run.note, "load a sheet first"),
        (app.yes_button, run.note, "press Send first"),
        (app.stop_button, run.note, "no run is going"),
        (app.retry_button, out.retry_note, "no run to retry"),
        (app.resume_button, out.resume_note, "no unfinished run"),
        (app.load_button, panels[1].note, "type the path"),
    ]:
        button.click()
        assert_one_line_error(app, words)
        assert app.last_note is note


def test_the_eta_uses_the_measured_answer_time_once_answers_come_back() -> None:
    now = [0.0]
    progress = WidgetProgress(RunPanel(), clock=lambda: now[0])
    rows = pd.DataFrame(
        {
            "purchaseOrderNumber": [f"P{i}" for i in range(10)],
            "recipeSetReadableId": ["AAAA1111"] * 10,
            "workflowStatus": ["completed"] * 10,
        }
    )
    plan = plan_updates(validate_updates(rows))
    options = SendOptions(max_per_minute=600, workers=2)  # 0.1 s apart by the pace
    progress.run_started(plan, options)
    assert progress.eta_seconds(10) == pytest.approx(options.eta_seconds(11))
    for request in list(plan.requests())[:2]:
        progress.finished(
            OrderResult(
                purchase_order=request.purchase_order,
                outcome=Outcome.UPDATED,
                http_status=200,
                details="",
                line_count=1,
                attempts=1,
                elapsed_s=4.0,  # the host answers in 4 s: far slower than the pace
                source_rows="2",
            )
        )
    assert progress.eta_seconds(8) == pytest.approx(8 * 4.0 / 2)
