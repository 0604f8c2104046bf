"""The durable-run commands: ``send`` prints its run, ``runs``, ``show``, ``resume``, ``retry``.

``spectrum_tools.cli.main`` is called in-process with stdout/stderr captured, against the real
sandbox; a few tests run the ``spectrum-tools`` console script as a real process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from support.observers import StopAfter
from support.sandboxes import (
    FAST,
    SANDBOX_TOKEN,
    MakeSandbox,
    order_numbers,
    send,
    sheet,
    status_requests,
)

from spectrum_tools import Journal
from spectrum_tools.cli import main
from spectrum_tools.sandbox import SandboxServer, sample_data_dir

SCRIPT = Path(sys.executable).parent / "spectrum-tools"


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPECTRUM_API_TOKEN", SANDBOX_TOKEN)  # what every test sandbox accepts


def _csv(sb: SandboxServer, pos: list[str], path: Path) -> Path:
    sheet(sb, pos).to_csv(path, index=False)
    return path


def _send_args(file: Path, sb: SandboxServer, runs: Path, *more: str) -> list[str]:
    base = ["send", str(file), "--base-url", sb.base_url, "--yes", "--runs-dir", str(runs)]
    return [*base, "--max-per-minute", str(FAST), *more]


def _stopped_run(sb: SandboxServer, runs: Path, pos: list[str], after: int) -> int:
    stop = threading.Event()
    results = send(
        sheet(sb, pos), sb, runs, workers=1, stop=stop, observers=[StopAfter(after, stop.set)]
    )
    return int(results.attrs["run_id"])


def _one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


# -- send, runs, show ------------------------------------------------------------------------------


def test_send_prints_its_run_then_runs_and_show_describe_it(
    sandbox: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    source = sample_data_dir() / "status_updates.csv"
    assert main(_send_args(source, sandbox, runs)) == 1  # a not_found order and invalid ones
    out = capsys.readouterr().out
    assert f"Run 1 is recorded in the journal {runs / 'journal.sqlite3'}" in out
    assert "Resume it with" not in out  # nothing is pending

    assert main(["runs", "--runs-dir", str(runs)]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0] == f"Runs in {runs / 'journal.sqlite3'}:"
    header, row = listing[1].split(), listing[2].split()
    assert header[0] == "run" and header[-4:] == ["requests", "updated", "not_found", "invalid"]
    assert row[:2] == ["1", "finished"]  # no parent run: that column is blank
    assert row[-6:] == [
        f"http://127.0.0.1:{sandbox.port}",
        "status_updates.csv",
        "45",  # the not_found order was decided from the read: no request for it
        "45",
        "1",
        "5",
    ]

    assert main(["show", "1", "--runs-dir", str(runs)]) == 1  # not every order updated
    shown = capsys.readouterr().out
    assert "Run 1: finished" in shown
    assert f"Environment:  127.0.0.1:{sandbox.port}" in shown
    assert "Input:        status_updates.csv  (sha256 " in shown
    assert "Orders not updated (6):" in shown
    # Decided from the read, without a request (so no HTTP status), naming the unknown id.
    [refused] = [line for line in shown.splitlines() if "HA-US-DEV00011103" in line]
    assert refused.split()[:2] == ["HA-US-DEV00011103", "not_found"]
    assert "409" not in refused
    assert "Spectrum does not have line item(s) HS7SW33X" in refused
    assert "HA-US-DEV00011101" not in shown  # updated orders are not listed
    assert sandbox.token not in shown + out


def test_send_skips_what_is_applied_and_force_sends_it(
    sandbox: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    file = _csv(sandbox, order_numbers(sandbox, 3), tmp_path / "fix.csv")
    assert main(_send_args(file, sandbox, runs)) == 0
    capsys.readouterr()
    sandbox.clear_requests()

    assert main(_send_args(file, sandbox, runs)) == 0  # skipped counts as done
    out = capsys.readouterr().out
    assert "Orders: 0 to send, 0 unchanged, 0 refused (not in Spectrum), 0 held back " in out
    assert "3 skipped (already applied)." in out
    assert "Requests: 0," in out
    assert "Run 2 is recorded" in out
    assert status_requests(sandbox) == []

    # --force no longer skips them; the read then finds them already set in Spectrum.
    assert main(_send_args(file, sandbox, runs, "--force")) == 0
    out = capsys.readouterr().out
    assert "0 skipped (already applied)." in out
    assert "Orders: 0 to send, 3 unchanged" in out
    assert status_requests(sandbox) == []

    # --force without read-back sends them again.
    assert main(_send_args(file, sandbox, runs, "--force", "--no-read-back")) == 0
    out = capsys.readouterr().out
    assert "0 skipped (already applied)." in out
    assert len(status_requests(sandbox)) == 3


def test_show_and_runs_without_a_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", "--runs-dir", str(tmp_path / "runs")]) == 0
    assert "No runs yet" in capsys.readouterr().out
    assert main(["show", "3", "--runs-dir", str(tmp_path / "runs")]) == 2
    assert _one_line(capsys.readouterr().err).startswith("error: no run journal at ")
    assert not (tmp_path / "runs").exists()
    Journal(tmp_path / "runs").close()
    assert main(["show", "3", "--runs-dir", str(tmp_path / "runs")]) == 2
    assert _one_line(capsys.readouterr().err).startswith("error: no run 3 in ")


# -- resume, retry ---------------------------------------------------------------------------------


def test_resume_command_completes_the_run_and_writes_results(
    sandbox: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    pos = order_numbers(sandbox, 6)
    _stopped_run(sandbox, runs, pos, after=2)
    assert main(["show", "1", "--runs-dir", str(runs)]) == 1
    assert "Run 1: stopped" in capsys.readouterr().out
    sandbox.clear_requests()
    output = tmp_path / "results.xlsx"

    code = main(
        ["resume", "--base-url", sandbox.base_url, "--runs-dir", str(runs), "-o", str(output), "-y"]
    )

    out = capsys.readouterr().out
    assert code == 0
    assert f"Resuming run 1: 4 orders pending or in flight, to 127.0.0.1:{sandbox.port}" in out
    assert "Run 1 is recorded" in out
    assert len(status_requests(sandbox)) == 4
    book = openpyxl.load_workbook(output)
    assert {"Orders", "Lines"} <= set(book.sheetnames)
    orders = pd.read_excel(output, sheet_name="Orders", dtype=str, engine="openpyxl")
    assert sorted(orders["purchaseOrderNumber"]) == sorted(pos)
    assert set(orders["outcome"]) == {"updated"}

    assert main(["resume", "--base-url", sandbox.base_url, "--runs-dir", str(runs)]) == 2
    assert _one_line(capsys.readouterr().err).startswith("error: no unfinished run in ")


def test_resume_on_another_environment_exits_2_with_one_line(
    make_sandbox: MakeSandbox,
    sandbox: SandboxServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    runs = tmp_path / "runs"
    _stopped_run(sandbox, runs, order_numbers(sandbox, 3), after=1)
    other = make_sandbox(token=sandbox.token)
    capsys.readouterr()

    code = main(["resume", "1", "--base-url", other.base_url, "--runs-dir", str(runs), "--yes"])

    assert code == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"error: run 1 was sent to http://127.0.0.1:{sandbox.port}, not ")
    assert status_requests(other) == []


def test_retry_command_makes_a_linked_run(
    sandbox: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    pos = order_numbers(sandbox, 4)
    sandbox.settings.fail_first.update({pos[0]: 9, pos[2]: 9})
    first = send(sheet(sandbox, pos), sandbox, runs, max_attempts=1)
    assert (first["outcome"] == "failed").sum() == 2
    sandbox.settings.fail_first.clear()
    sandbox.clear_requests()
    retry = ["retry", "1", "--base-url", sandbox.base_url, "--runs-dir", str(runs)]

    assert main(retry) == 2  # not on a terminal: needs --yes
    assert "add --yes" in _one_line(capsys.readouterr().err)
    assert status_requests(sandbox) == []

    assert main([*retry, "--yes"]) == 0
    out = capsys.readouterr().out
    assert "Retrying run 1: 2 failed orders, as a new run" in out
    assert "Run 2 is recorded" in out
    assert sorted(r["purchaseOrderNumber"] for r in status_requests(sandbox)) == sorted(
        [pos[0], pos[2]]
    )
    with Journal(runs) as journal:
        assert journal.runs().set_index("run_id").at[2, "parent_run"] == 1

    assert main(["retry", "2", "--base-url", sandbox.base_url, "--runs-dir", str(runs)]) == 0
    assert "Run 2 has no failed orders: nothing to retry." in capsys.readouterr().out


# -- real processes --------------------------------------------------------------------------------


def test_runs_and_show_as_real_processes(sandbox: SandboxServer, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    send(sheet(sandbox, order_numbers(sandbox, 2)), sandbox, runs)
    env = {k: v for k, v in os.environ.items() if k != "SPECTRUM_API_TOKEN"}

    listed = subprocess.run(
        [str(SCRIPT), "runs", "--runs-dir", str(runs)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )
    shown = subprocess.run(
        [str(SCRIPT), "show", "1", "--runs-dir", str(runs)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )
    missing = subprocess.run(
        [str(SCRIPT), "show", "9", "--runs-dir", str(runs)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )

    assert listed.returncode == 0, listed.stderr
    assert "DataFrame" in listed.stdout and "finished" in listed.stdout
    assert shown.returncode == 0, shown.stderr
    assert "Run 1: finished" in shown.stdout
    assert "updated" in shown.stdout and "Orders not updated" not in shown.stdout
    assert missing.returncode == 2
    assert _one_line(missing.stderr).startswith("error: no run 9 in ")
    assert "Traceback" not in missing.stderr


@pytest.mark.fault
def test_ctrl_c_during_resume_exits_130_and_the_run_can_be_resumed_again(
    make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sb = make_sandbox(latency_s=0.2)
    runs = tmp_path / "runs"
    pos = order_numbers(sb, 30)
    sb.settings.latency_s = 0.0
    _stopped_run(sb, runs, pos, after=1)
    sb.settings.latency_s = 0.2
    args = [str(SCRIPT), "resume", "--base-url", sb.base_url, "--runs-dir", str(runs), "--yes"]
    args += ["--max-per-minute", str(FAST), "--workers", "1"]
    env = {**os.environ, "SPECTRUM_API_TOKEN": sb.token}
    proc = subprocess.Popen(
        args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(status_requests(sb)) < 1 + 3:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert "Resume it with: spectrum-tools resume 1" in out
    with Journal(runs) as journal:
        table = journal.runs()
    assert table.at[0, "state"] == "interrupted"
    assert 0 < table.at[0, "pending"] < 29

    sb.settings.latency_s = 0.0
    assert main(["resume", "--base-url", sb.base_url, "--runs-dir", str(runs), "--yes"]) == 0
    with Journal(runs) as journal:
        record = journal.load_run(1)
    assert set(record.results["outcome"]) == {"updated"}
    assert record.meta["sessions"] == 3
