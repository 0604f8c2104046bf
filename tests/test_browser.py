"""End to end in a real browser: JupyterLab and the Voila app, driven by headless Chromium.

JupyterLab and ``spectrum-tools app`` run as subprocesses on 127.0.0.1 (free ports, no
token, settings in ``tmp_path``); Playwright drives Debian's ``chromium`` through
``executable_path`` (it never downloads a browser). Each test runs the bulk-update notebook,
goes through validate, preview and send against the bundled sandbox, checks that the results
table shows, and saves a screenshot in its ``tmp_path`` and in ``test-output/`` (gitignored).
Every server is stopped at the end; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spectrum_tools.sandbox import sample_data_dir
from spectrum_tools.sheets import read_updates
from spectrum_tools.widgets import notebooks_dir

CHROMIUM = Path("/usr/bin/chromium")
SAMPLE_CSV = sample_data_dir() / "status_updates.csv"
REPO = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT_S = 90.0
RUN_TIMEOUT_MS = 120_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
    pytest.mark.timeout(600),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def server(
    cmd: list[str], port: int, *, cwd: Path, env: dict[str, str], log: Path
) -> Iterator[None]:
    """Run a server in its own process group until the block ends; then stop it all."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not _listening(port):
                if proc.poll() is not None:
                    raise AssertionError(f"server exited ({proc.returncode}): {log.read_text()}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"server not up in {START_TIMEOUT_S} s: {log.read_text()}")
                time.sleep(0.2)
            yield
        finally:
            _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (it and its kernels), then SIGKILL what is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):  # kernels that outlived their server
        os.killpg(proc.pid, signal.SIGKILL)


