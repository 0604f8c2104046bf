"""Run the sandbox: in a background thread for tests, or in the foreground for the CLI.

Touches: a loopback TCP socket, the SQLite store file (a temporary directory when no path
is given), and the bundled ``sample_data/spectrum_orders.csv`` it seeds from.

Where the sample data lives: ``sample_data/`` sits at the repository root, next to the
``spectrum_tools`` package. The package is installed editable (``pip install -e .``), so
the package's own files stay in the checkout and :func:`sample_data_dir` finds the folder
two levels above this module. A non-editable install (a wheel) does not carry it; then
:func:`sample_data_dir` raises ``FileNotFoundError`` and callers pass ``seed_from``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Final

import pandas as pd
import uvicorn

from spectrum_tools.errors import ConfigError
from spectrum_tools.sandbox.app import RequestLog, RequestRecord, create_app
from spectrum_tools.sandbox.settings import SandboxSettings
from spectrum_tools.sandbox.store import SandboxStore

__all__ = ["SandboxServer", "default_store_path", "sample_data_dir", "serve"]

SAMPLE_ORDERS: Final = "spectrum_orders.csv"
_START_TIMEOUT_S: Final = 10.0
_STOP_TIMEOUT_S: Final = 5.0
_STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)

Seed = str | os.PathLike[str] | pd.DataFrame


def sample_data_dir() -> Path:
    """Return the bundled ``sample_data/`` folder.

    It is found relative to this package (the repository root, two levels up), which works
    for a checkout and an editable install.

    Returns
    -------
    pathlib.Path
        The folder holding ``spectrum_orders.csv`` and the sample update sheets.

    Raises
    ------
    FileNotFoundError
        When the package was installed without the repository around it.

    Examples
    --------
    >>> (sample_data_dir() / "spectrum_orders.csv").is_file()
    True
    """
    folder = Path(__file__).resolve().parents[2] / "sample_data"
    if not (folder / SAMPLE_ORDERS).is_file():
        raise FileNotFoundError(
            f"no sample data at {folder}: install spectrum-tools editable (pip install -e .) "
            "from a checkout, or pass seed_from"
        )
    return folder


def default_store_path() -> Path:
    """Return ``spectrum-sandbox.sqlite3`` in the current directory, as of this call.

    Examples
    --------
    >>> default_store_path().name
    'spectrum-sandbox.sqlite3'
    """
    return Path.cwd() / "spectrum-sandbox.sqlite3"


def _require_loopback(host: str) -> None:
    """Refuse a host that is not a loopback address: the sandbox has a well-known token."""
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(
            f"the sandbox listens on loopback only (127.0.0.1, ::1 or localhost), not {host!r}"
        )


def _require_token(token: str) -> None:
    if not isinstance(token, str) or not token:
        raise ConfigError("the sandbox needs a non-empty token")


def _seed_store(store: SandboxStore, seed_from: Seed | None) -> None:
    """Replace the store with ``seed_from``, or seed an empty store from the sample data."""
    if seed_from is not None:
        store.load_orders(seed_from, replace=True)
    elif store.is_empty():
        store.load_orders(sample_data_dir() / SAMPLE_ORDERS)


def _bind(host: str, port: int) -> socket.socket:
    """Open a listening TCP socket, so the port is known and taken before the server runs."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if host == "localhost":
        host = "127.0.0.1"
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
    # and without it keep-alive clients wait ~40 ms per request (Nagle + delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        # Lets a restarted sandbox take its port back while old connections sit in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


