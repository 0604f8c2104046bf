"""``spectrum-tools send`` and ``demo``: exit codes, confirmation, output files, Ctrl-C, secrecy.

Most tests call :func:`spectrum_tools.cli.main` in-process (stdout/stderr via ``capsys``,
the token in a monkeypatched ``SPECTRUM_API_TOKEN``) against a real sandbox; the Ctrl-C and
demo tests run the installed ``spectrum-tools`` console script as a real subprocess. Every
token is a distinctive random value, and each test checks it appears in no output and no
file the run wrote (workbooks are unzipped for that).
"""

from __future__ import annotations

import io
import os
import secrets
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from support.sandboxes import MakeSandbox

from spectrum_tools.cli import main
from spectrum_tools.sandbox import SandboxServer

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
NEW = "delivered"  # no line item of the sample store has this status yet
FAST = "60000"  # --max-per-minute for tests that are not about pacing
CLI = Path(sys.executable).with_name("spectrum-tools")


# -- helpers -------------------------------------------------------------------------------


@pytest.fixture
def token() -> str:
    return "tok-" + secrets.token_hex(16)


@pytest.fixture
def env(token: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The CLI's environment: a distinctive token, no base URL, cwd and HOME in tmp_path."""
    monkeypatch.setenv("SPECTRUM_API_TOKEN", token)
    for name in ("SPECTRUM_BASE_URL", "SPECTRUM_ENVIRONMENTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a terminal
    return token


@pytest.fixture
def sb(make_sandbox: MakeSandbox, env: str) -> SandboxServer:
    """A sandbox that accepts the CLI's token."""
    return make_sandbox(token=env)


def _rows(sandbox: SandboxServer, pos: list[str], status: str = NEW) -> list[list[str]]:
    frame = sandbox.store.line_statuses()
    return [
        [po, rid, status]
        for po in pos
        for rid in frame.loc[frame["purchaseOrderNumber"] == po, "recipeSetId"]
    ]


def _orders(sandbox: SandboxServer, n: int) -> list[str]:
    return list(dict.fromkeys(sandbox.store.line_statuses()["purchaseOrderNumber"]))[:n]


def _csv(path: Path, rows: list[list[str]], notes: list[str] | None = None) -> Path:
    """An analyst's sheet (messy headers, ';'-separated), every cell text."""
    header = ["PO Number", "Recipe Set ID", "New Status"]
    frame = pd.DataFrame(rows, columns=header, dtype=str)
    if notes is not None:
        frame["Notes"] = notes
    frame.to_csv(path, sep=";", index=False)
    return path


def _statuses(sandbox: SandboxServer) -> dict[tuple[str, str], str]:
    frame = sandbox.store.line_statuses()
    return {
        (po, rid): s
        for po, rid, s in frame[
            ["purchaseOrderNumber", "recipeSetId", "workflowStatus"]
        ].itertuples(index=False, name=None)
    }


def _sent(sandbox: SandboxServer) -> int:
    return sum(1 for r in sandbox.requests() if r["endpoint"] == "order-status")


def _send(sandbox: SandboxServer, *args: str) -> list[str]:
    return ["send", *args, "--base-url", sandbox.base_url, "--max-per-minute", FAST]


def _assert_clean(token: str, out: str, err: str, folder: Path) -> None:
    """No traceback on stderr; the token nowhere in the output or any file under ``folder``."""
    assert "Traceback" not in err
    assert token not in out
    assert token not in err
    needle = token.encode()
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        assert needle not in data, path
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as book:
                for member in book.namelist():
                    assert needle not in book.read(member), (path, member)


def _one_line(err: str) -> str:
    """The last non-progress line of stderr (progress bars redraw with carriage returns)."""
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("Sending")]
    assert lines, err
    return lines[-1]


# -- exit codes ------------------------------------------------------------------------------


def test_every_order_updated_exits_0(
    sb: SandboxServer, env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pos = _orders(sb, 3)
    sheet = _csv(tmp_path / "updates.csv", _rows(sb, pos))

    code = main(_send(sb, str(sheet), "--yes"))

    out, err = capsys.readouterr()
    assert code == 0
    assert "Outcomes:" in out
    assert "updated" in out and "3" in out.split("Outcomes:")[1]
    assert "Sending" in err  # the progress bar is on stderr
    assert _sent(sb) == 3
    assert all(s == NEW for (po, _), s in _statuses(sb).items() if po in pos)
    _assert_clean(env, out, err, tmp_path)


def test_some_orders_not_updated_exits_1(
    sb: SandboxServer, env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, missing, invalid = _orders(sb, 3)
    rows = _rows(sb, [good, missing, invalid])
    rows[[r[0] for r in rows].index(missing)][1] = "NOPE0001"
    rows[[r[0] for r in rows].index(invalid)][2] = "shipped"
    sheet = _csv(tmp_path / "updates.csv", rows)

    code = main(_send(sb, str(sheet), "--yes"))

    out, err = capsys.readouterr()
    assert code == 1
    summary = out.split("Outcomes:")[1]
    assert "not_found" in summary and "invalid" in summary and "updated" in summary
    # The invalid order was held back; the read showed Spectrum lacks NOPE0001, so the
    # not_found order was decided without a request: only the good order was sent.
    assert _sent(sb) == 1
    assert [r["purchaseOrderNumber"] for r in sb.requests() if r["endpoint"] == "order-status"] == [
        good
    ]
    _assert_clean(env, out, err, tmp_path)


def test_retry_without_missing_flag_applies_the_rest(
    sb: SandboxServer, env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    [po] = _orders(sb, 1)
    rows = _rows(sb, [po])
    rows[0][1] = "NOPE0001"
    sheet = _csv(tmp_path / "updates.csv", rows)
    out_file = tmp_path / "results.csv"

    code = main(
        _send(sb, str(sheet), "--yes", "--retry-without-missing", "--output", str(out_file))
    )

    out, err = capsys.readouterr()
    assert code == 1  # partial is not "every order updated"
    results = pd.read_csv(out_file, dtype=str, keep_default_na=False)
    assert results["outcome"].tolist() == ["partial"]
    assert results["missing_ids"].tolist() == ["NOPE0001"]
    after = _statuses(sb)
    assert all(after[(po, rid)] == NEW for _, rid, _ in rows[1:])
    _assert_clean(env, out, err, tmp_path)


def test_send_partial_orders_flag_sends_the_valid_rows(
    sb: SandboxServer, env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    [po] = _orders(sb, 1)
    rows = _rows(sb, [po])
    rows[0][2] = "shipped"
    sheet = _csv(tmp_path / "updates.csv", rows)
    before = _statuses(sb)

    main(_send(sb, str(sheet), "--yes", "--send-partial-orders"))

    capsys.readouterr()
    after = _statuses(sb)
    assert after[(po, rows[0][1])] == before[(po, rows[0][1])]
    assert all(after[(po, rid)] == NEW for _, rid, _ in rows[1:])


def test_send_partial_orders_with_an_unsent_invalid_row_exits_1(
    sb: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    [po] = _orders(sb, 1)
    rows = _rows(sb, [po])
    rows[0][2] = "shipped"
    sheet = _csv(tmp_path / "updates.csv", rows)

    code = main(_send(sb, str(sheet), "--yes", "--send-partial-orders"))

    capsys.readouterr()
    assert code == 1


@pytest.mark.badinput
@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--workers", "many"],
        ["--max-per-minute", "0"],
        ["--workers", "0"],
        ["--no-such-flag"],
    ],
    ids=["no-file", "workers-not-a-number", "pace-zero", "workers-zero", "unknown-flag"],
)
def test_usage_errors_exit_2_with_one_line_and_send_nothing(
    sb: SandboxServer,
    env: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
) -> None:
    sheet = _csv(tmp_path / "updates.csv", _rows(sb, _orders(sb, 1)))
    argv = ["send", "--base-url", sb.base_url, "--yes", *args]
    if args:
        argv.insert(1, str(sheet))

    code = main(argv)

    out, err = capsys.readouterr()
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert _sent(sb) == 0
    _assert_clean(env, out, err, tmp_path)


@pytest.mark.badinput
@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("missing.csv", None, "no such file"),
        ("broken.xlsx", b"PK\x03\x04 not really a workbook", "broken.xlsx"),
        ("empty.csv", b"", "empty"),
        ("folder", "dir", "folder"),
        ("nocolumns.csv", b"a;b;c\n1;2;3\n", "nocolumns.csv"),
    ],
)
def test_unreadable_input_exits_2_naming_the_file(
    sb: SandboxServer,
    env: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: bytes | str | None,
    expected: str,
) -> None:
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)

    code = main(_send(sb, str(path), "--yes"))

    out, err = capsys.readouterr()
    assert code == 2
    assert expected in _one_line(err)
    assert err.startswith("error:")
    assert _sent(sb) == 0
    _assert_clean(env, out, err, tmp_path)


@pytest.mark.security
def test_missing_token_exits_2(
    sb: SandboxServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SPECTRUM_API_TOKEN")
    sheet = _csv(tmp_path / "updates.csv", _rows(sb, _orders(sb, 1)))

    code = main(_send(sb, str(sheet), "--yes"))

    _, err = capsys.readouterr()
    assert code == 2
    assert "SPECTRUM_API_TOKEN" in err
    assert "Traceback" not in err
    assert _sent(sb) == 0


@pytest.mark.security
@pytest.mark.parametrize("url", ["http://localhost.evil.com", "http://10.0.0.1:8765"])
def test_plain_http_to_another_host_exits_2_before_reading_or_sending(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str
) -> None:
    sheet = _csv(tmp_path / "updates.csv", [["PO1", "AAAA1111", NEW]])

    code = main(["send", str(sheet), "--base-url", url, "--yes"])

    out, err = capsys.readouterr()
    assert code == 2
    assert "http://" in err and "https://" in err
    _assert_clean(env, out, err, tmp_path)


@pytest.mark.fault
@pytest.mark.security
@pytest.mark.parametrize("code", [403, 401])
@pytest.mark.parametrize("read_back", [True, False], ids=["read-refused", "no-read-back"])
def test_refused_token_stops_the_run_exit_2_with_results_pending(
    make_sandbox: MakeSandbox,
    env: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    code: int,
    read_back: bool,
) -> None:
    # With read-back (the default) the first read is refused; without, the first updates.
    sandbox = make_sandbox(token="the-right-token", auth_failure_status=code)  # env is wrong
    pos = _orders(sandbox, 6)
    sheet = _csv(tmp_path / "updates.csv", _rows(sandbox, pos))
    out_file = tmp_path / "results.xlsx"
    before = _statuses(sandbox)
    flags = () if read_back else ("--no-read-back",)

    exit_code = main(
        _send(sandbox, str(sheet), "--yes", "--workers", "2", "--output", str(out_file), *flags)
    )

    out, err = capsys.readouterr()
    assert exit_code == 2
    message = _one_line(err)
    assert message.startswith("stopped:")
    assert "token" in message.lower() and "rate limit" in message.lower()
    orders = pd.read_excel(out_file, sheet_name="Orders", dtype=str, engine="calamine")
    assert orders["purchaseOrderNumber"].tolist() == pos
    assert set(orders["outcome"]) == {"pending"}
    assert _sent(sandbox) == 0 if read_back else _sent(sandbox) <= 2
    assert _statuses(sandbox) == before
    _assert_clean(env, out, err, tmp_path)


# -- confirmation ----------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_without_yes_off_a_terminal_it_refuses_and_sends_nothing(
    sb: SandboxServer, env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sheet = _csv(tmp_path / "updates.csv", _rows(sb, _orders(sb, 2)))
    before = _statuses(sb)

    code = main(_send(sb, str(sheet)))

    out, err = capsys.readouterr()
    assert code == 2
    assert "--yes" in _one_line(err)
    assert sb.base_url.removeprefix("http://") in out  # the host was shown
    assert _sent(sb) == 0
    assert _statuses(sb) == before
    _assert_clean(env, out, err, tmp_path)


@pytest.mark.parametrize(("typed", "expected"), [("host", 0), ("no", 2)])
def test_on_a_terminal_typing_the_host_confirms(
    sb: SandboxServer,
    env: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    typed: str,
    expected: int,
) -> None:
    host = sb.base_url.removeprefix("http://")
    monkeypatch.setattr(sys, "stdin", _Terminal((host if typed == "host" else typed) + "\n"))
    sheet = _csv(tmp_path / "updates.csv", _rows(sb, _orders(sb, 2)))

    code = main(_send(sb, str(sheet)))

    out, err = capsys.readouterr()
    assert code == expected
    assert "2 requests" in out  # what is about to happen was shown first
    assert _sent(sb) == (2 if expected == 0 else 0)
    _assert_clean(env, out, err, tmp_path)


def test_dry_run_sends_nothing_needs_no_confirmation_and_exits_0(
    sb: SandboxServer, env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pos = _orders(sb, 3)
    sheet = _csv(tmp_path / "updates.csv", _rows(sb, pos))
    out_file = tmp_path / "plan.csv"
    before = _statuses(sb)

    code = main(_send(sb, str(sheet), "--dry-run", "--output", str(out_file)))  # no --yes

    out, err = capsys.readouterr()
    assert code == 0
    assert _sent(sb) == 0  # it reads the current state, and sends no status
    assert sb.requests()
    assert {r["endpoint"] for r in sb.requests()} <= {"orders-search", "order-number"}
    assert _statuses(sb) == before
    results = pd.read_csv(out_file, dtype=str, keep_default_na=False)
    assert results["outcome"].tolist() == ["dry_run"] * 3
    _assert_clean(env, out, err, tmp_path)

    # Without read-back a dry run makes no request at all.
    sb.clear_requests()
    code = main(_send(sb, str(sheet), "--dry-run", "--no-read-back", "--output", str(out_file)))
    out, err = capsys.readouterr()
    assert code == 0
    assert sb.requests() == []
    assert _statuses(sb) == before
    results = pd.read_csv(out_file, dtype=str, keep_default_na=False)
    assert results["outcome"].tolist() == ["dry_run"] * 3
    _assert_clean(env, out, err, tmp_path)


# -- output files ----------------------------------------------------------------------------


def test_output_xlsx_has_orders_and_lines_with_text_ids_and_no_formulas(
    sb: SandboxServer, env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Leading zeros (PO 00012345, id 00123456), an all-digit id, a missing id, an invalid row,
    # and notes Excel would run as formulas.
    po_digits = "HA-US-DEV00011112"  # holds id 12345678
    po_zero_id = "HA-US-DEV00011107"  # holds id 00123456
    rows = _rows(sb, ["00012345", po_digits, po_zero_id])
    rows.append(["HA-US-DEV00011101", "NOPE0001", NEW])
    rows.append(["HA-US-DEV00011102", "ONCHR9YG", "=shipped()"])
    dangerous = ["=1+2", "+SUM(A1:A2)", "-3+4", "@cmd", '=HYPERLINK("http://x","y")']
    notes = [dangerous[i % len(dangerous)] for i in range(len(rows))]
    sheet = _csv(tmp_path / "updates.csv", rows, notes)
    out_file = tmp_path / "out" / "results.xlsx"

    code = main(_send(sb, str(sheet), "--yes", "--output", str(out_file)))

    out, err = capsys.readouterr()
    assert code == 1
    book = openpyxl.load_workbook(out_file)
    # As `report`, and after a read-back the Changes sheet (current -> wanted per line item).
    assert book.sheetnames == ["Summary", "Orders", "Lines", "Invalid rows", "Changes"]
    for ws in book.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)

    orders = book["Orders"]
    header = [c.value for c in orders[1]]
    assert header[: len(RESULT_COLUMNS)] == RESULT_COLUMNS
    po_cells = [row[0] for row in orders.iter_rows(min_row=2)]
    assert "00012345" in [c.value for c in po_cells]
    assert all(c.data_type == "s" for c in po_cells)
    outcome = {r[0].value: r[1].value for r in orders.iter_rows(min_row=2)}
    assert outcome["00012345"] == "updated"
    assert outcome["HA-US-DEV00011101"] == "not_found"
    assert outcome["HA-US-DEV00011102"] == "invalid"

    lines = book["Lines"]
    lheader = [c.value for c in lines[1]]
    id_col = lheader.index("recipeSetReadableId")
    po_col = lheader.index("purchaseOrderNumber")
    notes_col = lheader.index("Notes")
    body = list(lines.iter_rows(min_row=2))
    assert len(body) == len(rows)  # every input row
    ids = [r[id_col] for r in body]
    assert {"00123456", "12345678"} <= {c.value for c in ids}
    assert all(c.data_type == "s" for c in ids)
    assert all(r[po_col].data_type == "s" for r in body)
    assert [r[notes_col].value for r in body] == notes  # shown as typed, never run
    assert all(r[notes_col].data_type == "s" for r in body)

    changes = book["Changes"]
    cheader = [c.value for c in changes[1]]
    cbody = list(changes.iter_rows(min_row=2))
    assert {"00123456", "12345678"} <= {
        r[cheader.index("recipeSetReadableId")].value for r in cbody
    }
    assert all(r[cheader.index("recipeSetReadableId")].data_type == "s" for r in cbody)
    assert all(r[cheader.index("purchaseOrderNumber")].data_type == "s" for r in cbody)
    _assert_clean(env, out, err, tmp_path)


def test_output_csv_has_the_results_columns_and_keeps_ids_as_text(
    sb: SandboxServer, env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pos = ["00012345", "HA-US-DEV00011101"]
    rows = _rows(sb, pos)
    rows.append(["HA-US-DEV00011102", "ONCHR9YG", "shipped"])
    sheet = _csv(tmp_path / "updates.csv", rows)
    out_file = tmp_path / "results.csv"

    code = main(_send(sb, str(sheet), "--yes", "--output", str(out_file)))

    out, err = capsys.readouterr()
    assert code == 1
    assert f"Results written to {out_file}" in out
    results = pd.read_csv(out_file, dtype=str, keep_default_na=False)
    assert list(results.columns[: len(RESULT_COLUMNS)]) == RESULT_COLUMNS
    assert results["purchaseOrderNumber"].tolist() == [*pos, "HA-US-DEV00011102"]
    assert results["outcome"].tolist() == ["updated", "updated", "invalid"]
    assert results["source_rows"].iloc[0] == ",".join(
        str(i + 2) for i in range(len(_rows(sb, ["00012345"])))
    )
    _assert_clean(env, out, err, tmp_path)


@pytest.mark.badinput
def test_unsupported_output_extension_is_refused_before_sending(
    sb: SandboxServer, env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sheet = _csv(tmp_path / "updates.csv", _rows(sb, _orders(sb, 2)))

    code = main(_send(sb, str(sheet), "--yes", "--output", str(tmp_path / "results.json")))

    capsys.readouterr()
    assert code == 2
    assert _sent(sb) == 0


@pytest.mark.badinput
def test_unwritable_output_is_a_one_line_error_not_a_traceback(
    sb: SandboxServer, env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sheet = _csv(tmp_path / "updates.csv", _rows(sb, _orders(sb, 2)))
    (tmp_path / "afile").write_text("x")

    code = main(_send(sb, str(sheet), "--yes", "--output", str(tmp_path / "afile" / "r.csv")))

    _, err = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in err


# -- real subprocesses -----------------------------------------------------------------------


def _subprocess_env(token: str, home: Path) -> dict[str, str]:
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith("SPECTRUM_") and k != "PYTHONPATH"
    }
    return {**environ, "SPECTRUM_API_TOKEN": token, "HOME": str(home)}


def _interrupt_a_run(
    sandbox: SandboxServer,
    token: str,
    tmp_path: Path,
    pos: list[str],
    after: int,
    workers: int = 1,
) -> tuple[subprocess.Popen[str], str, str, Path]:
    """Run ``spectrum-tools send`` and send it SIGINT once ``after`` requests reached the
    sandbox (so request ``after`` is in flight). Returns the finished process.

    Ctrl-C during the status updates themselves: the current state is not read first
    (``--no-read-back``), so every request the sandbox logs is a status update.
    """
    sheet = _csv(tmp_path / "updates.csv", _rows(sandbox, pos))
    out_file = tmp_path / "results.xlsx"
    argv = _send(
        sandbox,
        str(sheet),
        "--yes",
        "--workers",
        str(workers),
        "--output",
        str(out_file),
        "--no-read-back",
    )
    proc = subprocess.Popen(
        [str(CLI), *argv],
        cwd=tmp_path,
        env=_subprocess_env(token, tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while _sent(sandbox) < after and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    time.sleep(sandbox.settings.latency_s + 0.2)  # let the in-flight request land
    return proc, out, err, out_file


@pytest.mark.fault
@pytest.mark.timeout(60)
def test_ctrl_c_exits_130_and_writes_results_with_the_rest_pending(
    make_sandbox: MakeSandbox, token: str, tmp_path: Path
) -> None:
    sandbox = make_sandbox(token=token, latency_s=1.0)
    pos = _orders(sandbox, 8)
    before = _statuses(sandbox)

    proc, out, err, out_file = _interrupt_a_run(sandbox, token, tmp_path, pos, after=2)

    assert proc.returncode == 130, err
    assert "interrupted" in _one_line(err)
    orders = pd.read_excel(out_file, sheet_name="Orders", dtype=str, engine="calamine")
    assert orders["purchaseOrderNumber"].tolist() == pos  # every order, exactly once
    outcomes = dict(zip(orders["purchaseOrderNumber"], orders["outcome"], strict=True))
    sent = {r["purchaseOrderNumber"] for r in sandbox.requests()}
    assert len(sent) == 2  # nothing new started after Ctrl-C
    now = _statuses(sandbox)
    for po in pos:
        if po not in sent:
            assert outcomes[po] == "pending"
            assert all(now[k] == before[k] for k in now if k[0] == po)
    assert outcomes[pos[0]] == "updated"
    lines = pd.read_excel(out_file, sheet_name="Lines", dtype=str, engine="calamine")
    assert len(lines) == len(_rows(sandbox, pos))
    _assert_clean(token, out, err, tmp_path)


@pytest.mark.fault
@pytest.mark.timeout(60)
def test_ctrl_c_lets_in_flight_orders_finish_and_reports_them_updated(
    make_sandbox: MakeSandbox, token: str, tmp_path: Path
) -> None:
    sandbox = make_sandbox(token=token, latency_s=0.5)
    pos = _orders(sandbox, 10)

    proc, out, err, out_file = _interrupt_a_run(sandbox, token, tmp_path, pos, after=3, workers=2)

    assert proc.returncode == 130, err
    sent = [r["purchaseOrderNumber"] for r in sandbox.requests()]
    assert 3 <= len(sent) <= 4  # the in-flight ones, nothing new
    now = _statuses(sandbox)
    orders = pd.read_excel(out_file, sheet_name="Orders", dtype=str, engine="calamine")
    outcomes = dict(zip(orders["purchaseOrderNumber"], orders["outcome"], strict=True))
    for po in pos:
        if po in sent:  # applied by Spectrum, so reported updated
            assert all(now[k] == NEW for k in now if k[0] == po)
            assert outcomes[po] == "updated"
        else:
            assert outcomes[po] == "pending"
    _assert_clean(token, out, err, tmp_path)


def test_ctrl_c_at_the_confirmation_prompt_exits_130_and_sends_nothing(
    sb: SandboxServer,
    env: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class _CtrlC(_Terminal):
        def readline(self, *args: object) -> str:
            raise KeyboardInterrupt

    monkeypatch.setattr(sys, "stdin", _CtrlC())
    sheet = _csv(tmp_path / "updates.csv", _rows(sb, _orders(sb, 2)))

    code = main(_send(sb, str(sheet)))

    out, err = capsys.readouterr()
    assert code == 130
    assert "interrupted" in err
    assert _sent(sb) == 0
    _assert_clean(env, out, err, tmp_path)


@pytest.mark.timeout(120)
def test_demo_runs_end_to_end_and_writes_a_results_workbook(tmp_path: Path) -> None:
    token = "tok-" + secrets.token_hex(16)
    out_dir = tmp_path / "demo"

    proc = subprocess.run(
        [str(CLI), "demo", "--output-dir", str(out_dir)],
        cwd=tmp_path,
        env=_subprocess_env(token, tmp_path),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "Outcomes:" in proc.stdout
    book = openpyxl.load_workbook(out_dir / "results.xlsx")
    assert book.sheetnames[:3] == ["Summary", "Orders", "Lines"]
    orders = pd.read_excel(
        out_dir / "results.xlsx", sheet_name="Orders", dtype=str, engine="calamine"
    )
    assert "updated" in set(orders["outcome"])
    assert "invalid" in set(orders["outcome"])  # the sample sheet's messy rows
    assert not (orders["outcome"] == "pending").any()
    lines = pd.read_excel(
        out_dir / "results.xlsx", sheet_name="Lines", dtype=str, engine="calamine"
    )
    # Every data row of the sample sheet under its spreadsheet row number (2..213); the
    # fully blank row 118 carries nothing to report.
    rows = lines["source_row"].astype(int).tolist()
    assert rows == [r for r in range(2, 214) if r != 118]
