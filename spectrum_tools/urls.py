"""Base URLs of Spectrum environments, parsed and normalised in one place. Pure: no I/O.

Every endpoint is ``https://{environment-host}/api/...`` (docs/spectrum-api.md,
"Environments"), and teams may reach several environments through one gateway
(``https://gw/staging``, ``https://gw/prod``). So an environment is identified by its
whole normalised base URL, path included: :func:`environment_key`.

Normalisation: scheme and host lower-case, the scheme's default port dropped, a trailing
``.`` on the host and trailing ``/`` on the path dropped, percent-escapes upper-case and
unreserved characters decoded. Two spellings of one environment give one key.

Refused, in one line that never repeats user info, a query or a fragment (the places a
token gets pasted): anything but ``http``/``https``; user info, a query or a fragment;
whitespace or control characters anywhere; a host that is not a DNS name or IP address
(spaces, markup, ``%``); ``.``/``..`` path segments; and plain ``http://`` to a host that
is not this machine, because the token header would cross the network in clear text.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from spectrum_tools.errors import ConfigError, InsecureURLError

__all__ = [
    "BaseURL",
    "check_base_url",
    "environment_key",
    "is_loopback",
    "parse_base_url",
]

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_MAX_HOST: Final = 253
_LABEL: Final = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
# RFC 3986 path characters: unreserved, sub-delims, ':', '@', '/', and percent-escapes.
_PATH: Final = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*")
_ESCAPE: Final = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_EXAMPLE: Final = "e.g. https://your-spectrum-host"


@dataclass(frozen=True)
class BaseURL:
    """A validated, normalised Spectrum base URL.

    Attributes
    ----------
    scheme
        ``https``, or ``http`` for a loopback host.
    host
        Lower-case DNS name, IPv4 address, or IPv6 address in brackets.
    port
        The port, or ``None`` for the scheme's default.
    path
        ``""`` or a path starting with ``/`` and without a trailing ``/``.

    Examples
    --------
    >>> url = parse_base_url("HTTPS://Spectrum.Example.COM:443/gw/Prod/")
    >>> url.url, url.netloc
    ('https://spectrum.example.com/gw/Prod', 'spectrum.example.com')
    """

    scheme: str
    host: str
    port: int | None
    path: str

    @property
    def netloc(self) -> str:
        """``host`` or ``host:port``: what journals and messages show as the host."""
        return self.host if self.port is None else f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The normalised base URL, which is also the environment key."""
        return f"{self.scheme}://{self.netloc}{self.path}"

    def __str__(self) -> str:
        return self.url


