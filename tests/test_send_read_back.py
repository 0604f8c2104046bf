"""Send reads back first (issue 12, "See before you write"), end to end against the sandbox.

What an analyst notices: a dry run reads the sheet's orders in a few requests and sends no
status; a re-upload sends only what Spectrum does not hold yet and reports the rest
``unchanged``; only line items that change go in the status updates; an order Spectrum
would refuse is ``not_found`` without a request (or ``partial`` with
``retry_without_missing``); the journal keeps what each line item held before the run; a
refused or unanswered read stops the send before any status goes out; and when Spectrum's
answers carry no statuses, everything is sent, nothing is called ``unchanged``, and a note
says the statuses are unknown.

Everything goes through the real sandbox over HTTP; requests are counted in its request
log by endpoint: ``orders-search`` (bulk read), ``order-number`` (one order read) and
``order-status`` (a status update).
"""

from __future__ import annotations

import io
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from support.faultservers import closed_port
from support.sandboxes import (
    NEW,
    SANDBOX_TOKEN,
    MakeSandbox,
    by_po,
    client_for,
    order_numbers,
    send,
    sheet,
    status_requests,
    store_statuses,
)

from spectrum_tools import Journal, SpectrumClient
from spectrum_tools.cli import main
from spectrum_tools.errors import RunStoppedError
from spectrum_tools.runs import send_updates
from spectrum_tools.sandbox import SandboxServer, seed_age

READS = {"orders-search", "order-number"}
LOOK_BACK = timedelta(days=92)  # the default look-back: about three months


# -- helpers -------------------------------------------------------------------------------


def _endpoints(sb: SandboxServer) -> Counter[str]:
    return Counter(r["endpoint"] for r in sb.requests())


def _all_orders(sb: SandboxServer) -> list[str]:
    return list(dict.fromkeys(sb.store.line_statuses()["purchaseOrderNumber"]))


def _outcomes(results: pd.DataFrame) -> dict[str, str]:
    return dict(zip(results["purchaseOrderNumber"], results["outcome"], strict=True))


def _applied_elsewhere(sb: SandboxServer, pos: list[str], tmp_path: Path) -> None:
    """Someone else (another analyst, another journal) sets ``pos`` to NEW; log cleared."""
    done = send(sheet(sb, pos), sb, tmp_path / "someone-elses-runs", read_back=False)
    assert set(done["outcome"]) == {"updated"}
    sb.clear_requests()


