"""The sandbox's HTTP face: a Starlette app that answers as Spectrum does. Touches the store.

Routes (every one needs the ``SPECTRUM_API_TOKEN`` header):

=========================================  ================================================
``PUT|POST /api/order/status[/]``          update line items' workflow status, all or none
``GET /api/order/order-number/{po}``       read an order back
``POST /api/orders/search``                orders with line items in given statuses
``GET|DELETE /_sandbox/requests``          read / clear the request log (tests only)
``GET|PUT /_sandbox/settings``             read / change the fault switches (tests only)
``GET|PUT /_sandbox/orders/{po}``          read / stage an order's statuses and time (tests)
=========================================  ================================================

The search (docs/spectrum-api.md, "Search" and "How the sandbox plays reads") filters per
order: an order is returned, whole, when its last-modification time is within
``[lastModificationStartDate, lastModificationEndDate]`` (end: now by default) and any of
its line items holds one of ``workflowStatuses``. A window over 31 days answers 400 unless
``ignoreDateRestriction`` is true. The switches ``expose_workflow_status`` and
``alternative_field_names`` change how GET and search answers *show* orders, never which
orders match.

``PUT /_sandbox/orders/{po}`` takes ``{"lineItems": [{"recipeSetId": ...,
"workflowStatus": ...}], "lastModified": "<ISO 8601>"}`` (both optional; the time defaults
to now; ``recipeSetReadableId`` is accepted for ``recipeSetId``) and sets those statuses
and the order's time directly, all or none, so a test can stage "someone else changed it
since". It answers the order as ``GET /_sandbox/orders/{po}``
shows it (every status and time, whatever the switches), 404 for an unknown order, 409
naming ids the order does not have, 400 for a malformed body.

Order of checks on an ``/api/`` request, as a gateway in front of Spectrum would do them:
rate limit, then token, then the request itself. Choices where the docs are silent:

- Rate limiting counts *every* request that reaches an endpoint, whatever its answer
  (bad token and malformed requests included), except those it refuses itself: a client
  that keeps retrying while throttled is let in again once its window clears. The four
  spellings of the status endpoint (PUT/POST, with or without trailing slash) are one
  endpoint; ``/_sandbox/`` routes are never throttled, delayed or logged.
- The artificial latency is added after the request is processed, so a client that times
  out has still had its update applied, which is what makes retries worth testing.
- Injected faults (``fail_first``, ``error_rate``) hit only well-formed status updates and
  never change the store.
- No route redirects (trailing slashes included): a client must not follow redirects
  with its token, so the sandbox never offers one.

The request log holds method, path (never the query string), PO, ids, answer and times;
never headers, never the token.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, TypedDict

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from spectrum_tools.sandbox.settings import SandboxSettings
from spectrum_tools.sandbox.store import SandboxStore, format_timestamp
from spectrum_tools.sandbox.vendor import (
    BAD_TOKEN_DETAILS,
    RATE_LIMIT_DETAILS,
    WORKFLOW_STATUSES,
    OrderJSON,
    StatusAnswer,
    error_body,
    not_found_details,
    server_error_details,
    updated_details,
)

__all__ = ["TOKEN_HEADER", "RequestLog", "RequestRecord", "create_app"]

TOKEN_HEADER: Final = "SPECTRUM_API_TOKEN"  # noqa: S105 - a header name, not a secret
# The search refuses longer windows unless ignoreDateRestriction is true
# (docs/spectrum-api.md, Search).
SEARCH_MAX_WINDOW: Final = timedelta(days=31)
_MAX_BODY_BYTES: Final = 5_000_000

_log = logging.getLogger(__name__)


class RequestRecord(TypedDict):
    """One ``/api/`` request as the sandbox saw and answered it. Never headers or token."""

    method: str
    path: str
    endpoint: str
    purchaseOrderNumber: str | None
    lineItemCount: int | None
    recipeSetReadableIds: list[str]
    status: int
    note: str
    time: float
    monotonic: float


class RequestLog:
    """A bounded, thread-safe, in-memory log of the requests the sandbox answered.

    Parameters
    ----------
    maxlen
        How many records to keep; the oldest are dropped first.
    """

    def __init__(self, maxlen: int = 10_000) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def append(self, record: RequestRecord) -> None:
        """Add a record."""
        with self._lock:
            self._records.append(record)

    def records(self) -> list[RequestRecord]:
        """Return a copy of the records, oldest first."""
        with self._lock:
            return [
                RequestRecord(**{**r, "recipeSetReadableIds": list(r["recipeSetReadableIds"])})
                for r in self._records
            ]

    def clear(self) -> int:
        """Forget every record; return how many there were."""
        with self._lock:
            count = len(self._records)
            self._records.clear()
        return count

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)


class _RateLimiter:
    """Sliding-window counters, one per endpoint. Used from the event loop thread only."""

    def __init__(self) -> None:
        self._hits: dict[str, deque[float]] = {}

    def allow(self, endpoint: str, limit: int | None, window_s: float, now: float) -> bool:
        hits = self._hits.setdefault(endpoint, deque())
        while hits and hits[0] <= now - window_s:
            hits.popleft()
        if limit is None:
            hits.append(now)
            return True
        if len(hits) >= limit:
            # Spectrum answers 403, not 429, when throttled, and sends no Retry-After
            # (docs/spectrum-api.md, Throttle or refused token (403)).
            return False
        hits.append(now)
        return True


@dataclass
class _Seen:
    """What a handler learned about a request, for the log."""

    po: str | None = None
    ids: list[str] = field(default_factory=list)
    count: int | None = None
    note: str = ""


_Handler = Callable[[Request, _Seen], Awaitable[Response]]


class _Sandbox:
    """The request handlers, sharing the store, settings, token, log and counters."""

    def __init__(
        self, store: SandboxStore, settings: SandboxSettings, token: str, log: RequestLog
    ) -> None:
        self.store = store
        self.settings = settings
        self._token = token.encode()
        self.log = log
        self._limiter = _RateLimiter()
        self._rng_seed = settings.seed
        self._rng = random.Random(settings.seed)

    # -- plumbing --------------------------------------------------------------------------

    def _token_ok(self, request: Request) -> bool:
        sent = request.headers.get(TOKEN_HEADER)
        return sent is not None and hmac.compare_digest(sent.encode(), self._token)

    def _auth_failure(self) -> JSONResponse:
        return JSONResponse(
            error_body(BAD_TOKEN_DETAILS), status_code=self.settings.auth_failure_status
        )

    def _random(self) -> float:
        if self.settings.seed != self._rng_seed:
            self._rng_seed = self.settings.seed
            self._rng = random.Random(self._rng_seed)
        return self._rng.random()

    def _redact(self, text: str) -> str:
        token = self._token.decode()
        return text.replace(token, "***") if token in text else text

    async def api(self, request: Request, endpoint: str, handler: _Handler) -> Response:
        """Throttle, authenticate, handle, log and delay one ``/api/`` request."""
        arrived, epoch = time.monotonic(), time.time()
        seen = _Seen()
        settings = self.settings
        if not self._limiter.allow(endpoint, settings.rate_limit, settings.rate_window_s, arrived):
            response: Response = JSONResponse(error_body(RATE_LIMIT_DETAILS), status_code=403)
            seen.note = "rate limited"
        elif not self._token_ok(request):
            response = self._auth_failure()
            seen.note = "bad or missing token"
        else:
            try:
                response = await handler(request, seen)
            except Exception:
                # Spectrum answers 500 for "an error inside Spectrum"; so does the sandbox
                # for its own bugs, and logs them.
                _log.exception("sandbox handler failed")
                response = JSONResponse(_status_answer(seen.po or "", 500), status_code=500)
                seen.note = "internal error"
        self.log.append(
            RequestRecord(
                method=request.method,
                path=self._redact(request.url.path),
                endpoint=endpoint,
                purchaseOrderNumber=None if seen.po is None else self._redact(seen.po),
                lineItemCount=seen.count,
                recipeSetReadableIds=[self._redact(i) for i in seen.ids],
                status=response.status_code,
                note=seen.note,
                time=epoch,
                monotonic=arrived,
            )
        )
        if settings.latency_s > 0:
            await asyncio.sleep(settings.latency_s)
        return response

    # -- /api/order/status -----------------------------------------------------------------

    async def update_status(self, request: Request, seen: _Seen) -> Response:
        """Apply one order's status update, all or none."""
        try:
            body: object = json.loads(await request.body())
        except ValueError:
            seen.note = "malformed: body is not JSON"
            return _status_error("")
        raw_po = body.get("purchaseOrderNumber") if isinstance(body, dict) else None
        po = raw_po if isinstance(raw_po, str) and raw_po.strip() else ""
        seen.po = po or None
        items = body.get("lineItems") if isinstance(body, dict) else None
        if isinstance(items, list):
            seen.count = len(items)
            seen.ids = [
                i["recipeSetReadableId"]
                for i in items
                if isinstance(i, dict) and isinstance(i.get("recipeSetReadableId"), str)
            ]
        problem = _status_body_problem(body)
        if problem:
            seen.note = f"malformed: {problem}"
            return _status_error(po)
        assert isinstance(body, dict)
        line_items: list[dict[str, str]] = body["lineItems"]

        remaining = self.settings.fail_first.get(po, 0)
        if remaining > 0:
            self.settings.fail_first[po] = remaining - 1
            seen.note = "injected: fail_first"
            return _status_error(po)
        if self.settings.error_rate > 0 and self._random() < self.settings.error_rate:
            seen.note = "injected: error_rate"
            return _status_error(po)

        missing = self.store.apply_status_update(po, line_items)
        if missing:
            seen.note = "not found: " + ", ".join(missing)
            return JSONResponse(
                _status_answer(po, self.settings.not_found_status, not_found_details(missing)),
                status_code=self.settings.not_found_status,
            )
        ids = list(dict.fromkeys(i["recipeSetReadableId"] for i in line_items))
        return JSONResponse(_status_answer(po, 200, updated_details(ids)))

    # -- reading ---------------------------------------------------------------------------

    def _shown(self, order: OrderJSON) -> dict[str, object]:
        """Show an order as the switches say: status hidden, alternative field names."""
        hide = not self.settings.expose_workflow_status
        alternative = self.settings.alternative_field_names
        items: list[dict[str, object]] = []
        for item in order["lineItems"]:
            shown: dict[str, object] = dict(item)
            if hide:
                shown.pop("workflowStatus", None)
            if alternative:
                shown = {
                    ("recipeSetReadableId" if k == "recipeSetId" else k): v
                    for k, v in shown.items()
                }
            items.append(shown)
        key = "line_items" if alternative else "lineItems"
        return {"purchaseOrderNumber": order["purchaseOrderNumber"], key: items}

    async def get_order(self, request: Request, seen: _Seen) -> Response:
        """Return one order, or 404."""
        po = str(request.path_params["po"])
        seen.po = po
        order = self.store.get_order(po)
        if order is None:
            seen.note = "order not found"
            return _order_not_found(po)
        seen.count = len(order["lineItems"])
        return JSONResponse(self._shown(order))

    async def search(self, request: Request, seen: _Seen) -> Response:
        """Return the orders matching a search body, or 400."""
        try:
            body: object = json.loads(await request.body())
        except ValueError:
            body = None
        query = _parse_search(body, now=datetime.now(UTC))
        if isinstance(query, str):
            seen.note = f"bad search: {query}"
            return JSONResponse(error_body(query), status_code=400)
        orders = self.store.search(query.statuses, start=query.start, end=query.end)
        seen.count = len(orders)
        seen.note = query.describe(len(orders))
        if query.ignore_date_restriction and self.settings.wide_search_latency_s > 0:
            await asyncio.sleep(self.settings.wide_search_latency_s)
        return JSONResponse([self._shown(o) for o in orders])

    # -- /_sandbox/ ------------------------------------------------------------------------

    async def requests(self, request: Request) -> Response:
        """GET: the request log; DELETE: clear it."""
        if not self._token_ok(request):
            return self._auth_failure()
        if request.method == "DELETE":
            return JSONResponse({"cleared": self.log.clear()})
        return JSONResponse(self.log.records())

    async def settings_route(self, request: Request) -> Response:
        """GET: the fault switches; PUT: change some of them (all or none)."""
        if not self._token_ok(request):
            return self._auth_failure()
        if request.method == "PUT":
            try:
                changes: object = json.loads(await request.body())
            except ValueError:
                changes = None
            if not isinstance(changes, dict):
                return JSONResponse(error_body("Send a JSON object of settings."), 400)
            try:
                self.settings.update(changes)
            except ValueError as exc:
                return JSONResponse(error_body(str(exc)), status_code=400)
        return JSONResponse(self.settings.to_dict())

    async def order_route(self, request: Request) -> Response:
        """GET: an order with every status and time; PUT: stage statuses and time."""
        if not self._token_ok(request):
            return self._auth_failure()
        po = str(request.path_params["po"])
        if request.method == "PUT":
            try:
                body: object = json.loads(await request.body())
            except ValueError:
                body = None
            stage = _parse_stage(body)
            if isinstance(stage, str):
                return JSONResponse(error_body(stage), status_code=400)
            statuses, modified = stage
            try:
                missing = self.store.stage_order(po, statuses, modified=modified)
            except KeyError:
                return _order_not_found(po)
            if missing:
                answer = {"purchaseOrderNumber": po, **error_body(not_found_details(missing))}
                return JSONResponse(answer, status_code=409)
        record = self.store.order_record(po)
        return _order_not_found(po) if record is None else JSONResponse(record)


