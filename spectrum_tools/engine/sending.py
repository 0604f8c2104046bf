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
from collections.abc import Iterable
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

__all__ = ["SEND_RUN", "error_text", "run_plan"]

SEND_RUN: Final = RunKind(noun="requests", left="unsent orders are pending", then="resume the run")
_NOT_SENT: Final = "not sent: the run stopped before this order"


class _Send:
    """One run of status writes: the runner plus the observers to tell."""

    def __init__(self, run: PacedRun[OrderResult], observers: tuple[RunObserver, ...]) -> None:
        self.run = run
        self.observers = observers

    def sending(self, request: Request, n: int) -> None:
        for observer in self.observers:
            observer.sending(request, n)

    def answered(self, request: Request, n: int, status: int | None, details: str) -> None:
        for observer in self.observers:
            observer.answered(request, n, status, details)

    def finished(self, result: OrderResult) -> None:
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
        Set it from another thread to stop gracefully; Ctrl-C sets it too.

    Returns
    -------
    (results, stopped)
        ``results`` in plan order, one per request; ``stopped`` is None when the run went
        to the end, else why it stopped (:class:`~spectrum_tools.results.RunStop`).
    """
    opts = options or SendOptions()
    run: PacedRun[OrderResult] = PacedRun(client, opts, SEND_RUN, stop=stop)
    send = _Send(run, tuple(observers))
    for observer in send.observers:
        observer.run_started(plan, opts)
    results = run.run(
        plan.request_count,
        lambda index: _send_order(send, plan.request(index)),
        name="spectrum-worker",
        done=lambda _index, result: send.finished(result),
    )
    final: list[OrderResult] = []
    for index, maybe in enumerate(results):
        if maybe is None:
            maybe = OrderResult.unsent(plan.request(index), Outcome.PENDING, _NOT_SENT)
            send.finished(maybe)
        final.append(maybe)
    for observer in send.observers:
        observer.run_finished(final, run.stopped)
    return final, run.stopped


def _send_order(send: _Send, request: Request) -> OrderResult:
    """Send one order (with retries, and the optional re-send without missing ids)."""
    run = send.run
    started = time.monotonic()
    tally = Attempts()
    try:
        reply = send.put(request, tally)
    except Stopped:
        if tally.total == 0 or tally.last_status in (401, 403):
            return OrderResult.unsent(
                request,
                Outcome.PENDING,
                _NOT_SENT
                if tally.total == 0
                else f"not applied: HTTP {tally.last_status} ({tally.last_details})",
                attempts=tally.total,
                http_status=tally.last_status,
            )
        return _result(
            request,
            Outcome.FAILED,
            tally,
            started,
            f"the run stopped while retrying; last answer: {tally.describe()}",
        )
    except NotFoundError as exc:
        missing = parse_missing_ids(
            exc.details, (li["recipeSetReadableId"] for li in request.line_items)
        )
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


def _resend_without(
    send: _Send,
    request: Request,
    missing: tuple[str, ...],
    tally: Attempts,
    started: float,
    first: NotFoundError,
) -> OrderResult:
    """Re-send an order without the line items Spectrum could not find."""
    smaller = request.without(set(missing))
    try:
        reply = send.put(smaller, tally)
    except NotFoundError as exc:
        more = parse_missing_ids(
            exc.details, (li["recipeSetReadableId"] for li in smaller.line_items)
        )
        return _result(request, Outcome.NOT_FOUND, tally, started, exc.details, (*missing, *more))
    except Stopped:
        return _result(
            request,
            Outcome.NOT_FOUND,
            tally,
            started,
            f"{first.details} (the run stopped before the re-send without them)",
            missing,
        )
    except (APIError, TransportError) as exc:
        return _result(
            request,
            Outcome.FAILED,
            tally,
            started,
            f"re-send without missing ids failed: {error_text(exc)}",
            missing,
        )
    text = f"{reply.details} Not found, left out: {', '.join(missing)}."
    return _result(
        request, Outcome.PARTIAL, tally, started, text, missing, http_status=reply.http_status
    )


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
        details=details,
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
