"""SpectrumClient: the only module that talks HTTP to Spectrum.

I/O: network. One choke point, :meth:`SpectrumClient._request`, sets the token header,
always passes a timeout, never follows redirects (the token must not travel to another
host), and maps HTTP error statuses to exceptions through :func:`errors.error_for_status`.

The client sends one request per call and does not retry or pace: retries and pacing
live in :mod:`spectrum_tools.dispatch`, which knows the whole run.

Thread safety: each thread gets its own ``requests.Session`` (sessions are not documented
as thread-safe), unless a session is injected, which is then the caller's to share.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter

from spectrum_tools.errors import (
    ConfigError,
    TransportError,
    UnexpectedResponseError,
    error_for_status,
)
from spectrum_tools.schema import StatusUpdate
from spectrum_tools.urls import check_base_url, parse_base_url

__all__ = [
    "DEFAULT_TIMEOUT",
    "Secret",
    "SpectrumClient",
    "StatusReply",
    "check_base_url",
    "parse_missing_ids",
]

DEFAULT_TIMEOUT = (5.0, 30.0)
"""(connect, read) seconds: what a public production client uses."""

TOKEN_HEADER = "SPECTRUM_API_TOKEN"  # noqa: S105 - the header name, not a secret
_STATUS_PATH = "/api/order/status"
_ORDER_PATH = "/api/order/order-number/"
_SEARCH_PATH = "/api/orders/search"
_MISSING_MARKER = re.compile(r"recipeSetReadableId\(s\)\s*:\s*(.*)", re.IGNORECASE | re.DOTALL)


class Secret:
    """Holds a token; prints as asterisks everywhere (reprs, tracebacks with locals) and
    refuses to be pickled. ``reveal()`` is the only way to the value.

    Examples
    --------
    >>> Secret("s3cret")
    '********'
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'********'"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # never pickled into a file by accident
        raise TypeError("the API token cannot be pickled")


@dataclass(frozen=True)
class StatusReply:
    """Spectrum's answer to a status update that succeeded (HTTP 2xx, ``status`` OK)."""

    http_status: int
    purchase_order: str
    status: str
    details: str
    elapsed_s: float


def parse_missing_ids(details: str, sent: Iterable[str]) -> tuple[str, ...]:
    """Extract the line-item ids a 404/409 answer says are missing.

    The separator between several ids is undocumented (every example has one id), so
    the text after ``recipeSetReadableId(s):`` is split on commas and/or whitespace, the
    final ``.`` dropped, and only ids that were actually sent are kept, in sent order.

    Examples
    --------
    >>> parse_missing_ids("Unable to find recipeSetReadableId(s): MUEMVK2U.", ["AB", "MUEMVK2U"])
    ('MUEMVK2U',)
    >>> parse_missing_ids("Unable to find recipeSetReadableId(s): A1, B2 C3.", ["C3", "A1", "Z9"])
    ('C3', 'A1')
    >>> parse_missing_ids("Something else", ["A1"])
    ()
    """
    match = _MISSING_MARKER.search(details or "")
    if not match:
        return ()
    tail = match.group(1).strip()
    if tail.endswith("."):
        tail = tail[:-1]
    named = {token.strip(".;") for token in re.split(r"[,\s]+", tail) if token}
    return tuple(dict.fromkeys(i for i in sent if i in named))


