"""Environment -> client: open a :class:`~spectrum_tools.SpectrumClient` for a named
environment, starting the bundled sandbox when it is ``sandbox``.

An adapter (like the CLI and the widgets, which use it): it imports the sandbox, which the
core never does. I/O: for ``sandbox``, a loopback socket and a SQLite store.
"""

from __future__ import annotations

import os
from dataclasses import replace
from types import TracebackType

from spectrum_tools.client import SpectrumClient
from spectrum_tools.environments import SANDBOX, Environment
from spectrum_tools.errors import ConfigError
from spectrum_tools.sandbox import SandboxServer, SandboxSettings

__all__ = ["Connection", "connect"]


class Connection:
    """A client for one environment, and the sandbox behind it when it is the built-in one.

    Use it as a context manager, or call :meth:`close` (which stops the sandbox).

    Attributes
    ----------
    environment
        The environment, with ``base_url`` filled in for a started sandbox.
    client
        The :class:`~spectrum_tools.SpectrumClient` to send with.
    sandbox
        The running :class:`~spectrum_tools.sandbox.SandboxServer`, or None.
    """

    def __init__(
        self,
        environment: Environment,
        client: SpectrumClient,
        sandbox: SandboxServer | None = None,
    ) -> None:
        self.environment = environment
        self.client = client
        self.sandbox = sandbox

    def __repr__(self) -> str:
        return f"Connection({self.environment.name!r}, {self.client!r})"

    def close(self) -> None:
        """Close the client's sessions and stop the sandbox, if one was started."""
        self.client.close()
        if self.sandbox is not None:
            self.sandbox.stop()

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def connect(
    environment: Environment,
    token: str | None = None,
    *,
    sandbox_store: str | os.PathLike[str] | None = None,
    sandbox_settings: SandboxSettings | None = None,
    sandbox_port: int = 0,
) -> Connection:
    """Open a client for ``environment``; for ``sandbox``, start the bundled server first.

    Parameters
    ----------
    environment
        From :func:`~spectrum_tools.environments.load_environments` or
        :func:`~spectrum_tools.environments.custom_environment`.
    token
        The API token; ``None`` lets :class:`~spectrum_tools.SpectrumClient` read
        ``SPECTRUM_API_TOKEN``. Ignored for the sandbox, which has its own.
    sandbox_store
        SQLite file for the sandbox's orders (kept across restarts); default a temporary
        one, seeded from the bundled sample orders.
    sandbox_settings
        The sandbox's fault switches (default: Spectrum's 100 requests per 60 s limit).
    sandbox_port
        The sandbox's port; 0 picks a free one. The sandbox's client has the environment
        key ``"sandbox"`` whatever the port (:attr:`SpectrumClient.environment_key`), so a
        run against it resumes, and its orders are skipped, after a restart on another port.

    Raises
    ------
    ConfigError
        No token for a real environment.

    Examples
    --------
    >>> from spectrum_tools.environments import load_environments
    >>> with connect(load_environments(None)["sandbox"]) as conn:
    ...     conn.environment.base_url == conn.client.base_url, conn.client.environment_key
    (True, 'sandbox')
    """
    if not environment.is_sandbox:
        if not environment.base_url:
            raise ConfigError(f"environment {environment.name!r} has no base URL")
        return Connection(environment, SpectrumClient(environment.base_url, token=token))
    server = SandboxServer(sandbox_store, settings=sandbox_settings, port=sandbox_port).start()
    try:
        client = SpectrumClient(server.base_url, token=server.token, environment=SANDBOX)
    except BaseException:
        server.stop()
        raise
    started = replace(environment, base_url=server.base_url, production=False)
    return Connection(started, client, server)
