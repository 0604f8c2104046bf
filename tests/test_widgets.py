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
import pytest

from spectrum_tools.journal import Journal
from spectrum_tools.sandbox import SandboxServer, SandboxSettings, sample_data_dir
from spectrum_tools.widgets import BulkUpdateApp
from spectrum_tools.widgets.environment import CUSTOM

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
    return html.unescape(str(app.message.value))


def assert_one_line_error(app: BulkUpdateApp, *words: str) -> None:
    text = message(app)
    assert "spectrum-error" in text, text
    assert "Traceback" not in text
    assert "\n" not in text
    for word in words:
        assert word in text, text


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
    assert app.confirm_input.layout.display is None
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
    assert app.confirm_input.layout.display == "none"


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
    app.send_button.click()
    assert_one_line_error(app, "refusing plain http")


# --------------------------------------------------------------------------- 2 input


def test_upload_prefills_the_column_mapping_from_the_header_aliases(make_app: MakeApp) -> None:
    app = make_app()
    upload(app, SAMPLE_CSV)
    assert app.sheet_dropdown.disabled  # a CSV has no sheets
    assert {f: d.value for f, d in app.column_dropdowns.items()} == {
        "purchaseOrderNumber": "PO Number",
        "recipeSetReadableId": "Recipe Set ID",
        "workflowStatus": "New Status",
    }
    assert "status_updates.csv" in app.source_panel.status.value
    assert app.upload.value == ()  # the data is not kept in widget state
    app.validate_button.click()
    assert "<b>211</b> rows" in app.validation_summary.value


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
    assert_one_line_error(app, "pick the column")
    app.sheet_dropdown.value = "Updates"
    app.validate_button.click()
    assert "<b>211</b> rows" in app.validation_summary.value


def test_unknown_headers_are_mapped_by_hand(make_app: MakeApp, tmp_path: Path) -> None:
    sheet = tmp_path / "odd.csv"
    sheet.write_text(
        "Ref;Item code;Target\nHA-US-DEV00011101;TEBMKVGB;In Progress\n", encoding="utf-8"
    )
    app = make_app(input_path=sheet)
    assert "no column for purchaseOrderNumber" in app.source_panel.status.value
    app.validate_button.click()
    assert_one_line_error(app, "pick the column for purchaseOrderNumber")
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
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04 this is not a workbook")
    upload(app, broken)
    assert_one_line_error(app, "broken.xlsx")
    app.preview_button.click()
    assert_one_line_error(app, "load a sheet first")


# --------------------------------------------------------------------------- 3, 4 validate, preview


def test_validate_shows_counts_and_invalid_rows_with_problems_and_suggestions(
    make_app: MakeApp,
) -> None:
    app = make_app(input_path=SAMPLE_XLSX)
    app.validate_button.click()
    summary = app.validation_summary.value
    assert "<b>211</b> rows: <b>205</b> valid, <b>6</b> invalid" in summary
    assert "<b>46</b> to send" in summary
    table = app.invalid_rows.value
    assert "spectrum-invalid-rows" in table
    assert "did you mean 'delivered'?" in html.unescape(table)
    assert "<td>35</td>" in table  # the row number the spreadsheet shows
    assert "blank workflowStatus" in table
    assert "conflicting statuses" in table


def test_preview_shows_requests_eta_at_the_chosen_pace_and_sample_payloads(
    make_app: MakeApp,
) -> None:
    app = make_app(input_path=SAMPLE_CSV)
    app.max_per_minute.value = 60
    app.preview_button.click()  # validates on the way
    assert "<b>46</b> requests" in app.preview_summary.value
    assert "about <b>45 s</b>" in app.preview_summary.value  # 45 gaps of a second
    assert "above 100/min" not in app.preview_summary.value
    app.max_per_minute.value = 30  # the preview follows the pace
    assert "about <b>1 min 30 s</b>" in app.preview_summary.value
    payloads = app.sample_payloads.value
    assert payloads.count("spectrum-payload") == 3
    assert "HA-US-DEV00011101" in payloads and "lineItems" in payloads
    app.max_per_minute.value = 600
    assert "above 100/min" in app.preview_panel.pace_note.value


# --------------------------------------------------------------------------- 5, 6 send, results


def test_send_runs_in_the_background_and_shows_results_and_downloads(
    make_app: MakeApp, tmp_path: Path
) -> None:
    app = make_app(input_path=SAMPLE_XLSX, sandbox_settings=SandboxSettings(rate_limit=None))
    app.validate_button.click()
    app.preview_button.click()
    app.send_button.click()
    assert app.running  # the click returned while the run goes on in the background
    assert app.wait(30)
    assert not app.running
    assert app.progress.value == app.progress.max == 46
    assert "updated <b>45</b>" in app.counts.value
    assert "not_found <b>1</b>" in app.counts.value
    assert "Finished" in app.eta.value
    assert "Run 1 finished" in message(app)
    assert "spectrum-results" in app.results_table.value
    assert "HA-US-DEV00011103" in app.results_table.value
    assert 'download="run-1-report.xlsx"' in app.report_link.value
    assert 'download="run-1-lines.csv"' in app.errors_link.value
    assert (tmp_path / "runs" / "reports" / "run-1-report.xlsx").is_file()
    assert app.results is not None and app.run_id == 1
    assert not app.retry_button.disabled  # one order was not found
    assert app.send_button.disabled is False and app.stop_button.disabled is True
    with Journal(tmp_path / "runs") as journal:
        assert journal.runs().loc[0, "state"] == "finished"


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

    app.send_button.click()
    assert_one_line_error(app, "live is production", "type 'live'")
    app.confirm_input.value = "LIVE"
    app.send_button.click()
    assert_one_line_error(app, "you typed 'LIVE'")
    assert sandbox.requests() == []  # nothing was sent
    assert not app.running

    app.confirm_input.value = "live"
    app.send_button.click()
    assert app.wait(30)
    assert "Run 1 finished" in message(app)
    assert len(sandbox.requests()) == 46
    assert app.confirm_input.value == ""  # a second send must be confirmed again
    app.include_not_found.value = True
    app.retry_button.click()  # a retry sends to production too
    assert_one_line_error(app, "live is production")
    assert len(sandbox.requests()) == 46
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
    app.send_button.click()
    assert app.wait(30)
    assert "Run 1 finished" in message(app), message(app)
    assert sandbox.token not in all_state(app)
    assert sandbox.token not in repr(app)
    app.environment_dropdown.value = "sandbox"
    app.environment_dropdown.value = "live"  # changing environment forgets the token
    assert app.environment_panel.typed_token() is None


