"""Send a plan: the per-order write logic on top of the one paced runner.

I/O: the network, through :class:`~spectrum_tools.client.SpectrumClient` only.

Per order (docs/spectrum-api.md, "Update workflow status"): one ``PUT`` carrying all its
line items, paced and retried by :class:`~spectrum_tools.engine.runner.PacedRun`; 404/409
make it ``not_found`` with its missing ids (or, with ``retry_without_missing``, a re-send
without them: ``partial``); 401, or 403 before any success, stops the run and leaves the
order ``pending``. Every order of the plan ends with exactly one
:class:`~spectrum_tools.results.OrderResult`, and observers hear of each step.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from typing import Final

from spectrum_tools.client import SpectrumClient, StatusReply, parse_missing_ids
from spectrum_tools.engine.options import SendOptions
from spectrum_tools.engine.retry import Attempts
from spectrum_tools.engine.runner import PacedRun, RunKind, Stopped
from spectrum_tools.errors import (
    APIError,
    AuthenticationError,
    ForbiddenError,
    NotFoundError,
    SpectrumError,
    TransportError,
)
from spectrum_tools.planning import Plan, Request
from spectrum_tools.results import OrderResult, RunObserver, RunStop
from spectrum_tools.schema import Outcome

__all__ = ["DETAILS_MAX", "SEND_RUN", "error_text", "run_plan"]

SEND_RUN: Final = RunKind(noun="requests", left="unsent orders are pending", then="resume the run")
_NOT_SENT: Final = "not sent: the run stopped before this order"
_IN_FLIGHT: Final = (
    "in flight when the run stopped: no answer within the request deadline; resuming the "
    "run sends it again"
)
DETAILS_MAX: Final = 2000
"""Characters of ``details`` an order's result keeps (the client already cuts answers)."""


class _Send:
    """One run of status writes: the runner plus the observers to tell.

    Once the run has ended (:meth:`close`), a worker still out past the drain deadline is
    no longer heard: the run's results and its journal are final.
    """

    def __init__(self, run: PacedRun[OrderResult], observers: tuple[RunObserver, ...]) -> None:
        self.run = run
        self.observers = observers
        self.out: set[str] = set()  # orders with a request sent (they may be in flight)
        self._lock = threading.RLock()
        self._closed = False

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def sending(self, request: Request, n: int) -> None:
        with self._lock:
            if self._closed:
                raise Stopped
            self.out.add(request.purchase_order)
            for observer in self.observers:
                observer.sending(request, n)

    def answered(self, request: Request, n: int, status: int | None, details: str) -> None:
        with self._lock:
            if self._closed:
                return
            for observer in self.observers:
                observer.answered(request, n, status, details)

    def finished(self, result: OrderResult) -> None:
        with self._lock:
            if self._closed:
                return
            for observer in self.observers:
                observer.finished(result)

    def put(self, request: Request, tally: Attempts) -> StatusReply:
        """One order's PUT through the runner (paced, retried, observed)."""
        client = self.run.client
        return self.run.call(
            lambda: client.update_status(request.body),
            tally,
            answer=lambda reply: (reply.http_status, reply.details),
            sending=lambda n: self.sending(request, n),
            answered=lambda n, status, details: self.answered(request, n, status, details),
        )


