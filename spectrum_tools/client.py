"""SpectrumClient: the only module that talks HTTP to Spectrum.

I/O: network. One choke point, :meth:`SpectrumClient._request`, sets the token header,
always passes a timeout, never follows redirects (the token must not travel to another
host), and maps HTTP error statuses to exceptions through :func:`errors.error_for_status`.

Every answer is bounded (issue 11): the body is streamed and its *decoded* size capped
(a small gzip cannot inflate past the cap), and each request has an overall deadline
enforced by a watchdog that shuts the socket down, because a read timeout only bounds
one ``recv`` and a server trickling a byte at a time would otherwise hold a call for
ever. Over either bound the attempt fails as a :class:`~errors.TransportError`, which the
engine retries like a timeout (a status PUT is idempotent, docs/spectrum-api.md).

Secrets: text from the server is masked (the token, and any 8+ character piece of it)
before it is cut, and errors are raised outside ``except`` blocks, so no exception chain
holds the ``requests`` objects (whose prepared request carries the token header).

The client sends one request per call and does not retry or pace: retries and pacing
live in :mod:`spectrum_tools.dispatch`, which knows the whole run.

Thread safety: each thread gets its own ``requests.Session`` (sessions are not documented
as thread-safe), unless a session is injected, which is then the caller's to share.
"""

from __future__ import annotations

import contextlib
import json as jsonlib
import os
import re
import socket
import threading
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Final, cast
from urllib.parse import quote, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from spectrum_tools.errors import (
    ConfigError,
    NotFoundError,
    SpectrumError,
    TransportError,
    UnexpectedResponseError,
    error_for_status,
)
from spectrum_tools.schema import StatusUpdate
from spectrum_tools.urls import check_base_url, parse_base_url

__all__ = [
    "DEFAULT_MAX_ANSWER_BYTES",
    "DEFAULT_MAX_SEARCH_BYTES",
    "DEFAULT_TIMEOUT",
    "DETAILS_LIMIT",
    "Secret",
    "SpectrumClient",
    "StatusReply",
    "check_base_url",
    "parse_missing_ids",
]

DEFAULT_TIMEOUT = (5.0, 30.0)
"""(connect, read) seconds: what a public production client uses."""

DEFAULT_MAX_ANSWER_BYTES: Final = 4 * 2**20
"""Decoded size cap of a status, order or error answer (Spectrum's are a few hundred bytes)."""

DEFAULT_MAX_SEARCH_BYTES: Final = 64 * 2**20
"""Decoded size cap of a successful search answer (a plain JSON array of whole orders)."""

DETAILS_LIMIT: Final = 500
"""Characters of Spectrum's ``details`` kept on a reply or error (masked first, then cut)."""