def isolated_env(tmp_path: Path, runs_dir: Path) -> dict[str, str]:
    """Jupyter's config, data and runtime folders in tmp_path; the runs folder for the app."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "SPECTRUM_"))}
    jupyter = tmp_path / "jupyter"
    for name in ("config", "data", "runtime", "settings", "workspaces", "ipython"):
        (jupyter / name).mkdir(parents=True, exist_ok=True)
    # No "would you like news?" toast over the app, and no request for news or updates.
    notification = jupyter / "settings" / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True, exist_ok=True)
    (notification / "notification.jupyterlab-settings").write_text(
        '{"fetchNews": "false", "checkForUpdates": false}', encoding="utf-8"
    )
    env.update(
        JUPYTER_CONFIG_DIR=str(jupyter / "config"),
        JUPYTER_DATA_DIR=str(jupyter / "data"),
        JUPYTER_RUNTIME_DIR=str(jupyter / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(jupyter / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(jupyter / "workspaces"),
        IPYTHONDIR=str(jupyter / "ipython"),
        SPECTRUM_RUNS_DIR=str(runs_dir),
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
            timeout=60_000,
        )
        try:
            context.set_default_timeout(60_000)
            yield context.new_page()
        finally:
            context.close()


def set_pace(page: Any, per_minute: int) -> None:
    pace = page.locator(".widget-inline-hbox", has_text="Requests a minute").locator("input")
    pace.fill(str(per_minute))
    pace.press("Enter")


def drive_the_app(page: Any, tmp_path: Path, name: str) -> None:
    """Fix a row, preview, confirm, send, stop, resume, then the results grid and files.

    The sheet is loaded already. Screenshots of each step go to ``test-output/``.
    """
    send = page.locator("button.jupyter-button", has_text=re.compile(r"^\s*Send\s*$"))
    assert send.is_disabled()  # nothing is sent before a preview
    page.get_by_role("button", name="Validate").click()
    page.locator(".spectrum-validation").wait_for()
    assert "205" in page.locator(".spectrum-validation").inner_text()
    # The one unknown spelling comes with a suggestion, applied in one click if wanted.
    page.locator(".spectrum-suggestions", has_text="shipped → delivered").wait_for()
    assert page.locator("button.spectrum-apply-suggestions").is_enabled()

    # Fix row 35 ("shipped") in the grid of invalid rows: re-validated at once.
    cell = page.locator(".spectrum-fix-row-35.spectrum-fix-workflowStatus input")
    assert cell.input_value() == "shipped"
    cell.fill("delivered")
    cell.press("Enter")
    page.locator(".spectrum-validation", has_text="206").wait_for()
    page.locator(".spectrum-success", has_text="fine now").first.wait_for()
    page.locator("button.spectrum-apply-suggestions").wait_for(state="hidden")  # none left
    screenshot(page, tmp_path, f"{name}-1-fixed.png")

    # Slow enough to press Stop half way: one request a second.
    set_pace(page, 60)
    page.get_by_role("button", name="Preview").click()
    page.locator(".spectrum-preview", has_text="60 a minute").wait_for()
    grid = page.locator(".spectrum-preview-grid table.dataTable[id]")
    grid.wait_for()
    # Read back: per line item, what Spectrum holds now -> the new status.
    headers = page.locator(".spectrum-preview-grid th").evaluate_all(
        "cells => cells.map(c => c.textContent + ' ' + "
        "[...c.querySelectorAll('input')].map(i => i.placeholder).join(' '))"
    )
    assert any("Current → new" in h for h in headers), headers
    page.locator(".spectrum-preview-grid td", has_text="not-started → ").first.wait_for()
    assert "will be sent" in grid.inner_text()
    moves = page.locator(".spectrum-transitions")
    assert "From → to" in moves.inner_text() and "not-started" in moves.inner_text()
    summary = page.locator(".spectrum-preview").inner_text()
    assert "refused: Spectrum does not know a line item 1" in summary
    assert page.locator(".spectrum-payload").count() == 3  # in the closed JSON toggle
    assert not page.locator(".spectrum-payload").first.is_visible()
    assert send.is_enabled()
    screenshot(page, tmp_path, f"{name}-2-preview.png")

    send.click()
    question = page.locator(".spectrum-question")
    question.wait_for()
    # 47 orders go after the fix, less the one Spectrum would refuse (known from the read).
    assert "<b>46</b>" in question.inner_html() and "requests" in question.inner_text()
    assert "Not sent: 1 refused" in question.inner_text()
    screenshot(page, tmp_path, f"{name}-3-confirm.png")
    page.get_by_role("button", name="Yes, send").click()
    page.locator(".spectrum-counts", has_text=re.compile(r"\b[2-9] of 46")).wait_for(
        timeout=RUN_TIMEOUT_MS
    )
    page.get_by_role("button", name="Stop").click()
    stopped = page.locator(".spectrum-stopped")
    stopped.wait_for(timeout=RUN_TIMEOUT_MS)
    assert "pending" in stopped.inner_text()
    screenshot(page, tmp_path, f"{name}-4-stopped.png")

    set_pace(page, 6000)
    page.locator("button.mod-success", has_text="Resume").click()
    page.locator(".spectrum-question", has_text="pending orders").wait_for()
    page.get_by_role("button", name="Yes, send").click()
    page.locator(".spectrum-success", has_text="finished").first.wait_for(timeout=RUN_TIMEOUT_MS)

    results = page.locator(".spectrum-results-grid table.dataTable[id]")
    results.wait_for()
    page.locator(".spectrum-chart").wait_for()
    first_row = results.locator("tbody tr").first
    assert "not_found" in first_row.inner_text()  # failures first
    # Filter the grid: only the updated orders stay.
    search = page.locator(".spectrum-results-grid input[type=search]").first
    search.fill("HA-US-DEV00011108")
    page.locator(".spectrum-results-grid tbody tr", has_text="updated").first.wait_for()
    assert results.locator("tbody tr").count() == 1
    # The details column is wide enough to read, not a narrow column of tall rows.
    details = results.locator("tbody td.spectrum-wide").first.bounding_box()
    assert details is not None and details["width"] >= 300, details
    search.fill("")
    results.scroll_into_view_if_needed()
    screenshot(page, tmp_path, f"{name}-5-results.png")

    with page.expect_download() as download:
        page.locator("a.spectrum-download", has_text="Error file").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    errors = read_updates(saved)
    assert saved.name == "run-1-errors.xlsx"
    assert set(errors["outcome"]) == {"invalid", "not_found"}
    assert "shipped" not in set(errors["workflowStatus"])  # row 35 was fixed and sent

    # Undo the finished run: first what it would restore, then confirm, then it runs.
    page.get_by_role("button", name="Undo this run").click()
    page.locator(".spectrum-undo-summary").wait_for()
    undo_grid = page.locator(".spectrum-undo-grid table.dataTable[id]")
    undo_grid.wait_for()
    assert "will be restored" in undo_grid.inner_text()
    question = page.locator(".spectrum-question", has_text="Undo run 1")
    question.wait_for()
    undo_grid.scroll_into_view_if_needed()
    screenshot(page, tmp_path, f"{name}-6-undo-preview.png")
    page.get_by_role("button", name="Yes, send").click()
    page.locator(".spectrum-success", has_text="Run 1 undone as run 2").wait_for(
        timeout=RUN_TIMEOUT_MS
    )
    page.locator(".spectrum-counts", has_text="updated").wait_for()
    page.locator(".spectrum-info", has_text="Run 2 (undo of run 1)").wait_for()
    page.locator(".spectrum-results-grid", has_text="of 46 entries").wait_for()
    page.locator(".spectrum-undo").scroll_into_view_if_needed()
    screenshot(page, tmp_path, f"{name}-7-undone.png")


@contextlib.contextmanager
def kept_on_failure(page: Any, tmp_path: Path, name: str) -> Iterator[None]:
    """On failure, keep a screenshot of what the browser showed (then re-raise)."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            screenshot(page, tmp_path, name)
        raise


