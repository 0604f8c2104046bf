"""Issue 13 on the command line: column options, aliases, suggestions, the files an analyst
hands on, dry runs without a token, busy ports, resume's confirmation, the sandbox's key.

Sends go to a real sandbox over HTTP; the CLI runs in-process through
:func:`spectrum_tools.cli.main` (stdin is not a terminal unless a test says so).
"""

from __future__ import annotations

import io
import secrets
import socket
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from support.observers import StopAfter
from support.sandboxes import FAST, MakeSandbox, order_numbers, send, sheet, status_requests

from spectrum_tools.cli import main
from spectrum_tools.client import SpectrumClient
from spectrum_tools.connect import connect
from spectrum_tools.environments import load_environments
from spectrum_tools.journal import Journal
from spectrum_tools.runs import send_updates
from spectrum_tools.sandbox import SandboxServer
from spectrum_tools.sheets import read_updates


@pytest.fixture
def token() -> str:
    return "tok-" + secrets.token_hex(16)


@pytest.fixture
def env(token: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SPECTRUM_API_TOKEN", token)
    for name in ("SPECTRUM_BASE_URL", "SPECTRUM_ENVIRONMENTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a terminal
    return token


@pytest.fixture
def sb(make_sandbox: MakeSandbox, env: str) -> SandboxServer:
    return make_sandbox(token=env)


def _lines(sandbox: SandboxServer, pos: list[str]) -> list[tuple[str, str]]:
    frame = sandbox.store.line_statuses()
    return [
        (po, rid)
        for po in pos
        for rid in frame.loc[frame["purchaseOrderNumber"] == po, "recipeSetId"]
    ]


def _analyst_book(path: Path, rows: list[list[object]], title: bool = True) -> Path:
    """A workbook as analysts send them: a title row, their headers, a Notes column."""
    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    if title:
        ws.append(["Status changes, week 12"])
    ws.append(["PO #", "Recipe Set", "New Status", "Notes"])
    for row in rows:
        ws.append(row)
    book.save(path)
    return path


def _send(sandbox: SandboxServer, *args: str) -> list[str]:
    return ["send", *args, "--base-url", sandbox.base_url, "--max-per-minute", str(FAST)]


# -- validate -----------------------------------------------------------------------------


def test_column_options_pick_the_columns(
    tmp_path: Path, env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "odd.csv"
    path.write_text("Bestellung,Rezept,Neu\nP1,AAAA1111,approved\n", encoding="utf-8")
    assert main(["validate", str(path)]) == 2
    assert "no column for purchaseOrderNumber" in capsys.readouterr().err
    target = tmp_path / "rows.csv"
    code = main(
        [
            "validate",
            str(path),
            "--po-column",
            "Bestellung",
            "--id-column",
            "Rezept",
            "--status-column",
            "Neu",
            "-o",
            str(target),
        ]
    )
    assert code == 0
    assert "Requests:        1" in capsys.readouterr().out
    assert read_updates(target)["recipeSetReadableId"].tolist() == ["AAAA1111"]


def test_validate_summary_groups_by_kind_with_duplicates_apart(
    tmp_path: Path, env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [["P1", "AAAA1111", "Complete", ""]] * 3  # two folded duplicates
    rows += [["P2", f"BBBB000{i}", "nope", ""] for i in range(3)]
    rows += [[12345, "CCCC1111", "COMPLETE", ""], ["rows: 7", None, None, None]]
    path = _analyst_book(tmp_path / "week12.xlsx", rows)

    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out

    assert "Invalid:         3" in out
    assert "       3  unknown workflowStatus  (rows 6, 7, 8)" in out
    assert "Folded duplicates" in out
    assert "       2  duplicate row  (rows 4, 5)" in out
    assert "Warnings" in out
    assert "purchaseOrderNumber stored as a number" in out
    assert "Ignored row 10 under the data (a footer, not an order): rows: 7" in out
    assert "Orders:          3  (1 held back" in out  # the footer is no held-back order


def test_team_aliases_and_apply_suggestions_keep_the_original(
    tmp_path: Path, env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "spectrum-environments.toml").write_text(
        '[statuses.aliases]\nshipped = "delivered"\n', encoding="utf-8"
    )
    rows = [["P1", "AAAA1111", "shipped", ""], ["P2", "BBBB2222", "complet", ""]]
    path = _analyst_book(tmp_path / "week12.xlsx", rows)
    target = tmp_path / "checked.xlsx"

    assert main(["validate", str(path)]) == 1
    assert "'complet' -> completed; --apply-suggestions takes them" in capsys.readouterr().out

    assert main(["validate", str(path), "--apply-suggestions", "-o", str(target)]) == 0
    out = capsys.readouterr().out
    assert "Applied suggestion: 'complet' -> completed (1 row)" in out
    table = pd.read_excel(target, dtype=str, keep_default_na=False, engine="openpyxl")
    assert table["workflowStatus"].tolist() == ["delivered", "completed"]
    assert table["original_status"].tolist() == ["", "complet"]


# -- send: the files an analyst hands on --------------------------------------------------


def test_send_writes_report_error_and_success_files(
    sb: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pos = order_numbers(sb, 3)
    good = [[po, rid, "Complete", f"note {po}"] for po, rid in _lines(sb, pos[:2])]
    missing = [["NO-SUCH-PO", "ZZZZ9999", "complete", "typo?"]]
    invalid = [[pos[2], rid, "nope", "bad status"] for _, rid in _lines(sb, pos[2:3])]
    path = _analyst_book(tmp_path / "week12.xlsx", good + missing + invalid)
    results, errors, successes = (tmp_path / n for n in ("r.xlsx", "e.xlsx", "s.csv"))

    code = main(
        [
            *_send(sb, str(path), "--yes", "-o", str(results)),
            *("--errors", str(errors), "--successes", str(successes)),
        ]
    )

    out = capsys.readouterr().out
    assert code == 1
    assert f"Rows that did not go through written to {errors}" in out
    # send -o .xlsx: the report workbook, Summary sheet and its chart included.
    book = openpyxl.load_workbook(results)
    # ... and after a read-back the Changes sheet (current -> wanted per line item).
    assert book.sheetnames == ["Summary", "Orders", "Lines", "Invalid rows", "Changes"]
    with zipfile.ZipFile(results) as archive:
        assert any(n.startswith("xl/charts/chart") for n in archive.namelist())
    # The error file: only the rows that did not go through, the analyst's own headers and
    # cells, then outcome and reason; read back as a sheet to fix and send again.
    table = pd.read_excel(errors, dtype=str, keep_default_na=False, engine="openpyxl")
    assert table.columns.tolist() == [
        "PO #",
        "Recipe Set",
        "New Status",
        "Notes",
        "outcome",
        "reason",
        "row in the sheet",
    ]
    n = len(invalid)
    assert table["outcome"].tolist() == ["not_found"] + ["invalid"] * n
    assert table["New Status"].tolist() == ["complete"] + ["nope"] * n  # as the sheet had them
    assert table["Notes"].tolist() == ["typo?"] + ["bad status"] * n
    assert "not a workflow status" in table["reason"].iat[1]
    assert table["row in the sheet"].tolist() == [str(3 + len(good) + i) for i in range(n + 1)]
    again = read_updates(errors)
    assert again["purchaseOrderNumber"].tolist() == ["NO-SUCH-PO"] + [pos[2]] * n
    done = read_updates(successes)
    assert sorted(set(done["purchaseOrderNumber"])) == sorted(pos[:2])
    assert set(done["outcome"]) == {"updated"}
    assert done["workflowStatus"].tolist() == ["Complete"] * len(good)

    # Later, from the journal alone (another day, another machine's copy of the runs
    # folder): `report 1 --errors` names the columns as the analyst did and keeps the notes.
    later = tmp_path / "later.xlsx"
    assert main(["report", "1", "--errors", str(later)]) == 0
    kept = pd.read_excel(later, dtype=str, keep_default_na=False, engine="openpyxl")
    assert kept.columns.tolist()[:4] == ["PO #", "Recipe Set", "New Status", "Notes"]
    assert kept["outcome"].tolist() == ["not_found"] + ["invalid"] * n
    assert kept["Notes"].tolist() == ["typo?"] + ["bad status"] * n


def test_report_of_a_journaled_run_writes_its_error_file(
    sb: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    pos = order_numbers(sb, 5)
    stop = threading.Event()
    results = send(
        sheet(sb, pos), sb, runs, workers=1, stop=stop, observers=[StopAfter(2, stop.set)]
    )
    run_id = str(results.attrs["run_id"])
    errors, successes = tmp_path / "errors.csv", tmp_path / "done.xlsx"

    code = main(
        [
            *("report", run_id, "--runs-dir", str(runs)),
            *("--errors", str(errors), "--successes", str(successes)),
        ]
    )

    assert code == 0
    left = read_updates(errors)
    assert set(left["outcome"]) == {"pending"}
    assert set(read_updates(successes)["outcome"]) == {"updated"}
    assert set(left["purchaseOrderNumber"]) | set(read_updates(successes)["purchaseOrderNumber"])
    assert len(set(left["purchaseOrderNumber"])) == 3


# -- dry run without a token --------------------------------------------------------------


def test_dry_run_without_a_token_validates_and_plans(
    tmp_path: Path, env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SPECTRUM_API_TOKEN")
    path = _analyst_book(tmp_path / "week12.xlsx", [["P1", "AAAA1111", "Complete", ""]])

    code = main(["send", str(path), "--dry-run", "--base-url", "https://spectrum.example.com"])

    out = capsys.readouterr().out
    assert code == 0
    assert "Requests:        1" in out
    assert "No API token" in out and "SPECTRUM_API_TOKEN" in out
    # Sending for real still needs the token.
    assert main(["send", str(path), "--yes", "--base-url", "https://spectrum.example.com"]) == 2
    assert "no API token" in capsys.readouterr().err


# -- busy ports ---------------------------------------------------------------------------


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield int(held.getsockname()[1])


@pytest.mark.parametrize("command", ["sandbox", "app"])
def test_a_busy_port_names_the_port_and_the_option(
    command: str, busy_port: int, tmp_path: Path, env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [command, "--port", str(busy_port)]
    if command == "sandbox":
        args += ["--store", str(tmp_path / "sb.sqlite3")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"port {busy_port} on 127.0.0.1 is already in use" in err
    assert "--port" in err


# -- resume confirms like send ------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_resume_confirms_off_a_terminal_needs_yes(
    sandbox: SandboxServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SPECTRUM_API_TOKEN", sandbox.token)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    runs = tmp_path / "runs"
    stop = threading.Event()
    send(
        sheet(sandbox, order_numbers(sandbox, 4)),
        sandbox,
        runs,
        workers=1,
        stop=stop,
        observers=[StopAfter(1, stop.set)],
    )
    sandbox.clear_requests()
    resume = ["resume", "--base-url", sandbox.base_url, "--runs-dir", str(runs)]

    assert main(resume) == 2
    out, err = capsys.readouterr()
    assert f"About to send 3 requests for 3 orders to 127.0.0.1:{sandbox.port}" in out
    assert "add --yes" in err
    assert status_requests(sandbox) == []

    monkeypatch.setattr(sys, "stdin", _Terminal("wrong-host\n"))
    assert main(resume) == 2
    assert "cancelled: nothing was sent" in capsys.readouterr().err
    assert status_requests(sandbox) == []

    monkeypatch.setattr(sys, "stdin", _Terminal(f"127.0.0.1:{sandbox.port}\n"))
    assert main(resume) == 0
    assert len(status_requests(sandbox)) == 3


def test_retry_refuses_off_a_terminal_without_yes(
    sandbox: SandboxServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SPECTRUM_API_TOKEN", sandbox.token)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    runs = tmp_path / "runs"
    rows = pd.concat([sheet(sandbox, order_numbers(sandbox, 1))]).assign(
        purchaseOrderNumber="NO-SUCH-PO"
    )
    send(rows, sandbox, runs)
    sandbox.clear_requests()

    code = main(
        [
            *("retry", "1", "--include-not-found", "--base-url", sandbox.base_url),
            *("--runs-dir", str(runs)),
        ]
    )
    assert code == 2
    out, err = capsys.readouterr()
    assert "About to send 1 requests for 1 orders" in out
    assert "add --yes" in err
    assert status_requests(sandbox) == []


# -- the bundled sandbox is one environment -----------------------------------------------


def test_the_sandbox_client_is_keyed_sandbox_whatever_its_port(tmp_path: Path) -> None:
    sandbox_env = load_environments(None)["sandbox"]
    store = tmp_path / "sandbox.sqlite3"
    with connect(sandbox_env, sandbox_store=store) as first:
        key, port = first.client.environment_key, first.sandbox.port if first.sandbox else None
    with connect(sandbox_env, sandbox_store=store) as second:
        assert second.client.environment_key == key == "sandbox"
        assert second.client.base_url != f"http://127.0.0.1:{port}" or port is None
    plain = SpectrumClient("http://127.0.0.1:9", token="t")
    assert plain.environment_key == "http://127.0.0.1:9"
    assert SpectrumClient("http://127.0.0.1:9", token="t", environment="lab").environment_key == (
        "lab"
    )
    with pytest.raises(Exception, match="environment= must name"):
        SpectrumClient("http://127.0.0.1:9", token="t", environment=" ")


def test_runs_against_the_sandbox_skip_and_resume_across_ports(tmp_path: Path) -> None:
    sandbox_env = load_environments(None)["sandbox"]
    store, runs = tmp_path / "sandbox.sqlite3", tmp_path / "runs"
    with connect(sandbox_env, sandbox_store=store) as first:
        assert first.sandbox is not None
        rows = sheet(first.sandbox, order_numbers(first.sandbox, 2))
        send_updates(rows, first.client, runs_dir=runs, progress=False, max_per_minute=FAST)
    with connect(sandbox_env, sandbox_store=store) as second:
        again = send_updates(
            rows, second.client, runs_dir=runs, progress=False, max_per_minute=FAST
        )
    assert set(again["outcome"]) == {"skipped"}
    with Journal(runs) as journal:
        assert len(journal.applied("sandbox"))