class _Uvicorn(uvicorn.Server):
    """A ``uvicorn.Server`` that says when it listens and stops without polling delay."""

    def __init__(
        self, config: uvicorn.Config, on_ready: Callable[[], object] | None = None
    ) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self._on_ready = on_ready
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        try:
            await super().startup(sockets=sockets)
            if self.started and self._on_ready is not None:
                self._on_ready()
        finally:
            self.ready.set()

    async def main_loop(self) -> None:
        # uvicorn checks should_exit every 0.1 s; also wake at once when asked to stop.
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864_000
            assert self._wake is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn's shutdown sleeps a fixed 0.1 s, then polls every 0.1 s; tests start and
        # stop a sandbox each, so wait only as long as connections actually take to close.
        # Same steps otherwise: stop accepting, close connections, cancel what outlives
        # timeout_graceful_shutdown.
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        try:
            await asyncio.wait_for(self._drain(), timeout=self.config.timeout_graceful_shutdown)
        except TimeoutError:
            for task in self.server_state.tasks:
                task.cancel()
        if not self.force_exit:
            await self.lifespan.shutdown()

    async def _drain(self) -> None:
        state = self.server_state
        while (state.connections or state.tasks) and not self.force_exit:
            await asyncio.sleep(0.005)
        for server in self.servers:
            await server.wait_closed()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises a captured SIGINT/SIGTERM once it has shut down, which would
        # skip serve()'s cleanup (a SIGTERM kills at once). The sandbox stops the same way
        # but then returns normally, so the store is closed and the CLI can exit cleanly.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in _STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def request_exit(self) -> None:
        """Ask the server to stop, from any thread."""
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                loop.call_soon_threadsafe(wake.set)


def _config(app: object, host: str, port: int, **options: object) -> uvicorn.Config:
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        lifespan="off",
        ws="none",
        loop="asyncio",
        timeout_graceful_shutdown=1,
        **options,  # type: ignore[arg-type]
    )


