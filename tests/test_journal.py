"""The run journal: what a run records, that the token never reaches disk, in-flight marking,
skipping what earlier runs applied (and ``force``), and the journal's own views.

Every run goes to the real sandbox over HTTP; the journal is read back with a separate
:class:`Journal` (its own SQLite connection), as another process would see it.
"""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import sqlite3
import threading
from pathlib import Path

import pandas as pd
import pytest
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

from spectrum_tools import Journal, JournalError, RunRecord, read_updates, validate_updates
from spectrum_tools.engine import SendOptions, run_plan
from spectrum_tools.planning import Request, plan_updates
from spectrum_tools.results import OrderResult, RunObserver, RunStop, line_results, results_frame
from spectrum_tools.sandbox import SandboxServer, sample_data_dir
from spectrum_tools.schema import RESULT_COLUMNS, Outcome, StopReason

QUICK = SendOptions(max_per_minute=FAST, backoff_s=0.01, backoff_max_s=0.05, max_attempts=3)


def _record(runs_dir: Path, run_id: int) -> RunRecord:
    with Journal(runs_dir) as journal:
        return journal.load_run(run_id)


# -- what a run records ------------------------------------------------------------------------


def test_journal_records_every_attempt_with_its_code_and_each_order_outcome(
    make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    flaky, ok, missing = "HA-US-DEV00011101", "HA-US-DEV00011104", "HA-US-DEV00011107"
    sb = make_sandbox(fail_first={flaky: 1})
    rows = sheet(sb, [flaky, ok, missing])
    rows.loc[len(rows)] = [missing, "NOSUCH01", NEW]  # Spectrum answers 409 for this order
    plan = plan_updates(rows)
    client = client_for(sb)

    with Journal(tmp_path / "runs") as journal:
        recorder = journal.start_run(
            plan, host=client.host, source_name="fix.xlsx", source_hash="ab" * 32, options=QUICK
        )
        results, stopped = run_plan(plan, client, QUICK, observers=[recorder])
    sent = results_frame(plan, results)

    record = _record(tmp_path / "runs", recorder.run_id)
    assert stopped is None
    assert list(record.results.columns[: len(RESULT_COLUMNS)]) == list(RESULT_COLUMNS)
    pd.testing.assert_frame_equal(
        record.results.drop(columns="elapsed_s"), sent.drop(columns="elapsed_s")
    )
    outcome = record.results.set_index("purchaseOrderNumber")["outcome"]
    assert outcome.to_dict() == {flaky: "updated", ok: "updated", missing: "not_found"}
    codes = record.attempts.groupby("purchaseOrderNumber")["http_status"].apply(list).to_dict()
    assert codes == {flaky: [500, 200], ok: [200], missing: [409]}
    assert record.attempts["sent_at"].notna().all()
    assert record.attempts["answered_at"].notna().all()
    assert record.meta["host"] == client.host == f"127.0.0.1:{sb.port}"
    assert record.meta["source_name"] == "fix.xlsx"
    assert record.meta["state"] == "finished"
    assert record.meta["finished_at"] is not None
    assert record.meta["options"]["max_attempts"] == 3
    assert record.plan.preview()["payload"].tolist() == plan.preview()["payload"].tolist()


@pytest.mark.parametrize("read_back", [True, False], ids=["read-back", "no-read-back"])
def test_send_updates_journals_the_run_and_says_where(
    sandbox: SandboxServer, tmp_path: Path, read_back: bool
) -> None:
    source = sample_data_dir() / "status_updates.xlsx"
    results = send(source, sandbox, tmp_path / "runs", read_back=read_back)

    assert results.attrs["run_id"] == 1
    assert results.attrs["journal"] == str(tmp_path / "runs" / "journal.sqlite3")
    record = _record(tmp_path / "runs", 1)
    assert record.meta["source_name"] == "status_updates.xlsx"
    assert record.meta["source_hash"] == hashlib.sha256(source.read_bytes()).hexdigest()
    pd.testing.assert_frame_equal(
        record.results.drop(columns="elapsed_s"), results.drop(columns="elapsed_s")
    )
    # The per-line view and the invalid rows come back from the journal alone.
    plan = plan_updates(validate_updates(read_updates(source)))
    expected_lines = line_results(results, plan)
    pd.testing.assert_frame_equal(
        record.lines[["purchaseOrderNumber", "recipeSetReadableId", "outcome", "details"]],
        expected_lines[["purchaseOrderNumber", "recipeSetReadableId", "outcome", "details"]],
        check_dtype=False,
    )
    assert list(record.lines["source_row"]) == list(expected_lines["source_row"])
    assert len(record.invalid_rows) == int((~plan.rows["valid"]).sum()) > 0
    assert not record.invalid_rows["valid"].any()
    assert record.invalid_rows["problem"].str.len().gt(0).all()


def test_uploads_and_frames_are_named_and_hashed(sandbox: SandboxServer, tmp_path: Path) -> None:
    data = (sample_data_dir() / "status_updates.csv").read_bytes()
    upload = io.BytesIO(data)
    upload.name = "partner upload.csv"
    first = send(upload, sandbox, tmp_path / "runs", force=True)
    frame = sheet(sandbox, order_numbers(sandbox, 2))
    second = send(frame, sandbox, tmp_path / "runs", force=True)

    one = _record(tmp_path / "runs", first.attrs["run_id"]).meta
    two = _record(tmp_path / "runs", second.attrs["run_id"]).meta
    assert (one["source_name"], one["source_hash"]) == (
        "partner upload.csv",
        hashlib.sha256(data).hexdigest(),
    )
    assert set(first["outcome"]) >= {"updated"}  # the upload was still read after hashing
    assert two["source_name"] == "DataFrame"
    assert len(two["source_hash"]) == 64


def test_the_token_is_in_no_file_of_the_runs_folder(
    make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    token = "tok-" + secrets.token_hex(16)
    pos = ["HA-US-DEV00011101", "HA-US-DEV00011104", "HA-US-DEV00011105"]
    sb = make_sandbox(token=token, fail_first={pos[2]: 9})
    rows = sheet(sb, pos)
    rows.loc[len(rows)] = [pos[1], "NOSUCH01", NEW]
    results = send(rows, sb, tmp_path / "runs", max_attempts=1)
    assert set(results["outcome"]) == {"updated", "not_found", "failed"}

    with Journal(tmp_path / "runs") as journal:  # read it back while a connection is open too
        journal.runs()
        files = [p for p in (tmp_path / "runs").rglob("*") if p.is_file()]
        assert any(p.name == "journal.sqlite3" for p in files)
        for path in files:
            assert token.encode() not in path.read_bytes(), path
    assert token not in repr(results.attrs)


# -- in flight before the request ----------------------------------------------------------------


class _JournalProbe(RunObserver):
    """At each ``sending`` hook, reads the journal through its own connection."""

    def __init__(self, runs_dir: Path, sb: SandboxServer) -> None:
        self.runs_dir = runs_dir
        self.sb = sb
        self.seen: list[tuple[str, str, str, int]] = []
        self.lock = threading.Lock()

    def sending(self, request: Request, attempt: int) -> None:
        po = request.purchase_order
        with Journal(self.runs_dir) as journal:
            run_id = int(journal.runs()["run_id"].max())
            results = journal.load_run(run_id).results.set_index("purchaseOrderNumber")
        arrived = len(status_requests(self.sb, po))
        with self.lock:
            self.seen.append((po, results.at[po, "outcome"], results.at[po, "details"], arrived))


def test_an_order_is_committed_as_in_flight_before_its_request_goes_out(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    pos = order_numbers(sandbox, 5)
    probe = _JournalProbe(tmp_path / "runs", sandbox)
    results = send(sheet(sandbox, pos), sandbox, tmp_path / "runs", observers=[probe], workers=2)

    assert set(results["outcome"]) == {"updated"}
    assert sorted(po for po, *_ in probe.seen) == sorted(pos)
    for po, outcome, details, arrived in probe.seen:
        assert outcome == "pending", po
        assert details.startswith("in flight"), (po, details)
        assert arrived == 0, po  # the journal knew before Spectrum did


# -- skipping what is already applied -------------------------------------------------------------


def test_a_reuploaded_sheet_sends_only_the_changed_orders_and_force_sends_all(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    pos = order_numbers(sandbox, 6)
    rows = sheet(sandbox, pos)
    # The journal's skip rule on its own: Spectrum's state is not read (read_back=False).
    first = send(rows, sandbox, runs, read_back=False)
    assert set(first["outcome"]) == {"updated"}

    # Three rows fixed, in three different orders: three requests, not six.
    changed = rows.copy()
    fixed = [changed.index[changed["purchaseOrderNumber"] == po][0] for po in pos[:3]]
    changed.loc[fixed, "workflowStatus"] = "completed"
    sandbox.clear_requests()
    second = send(changed, sandbox, runs, read_back=False)

    sent = status_requests(sandbox)
    assert sorted(r["purchaseOrderNumber"] for r in sent) == sorted(pos[:3])
    by_po = second.set_index("purchaseOrderNumber")
    assert by_po.loc[pos[:3], "outcome"].tolist() == ["updated"] * 3
    assert by_po.loc[pos[3:], "outcome"].tolist() == ["skipped"] * 3
    assert set(by_po.loc[pos[3:], "details"]) == {"already applied by run 1"}
    # An order with one new line item goes whole (a status PUT is idempotent).
    whole = rows.groupby("purchaseOrderNumber").size()
    assert {r["purchaseOrderNumber"]: r["lineItemCount"] for r in sent} == {
        po: int(whole[po]) for po in pos[:3]
    }
    assert store_statuses(sandbox)[(pos[0], rows.at[fixed[0], "recipeSetReadableId"])] == (
        "completed"
    )

    sandbox.clear_requests()
    again = send(changed, sandbox, runs, read_back=False)
    assert status_requests(sandbox) == []
    assert set(again["outcome"]) == {"skipped"}
    details = again.set_index("purchaseOrderNumber")["details"]
    assert (details[pos[0]], details[pos[3]]) == (
        "already applied by run 2",
        "already applied by run 1",
    )

    # One line item changed again on its own: the order's lines now come from two runs.
    alone = changed.loc[[fixed[0]]].assign(workflowStatus="approved")
    later = send(alone, sandbox, runs, read_back=False).attrs["run_id"]
    both = changed.copy()
    both.loc[fixed[0], "workflowStatus"] = "approved"
    details = send(both, sandbox, runs, read_back=False).set_index("purchaseOrderNumber")["details"]
    assert details[pos[0]] == f"already applied by runs 2, {later}"
    sandbox.clear_requests()

    forced = send(both, sandbox, runs, force=True, read_back=False)
    assert len(status_requests(sandbox)) == 6
    assert set(forced["outcome"]) == {"updated"}


def test_skipping_is_per_environment(make_sandbox: MakeSandbox, tmp_path: Path) -> None:
    first, other = make_sandbox(), make_sandbox()
    pos = order_numbers(first, 3)
    send(sheet(first, pos), first, tmp_path / "runs")
    results = send(sheet(other, pos), other, tmp_path / "runs")
    assert set(results["outcome"]) == {"updated"}
    assert len(status_requests(other)) == 3


def test_a_later_failed_attempt_makes_the_status_unknown_so_nothing_is_skipped(
    make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    sb = make_sandbox()
    po = order_numbers(sb, 1)[0]
    # The journal's skip rule on its own: Spectrum's state is not read (read_back=False).
    send(sheet(sb, [po], NEW), sb, runs, read_back=False)
    sb.settings.fail_first[po] = 5  # a 500 may or may not have been applied: unknown
    failed = send(sheet(sb, [po], "completed"), sb, runs, max_attempts=1, read_back=False)
    assert failed["outcome"].tolist() == ["failed"]

    with Journal(runs) as journal:
        assert po not in set(journal.applied(client_for(sb).environment_key)["purchaseOrderNumber"])
    sb.settings.fail_first.clear()
    sb.clear_requests()
    again = send(sheet(sb, [po], NEW), sb, runs, read_back=False)
    assert again["outcome"].tolist() == ["updated"]
    assert len(status_requests(sb)) == 1


def test_a_partial_order_counts_as_applied_except_its_missing_ids(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    po = order_numbers(sandbox, 1)[0]
    rows = sheet(sandbox, [po])
    rows.loc[len(rows)] = [po, "NOSUCH01", NEW]
    # The journal's skip rule on its own: Spectrum's state is not read (read_back=False).
    first = send(rows, sandbox, runs, retry_without_missing=True, read_back=False)
    assert first["outcome"].tolist() == ["partial"]

    with Journal(runs) as journal:
        applied = journal.applied(client_for(sandbox).environment_key)
    assert set(applied["recipeSetReadableId"]) == set(rows["recipeSetReadableId"]) - {"NOSUCH01"}
    assert set(applied["run_id"]) == {1}
    # The missing id was never applied, so the same sheet is sent again, not skipped.
    again = send(rows, sandbox, runs, retry_without_missing=True, read_back=False)
    assert again["outcome"].tolist() == ["partial"]
    only_found = send(rows.iloc[:-1], sandbox, runs, read_back=False)
    assert only_found["outcome"].tolist() == ["skipped"]


def test_a_dry_run_shows_skips_and_is_not_recorded(sandbox: SandboxServer, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    pos = order_numbers(sandbox, 4)
    send(sheet(sandbox, pos[:2]), sandbox, runs)
    sandbox.clear_requests()
    dry = send(sheet(sandbox, pos), sandbox, runs, dry_run=True)

    assert dry.set_index("purchaseOrderNumber")["outcome"].to_dict() == {
        pos[0]: "skipped",
        pos[1]: "skipped",
        pos[2]: "dry_run",
        pos[3]: "dry_run",
    }
    assert dry.attrs["run_id"] is None
    assert status_requests(sandbox) == []
    with Journal(runs) as journal:
        assert journal.runs()["run_id"].tolist() == [1]


def test_journal_false_records_nothing(sandbox: SandboxServer, tmp_path: Path) -> None:
    results = send(
        sheet(sandbox, order_numbers(sandbox, 1)), sandbox, tmp_path / "r", journal=False
    )
    assert results.attrs["run_id"] is None
    assert not (tmp_path / "r").exists()


# -- the journal's views ---------------------------------------------------------------------------


def test_runs_lists_every_run_with_counts_by_outcome(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    # The journal's counts on the write path: a request for every order sent, the not_found
    # one included (read-back would decide it from the read, without a request).
    send(sample_data_dir() / "status_updates.csv", sandbox, runs, read_back=False)
    send(sample_data_dir() / "status_updates.csv", sandbox, runs, read_back=False)

    with Journal(runs) as journal:
        table = journal.runs()
        assert journal.latest_unfinished() is None
    assert list(table.columns[:8]) == [
        "run_id",
        "parent_run",
        "started_at",
        "finished_at",
        "state",
        "host",
        "source_name",
        "requests",
    ]
    first, second = (table.iloc[i].to_dict() for i in range(2))
    assert first["run_id"] == 1 and pd.isna(first["parent_run"])
    assert first["state"] == second["state"] == "finished"
    assert first["source_name"] == "status_updates.csv"
    assert (first["requests"], first["updated"], first["not_found"], first["invalid"]) == (
        46,
        45,
        1,
        5,
    )
    # The second run skipped all it had applied; the not_found order went again.
    assert (second["requests"], second["skipped"], second["not_found"]) == (1, 45, 1)


def test_journal_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="no run journal at"):
        Journal.existing(tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()  # looking does not create it
    with Journal(tmp_path / "runs") as journal, pytest.raises(JournalError, match="no run 7"):
        journal.load_run(7)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "journal.sqlite3").write_bytes(b"not a database, just text" * 100)
    with pytest.raises(JournalError, match="not a usable run journal"):
        Journal(tmp_path / "bad")


def test_default_runs_folder_is_resolved_when_used(
    sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # conftest points the default at this test's tmp folder, as a fresh working directory would.
    results = send(sheet(sandbox, order_numbers(sandbox, 1)), sandbox, None)  # type: ignore[arg-type]
    assert Path(results.attrs["journal"]) == tmp_path / "spectrum-runs" / "journal.sqlite3"
    monkeypatch.setattr("spectrum_tools.journal.schema.DEFAULT_RUNS_DIR", Path("spectrum-runs"))
    monkeypatch.chdir(tmp_path / "spectrum-runs")
    assert Journal().path.resolve() == (
        tmp_path / "spectrum-runs" / "spectrum-runs" / "journal.sqlite3"
    )


def test_an_order_seen_leaving_stays_in_flight_when_the_engine_later_calls_it_unsent(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    # After Ctrl-C the engine may report an order whose request is out as "pending, not
    # sent"; the journal saw it leave and must keep saying so.
    pos = order_numbers(sandbox, 2)
    plan = plan_updates(sheet(sandbox, pos))
    client = client_for(sandbox)
    with Journal(tmp_path / "runs") as journal:
        recorder = journal.start_run(
            plan, host=client.host, source_name="x", source_hash="", options=QUICK
        )
        recorder.sending(plan.request(0), 1)
        for index in range(2):
            request = plan.request(index)
            recorder.finished(
                OrderResult(
                    purchase_order=request.purchase_order,
                    outcome=Outcome.PENDING,
                    details="not sent: the run stopped before this order",
                    line_count=request.line_count,
                    source_rows=request.source_rows,
                )
            )
        recorder.run_finished([], RunStop(StopReason.INTERRUPTED, "interrupted"))
        record = journal.load_run(recorder.run_id)
        table = journal.runs()
    details = record.results.set_index("purchaseOrderNumber")["details"]
    assert details[pos[0]].startswith("in flight when the run ended")
    assert details[pos[1]] == "not sent: the run stopped before this order"
    assert (table.at[0, "state"], table.at[0, "in_flight"], table.at[0, "pending"]) == (
        "interrupted",
        1,
        2,
    )


@pytest.mark.badinput
@pytest.mark.parametrize(
    "attrs",
    ['"not a mapping"', '{"corrections": "xyz", "headers": [1]}', '{"corrections": [1, [2]]}'],
    ids=["not-a-mapping", "wrong-types", "short-records"],
)
def test_a_tampered_attrs_record_in_the_journal_is_ignored_not_a_traceback(
    sandbox: SandboxServer, tmp_path: Path, attrs: str
) -> None:
    source = sample_data_dir() / "status_updates.xlsx"
    send(source, sandbox, tmp_path / "runs", read_back=False)
    with sqlite3.connect(tmp_path / "runs" / "journal.sqlite3") as db:
        (text,) = db.execute("SELECT rows FROM run_rows WHERE run_id = 1").fetchone()
        assert '"attrs"' in text  # the analyst's headers were kept with the run
        stored = json.loads(text)
        stored["attrs"] = json.loads(attrs)
        db.execute("UPDATE run_rows SET rows = ? WHERE run_id = 1", (json.dumps(stored),))
    db.close()

    record = _record(tmp_path / "runs", 1)

    assert len(record.results) == 51  # the run itself is intact
    assert record.lines.attrs.get("corrections", ()) == ()
    assert "headers" not in record.lines.attrs
