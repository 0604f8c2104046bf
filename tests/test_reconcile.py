"""Reconciliation: reading orders back from the sandbox over HTTP and comparing per line.

Every test reads from a real sandbox (or, for answer shapes the sandbox never produces, a
raw HTTP server) and asserts what the analyst sees in the comparison frame, the request
log, the workbook or the CLI's exit code.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest
from support.rawhttp import MakeRaw, RawRequest, RawServer, http_response
from support.sandboxes import SANDBOX_TOKEN, MakeSandbox, client_for, order_numbers, sheet

from spectrum_tools import (
    SpectrumClient,
    reconcile,
    reconcile_with_runs,
    reconciliation_summary,
    send_updates,
    write_reconciliation,
)
from spectrum_tools.cli import main
from spectrum_tools.engine import SendOptions
from spectrum_tools.errors import ConfigError, JournalError, RunStoppedError
from spectrum_tools.reconcile import RECONCILE_COLUMNS
from spectrum_tools.sandbox import SandboxServer

FAST = 60_000.0

ORDERS = pd.DataFrame(
    {
        "purchaseOrderNumber": ["PO-1", "PO-1", "PO-1", "00098765", "PO-3"],
        "recipeSetId": ["00123456", "12345678", "ABCD1234", "EFGH5678", "IJKL9012"],
        "workflowStatus": ["not-started"] * 5,
    }
)
SHEET = pd.DataFrame(
    {
        "PO Number": ["PO-1", "PO-1", "PO-1", "00098765", "PO-3"],
        "Recipe Set ID": ["00123456", "12345678", "ABCD1234", "EFGH5678", "IJKL9012"],
        "New Status": ["Completed", "on hold", "approved", "delivered", "in progress"],
    }
)


def _client(sandbox: SandboxServer | RawServer) -> SpectrumClient:
    return SpectrumClient(sandbox.base_url, token=SANDBOX_TOKEN)


def _sent(sandbox: SandboxServer, tmp_path: Path, sheet: pd.DataFrame = SHEET) -> pd.DataFrame:
    return send_updates(
        sheet, _client(sandbox), progress=False, max_per_minute=FAST, runs_dir=tmp_path / "runs"
    )


def _states(frame: pd.DataFrame) -> dict[str, str]:
    return dict(zip(frame["recipeSetReadableId"], frame["state"], strict=True))


def _gets(sandbox: SandboxServer) -> list[str]:
    return [r["path"] for r in sandbox.requests() if r["method"] == "GET"]


@pytest.fixture
def spectrum(make_sandbox: MakeSandbox) -> SandboxServer:
    return make_sandbox(seed_from=ORDERS)


# --------------------------------------------------------------------------- API


def test_after_a_send_every_line_matches(spectrum: SandboxServer, tmp_path: Path) -> None:
    _sent(spectrum, tmp_path)
    spectrum.clear_requests()
    frame = reconcile(SHEET, _client(spectrum), max_per_minute=FAST, progress=False)
    assert list(frame.columns) == list(RECONCILE_COLUMNS)
    assert frame["state"].tolist() == ["match"] * 5
    assert frame["spectrum_status"].tolist() == [
        "completed",
        "on-hold",
        "approved",
        "delivered",
        "in-progress",
    ]
    assert frame["source_row"].tolist() == [2, 3, 4, 5, 6]
    # Orders changed a moment ago are all in the newest search window: one request in all.
    assert [r["endpoint"] for r in spectrum.requests()] == ["orders-search"]
    assert _gets(spectrum) == []
    assert frame.attrs["requests"] == frame.attrs["searches"] == 1


def test_reading_one_by_one_takes_one_get_per_order(
    spectrum: SandboxServer, tmp_path: Path
) -> None:
    _sent(spectrum, tmp_path)
    spectrum.clear_requests()
    frame = reconcile(SHEET, _client(spectrum), max_per_minute=FAST, bulk=False, progress=False)
    assert frame["state"].tolist() == ["match"] * 5
    # One GET per order, not per line.
    assert sorted(_gets(spectrum)) == sorted(
        f"/api/order/order-number/{po}" for po in ("PO-1", "00098765", "PO-3")
    )
    assert frame.attrs["requests"] == 3


def test_before_a_send_every_line_differs_with_both_values(spectrum: SandboxServer) -> None:
    frame = reconcile(SHEET, _client(spectrum), max_per_minute=FAST, progress=False)
    assert set(frame["state"]) == {"differs"}
    row = frame.iloc[0]
    assert (row["wanted_status"], row["spectrum_status"]) == ("completed", "not-started")
    assert row["details"] == "the sheet wants completed, Spectrum has not-started"


def test_status_changed_in_spectrum_afterwards_shows_differs(
    spectrum: SandboxServer, tmp_path: Path
) -> None:
    _sent(spectrum, tmp_path)
    spectrum.store.apply_status_update(
        "PO-1", [{"recipeSetReadableId": "12345678", "workflowStatus": "cancelled"}]
    )
    frame = reconcile(SHEET, _client(spectrum), max_per_minute=FAST, progress=False)
    changed = frame[frame["state"] == "differs"]
    assert changed[["recipeSetReadableId", "wanted_status", "spectrum_status"]].values.tolist() == [
        ["12345678", "on-hold", "cancelled"]
    ]
    assert (frame["state"] == "match").sum() == 4


def test_unknown_order_and_unknown_line_item_are_missing_in_spectrum(
    spectrum: SandboxServer,
) -> None:
    sheet = pd.DataFrame(
        {
            "PO": ["PO-404", "PO-1"],
            "Recipe Set ID": ["AAAA1111", "abcd1234"],
            "Status": ["completed", "completed"],
        }
    )
    frame = reconcile(sheet, _client(spectrum), max_per_minute=FAST, progress=False)
    assert frame["state"].tolist() == ["missing_in_spectrum", "missing_in_spectrum"]
    assert "HTTP 404" in frame.loc[0, "details"]
    assert "no line item abcd1234" in frame.loc[1, "details"]
    assert "'ABCD1234' (different case)" in frame.loc[1, "details"]


def test_hidden_workflow_status_is_unknown_never_a_guess(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(seed_from=ORDERS, expose_workflow_status=False)
    frame = reconcile(SHEET, _client(sandbox), max_per_minute=FAST, progress=False)
    assert set(frame["state"]) == {"unknown"}
    assert set(frame["spectrum_status"]) == {""}
    assert "no workflowStatus" in frame.loc[0, "details"]


def test_invalid_rows_are_reported_and_their_orders_not_read(spectrum: SandboxServer) -> None:
    sheet = pd.DataFrame(
        {
            "PO": ["PO-1", "PO-3", ""],
            "Recipe Set ID": ["00123456", "IJKL9012", "EFGH5678"],
            "Status": ["completed", "shipped", "completed"],
        }
    )
    frame = reconcile(sheet, _client(spectrum), max_per_minute=FAST, bulk=False, progress=False)
    assert frame["state"].tolist() == ["differs", "invalid", "invalid"]
    assert "did you mean 'delivered'" in frame.loc[1, "details"]
    assert "blank purchaseOrderNumber" in frame.loc[2, "details"]
    assert _gets(spectrum) == ["/api/order/order-number/PO-1"]


def test_transient_500s_are_retried(
    spectrum: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = spectrum.store.get_order
    failures = {"PO-1": 1}

    def flaky(po: str) -> Any:
        if failures.get(po, 0) > 0:
            failures[po] -= 1
            raise RuntimeError("injected")  # the sandbox answers 500 for its own errors
        return real(po)

    monkeypatch.setattr(spectrum.store, "get_order", flaky)
    frame = reconcile(SHEET, _client(spectrum), max_per_minute=FAST, bulk=False, progress=False)
    assert "error" not in set(frame["state"])
    statuses = [r["status"] for r in spectrum.requests() if r["path"].endswith("/PO-1")]
    assert statuses == [500, 200]
    assert frame.attrs["requests"] == 4


def test_an_order_that_keeps_failing_is_error_and_the_others_still_compare(
    spectrum: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = spectrum.store.get_order

    def broken(po: str) -> Any:
        if po == "PO-1":
            raise RuntimeError("injected")
        return real(po)

    monkeypatch.setattr(spectrum.store, "get_order", broken)
    frame = reconcile(
        SHEET, _client(spectrum), max_per_minute=FAST, max_attempts=1, bulk=False, progress=False
    )
    assert _states(frame) == {
        "00123456": "error",
        "12345678": "error",
        "ABCD1234": "error",
        "EFGH5678": "differs",
        "IJKL9012": "differs",
    }
    assert "HTTP 500" in frame.loc[0, "details"]
    assert "after 1 attempt" in frame.loc[0, "details"]


def test_reads_are_paced(spectrum: SandboxServer) -> None:
    sheet = pd.DataFrame(
        {
            "PO": ["PO-1", "00098765", "PO-3", "PO-4"],
            "Recipe Set ID": ["00123456", "EFGH5678", "IJKL9012", "ZZZZ0000"],
            "Status": ["completed"] * 4,
        }
    )
    reconcile(sheet, _client(spectrum), max_per_minute=600, workers=4, bulk=False, progress=False)
    starts = sorted(r["monotonic"] for r in spectrum.requests())
    assert len(starts) == 4
    # 600 a minute: one every 100 ms, even with 4 workers. Checked on arrival at the
    # sandbox, so one request delayed in transit may land close to the next one, but
    # never three within one interval, and the four span at least ~3 intervals.
    assert all(c - a >= 0.1 for a, c in zip(starts, starts[2:], strict=False))
    assert starts[-1] - starts[0] >= 0.25


def test_a_refused_token_stops_with_one_clear_error(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(seed_from=ORDERS)
    client = SpectrumClient(sandbox.base_url, token="wrong-token")
    with pytest.raises(RunStoppedError, match="token") as caught:
        reconcile(SHEET, client, max_per_minute=FAST, workers=1, progress=False)
    partial = caught.value.results
    assert isinstance(partial, pd.DataFrame)
    assert set(partial["state"]) == {"error"}
    assert len(sandbox.requests()) == 1  # it stopped at the first refusal


def test_stop_event_leaves_unread_orders_as_error(spectrum: SandboxServer) -> None:
    stop = threading.Event()
    stop.set()
    frame = reconcile(SHEET, _client(spectrum), max_per_minute=FAST, progress=False, stop=stop)
    assert set(frame["state"]) == {"error"}
    assert "not read" in frame.loc[0, "details"]
    assert frame.attrs["stopped"] == "stopped"
    assert spectrum.requests() == []


# --------------------------------------------------------------------------- answer shapes


def _answering(make_raw_server: MakeRaw, orders: dict[str, object]) -> RawServer:
    def respond(request: RawRequest, n: int) -> bytes:
        po = request.path.rsplit("/", 1)[-1]
        if po not in orders:
            return http_response(404, {"status": "Error", "details": "Unable to find order."})
        return http_response(200, orders[po])

    return make_raw_server(respond)


def test_answers_are_read_defensively(make_raw_server: MakeRaw) -> None:
    server = _answering(
        make_raw_server,
        {
            # The readable id under the status endpoint's name, a status in odd case,
            # junk items that must be skipped, and an item whose status is not text.
            "P1": {
                "purchaseOrderNumber": "P1",
                "lineItems": [
                    {"id": 1, "recipeSetReadableId": "AAAA1111", "workflowStatus": "In Progress"},
                    "junk",
                    {"id": 2},
                    {"id": 3, "recipeSetId": "BBBB2222", "workflowStatus": 7},
                ],
            },
            "P2": {"purchaseOrderNumber": "P2", "lineItems": {"id": 1}},
            "P3": {"purchaseOrderNumber": "OTHER", "lineItems": []},
        },
    )
    sheet = pd.DataFrame(
        {
            "PO": ["P1", "P1", "P2", "P3"],
            "Recipe Set ID": ["AAAA1111", "BBBB2222", "CCCC3333", "DDDD4444"],
            "Status": ["in-progress", "completed", "completed", "completed"],
        }
    )
    frame = reconcile(sheet, _client(server), max_per_minute=FAST, bulk=False, progress=False)
    assert frame["state"].tolist() == ["match", "unknown", "error", "error"]
    assert frame.loc[0, "spectrum_status"] == "in-progress"  # Spectrum's "In Progress"
    assert "not text" in frame.loc[1, "details"]
    assert "no lineItems list" in frame.loc[2, "details"]
    assert "another order" in frame.loc[3, "details"]


def test_an_answer_that_is_not_json_is_an_error_for_that_order(make_raw_server: MakeRaw) -> None:
    server = make_raw_server(lambda request, n: http_response(200, b"<html>maintenance</html>"))
    frame = reconcile(
        SHEET.head(1), _client(server), max_per_minute=FAST, bulk=False, progress=False
    )
    assert frame["state"].tolist() == ["error"]


def test_a_deeply_nested_answer_is_an_error_and_reading_goes_on(make_raw_server: MakeRaw) -> None:
    nested = b"[" * 100_000 + b"]" * 100_000
    good = {
        "purchaseOrderNumber": "P2",
        "lineItems": [{"recipeSetId": "B", "workflowStatus": "approved"}],
    }

    def respond(request: RawRequest, n: int) -> bytes:
        return http_response(200, nested if request.path.endswith("/P1") else good)

    sheet = pd.DataFrame(
        {"PO": ["P1", "P2", "P2"], "Recipe Set": ["A", "B", "C"], "Status": ["approved"] * 3}
    )
    frame = reconcile(
        sheet,
        _client(make_raw_server(respond)),
        max_per_minute=FAST,
        workers=1,
        bulk=False,
        progress=False,
    )
    assert frame["state"].tolist() == ["error", "match", "missing_in_spectrum"]


# --------------------------------------------------------------------------- journal only


def test_reconcile_with_runs_uses_the_journal_only(spectrum: SandboxServer, tmp_path: Path) -> None:
    first = SHEET.iloc[:3]
    _sent(spectrum, tmp_path, first)
    later = first.assign(**{"New Status": ["approved", "on hold", "approved"]}).iloc[:1]
    _sent(spectrum, tmp_path, later)
    spectrum.clear_requests()
    frame = reconcile_with_runs(SHEET, runs_dir=tmp_path / "runs")
    assert spectrum.requests() == []  # no API call
    assert frame.attrs["environment"] == _client(spectrum).environment_key
    assert list(frame.columns) == list(RECONCILE_COLUMNS)
    assert _states(frame) == {
        "00123456": "differs",  # run 2 applied "approved" after run 1's "completed"
        "12345678": "match",
        "ABCD1234": "match",
        "EFGH5678": "unknown",  # never sent
        "IJKL9012": "unknown",
    }
    assert frame.loc[0, "spectrum_status"] == "approved"
    assert frame.loc[0, "details"] == "the sheet wants completed, run 2 applied approved"
    assert frame.loc[1, "details"] == "applied by run 1"


def test_reconcile_with_runs_needs_a_journal_and_one_host(
    make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    with pytest.raises(JournalError, match="no run journal"):
        reconcile_with_runs(SHEET, runs_dir=tmp_path / "none")
    assert not (tmp_path / "none").exists()
    _sent(make_sandbox(seed_from=ORDERS), tmp_path)
    _sent(make_sandbox(seed_from=ORDERS), tmp_path)
    with pytest.raises(ConfigError, match="2 environments"):
        reconcile_with_runs(SHEET, runs_dir=tmp_path / "runs")


# --------------------------------------------------------------------------- summary, file


def test_summary_lists_every_state_and_the_workbook_has_a_chart(
    spectrum: SandboxServer, tmp_path: Path
) -> None:
    _sent(spectrum, tmp_path, SHEET.iloc[:4])
    sheet = pd.concat(
        [
            SHEET,
            pd.DataFrame(
                {"PO Number": ["PO-404"], "Recipe Set ID": ["00000001"], "New Status": ["released"]}
            ),
        ]
    )
    frame = reconcile(sheet, _client(spectrum), max_per_minute=FAST, progress=False)
    summary = reconciliation_summary(frame)
    assert dict(zip(summary["state"], summary["count"], strict=True)) == {
        "match": 4,
        "differs": 1,
        "missing_in_spectrum": 1,
        "unknown": 0,
        "invalid": 0,
        "error": 0,
    }
    book = openpyxl.load_workbook(write_reconciliation(frame, tmp_path / "rec.xlsx"))
    assert book.sheetnames == ["Summary", "Lines"]
    assert len(book["Summary"]._charts) == 1
    rows = list(book["Summary"].iter_rows(values_only=True))
    assert rows[1:3] == [("lines by state", "match", 4), ("lines by state", "differs", 1)]
    lines = list(book["Lines"].iter_rows())
    assert [c.value for c in lines[0]] == list(RECONCILE_COLUMNS)
    ids = {c.value: c.data_type for c in (row[1] for row in lines[1:])}
    assert ids["00123456"] == ids["12345678"] == ids["00000001"] == "s"
    with pytest.raises(ConfigError):
        write_reconciliation(frame, tmp_path / "rec.csv")


# --------------------------------------------------------------------------- CLI


def _cli(*args: str) -> int:
    return main(["reconcile", *args])


def test_cli_exit_codes(
    spectrum: SandboxServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SPECTRUM_API_TOKEN", SANDBOX_TOKEN)
    sheet = tmp_path / "sheet.csv"
    SHEET.to_csv(sheet, index=False)
    url = ["--base-url", spectrum.base_url, "--max-per-minute", str(FAST)]
    _sent(spectrum, tmp_path)
    assert _cli(str(sheet), *url) == 0
    assert "match" in capsys.readouterr().out
    spectrum.store.apply_status_update(
        "PO-3", [{"recipeSetReadableId": "IJKL9012", "workflowStatus": "cancelled"}]
    )
    out = tmp_path / "rec.xlsx"
    assert _cli(str(sheet), *url, "-o", str(out)) == 1
    printed = capsys.readouterr().out
    assert "row 6: PO-3 IJKL9012: differs" in printed and "rec.xlsx" in printed
    assert openpyxl.load_workbook(out).sheetnames == ["Summary", "Lines"]


def test_cli_from_runs_needs_no_base_url(
    spectrum: SandboxServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("SPECTRUM_BASE_URL", raising=False)
    monkeypatch.delenv("SPECTRUM_API_TOKEN", raising=False)
    sheet = tmp_path / "sheet.csv"
    SHEET.to_csv(sheet, index=False)
    runs = ["--from-runs", "--runs-dir", str(tmp_path / "runs")]
    _sent(spectrum, tmp_path)
    spectrum.clear_requests()
    assert _cli(str(sheet), *runs) == 0
    SHEET.iloc[:1].assign(**{"New Status": ["cancelled"]}).to_csv(sheet, index=False)
    assert _cli(str(sheet), *runs, "-o", str(tmp_path / "rec.csv")) == 1
    assert pd.read_csv(tmp_path / "rec.csv", dtype=str)["state"].tolist() == ["differs"]
    assert spectrum.requests() == []
    capsys.readouterr()


def test_cli_usage_errors_exit_2_with_one_line(
    spectrum: SandboxServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SPECTRUM_API_TOKEN", SANDBOX_TOKEN)
    monkeypatch.delenv("SPECTRUM_BASE_URL", raising=False)
    sheet = tmp_path / "sheet.csv"
    SHEET.to_csv(sheet, index=False)
    assert _cli(str(tmp_path / "nope.xlsx"), "--base-url", spectrum.base_url) == 2
    assert "no such file" in capsys.readouterr().err
    assert _cli(str(sheet)) == 2  # no base URL
    assert "base URL" in capsys.readouterr().err
    assert _cli(str(sheet), "--base-url", spectrum.base_url, "-o", str(tmp_path / "x.pdf")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ".xlsx or .csv" in err
    monkeypatch.delenv("SPECTRUM_API_TOKEN")
    assert _cli(str(sheet), "--base-url", spectrum.base_url) == 2
    assert "SPECTRUM_API_TOKEN" in capsys.readouterr().err
    assert spectrum.requests() == []  # nothing was read for any of these


def test_cli_refused_token_exits_2(
    spectrum: SandboxServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SPECTRUM_API_TOKEN", "wrong")
    sheet = tmp_path / "sheet.csv"
    SHEET.to_csv(sheet, index=False)
    assert _cli(str(sheet), "--base-url", spectrum.base_url, "--workers", "1") == 2
    assert "token" in capsys.readouterr().err
    assert len(spectrum.requests()) == 1  # the refusal stopped it: no read after the first


# --------------------------------------------------------------------------- one engine
#
# Reads go through the same paced runner as sends: after a 403 (Spectrum's throttle) they
# slow down and earn the pace back, and they stop when orders in a row get no answer.


@pytest.mark.fault
def test_reads_slow_down_after_a_403_and_earn_the_pace_back(make_sandbox: MakeSandbox) -> None:
    # 5 reads per 0.5 s window; the reader starts at 50 a second.
    sandbox = make_sandbox(rate_limit=5, rate_window_s=0.5)
    pos = order_numbers(sandbox, 30)
    options = SendOptions(
        max_per_minute=3000,
        workers=2,
        throttle_pause_s=0.1,
        throttle_recovery=3,  # 3 clean reads earn a step back (a minute's worth by default)
        max_throttle_retries=100,
        max_forbidden_streak=1000,
    )

    frame = reconcile(sheet(sandbox, pos), client_for(sandbox), options, bulk=False, progress=False)

    answers = [r["status"] for r in sandbox.requests() if r["method"] == "GET"]
    assert 403 in answers  # it really was throttled ...
    assert frame.attrs["stopped"] is None
    assert set(frame["state"]) == {"differs"}  # ... every order was still read and compared
    assert frame.attrs["slowdowns"] >= 1  # it slowed down ...
    assert frame.attrs["speedups"] >= 1  # ... and earned pace back once reads went through
    assert frame.attrs["requests"] == len(answers)


@pytest.mark.fault
def test_reads_stop_when_orders_in_a_row_get_no_answer(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox()
    pos = order_numbers(sandbox, 8)
    rows = sheet(sandbox, pos)
    client = client_for(sandbox)
    sandbox.stop()  # the host is gone: connection refused

    with pytest.raises(RunStoppedError, match="No answer from") as caught:
        reconcile(
            rows, client, workers=1, max_attempts=2, backoff_s=0.01, bulk=False, progress=False
        )

    frame = caught.value.results
    assert frame.attrs["stop_reason"] == "unreachable"
    assert frame.attrs["requests"] == 3 * 2  # 3 orders x 2 attempts, not 8 orders
    per_order = frame.drop_duplicates("purchaseOrderNumber").set_index("purchaseOrderNumber")
    tried = per_order.loc[pos[:3], "details"]
    assert tried.str.startswith("could not read the order after 2 attempt(s)").all()
    assert (per_order.loc[pos[3:], "details"] == "not read: the read stopped before it").all()
    assert set(frame["state"]) == {"error"}
