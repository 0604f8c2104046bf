"""Issue 11, the runs' part: environments matched by their key, resume and retry never put
old statuses back over newer ones, one resume per run, sends that overlap a live run,
and a crash inside a worker.

Everything goes through the public API or the CLI against the real sandbox or the
raw-socket fault servers (tests/support); nothing in the core path is mocked. A few tests
wrap a public method to *time* an interleaving two processes could produce (a resume
paused between reading a run and locking it); they never change what it does.
"""

from __future__ import annotations

import contextlib
import io
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from support.faultservers import fault_servers, ok, update_rows
from support.observers import StopAfter
from support.sandboxes import (
    FAST,
    client_for,
    order_numbers,
    send,
    sheet,
    status_requests,
    store_statuses,
)

from spectrum_tools import Journal, JournalError, SpectrumClient, resume_run, retry_failed
from spectrum_tools.cli import main
from spectrum_tools.journal.locks import RunLock
from spectrum_tools.planning import plan_updates
from spectrum_tools.results import OrderResult, RunObserver
from spectrum_tools.runs import send_updates, skip_applied
from spectrum_tools.sandbox import SandboxServer

TOKEN = "gateway-test-token"


def _cli(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue() + err.getvalue()


def _stopped_run(sb: SandboxServer, runs: Path, rows: pd.DataFrame, after: int) -> int:
    """Send ``rows`` one order at a time, stop gracefully after ``after`` orders."""
    stop = threading.Event()
    results = send(rows, sb, runs, workers=1, stop=stop, observers=[StopAfter(after, stop.set)])
    assert (results["outcome"] == "pending").sum() > 0
    return int(results.attrs["run_id"])


def _multi_line_orders(sb: SandboxServer, n: int) -> list[str]:
    """``n`` orders of the sandbox with at least two line items each."""
    frame = sb.store.line_statuses()
    sizes = frame.groupby("purchaseOrderNumber", sort=False).size()
    return [str(po) for po in sizes[sizes >= 2].index[:n]]


# -- #2 + #9: the environment key -------------------------------------------------------------


@pytest.mark.fault
def test_two_environments_behind_one_gateway_do_not_skip_each_others_orders(
    tmp_path: Path,
) -> None:
    runs = tmp_path / "runs"
    rows = update_rows(3)
    with fault_servers(ok) as (gateway,):
        staging = SpectrumClient(f"{gateway.base_url}/staging", token=TOKEN)
        prod = SpectrumClient(f"{gateway.base_url}/prod/", token=TOKEN)
        assert staging.host == prod.host  # one gateway, one host
        first = send_updates(rows, staging, runs_dir=runs, progress=False, max_per_minute=FAST)
        second = send_updates(rows, prod, runs_dir=runs, progress=False, max_per_minute=FAST)
        paths = [h.path for h in gateway.hits]

    assert set(first["outcome"]) == {"updated"}
    # Before: every order "skipped" ("already applied by run 1") while prod had nothing.
    assert set(second["outcome"]) == {"updated"}, second[["outcome", "details"]]
    assert paths.count("/prod/api/order/status") == 3
    assert paths.count("/staging/api/order/status") == 3
    with Journal(runs) as journal:
        table = journal.runs()
    assert table["environment"].tolist() == [staging.environment_key, prod.environment_key]
    assert table["host"].nunique() == 1  # kept for display


@pytest.mark.badinput
def test_one_environment_written_two_ways_is_matched_everywhere(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    pos = order_numbers(sandbox, 4)
    run_id = _stopped_run(sandbox, runs, sheet(sandbox, pos), after=1)
    other_spelling = SpectrumClient(
        sandbox.base_url.replace("http://127.0.0.1", "HTTP://127.0.0.1") + "/",
        token=sandbox.token,
    )
    plan = plan_updates(sheet(sandbox, pos))
    assert skip_applied(plan, other_spelling.environment_key, runs_dir=runs).request_count == 3

    results = resume_run(None, other_spelling, runs_dir=runs, progress=False)

    assert results.attrs["run_id"] == run_id
    assert set(results["outcome"]) == {"updated"}
    assert results.attrs["picked"].startswith(f"run {run_id}, started ")


@pytest.mark.badinput
def test_a_version_1_journal_is_migrated_with_keys_derived_from_its_hosts(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    pos = order_numbers(sandbox, 2)
    send(sheet(sandbox, pos), sandbox, runs)
    # Make it what spectrum-tools 1 wrote: no environment, no left_out, user_version 1.
    with sqlite3.connect(runs / "journal.sqlite3") as db:
        db.execute("DROP INDEX runs_by_environment")
        db.execute("ALTER TABLE runs DROP COLUMN environment")
        db.execute("ALTER TABLE orders DROP COLUMN left_out")
        db.execute(
            "INSERT INTO runs (started_at, state, host, source_name, source_hash,"
            " options, tool_version) VALUES ('2024-01-01T00:00:00+00:00', 'finished',"
            " 'Spectrum.Example.com', 'x', 'y', '{}', '0.9')"
        )
        db.execute("PRAGMA user_version = 1")

    with Journal(runs) as journal:
        table = journal.runs().set_index("run_id")
        version = journal.read("PRAGMA user_version")[0][0]
    assert version == 2
    assert table.at[1, "environment"] == f"http://127.0.0.1:{sandbox.port}"  # loopback: http
    assert table.at[2, "environment"] == "https://spectrum.example.com"  # else https, no path
    again = send(sheet(sandbox, pos), sandbox, runs)
    assert set(again["outcome"]) == {"skipped"}  # the legacy run still counts here


# -- #1: resume and retry never put old statuses back --------------------------------------------


@pytest.mark.fault
def test_resume_does_not_send_line_items_a_later_run_has_set(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    pos = _multi_line_orders(sandbox, 4)
    run_1 = _stopped_run(sandbox, runs, sheet(sandbox, pos, "in-progress"), after=1)
    newer = sheet(sandbox, pos[1:3], "completed")
    newer = newer.loc[
        (newer["purchaseOrderNumber"] == pos[1]) | ~newer.duplicated("purchaseOrderNumber")
    ]  # run 2: all of pos[1], one line item of pos[2]
    run_2 = send(newer, sandbox, runs).attrs["run_id"]
    kept_line = newer.loc[newer["purchaseOrderNumber"] == pos[2], "recipeSetReadableId"].iat[0]
    sandbox.clear_requests()

    results = resume_run(run_1, client_for(sandbox), runs_dir=runs, progress=False)

    by_po = results.set_index("purchaseOrderNumber")
    assert by_po.at[pos[1], "outcome"] == "skipped"
    assert f"superseded by run {run_2}" in by_po.at[pos[1], "details"]
    assert by_po.at[pos[2], "outcome"] == "updated"
    assert f"Superseded by run {run_2}, not sent again: {kept_line}" in by_po.at[pos[2], "details"]
    assert by_po.at[pos[3], "outcome"] == "updated"
    sent = {r["purchaseOrderNumber"] for r in status_requests(sandbox)}
    assert sent == {pos[2], pos[3]}  # pos[1] left with nothing to send: not sent
    statuses = store_statuses(sandbox)
    assert all(statuses[(pos[1], li)] == "completed" for (po, li) in statuses if po == pos[1])
    assert statuses[(pos[2], kept_line)] == "completed"  # run 2's status stays
    # The journal does not count the left-out line item as set by run 1 either.
    with Journal(runs) as journal:
        applied = journal.applied(client_for(sandbox).environment_key)
    row = applied.loc[applied["recipeSetReadableId"] == kept_line]
    assert row["workflowStatus"].tolist() == ["completed"]
    assert row["run_id"].tolist() == [run_2]


@pytest.mark.fault
def test_resume_force_and_cli_resume_name_the_run_and_send_superseded_items(
    sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPECTRUM_API_TOKEN", sandbox.token)
    runs = tmp_path / "runs"
    pos = order_numbers(sandbox, 3)
    run_1 = _stopped_run(sandbox, runs, sheet(sandbox, pos, "in-progress"), after=1)
    send(sheet(sandbox, pos[1:2], "completed"), sandbox, runs)
    sandbox.clear_requests()

    # --yes: resume asks before sending, like send (not on a terminal here).
    code, out = _cli("resume", "--base-url", sandbox.base_url, "--runs-dir", str(runs), "--yes")

    assert code == 0, out
    assert "Picked the latest unfinished run on http://127.0.0.1:" in out
    assert f": run {run_1}, started " in out and " ago " in out
    assert out.index("Picked") < out.index("Outcomes:")
    assert [r["purchaseOrderNumber"] for r in status_requests(sandbox)] == [pos[2]]
    assert "skipped" in out

    # --force puts it back, on purpose.
    run_3 = _stopped_run(sandbox, runs, sheet(sandbox, pos, "on-hold"), after=1)
    send(sheet(sandbox, pos[1:2], "not-started"), sandbox, runs)
    sandbox.clear_requests()
    code, out = _cli(
        "resume",
        str(run_3),
        "--force",
        "--base-url",
        sandbox.base_url,
        "--runs-dir",
        str(runs),
        "--yes",
    )
    assert code == 0, out
    assert sorted(r["purchaseOrderNumber"] for r in status_requests(sandbox)) == sorted(pos[1:])


@pytest.mark.fault
def test_retry_does_not_send_line_items_a_later_run_set_or_left_in_flight(
    sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPECTRUM_API_TOKEN", sandbox.token)
    runs = tmp_path / "runs"
    pos = order_numbers(sandbox, 3)
    sandbox.settings.fail_first.update({pos[0]: 9, pos[1]: 9, pos[2]: 9})
    first = send(sheet(sandbox, pos, "in-progress"), sandbox, runs, max_attempts=1)
    assert set(first["outcome"]) == {"failed"}
    sandbox.settings.fail_first.clear()
    send(sheet(sandbox, pos[:1], "completed"), sandbox, runs)  # run 2 sets pos[0]
    # Run 3 died with pos[1] in flight: it may have set it.
    client = client_for(sandbox)
    with Journal(runs) as journal:
        plan = plan_updates(sheet(sandbox, pos[1:2], "on-hold"))
        recorder = journal.start_run(
            plan,
            host=client.host,
            environment=client.environment_key,
            source_name="x.csv",
            source_hash="0" * 64,
            options={},
        )
        recorder.sending(plan.request(0), 1)
        recorder.close()
    sandbox.clear_requests()

    retried = retry_failed(first.attrs["run_id"], client, runs_dir=runs, progress=False)

    by_po = retried.set_index("purchaseOrderNumber")
    assert by_po.at[pos[0], "outcome"] == "skipped"
    assert "superseded by run 2" in by_po.at[pos[0], "details"]
    assert by_po.at[pos[1], "outcome"] == "skipped"
    assert "superseded by run 3" in by_po.at[pos[1], "details"]
    assert by_po.at[pos[2], "outcome"] == "updated"
    assert [r["purchaseOrderNumber"] for r in status_requests(sandbox)] == [pos[2]]

    code, out = _cli(
        "retry",
        str(first.attrs["run_id"]),
        "--force",
        "--yes",
        "--base-url",
        sandbox.base_url,
        "--runs-dir",
        str(runs),
    )
    assert code == 0, out
    assert sorted({r["purchaseOrderNumber"] for r in status_requests(sandbox)}) == sorted(pos)


# -- suspected: one resume per run, the lock probe, overlapping sends, a crashing worker ------


@pytest.mark.fault
def test_two_resumes_of_one_run_never_send_an_order_twice(
    sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = tmp_path / "runs"
    pos = order_numbers(sandbox, 5)
    run_id = _stopped_run(sandbox, runs, sheet(sandbox, pos), after=1)
    sandbox.clear_requests()
    second_waiting, first_done = threading.Event(), threading.Event()
    real = Journal.continue_run

    def paced(self: Journal, run: int, **kwargs: Any) -> Any:
        # The second resume reaches the lock while the first one runs from start to end:
        # what two processes started at the same moment can do.
        if threading.current_thread().name == "second-resume":
            second_waiting.set()
            assert first_done.wait(30)
        return real(self, run, **kwargs)

    monkeypatch.setattr(Journal, "continue_run", paced)
    outcome: dict[str, Any] = {}

    def second() -> None:
        try:
            outcome["results"] = resume_run(
                run_id, client_for(sandbox), runs_dir=runs, progress=False
            )
        except Exception as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=second, name="second-resume")
    thread.start()
    assert second_waiting.wait(30)
    resume_run(run_id, client_for(sandbox), runs_dir=runs, progress=False)
    first_done.set()
    thread.join(30)

    counts = pd.Series([r["purchaseOrderNumber"] for r in status_requests(sandbox)]).value_counts()
    assert counts.to_dict() == dict.fromkeys(pos[1:], 1)  # before: every pending order twice
    assert "error" not in outcome
    assert set(outcome["results"]["outcome"]) == {"updated"}


@pytest.mark.fault
def test_listing_runs_at_the_same_moment_does_not_make_a_resume_refuse(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    pos = order_numbers(sandbox, 8)
    run_id = _stopped_run(sandbox, runs, sheet(sandbox, pos), after=1)
    with Journal(runs) as journal:
        lock_path = journal.lock_path(run_id)
    done = threading.Event()

    def probing() -> None:  # what `spectrum-tools runs` in other terminals does, many times
        while not done.is_set():
            RunLock.held(lock_path)

    probes = [threading.Thread(target=probing) for _ in range(2)]
    for probe in probes:
        probe.start()
    try:
        with Journal(runs) as journal:
            for _ in range(40):  # before: refused ("being sent by another process") at once
                journal.continue_run(run_id).close()
    finally:
        done.set()
        for probe in probes:
            probe.join()
    results = resume_run(run_id, client_for(sandbox), runs_dir=runs, progress=False)
    assert set(results["outcome"]) == {"updated"}


class _SendAgain(RunObserver):
    """When the first order of a run is out, sends the same sheet again (another terminal)."""

    def __init__(self, again: Any) -> None:
        self.again = again
        self.outcome: dict[str, Any] = {}
        self._once = threading.Lock()

    def sending(self, request: Any, attempt: int) -> None:
        if not self._once.acquire(blocking=False):
            return
        try:
            self.outcome["results"] = self.again()
        except Exception as exc:
            self.outcome["error"] = exc


@pytest.mark.fault
def test_a_second_send_of_a_sheet_being_sent_refuses_and_sends_nothing(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    rows = sheet(sandbox, order_numbers(sandbox, 4))
    again = _SendAgain(lambda: send(rows, sandbox, runs))

    first = send(rows, sandbox, runs, workers=1, observers=[again])

    assert set(first["outcome"]) == {"updated"}
    error = again.outcome.get("error")
    assert isinstance(error, JournalError), again.outcome  # before: sent every order again
    assert f"run {first.attrs['run_id']} " in str(error) and "right now" in str(error)
    counts = pd.Series([r["purchaseOrderNumber"] for r in status_requests(sandbox)]).value_counts()
    assert set(counts) == {1}
    with Journal(runs) as journal:
        assert len(journal.runs()) == 1  # the refused send recorded nothing
    assert set(send(rows, sandbox, runs)["outcome"]) == {"skipped"}  # afterwards: skipped


class _Crash(RunObserver):
    """A bug in a hook: raises when the ``n``-th order has its outcome."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.seen = 0
        self._lock = threading.Lock()

    def finished(self, result: OrderResult) -> None:
        with self._lock:
            self.seen += 1
            if self.seen == self.n:
                raise RuntimeError("a bug in a hook")


@pytest.mark.fault
def test_a_crash_in_a_worker_ends_the_run_with_one_outcome_per_order(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    pos = order_numbers(sandbox, 5)

    with pytest.raises(RuntimeError, match="a bug in a hook"):
        send(sheet(sandbox, pos), sandbox, runs, workers=1, observers=[_Crash(2)])

    with Journal(runs) as journal:
        table = journal.runs()
        record = journal.load_run(1)
        states = journal.read("SELECT state FROM orders WHERE run_id = 1")
    assert table.at[0, "state"] == "stopped"  # before: "unfinished", as if the process died
    assert "a bug in a hook" in str(record.meta["stopped_reason"])
    assert record.results["purchaseOrderNumber"].is_unique
    assert sorted(record.results["purchaseOrderNumber"]) == sorted(pos)
    assert (record.results["outcome"] == "updated").sum() == 2
    assert {s for (s,) in states} == {"done", "pending"}
    resumed = resume_run(1, client_for(sandbox), runs_dir=runs, progress=False)
    assert set(resumed["outcome"]) == {"updated"}
    assert len(status_requests(sandbox)) == len(pos)