def run_plan(
    plan: Plan,
    client: SpectrumClient,
    options: SendOptions | None = None,
    *,
    observers: Iterable[RunObserver] = (),
    stop: threading.Event | None = None,
) -> tuple[list[OrderResult], RunStop | None]:
    """Send every request of ``plan`` and return one result per request.

    Parameters
    ----------
    plan
        What to send.
    client
        Where to send it.
    options
        Pacing and retries; defaults follow Spectrum's documented limits.
    observers
        Hooks called as the run goes (journal, progress bar, widgets).
    stop
        Set it from another thread to stop gracefully; Ctrl-C sets it too. Requests in
        flight then get at most one request deadline (``client.deadline``) to finish;
        orders still out after that are ``pending`` ("in flight when the run stopped"),
        and a resume sends them again (a status PUT is idempotent).

    Returns
    -------
    (results, stopped)
        ``results`` in plan order, one per request; ``stopped`` is None when the run went
        to the end, else why it stopped (:class:`~spectrum_tools.results.RunStop`).

    Raises
    ------
    Exception
        What a worker raised (a bug, an observer's error): the run is first ended as
        if stopped (every order gets its one result, observers hear ``run_finished``).
    """
    opts = options or SendOptions()
    run: PacedRun[OrderResult] = PacedRun(client, opts, SEND_RUN, stop=stop)
    send = _Send(run, tuple(observers))
    for observer in send.observers:
        observer.run_started(plan, opts)
    crash: BaseException | None = None
    results: Sequence[OrderResult | None] = [None] * plan.request_count
    try:
        results = run.run(
            plan.request_count,
            lambda index: _send_order(send, plan.request(index)),
            name="spectrum-worker",
            done=lambda _index, result: send.finished(result),
            drain_s=client.deadline,
        )
    except Exception as exc:  # a crash in a worker: end the run properly, then re-raise
        crash = exc
        results = run.partial_results
    final = _final(plan, results, send)
    for observer in send.observers:
        observer.run_finished(final, run.stopped)
    if crash is not None:
        raise crash
    return final, run.stopped


def _final(plan: Plan, results: Sequence[OrderResult | None], send: _Send) -> list[OrderResult]:
    """Every order's one result: the ones without (never sent, or still out) are pending."""
    send.close()  # from here on, a worker still out past the deadline is not heard
    final: list[OrderResult] = []
    for index, maybe in enumerate(results):
        if maybe is None:
            request = plan.request(index)
            out = request.purchase_order in send.out
            maybe = OrderResult.unsent(request, Outcome.PENDING, _IN_FLIGHT if out else _NOT_SENT)
            for observer in send.observers:
                observer.finished(maybe)
        final.append(maybe)
    return final


def _send_order(send: _Send, request: Request) -> OrderResult:
    """Send one order (with retries, and the optional re-sends without missing ids)."""
    run = send.run
    started = time.monotonic()
    tally = Attempts()
    try:
        reply = send.put(request, tally)
    except Stopped:
        return _stopped(request, tally)
    except NotFoundError as exc:
        missing = _missing(exc, request)
        if run.options.retry_without_missing and missing and len(missing) < request.line_count:
            return _resend_without(send, request, missing, tally, started, exc)
        return _result(request, Outcome.NOT_FOUND, tally, started, exc.details, missing)
    except (ForbiddenError, AuthenticationError) as exc:
        if isinstance(exc, ForbiddenError) and run.has_succeeded and not run.stop.is_set():
            return _result(
                request,
                Outcome.FAILED,
                tally,
                started,
                f"still throttled (HTTP 403) after {tally.throttled} tries: {exc.details}",
            )
        run.refuse(exc.status_code)
        return OrderResult.unsent(
            request,
            Outcome.PENDING,
            f"not applied: HTTP {exc.status_code} ({exc.details})",
            attempts=tally.total,
            http_status=exc.status_code,
        )
    except (APIError, TransportError) as exc:
        return _result(request, Outcome.FAILED, tally, started, error_text(exc))
    return _result(
        request, Outcome.UPDATED, tally, started, reply.details, http_status=reply.http_status
    )


def _stopped(request: Request, tally: Attempts) -> OrderResult:
    """The run stopped before (another) attempt of this order: it is ``pending``.

    It never got a definitive answer (issue 11: a stop during a retry wait is not a
    failure), so resuming the run sends it again; a status PUT is idempotent.
    """
    if tally.total == 0:
        details = _NOT_SENT
    elif tally.last_status in (401, 403):
        details = f"not applied: HTTP {tally.last_status} ({tally.last_details})"
    else:
        details = (
            "no definitive answer: the run stopped while retrying (last answer: "
            f"{tally.describe()}); resuming the run sends it again"
        )
    return OrderResult.unsent(
        request,
        Outcome.PENDING,
        _bounded(details),
        attempts=tally.total,
        http_status=tally.last_status,
    )