def _half_set(sb: SandboxServer, pos: list[str]) -> pd.DataFrame:
    """A sheet over ``pos``: even orders ask for what Spectrum holds now, odd ones for NEW."""
    truth = store_statuses(sb)
    frame = sheet(sb, pos)
    keep = frame["purchaseOrderNumber"].isin(pos[::2])
    frame.loc[keep, "workflowStatus"] = [
        truth[(po, rid)]
        for po, rid in frame.loc[keep, ["purchaseOrderNumber", "recipeSetReadableId"]].itertuples(
            index=False, name=None
        )
    ]
    return frame


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The CLI's environment: the sandbox token, no other settings, cwd in tmp_path."""
    monkeypatch.setenv("SPECTRUM_API_TOKEN", SANDBOX_TOKEN)
    for name in ("SPECTRUM_BASE_URL", "SPECTRUM_ENVIRONMENTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a terminal
    return tmp_path


def _send_args(file: Path, sb: SandboxServer, *more: str) -> list[str]:
    return ["send", str(file), "--base-url", sb.base_url, "--max-per-minute", "6000", *more]


# -- a dry run reads in a few requests and sends nothing ----------------------------------------


def test_a_dry_run_reads_every_sample_order_in_a_few_requests_and_sends_no_status(
    sandbox: SandboxServer, cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    orders = _all_orders(sandbox)
    old = [po for po in orders if seed_age(po) > LOOK_BACK]
    sheet(sandbox, orders).to_csv(cli / "updates.csv", index=False)
    before = store_statuses(sandbox)

    code = main(_send_args(cli / "updates.csv", sandbox, "--dry-run", "-o", "plan.csv"))

    out = capsys.readouterr().out
    assert code == 0
    calls = _endpoints(sandbox)
    assert calls["order-status"] == 0  # no status request
    assert set(calls) <= READS
    assert 1 <= calls["orders-search"] <= 3  # three 31-day windows cover the look-back
    assert calls["order-number"] == len(old)  # one GET only for orders no window covered
    assert sum(calls.values()) < len(orders) / 5
    assert store_statuses(sandbox) == before
    assert (
        f"Read the current state from 127.0.0.1:{sandbox.port}: {calls['orders-search']} "
        f"search(es) and {calls['order-number']} order read(s)." in out
    )
    assert f"Orders: {len(orders)} to send, 0 unchanged" in out
    plan = pd.read_csv(cli / "plan.csv", dtype=str, keep_default_na=False)
    assert plan["purchaseOrderNumber"].tolist() == orders
    assert set(plan["outcome"]) == {"dry_run"}


def test_a_dry_run_of_a_half_applied_sheet_says_which_orders_are_already_set(
    sandbox: SandboxServer, cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pos = order_numbers(sandbox, 6)
    _half_set(sandbox, pos).to_csv(cli / "updates.csv", index=False)

    code = main(_send_args(cli / "updates.csv", sandbox, "--dry-run", "-o", "plan.csv"))

    out = capsys.readouterr().out
    assert code == 0
    assert _endpoints(sandbox)["order-status"] == 0
    assert "Orders: 3 to send, 3 unchanged" in out
    assert "Requests: 3," in out  # what will really be sent
    plan = pd.read_csv(cli / "plan.csv", dtype=str, keep_default_na=False)
    assert _outcomes(plan) == {
        po: "unchanged" if k % 2 == 0 else "dry_run" for k, po in enumerate(pos)
    }


# -- a re-upload sends only what is not applied yet ----------------------------------------------


def test_a_reupload_with_half_applied_sends_only_the_other_half_and_reports_it_unchanged(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    pos = order_numbers(sandbox, 8)
    applied, rest = pos[:4], pos[4:]
    _applied_elsewhere(sandbox, applied, tmp_path)
    full = sheet(sandbox, pos)

    results = send(full, sandbox, tmp_path / "runs")

    assert results["purchaseOrderNumber"].tolist() == pos  # one row per order, sheet order
    assert _outcomes(results) == {
        **dict.fromkeys(applied, "unchanged"),
        **dict.fromkeys(rest, "updated"),
    }
    rows = by_po(results)
    for po in applied:
        assert rows[po]["attempts"] == 0
        assert pd.isna(rows[po]["http_status"])
        assert "already set" in rows[po]["details"]
    for po in rest:
        assert rows[po]["http_status"] == 200
        assert rows[po]["line_count"] == int((full["purchaseOrderNumber"] == po).sum())
    sent = status_requests(sandbox)
    assert sorted(r["purchaseOrderNumber"] for r in sent) == sorted(rest)  # once each
    assert all(s == NEW for (po, _), s in store_statuses(sandbox).items() if po in pos)
    assert results.attrs["run_id"] is not None  # still a journaled run


def test_a_reupload_through_the_cli_counts_unchanged_orders_as_done(
    sandbox: SandboxServer, cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pos = order_numbers(sandbox, 6)
    _applied_elsewhere(sandbox, pos[:3], cli)
    sheet(sandbox, pos).to_csv(cli / "updates.csv", index=False)

    code = main(_send_args(cli / "updates.csv", sandbox, "--yes", "-o", "results.csv"))

    out = capsys.readouterr().out
    assert code == 0  # unchanged is not a failure
    assert "Orders: 3 to send, 3 unchanged" in out
    outcomes = out.split("Outcomes:")[1]
    assert "updated          3" in outcomes and "unchanged        3" in outcomes
    assert len(status_requests(sandbox)) == 3
    written = pd.read_csv(cli / "results.csv", dtype=str, keep_default_na=False)
    assert written["outcome"].tolist() == ["unchanged"] * 3 + ["updated"] * 3


def test_only_line_items_that_change_are_in_the_status_update(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    truth = store_statuses(sandbox)
    sizes = pd.Series([po for po, _ in truth]).value_counts()
    po = str(sizes.index[sizes >= 4][0])  # an order with four line items or more
    ids = [rid for (p, rid) in truth if p == po]
    changing = ids[::2]
    rows = pd.DataFrame(
        {
            "purchaseOrderNumber": po,
            "recipeSetReadableId": ids,
            "workflowStatus": [NEW if rid in changing else truth[(po, rid)] for rid in ids],
        }
    )

    results = send(rows, sandbox, tmp_path / "runs")

    [row] = results.to_dict("records")
    assert row["outcome"] == "updated"
    assert row["line_count"] == len(changing)  # the number sent
    [put] = status_requests(sandbox, po)
    assert put["method"] == "PUT"
    assert put["lineItemCount"] == len(changing)
    assert put["recipeSetReadableIds"] == changing
    after = store_statuses(sandbox)
    assert {rid: after[(po, rid)] for rid in ids} == {
        rid: NEW if rid in changing else truth[(po, rid)] for rid in ids
    }


# -- the degraded path: answers without statuses ------------------------------------------------


def test_without_statuses_in_answers_everything_is_sent_and_a_note_says_they_are_unknown(
    make_sandbox: MakeSandbox, cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sb = make_sandbox(expose_workflow_status=False)
    pos = order_numbers(sb, 6)
    rows = _half_set(sb, pos)  # half of it is already set, but Spectrum does not say so
    rows.to_csv(cli / "updates.csv", index=False)
    runs = cli / "runs"

    code = main(
        _send_args(cli / "updates.csv", sb, "--yes", "--runs-dir", str(runs), "-o", "out.csv")
    )

    out = capsys.readouterr().out
    assert code == 0
    notes = [line for line in out.splitlines() if line.startswith("Note:")]
    assert len(notes) == 1 and "unknown" in notes[0]  # said once, in plain words
    assert f"{len(rows)} current status unknown" in out
    assert "0 unchanged" in out
    written = pd.read_csv(cli / "out.csv", dtype=str, keep_default_na=False)
    assert set(written["outcome"]) == {"updated"}  # nothing unchanged: never guessed
    sent = status_requests(sb)
    assert sorted(r["purchaseOrderNumber"] for r in sent) == sorted(pos)
    assert sum(r["lineItemCount"] for r in sent) == len(rows)  # every line item sent
    with Journal(runs) as journal:
        before = journal.load_run(1).before_images
    assert len(before) == len(rows)
    assert (before["status"] == "").all()  # unknown, not guessed


def test_without_statuses_send_updates_sends_every_order_whole(
    make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sb = make_sandbox(expose_workflow_status=False)
    pos = order_numbers(sb, 4)
    rows = _half_set(sb, pos)

    results = send(rows, sb, tmp_path / "runs")

    assert _outcomes(results) == dict.fromkeys(pos, "updated")
    assert results["line_count"].tolist() == [
        int((rows["purchaseOrderNumber"] == po).sum()) for po in pos
    ]
    assert _endpoints(sb)["order-status"] == len(pos)


# -- before-images ---------------------------------------------------------------------------


def test_the_journal_keeps_what_each_sent_line_item_held_before_the_run(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    pos = order_numbers(sandbox, 4)
    [po, *_] = pos
    rid = sheet(sandbox, [po])["recipeSetReadableId"].iat[0]
    sandbox.store.stage_order(po, {rid: "cancelled"})  # changed in Spectrum before the run
    rows = _half_set(sandbox, pos)  # orders 0 and 2 ask for what they hold: not sent
    rows.loc[
        (rows["purchaseOrderNumber"] == po) & (rows["recipeSetReadableId"] == rid), "workflowStatus"
    ] = NEW  # ... except this one line item
    truth = store_statuses(sandbox)
    runs = tmp_path / "runs"

    results = send(rows, sandbox, runs)

    assert _outcomes(results) == {
        pos[0]: "updated",
        pos[1]: "updated",
        pos[2]: "unchanged",
        pos[3]: "updated",
    }
    with Journal(runs) as journal:
        before = journal.load_run(int(results.attrs["run_id"])).before_images
    sent = rows[rows["workflowStatus"] == NEW]
    got = {
        (p, r): s
        for p, r, s in before[["purchaseOrderNumber", "recipeSetReadableId", "status"]].itertuples(
            index=False, name=None
        )
    }
    assert got == {
        (p, r): truth[(p, r)]
        for p, r in sent[["purchaseOrderNumber", "recipeSetReadableId"]].itertuples(
            index=False, name=None
        )
    }
    assert got[(po, rid)] == "cancelled"  # what was read, not what the sample first held
    assert before["read_at"].astype(str).str.len().gt(0).all()  # when it was read
    assert before["read_via"].astype(str).str.len().gt(0).all()  # and how
    assert store_statuses(sandbox)[(po, rid)] == NEW


def test_a_send_without_read_back_knows_no_before_image(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    pos = order_numbers(sandbox, 2)
    results = send(sheet(sandbox, pos), sandbox, tmp_path / "runs", read_back=False)
    assert set(results["outcome"]) == {"updated"}
    assert set(_endpoints(sandbox)) == {"order-status"}  # nothing read
    with Journal(tmp_path / "runs") as journal:
        before = journal.load_run(int(results.attrs["run_id"])).before_images
    assert (before["status"] == "").all()  # nothing was read, so no status is known


# -- line items Spectrum does not have -----------------------------------------------------------


@pytest.mark.fault
def test_an_order_with_an_unknown_line_item_is_not_found_without_a_request(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    po, other = order_numbers(sandbox, 2)
    rows = sheet(sandbox, [po, other])
    first = rows.index[rows["purchaseOrderNumber"] == po][0]
    rows.loc[first, "recipeSetReadableId"] = "NOPE0001"
    ghost = pd.DataFrame(
        {
            "purchaseOrderNumber": ["NO-SUCH-PO"],
            "recipeSetReadableId": ["AAAA1111"],
            "workflowStatus": [NEW],
        }
    )
    rows = pd.concat([rows, ghost], ignore_index=True)
    before = store_statuses(sandbox)

    results = send(rows, sandbox, tmp_path / "runs")

    got = by_po(results)
    assert got[po]["outcome"] == "not_found"
    assert got[po]["missing_ids"] == "NOPE0001"
    assert "NOPE0001" in got[po]["details"]
    assert got[po]["attempts"] == 0
    assert got["NO-SUCH-PO"]["outcome"] == "not_found"
    assert got[other]["outcome"] == "updated"
    assert status_requests(sandbox, po) == []  # decided from the read: no wasted request
    assert status_requests(sandbox, "NO-SUCH-PO") == []
    after = store_statuses(sandbox)
    assert all(after[k] == before[k] for k in after if k[0] == po)


@pytest.mark.fault
def test_with_retry_without_missing_the_rest_is_sent_once_and_the_order_is_partial(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    [po] = order_numbers(sandbox, 1)
    rows = sheet(sandbox, [po])
    rows.loc[1, "recipeSetReadableId"] = "NOPE0001"
    kept = [r for r in rows["recipeSetReadableId"] if r != "NOPE0001"]

    results = send(rows, sandbox, tmp_path / "runs", retry_without_missing=True)

    [row] = results.to_dict("records")
    assert row["outcome"] == "partial"
    assert row["missing_ids"] == "NOPE0001"
    assert row["http_status"] == 200
    assert "NOPE0001" in row["details"]
    [put] = status_requests(sandbox, po)  # one request, without the unknown id: no 409 first
    assert put["status"] == 200
    assert put["recipeSetReadableIds"] == kept
    after = store_statuses(sandbox)
    assert all(after[(po, rid)] == NEW for rid in kept)


# -- the read itself is refused or unanswered -----------------------------------------------------


@pytest.mark.fault
@pytest.mark.security
@pytest.mark.parametrize("code", [401, 403])
def test_a_refused_read_stops_the_send_before_any_status_with_every_order_pending(
    make_sandbox: MakeSandbox, tmp_path: Path, code: int
) -> None:
    sb = make_sandbox(auth_failure_status=code)
    pos = order_numbers(sb, 5)
    before = store_statuses(sb)

    with pytest.raises(RunStoppedError) as info:
        send_updates(
            sheet(sb, pos),
            client_for(sb, "wrong-token"),
            runs_dir=tmp_path / "runs",
            progress=False,
            max_per_minute=6000,
        )

    assert f"HTTP {code}" in str(info.value)
    assert "token" in str(info.value).lower()
    frame = info.value.results
    assert frame is not None
    assert frame["purchaseOrderNumber"].tolist() == pos  # every order, once
    assert set(frame["outcome"]) == {"pending"}
    assert status_requests(sb) == []  # no status was sent
    assert set(_endpoints(sb)) <= READS
    assert store_statuses(sb) == before


@pytest.mark.fault
def test_a_read_that_gets_no_answer_stops_the_send_with_every_order_pending(
    tmp_path: Path,
) -> None:
    rows = pd.DataFrame(
        {
            "purchaseOrderNumber": ["PO-1", "PO-2", "PO-3"],
            "recipeSetReadableId": ["AAAA1111", "BBBB2222", "CCCC3333"],
            "workflowStatus": NEW,
        }
    )
    client = SpectrumClient(f"http://127.0.0.1:{closed_port()}", token=SANDBOX_TOKEN)

    with pytest.raises(RunStoppedError) as info:
        send_updates(
            rows,
            client,
            runs_dir=tmp_path / "runs",
            progress=False,
            max_per_minute=6000,
            max_attempts=1,
        )

    frame = info.value.results
    assert frame is not None
    assert frame["outcome"].tolist() == ["pending"] * 3
    assert "answer" in str(info.value).lower()