class SandboxServer:
    """A Spectrum-compatible sandbox on ``127.0.0.1``, served from a daemon thread.

    Parameters
    ----------
    store_path
        SQLite file of the order state; ``None`` uses a temporary file, deleted on
        :meth:`stop`. Pass a path to keep the state across restarts.
    settings
        Fault switches, shared live with the server (``SandboxSettings()`` when omitted:
        rate limit on at 100 requests per 60 s).
    token
        The ``SPECTRUM_API_TOKEN`` value to accept. Never shown by ``repr``.
    seed_from
        Order file or DataFrame that *replaces* the store's contents at start; when
        ``None``, an empty store is seeded from the bundled ``spectrum_orders.csv`` and a
        non-empty one is left as it is.
    port
        TCP port; 0 picks a free one (read it back from :attr:`port` or :attr:`base_url`).

    Examples
    --------
    >>> import requests
    >>> with SandboxServer(token="t0ken") as sandbox:
    ...     r = requests.get(sandbox.base_url + "/api/order/order-number/HA-US-DEV00011101",
    ...                      headers={"SPECTRUM_API_TOKEN": "t0ken"}, timeout=5)
    ...     r.status_code, r.json()["lineItems"][0]["recipeSetId"]
    (200, 'TEBMKVGB')
    """

    def __init__(
        self,
        store_path: str | os.PathLike[str] | None = None,
        *,
        settings: SandboxSettings | None = None,
        token: str = "sandbox",  # noqa: S107 - the sandbox's well-known test token
        seed_from: Seed | None = None,
        port: int = 0,
    ) -> None:
        _require_token(token)
        if not 0 <= port <= 65535:
            raise ConfigError(f"port must be between 0 and 65535, got {port}")
        self._store_path = None if store_path is None else Path(store_path)
        self.settings = settings if settings is not None else SandboxSettings()
        self._token = token
        self._seed_from = seed_from
        self._port = port
        self._log = RequestLog()
        self._store: SandboxStore | None = None
        self._tmpdir: Path | None = None
        self._server: _Uvicorn | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    # -- state -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the server is listening."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def port(self) -> int:
        """The bound TCP port (the requested one before the first start)."""
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``, without a trailing slash.

        Raises
        ------
        RuntimeError
            Before the first :meth:`start` when the port is to be picked.
        """
        if self._port == 0:
            raise RuntimeError("the sandbox has no port yet: start it first")
        return f"http://127.0.0.1:{self._port}"

    @property
    def token(self) -> str:
        """The token the sandbox accepts (a test value, but still kept out of ``repr``)."""
        return self._token

    @property
    def store(self) -> SandboxStore:
        """The live order store.

        Raises
        ------
        RuntimeError
            When the sandbox is not running.
        """
        if self._store is None:
            raise RuntimeError("the sandbox is not running: start it first")
        return self._store

    @property
    def store_path(self) -> Path | None:
        """The store file while running (or the one given), else ``None``."""
        return self._store.path if self._store is not None else self._store_path

    def requests(self) -> list[RequestRecord]:
        """Return the request log, oldest first (method, path, PO, ids, status, times)."""
        return self._log.records()

    def clear_requests(self) -> int:
        """Empty the request log; return how many records it had."""
        return self._log.clear()

    def __repr__(self) -> str:
        where = self.base_url if self._port else "port 0"
        state = "running" if self.running else "stopped"
        store = "temporary" if self.store_path is None else str(self.store_path)
        return f"SandboxServer({where}, store={store!r}, {state})"

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> SandboxServer:
        """Open and seed the store, bind the port, and return once the server listens.

        Returns
        -------
        SandboxServer
            ``self``, listening.

        Raises
        ------
        RuntimeError
            When already running, or when the server did not come up.
        OSError
            When the port cannot be bound.
        spectrum_tools.errors.SpreadsheetError
            When ``seed_from`` cannot be loaded.
        """
        if self.running:
            raise RuntimeError("the sandbox is already running")
        try:
            path = self._store_path
            if path is None:
                self._tmpdir = Path(tempfile.mkdtemp(prefix="spectrum-sandbox-"))
                path = self._tmpdir / "sandbox.sqlite3"
            self._store = SandboxStore(path)
            _seed_store(self._store, self._seed_from)
            self._socket = _bind("127.0.0.1", self._port)
            self._port = int(self._socket.getsockname()[1])
            app = create_app(self._store, self.settings, self._token, request_log=self._log)
            config = _config(
                app,
                "127.0.0.1",
                self._port,
                log_config=None,
                log_level="warning",
                access_log=False,
            )
            server = _Uvicorn(config)
            self._server = server
            self._thread = threading.Thread(
                target=server.run,
                kwargs={"sockets": [self._socket]},
                name=f"spectrum-sandbox-{self._port}",
                daemon=True,
            )
            self._thread.start()
            if not server.ready.wait(_START_TIMEOUT_S) or not server.started:
                raise RuntimeError(f"the sandbox did not start on port {self._port}")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop serving, close the store and delete a temporary one. Idempotent."""
        server, thread = self._server, self._thread
        if server is not None:
            server.request_exit()
        if thread is not None:
            thread.join(_STOP_TIMEOUT_S)
            if thread.is_alive() and server is not None:
                server.force_exit = True
                thread.join(_STOP_TIMEOUT_S)
        if self._socket is not None:
            self._socket.close()
        if self._store is not None:
            self._store.close()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
        self._server = self._thread = self._socket = self._store = self._tmpdir = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    store_path: str | os.PathLike[str],
    seed_from: Seed | None = None,
    settings: SandboxSettings | None = None,
    token: str,
    log_level: str = "info",
    on_ready: Callable[[str], object] | None = None,
) -> None:
    """Run the sandbox in the foreground until interrupted (Ctrl+C or SIGTERM), then return.

    Parameters
    ----------
    host
        A loopback address (``127.0.0.1``, ``::1``, ``localhost``); anything else is refused.
    port
        TCP port; 0 picks a free one (``on_ready`` tells which).
    store_path
        SQLite file of the order state, kept across runs (see :func:`default_store_path`).
    seed_from
        Order file or DataFrame that replaces the store's contents; when ``None`` an empty
        store is seeded from the bundled sample orders.
    settings
        Fault switches (``SandboxSettings()`` when omitted).
    token
        The ``SPECTRUM_API_TOKEN`` value to accept.
    log_level
        uvicorn's log level (its log goes to stderr; the token is never in it).
    on_ready
        Called once with the base URL (``"http://127.0.0.1:8765"``) when the socket listens,
        e.g. for the CLI to print it. This function prints nothing itself.

    Raises
    ------
    spectrum_tools.errors.ConfigError
        For a host that is not loopback, or an empty token (checked before anything opens).
    OSError
        When the port cannot be bound.
    spectrum_tools.errors.SpreadsheetError
        When ``seed_from`` cannot be loaded.
    """
    _require_loopback(host)
    _require_token(token)
    store = SandboxStore(store_path)
    sock: socket.socket | None = None
    try:
        _seed_store(store, seed_from)
        sock = _bind(host, port)
        bound_host, bound_port = sock.getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        url = f"http://{shown}:{bound_port}"
        app = create_app(store, settings if settings is not None else SandboxSettings(), token)
        server = _Uvicorn(
            _config(app, host, int(bound_port), log_level=log_level),
            on_ready=None if on_ready is None else lambda: on_ready(url),
        )
        server.run(sockets=[sock])
    finally:
        if sock is not None:
            sock.close()
        store.close()