def parse_base_url(text: str) -> BaseURL:
    """Parse, validate and normalise a Spectrum base URL.

    Parameters
    ----------
    text
        What the user gave, e.g. ``https://your-spectrum-host`` or ``https://gw/prod/``.
        Surrounding whitespace is ignored.

    Returns
    -------
    BaseURL
        The normalised parts.

    Raises
    ------
    ConfigError
        Not an http(s) URL; user info, a query or a fragment; whitespace, control
        characters or markup; a bad host, port or path. The one-line message never
        repeats user info, query or fragment; at most the checked scheme and host.
    InsecureURLError
        ``http://`` to a host that is not loopback.

    Examples
    --------
    >>> parse_base_url("http://LOCALHOST:80/").url
    'http://localhost'
    >>> parse_base_url("https://user:s3cret@spectrum.example.com")
    Traceback (most recent call last):
    ...
    spectrum_tools.errors.ConfigError: https://spectrum.example.com: the base URL must not ...
    """
    raw = text.strip()
    if not raw:
        raise ConfigError(f"the base URL is empty; {_EXAMPLE}")
    if any(c.isspace() or not c.isprintable() for c in raw):
        # Checked before splitting: urlsplit silently drops tabs and line breaks.
        raise ConfigError(
            f"the base URL contains a space or control character; type it again, {_EXAMPLE}"
        )
    try:
        parts = urlsplit(raw)
    except ValueError:
        raise ConfigError(f"the base URL is not a valid URL; {_EXAMPLE}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.netloc:
        raise ConfigError(
            "the base URL must look like https://host (optionally with a path): it is "
            f"the environment's address, {_EXAMPLE}"
        )
    host_text, port_text = _split(parts.netloc.rpartition("@")[2])
    host = _host(host_text)
    shown = f"{scheme}://{host}"
    if "@" in parts.netloc:
        raise ConfigError(
            f"{shown}: the base URL must not contain user info (name or password before "
            "'@'); give the token with SPECTRUM_API_TOKEN"
        )
    if parts.query or parts.fragment or raw.endswith(("?", "#")):
        raise ConfigError(
            f"{shown}: the base URL must not have a query ('?...') or fragment ('#...'); "
            "give the token with SPECTRUM_API_TOKEN"
        )
    port = _port(shown, scheme, port_text)
    path = _path(shown, parts.path)
    if scheme == "http" and not is_loopback(host):
        raise InsecureURLError(
            f"refusing plain http:// to {host}: the token would travel unencrypted; "
            "use https:// (plain http is only allowed to this machine, e.g. the sandbox)"
        )
    return BaseURL(scheme, host, port, path)


def environment_key(text: str) -> str:
    """The key that identifies an environment: its normalised base URL, path included.

    Runs are matched to an environment by this key, so ``https://GW:443/prod/`` and
    ``https://gw/prod`` are one environment and ``https://gw/staging`` another.

    Raises
    ------
    ConfigError, InsecureURLError
        As :func:`parse_base_url`.

    Examples
    --------
    >>> environment_key("https://GW.example.com:443/prod/")
    'https://gw.example.com/prod'
    >>> environment_key("https://gw.example.com/staging") == environment_key("https://gw.example.com/prod")
    False
    """
    return parse_base_url(text).url


def check_base_url(url: str) -> str:
    """Validate a Spectrum base URL and return it normalised (see :func:`parse_base_url`).

    Raises
    ------
    ConfigError, InsecureURLError
        As :func:`parse_base_url`.

    Examples
    --------
    >>> check_base_url("https://spectrum.example.com/")
    'https://spectrum.example.com'
    >>> check_base_url("http://127.0.0.1:8765")
    'http://127.0.0.1:8765'
    >>> check_base_url("http://localhost.evil.com")
    Traceback (most recent call last):
    ...
    spectrum_tools.errors.InsecureURLError: refusing plain http:// to localhost.evil.com: ...
    """
    return parse_base_url(url).url


def is_loopback(host: str) -> bool:
    """Whether ``host`` (as :class:`BaseURL` spells it) is this machine.

    Examples
    --------
    >>> is_loopback("localhost"), is_loopback("[::1]"), is_loopback("127.9.9.9")
    (True, True, True)
    >>> is_loopback("localhost.evil.com"), is_loopback("0.0.0.0")
    (False, False)
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# --------------------------------------------------------------------------- the parts


def _split(netloc: str) -> tuple[str, str | None]:
    """``host[:port]`` (user info already cut off) -> (host text, port text or None)."""
    if not (netloc.startswith("[") and "]" in netloc):
        host, colon, port = netloc.partition(":")
        return host, port if colon else None
    end = netloc.index("]") + 1
    host, rest = netloc[:end], netloc[end:]
    if not rest:
        return host, None
    return host, rest.removeprefix(":") if rest.startswith(":") else rest


def _host(text: str) -> str:
    """The normalised host, or a ConfigError naming the flaw (never the user info)."""
    if text.startswith("["):
        try:
            address = ipaddress.IPv6Address(text[1:-1]) if text.endswith("]") else None
        except ValueError:
            address = None
        if address is None or address.scope_id:
            raise ConfigError("the base URL's host is not a valid IPv6 address in [brackets]")
        return f"[{address.compressed}]"
    bad = next((c for c in text if not (c.isalnum() or c in "-._")), None)
    if bad is not None:
        raise ConfigError(
            f"the base URL's host contains {bad!r}, which no host name has; {_EXAMPLE}"
        )
    name = text
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            raise ConfigError("the base URL's host is not a valid host name") from None
    name = name.lower()
    if name.endswith("."):
        name = name[:-1]  # the root label: "example.com." is "example.com"
    labels = name.split(".")
    if not name or len(name) > _MAX_HOST or not all(_LABEL.fullmatch(x) for x in labels):
        raise ConfigError(f"the base URL's host is not a valid host name; {_EXAMPLE}")
    return name


def _port(shown: str, scheme: str, text: str | None) -> int | None:
    """The port, ``None`` when absent or the scheme's default."""
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 65536:
        raise ConfigError(f"{shown}: the port must be a number from 1 to 65535")
    port = int(text)
    return None if port == _DEFAULT_PORTS[scheme] else port


def _path(shown: str, path: str) -> str:
    if not _PATH.fullmatch(path):
        raise ConfigError(f"{shown}: the base URL's path has characters a URL path cannot hold")
    path = _ESCAPE.sub(_normal_escape, path).rstrip("/")
    if any(segment in (".", "..") for segment in path.split("/")):
        raise ConfigError(f"{shown}: the base URL's path must not contain '.' or '..' segments")
    return path


def _normal_escape(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else f"%{match.group(1).upper()}"
