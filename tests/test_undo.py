"""Undo a run against the sandbox: before-images restored, later changes kept, all reported."""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pytest

from spectrum_tools.journal import Journal
from spectrum_tools.runs import resume_run, send_updates, undo_run
from spectrum_tools.sandbox import SandboxServer
from tests.support.observers import StopAfter
from tests.support.sandboxes import FAST, NEW, client_for, order_numbers, sheet, store_statuses


def _status_puts(sb: SandboxServer) -> list[dict[str, object]]:
    return [dict(r) for r in sb.requests() if r["endpoint"] == "order-status"]


def _send(sb: SandboxServer, runs: Path, pos: list[str], **kw: object) -> int:
    frame = send_updates(
        sheet(sb, pos), client_for(sb), runs_dir=runs, progress=False, max_per_minute=FAST, **kw
    )
    return int(frame.attrs["run_id"])


def test_undo_restores_every_line_item_to_its_before_image(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    before = store_statuses(sandbox)
    pos = order_numbers(sandbox, 6)
    run = _send(sandbox, runs, pos)
    assert store_statuses(sandbox) != before

    undone = undo_run(run, client_for(sandbox), runs_dir=runs, progress=False)

    assert store_statuses(sandbox) == before
    assert set(undone["outcome"]) == {"updated"}
    assert undone.attrs["undo_of"] == run
    assert undone.attrs["left_alone"] == []
    with Journal(runs) as journal:
        record = journal.load_run(int(undone.attrs["run_id"]))
    assert record.meta["parent_run"] == run
    assert record.meta["options"]["kind"] == "undo"


def test_undo_keeps_a_line_item_someone_changed_after_the_run(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    before = store_statuses(sandbox)
    po = order_numbers(sandbox, 1)[0]
    run = _send(sandbox, runs, [po])
    rid = sheet(sandbox, [po])["recipeSetReadableId"].iat[0]
    sandbox.store.stage_order(po, {rid: "cancelled"})  # someone else, after the run

    undone = undo_run(run, client_for(sandbox), runs_dir=runs, progress=False)

    now = store_statuses(sandbox)
    assert now[(po, rid)] == "cancelled"  # kept as it is
    others = [k for k in before if k[0] == po and k[1] != rid]
    assert all(now[k] == before[k] for k in others)  # the rest restored
    left = pd.DataFrame(undone.attrs["left_alone"])
    assert left["recipeSetReadableId"].tolist() == [rid]
    assert left["details"].iat[0] == f"changed since run {run}: now cancelled"
    if others:  # the order went with the other line items, and says what it left alone
        assert f"changed since run {run}: now cancelled" in undone["details"].iat[0]


def test_undo_force_restores_a_line_item_changed_since(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    before = store_statuses(sandbox)
    po = order_numbers(sandbox, 1)[0]
    run = _send(sandbox, runs, [po])
    rid = sheet(sandbox, [po])["recipeSetReadableId"].iat[0]
    sandbox.store.stage_order(po, {rid: "cancelled"})
    undo_run(run, client_for(sandbox), runs_dir=runs, progress=False, force=True)
    assert store_statuses(sandbox)[(po, rid)] == before[(po, rid)]


def test_undo_dry_run_reads_but_sends_and_records_nothing(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    pos = order_numbers(sandbox, 3)
    run = _send(sandbox, runs, pos)
    sandbox.clear_requests()
    preview = undo_run(run, client_for(sandbox), runs_dir=runs, progress=False, dry_run=True)
    assert set(preview["outcome"]) == {"dry_run"}
    assert _status_puts(sandbox) == []
    with Journal(runs) as journal:
        assert len(journal.runs()) == 1


def test_a_run_sent_without_read_back_has_nothing_to_undo_and_says_why(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    pos = order_numbers(sandbox, 2)
    run = _send(sandbox, runs, pos, read_back=False)
    sandbox.clear_requests()
    undone = undo_run(run, client_for(sandbox), runs_dir=runs, progress=False)
    assert _status_puts(sandbox) == []
    left = pd.DataFrame(undone.attrs["left_alone"])
    assert len(left) == len(sheet(sandbox, pos))
    assert left["details"].str.startswith("no before-image").all()


def test_undo_of_an_undo_puts_the_run_back(sandbox: SandboxServer, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    pos = order_numbers(sandbox, 2)
    run = _send(sandbox, runs, pos)
    after_run = store_statuses(sandbox)
    undone = undo_run(run, client_for(sandbox), runs_dir=runs, progress=False)
    undo_run(int(undone.attrs["run_id"]), client_for(sandbox), runs_dir=runs, progress=False)
    assert store_statuses(sandbox) == after_run


def _stopped_after_one(sb: SandboxServer, runs: Path, n: int) -> pd.DataFrame:
    """A run of ``n`` orders stopped after its first order: the rest are pending."""
    stop = threading.Event()
    stopper = StopAfter(1, stop.set)
    return send_updates(
        sheet(sb, order_numbers(sb, n)),
        client_for(sb),
        runs_dir=runs,
        progress=False,
        max_per_minute=FAST,
        workers=1,
        stop=stop,
        observers=[stopper],
    )


def test_resume_leaves_alone_a_line_item_someone_changed_since(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    first = _stopped_after_one(sandbox, runs, 4)
    pending = first.loc[first["outcome"] == "pending", "purchaseOrderNumber"].tolist()
    assert pending
    po = pending[0]
    rid = sheet(sandbox, [po])["recipeSetReadableId"].iat[0]
    sandbox.store.stage_order(po, {rid: "cancelled"})  # someone else, while the run was stopped

    resumed = resume_run(
        int(first.attrs["run_id"]), client_for(sandbox), runs_dir=runs, progress=False
    )

    assert store_statuses(sandbox)[(po, rid)] == "cancelled"
    row = resumed.set_index("purchaseOrderNumber").loc[po]
    assert "changed since run" in row["details"] and "now cancelled" in row["details"]


def test_resume_force_overwrites_a_change_made_since(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    first = _stopped_after_one(sandbox, runs, 3)
    po = first.loc[first["outcome"] == "pending", "purchaseOrderNumber"].iat[0]
    rid = sheet(sandbox, [po])["recipeSetReadableId"].iat[0]
    sandbox.store.stage_order(po, {rid: "cancelled"})
    resume_run(
        int(first.attrs["run_id"]), client_for(sandbox), runs_dir=runs, progress=False, force=True
    )
    assert store_statuses(sandbox)[(po, rid)] == NEW


def test_cli_undo_shows_what_it_restores_then_restores_it(
    sandbox: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from spectrum_tools.cli import main

    runs = tmp_path / "runs"
    before = store_statuses(sandbox)
    pos = order_numbers(sandbox, 3)
    run = _send(sandbox, runs, pos)
    common = ["--base-url", sandbox.base_url, "--runs-dir", str(runs)]
    env = {"SPECTRUM_API_TOKEN": sandbox.token}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        assert main(["undo", str(run), *common, "--dry-run"]) == 0
        assert store_statuses(sandbox) != before  # a dry run restores nothing
        shown = capsys.readouterr().out
        assert "Orders to restore: 3" in shown
        assert main(["undo", str(run), *common, "--yes", "-o", str(tmp_path / "u.xlsx")]) == 0
    assert store_statuses(sandbox) == before
    assert (tmp_path / "u.xlsx").is_file()
