"""Named Spectrum environments: the bundled sandbox, plus those in a team's TOML file.

I/O: reads the environments file. Nothing happens at import. Opening a client for an
environment (and starting the bundled sandbox for ``sandbox``) is the adapters' business:
:func:`spectrum_tools.connect.connect`.

An environment is a name, a base URL and whether it is production. Teams keep the list in
a small TOML file, so nobody pastes host names around and production is always marked::

    # spectrum-environments.toml
    [environments.staging]
    base_url = "https://staging.spectrum.example.com"
    production = false

    [environments.production]
    base_url = "https://spectrum.example.com"
    production = true
    description = "the real thing"

A team's own spellings of statuses go in the same file; validation accepts them as it
accepts ``In Progress`` (read them with :func:`load_status_aliases`)::

    [statuses.aliases]
    shipped = "delivered"
    "on the truck" = "delivered"

``production`` defaults to **true** when it is left out: an environment nobody marked is
treated with production's care (a confirmation before sending), never the other way round.

The built-in ``sandbox`` environment needs no file: :func:`spectrum_tools.connect.connect`
starts a :class:`~spectrum_tools.sandbox.SandboxServer` in this process on a free loopback
port.

Which file: the edges (CLI, widgets, notebooks) call :func:`environments_file`, which takes
an explicit path, else ``SPECTRUM_ENVIRONMENTS`` from the mapping they pass, else
``./spectrum-environments.toml``.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from spectrum_tools.errors import ConfigError
from spectrum_tools.statuses import StatusAliases, status_aliases
from spectrum_tools.urls import check_base_url, parse_base_url

__all__ = [
    "DEFAULT_ENVIRONMENTS_FILE",
    "ENVIRONMENTS_VARIABLE",
    "SANDBOX",
    "Environment",
    "custom_environment",
    "environments_file",
    "load_environments",
    "load_status_aliases",
]

SANDBOX: Final = "sandbox"
DEFAULT_ENVIRONMENTS_FILE: Final = "spectrum-environments.toml"
ENVIRONMENTS_VARIABLE: Final = "SPECTRUM_ENVIRONMENTS"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_KEYS: Final = {"base_url": str, "production": bool, "description": str}


@dataclass(frozen=True)
class Environment:
    """One Spectrum environment.

    Attributes
    ----------
    name
        What people call it (``staging``, ``production``); typed to confirm a production run.
    base_url
        ``https://host``; ``None`` for the built-in sandbox until it runs.
    production
        Whether sending here changes real orders (the widgets and CLI ask for confirmation).
    description
        A free-text note shown next to the name.
    is_sandbox
        Whether this is the bundled local sandbox (started by
        :func:`spectrum_tools.connect.connect`).

    Examples
    --------
    >>> Environment("staging", "https://staging.example.com", production=False).is_sandbox
    False
    """

    name: str
    base_url: str | None
    production: bool = True
    description: str = ""
    is_sandbox: bool = False

    @property
    def host(self) -> str:
        """The host name (``""`` for the sandbox before it runs)."""
        return urlsplit(self.base_url).netloc if self.base_url else ""

    def label(self) -> str:
        """A one-line label for menus: name, host and a PRODUCTION mark.

        Examples
        --------
        >>> Environment("prod", "https://spectrum.example.com").label()
        'prod: spectrum.example.com (PRODUCTION)'
        """
        if self.is_sandbox:
            return f"{self.name}: local sandbox, nothing real changes"
        mark = " (PRODUCTION)" if self.production else ""
        note = f", {self.description}" if self.description else ""
        return f"{self.name}: {self.host}{note}{mark}"


def _sandbox() -> Environment:
    return Environment(
        SANDBOX,
        None,
        production=False,
        description="bundled local sandbox, started on demand",
        is_sandbox=True,
    )


def custom_environment(base_url: str) -> Environment:
    """An environment for a URL typed by hand, named after its host.

    It is treated as production (nobody said otherwise), so sending asks for the host name.

    Raises
    ------
    ConfigError
        The URL is not usable (see :func:`~spectrum_tools.urls.parse_base_url`).

    Examples
    --------
    >>> env = custom_environment("https://spectrum.example.com/")
    >>> env.name, env.base_url, env.production
    ('spectrum.example.com', 'https://spectrum.example.com', True)
    """
    url = parse_base_url(base_url)
    return Environment(url.netloc, url.url, production=True, description="custom URL")


def environments_file(
    explicit: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[Path, bool]:
    """Decide which environments file to read, for the edges that read the environment.

    Parameters
    ----------
    explicit
        A path given on the command line or to the widget.
    environ
        Where to look for ``SPECTRUM_ENVIRONMENTS`` (the edge passes ``os.environ``).

    Returns
    -------
    (path, required)
        ``required`` is False only for the default ``./spectrum-environments.toml``, which
        may be absent (then only the sandbox is offered).

    Examples
    --------
    >>> environments_file("team.toml", {})
    (PosixPath('team.toml'), True)
    >>> environments_file(None, {})[1]
    False
    """
    if explicit is not None and str(explicit) != "":
        return Path(explicit), True
    named = (environ or {}).get(ENVIRONMENTS_VARIABLE, "")
    if named:
        return Path(named), True
    return Path.cwd() / DEFAULT_ENVIRONMENTS_FILE, False


def load_environments(
    path: str | os.PathLike[str] | None, *, missing_ok: bool = False
) -> dict[str, Environment]:
    """Read the named environments from a TOML file, after the built-in ``sandbox``.

    Parameters
    ----------
    path
        The file; ``None`` gives the sandbox alone.
    missing_ok
        Whether a missing file is fine (the default location need not exist).

    Returns
    -------
    dict
        Name -> :class:`Environment`: ``sandbox`` first, then the file's in file order.

    Raises
    ------
    ConfigError
        One line naming the file and the key: unreadable file, bad TOML, unknown key, a
        value of the wrong type, a bad URL, or the reserved name ``sandbox``.

    Examples
    --------
    >>> list(load_environments(None))
    ['sandbox']
    """
    found: dict[str, Environment] = {SANDBOX: _sandbox()}
    data = _read(path, missing_ok=missing_ok)
    if data is None:
        return found
    file = Path(str(path))
    tables = data.get("environments", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{file}: environments: must be a table of [environments.NAME]")
    for name, entry in tables.items():
        found[name] = _environment(file, name, entry)
    return found


def load_status_aliases(
    path: str | os.PathLike[str] | None, *, missing_ok: bool = False
) -> StatusAliases:
    """Read a team's own status spellings, the ``[statuses.aliases]`` table of the file.

    Parameters
    ----------
    path, missing_ok
        As for :func:`load_environments` (the same file).

    Returns
    -------
    Mapping
        Spelling -> status, checked by :func:`spectrum_tools.statuses.status_aliases`;
        empty when the file or the table is absent. Pass it to
        :func:`spectrum_tools.validate_updates` as ``aliases=``.

    Raises
    ------
    ConfigError
        As :func:`load_environments`; an alias whose value is not a workflow status, or
        that would give a status another meaning; an unknown key under ``[statuses]``.

    Examples
    --------
    >>> dict(load_status_aliases(None))
    {}
    """
    data = _read(path, missing_ok=missing_ok)
    if data is None:
        return {}
    where = f"{path}: statuses"
    section = data.get("statuses", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: must be a table ([statuses.aliases])")
    for key in section:
        if key != "aliases":
            raise ConfigError(f"{where}.{key}: unknown key (known: aliases)")
    aliases = section.get("aliases", {})
    if not isinstance(aliases, dict):
        raise ConfigError(f'{where}.aliases: must be a table of spelling = "status"')
    try:
        return status_aliases(aliases, where=f"{where}.aliases")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _read(path: str | os.PathLike[str] | None, *, missing_ok: bool) -> dict[str, Any] | None:
    """The file's TOML tables; None when there is no file (and that is fine)."""
    if path is None:
        return None
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing_ok:
            return None
        raise ConfigError(f"{file}: no such environments file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"{file}: cannot read the environments file ({reason})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {' '.join(str(exc).split())}") from None
    for key in data:
        if key not in ("environments", "statuses"):
            raise ConfigError(
                f"{file}: {key}: unknown key (expected [environments.NAME] or "
                "[statuses.aliases] tables)"
            )
    return data


def _environment(file: Path, name: str, entry: Any) -> Environment:
    where = f"{file}: environments.{name}"
    if name == SANDBOX:
        raise ConfigError(f"{where}: 'sandbox' is built in; give this environment another name")
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"{where}: a name is letters, digits, '-', '_' or '.' (it is typed to confirm)"
        )
    if not isinstance(entry, dict):
        raise ConfigError(f'{where}: must be a table with base_url = "https://..."')
    for key, value in entry.items():
        kind = _KEYS.get(key)
        if kind is None:
            raise ConfigError(f"{where}.{key}: unknown key (known: {', '.join(_KEYS)})")
        if not isinstance(value, kind):
            want = "true or false" if kind is bool else "a quoted string"
            raise ConfigError(f"{where}.{key}: must be {want}, not {value!r}")
    if "base_url" not in entry:
        raise ConfigError(f'{where}.base_url: missing (e.g. base_url = "https://host")')
    try:
        url = check_base_url(entry["base_url"])
    except ConfigError as exc:
        raise ConfigError(f"{where}.base_url: {exc}") from None
    return Environment(
        name,
        url,
        production=entry.get("production", True),
        description=" ".join(entry.get("description", "").split()),
    )