class SpectrumClient:
    """A connection to one Spectrum environment.

    Parameters
    ----------
    base_url
        The environment, e.g. ``https://your-spectrum-host`` (a path is kept, for gateways).
        Default: ``SPECTRUM_BASE_URL``. Parsed and normalised by
        :func:`spectrum_tools.urls.parse_base_url`.
    token
        The API token. Default: ``SPECTRUM_API_TOKEN``. Never shown in reprs, logs or errors.
    timeout
        ``(connect, read)`` seconds for every call; default 5 s / 30 s.
    session
        A ``requests.Session`` to use for every call (the caller then owns its thread
        safety). By default each thread gets its own session.
    pool_size
        Connections kept per thread-session; at least the worker count is plenty.

    Raises
    ------
    ConfigError
        No base URL or no token was given or found in the environment; the base URL is
        not usable (its message never repeats user info or a query).
    InsecureURLError
        Plain ``http://`` to a host that is not loopback.

    Examples
    --------
    >>> client = SpectrumClient("https://spectrum.example.com", token="s3cret")
    >>> client
    SpectrumClient(base_url='https://spectrum.example.com', token=<set>)
    >>> "s3cret" in repr(client) + str(vars(client))
    False
    """

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
        pool_size: int = 4,
    ) -> None:
        url = base_url if base_url is not None else os.environ.get("SPECTRUM_BASE_URL", "")
        if not url:
            raise ConfigError("no Spectrum base URL: pass base_url= or set SPECTRUM_BASE_URL")
        self._url = parse_base_url(url)
        self._base_url = self._url.url
        secret = token if token is not None else os.environ.get("SPECTRUM_API_TOKEN", "")
        if not secret.strip():
            raise ConfigError("no API token: pass token= or set SPECTRUM_API_TOKEN")
        if any(c in secret for c in "\r\n"):
            raise ConfigError("the API token contains a line break; copy it again")
        self._token = Secret(secret.strip())
        self._timeout = timeout
        self._session = session
        self._pool_size = max(1, pool_size)
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SpectrumClient(base_url={self._base_url!r}, token=<set>)"

    @property
    def base_url(self) -> str:
        """The environment's base URL (no trailing slash)."""
        return self._base_url

    @property
    def host(self) -> str:
        """The environment's host (``host`` or ``host:port``, lower-case), for display.

        Not an identity: two environments behind one gateway share a host. Match runs to
        an environment with :attr:`environment_key`.
        """
        return self._url.netloc

    @property
    def environment_key(self) -> str:
        """The environment's identity: its normalised base URL, path included.

        Scheme and host lower-case, default port dropped, no trailing slash (see
        :func:`spectrum_tools.urls.environment_key`): one environment written two ways
        has one key, and ``https://gw/staging`` and ``https://gw/prod`` have two.
        """
        return self._url.url

    # ------------------------------------------------------------------ endpoints

    def update_status(self, body: StatusUpdate) -> StatusReply:
        """``PUT /api/order/status`` for one purchase order and all its line items.

        Returns
        -------
        StatusReply
            When Spectrum answered 200 with ``status`` OK.

        Raises
        ------
        NotFoundError
            404/409: some line items were not found; nothing in the order changed.
        ServerError, RateLimitedError, TransportError
            Transient: safe to retry (the update sets an absolute value).
        ForbiddenError, AuthenticationError
            403 (throttled, or the token is not allowed) and 401.
        UnexpectedResponseError
            A redirect, another status, or a 2xx whose body is not ``status: OK``.
        """
        po = body["purchaseOrderNumber"]
        started = time.monotonic()
        response = self._request("PUT", _STATUS_PATH, json=body, purchase_order=po)
        payload = _json_object(response, po)
        status = str(payload.get("status", ""))
        details = " ".join(str(payload.get("details", "")).split())
        details = details.replace(self._token.reveal(), "***")
        if status.upper() != "OK":
            raise UnexpectedResponseError(
                response.status_code,
                f"the answer says status {status!r} (not OK): {details}".strip(),
                purchase_order=po,
            )
        return StatusReply(
            http_status=response.status_code,
            purchase_order=str(payload.get("purchaseOrderNumber", po)),
            status=status,
            details=details,
            elapsed_s=time.monotonic() - started,
        )

    def get_order(self, purchase_order: str) -> dict[str, Any]:
        """``GET /api/order/order-number/{po}``: the order with its ``lineItems``.

        Raises
        ------
        NotFoundError
            The order does not exist (404).
        """
        path = _ORDER_PATH + quote(purchase_order, safe="")
        response = self._request("GET", path, purchase_order=purchase_order)
        return _json_object(response, purchase_order)

    def search_orders(
        self,
        start: str,
        statuses: Sequence[str],
        *,
        end: str | None = None,
        ignore_date_restriction: bool = False,
    ) -> list[dict[str, Any]]:
        """``POST /api/orders/search``: orders with line items in ``statuses``.

        ``start``/``end`` are ISO 8601 timestamps of last modification; Spectrum limits the
        window to 31 days unless ``ignore_date_restriction`` (which may take over 30 s).
        """
        body: dict[str, Any] = {
            "lastModificationStartDate": start,
            "workflowStatuses": list(statuses),
        }
        if end is not None:
            body["lastModificationEndDate"] = end
        if ignore_date_restriction:
            body["ignoreDateRestriction"] = True
        response = self._request("POST", _SEARCH_PATH, json=body)
        data = _parse_json(response)
        if not isinstance(data, list):
            raise UnexpectedResponseError(response.status_code, "search did not return a list")
        return [o for o in data if isinstance(o, dict)]

    # ------------------------------------------------------------------ plumbing

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        purchase_order: str | None = None,
    ) -> requests.Response:
        """Send one request: token header, timeout, no redirects, errors mapped."""
        session = self._thread_session()
        try:
            response = session.request(
                method,
                self._base_url + path,
                json=json,
                # Built inline, never bound to a local: a traceback rendered with locals
                # (IPython's verbose mode, error reporters) must not show the token.
                headers=self._headers(),
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.Timeout:
            raise TransportError(
                f"no answer within {self._timeout[1]:g} s (timed out)",
                purchase_order=purchase_order,
            ) from None
        except requests.ConnectionError as exc:
            raise TransportError(
                f"connection failed: {_reason(exc)}", purchase_order=purchase_order
            ) from None
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError):
            raise TransportError(
                "the answer was cut off before it was complete", purchase_order=purchase_order
            ) from None
        except requests.RequestException as exc:
            raise TransportError(
                f"request failed: {type(exc).__name__}", purchase_order=purchase_order
            ) from None
        if 300 <= response.status_code < 400:
            target = urlsplit(response.headers.get("Location", "")).netloc or "elsewhere"
            raise UnexpectedResponseError(
                response.status_code,
                f"redirected to {target}; not followed, so the token was not sent there. "
                "Check the base URL",
                purchase_order=purchase_order,
            )
        if response.status_code >= 400:
            # A gateway may echo request headers back: never let the token into a message.
            details = _details(response).replace(self._token.reveal(), "***")
            error = error_for_status(response.status_code)
            raise error(
                response.status_code,
                details,
                purchase_order=purchase_order,
                retry_after=_retry_after(response),
            )
        return response

    def _headers(self) -> dict[str, str]:
        return {TOKEN_HEADER: self._token.reveal(), "Accept": "application/json"}

    def _thread_session(self) -> requests.Session:
        if self._session is not None:
            return self._session
        session = cast(requests.Session | None, getattr(self._local, "session", None))
        if session is None:
            session = requests.Session()
            session.trust_env = False  # no .netrc credentials or proxy surprises
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self._pool_size, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        """Close every session this client opened."""
        with self._lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()
        self._local = threading.local()

    def __enter__(self) -> SpectrumClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __reduce__(self) -> Any:
        raise TypeError("SpectrumClient cannot be pickled (it holds the API token)")


