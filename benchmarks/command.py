"""Face 0: whole commands, as a user runs them: ``spectrum-tools validate`` against the naive
pandas script, each timed from process start to exit, and the import cost of the core.

Touches: only the generated sheet it reads (the commands write nothing). Each command is
a fresh child process; its wall time includes interpreter start and every import, and its
peak memory is the child's own ``ru_maxrss`` (from ``os.wait4``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# The naive way as a command: python + pandas + the naive script of pipeline.py, nothing
# of spectrum-tools imported. "naive-object" runs it with pandas' pre-3.0 object strings
# (future.infer_string off), the faster of the two naive ways for its groupby loop.
NAIVE_COMMANDS = ("naive", "naive-object")


@dataclass(frozen=True)
class CommandRun:
    """One whole command: wall seconds, CPU seconds (user + system), peak MB, exit code."""

    seconds: float
    cpu_s: float
    peak_mb: float
    exit_code: int


@dataclass(frozen=True)
class CommandRow:
    """One sheet: the CLI ``validate`` (best of N) against each naive command."""

    label: str
    rows: int
    spectrum: list[CommandRun]
    naive: dict[str, CommandRun]

    @property
    def best(self) -> CommandRun:
        """The fastest spectrum-tools run."""
        return min(self.spectrum, key=lambda r: r.seconds)

    def speedup(self, naive: str = "naive") -> float:
        """Naive command wall time over the CLI's."""
        return self.naive[naive].seconds / self.best.seconds


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("spectrum-tools")
    if script.exists():  # the console script a user types
        return [str(script)]
    return [sys.executable, "-c", "import sys; from spectrum_tools.cli import main; "
            "sys.exit(main(sys.argv[1:]))"]  # fmt: skip


def time_command(argv: list[str], timeout_s: float = 900.0) -> CommandRun:
    """Run ``argv`` to completion (output discarded); wall time, CPU time and peak RSS."""
    started = time.perf_counter()
    child = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    try:
        _, status, usage = os.wait4(child.pid, 0)
    except BaseException:
        child.kill()
        raise
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    err = child.stderr.read().decode(errors="replace") if child.stderr else ""
    if child.stderr:
        child.stderr.close()
    code = child.returncode
    if code not in (0, 1):  # validate exits 1 when some rows are invalid (the sheet has some)
        raise RuntimeError(f"{' '.join(argv)} exited {code}:\n{err[-2000:]}")
    scale = 1 if sys.platform == "darwin" else 1024
    return CommandRun(
        seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * scale / 1024**2, code
    )


def measure_commands(label: str, rows: int, path: Path, repeats: int) -> CommandRow:
    """``spectrum-tools validate FILE`` ``repeats`` times, each naive command once."""
    ours = [time_command([*_cli(), "validate", str(path)]) for _ in range(repeats)]
    naive = {
        impl: time_command([sys.executable, "-m", "benchmarks.pipeline", f"cmd-{impl}", str(path)])
        for impl in NAIVE_COMMANDS
    }
    return CommandRow(label, rows, ours, naive)


def core_import_ms() -> dict[str, Any]:
    """``python -X importtime`` of reading + validation + planning, without the package root.

    The root ``spectrum_tools/__init__.py`` imports the whole toolkit (sending stack
    included); the modules themselves are measured by importing them under a bare package
    object. Also reports whether any HTTP, retry, server or Jupyter module was loaded.
    """
    code = (
        "import sys, types, importlib.util as u\n"
        "spec = u.find_spec('spectrum_tools')\n"
        "pkg = types.ModuleType('spectrum_tools')\n"
        "pkg.__path__ = list(spec.submodule_search_locations)\n"
        "sys.modules['spectrum_tools'] = pkg\n"
        "import spectrum_tools.sheets, spectrum_tools.validation, spectrum_tools.planning\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    top: dict[str, int] = {}  # top-level import -> cumulative microseconds
    own = 0  # microseconds spent in spectrum_tools modules themselves
    first: dict[str, int] = {}  # pandas / pyarrow -> cumulative microseconds
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( +)(\S+)", line)
        if not match:
            continue
        name = match.group(4)
        if len(match.group(3)) == 1:
            top[name] = top.get(name, 0) + int(match.group(2))
        if name in ("pandas", "pyarrow"):  # wherever they are first imported
            first[name] = max(first.get(name, 0), int(match.group(2)))
        if name.startswith("spectrum_tools"):
            own += int(match.group(1))
    loaded = set(done.stdout.split())
    heavy = sorted(
        loaded & {"requests", "urllib3", "tenacity", "tqdm", "starlette", "uvicorn", "ipywidgets"}
        | loaded & {"IPython", "ipykernel", "jupyter_client", "openpyxl"}
    )
    return {
        "total_ms": sum(top.values()) / 1000,
        "pandas_ms": first.get("pandas", 0) / 1000,
        "pyarrow_ms": first.get("pyarrow", 0) / 1000,
        "spectrum_tools_ms": own / 1000,
        "heavy_modules": heavy,
    }


def full_cli_import_s() -> float:
    """Wall time of ``python -c "import spectrum_tools.cli"`` (today's whole CLI)."""
    return time_command([sys.executable, "-c", "import spectrum_tools.cli"]).seconds
