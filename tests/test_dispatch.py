"""Dispatch end to end: plans sent to the real sandbox over HTTP, outcomes and store checked.

Tier 3 of the test plan. Every test starts its own sandbox (``make_sandbox`` in
``conftest.py``; throttling off unless the test is about it) and asserts what an analyst
would see: the results frame, the sandbox's order store, and the sandbox's request log.
Tests run at a high pace, except those about pacing, which assert the limit (never more
than allowed in a window), not speed. Retry tests shrink the backoff through
:class:`SendOptions` so they take a fraction of a second.
"""

from __future__ import annotations

import _thread
import itertools
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from support.observers import StopAfter
from support.rawhttp import MakeRaw, RawRequest, http_response
from support.sandboxes import (
    NEW,
    MakeSandbox,
    by_po,
    client_for,
    order_numbers,
    status_requests,
    store_statuses,
)
from support.sandboxes import sheet as sheet_for

from spectrum_tools.client import SpectrumClient
from spectrum_tools.engine import Pacer, SendOptions, run_plan
from spectrum_tools.errors import RunStoppedError
from spectrum_tools.planning import Plan, Request, plan_updates
from spectrum_tools.results import RunObserver, line_results, results_frame
from spectrum_tools.runs import send_updates
from spectrum_tools.sandbox import SandboxServer
from spectrum_tools.schema import StopReason

RESULT_COLUMNS = [
    "purchaseOrderNumber",
    "outcome",
    "http_status",
    "details",
    "line_count",
    "missing_ids",
    "attempts",
    "elapsed_s",
    "source_rows",
]
FAST = 60_000.0  # requests per minute: pacing out of the way
RAW_TOKEN = "raw-server-test-token"


# -- helpers -------------------------------------------------------------------------------


def _send(source: Any, client: SpectrumClient, tmp_path: Path, **options: Any) -> pd.DataFrame:
    """send_updates at a high pace, without a progress bar, journal (if any) in tmp_path."""
    options.setdefault("runs_dir", tmp_path / "runs")
    options.setdefault("progress", False)
    options.setdefault("max_per_minute", FAST)
    return send_updates(source, client, **options)


def _quick(**changes: Any) -> SendOptions:
    """SendOptions with tiny backoffs, for retry tests."""
    base: dict[str, Any] = {
        "max_per_minute": FAST,
        "backoff_s": 0.01,
        "backoff_max_s": 0.05,
        "throttle_pause_s": 0.5,
    }
    return SendOptions(**{**base, **changes})


# -- success, results shape ----------------------------------------------------------------


