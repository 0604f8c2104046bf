"""Security: the token stays secret everywhere, plain http only to loopback, no redirect is
followed, nothing exported runs in Excel, and untrusted workbooks are read with limits.

The centre piece is a hypothesis property: for random tokens (printable, with quotes,
backslashes, percent signs, braces, ``=``, ``@``...), a whole working session -
library sends (with 200/409/500 answers and a server that echoes the token back), a run
stopped by 403, errors of every kind, the CLI's send / report / reconcile, results
written as CSV and XLSX, reports, the run journal, the bulk-update widget app and every
log record (urllib3 and uvicorn included, at DEBUG) - never shows the token. Every file
written is searched byte by byte (zip members inflated). Each token is built around an
alphanumeric core that no escaping (JSON, XML, CSV, URL) changes, and that core is
searched too, so an escaped copy of the token cannot hide.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import string
import traceback
import zipfile
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import requests
import urllib3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.faultservers import (
    FaultServer,
    Hit,
    Reply,
    closed_port,
    error_body,
    fault_servers,
    ok,
    zip_bomb,
)

from spectrum_tools import (
    ConfigError,
    Journal,
    RunStoppedError,
    SpectrumClient,
    SpectrumError,
    SpreadsheetError,
    TransportError,
    export_csv,
    line_results,
    list_sheets,
    plan_updates,
    read_updates,
    reconcile,
    send_updates,
    validate_updates,
    write_reconciliation,
    write_report,
    write_table,
)
from spectrum_tools.cli import main
from spectrum_tools.client import check_base_url
from spectrum_tools.sandbox import SandboxServer, SandboxSettings, SandboxStore
from spectrum_tools.sheets import write_workbook

pytestmark = [pytest.mark.security, pytest.mark.timeout(120)]

ALNUM = string.ascii_letters + string.digits
TRICKY = ALNUM + "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ "
LOGGERS = (
    "",
    "urllib3",
    "requests",
    "spectrum_tools",
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
)


# --------------------------------------------------------------------------- helpers


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
        self.lines.append(repr(record.args))


@contextlib.contextmanager
def debug_logs() -> Iterator[list[str]]:
    """Every log record of the session at DEBUG, formatted (exceptions included)."""
    handler = _Collect()
    saved = {}
    for name in LOGGERS:
        logger = logging.getLogger(name)
        saved[name] = logger.level
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
    try:
        yield handler.lines
    finally:
        for name in LOGGERS:
            logging.getLogger(name).removeHandler(handler)
            logging.getLogger(name).setLevel(saved[name])


def file_texts(root: Path) -> Iterator[tuple[str, bytes]]:
    """Every file under ``root`` as bytes, and every member of every zip (xlsx) inflated."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        yield str(path), data
        if data.startswith(b"PK\x03\x04"):
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for member in archive.namelist():
                    yield f"{path}!{member}", archive.read(member)


def assert_secret(token: str, core: str, texts: dict[str, str], root: Path) -> None:
    for where, text in texts.items():
        assert token not in text, f"the token is in {where}"
        assert core not in text, f"the token (escaped) is in {where}"
    needles = {token.encode(), core.encode(), token.encode("utf-16-le")}
    for where, data in file_texts(root):
        for needle in needles:
            assert needle not in data, f"the token is in {where}"