def _status_answer(po: str, code: int, details: str | None = None) -> StatusAnswer:
    if details is None:
        details = server_error_details(po)
    return {
        "purchaseOrderNumber": po,
        "status": "OK" if code == 200 else "Error",
        "details": details,
    }


def _order_not_found(po: str) -> JSONResponse:
    body = {"purchaseOrderNumber": po, **error_body(f"Unable to find order {po}.")}
    return JSONResponse(body, status_code=404)


def _status_error(po: str) -> JSONResponse:
    # Spectrum answers 500 for a bad request or an inside error, naming the PO
    # (docs/spectrum-api.md, Status answers).
    return JSONResponse(_status_answer(po, 500), status_code=500)


def _status_body_problem(body: object) -> str:
    """Return why a status-update body is malformed, or ``""`` when it is well formed."""
    if not isinstance(body, dict):
        return "body is not a JSON object"
    po = body.get("purchaseOrderNumber")
    if not isinstance(po, str) or not po.strip():
        return "purchaseOrderNumber missing, blank or not a string"
    items = body.get("lineItems")
    if not isinstance(items, list) or not items:
        return "lineItems missing, empty or not a list"
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            return f"lineItems[{n}] is not an object"
        rid = item.get("recipeSetReadableId")
        if not isinstance(rid, str) or not rid.strip():
            return f"lineItems[{n}].recipeSetReadableId missing, blank or not a string"
        status = item.get("workflowStatus")
        if status not in WORKFLOW_STATUSES:
            return f"lineItems[{n}].workflowStatus {status!r} is not a workflow status"
    return ""


