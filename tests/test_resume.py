"""Resuming runs and retrying failures, against the real sandbox; and the crash test: a send
killed with SIGKILL mid-run, then resumed, ends with every order once and nothing lost.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support.observers import StopAfter
from support.sandboxes import (
    FAST,
    NEW,
    MakeSandbox,
    client_for,
    order_numbers,
    send,
    sheet,
    status_requests,
    store_statuses,
)

from spectrum_tools import (
    ConfigError,
    Journal,
    JournalError,
    RunStoppedError,
    resume_run,
    retry_failed,
)
from spectrum_tools.planning import plan_updates
from spectrum_tools.sandbox import SandboxServer, sample_data_dir
from spectrum_tools.schema import RESULT_COLUMNS


def _stopped_run(sb: SandboxServer, runs: Path, pos: list[str], after: int) -> int:
    """Send ``pos`` one at a time and stop gracefully after ``after`` orders; the run id."""
    stop = threading.Event()
    results = send(
        sheet(sb, pos), sb, runs, workers=1, stop=stop, observers=[StopAfter(after, stop.set)]
    )
    assert (results["outcome"] == "updated").sum() == after
    assert (results["outcome"] == "pending").sum() == len(pos) - after
    return int(results.attrs["run_id"])


# -- resume ----------------------------------------------------------------------------------------


def test_resume_sends_only_the_pending_orders_and_completes_the_same_run(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    pos = order_numbers(sandbox, 6)
    run_id = _stopped_run(sandbox, runs, pos, after=2)
    with Journal(runs) as journal:
        assert journal.runs().set_index("run_id").at[run_id, "state"] == "stopped"
        assert journal.latest_unfinished() == run_id
    sandbox.clear_requests()

    results = resume_run(run_id, client_for(sandbox), runs_dir=runs, progress=False)

    assert sorted(r["purchaseOrderNumber"] for r in status_requests(sandbox)) == sorted(pos[2:])
    assert list(results.columns[: len(RESULT_COLUMNS)]) == list(RESULT_COLUMNS)
    assert results["purchaseOrderNumber"].tolist() == pos  # all orders, once, sheet order
    assert set(results["outcome"]) == {"updated"}
    assert results.attrs["run_id"] == run_id
    assert results.attrs["stopped"] is None
    with Journal(runs) as journal:
        table = journal.runs()
        record = journal.load_run(run_id)
        assert journal.latest_unfinished() is None
    assert table["run_id"].tolist() == [run_id]  # the same run, not a new one
    assert record.meta["state"] == "finished"
    assert record.meta["sessions"] == 2
    assert all(store_statuses(sandbox)[k] == NEW for k in store_statuses(sandbox) if k[0] in pos)


def test_resume_resends_an_order_left_in_flight_by_a_dead_process(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    pos = order_numbers(sandbox, 3)
    plan = plan_updates(sheet(sandbox, pos))
    client = client_for(sandbox)
    with Journal(runs) as journal:
        recorder = journal.start_run(
            plan, host=client.host, source_name="x.csv", source_hash="0" * 64, options={}
        )
        assert journal.runs().at[0, "state"] == "running"  # this process holds the run
        recorder.sending(plan.request(0), 1)  # marked in flight ... and the process "dies"
        recorder.close()
        table = journal.runs()
        record = journal.load_run(recorder.run_id)
        assert journal.latest_unfinished() == recorder.run_id
    assert table.at[0, "state"] == "unfinished"
    assert table.at[0, "in_flight"] == 1
    assert table.at[0, "pending"] == 3
    details = record.results.set_index("purchaseOrderNumber")["details"]
    assert details[pos[0]].startswith("in flight")
    assert details[pos[1]] == "not sent yet"

    # None: the most recent unfinished run. (This run recorded no pace: override the default.)
    results = resume_run(None, client, runs_dir=runs, progress=False, max_per_minute=FAST)

    assert sorted(r["purchaseOrderNumber"] for r in status_requests(sandbox)) == sorted(pos)
    assert set(results["outcome"]) == {"updated"}
    attempts = results.set_index("purchaseOrderNumber")["attempts"]
    assert attempts.to_dict() == {pos[0]: 2, pos[1]: 1, pos[2]: 1}  # the journal counts both


def test_resume_refuses_another_environment(make_sandbox: MakeSandbox, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    first, other = make_sandbox(), make_sandbox()
    run_id = _stopped_run(first, runs, order_numbers(first, 3), after=1)
    first.clear_requests()

    with pytest.raises(
        ConfigError, match=f"run {run_id} was sent to http://127.0.0.1:{first.port}, not"
    ):
        resume_run(run_id, client_for(other), runs_dir=runs, progress=False)
    with pytest.raises(ConfigError):
        retry_failed(run_id, client_for(other), runs_dir=runs, progress=False)
    assert status_requests(first) == status_requests(other) == []
    with Journal(runs) as journal:
        assert journal.latest_unfinished() == run_id  # untouched


def test_resume_refuses_a_run_another_process_is_sending(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    plan = plan_updates(sheet(sandbox, order_numbers(sandbox, 2)))
    client = client_for(sandbox)
    with Journal(runs) as journal:
        live = journal.start_run(
            plan, host=client.host, source_name="x", source_hash="", options={}
        )
        try:
            assert journal.latest_unfinished() is None  # a live run is not "unfinished"
            with pytest.raises(JournalError, match="being sent by another process"):
                resume_run(live.run_id, client, runs_dir=runs, progress=False)
            assert status_requests(sandbox) == []
        finally:
            live.close()


def test_resume_without_anything_to_resume_says_so(sandbox: SandboxServer, tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="no run journal"):
        resume_run(None, client_for(sandbox), runs_dir=tmp_path / "none", progress=False)
    send(sheet(sandbox, order_numbers(sandbox, 1)), sandbox, tmp_path / "runs")
    with pytest.raises(JournalError, match="no unfinished run"):
        resume_run(None, client_for(sandbox), runs_dir=tmp_path / "runs", progress=False)


def test_a_resume_stopped_by_a_refused_token_keeps_the_whole_run(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    pos = order_numbers(sandbox, 4)
    run_id = _stopped_run(sandbox, runs, pos, after=1)

    with pytest.raises(RunStoppedError) as caught:
        resume_run(run_id, client_for(sandbox, token="wrong"), runs_dir=runs, progress=False)

    frame = caught.value.results
    assert frame["purchaseOrderNumber"].tolist() == pos  # every order of the run, once
    assert frame["outcome"].tolist() == ["updated", "pending", "pending", "pending"]
    assert frame.attrs["run_id"] == run_id
    with Journal(runs) as journal:
        assert journal.runs().at[0, "state"] == "stopped"
        assert journal.latest_unfinished() == run_id
    results = resume_run(run_id, client_for(sandbox), runs_dir=runs, progress=False)
    assert set(results["outcome"]) == {"updated"}


# -- retry -----------------------------------------------------------------------------------------


def test_retry_failed_is_a_new_linked_run_with_only_the_failed_orders(
    make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    sb = make_sandbox()
    pos = order_numbers(sb, 5)
    sb.settings.fail_first.update({pos[1]: 9, pos[3]: 9})
    rows = sheet(sb, pos)
    rows.loc[len(rows)] = [pos[4], "NOSUCH01", NEW]  # 409: not_found
    # Retry's own mechanics: Spectrum's state is not read first (read_back=False).
    first = send(rows, sb, runs, max_attempts=1, read_back=False)
    assert first["outcome"].tolist() == ["updated", "failed", "updated", "failed", "not_found"]
    sb.settings.fail_first.clear()
    sb.clear_requests()

    retried = retry_failed(
        first.attrs["run_id"], client_for(sb), runs_dir=runs, progress=False, read_back=False
    )

    assert sorted(r["purchaseOrderNumber"] for r in status_requests(sb)) == [pos[1], pos[3]]
    assert retried["purchaseOrderNumber"].tolist() == [pos[1], pos[3]]
    assert set(retried["outcome"]) == {"updated"}
    assert retried.attrs["parent_run"] == first.attrs["run_id"]
    assert retried.attrs["run_id"] == first.attrs["run_id"] + 1
    with Journal(runs) as journal:
        table = journal.runs().set_index("run_id")
        old = journal.load_run(first.attrs["run_id"])
    assert table.at[retried.attrs["run_id"], "parent_run"] == first.attrs["run_id"]
    assert table.at[retried.attrs["run_id"], "source_name"] == "DataFrame"
    assert (old.results["outcome"] == "failed").sum() == 2  # the old run is history: unchanged

    sb.clear_requests()
    with_missing = retry_failed(
        first.attrs["run_id"],
        client_for(sb),
        include_not_found=True,
        runs_dir=runs,
        progress=False,
        read_back=False,
    )
    # The failed ones were applied since (by the retry): skipped; the not_found one goes again.
    assert with_missing.set_index("purchaseOrderNumber")["outcome"].to_dict() == {
        pos[1]: "skipped",
        pos[3]: "skipped",
        pos[4]: "not_found",
    }
    assert [r["purchaseOrderNumber"] for r in status_requests(sb)] == [pos[4]]


def test_retry_with_nothing_failed_makes_no_run(sandbox: SandboxServer, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    first = send(sheet(sandbox, order_numbers(sandbox, 2)), sandbox, runs)
    retried = retry_failed(first.attrs["run_id"], client_for(sandbox), runs_dir=runs)
    assert retried.empty
    assert retried.attrs["run_id"] is None
    with Journal(runs) as journal:
        assert len(journal.runs()) == 1


# -- the crash test ------------------------------------------------------------------------------


def _wait_for_outcomes(runs: Path, proc: subprocess.Popen[bytes], at_least: int) -> None:
    """Poll the journal (as another process would) until ``at_least`` orders have outcomes."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the send finished before it could be killed"
        if Journal.location(runs).is_file():
            with Journal(runs) as journal:
                table = journal.runs()
            if len(table) and int(table.at[0, "updated"] + table.at[0, "not_found"]) >= at_least:
                return
        time.sleep(0.05)
    pytest.fail("the journal never showed outcomes")