def test_a_real_environment_without_a_token_is_one_line(
    make_app: MakeApp, tmp_path: Path, sandbox: SandboxServer
) -> None:
    app = make_app(
        environments_file=environments(tmp_path, sandbox, production=False),
        environment="live",
        input_path=SAMPLE_CSV,
    )
    app.send_button.click()
    assert_one_line_error(app, "no API token for live")
    assert sandbox.requests() == []


def test_a_wrong_token_stops_the_run_in_one_line_with_orders_pending(
    make_app: MakeApp, tmp_path: Path, sandbox: SandboxServer
) -> None:
    app = make_app(
        environments_file=environments(tmp_path, sandbox, production=False),
        environment="live",
        input_path=SAMPLE_CSV,
        environ={"SPECTRUM_API_TOKEN": "wrong-token"},
    )
    app.send_button.click()
    assert app.wait(30)
    assert_one_line_error(app, "stopped:", "token")
    assert "pending" in app.results_summary.value
    assert "wrong-token" not in all_state(app)


def test_stop_leaves_the_rest_pending_and_resume_completes_the_run(make_app: MakeApp) -> None:
    settings = SandboxSettings(rate_limit=None, latency_s=0.15)
    app = make_app(input_path=SAMPLE_CSV, sandbox_settings=settings)
    app.workers.value = 1
    app.send_button.click()
    assert app.running
    wait_until(lambda: app.progress.value >= 2)
    app.send_button.click()  # a second run while one goes is refused
    assert_one_line_error(app, "a run is going")
    app.stop_button.click()
    assert app.wait(30)
    results = app.results
    assert results is not None
    pending = int((results["outcome"] == "pending").sum())
    assert 0 < pending < 46
    assert "pending" in message(app)
    assert app.unfinished_runs.value == 1
    assert not app.resume_button.disabled

    settings.latency_s = 0.0
    app.resume_button.click()
    assert app.wait(30)
    assert app.results is not None
    assert not (app.results["outcome"] == "pending").any()
    assert app.run_id == 1  # the same run, completed
    assert "Run 1 finished" in message(app)
    assert app.unfinished_runs.value == 0


def test_resume_a_run_from_before_a_kernel_restart(make_app: MakeApp, tmp_path: Path) -> None:
    first = make_app(
        input_path=SAMPLE_CSV, sandbox_settings=SandboxSettings(rate_limit=None, latency_s=0.15)
    )
    first.workers.value = 1
    first.send_button.click()
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
    assert second.wait(30), message(second)
    assert "Run 1 finished" in message(second), message(second)
    assert second.sandbox is not None and second.sandbox.port == port
    assert second.results is not None
    assert set(second.results["outcome"]) <= {"updated", "not_found", "invalid"}


def test_retry_failures_sends_them_again_as_a_linked_run(
    make_app: MakeApp, tmp_path: Path, sandbox: SandboxServer
) -> None:
    app = make_app(
        environments_file=environments(tmp_path, sandbox, production=False),
        environment="live",
        input_path=SAMPLE_CSV,
        environ={"SPECTRUM_API_TOKEN": sandbox.token},
    )
    app.send_button.click()
    assert app.wait(30)
    assert "not_found 1" in app.results_summary.value
    # Someone creates the line item the sheet had a typo for; now the order can go.
    sandbox.store.seed(
        [
            {
                "purchaseOrderNumber": "HA-US-DEV00011103",
                "recipeSetId": "HS7SW33X",
                "workflowStatus": "not-started",
            }
        ]
    )
    app.retry_button.click()
    assert app.wait(30)
    # Without "not found" there is nothing to retry: no run is made, run 1 stays shown.
    assert "Nothing to send" in message(app)
    assert app.run_id == 1
    assert not app.retry_button.disabled
    app.include_not_found.value = True
    app.retry_button.click()
    assert app.wait(30)
    assert app.run_id == 2, message(app)
    assert app.results is not None
    assert app.results["outcome"].tolist() == ["updated"]
    with Journal(tmp_path / "runs") as journal:
        assert int(journal.runs().loc[1, "parent_run"]) == 1
    assert 'download="run-2-report.xlsx"' in app.report_link.value


def test_buttons_in_the_wrong_order_give_one_line_not_a_traceback(make_app: MakeApp) -> None:
    app = make_app()
    for button, words in [
        (app.validate_button, "load a sheet first"),
        (app.preview_button, "load a sheet first"),
        (app.send_button, "load a sheet first"),
        (app.stop_button, "no run is going"),
        (app.retry_button, "no run to retry"),
        (app.resume_button, "no unfinished run"),
    ]:
        app.message.value = ""
        button.click()
        assert_one_line_error(app, words)