TOKEN_HEADER = "SPECTRUM_API_TOKEN"  # noqa: S105 - the header name, not a secret
_STATUS_PATH = "/api/order/status"
_ORDER_PATH = "/api/order/order-number/"
_SEARCH_PATH = "/api/orders/search"
_MISSING_MARKER = re.compile(r"recipeSetReadableId\(s\)\s*:\s*(.*)", re.IGNORECASE | re.DOTALL)
_EXCERPT_LIMIT: Final = 200  # characters of a body that is not the documented JSON
_PIECE: Final = 8  # a piece of the token this long is masked wherever it appears
_CHUNK: Final = 64 * 1024
_GZIP_OR_ZLIB: Final = 32 + zlib.MAX_WBITS  # zlib detects the gzip or zlib header


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
        It travels in an HTTP header, so it must be plain printable ASCII.
    timeout
        ``(connect, read)`` seconds; default 5 s / 30 s. The read timeout bounds each wait
        for more data, not the whole answer: see ``deadline``.
    deadline
        Seconds one request may take from start to the last byte of its answer; default
        twice connect plus read (70 s with the default timeout). Past it the attempt fails
        with :class:`~spectrum_tools.errors.TransportError`. An injected ``session``
        does not report its sockets, so there the deadline is best effort (it holds for
        a kept-alive connection's body); the size cap always holds.
    max_answer_bytes
        Cap on the *decoded* size of a status, order or error answer (default 4 MiB).
    max_search_bytes
        Cap on the decoded size of a successful search answer (default 64 MiB).
    session
        A ``requests.Session`` to use for every call (the caller then owns its thread
        safety). By default each thread gets its own session.
    pool_size
        Connections kept per thread-session; at least the worker count is plenty.
    environment
        The environment's identity when its URL is not one (:attr:`environment_key`):
        the bundled sandbox is ``"sandbox"`` whatever port it got, so its runs resume and
        skip across restarts. Default: the normalised base URL.

    Raises
    ------
    ConfigError
        No base URL or no token was given or found in the environment; the base URL is
        not usable (its message never repeats user info or a query); the token holds a
        line break or a character an HTTP header cannot carry; a bound is not positive.
    InsecureURLError
        Plain ``http://`` to a host that is not loopback.

    Examples
    --------
    >>> client = SpectrumClient("https://spectrum.example.com", token="s3cret")
    >>> client
    SpectrumClient(base_url='https://spectrum.example.com', token=<set>)
    >>> "s3cret" in repr(client) + str(vars(client))
    False
    >>> client.environment_key
    'https://spectrum.example.com'
    """

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        *,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        deadline: float | None = None,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        max_search_bytes: int = DEFAULT_MAX_SEARCH_BYTES,
        session: requests.Session | None = None,
        pool_size: int = 4,
        environment: str | None = None,
    ) -> None:
        url = base_url if base_url is not None else os.environ.get("SPECTRUM_BASE_URL", "")
        if not url:
            raise ConfigError("no Spectrum base URL: pass base_url= or set SPECTRUM_BASE_URL")
        self._url = parse_base_url(url)
        self._base_url = self._url.url
        if environment is not None and not environment.strip():
            raise ConfigError("environment= must name the environment (or be left out)")
        self._environment = environment.strip() if environment is not None else self._url.url
        secret = token if token is not None else os.environ.get("SPECTRUM_API_TOKEN", "")
        self._token = Secret(_header_safe_token(secret))
        self._timeout = timeout
        self._deadline = float(deadline if deadline is not None else 2 * sum(timeout))
        self._max_answer = int(max_answer_bytes)
        self._max_search = int(max_search_bytes)
        if not (self._deadline > 0 and self._max_answer > 0 and self._max_search > 0):
            raise ConfigError("deadline, max_answer_bytes and max_search_bytes must be positive")
        self._session = session
        self._pool_size = max(1, pool_size)
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SpectrumClient(base_url={self._base_url!r}, token=<set>)"

    @property
    def base_url(self) -> str:
        """The environment's normalised base URL (no trailing slash)."""
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
        has one key, and ``https://gw/staging`` and ``https://gw/prod`` have two. An
        ``environment=`` given to the constructor replaces it (the sandbox: ``"sandbox"``).
        """
        return self._environment

    @property
    def deadline(self) -> float:
        """Seconds one request may take, answer included (see the class docstring)."""
        return self._deadline

    # ------------------------------------------------------------------ endpoints

    def update_status(self, body: StatusUpdate) -> StatusReply:
        """``PUT /api/order/status`` for one purchase order and all its line items.

        Returns
        -------
        StatusReply
            When Spectrum answered 200 with ``status`` OK; ``details`` masked and cut to
            :data:`DETAILS_LIMIT` characters.

        Raises
        ------
        NotFoundError
            404/409: some line items were not found; nothing in the order changed.
            ``missing_ids`` holds every sent id the whole answer names.
        ServerError, RateLimitedError, TransportError
            Transient: safe to retry (the update sets an absolute value). A
            ``TransportError`` also reports an answer over the size cap or the deadline.
        ForbiddenError, AuthenticationError
            403 (throttled, or the token is not allowed) and 401.
        UnexpectedResponseError
            A redirect, another status, or a 2xx whose body is not ``status: OK``.
        """
        po = body["purchaseOrderNumber"]
        sent = [item["recipeSetReadableId"] for item in body["lineItems"]]
        started = time.monotonic()
        answer = self._request("PUT", _STATUS_PATH, json=body, purchase_order=po, sent_ids=sent)
        payload = _json_object(answer, po)
        status = self._clean(str(payload.get("status", "")), _EXCERPT_LIMIT)
        details = self._clean(str(payload.get("details", "")), DETAILS_LIMIT)
        if status.upper() != "OK":
            raise UnexpectedResponseError(
                answer.status_code,
                f"the answer says status {status!r} (not OK): {details}".strip(),
                purchase_order=po,
            )
        return StatusReply(
            http_status=answer.status_code,
            purchase_order=self._clean(str(payload.get("purchaseOrderNumber", po)), 200),
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
        TransportError
            No complete answer within the deadline or the size cap, or no answer at all.
        """
        path = _ORDER_PATH + quote(purchase_order, safe="")
        answer = self._request("GET", path, purchase_order=purchase_order)
        return _json_object(answer, purchase_order)

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
        The answer may be up to ``max_search_bytes`` decoded.
        """
        body: dict[str, Any] = {
            "lastModificationStartDate": start,
            "workflowStatuses": list(statuses),
        }
        if end is not None:
            body["lastModificationEndDate"] = end
        if ignore_date_restriction:
            body["ignoreDateRestriction"] = True
        answer = self._request("POST", _SEARCH_PATH, json=body, max_bytes=self._max_search)
        data = _parse_json(answer.body)
        if not isinstance(data, list):
            raise UnexpectedResponseError(answer.status_code, "search did not return a list")
        return [o for o in data if isinstance(o, dict)]

    # ------------------------------------------------------------------ plumbing

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        purchase_order: str | None = None,
        sent_ids: Sequence[str] = (),
        max_bytes: int | None = None,
    ) -> _Answer:
        """Send one request: token header, timeout, deadline, size cap, no redirects,
        errors mapped. Returns a 2xx answer read in full.

        Every exception is raised here, outside any ``except`` block, so neither
        ``__cause__`` nor ``__context__`` can hold a ``requests`` object.
        """
        outcome = self._exchange(method, path, json, max_bytes or self._max_answer)
        if isinstance(outcome, str):
            raise TransportError(outcome, purchase_order=purchase_order) from None
        if 300 <= outcome.status_code < 400:
            where = self._clean(_where(outcome.headers.get("Location", "")), _EXCERPT_LIMIT)
            raise UnexpectedResponseError(
                outcome.status_code,
                f"redirected to {where}; not followed, so the token was not sent there. "
                "Check the base URL",
                purchase_order=purchase_order,
            ) from None
        if outcome.status_code >= 400:
            raise self._error(outcome, purchase_order, sent_ids) from None
        return outcome

    def _error(
        self, answer: _Answer, purchase_order: str | None, sent_ids: Sequence[str]
    ) -> SpectrumError:
        """The exception for an error status, its details masked first and then cut."""
        full, limit = _details(answer)
        # A gateway may echo request headers back: mask before cutting, so a token
        # straddling the cut cannot leak in part.
        details = self._clean(full, limit)
        error = error_for_status(answer.status_code)
        retry_after = _retry_after(answer.headers)
        if issubclass(error, NotFoundError):
            # Parsed from the whole text: the cut must not drop ids (issue 11, #7).
            return error(
                answer.status_code,
                details,
                purchase_order=purchase_order,
                retry_after=retry_after,
                missing_ids=parse_missing_ids(full, sent_ids),
            )
        return error(
            answer.status_code, details, purchase_order=purchase_order, retry_after=retry_after
        )

    def _exchange(self, method: str, path: str, json: Any, limit: int) -> _Answer | str:
        """One exchange under the deadline's watch: the answer, or why there is none.

        Network trouble comes back as a plain reason, never as an exception: the
        ``requests`` exceptions carry the prepared request, token header included.
        """
        session = self._thread_session()
        watch = _Watch(self._deadline)
        _in_flight.watch = watch
        timer = threading.Timer(self._deadline, watch.expire)
        timer.daemon = True
        timer.start()
        try:
            response = self._send(session, method, path, json)
            if isinstance(response, str):
                return watch.finish() or response
            if response.status_code >= 300:  # an error answer needs no search-sized room
                limit = min(limit, self._max_answer)
            return self._receive(response, limit, watch)
        finally:
            timer.cancel()
            _in_flight.watch = None

    def _send(
        self, session: requests.Session, method: str, path: str, json: Any
    ) -> requests.Response | str:
        """Send the request and read the answer's head; the body is left on the wire."""
        try:
            return session.request(
                method,
                self._base_url + path,
                json=json,
                # Built inline, never bound to a local: a traceback rendered with locals
                # (IPython's verbose mode, error reporters) must not show the token.
                headers=self._headers(),
                timeout=self._timeout,
                allow_redirects=False,
                stream=True,
            )
        except requests.Timeout:
            return f"no answer within {self._timeout[1]:g} s (timed out)"
        except requests.ConnectionError as exc:
            return f"connection failed: {_reason(exc)}"
        except (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError):
            return "the answer was cut off before it was complete"
        except requests.RequestException as exc:
            return f"request failed: {type(exc).__name__}"

    def _receive(self, response: requests.Response, limit: int, watch: _Watch) -> _Answer | str:
        """Read the body within ``limit`` decoded bytes and the deadline, then close."""
        # An injected session has no reporting connections: watch the body at least (the
        # connection may already have handed its socket to the response, then it is None).
        watch.attach(getattr(getattr(response.raw, "connection", None), "sock", None))
        try:
            body: bytes | str = _read_body(response, limit)
        except _TooLarge:
            body = (
                f"the answer is larger than {_size(limit)}; it was not read further "
                "(Spectrum's answers are far smaller)"
            )
        except _Undecodable:
            body = "the answer's content encoding could not be decoded"
        except (_CutOff, urllib3.exceptions.HTTPError, requests.RequestException, OSError):
            body = "the answer was cut off before it was complete"
        finally:
            response.close()  # after a complete read the connection is already pooled
        late = watch.finish()
        if late or isinstance(body, str):
            return late or cast(str, body)
        return _Answer(response.status_code, response.reason or "", response.headers, body)

    def _clean(self, text: str, limit: int) -> str:
        """Server text made safe to keep: one line, the token masked, then cut."""
        return _cut(_mask(" ".join(text.split()), self._token.reveal()), limit)

    def _headers(self) -> dict[str, str]:
        return {
            TOKEN_HEADER: self._token.reveal(),
            "Accept": "application/json",
            "Accept-Encoding": "gzip, deflate",  # what _read_body decodes, nothing else
        }

    def _thread_session(self) -> requests.Session:
        if self._session is not None:
            return self._session
        session = cast(requests.Session | None, getattr(self._local, "session", None))
        if session is None:
            session = requests.Session()
            session.trust_env = False  # no .netrc credentials or proxy surprises
            adapter = _WatchedAdapter(
                pool_connections=1, pool_maxsize=self._pool_size, max_retries=0
            )
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


def _header_safe_token(secret: str) -> str:
    """The token stripped, or a one-line ConfigError that never shows any of it.

    It travels as an HTTP header value, which carries plain ASCII only: a pasted curly
    quote or non-breaking space would otherwise fail deep inside the first request.
    """
    if not secret.strip():
        raise ConfigError("no API token: pass token= or set SPECTRUM_API_TOKEN")
    if any(c in secret for c in "\r\n"):
        raise ConfigError("the API token contains a line break; copy it again")
    value = secret.strip()
    if not all(" " <= c <= "~" for c in value):
        raise ConfigError(
            "the API token contains a character an HTTP header cannot carry (not plain "
            "ASCII: often a curly quote or a non-breaking space pasted with it); copy it again"
        )
    return value


# --------------------------------------------------------------------------- bounded answers


@dataclass(frozen=True)
class _Answer:
    """An HTTP answer read in full within the bounds."""

    status_code: int
    reason: str
    headers: Mapping[str, str]
    body: bytes


class _TooLarge(Exception):
    """The answer went over its size cap."""


class _CutOff(Exception):
    """The compressed answer ended before its end."""


class _Undecodable(Exception):
    """The answer's content encoding is not one the client asked for, or is corrupt."""


def _read_body(response: requests.Response, limit: int) -> bytes:
    """The whole body, decoded, if it is at most ``limit`` bytes either way.

    Read in chunks and inflated with a bound on each step's output, so a small gzip that
    inflates to hundreds of MB stops at the cap without ever being held.
    """
    coding = response.headers.get("Content-Encoding", "").strip().lower()
    if coding in ("", "identity"):
        decoder = None
    elif coding in ("gzip", "x-gzip", "deflate"):
        decoder = zlib.decompressobj(_GZIP_OR_ZLIB)
    else:
        raise _Undecodable
    length = response.headers.get("Content-Length", "").strip()
    if length.isdigit() and int(length) > limit:
        raise _TooLarge
    body, wire = bytearray(), 0
    while chunk := response.raw.read(_CHUNK, decode_content=False):
        wire += len(chunk)
        if wire > limit:
            raise _TooLarge
        if decoder is None:
            body += chunk
        elif not decoder.eof:
            _inflate(decoder, chunk, body, limit)
    if decoder is not None and wire and not decoder.eof:
        raise _CutOff
    return bytes(body)


def _inflate(decoder: Any, data: bytes, body: bytearray, limit: int) -> None:
    """Inflate ``data`` into ``body``; never more than one byte past ``limit``."""
    try:
        while data and not decoder.eof:
            body += decoder.decompress(data, limit + 1 - len(body))
            if len(body) > limit:
                raise _TooLarge
            data = decoder.unconsumed_tail
    except zlib.error:
        raise _Undecodable from None


def _size(limit: int) -> str:
    return f"{limit / 2**20:g} MB" if limit >= 2**20 else f"{limit:,} bytes"


class _Watch:
    """The deadline of one request: when it passes, the request's socket is shut down, so
    a blocked read returns at once (a read timeout bounds one ``recv`` only)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._done = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def attach(self, sock: object) -> None:
        """The socket the request uses (reported on connect, on send, and for the body)."""
        if not isinstance(sock, socket.socket):
            return
        with self._lock:
            self._sock = sock
            late = self.expired and not self._done
        if late:
            _shut(sock)

    def expire(self) -> None:
        """Called by the timer at the deadline."""
        with self._lock:
            if self._done:
                return
            self.expired = True
            sock = self._sock
        if sock is not None:
            _shut(sock)

    def finish(self) -> str | None:
        """Stop watching; the deadline's reason if it passed first, else None."""
        with self._lock:
            self._done = True
            expired = self.expired
        if not expired:
            return None
        return (
            f"no complete answer within the {self.seconds:g} s deadline (the server answered "
            "too slowly); the attempt was abandoned"
        )


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        # The plain socket's shutdown, also for TLS: SSLSocket.shutdown would drop the TLS
        # state another thread is reading with. The blocked recv then sees end of file.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


# The watch of the request this thread is sending, for its connection to report to. A
# thread sends one request at a time, so one slot per thread is enough.
_in_flight = threading.local()


def _report(sock: object) -> None:
    watch = cast(_Watch | None, getattr(_in_flight, "watch", None))
    if watch is None:
        return
    if watch.expired:
        raise OSError("the request's deadline passed")
    watch.attach(sock)


class _WatchedHTTPConnection(HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _report(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _report(self.sock)  # a pooled connection, already connected
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _report(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _report(self.sock)
        super().request(*args, **kwargs)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose connections report their socket to the deadline of their
    request, so the deadline also covers connecting and the answer's head."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPPool,
            "https": _WatchedHTTPSPool,
        }


# --------------------------------------------------------------------------- answer text


def _parse_json(body: bytes) -> Any:
    """The body as JSON, or None when it is not JSON (or nested deep enough to be hostile)."""
    try:
        return jsonlib.loads(body)
    except (ValueError, RecursionError):
        return None


def _json_object(answer: _Answer, po: str | None) -> dict[str, Any]:
    data = _parse_json(answer.body)
    if not isinstance(data, dict):
        raise UnexpectedResponseError(
            answer.status_code,
            "the answer is not the documented JSON object; the update may or may not "
            "have been applied (re-sending is safe)",
            purchase_order=po,
        )
    return cast(dict[str, Any], data)


def _details(answer: _Answer) -> tuple[str, int]:
    """Spectrum's whole ``details`` text on one line, or a body that is not the documented
    JSON; with how much of it to keep. Not cut here: the token is masked first."""
    data = _parse_json(answer.body)
    if isinstance(data, dict) and data.get("details"):
        return " ".join(str(data["details"]).split()), DETAILS_LIMIT
    text = " ".join(answer.body.decode("utf-8", "replace").split())
    return text or answer.reason, _EXCERPT_LIMIT


def _mask(text: str, secret: str) -> str:
    """``text`` with the token, and every piece of it of 8+ characters, made ``***``.

    Run on the whole text before any cut, so a token straddling the cut cannot leak even
    in part, and a token a server already cut is caught too.

    Examples
    --------
    >>> _mask("a TOKEN-1234567890 b OKEN-123 c KEN-12", "TOKEN-1234567890")
    'a *** b *** c KEN-12'
    """
    if not secret or not text:
        return text
    text = text.replace(secret, "***")
    if len(secret) <= _PIECE:
        return text
    hidden = bytearray(len(text))
    for piece in {secret[i : i + _PIECE] for i in range(len(secret) - _PIECE + 1)}:
        at = text.find(piece)
        while at >= 0:
            hidden[at : at + _PIECE] = b"\x01" * _PIECE
            at = text.find(piece, at + 1)
    if 1 not in hidden:
        return text
    kept, last = [], 0
    for run in re.finditer(rb"\x01+", hidden):
        kept += [text[last : run.start()], "***"]
        last = run.end()
    kept.append(text[last:])
    return "".join(kept)


def _cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marked with ``...`` when cut."""
    return text if len(text) <= limit else text[: max(0, limit - 3)] + "..."


def _where(location: str) -> str:
    """Where a redirect points, as ``host[:port]`` only: never user info, path or query."""
    try:
        parts = urlsplit(location.strip())
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return "an unreadable address"
    if not host:
        return "another address on this server"
    if not re.fullmatch(r"[a-z0-9._:-]{1,253}", host):
        return "another host"
    return f"{host}:{port}" if port else host


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
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