def _parse_json(response: requests.Response) -> Any:
    """The body as JSON, or None when it is not JSON (or nested deep enough to be hostile)."""
    try:
        return response.json()
    except (ValueError, RecursionError):
        return None


def _json_object(response: requests.Response, po: str | None) -> dict[str, Any]:
    data = _parse_json(response)
    if not isinstance(data, dict):
        raise UnexpectedResponseError(
            response.status_code,
            "the answer is not the documented JSON object; the update may or may not "
            "have been applied (re-sending is safe)",
            purchase_order=po,
        )
    return cast(dict[str, Any], data)


def _details(response: requests.Response) -> str:
    """Spectrum's ``details`` text, or a short single-line excerpt of another body."""
    data = _parse_json(response)
    if isinstance(data, dict) and data.get("details"):
        return " ".join(str(data["details"]).split())[:500]
    text = " ".join(response.text.split())[:200]
    return text or (response.reason or "")


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


def _reason(exc: BaseException) -> str:
    """A short reason for a connection failure, without URLs or headers."""
    text = str(exc)
    for word in ("refused", "reset", "aborted", "timed out", "Name or service not known"):
        if word.lower() in text.lower():
            return f"connection {word}" if word != "Name or service not known" else "unknown host"
    if "RemoteDisconnected" in text or "closed connection" in text.lower():
        return "the server closed the connection without an answer"
    if "IncompleteRead" in text or "ProtocolError" in text:
        return "the answer was cut off"
    return type(exc).__name__
