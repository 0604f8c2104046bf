"""Shared pytest fixtures.

Sandbox fixtures start a real :class:`~spectrum_tools.sandbox.SandboxServer` (uvicorn in a
thread, on a free loopback port) with a fresh SQLite store in ``tmp_path``, seeded from the
bundled sample orders, and stop it after the test. Throttling is off unless a test asks for
it, so tests are not paced by the 100-per-60 s limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from support.rawhttp import RawRequest, RawServer
from support.sandboxes import SANDBOX_TOKEN, MakeSandbox

from spectrum_tools.sandbox import SandboxServer, SandboxSettings


@pytest.fixture
def make_sandbox(tmp_path: Path) -> Iterator[MakeSandbox]:
    """Return a factory of started sandboxes; every one is stopped after the test.

    ``make_sandbox(**overrides)`` takes :class:`SandboxSettings` fields (``rate_limit``
    defaults to ``None`` here), plus ``token``, ``store_path``, ``seed_from`` and ``port``
    as :class:`SandboxServer` takes them.
    """
    started: list[SandboxServer] = []

    def make(
        *,
        token: str = SANDBOX_TOKEN,
        store_path: Path | None = None,
        seed_from: str | Path | pd.DataFrame | None = None,
        port: int = 0,
        **overrides: object,
    ) -> SandboxServer:
        overrides.setdefault("rate_limit", None)
        server = SandboxServer(
            store_path if store_path is not None else tmp_path / f"sandbox-{len(started)}.sqlite3",
            settings=SandboxSettings(**overrides),  # type: ignore[arg-type]
            token=token,
            seed_from=seed_from,
            port=port,
        )
        started.append(server)
        return server.start()

    yield make
    for server in reversed(started):
        server.stop()


@pytest.fixture
def sandbox(make_sandbox: MakeSandbox) -> SandboxServer:
    """A started sandbox with the sample orders, token ``SANDBOX_TOKEN``, no throttling."""
    return make_sandbox()


@pytest.fixture(autouse=True)
def _runs_dir_per_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every send is journaled; without ``runs_dir`` a test's runs go to its own tmp folder.

    Otherwise they would pile up in ``./spectrum-runs``, and a later test whose sandbox
    got the same port (same host) would see its orders "already applied" and skipped.
    """
    monkeypatch.setattr(
        "spectrum_tools.journal.schema.DEFAULT_RUNS_DIR", tmp_path / "spectrum-runs"
    )


# -- raw HTTP servers (tests of the client's request shape and of retries) ------------------


@pytest.fixture
def make_raw_server() -> Iterator[Callable[..., RawServer]]:
    """Return a factory of started :class:`RawServer`; every one is stopped after the test."""
    started: list[RawServer] = []

    def make(respond: Callable[[RawRequest, int], bytes | None]) -> RawServer:
        started.append(RawServer(respond))
        return started[-1]

    yield make
    for server in started:
        server.stop()


# -- the hardening count (issue 7): one line the README can quote ----------------------------

_HARDENING = (
    ("fault", "faults injected"),
    ("badinput", "bad inputs tried"),
    ("security", "security checks"),
    ("property", "property tests"),
)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print ``hardening: N faults injected, ...; F failed`` over the tests that ran.

    Counted from the test reports (so it also works with xdist), each test once per marker.
    """
    marked: dict[str, set[str]] = {name: set() for name, _ in _HARDENING}
    failed: set[str] = set()
    for category, reports in terminalreporter.stats.items():
        if category not in ("passed", "failed", "error", "skipped"):
            continue
        for report in reports:
            keywords = getattr(report, "keywords", None) or {}
            nodeid = getattr(report, "nodeid", "")
            params = set(nodeid.partition("[")[2].rstrip("]").split("-"))  # ids are keywords too
            names = [n for n, _ in _HARDENING if n in keywords and n not in params]
            for name in names:
                marked[name].add(nodeid)
            if names and category in ("failed", "error"):
                failed.add(nodeid)
    if any(marked.values()):
        counts = ", ".join(f"{len(marked[name])} {label}" for name, label in _HARDENING)
        terminalreporter.write_line(f"hardening: {counts}; {len(failed)} failed")