def cli(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue() + err.getvalue()


def sheet_for(sandbox: SandboxServer, path: Path) -> tuple[pd.DataFrame, str]:
    """A sheet with updated, not found, failing (fail_first) and invalid orders."""
    lines = sandbox.store.line_statuses()
    orders = lines["purchaseOrderNumber"].drop_duplicates().tolist()
    first = lines.loc[lines["purchaseOrderNumber"].isin(orders[:3])]
    rows = [
        (po, rid, "completed")
        for po, rid in zip(first["purchaseOrderNumber"], first["recipeSetId"], strict=True)
    ]
    rows += [(orders[3], "NOPE0000", "approved")]  # 409 / not found
    rows += [("PO-INVALID", "AAAA1111", "shipped")]  # invalid status
    frame = pd.DataFrame(rows, columns=["PO Number", "Recipe Set ID", "New Status"])
    frame["Notes"] = '=HYPERLINK("http://x")'
    frame.to_csv(path, index=False)
    return frame, orders[2]


# The core ends in a fixed tail so that no word the tool prints can be the whole core
# (hypothesis is good at finding "InsecureURLError" otherwise).
tokens = st.tuples(
    st.text(TRICKY, max_size=8),
    st.text(ALNUM, min_size=6, max_size=16).map(lambda c: c + "Qz93Xv"),
    st.text(TRICKY, max_size=8),
).map(lambda parts: ((parts[0] + parts[1] + parts[2]).strip(), parts[1]))


# --------------------------------------------------------------------------- the token


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(secret=tokens)
def test_token_never_appears_in_any_output(
    secret: tuple[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    token, core = secret
    root = tmp_path_factory.mktemp("leak")
    runs, out = root / "runs", root / "out"
    out.mkdir()
    texts: dict[str, str] = {}
    previous_cwd, previous_token = Path.cwd(), os.environ.get("SPECTRUM_API_TOKEN")
    sandbox = SandboxServer(
        root / "sandbox.sqlite3", settings=SandboxSettings(rate_limit=None), token=token
    ).start()

    def echo(hit: Hit) -> Reply:  # a gateway that repeats the token header back
        said = f"token {hit.token} was given"
        if hit.n % 3 == 0:
            return Reply(200, {**ok(hit).body, "details": f"Updated {said}"})
        if hit.n % 3 == 1:
            return Reply(409, {"status": "Error", "details": f"Unable to find {said}"})
        return Reply(500, {"status": "Error", "details": f"Error {said}"})

    try:
        with (
            debug_logs() as logs,
            fault_servers(
                echo, lambda h: Reply(403, {"status": "Error", "details": f"no {h.token}"})
            ) as (echoer, forbidder),
        ):
            sheet = root / "sheet.csv"
            _, failing = sheet_for(sandbox, sheet)
            sandbox.settings.fail_first = {failing: 1}

            # The library, against the sandbox.
            client = SpectrumClient(sandbox.base_url, token=token)
            plan = plan_updates(validate_updates(read_updates(sheet)))
            results = send_updates(
                sheet,
                client,
                runs_dir=runs,
                max_attempts=1,
                max_per_minute=60_000,
                progress=False,
                retry_without_missing=True,
            )
            run_id = results.attrs["run_id"]
            texts |= {
                "repr(client)": repr(client) + str(client) + repr(vars(client)),
                "repr(plan)": repr(plan) + plan.preview().to_string(),
                "results": repr(results) + results.to_string() + json.dumps(results.attrs),
                "lines": line_results(results, plan).to_string(),
            }
            write_table(results, out / "results.csv")
            write_table(results, out / "results.xlsx")
            write_workbook(out / "both.xlsx", {"Orders": results, "Lines": results})
            write_report(run_id, out / "report.xlsx", runs_dir=runs)
            export_csv(run_id, out / "report-csv", runs_dir=runs)
            with Journal.existing(runs) as journal:
                record = journal.load_run(run_id)
                texts["journal"] = (
                    repr(journal) + repr(record) + json.dumps(record.meta, default=str)
                )
                texts["journal runs"] = journal.runs().to_string()
            texts["reconcile"] = reconcile(sheet, client, max_per_minute=60_000).to_string()

            # A gateway echoing the token, and one refusing it.
            echoed = send_updates(
                sheet,
                SpectrumClient(echoer.base_url, token=token),
                runs_dir=runs,
                max_attempts=1,
                max_per_minute=60_000,
                progress=False,
                workers=1,
            )
            texts["echoed results"] = echoed.to_string() + echoed["details"].str.cat()
            with pytest.raises(RunStoppedError) as stopped:
                send_updates(
                    sheet,
                    SpectrumClient(forbidder.base_url, token=token),
                    runs_dir=runs,
                    max_per_minute=60_000,
                    progress=False,
                    workers=1,
                )
            write_table(stopped.value.results, out / "stopped.csv")

            # Errors of every kind.
            errors: list[BaseException] = [stopped.value]
            for make in (
                lambda: SpectrumClient(
                    f"http://127.0.0.1:{closed_port()}", token=token, timeout=(0.3, 0.3)
                ).update_status(plan.request(0).body),
                lambda: SpectrumClient(echoer.base_url, token=token).update_status(
                    plan.request(0).body
                ),
                lambda: SpectrumClient(echoer.base_url, token=token).get_order("PO1"),
                lambda: SpectrumClient("http://spectrum.example.com", token=token),
                lambda: SpectrumClient("ftp://127.0.0.1", token=token),
                lambda: SpectrumClient(sandbox.base_url, token=token + "\n"),
            ):
                with contextlib.suppress(Exception):
                    make()
                    continue
                with pytest.raises(SpectrumError) as caught:
                    make()
                errors.append(caught.value)
            texts["errors"] = "".join(
                str(e) + repr(e) + "".join(traceback.format_exception(e)) for e in errors
            )

            # The command line, from a working folder of its own.
            os.environ["SPECTRUM_API_TOKEN"] = token
            os.chdir(root)
            texts["cli send"] = cli(
                "send",
                str(sheet),
                "--base-url",
                sandbox.base_url,
                "--yes",
                "--max-per-minute",
                "60000",
                "-o",
                str(out / "cli.xlsx"),
            )[1]
            texts["cli report"] = cli("report", "1", "-o", str(out / "cli-report.xlsx"))[1]
            texts["cli reconcile"] = cli(
                "reconcile",
                str(sheet),
                "--base-url",
                sandbox.base_url,
                "-o",
                str(out / "rec.xlsx"),
                "--max-per-minute",
                "60000",
            )[1]
            texts["cli refused"] = cli(
                "send", str(sheet), "--base-url", "http://10.1.2.3", "--yes"
            )[1]
            del os.environ["SPECTRUM_API_TOKEN"]

            texts["logs"] = "\n".join(logs)
    finally:
        os.chdir(previous_cwd)
        if previous_token is None:
            os.environ.pop("SPECTRUM_API_TOKEN", None)
        else:
            os.environ["SPECTRUM_API_TOKEN"] = previous_token
        sandbox.stop()

    assert "updated" in results["outcome"].tolist()  # the session really ran
    assert echoer.hits and all(h.token == token for h in echoer.hits)
    assert_secret(token, core, texts, root)


@pytest.mark.parametrize(
    "token", ["  a\"b\\c%s{0}<x>&amp;'=@-+ Qz93XvWIDGET  ", "=cmd|' /C calc'!A0 Qz93XvWIDGET2"]
)
def test_token_typed_into_the_app_appears_in_no_widget_state_file_or_message(
    token: str, tmp_path: Path
) -> None:
    root = tmp_path
    sandbox = SandboxServer(
        root / "sandbox.sqlite3", settings=SandboxSettings(rate_limit=None), token=token.strip()
    ).start()
    try:
        sheet = root / "sheet.csv"
        sheet_for(sandbox, sheet)
        with debug_logs() as logs:
            state = _drive_app(root, sandbox, token, sheet)
    finally:
        sandbox.stop()
    core = "Qz93XvWIDGET"
    assert_secret(token.strip(), core, {"widgets": state, "logs": "\n".join(logs)}, root)


def _drive_app(root: Path, sandbox: SandboxServer, token: str, sheet: Path) -> str:
    ipywidgets = pytest.importorskip("ipywidgets")
    from spectrum_tools.widgets import BulkUpdateApp
    from spectrum_tools.widgets.environment import CUSTOM

    app = BulkUpdateApp(
        runs_dir=root / "app-runs", environments_file=None, environ={}, max_per_minute=6000
    )
    try:
        app.environment_dropdown.value = CUSTOM
        app.custom_url.value = sandbox.base_url
        app.token_input.value = token
        app.path_input.value = str(sheet)
        app.load_button.click()
        app.preview_button.click()  # Send is enabled once the preview shows this file
        app.send_button.click()  # ... and asks first
        app.confirm_input.value = app.environment_panel.selected().name
        app.yes_button.click()
        assert app.wait(30)
        assert "finished" in app.last_message, app.last_message
        state = ipywidgets.Widget.get_manager_state(drop_defaults=False)
        return json.dumps(state, default=repr) + repr(app) + app.last_message
    finally:
        app.close()


def _frames_of(exc: BaseException) -> list[traceback.FrameSummary]:
    summary = traceback.TracebackException.from_exception(exc, capture_locals=True)
    return [f for f in summary.stack if "spectrum_tools" in f.filename]


def test_traceback_with_locals_of_a_client_error_does_not_show_the_token() -> None:
    secret = "tb-locals-" + "Zq9" * 6
    client = SpectrumClient(f"http://127.0.0.1:{closed_port()}", token=secret, timeout=(0.3, 0.3))
    body = {"purchaseOrderNumber": "P1", "lineItems": []}

    with pytest.raises(TransportError) as info:
        client.update_status(body)  # type: ignore[arg-type]

    frames = _frames_of(info.value)
    assert frames, "the traceback goes through the client"
    for frame in frames:
        for name, value in (frame.locals or {}).items():
            assert secret not in value, f"{frame.name}() local {name!r} shows the token"


# --------------------------------------------------------------------------- plain http


def _connects_to(url: str) -> str:
    """The host requests would open a connection to for this base URL."""
    prepared = requests.Request("PUT", url + "/api/order/status").prepare()
    return (urllib3.util.parse_url(prepared.url).host or "").strip("[]").lower()


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


TRICKY_HOSTS = [
    "127.0.0.1.nip.io",
    "localhost.evil.example",
    "evil.example#@127.0.0.1",
    "evil.example?@127.0.0.1",
    "evil.example\\@127.0.0.1",
    "127.0.0.1:80@evil.example",
    "127.0.0.1%2f@evil.example",
    "[::1]@evil.example",
    "evil.example;@127.0.0.1",
    "127.1",
    "2130706433",
    "0x7f.0.0.1",
    "0177.0.0.1",
    "[::ffff:127.0.0.1]",
    "[::ffff:10.0.0.1]",
    "0.0.0.0",  # noqa: S104 - a host to refuse, not a bind
    "localhost.",
    "LOCALHOST",
    "l\u2070calhost",
    "\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54",
    "xn--localhost-",
    "127.0.0.1\t.evil.example",
    "127.0.0.1 .evil.example",
    "169.254.169.254",
    "[fe80::1]",
]


@pytest.mark.parametrize("host", TRICKY_HOSTS)
def test_plain_http_reaches_only_loopback(host: str) -> None:
    url = f"http://{host}"
    try:
        accepted = check_base_url(url)
    except ConfigError:
        return
    assert _is_loopback(_connects_to(accepted)), (
        f"{url!r} accepted but goes to {_connects_to(accepted)}"
    )


@settings(max_examples=60, deadline=None)
@given(
    host=st.one_of(
        st.from_regex(r"[a-z0-9.\-]{1,20}(\.[a-z]{2,5})?", fullmatch=True),
        st.from_regex(r"127(\.[0-9]{1,3}){0,3}[@:#?;/\\%.a-z0-9]{0,12}", fullmatch=True),
        st.from_regex(r"[a-z.]{0,8}[@:#?;\\][a-z0-9.:\[\]]{0,16}", fullmatch=True),
        st.text(string.printable, max_size=24),
    )
)
@pytest.mark.property
def test_any_accepted_plain_http_url_connects_to_loopback(host: str) -> None:
    url = f"http://{host}"
    try:
        accepted = check_base_url(url)
    except ConfigError:
        return
    try:
        target = _connects_to(accepted)
    except (requests.RequestException, ValueError):
        return  # requests cannot even build it: nothing is sent anywhere
    assert _is_loopback(target), f"{url!r} accepted; requests would connect to {target!r}"


@pytest.mark.parametrize("url", ["http://10.0.0.8:8765", "http://spectrum.example.com"])
@pytest.mark.parametrize("command", ["send", "reconcile"])
def test_cli_refuses_plain_http_to_other_hosts_before_reading_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, command: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPECTRUM_API_TOKEN", "tok-" + "x1" * 8)
    sheet = tmp_path / "s.csv"
    sheet.write_text("PO,Recipe Set ID,Status\nP1,AAAA1111,completed\n", encoding="utf-8")
    extra = ["--yes"] if command == "send" else []

    code, printed = cli(command, str(sheet), "--base-url", url, *extra)

    assert code == 2
    assert "refusing plain http://" in printed
    assert "x1x1x1" not in printed
    assert not (tmp_path / "spectrum-runs").exists()  # no run was even started


def test_environments_file_with_plain_http_to_another_host_is_refused(tmp_path: Path) -> None:
    from spectrum_tools.environments import load_environments

    path = tmp_path / "envs.toml"
    path.write_text('[environments.live]\nbase_url = "http://10.9.8.7"\n', encoding="utf-8")

    with pytest.raises(ConfigError, match="refusing plain http://"):
        load_environments(path)


# --------------------------------------------------------------------------- redirects


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_reads_and_searches_never_follow_a_redirect(code: int) -> None:
    secret = "redir-" + "Kp7" * 6
    with fault_servers(ok) as (target,):
        location = ((("Location", target.base_url + "/api/order/order-number/P1"),),)
        with fault_servers(lambda h: Reply(code, b"", *location)) as (redirector,):
            client = SpectrumClient(redirector.base_url, token=secret)
            for call in (
                lambda: client.get_order("P1"),
                lambda: client.search_orders("2024-01-01T00:00:00Z", ["completed"]),
            ):
                with pytest.raises(SpectrumError) as info:
                    call()
                assert "not followed" in str(info.value)
            frame = reconcile(
                pd.DataFrame(
                    {
                        "purchaseOrderNumber": ["P1"],
                        "recipeSetReadableId": ["AAAA1111"],
                        "workflowStatus": ["completed"],
                    }
                ),
                client,
                max_per_minute=60_000,
            )
        assert target.hits == []  # the token never went there
        # get_order, search_orders, then reconcile's search and its fall-back GET
        assert len(redirector.hits) == 4 and all(h.token == secret for h in redirector.hits)
    assert frame["state"].tolist() != ["match"]
    assert secret not in frame.to_string()


# --------------------------------------------------------------------------- exported cells

DANGEROUS = [
    "=1+1",
    '=HYPERLINK("http://evil.example","click")',
    "=cmd|' /C calc'!A0",
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1,1)",
    "\t=1+1",
    "\r=1+1",
    "'=1+1",
    "==1",
    "=",
]

cells = st.one_of(
    st.sampled_from(DANGEROUS),
    st.builds(lambda a, b: a + b, st.sampled_from(list("=+-@\t\r")), st.text(max_size=12)),
    st.text(min_size=1, max_size=12),
).filter(
    lambda s: not any(0xD800 <= ord(c) <= 0xDFFF or (ord(c) < 0x20 and c not in "\t\r") for c in s)
)


def _xlsx_formulas(path: Path) -> list[str]:
    book = openpyxl.load_workbook(path)
    found = []
    for ws in book.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if cell.data_type == "f" or (
                    isinstance(cell.value, str)
                    and cell.value.startswith("=")
                    and cell.data_type != "s"
                ):
                    found.append(f"{path.name}!{ws.title}!{cell.coordinate}={cell.value!r}")
    return found


def _csv_risky(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8-sig")
    return [
        f"{path.name}: {cell!r}"
        for row in csv.reader(io.StringIO(text))
        for cell in row
        if cell[:1] in ("=", "+", "-", "@", "\t", "\r")
    ]


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    po=cells, line_id=cells, status=st.sampled_from(["completed", "=1+1", "-", "@x"]), note=cells
)
def test_exported_cells_are_never_executable_by_excel(
    po: str, line_id: str, status: str, note: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("cells")
    rows = pd.DataFrame(
        {
            "purchaseOrderNumber": [po, "PO-SAFE"],
            "recipeSetReadableId": [line_id, "AAAA1111"],
            "workflowStatus": [status, "completed"],
            "=Notes": [note, "@note"],
        }
    )
    sheet = root / "=sheet.csv"
    write_table(rows, sheet)
    plan = plan_updates(validate_updates(read_updates(sheet)))
    results = send_updates(
        plan,
        SpectrumClient("https://spectrum.example.com", token="t-" + "9" * 12),
        dry_run=True,
        read_back=False,  # the plan as written: the host is not real, nothing is read
        progress=False,
        journal=False,
    )
    write_table(results, root / "results.xlsx")
    write_table(results, root / "results.csv")
    write_report(results, root / "report.xlsx", plan=plan)
    export_csv(results, root / "report-csv", plan=plan)
    assert cli("validate", str(sheet), "-o", str(root / "rows.xlsx"))[0] in (0, 1)
    assert cli("validate", str(sheet), "-o", str(root / "rows.csv"))[0] in (0, 1)
    # What Spectrum answers is untrusted too: a status read back that looks like a formula.
    items = [
        {"recipeSetId": rid, "workflowStatus": "=SUM(1,1)"} for rid in (line_id.strip(), "AAAA1111")
    ]
    with fault_servers(lambda h: Reply(200, {"lineItems": items})) as (spectrum,):
        client = SpectrumClient(spectrum.base_url, token="t-" + "8" * 12)
        compared = reconcile(sheet, client, max_per_minute=60_000, max_attempts=1, progress=False)
    assert "=SUM(1,1)" in compared["spectrum_status"].tolist()
    write_reconciliation(compared, root / "reconciliation.xlsx")
    write_table(compared, root / "reconciliation.csv")

    written = sorted(root.rglob("*"))
    risky = [f for p in written if p.suffix == ".xlsx" for f in _xlsx_formulas(p)]
    risky += [f for p in written if p.suffix == ".csv" and p != sheet for f in _csv_risky(p)]
    assert risky == []


# --------------------------------------------------------------------------- untrusted workbooks


@pytest.fixture(scope="module")
def ratio_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 MB of one cell in a 120 KB workbook: over every limit on ratio."""
    path = tmp_path_factory.mktemp("bomb") / "orders.xlsx"
    path.write_bytes(zip_bomb(120))
    return path


def test_every_reader_entry_point_refuses_the_bomb(
    ratio_bomb: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(SpreadsheetError, match="expand"):
        list_sheets(ratio_bomb)
    with pytest.raises(SpreadsheetError, match="expand"):
        read_updates(io.BytesIO(ratio_bomb.read_bytes()))
    with pytest.raises(SpreadsheetError, match="expand"):
        reconcile(ratio_bomb, SpectrumClient("https://spectrum.example.com", token="t" * 12))
    monkeypatch.chdir(tmp_path)
    code, printed = cli("reconcile", str(ratio_bomb), "--from-runs")
    assert code == 2 and "expand" in printed


def test_the_app_refuses_the_bomb_in_one_line(ratio_bomb: Path, tmp_path: Path) -> None:
    pytest.importorskip("ipywidgets")
    from spectrum_tools.widgets import BulkUpdateApp

    app = BulkUpdateApp(runs_dir=tmp_path / "runs", environments_file=None, environ={})
    try:
        app.path_input.value = str(ratio_bomb)
        app.load_button.click()
        assert "expand" in app.last_message and "\n" not in app.last_message
    finally:
        app.close()


def test_sandbox_seed_refuses_the_bomb(ratio_bomb: Path, tmp_path: Path) -> None:
    with (
        SandboxStore(tmp_path / "seed.sqlite3") as store,
        pytest.raises(SpreadsheetError, match="expand"),
    ):
        store.load_orders(ratio_bomb)


def test_forbidden_gateway_and_throttle_texts_never_reach_a_results_file_with_the_token(
    tmp_path: Path,
) -> None:
    """A 403 whose body is the whole request echoed back (headers and all)."""
    secret = "echo403-" + "Wm4" * 6

    def mirror(hit: Hit) -> Reply:
        dump = "\r\n".join(f"{k}: {v}" for k, v in hit.headers.items())
        return Reply(403, error_body(hit, 403) | {"details": dump})

    server = FaultServer(mirror)
    try:
        with pytest.raises(RunStoppedError) as info:
            send_updates(
                pd.DataFrame(
                    {
                        "purchaseOrderNumber": ["P1"],
                        "recipeSetReadableId": ["AAAA1111"],
                        "workflowStatus": ["completed"],
                    }
                ),
                SpectrumClient(server.base_url, token=secret),
                runs_dir=tmp_path / "runs",
                progress=False,
            )
    finally:
        server.stop()
    results = info.value.results
    write_table(results, tmp_path / "r.csv")
    assert server.hits[0].token == secret
    assert secret not in results.to_string()
    assert secret not in str(info.value)
    for where, data in file_texts(tmp_path):
        assert secret.encode() not in data, where