def screenshot(page: Any, tmp_path: Path, name: str) -> Path:
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    kept = REPO / "test-output"
    kept.mkdir(exist_ok=True)
    shutil.copy2(shot, kept / name)
    return shot


def test_bulk_update_notebook_in_jupyterlab(page: Any, tmp_path: Path) -> None:
    root = tmp_path / "notebooks"
    shutil.copytree(notebooks_dir(), root)
    runs = tmp_path / "runs"
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.open_browser=False",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    env = isolated_env(tmp_path, runs)
    with server(cmd, port, cwd=root, env=env, log=tmp_path / "jupyterlab.log"):
        page.goto(f"http://127.0.0.1:{port}/lab/tree/bulk_update.ipynb")
        with kept_on_failure(page, tmp_path, "jupyterlab-failure.png"):
            page.locator(".jp-Notebook").first.wait_for()
            # The status bar says the kernel is connected and idle.
            page.locator(".jp-StatusBar-Widget", has_text="| Idle").first.wait_for(
                timeout=RUN_TIMEOUT_MS
            )
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            page.get_by_role("button", name="Validate").wait_for(timeout=RUN_TIMEOUT_MS)
            page.get_by_role("button", name="Try the sample").click()
            page.locator(".spectrum-success", has_text="Loaded status_updates.xlsx").wait_for()
            drive_the_app(page, tmp_path, "jupyterlab")
        shot = screenshot(page, tmp_path, "jupyterlab-bulk-update.png")
    assert shot.stat().st_size > 10_000
    assert (runs / "journal.sqlite3").is_file()
    assert (runs / "reports" / "run-1-report.xlsx").is_file()


def test_spectrum_tools_app_serves_the_notebook_with_voila(page: Any, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    port = free_port()
    cmd = [
        sys.executable,
        "-c",
        "import sys; from spectrum_tools.cli import main; sys.exit(main())",
        "app",
        "--port",
        str(port),
        "--runs-dir",
        str(runs),
    ]
    env = isolated_env(tmp_path, tmp_path / "not-this-one")  # --runs-dir wins
    with server(cmd, port, cwd=tmp_path, env=env, log=tmp_path / "voila.log"):
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/voila/static/voila.js", timeout=10
        ) as answer:
            assert answer.status == 200
        page.goto(f"http://127.0.0.1:{port}/")
        with kept_on_failure(page, tmp_path, "voila-failure.png"):
            page.get_by_role("button", name="Validate").wait_for(timeout=RUN_TIMEOUT_MS)
            assert "Traceback" not in page.content()
            shown = page.locator("body").inner_text()
            for developer in ("papermill", "auto_send", "Run all", "SPECTRUM_API_TOKEN"):
                assert developer not in shown, developer
            # Here the sheet comes through the upload button, as an analyst's would.
            with page.expect_file_chooser() as chooser:
                page.get_by_role("button", name="Upload").click()
            chooser.value.set_files(str(SAMPLE_CSV))
            page.locator(".spectrum-success", has_text="Loaded status_updates.csv").wait_for()
            assert "Upload (1)" in page.get_by_role("button", name="Upload (1)").inner_text()
            drive_the_app(page, tmp_path, "voila")
        shot = screenshot(page, tmp_path, "voila-bulk-update.png")
    assert shot.stat().st_size > 10_000
    assert (runs / "reports" / "run-1-report.xlsx").is_file()
    assert not (tmp_path / "not-this-one").exists()