def test_updated_orders_change_the_store_and_report_200(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    pos = order_numbers(sandbox, 3)
    sheet = sheet_for(sandbox, pos)
    before = store_statuses(sandbox)

    results = _send(sheet, client_for(sandbox), tmp_path)

    assert list(results.columns[: len(RESULT_COLUMNS)]) == RESULT_COLUMNS
    assert results["purchaseOrderNumber"].tolist() == pos
    assert set(results["outcome"]) == {"updated"}
    assert results["http_status"].tolist() == [200, 200, 200]
    assert results["attempts"].tolist() == [1, 1, 1]
    assert results["line_count"].tolist() == [
        int((sheet["purchaseOrderNumber"] == p).sum()) for p in pos
    ]
    assert results["details"].str.startswith("Updated workflow status").all()
    after = store_statuses(sandbox)
    for (po, rid), status in after.items():
        assert status == (NEW if po in pos else before[(po, rid)])
    assert len(status_requests(sandbox)) == 3  # one request per order
    assert results.attrs["stopped"] is None
    assert results.attrs["host"] == sandbox.base_url.removeprefix("http://")


def test_an_order_split_across_rows_is_one_request_with_every_row_listed(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    [po, other] = order_numbers(sandbox, 2)
    sheet = sheet_for(sandbox, [po, other])
    # Move the first row of `po` to the end: the order's rows are now 2.. and the last row.
    sheet = pd.concat([sheet.iloc[1:], sheet.iloc[:1]], ignore_index=True)

    results = _send(sheet, client_for(sandbox), tmp_path)

    row = by_po(results)[po]
    rows = [str(i + 2) for i in sheet.index[sheet["purchaseOrderNumber"] == po]]
    assert row["source_rows"] == ",".join(rows)
    assert row["line_count"] == len(rows)
    [request] = status_requests(sandbox, po)
    assert request["lineItemCount"] == len(rows)


def test_invalid_rows_hold_their_order_back_and_name_the_rows(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    good, bad, good2 = order_numbers(sandbox, 3)
    sheet = sheet_for(sandbox, [good, bad, good2])
    bad_rows = sheet.index[sheet["purchaseOrderNumber"] == bad]
    sheet.loc[bad_rows[0], "workflowStatus"] = "shipped"
    sheet.loc[bad_rows[1], "recipeSetReadableId"] = ""
    first_bad, second_bad = (int(i) + 2 for i in bad_rows[:2])  # spreadsheet row numbers
    before = store_statuses(sandbox)

    results = _send(sheet, client_for(sandbox), tmp_path)

    # One row per order, in the order the sheet lists them.
    assert results["purchaseOrderNumber"].tolist() == [good, bad, good2]
    row = by_po(results)[bad]
    assert row["outcome"] == "invalid"
    assert f"row {first_bad}" in row["details"] and "shipped" in row["details"]
    assert f"row {second_bad}" in row["details"]
    assert row["attempts"] == 0
    assert pd.isna(row["http_status"])
    assert status_requests(sandbox, bad) == []
    after = store_statuses(sandbox)
    assert all(after[k] == before[k] for k in after if k[0] == bad)
    assert by_po(results)[good]["outcome"] == "updated"


def test_line_results_map_every_input_row_to_its_orders_outcome(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    good, bad, missing = order_numbers(sandbox, 3)
    sheet = sheet_for(sandbox, [good, bad, missing])
    sheet["Notes"] = [f"note {i}" for i in range(len(sheet))]  # the analyst's own column
    bad_row = int(sheet.index[sheet["purchaseOrderNumber"] == bad][0])
    sheet.loc[bad_row, "workflowStatus"] = "shipped"
    miss_row = int(sheet.index[sheet["purchaseOrderNumber"] == missing][0])
    sheet.loc[miss_row, "recipeSetReadableId"] = "NOPE0001"
    blank = pd.DataFrame(
        [{"purchaseOrderNumber": "", "recipeSetReadableId": "AAAA1111", "workflowStatus": NEW}]
    )
    sheet = pd.concat([sheet, blank], ignore_index=True)
    plan = plan_updates(sheet)

    results = _send(plan, client_for(sandbox), tmp_path)
    lines = line_results(results, plan)

    assert len(lines) == len(sheet)
    assert lines["source_row"].tolist() == [i + 2 for i in range(len(sheet))]
    assert lines["Notes"].iloc[: len(sheet) - 1].tolist() == sheet["Notes"].iloc[:-1].tolist()
    outcome = dict(zip(results["purchaseOrderNumber"], results["outcome"], strict=True))
    for _, line in lines.iterrows():
        po = line["purchaseOrderNumber"]
        if po == "" or (po == bad and line["source_row"] == bad_row + 2):
            assert line["outcome"] == "invalid"
            assert line["details"]  # the row's own problem
        else:
            assert line["outcome"] == outcome[po], line.to_dict()
    assert set(lines.loc[lines["purchaseOrderNumber"] == good, "outcome"]) == {"updated"}
    assert set(lines.loc[lines["purchaseOrderNumber"] == missing, "outcome"]) == {"not_found"}
    assert "shipped" in lines.loc[bad_row, "details"]


def test_send_partial_orders_sends_the_valid_rows_of_an_order_with_invalid_rows(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    [po] = order_numbers(sandbox, 1)
    sheet = sheet_for(sandbox, [po])
    sheet.loc[0, "workflowStatus"] = "shipped"
    bad_id = sheet.loc[0, "recipeSetReadableId"]
    before = store_statuses(sandbox)
    plan = plan_updates(sheet, send_partial_orders=True)

    results = _send(plan, client_for(sandbox), tmp_path)

    [row] = results.to_dict("records")  # the order once, not also as invalid
    assert row["outcome"] == "updated"
    assert row["line_count"] == len(sheet) - 1
    after = store_statuses(sandbox)
    assert after[(po, bad_id)] == before[(po, bad_id)]
    assert all(after[(po, rid)] == NEW for rid in sheet["recipeSetReadableId"].iloc[1:])
    lines = line_results(results, plan)
    assert lines["outcome"].tolist() == ["invalid"] + ["updated"] * (len(sheet) - 1)

    # And without the option the whole order is held back.
    held = _send(plan_updates(sheet), client_for(sandbox), tmp_path)
    assert held["outcome"].tolist() == ["invalid"]


def test_dry_run_sends_nothing_and_reports_the_plan(sandbox: SandboxServer, tmp_path: Path) -> None:
    pos = order_numbers(sandbox, 3)
    sheet = sheet_for(sandbox, pos)
    sheet.loc[sheet.index[-1], "workflowStatus"] = "shipped"
    before = store_statuses(sandbox)

    results = _send(sheet, client_for(sandbox), tmp_path, dry_run=True)

    # A dry run reads the current state (read-back is on) but sends no status.
    assert status_requests(sandbox) == []
    assert sandbox.requests()  # it did read
    assert {r["endpoint"] for r in sandbox.requests()} <= {"orders-search", "order-number"}
    assert store_statuses(sandbox) == before
    assert list(results.columns[: len(RESULT_COLUMNS)]) == RESULT_COLUMNS
    assert results["outcome"].tolist() == ["dry_run", "dry_run", "invalid"]
    assert results["attempts"].tolist() == [0, 0, 0]

    # Without read-back a dry run makes no request at all.
    sandbox.clear_requests()
    blind = _send(sheet, client_for(sandbox), tmp_path, dry_run=True, read_back=False)
    assert sandbox.requests() == []
    assert store_statuses(sandbox) == before
    assert blind["outcome"].tolist() == ["dry_run", "dry_run", "invalid"]
    assert blind["attempts"].tolist() == [0, 0, 0]


def test_send_updates_reads_a_file_path(sandbox: SandboxServer, tmp_path: Path) -> None:
    pos = order_numbers(sandbox, 2)
    path = tmp_path / "updates.csv"
    sheet_for(sandbox, pos).rename(columns={"purchaseOrderNumber": "PO Number"}).to_csv(
        path, index=False
    )
    results = _send(path, client_for(sandbox), tmp_path)
    assert results["outcome"].tolist() == ["updated", "updated"]


# -- not found -------------------------------------------------------------------------------


@pytest.mark.fault
@pytest.mark.parametrize("code", [409, 404])
def test_missing_ids_give_not_found_with_the_ids_and_change_nothing(
    make_sandbox: MakeSandbox, tmp_path: Path, code: int
) -> None:
    sandbox = make_sandbox(not_found_status=code)
    po, other = order_numbers(sandbox, 2)
    sheet = sheet_for(sandbox, [po, other])
    rows = sheet.index[sheet["purchaseOrderNumber"] == po]
    sheet.loc[rows[0], "recipeSetReadableId"] = "NOPE0001"
    sheet.loc[rows[2], "recipeSetReadableId"] = "NOPE0002"
    before = store_statuses(sandbox)

    # The write path's handling of the refusal: nothing read first (read-back decides such an
    # order without a request; see test_send_read_back.py).
    results = _send(sheet, client_for(sandbox), tmp_path, read_back=False)

    row = by_po(results)[po]
    assert row["outcome"] == "not_found"
    assert row["http_status"] == code
    assert row["missing_ids"] == "NOPE0001,NOPE0002"
    assert "NOPE0001" in row["details"]
    assert row["attempts"] == 1
    assert len(status_requests(sandbox, po)) == 1  # never retried
    after = store_statuses(sandbox)
    assert all(after[k] == before[k] for k in after if k[0] == po)  # all or nothing
    assert by_po(results)[other]["outcome"] == "updated"


@pytest.mark.fault
def test_retry_without_missing_resends_the_rest_and_reports_partial(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    [po] = order_numbers(sandbox, 1)
    sheet = sheet_for(sandbox, [po])
    sheet.loc[1, "recipeSetReadableId"] = "NOPE0001"
    kept = [r for r in sheet["recipeSetReadableId"] if r != "NOPE0001"]

    results = _send(
        sheet, client_for(sandbox), tmp_path, retry_without_missing=True, read_back=False
    )

    [row] = results.to_dict("records")
    assert row["outcome"] == "partial"
    assert row["missing_ids"] == "NOPE0001"
    assert row["http_status"] == 200
    assert row["attempts"] == 2
    assert "NOPE0001" in row["details"]
    first, second = status_requests(sandbox, po)
    assert first["status"] == 409 and "NOPE0001" in first["recipeSetReadableIds"]
    assert second["status"] == 200 and second["recipeSetReadableIds"] == kept
    after = store_statuses(sandbox)
    assert all(after[(po, rid)] == NEW for rid in kept)


@pytest.mark.fault
def test_retry_without_missing_does_not_resend_an_order_whose_ids_are_all_missing(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    sheet = pd.DataFrame(
        {
            "purchaseOrderNumber": ["NO-SUCH-PO", "NO-SUCH-PO"],
            "recipeSetReadableId": ["NOPE0001", "NOPE0002"],
            "workflowStatus": [NEW, NEW],
        }
    )
    results = _send(
        sheet, client_for(sandbox), tmp_path, retry_without_missing=True, read_back=False
    )
    [row] = results.to_dict("records")
    assert row["outcome"] == "not_found"
    assert row["missing_ids"] == "NOPE0001,NOPE0002"
    assert len(status_requests(sandbox)) == 1


# -- retries ---------------------------------------------------------------------------------


@pytest.mark.fault
def test_fail_first_is_retried_and_attempts_reach_the_results(
    make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    po, other = order_numbers(sandbox, 2)
    sandbox.settings.fail_first = {po: 1}

    results = _send(
        sheet_for(sandbox, [po, other]), client_for(sandbox), tmp_path
    )  # default backoff

    assert by_po(results)[po]["outcome"] == "updated"
    assert by_po(results)[po]["attempts"] == 2
    assert by_po(results)[other]["attempts"] == 1
    assert [r["status"] for r in status_requests(sandbox, po)] == [500, 200]


@pytest.mark.fault
def test_fail_first_two_takes_three_attempts(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox()
    po, other = order_numbers(sandbox, 2)
    sandbox.settings.fail_first = {po: 2}
    plan = plan_updates(sheet_for(sandbox, [po, other]))

    results, stopped = run_plan(plan, client_for(sandbox), _quick())
    frame = results_frame(plan, results)

    assert stopped is None
    row = by_po(frame)[po]
    assert (row["outcome"], row["attempts"], row["http_status"]) == ("updated", 3, 200)
    assert [r["status"] for r in status_requests(sandbox, po)] == [500, 500, 200]
    assert all(s == NEW for (p, _), s in store_statuses(sandbox).items() if p == po)


@pytest.mark.fault
@pytest.mark.parametrize("max_attempts", [1, 3])
def test_an_error_storm_is_bounded_by_max_attempts(
    make_sandbox: MakeSandbox, max_attempts: int
) -> None:
    sandbox = make_sandbox(error_rate=1.0)
    pos = order_numbers(sandbox, 3)
    plan = plan_updates(sheet_for(sandbox, pos))
    before = store_statuses(sandbox)

    results, _ = run_plan(plan, client_for(sandbox), _quick(max_attempts=max_attempts))
    frame = results_frame(plan, results)

    assert set(frame["outcome"]) == {"failed"}
    assert frame["attempts"].tolist() == [max_attempts] * 3
    assert frame["http_status"].tolist() == [500] * 3
    assert frame["details"].str.contains("encountered an error").all()
    for po in pos:
        assert len(status_requests(sandbox, po)) == max_attempts
    assert store_statuses(sandbox) == before


@pytest.mark.fault
def test_send_updates_max_attempts_bounds_retries(
    make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox(error_rate=1.0)
    pos = order_numbers(sandbox, 2)
    results = _send(sheet_for(sandbox, pos), client_for(sandbox), tmp_path, max_attempts=1)
    assert results["outcome"].tolist() == ["failed", "failed"]
    assert results["attempts"].tolist() == [1, 1]
    assert len(status_requests(sandbox)) == 2


@pytest.mark.fault
def test_retries_back_off_exponentially(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(error_rate=1.0)
    [po] = order_numbers(sandbox, 1)
    plan = plan_updates(sheet_for(sandbox, [po]))

    run_plan(plan, client_for(sandbox), _quick(max_attempts=4, backoff_s=0.1, backoff_max_s=0.6))

    times = [r["monotonic"] for r in status_requests(sandbox, po)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) == 3
    # Waits of at least 0.1, 0.2, 0.4 s (plus jitter): the server is not hammered.
    for gap, least in zip(gaps, [0.1, 0.2, 0.4], strict=True):
        assert gap >= least - 0.02, gaps


@pytest.mark.fault
def test_timeouts_are_retried_and_reported(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(latency_s=0.6)
    [po] = order_numbers(sandbox, 1)
    plan = plan_updates(sheet_for(sandbox, [po]))
    client = SpectrumClient(sandbox.base_url, token=sandbox.token, timeout=(2.0, 0.2))

    results, _ = run_plan(plan, client, _quick(max_attempts=2))

    [result] = results
    assert result.outcome == "failed"
    assert result.attempts == 2
    assert "timed out" in result.details
    assert len(status_requests(sandbox, po)) == 2


@pytest.mark.fault
def test_connection_refused_is_retried_then_failed(tmp_path: Path) -> None:

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sheet = pd.DataFrame(
        {
            "purchaseOrderNumber": ["P1"],
            "recipeSetReadableId": ["AAAA1111"],
            "workflowStatus": [NEW],
        }
    )
    plan = plan_updates(sheet)
    client = SpectrumClient(f"http://127.0.0.1:{port}", token=RAW_TOKEN)

    results, _ = run_plan(plan, client, _quick(max_attempts=3))

    [result] = results
    assert (result.outcome, result.attempts, result.http_status) == ("failed", 3, None)
    assert "refused" in result.details


def _one_order_plan() -> Plan:
    return plan_updates(
        pd.DataFrame(
            {
                "purchaseOrderNumber": ["P1"],
                "recipeSetReadableId": ["AAAA1111"],
                "workflowStatus": [NEW],
            }
        )
    )


def _ok(request: RawRequest, n: int) -> bytes:
    return http_response(
        200, {"purchaseOrderNumber": "P1", "status": "OK", "details": "Updated workflow status."}
    )


@pytest.mark.fault
def test_429_is_retried_after_its_retry_after(make_raw_server: MakeRaw) -> None:
    arrivals: list[float] = []

    def respond(request: RawRequest, n: int) -> bytes:
        arrivals.append(time.monotonic())
        if n == 0:
            return http_response(429, b"slow down", {"Retry-After": "1"})
        return _ok(request, n)

    server = make_raw_server(respond)
    results, _ = run_plan(
        _one_order_plan(), SpectrumClient(server.base_url, token=RAW_TOKEN), _quick()
    )

    [result] = results
    assert (result.outcome, result.attempts, result.http_status) == ("updated", 2, 200)
    assert arrivals[1] - arrivals[0] >= 0.95  # honoured, not the 0.01 s backoff


@pytest.mark.fault
@pytest.mark.timeout(60)
def test_a_huge_retry_after_is_capped(make_raw_server: MakeRaw) -> None:
    def respond(request: RawRequest, n: int) -> bytes:
        if n == 0:
            return http_response(429, b"", {"Retry-After": "3600"})
        return _ok(request, n)

    server = make_raw_server(respond)
    options = _quick(retry_after_max_s=0.2)
    results, _ = run_plan(
        _one_order_plan(), SpectrumClient(server.base_url, token=RAW_TOKEN), options
    )
    assert results[0].outcome == "updated"
    assert results[0].attempts == 2


@pytest.mark.fault
@pytest.mark.parametrize("code", [400, 418, 422])
def test_other_4xx_answers_are_never_retried(make_raw_server: MakeRaw, code: int) -> None:
    server = make_raw_server(
        lambda r, n: http_response(code, {"status": "Error", "details": "bad request"})
    )
    results, stopped = run_plan(
        _one_order_plan(), SpectrumClient(server.base_url, token=RAW_TOKEN), _quick()
    )
    [result] = results
    assert (result.outcome, result.attempts, result.http_status) == ("failed", 1, code)
    assert "bad request" in result.details
    assert len(server.requests) == 1
    assert stopped is None


@pytest.mark.fault
def test_a_dropped_connection_is_retried(make_raw_server: MakeRaw) -> None:
    server = make_raw_server(lambda r, n: b"" if n == 0 else _ok(r, n))
    results, _ = run_plan(
        _one_order_plan(), SpectrumClient(server.base_url, token=RAW_TOKEN), _quick()
    )
    assert (results[0].outcome, results[0].attempts) == ("updated", 2)
    assert len(server.requests) == 2


# -- 401 / 403 -------------------------------------------------------------------------------


@pytest.mark.fault
@pytest.mark.security
@pytest.mark.parametrize("code", [403, 401])
def test_refused_token_before_any_success_stops_the_run(
    make_sandbox: MakeSandbox, tmp_path: Path, code: int
) -> None:
    sandbox = make_sandbox(auth_failure_status=code)
    pos = order_numbers(sandbox, 10)
    before = store_statuses(sandbox)
    workers = 2

    with pytest.raises(RunStoppedError) as info:
        _send(
            sheet_for(sandbox, pos),
            client_for(sandbox, "wrong-token"),
            tmp_path,
            workers=workers,
            read_back=False,  # the write path's refusal (a refused read: test_send_read_back.py)
        )

    message = str(info.value)
    assert "token" in message.lower()
    assert "rate limit" in message.lower()
    assert f"HTTP {code}" in message
    frame = info.value.results
    assert frame is not None
    assert frame["purchaseOrderNumber"].tolist() == pos  # every order, exactly once
    assert set(frame["outcome"]) == {"pending"}
    assert frame["attempts"].sum() <= workers
    requests = status_requests(sandbox)
    assert 1 <= len(requests) <= workers  # only the first few went out
    assert {r["status"] for r in requests} == {code}
    assert store_statuses(sandbox) == before


@pytest.mark.fault
def test_throttling_after_successes_slows_down_and_finishes(make_sandbox: MakeSandbox) -> None:
    # 4 requests per 1 s window; the client starts at 10 per second.
    sandbox = make_sandbox(rate_limit=4, rate_window_s=1.0)
    pos = order_numbers(sandbox, 10)
    plan = plan_updates(sheet_for(sandbox, pos))
    options = _quick(max_per_minute=600, workers=4, throttle_pause_s=1.0)

    results, stopped = run_plan(plan, client_for(sandbox), options)
    frame = results_frame(plan, results)

    assert stopped is None
    statuses = [r["status"] for r in status_requests(sandbox)]
    assert 403 in statuses  # it really was throttled ...
    assert set(frame["outcome"]) == {"updated"}  # ... and every order still made it
    assert frame["attempts"].max() >= 2
    assert all(s == NEW for (p, _), s in store_statuses(sandbox).items() if p in pos)


# -- pacing and workers ----------------------------------------------------------------------


def _assert_paced(times: list[float], per_second: float, tolerance: float = 0.04) -> None:
    """Request starts (the sandbox's arrival times) are spaced by the interval, and no 1 s
    window holds more than ``per_second`` of them.

    One request may be held up between the client's slot and the sandbox's clock (the
    sandbox shares this process and the machine is shared too); it then lands next to the
    following one. So exactly one short gap, and one extra request in a window, are
    tolerated. A broken pacer (none, per worker, retries outside the slots) bunches many
    requests within milliseconds of each other and fails both checks.
    """
    interval = 1.0 / per_second
    times = sorted(times)
    short = [round(b - a, 3) for a, b in itertools.pairwise(times) if b - a < interval - tolerance]
    assert len(short) <= 1, (short, times)
    allowed = round(per_second) + 1  # in any 1 s window, with one delayed request
    for i in range(len(times) - allowed):
        assert times[i + allowed] - times[i] >= 1.0, times


def test_requests_are_paced_under_max_per_minute(sandbox: SandboxServer, tmp_path: Path) -> None:
    pos = order_numbers(sandbox, 16)
    client = client_for(sandbox)
    results = _send(sheet_for(sandbox, pos), client, tmp_path, max_per_minute=600, workers=4)
    assert set(results["outcome"]) == {"updated"}
    times = [r["monotonic"] for r in status_requests(sandbox)]
    assert len(times) == 16
    _assert_paced(times, per_second=10)


@pytest.mark.fault
def test_retries_take_paced_slots_too(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox()
    pos = order_numbers(sandbox, 10)
    sandbox.settings.fail_first = {pos[0]: 2, pos[3]: 1}
    plan = plan_updates(sheet_for(sandbox, pos))

    results, _ = run_plan(plan, client_for(sandbox), _quick(max_per_minute=600, workers=4))

    assert {r.outcome for r in results} == {"updated"}
    times = [r["monotonic"] for r in status_requests(sandbox)]
    assert len(times) == 13
    _assert_paced(times, per_second=10)


class _InFlight(RunObserver):
    """Counts requests in flight (sending -> answered), thread-safely."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0
        self._lock = threading.Lock()

    def sending(self, request: Request, attempt: int) -> None:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def answered(self, request: Request, attempt: int, status: int | None, details: str) -> None:
        with self._lock:
            self.now -= 1


def test_workers_keep_several_requests_in_flight_to_hide_latency(
    make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox(latency_s=0.2)
    pos = order_numbers(sandbox, 16)
    flight = _InFlight()

    client = client_for(sandbox)
    results = _send(sheet_for(sandbox, pos), client, tmp_path, workers=8, observers=[flight])

    assert set(results["outcome"]) == {"updated"}
    assert len(status_requests(sandbox)) == 16
    assert 2 <= flight.most <= 8  # overlapping requests, never more than the workers


# -- stopping --------------------------------------------------------------------------------


def _assert_stopped_cleanly(
    sandbox: SandboxServer, frame: pd.DataFrame, pos: list[str], before: dict[tuple[str, str], str]
) -> None:
    assert frame["purchaseOrderNumber"].tolist() == pos  # each order exactly one row
    sent = {r["purchaseOrderNumber"] for r in status_requests(sandbox)}
    outcomes = by_po(frame)
    after = store_statuses(sandbox)
    for po in pos:
        if po in sent:  # in flight when the stop came: it finished
            assert outcomes[po]["outcome"] == "updated"
            assert all(after[k] == NEW for k in after if k[0] == po)
        else:
            assert outcomes[po]["outcome"] == "pending"
            assert outcomes[po]["attempts"] == 0
            assert all(after[k] == before[k] for k in after if k[0] == po)
    assert 3 <= len(sent) < len(pos)
    assert (frame["outcome"] == "pending").sum() == len(pos) - len(sent)


def test_stop_event_leaves_unsent_orders_pending_and_finishes_in_flight_ones(
    make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox(latency_s=0.3)
    pos = order_numbers(sandbox, 12)
    before = store_statuses(sandbox)
    stop = threading.Event()

    frame = _send(
        sheet_for(sandbox, pos),
        client_for(sandbox),
        tmp_path,
        workers=2,
        stop=stop,
        observers=[StopAfter(3, stop.set, when="sending")],
    )

    _assert_stopped_cleanly(sandbox, frame, pos, before)


def test_stop_event_is_reported_as_a_stopped_run(make_sandbox: MakeSandbox, tmp_path: Path) -> None:
    sandbox = make_sandbox(latency_s=0.2)
    pos = order_numbers(sandbox, 8)
    stop = threading.Event()
    frame = _send(
        sheet_for(sandbox, pos),
        client_for(sandbox),
        tmp_path,
        workers=2,
        stop=stop,
        observers=[StopAfter(2, stop.set, when="sending")],
    )
    assert (frame["outcome"] == "pending").any()
    assert frame.attrs["stopped"] is not None


def test_ctrl_c_returns_results_with_unsent_orders_pending(
    make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox(latency_s=0.3)
    pos = order_numbers(sandbox, 12)
    before = store_statuses(sandbox)

    frame = _send(
        sheet_for(sandbox, pos),
        client_for(sandbox),
        tmp_path,
        workers=2,
        # Ctrl-C in the main thread as the third request goes out
        observers=[StopAfter(3, _thread.interrupt_main, when="sending")],
    )

    assert frame.attrs["stopped"] == "interrupted"  # returned, not raised
    _assert_stopped_cleanly(sandbox, frame, pos, before)


def test_ctrl_c_lets_the_in_flight_request_finish_and_reports_it(
    make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = make_sandbox(latency_s=0.3)
    pos = order_numbers(sandbox, 5)

    frame = _send(
        sheet_for(sandbox, pos),
        client_for(sandbox),
        tmp_path,
        workers=1,
        # Ctrl-C as order 2 goes out
        observers=[StopAfter(2, _thread.interrupt_main, when="sending")],
    )

    # send_updates returned: every worker is done, so nothing can be sent after this.
    assert [r["purchaseOrderNumber"] for r in status_requests(sandbox)] == pos[:2]
    assert all(s == NEW for (p, _), s in store_statuses(sandbox).items() if p == pos[1])  # applied
    assert frame["outcome"].tolist() == ["updated", "updated", "pending", "pending", "pending"]


@pytest.mark.fault
def test_endless_403_after_successes_stops_the_run_instead_of_crawling(
    make_sandbox: MakeSandbox,
) -> None:
    # Two requests per minute pass, then the sandbox answers 403 to everything for the
    # rest of the window: to the client that is the same as a token revoked mid-run.
    sandbox = make_sandbox(rate_limit=2, rate_window_s=60.0)
    pos = order_numbers(sandbox, 8)
    plan = plan_updates(sheet_for(sandbox, pos))
    options = _quick(workers=1, throttle_pause_s=0.01, max_forbidden_streak=4)

    results, stopped = run_plan(plan, client_for(sandbox), options)

    assert stopped is not None
    assert stopped.reason is StopReason.FORBIDDEN_STREAK
    assert "403" in stopped.message
    assert "revoked" in stopped.message
    outcomes = [r.outcome.value for r in results]
    assert outcomes[:2] == ["updated", "updated"]
    assert set(outcomes[2:]) == {"pending"}  # nothing the server refused counts as sent
    assert [r.purchase_order for r in results] == pos  # one outcome per order
    refused = [r for r in status_requests(sandbox) if r["status"] == 403]
    assert len(refused) == 4  # it stopped at the streak, not after hours of retries


@pytest.mark.fault
def test_a_host_that_never_answers_stops_the_run_after_three_orders(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = make_sandbox()
    pos = order_numbers(sandbox, 8)
    plan = plan_updates(sheet_for(sandbox, pos))
    nobody = socket.socket()
    nobody.bind(("127.0.0.1", 0))  # bound, never listening: connection refused
    port = nobody.getsockname()[1]
    try:
        client = SpectrumClient(f"http://127.0.0.1:{port}", token="t0ken-for-nobody")
        results, stopped = run_plan(plan, client, _quick(workers=1, max_attempts=2))
    finally:
        nobody.close()

    assert stopped is not None
    assert stopped.reason is StopReason.UNREACHABLE
    assert "No answer from" in stopped.message
    assert "base URL" in stopped.message
    outcomes = [r.outcome.value for r in results]
    assert outcomes == ["failed"] * 3 + ["pending"] * 5  # not 8 orders x 2 attempts
    assert [r.purchase_order for r in results] == pos


@pytest.mark.fault
def test_losing_the_host_mid_run_stops_it_with_the_rest_pending(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = make_sandbox()
    pos = order_numbers(sandbox, 12)
    plan = plan_updates(sheet_for(sandbox, pos))
    options = _quick(workers=1, max_attempts=2, max_unreachable_orders=4)

    results, stopped = run_plan(
        plan, client_for(sandbox), options, observers=[StopAfter(2, sandbox.stop)]
    )

    assert stopped is not None
    assert "No answer from" in stopped.message
    outcomes = [r.outcome.value for r in results]
    assert outcomes == ["updated"] * 2 + ["failed"] * 4 + ["pending"] * 6


class _FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_pacer_slows_down_after_a_throttle_and_earns_the_pace_back() -> None:
    clock = _FakeClock()
    pacer = Pacer(100, clock=clock)
    base = pacer.per_minute
    assert 97 < base < 100  # never above the configured pace

    pacer.throttled(pause_s=10)
    pacer.throttled(pause_s=10)  # a second worker hearing the same episode: no extra cut
    slowed = pacer.per_minute
    assert slowed == pytest.approx(base / 1.5)

    for _ in range(99):
        pacer.succeeded()
    assert pacer.per_minute == slowed  # not yet: about a minute of clean sending first
    pacer.succeeded()
    assert slowed < pacer.per_minute < base

    for _ in range(1000):
        pacer.succeeded()
    assert pacer.per_minute == pytest.approx(base)  # back, and never beyond