def _missing(exc: NotFoundError, request: Request) -> tuple[str, ...]:
    """The request's line items the answer names as not found.

    From ``missing_ids``, which the client parsed from the whole answer before cutting
    its details (issue 11); the details are parsed only as a fallback.
    """
    ids = [li["recipeSetReadableId"] for li in request.line_items]
    if exc.missing_ids:
        named = set(exc.missing_ids)
        return tuple(i for i in dict.fromkeys(ids) if i in named)
    return parse_missing_ids(exc.details, ids)


def _resend_without(
    send: _Send,
    request: Request,
    missing: tuple[str, ...],
    tally: Attempts,
    started: float,
    first: NotFoundError,
) -> OrderResult:
    """Re-send an order without the line items Spectrum could not find, again and again
    while each answer names more, until it succeeds or nothing is left.

    Each round leaves out at least one more line item, so there are at most as many
    rounds as the order has line items.
    """
    left_out = list(missing)
    last = first
    smaller = request.without(set(left_out))
    for _ in range(request.line_count):
        try:
            reply = send.put(smaller, tally)
        except NotFoundError as exc:
            last = exc
            more = [i for i in _missing(exc, smaller) if i not in left_out]
            if not more or len(more) >= smaller.line_count:
                left_out += more
                break
            left_out += more
            smaller = request.without(set(left_out))
            continue
        except Stopped:
            return _stopped(request, tally)
        except (APIError, TransportError) as exc:
            return _result(
                request,
                Outcome.FAILED,
                tally,
                started,
                f"re-send without missing ids failed: {error_text(exc)}",
                tuple(left_out),
            )
        text = f"{reply.details} Not found, left out: {_some(left_out)}."
        return _result(
            request,
            Outcome.PARTIAL,
            tally,
            started,
            text,
            tuple(left_out),
            http_status=reply.http_status,
        )
    return _result(request, Outcome.NOT_FOUND, tally, started, last.details, tuple(left_out))


def _some(ids: list[str], shown: int = 20) -> str:
    """Ids for a message, at most ``shown`` of them ("A, B and 78 more")."""
    text = ", ".join(ids[:shown])
    return text if len(ids) <= shown else f"{text} and {len(ids) - shown} more"


def _bounded(details: str) -> str:
    """``details`` cut to :data:`DETAILS_MAX` characters: results and the journal stay small."""
    return details if len(details) <= DETAILS_MAX else details[: DETAILS_MAX - 1] + "…"


def _result(
    request: Request,
    outcome: Outcome,
    tally: Attempts,
    started: float,
    details: str,
    missing: tuple[str, ...] = (),
    *,
    http_status: int | None = None,
) -> OrderResult:
    return OrderResult(
        purchase_order=request.purchase_order,
        outcome=outcome,
        http_status=http_status if http_status is not None else tally.last_status,
        details=_bounded(details),
        line_count=request.line_count,
        missing_ids=missing,
        attempts=tally.total,
        elapsed_s=time.monotonic() - started,
        source_rows=request.source_rows,
    )


def error_text(exc: SpectrumError) -> str:
    """A failure in a few words: "HTTP 500: details", or the transport error's text.

    Examples
    --------
    >>> from spectrum_tools.errors import ServerError
    >>> error_text(ServerError(500, "boom"))
    'HTTP 500: boom'
    """
    if isinstance(exc, APIError):
        return (
            f"HTTP {exc.status_code}: {exc.details}" if exc.details else f"HTTP {exc.status_code}"
        )
    return str(exc)