def _parse_time(value: object, name: str) -> datetime | str:
    if not isinstance(value, str):
        return f"{name} must be an ISO 8601 date-time string."
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return f"{name} must be an ISO 8601 date-time string."
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class _Search:
    """A search body the sandbox accepted."""

    statuses: list[str]
    start: datetime
    end: datetime
    ignore_date_restriction: bool

    def describe(self, found: int) -> str:
        """One line for the request log: the window, the statuses asked, what was found."""
        wide = ", ignoreDateRestriction" if self.ignore_date_restriction else ""
        return (
            f"search {format_timestamp(self.start)} to {format_timestamp(self.end)}"
            f", {len(self.statuses)} status(es){wide}: {found} order(s)"
        )


def _parse_stage(body: object) -> tuple[dict[str, str], datetime | None] | str:
    """Return ``(recipeSetId -> status, time)`` of a staging body, or why it is refused."""
    if not isinstance(body, dict):
        return "Send a JSON object."
    items = body.get("lineItems", [])
    if not isinstance(items, list):
        return "lineItems must be a list."
    statuses: dict[str, str] = {}
    for item in items:
        rid = (
            item.get("recipeSetId", item.get("recipeSetReadableId"))
            if isinstance(item, dict)
            else None
        )
        status = item.get("workflowStatus") if isinstance(item, dict) else None
        if not isinstance(rid, str) or not rid:
            return "Each line item needs a recipeSetId."
        if not isinstance(status, str) or status not in WORKFLOW_STATUSES:
            return f"Line item {rid}: workflowStatus must be one of Spectrum's statuses."
        statuses[rid] = status
    raw_time = body.get("lastModified")
    if raw_time is None:
        return statuses, None
    parsed = _parse_time(raw_time, "lastModified")
    if isinstance(parsed, str):
        return parsed
    return statuses, parsed