@pytest.mark.fault
def test_a_send_killed_mid_run_loses_nothing_and_resumes_to_one_outcome_per_order(
    make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sb = make_sandbox(latency_s=0.15)  # 46 requests, 2 workers: a few seconds of sending
    runs = tmp_path / "runs"
    source = sample_data_dir() / "status_updates.csv"
    script = Path(sys.executable).parent / "spectrum-tools"
    args = [str(script), "send", str(source), "--base-url", sb.base_url, "--yes"]
    args += ["--runs-dir", str(runs), "--max-per-minute", str(FAST), "--workers", "2"]
    args += ["--no-read-back"]  # kill -9 during the status updates themselves
    env = {**os.environ, "SPECTRUM_API_TOKEN": sb.token}
    with (tmp_path / "send.log").open("wb") as log:
        proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=log, stderr=log)
        try:
            _wait_for_outcomes(runs, proc, at_least=8)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    # What the journal says right after the kill.
    with Journal(runs) as journal:
        table = journal.runs()
        crashed = journal.load_run(1)
        assert journal.latest_unfinished() == 1
    assert table.at[0, "state"] == "unfinished"
    at_kill = crashed.results.set_index("purchaseOrderNumber")
    final = at_kill.loc[at_kill["outcome"].isin(["updated", "not_found"])]
    waiting = at_kill.loc[at_kill["outcome"] == "pending"]
    in_flight = set(waiting.index[waiting["details"].str.startswith("in flight")])
    never_sent = set(waiting.index[waiting["details"] == "not sent yet"])
    assert len(final) >= 8
    assert never_sent  # killed mid-run: some orders were never sent
    assert in_flight | never_sent == set(waiting.index)
    assert (at_kill["outcome"] == "invalid").sum() == 5

    answered_ok = {r["purchaseOrderNumber"] for r in status_requests(sb) if r["status"] == 200}
    reached = {r["purchaseOrderNumber"] for r in status_requests(sb)}
    assert set(final.index[final["outcome"] == "updated"]) <= answered_ok
    assert reached <= set(final.index) | in_flight  # marked in flight before it was sent
    assert not reached & never_sent

    mark = len(sb.requests())
    results = resume_run(None, client_for(sb), runs_dir=runs, progress=False, read_back=False)

    after = [r["purchaseOrderNumber"] for r in status_requests(sb)[mark:]]
    assert set(after) <= in_flight | never_sent  # nothing answered was sent again
    assert never_sent <= set(after)
    assert all(after.count(po) == 1 for po in never_sent)
    assert results["purchaseOrderNumber"].is_unique
    assert set(results["purchaseOrderNumber"]) == set(at_kill.index)  # none lost
    assert results["outcome"].value_counts().to_dict() == {
        "updated": 45,
        "invalid": 5,
        "not_found": 1,
    }
    done = results.set_index("purchaseOrderNumber")
    for po, row in final.iterrows():
        assert done.at[po, "outcome"] == row["outcome"]
        assert done.at[po, "attempts"] == row["attempts"]

    with Journal(runs) as journal:
        record = journal.load_run(1)
        assert journal.runs()["run_id"].tolist() == [1]  # the same run, completed
    assert record.meta["state"] == "finished"
    statuses = store_statuses(sb)
    for request in record.plan.requests():
        if done.at[request.purchase_order, "outcome"] == "updated":
            for item in request.line_items:
                key = (request.purchase_order, item["recipeSetReadableId"])
                assert statuses[key] == item["workflowStatus"], key
