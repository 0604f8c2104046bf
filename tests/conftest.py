"""Shared pytest fixtures.

Sandbox fixtures start a real :class:`~spectrum_tools.sandbox.SandboxServer` (uvicorn in a
thread, on a free loopback port) with a fresh SQLite store in ``tmp_path``, seeded from the
bundled sample orders, and stop it after the test. Throttling is off unless a test asks for
it, so tests are not paced by the 100-per-60 s limit.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from spectrum_tools.sandbox import SandboxServer, SandboxSettings

SANDBOX_TOKEN = "sandbox-test-token"

MakeSandbox = Callable[..., SandboxServer]


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
    monkeypatch.setattr("spectrum_tools.journal.DEFAULT_RUNS_DIR", tmp_path / "spectrum-runs")


# -- raw HTTP servers (tests of the client's request shape and of dispatch retries) ------------


@dataclasses.dataclass
class RawRequest:
    """One request as a raw server read it off the socket: header names keep their case."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


def http_response(status: int, body: object = None, headers: dict[str, str] | None = None) -> bytes:
    """Raw HTTP/1.1 response bytes; ``body`` is JSON-encoded unless it is bytes."""
    data = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(data)}", "Connection: close"]
    if not isinstance(body, bytes) and body is not None:
        lines.append("Content-Type: application/json")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


class RawServer:
    """An HTTP server on a plain socket (127.0.0.1, free port) that records every request.

    ``respond(request, n)`` (``n`` counts requests from 0) returns the response bytes,
    ``b""`` to close the connection without answering, or ``None`` to never answer.
    """

    def __init__(self, respond: Callable[[RawRequest, int], bytes | None]) -> None:
        self.respond = respond
        self.requests: list[RawRequest] = []
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self.port = int(self._sock.getsockname()[1])
        self.base_url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:  # timeout, or closed by stop()
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            first, *lines = head.decode("latin-1").split("\r\n")
            headers = [(k, v.strip()) for k, _, v in (line.partition(":") for line in lines)]
            length = int(next((v for k, v in headers if k.lower() == "content-length"), "0"))
            while len(body) < length:
                body += conn.recv(65536)
            method, path, _ = first.split(" ", 2)
            request = RawRequest(method, path, headers, body)
            self.requests.append(request)
            answer = self.respond(request, len(self.requests) - 1)
            if answer is None:
                self._stop.wait()
            else:
                conn.sendall(answer)

    def stop(self) -> None:
        self._stop.set()
        self._sock.close()


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
    A strict xfail is a known bug written down as a test: counted, not as failed.
    """
    marked: dict[str, set[str]] = {name: set() for name, _ in _HARDENING}
    failed: set[str] = set()
    xfailed: set[str] = set()
    for category, reports in terminalreporter.stats.items():
        if category not in ("passed", "failed", "error", "skipped", "xfailed", "xpassed"):
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
            if names and category == "xfailed":
                xfailed.add(nodeid)
    if any(marked.values()):
        counts = ", ".join(f"{len(marked[name])} {label}" for name, label in _HARDENING)
        terminalreporter.write_line(
            f"hardening: {counts}; {len(failed)} failed, {len(xfailed)} known bugs (strict xfail)"
        )