def _parse_search(body: object, *, now: datetime) -> _Search | str:
    """Return the accepted search, or why it is refused (the ``details`` of a 400)."""
    if not isinstance(body, dict):
        return "Send a JSON object."
    statuses = body.get("workflowStatuses")
    if (
        not isinstance(statuses, list)
        or not statuses
        or not all(isinstance(s, str) and s in WORKFLOW_STATUSES for s in statuses)
    ):
        return "workflowStatuses must be a non-empty list of workflow statuses."
    ignore = body.get("ignoreDateRestriction", False)
    if not isinstance(ignore, bool):
        return "ignoreDateRestriction must be true or false."
    # Required, even with ignoreDateRestriction (docs/spectrum-api.md, Search).
    start = _parse_time(body.get("lastModificationStartDate"), "lastModificationStartDate")
    if isinstance(start, str):
        return start
    end = now
    raw_end = body.get("lastModificationEndDate")
    if raw_end is not None:
        parsed = _parse_time(raw_end, "lastModificationEndDate")
        if isinstance(parsed, str):
            return parsed
        end = parsed
    if end < start:
        return "lastModificationEndDate is before lastModificationStartDate."
    if not ignore and end - start > SEARCH_MAX_WINDOW:
        return (
            "The date range cannot exceed 31 days unless ignoreDateRestriction is true"
            f" (asked for {_days(end - start)} days)."
        )
    return _Search(list(dict.fromkeys(statuses)), start, end, ignore)


