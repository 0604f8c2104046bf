"""The bundled notebooks: committed clean, and each runs top to bottom against a sandbox.

Executed with papermill (parameters injected after the cell tagged ``parameters``), the
runs folder in ``tmp_path`` and ``tmp_path`` as the working directory.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import papermill as pm
import pytest

from spectrum_tools.sandbox import sample_data_dir
from spectrum_tools.widgets import notebooks_dir

NOTEBOOKS = ("bulk_update", "reconciliation_report", "python_api_tour")
TOKEN_LITERAL = re.compile(r"""(?i)token\s*=\s*["'][^"']+["']""")


def notebook_path(name: str) -> Path:
    return notebooks_dir() / f"{name}.ipynb"


def execute(name: str, tmp_path: Path, **parameters: Any) -> nbformat.NotebookNode:
    out = tmp_path / f"{name}.out.ipynb"
    parameters.setdefault("runs_dir", str(tmp_path / "runs"))
    parameters.setdefault("max_per_minute", 6000)
    pm.execute_notebook(
        str(notebook_path(name)),
        str(out),
        parameters=parameters,
        cwd=str(tmp_path),
        kernel_name="python3",
        progress_bar=False,
        request_save_on_cell_execute=False,
        execution_timeout=120,
    )
    return nbformat.read(out, as_version=4)


def status_writes(sandbox: Any) -> list[Any]:
    """The status requests the sandbox answered (reads of the current state left out)."""
    return [r for r in sandbox.requests() if r["endpoint"] == "order-status"]


def texts(book: nbformat.NotebookNode) -> str:
    """Every text output of the executed notebook, joined."""
    parts: list[str] = []
    for cell in book.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                parts.append(output["text"])
            for kind in ("text/plain", "text/html"):
                value = output.get("data", {}).get(kind)
                if value:
                    parts.append(value if isinstance(value, str) else "".join(value))
    return "\n".join(parts)


def has_error(book: nbformat.NotebookNode) -> bool:
    return any(o.get("output_type") == "error" for c in book.cells for o in c.get("outputs", []))


# --------------------------------------------------------------------------- committed form


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebooks_have_no_outputs_widget_state_or_token(name: str) -> None:
    path = notebook_path(name)
    book = nbformat.read(path, as_version=4)
    nbformat.validate(book)
    assert set(book.metadata) <= {"kernelspec", "language_info"}, "strip notebook metadata"
    assert "widgets" not in book.metadata
    for cell in book.cells:
        assert "widgets" not in cell.metadata
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: outputs committed"
            assert cell.execution_count is None
    raw = path.read_text(encoding="utf-8")
    assert not TOKEN_LITERAL.search(raw), "a token is written into the notebook"
    assert "SPECTRUM_API_TOKEN=" not in raw.replace(" ", "")
    assert "application/vnd.jupyter.widget" not in raw


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_each_notebook_starts_with_a_parameters_cell_defaulting_to_the_sandbox(
    name: str,
) -> None:
    book = nbformat.read(notebook_path(name), as_version=4)
    code = [c for c in book.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert 'environment = "sandbox"' in code[0].source
    assert "input_path = None" in code[0].source  # None: nothing pre-loaded


def test_the_app_notebook_shows_analysts_no_developer_text() -> None:
    """Voila shows the markdown and hides the code: developer notes live in code comments."""
    book = nbformat.read(notebook_path("bulk_update"), as_version=4)
    shown = "\n".join(c.source for c in book.cells if c.cell_type == "markdown")
    for developer in ("papermill", "auto_send", "Run all", "SPECTRUM_API_TOKEN", "kernel"):
        assert developer not in shown, developer
    assert "Try the sample" in shown


# --------------------------------------------------------------------------- executed


@pytest.mark.notebook
def test_bulk_update_notebook_sends_the_sample_to_the_sandbox_unattended(
    tmp_path: Path,
) -> None:
    book = execute("bulk_update", tmp_path, auto_send=True)
    assert not has_error(book)
    out = texts(book)
    assert "Run 1 finished: updated 45, not_found 1, invalid 5." in out
    assert (tmp_path / "runs" / "journal.sqlite3").is_file()
    assert (tmp_path / "runs" / "reports" / "run-1-report.xlsx").is_file()
    views = [
        o
        for c in book.cells
        for o in c.get("outputs", [])
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert views, "the app is displayed"


@pytest.mark.notebook
@pytest.mark.security
def test_bulk_update_notebook_against_a_named_production_environment_saves_no_token(
    tmp_path: Path, make_sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "tok-" + secrets.token_hex(12)
    sandbox = make_sandbox(token=token)
    envs = tmp_path / "teams-environments.toml"
    envs.write_text(
        f'[environments.live]\nbase_url = "{sandbox.base_url}"\nproduction = true\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("SPECTRUM_API_TOKEN", token)  # the kernel inherits it
    book = execute(
        "bulk_update",
        tmp_path,
        environment="live",
        environments_file=str(envs),
        input_path=str(sample_data_dir() / "status_updates.csv"),
        auto_send=True,
        confirm="live",
    )
    assert not has_error(book)
    assert "Run 1 finished" in texts(book)
    # It read first, then sent the 45 orders that change (the refused one costs no request).
    assert len(status_writes(sandbox)) == 45
    assert {r["endpoint"] for r in sandbox.requests()} == {
        "orders-search",
        "order-number",
        "order-status",
    }
    saved = (tmp_path / "bulk_update.out.ipynb").read_text(encoding="utf-8")
    assert token not in saved
    for file in (tmp_path / "runs").rglob("*"):
        if file.is_file():
            assert token.encode() not in file.read_bytes(), file


@pytest.mark.notebook
def test_bulk_update_notebook_refuses_production_without_confirmation(
    tmp_path: Path, make_sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = make_sandbox()
    envs = tmp_path / "envs.toml"
    envs.write_text(f'[environments.live]\nbase_url = "{sandbox.base_url}"\n', encoding="utf-8")
    monkeypatch.setenv("SPECTRUM_API_TOKEN", sandbox.token)
    book = execute(
        "bulk_update",
        tmp_path,
        environment="live",
        environments_file=str(envs),
        input_path=str(sample_data_dir() / "status_updates.csv"),
        auto_send=True,
    )
    assert "error: not sent: live is production" in texts(book)
    assert status_writes(sandbox) == []  # the preview read; nothing was written


@pytest.mark.notebook
def test_reconciliation_notebook_sends_nothing_by_default(tmp_path: Path) -> None:
    book = execute("reconciliation_report", tmp_path)
    assert not has_error(book)
    out = texts(book)
    assert "Rehearsal" not in out
    assert not (tmp_path / "runs" / "journal.sqlite3").exists()  # no run was made
    assert "never sent (held back)" in out
    assert (tmp_path / "reconciliation.xlsx").is_file()


@pytest.mark.notebook
def test_reconciliation_notebook_compares_with_spectrum_and_draws_a_chart(
    tmp_path: Path,
) -> None:
    book = execute("reconciliation_report", tmp_path, rehearse=True)
    assert not has_error(book)
    out = texts(book)
    assert "Rehearsal run 1" in out
    assert "missing_in_spectrum" in out
    # Held-back orders were never sent: not "differs", and said so in words.
    assert "never sent (held back)" in out
    assert "another row of this order is invalid" in out
    lines = pd.read_excel(
        tmp_path / "reconciliation.xlsx", sheet_name="Lines", dtype=str, engine="openpyxl"
    )
    held = lines.loc[lines["purchaseOrderNumber"] == "HA-US-DEV00011102"]
    assert set(held["state"]) == {"invalid", "never sent (held back)"}
    # The details read in full (no "..." cut): a whole sentence of the API's answer.
    assert "the order has no line item HS7SW33X" in out
    found = re.search(r"\bmatch\s+(\d+)", out)
    assert found is not None
    match_count = int(found.group(1))
    assert match_count > 150  # the rehearsal applied most of the sheet
    pngs = [o for c in book.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(pngs) == 1
    assert (tmp_path / "reconciliation.xlsx").is_file()


@pytest.mark.notebook
def test_reconciliation_notebook_with_past_runs_only(tmp_path: Path) -> None:
    book = execute("reconciliation_report", tmp_path, compare_with="runs", rehearse=True)
    assert not has_error(book)
    assert "match" in texts(book)


@pytest.mark.notebook
def test_python_api_tour_fixes_the_sheet_sends_and_reports(tmp_path: Path) -> None:
    book = execute("python_api_tour", tmp_path)
    assert not has_error(book)
    out = texts(book)
    assert "208 of 208 rows valid now" in out
    assert "Run 1 on 127.0.0.1:" in out
    assert "Report written to tour-report.xlsx" in out
    assert (tmp_path / "tour-report.xlsx").is_file()
