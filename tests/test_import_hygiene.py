"""A command imports what it needs (issue 14): ``spectrum-tools validate`` and ``import
spectrum_tools`` never load the HTTP, retry, server or Jupyter stacks, and ``--help``
does not even load pandas.

Each check runs in a fresh interpreter (this test process has imported everything long
ago) and reads that interpreter's ``sys.modules`` at the end.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from spectrum_tools.cli.arguments import Parser
from spectrum_tools.cli.commands import register
from spectrum_tools.cli.entry import command_function

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data" / "status_updates.csv"

# The stacks a local check has no use for: HTTP, retry, server, Jupyter.
HEAVY_LIBRARIES = (
    "requests",
    "urllib3",
    "tenacity",
    "uvicorn",
    "starlette",
    "ipywidgets",
    "IPython",
    "ipykernel",
)
# The toolkit's own modules on top of them.
SENDING_MODULES = (
    "spectrum_tools.client",
    "spectrum_tools.engine",
    "spectrum_tools.sandbox",
    "spectrum_tools.connect",
    "spectrum_tools.runs",
    "spectrum_tools.readback",
    "spectrum_tools.widgets",
)


def _modules_after(code: str, tmp_path: Path) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """Run ``code`` in a fresh interpreter; the modules it loaded, and how it ended."""
    listing = tmp_path / "modules.json"
    script = (
        "import atexit, json, pathlib, sys\n"
        f"listing = pathlib.Path({str(listing)!r})\n"
        "atexit.register(lambda: listing.write_text(json.dumps(sorted(sys.modules))))\n"
        f"{code}\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert listing.is_file(), done.stderr
    return set(json.loads(listing.read_text(encoding="utf-8"))), done


def _heavy(loaded: set[str]) -> list[str]:
    return sorted(
        name
        for name in loaded
        if name.split(".")[0] in HEAVY_LIBRARIES
        or any(name == m or name.startswith(m + ".") for m in SENDING_MODULES)
    )


def test_validate_loads_no_http_retry_server_or_jupyter_module(tmp_path: Path) -> None:
    loaded, done = _modules_after(
        "from spectrum_tools.cli.entry import main\n"
        f"code = main(['validate', {str(SAMPLE)!r}])\n"
        "print('exit', code)\n",
        tmp_path,
    )
    # It did validate the sheet (the samples have messy rows on purpose: exit 1).
    assert "Rows:" in done.stdout and "Requests:" in done.stdout, done.stdout + done.stderr
    assert done.stdout.strip().endswith("exit 1")
    assert "spectrum_tools.validation" in loaded and "spectrum_tools.planning" in loaded
    assert _heavy(loaded) == []


def test_validate_writing_a_table_loads_none_either(tmp_path: Path) -> None:
    out = tmp_path / "checked.csv"
    loaded, done = _modules_after(
        "from spectrum_tools.cli.entry import main\n"
        f"main(['validate', {str(SAMPLE)!r}, '--output', {str(out)!r}])\n",
        tmp_path,
    )
    assert out.is_file(), done.stderr
    assert _heavy(loaded) == []


def test_importing_the_package_loads_none_of_its_modules(tmp_path: Path) -> None:
    loaded, done = _modules_after("import spectrum_tools", tmp_path)
    assert done.returncode == 0, done.stderr
    assert _heavy(loaded) == []
    assert sorted(m for m in loaded if m.startswith("spectrum_tools.")) == []
    assert "pandas" not in loaded


def test_reading_and_validating_from_the_package_root_stays_local(tmp_path: Path) -> None:
    loaded, done = _modules_after(
        "from spectrum_tools import plan_updates, read_updates, validate_updates\n"
        f"plan_updates(validate_updates(read_updates({str(SAMPLE)!r})))\n",
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert _heavy(loaded) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["validate", "--help"],
        ["send", "--help"],
        ["sandbox", "--help"],
        ["app", "--help"],
        ["reconcile", "--help"],
    ],
    ids=" ".join,
)
def test_help_loads_neither_pandas_nor_any_command(argv: list[str], tmp_path: Path) -> None:
    loaded, done = _modules_after(
        f"from spectrum_tools.cli.entry import main\nmain({argv!r})",
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "usage: spectrum-tools" in done.stdout
    assert _heavy(loaded) == []
    assert "pandas" not in loaded


def test_every_command_names_a_function_that_runs_it() -> None:
    # The targets are strings until a command runs: each must import and be that command's.
    sub = Parser(prog="spectrum-tools").add_subparsers(dest="command", parser_class=Parser)
    register(sub)
    assert len(sub.choices) >= 12
    for name, parser in sub.choices.items():
        target = parser.get_default("command_target")
        assert isinstance(target, str), name
        function = command_function(target)
        assert callable(function)
        assert function.__name__ == f"{name}_command"
