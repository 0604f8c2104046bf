"""Fault injection: a run over a misbehaving network or server still ends truthfully.

Two kinds of bad servers: the raw-socket ones of ``tests/faultservers.py`` (refused, reset,
cut, hung, trickling, 5xx/403/429 storms, redirects, bodies that are not the documented
JSON) and the sandbox's own fault switches (latency, rate limit, error rate, fail first).

After every run the same promises are checked (:func:`faultservers.check_run` and
:func:`faultservers.check_journal`): every order has exactly one final outcome; an order
reported ``pending`` was never answered 200; an ``updated`` one was; ``attempts`` is what
the server received; the run journal holds the same outcome, status and attempts.

Timeouts are short (0.4 s) and retries fast, so each test takes a second or two.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from support.faultservers import (
    Close,
    Cut,
    FaultServer,
    Hang,
    Hit,
    Reply,
    Reset,
    ServerView,
    Trickle,
    check_journal,
    check_run,
    closed_port,
    error_body,
    ok,
    ok_body,
    run_journaled,
    update_rows,
)
from support.observers import StopAfter

from spectrum_tools import RunStoppedError, SpectrumClient, plan_updates, send_updates
from spectrum_tools.cli import main
from spectrum_tools.planning import Plan

pytestmark = [pytest.mark.fault, pytest.mark.timeout(60)]

TOKEN = "fault-suite-token-6d1f"
TIMEOUT = (0.4, 0.4)
MakeServer = Callable[..., FaultServer]


@pytest.fixture
def fault_server() -> Iterator[MakeServer]:
    """A factory of :class:`FaultServer`; every one is stopped after the test."""
    started: list[FaultServer] = []

    def make(behaviour: Callable[[Hit], object], **options: object) -> FaultServer:
        started.append(FaultServer(behaviour, **options))  # type: ignore[arg-type]
        return started[-1]

    yield make
    for server in started:
        server.stop()


def client_for(url: str) -> SpectrumClient:
    return SpectrumClient(url, token=TOKEN, timeout=TIMEOUT)


def small_plan(n_orders: int = 3, lines: int = 2) -> Plan:
    return plan_updates(update_rows(n_orders, lines))


def outcomes(results: pd.DataFrame) -> dict[str, str]:
    return dict(zip(results["purchaseOrderNumber"], results["outcome"], strict=True))


def column(results: pd.DataFrame, name: str) -> dict[str, object]:
    return dict(zip(results["purchaseOrderNumber"], results[name], strict=True))


def run_and_check(
    server: FaultServer,
    tmp_path: Path,
    plan: Plan | None = None,
    *,
    finished: bool = True,
    **options: object,
) -> pd.DataFrame:
    plan = plan if plan is not None else small_plan()
    results = run_journaled(plan, client_for(server.base_url), tmp_path / "runs", **options)
    check_run(results, plan, ServerView.of(server), finished=finished)
    check_journal(results, tmp_path / "runs")
    return results


# --------------------------------------------------------------------------- no answer


def test_connection_refused_fails_every_order_after_its_attempts(tmp_path: Path) -> None:
    plan = small_plan()
    client = client_for(f"http://127.0.0.1:{closed_port()}")

    results = run_journaled(plan, client, tmp_path / "runs", max_attempts=2)

    assert set(outcomes(results).values()) == {"failed"}
    assert set(column(results, "attempts").values()) == {2}
    assert results["http_status"].isna().all()
    assert results["details"].str.contains("refused").all(), results["details"].tolist()
    check_run(results, plan, ServerView(ok=lambda po: False, count=None))
    check_journal(results, tmp_path / "runs")


@pytest.mark.parametrize(
    ("action", "says"),
    [
        (Reset(), "reset|aborted"),
        (Close(), "aborted|closed"),
        (Cut(Reply(200, {"status": "OK", "details": "x" * 200})), "cut off|ChunkedEncoding"),
        (Hang(3.0), "timed out"),
    ],
    ids=["reset", "closed-without-answer", "cut-half-way", "hang-past-read-timeout"],
)
def test_no_usable_answer_is_retried_then_failed(
    fault_server: MakeServer, tmp_path: Path, action: object, says: str
) -> None:
    server = fault_server(lambda hit: action)

    results = run_and_check(server, tmp_path, max_attempts=2)

    assert set(outcomes(results).values()) == {"failed"}
    assert set(column(results, "attempts").values()) == {2}
    assert results["details"].str.contains(says).all(), results["details"].tolist()


def test_answer_cut_half_way_is_explained_in_plain_words(
    fault_server: MakeServer, tmp_path: Path
) -> None:
    server = fault_server(lambda hit: Cut(Reply(200, ok_body(hit))))

    results = run_and_check(server, tmp_path, small_plan(1), max_attempts=1)

    assert results["details"].str.contains("cut off").all(), results["details"].tolist()


@pytest.mark.parametrize(
    "first",
    [Reset(), Close(), Cut(Reply(200, {"status": "OK", "details": "y" * 100})), Hang(3.0)],
    ids=["reset", "closed", "cut", "hang"],
)
def test_one_lost_answer_then_success_is_updated_on_the_second_attempt(
    fault_server: MakeServer, tmp_path: Path, first: object
) -> None:
    server = fault_server(lambda hit: first if hit.attempt == 1 else ok(hit))

    results = run_and_check(server, tmp_path)

    assert set(outcomes(results).values()) == {"updated"}
    assert set(column(results, "attempts").values()) == {2}


def test_slow_trickle_that_keeps_coming_is_read_to_the_end(
    fault_server: MakeServer, tmp_path: Path
) -> None:
    # Each chunk comes well within the read timeout; the whole answer takes longer than it.
    server = fault_server(lambda hit: Trickle(ok(hit), chunk=16, delay=0.03))

    results = run_and_check(server, tmp_path, small_plan(2))

    assert set(outcomes(results).values()) == {"updated"}
    assert set(column(results, "attempts").values()) == {1}


def test_trickle_that_stops_half_way_times_out_and_is_retried(
    fault_server: MakeServer, tmp_path: Path
) -> None:
    server = fault_server(
        lambda hit: (
            Trickle(ok(hit), chunk=10, delay=0.01, limit=40) if hit.attempt == 1 else ok(hit)
        ),
        max_hold_s=2.0,
    )

    results = run_and_check(server, tmp_path, small_plan(2))

    assert set(outcomes(results).values()) == {"updated"}
    assert set(column(results, "attempts").values()) == {2}


# --------------------------------------------------------------------------- error storms


@pytest.mark.parametrize("code", [500, 502, 503, 504])
def test_5xx_storm_fails_each_order_after_max_attempts(
    fault_server: MakeServer, tmp_path: Path, code: int
) -> None:
    server = fault_server(lambda hit: Reply(code, error_body(hit, code)))

    results = run_and_check(server, tmp_path, max_attempts=3)

    assert set(outcomes(results).values()) == {"failed"}
    assert set(column(results, "attempts").values()) == {3}
    assert set(column(results, "http_status").values()) == {code}
    assert results["details"].str.contains(f"HTTP {code}").all()


@pytest.mark.parametrize("code", [400, 418, 501, 505])
def test_other_errors_are_not_retried(fault_server: MakeServer, tmp_path: Path, code: int) -> None:
    server = fault_server(lambda hit: Reply(code, error_body(hit, code)))

    results = run_and_check(server, tmp_path)

    assert set(outcomes(results).values()) == {"failed"}
    assert set(column(results, "attempts").values()) == {1}
    assert set(column(results, "http_status").values()) == {code}


def test_5xx_storm_that_clears_ends_updated(fault_server: MakeServer, tmp_path: Path) -> None:
    server = fault_server(lambda hit: Reply(503, error_body(hit, 503)) if hit.n < 4 else ok(hit))

    results = run_and_check(server, tmp_path, small_plan(4), max_attempts=4)

    assert set(outcomes(results).values()) == {"updated"}
    assert sum(column(results, "attempts").values()) == len(server.hits)


def test_403_storm_after_a_first_success_throttles_then_fails_the_rest(
    fault_server: MakeServer, tmp_path: Path
) -> None:
    server = fault_server(lambda hit: ok(hit) if hit.n == 0 else Reply(403, error_body(hit, 403)))
    plan = small_plan(3)

    results = run_and_check(server, tmp_path, plan, workers=1, max_throttle_retries=2)

    first, *rest = (r.purchase_order for r in plan.requests())
    assert outcomes(results)[first] == "updated"
    assert {outcomes(results)[po] for po in rest} == {"failed"}
    assert {column(results, "attempts")[po] for po in rest} == {3}  # 1 + 2 throttle retries
    assert results.attrs["stopped"] is None  # throttling slows the run; it does not stop it
    assert all("throttled" in str(column(results, "details")[po]) for po in rest)


@pytest.mark.parametrize("code", [401, 403])
def test_refused_from_the_start_stops_the_run_with_everything_pending(
    fault_server: MakeServer, tmp_path: Path, code: int
) -> None:
    server = fault_server(lambda hit: Reply(code, error_body(hit, code)))

    results = run_and_check(server, tmp_path, small_plan(4), finished=False)

    assert set(outcomes(results).values()) == {"pending"}
    assert results.attrs["stopped"] is not None
    assert "token" in results.attrs["stopped"] and "rate limit" in results.attrs["stopped"]
    assert len(server.hits) <= 2  # the workers in flight when the first refusal came
    state = check_journal(results, tmp_path / "runs").meta["state"]
    assert state == "stopped"


def test_send_updates_raises_run_stopped_with_the_results_on_a_refused_token(
    fault_server: MakeServer, tmp_path: Path
) -> None:
    server = fault_server(lambda hit: Reply(403, error_body(hit, 403)))
    plan = small_plan(3)

    with pytest.raises(RunStoppedError) as info:
        send_updates(
            plan,
            client_for(server.base_url),
            max_per_minute=60_000,
            workers=1,
            progress=False,
            runs_dir=tmp_path / "runs",
            read_back=False,  # the write path's refusal (a refused read: test_send_read_back.py)
        )

    results = info.value.results
    assert TOKEN not in str(info.value)
    check_run(results, plan, ServerView.of(server), finished=False)
    check_journal(results, tmp_path / "runs")
    assert set(outcomes(results).values()) == {"pending"}


@pytest.mark.parametrize(
    "retry_after",
    ["0.05", "0", "-3", "3600", "inf", "nan", "soon", "Wed, 21 Oct 2015 07:28:00 GMT"],
)
def test_429_with_any_retry_after_is_retried_and_ends(
    fault_server: MakeServer, tmp_path: Path, retry_after: str
) -> None:
    server = fault_server(
        lambda hit: (
            Reply(429, error_body(hit, 429), (("Retry-After", retry_after),))
            if hit.attempt == 1
            else ok(hit)
        )
    )

    results = run_and_check(server, tmp_path, small_plan(2), retry_after_max_s=0.2)

    assert set(outcomes(results).values()) == {"updated"}
    assert set(column(results, "attempts").values()) == {2}


def test_429_storm_fails_after_max_attempts(fault_server: MakeServer, tmp_path: Path) -> None:
    server = fault_server(lambda hit: Reply(429, error_body(hit, 429), (("Retry-After", "0.01"),)))

    results = run_and_check(server, tmp_path, small_plan(2), max_attempts=3)

    assert set(outcomes(results).values()) == {"failed"}
    assert set(column(results, "http_status").values()) == {429}


# --------------------------------------------------------------------------- redirects


@pytest.mark.parametrize("code", [302, 307, 308])
def test_redirect_fails_the_order_and_the_target_never_gets_the_token(
    fault_server: MakeServer, tmp_path: Path, code: int
) -> None:
    target = fault_server(ok)
    server = fault_server(
        lambda hit: Reply(code, b"", (("Location", target.base_url + "/api/order/status"),))
    )

    results = run_and_check(server, tmp_path)

    assert set(outcomes(results).values()) == {"failed"}
    assert set(column(results, "attempts").values()) == {1}  # never retried either
    assert results["details"].str.contains("not followed").all()
    assert target.hits == []
    assert all(token == TOKEN for token in server.tokens_seen())


# --------------------------------------------------------------------------- bodies


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>OK</body></html>",
        b'{"status": "OK", "details": ',
        b"",
        b"[]",
        b'"OK"',
        b"null",
        b'{"status": "Error", "details": "Update status encountered an error."}',
        b'{"details": "no status at all"}',
        b"\xff\xfe\x00garbage",
    ],
    ids=[
        "html",
        "truncated-json",
        "empty",
        "json-array",
        "json-string",
        "json-null",
        "status-error",
        "no-status",
        "binary",
    ],
)
def test_200_that_is_not_the_documented_ok_is_failed_not_updated(
    fault_server: MakeServer, tmp_path: Path, body: bytes
) -> None:
    server = fault_server(lambda hit: Reply(200, body))

    results = run_and_check(server, tmp_path)

    assert set(outcomes(results).values()) == {"failed"}
    assert set(column(results, "http_status").values()) == {200}
    assert results["details"].str.len().gt(0).all()


def test_5xx_with_a_non_json_body_is_retried_and_reported_in_one_line(
    fault_server: MakeServer, tmp_path: Path
) -> None:
    page = b"<html>\n<h1>502 Bad Gateway</h1>\n<p>nginx</p>\n</html>"
    server = fault_server(lambda hit: Reply(502, page) if hit.attempt < 3 else ok(hit))

    results = run_and_check(server, tmp_path, small_plan(2), max_attempts=2)

    assert set(outcomes(results).values()) == {"failed"}
    assert not results["details"].str.contains("\n").any()
    assert results["details"].str.contains("Bad Gateway").all()


def test_deeply_nested_json_answer_is_a_failed_order_not_a_dead_worker(
    fault_server: MakeServer, tmp_path: Path
) -> None:
    deep = b'{"status": "OK", "details": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    plan = small_plan(3)
    second = plan.request(1).purchase_order
    server = fault_server(lambda hit: Reply(200, deep) if hit.purchase_order == second else ok(hit))

    results = run_journaled(plan, client_for(server.base_url), tmp_path / "runs", workers=1)

    assert outcomes(results)[second] == "failed"
    assert outcomes(results)[plan.request(2).purchase_order] == "updated"
    check_run(results, plan, ServerView.of(server))


# --------------------------------------------------------------------------- mixed


def test_mixed_faults_in_one_run_each_order_ends_once(
    fault_server: MakeServer, tmp_path: Path
) -> None:
    plan = small_plan(12)
    pos = [r.purchase_order for r in plan.requests()]
    script: dict[str, Callable[[Hit], object]] = {
        pos[0]: ok,
        pos[1]: lambda h: Reset() if h.attempt == 1 else ok(h),
        pos[2]: lambda h: Reply(500, error_body(h, 500)),
        pos[3]: lambda h: Hang(2.0) if h.attempt < 3 else ok(h),
        pos[4]: lambda h: Reply(200, b"not json"),
        pos[5]: lambda h: Cut(Reply(200, ok_body(h))),
        pos[6]: lambda h: Reply(409, {"status": "Error", "details": "Unable to find"}),
        pos[7]: lambda h: (
            Reply(429, error_body(h, 429), (("Retry-After", "0"),)) if h.attempt == 1 else ok(h)
        ),
        pos[8]: lambda h: Trickle(ok(h), chunk=32, delay=0.01),
        pos[9]: lambda h: Close(),
        pos[10]: lambda h: Reply(200, {"status": "Error", "details": "nope"}),
        pos[11]: ok,
    }
    server = fault_server(lambda h: script[h.purchase_order or ""](h), max_connections=80)

    results = run_and_check(server, tmp_path, plan, workers=4, max_attempts=3)

    got = outcomes(results)
    assert [got[po] for po in pos] == [
        "updated",
        "updated",
        "failed",
        "updated",
        "failed",
        "failed",
        "not_found",
        "updated",
        "updated",
        "failed",
        "failed",
        "updated",
    ]


# --------------------------------------------------------------------------- the sandbox


def sandbox_rows(sandbox: object, n_orders: int, status: str = "completed") -> pd.DataFrame:
    """Rows that set ``status`` on every line item of the first ``n_orders`` orders."""
    lines = sandbox.store.line_statuses()  # type: ignore[attr-defined]
    wanted = lines["purchaseOrderNumber"].drop_duplicates().head(n_orders)
    picked = lines.loc[lines["purchaseOrderNumber"].isin(wanted)]
    return pd.DataFrame(
        {
            "purchaseOrderNumber": picked["purchaseOrderNumber"].tolist(),
            "recipeSetReadableId": picked["recipeSetId"].tolist(),
            "workflowStatus": status,
        }
    )


def applied(sandbox: object, rows: pd.DataFrame) -> dict[str, bool]:
    """Per order: whether the store holds every status the rows ask for."""
    store = sandbox.store.line_statuses()  # type: ignore[attr-defined]
    merged = rows.merge(
        store,
        left_on=["purchaseOrderNumber", "recipeSetReadableId"],
        right_on=["purchaseOrderNumber", "recipeSetId"],
        suffixes=("", "_now"),
    )
    same = merged["workflowStatus"] == merged["workflowStatus_now"]
    return same.groupby(merged["purchaseOrderNumber"]).all().to_dict()


def run_on_sandbox(
    sandbox: object, rows: pd.DataFrame, tmp_path: Path, *, finished: bool = True, **options: object
) -> pd.DataFrame:
    plan = plan_updates(rows)
    client = SpectrumClient(sandbox.base_url, token=sandbox.token, timeout=TIMEOUT)  # type: ignore[attr-defined]
    results = run_journaled(plan, client, tmp_path / "runs", **options)
    check_run(results, plan, ServerView.of_sandbox(sandbox), finished=finished)
    check_journal(results, tmp_path / "runs")
    state = applied(sandbox, rows)
    for po, outcome in outcomes(results).items():
        if outcome == "updated":
            assert state[po], f"{po} reported updated but the store does not hold it"
        if outcome == "pending":
            assert not state[po], f"{po} reported pending but the store holds it"
    return results


def test_sandbox_latency_below_the_timeout_updates_everything(
    make_sandbox: Callable[..., object], tmp_path: Path
) -> None:
    sandbox = make_sandbox(latency_s=0.1)
    rows = sandbox_rows(sandbox, 4)

    results = run_on_sandbox(sandbox, rows, tmp_path, workers=4)

    assert set(outcomes(results).values()) == {"updated"}


def test_sandbox_latency_past_the_timeout_fails_although_applied(
    make_sandbox: Callable[..., object], tmp_path: Path
) -> None:
    # The sandbox applies the update, then answers late: the client cannot know it worked.
    sandbox = make_sandbox(latency_s=0.6)
    rows = sandbox_rows(sandbox, 2)

    results = run_on_sandbox(sandbox, rows, tmp_path, max_attempts=2)

    assert set(outcomes(results).values()) == {"failed"}
    assert results["details"].str.contains("timed out").all()
    assert all(applied(sandbox, rows).values())  # failed means "not confirmed", not "not done"


def test_sandbox_rate_limit_mid_run_throttles_and_still_updates_everything(
    make_sandbox: Callable[..., object], tmp_path: Path
) -> None:
    sandbox = make_sandbox(rate_limit=3, rate_window_s=0.4)
    rows = sandbox_rows(sandbox, 6)

    results = run_on_sandbox(
        sandbox, rows, tmp_path, workers=2, throttle_pause_s=0.4, max_throttle_retries=8
    )

    assert set(outcomes(results).values()) == {"updated"}
    statuses = [r["status"] for r in sandbox.requests()]  # type: ignore[attr-defined]
    assert 403 in statuses  # the limit was really hit


def test_sandbox_rate_limit_used_up_before_the_run_stops_it_with_nothing_applied(
    make_sandbox: Callable[..., object], tmp_path: Path
) -> None:
    sandbox = make_sandbox(rate_limit=1, rate_window_s=30)
    rows = sandbox_rows(sandbox, 4)
    spent = sandbox_rows(sandbox, 6).tail(1)  # someone else's request used the window up
    run_journaled(
        plan_updates(spent),
        SpectrumClient(sandbox.base_url, token=sandbox.token, timeout=TIMEOUT),  # type: ignore[attr-defined]
        tmp_path / "other-runs",
    )

    results = run_on_sandbox(sandbox, rows, tmp_path, finished=False)

    assert set(outcomes(results).values()) == {"pending"}
    assert not any(applied(sandbox, rows).values())


def test_sandbox_error_rate_outcomes_match_the_store_exactly(
    make_sandbox: Callable[..., object], tmp_path: Path
) -> None:
    sandbox = make_sandbox(error_rate=0.6, seed=7)
    rows = sandbox_rows(sandbox, 10)

    results = run_on_sandbox(sandbox, rows, tmp_path, workers=1, max_attempts=2)

    got = outcomes(results)
    assert set(got.values()) == {"updated", "failed"}  # seed 7, one worker: both, always
    # An injected 500 changes nothing, so "failed" here really means "not applied".
    assert applied(sandbox, rows) == {po: o == "updated" for po, o in got.items()}


@pytest.mark.parametrize(("failures", "expected"), [(1, "updated"), (2, "updated"), (3, "failed")])
def test_sandbox_fail_first_is_retried_up_to_max_attempts(
    make_sandbox: Callable[..., object], tmp_path: Path, failures: int, expected: str
) -> None:
    sandbox = make_sandbox()
    rows = sandbox_rows(sandbox, 2)
    victim = rows["purchaseOrderNumber"].iloc[0]
    sandbox.settings.fail_first = {victim: failures}  # type: ignore[attr-defined]

    results = run_on_sandbox(sandbox, rows, tmp_path, max_attempts=3)

    assert outcomes(results)[victim] == expected
    assert column(results, "attempts")[victim] == min(failures + 1, 3)


def test_stop_mid_run_leaves_unsent_orders_pending_and_unapplied(
    make_sandbox: Callable[..., object], tmp_path: Path
) -> None:
    sandbox = make_sandbox(latency_s=0.05)
    rows = sandbox_rows(sandbox, 12)
    stop = threading.Event()

    results = run_on_sandbox(
        sandbox, rows, tmp_path, finished=False, stop=stop, observers=[StopAfter(3, stop.set)]
    )

    got = outcomes(results)
    assert "pending" in got.values() and "updated" in got.values()
    record = check_journal(results, tmp_path / "runs")
    assert record.meta["state"] == "stopped"


# --------------------------------------------------------------------------- the CLI


def test_cli_send_against_a_flaky_server_exits_1_with_results_and_no_traceback(
    fault_server: MakeServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPECTRUM_API_TOKEN", TOKEN)
    update_rows(4).to_csv(tmp_path / "sheet.csv", index=False)
    server = fault_server(lambda h: Reply(400, error_body(h, 400)) if h.n == 1 else ok(h))

    code = main(
        [
            "send",
            "sheet.csv",
            "--base-url",
            server.base_url,
            "--yes",
            "--max-per-minute",
            "60000",
            "-o",
            "out.csv",
            "--no-read-back",  # the fault server answers status updates only
        ]
    )

    out, err = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in out + err
    assert TOKEN not in out + err
    written = pd.read_csv(tmp_path / "out.csv", dtype=str, encoding="utf-8-sig")
    assert sorted(written["outcome"]) == ["failed", "updated", "updated", "updated"]


# --------------------------------------------------------------------------- reading back

READ_ROWS = pd.DataFrame(
    {
        "purchaseOrderNumber": ["PO-R1", "PO-R1"],
        "recipeSetReadableId": ["AAAA1111", "BBBB2222"],
        "workflowStatus": ["completed", "completed"],
    }
)
ITEM_OK = {"recipeSetId": "AAAA1111", "workflowStatus": "completed"}


@pytest.mark.parametrize(
    ("action", "state_of_aaaa"),
    [
        (Reply(200, {"purchaseOrderNumber": "PO-R1", "lineItems": [ITEM_OK]}), "match"),
        (Reply(200, {"lineItems": [{"recipeSetReadableId": "AAAA1111"}]}), "unknown"),
        (Reply(200, {"lineItems": [{"recipeSetId": "AAAA1111", "workflowStatus": 7}]}), "unknown"),
        (Reply(200, {"lineItems": [{**ITEM_OK, "workflowStatus": "on-hold"}]}), "differs"),
        (Reply(404, {"status": "Error", "details": "Unable to find order"}), "missing_in_spectrum"),
        (Reply(200, {"purchaseOrderNumber": "PO-OTHER", "lineItems": [ITEM_OK]}), "error"),
        (Reply(200, {"lineItems": "none"}), "error"),
        (Reply(200, b"<html>maintenance</html>"), "error"),
        (Reply(200, b'{"lineItems": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"), "error"),
        (Reply(500, {"status": "Error", "details": "boom"}), "error"),
        (Reply(302, b"", (("Location", "http://127.0.0.1:9/elsewhere"),)), "error"),
        (Reset(), "error"),
        (Hang(3.0), "error"),
        (Cut(Reply(200, {"lineItems": [ITEM_OK] * 20})), "error"),
    ],
    ids=[
        "ok",
        "no-status",
        "status-not-text",
        "differs",
        "404",
        "other-order",
        "lineitems-not-a-list",
        "html",
        "deep-json",
        "500",
        "redirect",
        "reset",
        "hang",
        "cut",
    ],
)
@pytest.mark.parametrize("bulk", [False, True], ids=["one-by-one", "bulk"])
def test_reconcile_over_a_bad_answer_gives_every_row_one_state_and_ends(
    fault_server: MakeServer, action: object, state_of_aaaa: str, bulk: bool
) -> None:
    from spectrum_tools import reconcile

    server = fault_server(lambda hit: action)
    client = client_for(server.base_url)

    frame = reconcile(
        READ_ROWS, client, max_per_minute=60_000, max_attempts=1, bulk=bulk, progress=False
    )

    assert frame["source_row"].tolist() == [2, 3]  # one row per sheet row, in sheet order
    assert frame["state"].iloc[0] == state_of_aaaa, frame.to_dict("records")
    if state_of_aaaa == "error":
        assert (frame["state"] == "error").all() and frame["details"].str.len().gt(0).all()
    assert not frame["details"].str.contains("\n").any()
    # One GET for the order, no redirect followed; in bulk, the one search whose odd
    # answer made the read fall back to that GET comes first.
    assert [h.method for h in server.hits] == ["POST", "GET"] if bulk else ["GET"]


def test_cli_send_refused_from_the_start_exits_2_in_one_line_and_writes_pending_results(
    fault_server: MakeServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPECTRUM_API_TOKEN", TOKEN)
    update_rows(3).to_csv(tmp_path / "sheet.csv", index=False)
    server = fault_server(lambda h: Reply(403, error_body(h, 403)))

    # The write path's refusal: the fault server answers status updates only.
    argv = ["send", "sheet.csv", "--base-url", server.base_url, "--yes", "-o", "out.xlsx"]
    code = main([*argv, "--no-read-back"])

    out, err = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in out + err
    stopped = [line for line in err.splitlines() if line.startswith("stopped:")]
    assert len(stopped) == 1 and "token" in stopped[0], err
    orders = pd.read_excel(tmp_path / "out.xlsx", sheet_name="Orders", dtype=str, engine="calamine")
    assert set(orders["outcome"]) == {"pending"}
    assert not any(h.delivered_ok for h in server.hits)