def _days(span: timedelta) -> str:
    return f"{span.total_seconds() / 86_400:.4g}"


def create_app(
    store: SandboxStore,
    settings: SandboxSettings,
    token: str,
    *,
    request_log: RequestLog | None = None,
) -> Starlette:
    """Build the sandbox's Starlette app.

    Parameters
    ----------
    store
        The order state the app reads and updates.
    settings
        The fault switches, read on every request (change them at any time).
    token
        The value the ``SPECTRUM_API_TOKEN`` header must carry.
    request_log
        Where requests are recorded; a new one (reachable as ``app.state.request_log``)
        when omitted.

    Returns
    -------
    starlette.applications.Starlette
        The ASGI app. ``app.state`` holds ``store``, ``settings`` and ``request_log``; it
        does not hold the token.

    Raises
    ------
    ValueError
        When ``token`` is empty.

    Examples
    --------
    >>> store = SandboxStore(getfixture("tmp_path") / "s.sqlite3")
    >>> app = create_app(store, SandboxSettings(), "secret")
    >>> sorted({m for r in app.routes for m in getattr(r, "methods", ())})
    ['DELETE', 'GET', 'HEAD', 'POST', 'PUT']
    >>> store.close()
    """
    if not token:
        raise ValueError("the sandbox needs a non-empty token")
    log = request_log if request_log is not None else RequestLog()
    sandbox = _Sandbox(store, settings, token, log)

    def api(endpoint: str, handler: _Handler) -> Callable[[Request], Awaitable[Response]]:
        async def route(request: Request) -> Response:
            return await sandbox.api(request, endpoint, handler)

        return route

    status = api("order-status", sandbox.update_status)
    routes = [
        Route("/api/order/status", status, methods=["PUT", "POST"]),
        # A public production client calls the status endpoint with a trailing slash
        # (docs/spectrum-api.md, Update workflow status).
        Route("/api/order/status/", status, methods=["PUT", "POST"]),
        Route(
            "/api/order/order-number/{po:path}",
            api("order-number", sandbox.get_order),
            methods=["GET"],
        ),
        Route("/api/orders/search", api("orders-search", sandbox.search), methods=["POST"]),
        Route("/_sandbox/requests", sandbox.requests, methods=["GET", "DELETE"]),
        Route("/_sandbox/settings", sandbox.settings_route, methods=["GET", "PUT"]),
        Route("/_sandbox/orders/{po:path}", sandbox.order_route, methods=["GET", "PUT"]),
    ]
    app = Starlette(routes=routes, max_body_size=_MAX_BODY_BYTES)
    app.router.redirect_slashes = False
    app.state.store = store
    app.state.settings = settings
    app.state.request_log = log
    return app
