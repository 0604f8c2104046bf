"""Send a plan to Spectrum: pacing, concurrent workers, retries, one outcome per order.

I/O: network, through :class:`~spectrum_tools.client.SpectrumClient` only.

How a run behaves (see ``../shared/spectrum-api.md``):

* **Pacing** — requests start at evenly spaced slots, ``60 / max_per_minute`` seconds
  apart (plus a 2 % margin for network jitter), so no 60 s window ever holds more than
  ``max_per_minute``
  request starts. Retries take slots too. ``workers`` requests may be in flight at once
  to hide latency; they never make the pace faster.
* **Retries** (tenacity) — connection errors, timeouts, 500/502/503/504 and 429 are
  retried with exponential backoff and jitter, ``max_attempts`` in all; 429's
  ``Retry-After`` is honoured up to a cap. A status PUT sets an absolute value, so a
  retry is safe. 404/409 are never retried.
* **403** — Spectrum's throttling answer. After a success in this run it means
  "slow down": the pace is cut and the request retried after a pause; a clean stretch
  earns the pace back. Before any success it may just as well be a bad token, so the run
  stops (:class:`~spectrum_tools.errors.RunStoppedError`), as it does on 401, and as it
  does after a long streak of 403s (a token revoked mid-run).
* **No answer at all** — after 3 orders in a row (10 once something got through) with
  no HTTP answer, the run stops: a wrong URL or a lost network, not a sheet to burn.
* **Stopping** — Ctrl-C or ``stop.set()``: no new requests start, in-flight ones
  finish, and every order not sent is ``pending``.

Every order of the plan ends with exactly one :class:`OrderResult`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pandas as pd
import tenacity

from spectrum_tools.client import SpectrumClient, parse_missing_ids
from spectrum_tools.errors import (
    APIError,
    AuthenticationError,
    ConfigError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    RunStoppedError,
    ServerError,
    SpectrumError,
    TransportError,
)
from spectrum_tools.planning import Plan, Request, plan_updates
from spectrum_tools.schema import (
    ATTEMPTS,
    DETAILS,
    ELAPSED_S,
    HTTP_STATUS,
    LINE_COUNT,
    MISSING_IDS,
    OUTCOME,
    PO,
    PROBLEM,
    RESULT_COLUMNS,
    SOURCE_ROW,
    SOURCE_ROWS,
    VALID,
    Outcome,
)
from spectrum_tools.sheets import read_updates

__all__ = [
    "Attempts",
    "DispatchObserver",
    "OrderResult",
    "Pacer",
    "SendOptions",
    "format_duration",
    "line_results",
    "results_frame",
    "retry_policy",
    "run_plan",
    "run_workers",
    "send_updates",
]

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_STOP_MESSAGE = (
    "Spectrum refused the first requests with HTTP {code}. Either the API token is not "
    "allowed (wrong token, or no access to this environment) or the rate limit was already "
    "used up by someone else. Check SPECTRUM_API_TOKEN and the base URL, wait a minute, and "
    "resume the run; unsent orders are pending."
)


_STREAK_MESSAGE = (
    "Spectrum answered HTTP 403 to {n} requests in a row after earlier successes. A "
    "throttle would have lifted by now, so the token may have been revoked, or another "
    "client is using up the rate limit. The run stopped; unsent orders are pending: resume "
    "it later."
)


_UNREACHABLE_MESSAGE = (
    "No answer from {host} for {n} orders in a row ({reason}). Check the base URL and the "
    "network; the run stopped, unsent orders are pending: resume it when the host answers."
)


@dataclass(frozen=True)
class SendOptions:
    """How a run paces and retries. The defaults follow Spectrum's documented limits.

    Attributes
    ----------
    max_per_minute
        Request starts per minute at most (Spectrum: under 100 per 60 s is always safe).
    workers
        Requests in flight at once.
    max_attempts
        Attempts per order in all, for transient failures.
    retry_without_missing
        After a 404/409, re-send the order without the missing line items (``partial``).
    backoff_s, backoff_max_s
        Exponential backoff (with jitter) between attempts: first wait and cap.
    retry_after_max_s
        Cap on a 429's ``Retry-After``.
    throttle_pause_s
        Pause after a 403 throttle answer before the next request of the run.
    max_throttle_retries
        Retries of one order after 403 throttling (they do not use up ``max_attempts``).
    max_forbidden_streak
        403 answers in a row, after earlier successes, that stop the run: a throttle
        lifts, so an endless series looks like a token revoked mid-run.
    max_unreachable_orders
        Orders in a row that fail without any HTTP answer (after their retries) that stop
        the run; 3 when nothing has got through yet (most likely a wrong URL).
    """

    max_per_minute: float = 100.0
    workers: int = 4
    max_attempts: int = 4
    retry_without_missing: bool = False
    backoff_s: float = 1.0
    backoff_max_s: float = 30.0
    retry_after_max_s: float = 120.0
    throttle_pause_s: float = 10.0
    max_throttle_retries: int = 8
    max_forbidden_streak: int = 30
    max_unreachable_orders: int = 10

    def __post_init__(self) -> None:
        if not 0.1 <= self.max_per_minute <= 1_000_000:
            raise ConfigError(
                f"max_per_minute must be between 0.1 and 1,000,000 (got {self.max_per_minute:g})"
            )
        if not 1 <= self.workers <= 256:
            raise ConfigError("workers must be between 1 and 256")
        if self.max_attempts < 1:
            raise ConfigError("max_attempts must be at least 1")

    def eta_seconds(self, requests: int) -> float:
        """Seconds that ``requests`` requests take at this pace (ignoring retries)."""
        return max(0, requests - 1) * 60.0 / self.max_per_minute


def format_duration(seconds: float) -> str:
    """A duration as an analyst reads an ETA.

    Examples
    --------
    >>> format_duration(42), format_duration(125), format_duration(3 * 3600 + 61)
    ('42 s', '2 min 05 s', '3 h 01 min')
    """
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


@dataclass(frozen=True)
class OrderResult:
    """The final outcome of one purchase order in a run."""

    purchase_order: str
    outcome: Outcome
    http_status: int | None = None
    details: str = ""
    line_count: int = 0
    missing_ids: tuple[str, ...] = ()
    attempts: int = 0
    elapsed_s: float = 0.0
    source_rows: str = ""

    def as_row(self) -> dict[str, Any]:
        """The result as a row of the results frame (API/snake_case column names)."""
        return {
            PO: self.purchase_order,
            OUTCOME: self.outcome.value,
            HTTP_STATUS: self.http_status,
            DETAILS: self.details,
            LINE_COUNT: self.line_count,
            MISSING_IDS: ",".join(self.missing_ids),
            ATTEMPTS: self.attempts,
            ELAPSED_S: round(self.elapsed_s, 3),
            SOURCE_ROWS: self.source_rows,
        }


class DispatchObserver:
    """Hooks a run calls as it goes; subclass and override what you need.

    Called from worker threads: implementations must be thread-safe. The journal
    records from these hooks; progress bars and widgets display from them.
    """

    def run_started(self, plan: Plan, options: SendOptions) -> None:
        """Before the first request."""

    def sending(self, request: Request, attempt: int) -> None:
        """Just before an attempt goes out (the order is now in flight)."""

    def answered(
        self, request: Request, attempt: int, http_status: int | None, details: str
    ) -> None:
        """After each attempt, with the HTTP status (None when there was no answer)."""

    def finished(self, result: OrderResult) -> None:
        """When an order has its final outcome."""

    def run_finished(self, results: list[OrderResult], stopped: str | None) -> None:
        """After the last order; ``stopped`` says why the run stopped early, if it did."""


class Pacer:
    """Hands out evenly spaced request slots, shared by all workers of a run.

    Thread-safe. ``acquire`` blocks until the caller's slot (or until ``stop`` is set).
    """

    # 2 %: a request delayed by up to ~1 s on the way (TLS set-up, jitter) still cannot
    # land in the same 60 s window as the 101st at 100/min.
    _MARGIN = 1.02

    def __init__(self, max_per_minute: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.base_interval = 60.0 / max_per_minute * self._MARGIN
        self.interval = self.base_interval
        self._clock = clock
        self._next = clock()
        self._lock = threading.Lock()
        self._calm_until = 0.0
        self._clean = 0  # successes since the last throttle
        # About a minute of clean sending at the base pace earns back part of a slow-down.
        self._recover_after = max(20, round(max_per_minute))

    def acquire(self, stop: threading.Event) -> bool:
        """Wait for the next slot; False when ``stop`` was set before it came."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        delay = slot - self._clock()
        if delay > 0 and stop.wait(delay):
            return False
        return not stop.is_set()

    def throttled(self, pause_s: float) -> None:
        """Spectrum said 403 (throttled): pause everyone, then go a third slower."""
        with self._lock:
            self._clean = 0
            now = self._clock()
            if now < self._calm_until:  # one slow-down per throttle episode, not per worker
                return
            self.interval = min(self.interval * 1.5, 60.0)
            self._next = max(self._next, now + pause_s)
            self._calm_until = now + pause_s

    def succeeded(self) -> None:
        """A request went through: after a long clean stretch, speed back up a step.

        Additive-increase / multiplicative-decrease, as TCP does: one throttle episode in a
        three-hour run does not slow the rest of it for good, and the pace never goes above
        the configured one.
        """
        with self._lock:
            self._clean += 1
            if self.interval > self.base_interval and self._clean >= self._recover_after:
                self.interval = max(self.base_interval, self.interval / 1.25)
                self._clean = 0

    @property
    def per_minute(self) -> float:
        """The current pace in requests per minute."""
        return 60.0 / self.interval


@dataclass
class Attempts:
    """How many attempts one request has used, by kind (403 throttles count apart)."""

    normal: int = 0
    throttled: int = 0
    last_status: int | None = None
    last_details: str = ""

    @property
    def total(self) -> int:
        return self.normal + self.throttled


def retry_policy(
    options: SendOptions,
    stop: threading.Event,
    attempts: Attempts,
    *,
    succeeded: Callable[[], bool],
) -> tenacity.Retrying:
    """The retry policy of one request, shared by sends and reconciliation reads.

    Retries transient failures (connection errors, timeouts, 429, 500/502/503/504) up to
    ``options.max_attempts`` with exponential backoff and jitter, honouring a capped
    ``Retry-After``; retries a 403 only once the run has ``succeeded`` (it is Spectrum's
    throttle then; the pacer holds everyone back, so no extra wait), up to
    ``options.max_throttle_retries``. Never retries anything else. Sleeps end early when
    ``stop`` is set. The caller counts into ``attempts`` as answers arrive.
    """

    def should_retry(state: tenacity.RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, ForbiddenError) and succeeded():
            return attempts.throttled <= options.max_throttle_retries
        if isinstance(exc, RateLimitedError | ServerError | TransportError):
            code = getattr(exc, "status_code", None)
            transient = code is None or code in _RETRY_STATUSES
            return transient and attempts.normal < options.max_attempts
        return False

    backoff = tenacity.wait_exponential_jitter(
        multiplier=options.backoff_s, max=options.backoff_max_s, jitter=options.backoff_s
    )

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, ForbiddenError):
            return 0.0  # the pacer holds everyone back after a throttle
        if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
            return min(exc.retry_after, options.retry_after_max_s)
        return float(backoff(state))

    def sleep(seconds: float) -> None:
        stop.wait(seconds)

    return tenacity.Retrying(
        retry=should_retry, wait=wait, sleep=sleep, stop=tenacity.stop_never, reraise=True
    )


class _Stopped(Exception):
    """The run was stopped before this attempt could start."""


@dataclass
class _Run:
    """Shared state of one run."""

    client: SpectrumClient
    options: SendOptions
    observers: tuple[DispatchObserver, ...]
    stop: threading.Event
    pacer: Pacer
    successes: int = 0
    forbidden_streak: int = 0
    unreachable_streak: int = 0  # orders in a row that failed without any HTTP answer
    stopped_reason: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def notify(self, hook: str, *args: Any) -> None:
        for observer in self.observers:
            getattr(observer, hook)(*args)

    def halt(self, reason: str) -> None:
        with self.lock:
            if self.stopped_reason is None:
                self.stopped_reason = reason
        self.stop.set()


def run_workers(
    count: int,
    work: Callable[[], None],
    *,
    name: str,
    on_interrupt: Callable[[], None],
    on_crash: Callable[[BaseException], None],
) -> None:
    """Run ``work`` in ``count`` threads and wait until every one has returned.

    Ctrl-C while waiting calls ``on_interrupt`` (which must make ``work`` stop taking new
    items), then keeps waiting so in-flight requests finish. A worker that raises calls
    ``on_crash`` (which must stop the others); the first such exception is re-raised here.
    """
    all_done = threading.Event()
    running = [count]
    errors: list[BaseException] = []
    lock = threading.Lock()

    def body() -> None:
        try:
            work()
        except BaseException as exc:
            errors.append(exc)
            on_crash(exc)
        finally:
            with lock:
                running[0] -= 1
                if running[0] == 0:
                    all_done.set()

    for n in range(count):
        threading.Thread(target=body, name=f"{name}-{n}", daemon=True).start()
    # Wait on an Event, not Thread.join: on CPython 3.11 a join interrupted by Ctrl-C can
    # mark a still-running thread as finished, and its in-flight request would be lost.
    try:
        while not all_done.wait(0.2):
            pass
    except KeyboardInterrupt:
        on_interrupt()
        while not all_done.wait(0.2):  # in-flight requests finish; nothing new starts
            pass
    if errors:
        raise errors[0]


def run_plan(
    plan: Plan,
    client: SpectrumClient,
    options: SendOptions | None = None,
    *,
    observers: Iterable[DispatchObserver] = (),
    stop: threading.Event | None = None,
) -> tuple[list[OrderResult], str | None]:
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
        ``results`` in plan order, one per request; ``stopped`` is None when the run
        went to the end, else why it stopped (``"interrupted"`` after Ctrl-C, ``"stopped"``
        when ``stop`` was set, or the
        401/403 message).
    """
    opts = options or SendOptions()
    run = _Run(
        client=client,
        options=opts,
        observers=tuple(observers),
        stop=stop or threading.Event(),
        pacer=Pacer(opts.max_per_minute),
    )
    total = plan.request_count
    results: list[OrderResult | None] = [None] * total
    cursor = iter(range(total))
    cursor_lock = threading.Lock()
    run.notify("run_started", plan, opts)

    def work() -> None:
        while not run.stop.is_set():
            with cursor_lock:
                index = next(cursor, None)
            if index is None:
                return
            result = _send_order(run, plan.request(index))
            results[index] = result
            run.notify("finished", result)

    def crashed(exc: BaseException) -> None:  # a bug or an unwritable journal
        run.halt(f"stopped by an error: {exc}")

    run_workers(
        min(opts.workers, max(1, total)),
        work,
        name="spectrum-worker",
        on_interrupt=lambda: run.halt("interrupted"),
        on_crash=crashed,
    )
    if run.stop.is_set() and run.stopped_reason is None and None in results:
        run.stopped_reason = "stopped"  # stop.set() from outside: a graceful stop
    final: list[OrderResult] = []
    for index, maybe in enumerate(results):
        if maybe is None:
            request = plan.request(index)
            maybe = _pending(request, "not sent: the run stopped before this order")
            run.notify("finished", maybe)
        final.append(maybe)
    run.notify("run_finished", final, run.stopped_reason)
    return final, run.stopped_reason


def _pending(
    request: Request, details: str, attempts: int = 0, status: int | None = None
) -> OrderResult:
    return OrderResult(
        purchase_order=request.purchase_order,
        outcome=Outcome.PENDING,
        http_status=status,
        details=details,
        line_count=request.line_count,
        attempts=attempts,
        source_rows=request.source_rows,
    )


def _send_order(run: _Run, request: Request) -> OrderResult:
    """Send one order (with retries, and the optional re-send without missing ids)."""
    started = time.monotonic()
    tally = Attempts()
    try:
        reply_status, details = _attempt_with_retries(run, request, tally)
    except _Stopped:
        if tally.total == 0 or tally.last_status in (401, 403):
            return _pending(
                request,
                "not sent: the run stopped before this order"
                if tally.total == 0
                else f"not applied: HTTP {tally.last_status} ({tally.last_details})",
                tally.total,
                tally.last_status,
            )
        return _result(
            request,
            Outcome.FAILED,
            tally,
            started,
            f"the run stopped while retrying; last answer: {_describe(tally)}",
        )
    except NotFoundError as exc:
        missing = parse_missing_ids(
            exc.details, (li["recipeSetReadableId"] for li in request.line_items)
        )
        if run.options.retry_without_missing and missing and len(missing) < request.line_count:
            return _resend_without(run, request, missing, tally, started, exc)
        return _result(request, Outcome.NOT_FOUND, tally, started, exc.details, missing)
    except ForbiddenError as exc:
        if run.successes > 0 and not run.stop.is_set():
            return _result(
                request,
                Outcome.FAILED,
                tally,
                started,
                f"still throttled (HTTP 403) after {tally.throttled} tries: {exc.details}",
            )
        run.halt(_STOP_MESSAGE.format(code=exc.status_code))
        return _pending(
            request,
            f"not applied: HTTP {exc.status_code} ({exc.details})",
            tally.total,
            exc.status_code,
        )
    except AuthenticationError as exc:
        run.halt(_STOP_MESSAGE.format(code=exc.status_code))
        return _pending(
            request,
            f"not applied: HTTP {exc.status_code} ({exc.details})",
            tally.total,
            exc.status_code,
        )
    except TransportError as exc:
        _count_unreachable(run, exc)
        return _result(request, Outcome.FAILED, tally, started, _error_text(exc))
    except APIError as exc:
        return _result(request, Outcome.FAILED, tally, started, _error_text(exc))
    return _result(request, Outcome.UPDATED, tally, started, details, http_status=reply_status)


def _count_unreachable(run: _Run, exc: TransportError) -> None:
    """Stop the run when order after order gets no answer at all (host down, wrong URL,
    network gone) instead of burning through the whole sheet as ``failed``."""
    with run.lock:
        run.unreachable_streak += 1
        streak = run.unreachable_streak
        limit = run.options.max_unreachable_orders
        if run.successes == 0:
            limit = min(limit, 3)  # nothing ever got through: most likely a wrong URL
    if streak >= limit:
        run.halt(_UNREACHABLE_MESSAGE.format(host=run.client.host, n=streak, reason=exc))


def _resend_without(
    run: _Run,
    request: Request,
    missing: tuple[str, ...],
    tally: Attempts,
    started: float,
    first: NotFoundError,
) -> OrderResult:
    """Re-send an order without the line items Spectrum could not find."""
    smaller = request.without(set(missing))
    try:
        status, details = _attempt_with_retries(run, smaller, tally)
    except NotFoundError as exc:
        more = parse_missing_ids(
            exc.details, (li["recipeSetReadableId"] for li in smaller.line_items)
        )
        return _result(request, Outcome.NOT_FOUND, tally, started, exc.details, (*missing, *more))
    except _Stopped:
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
            f"re-send without missing ids failed: {_error_text(exc)}",
            missing,
        )
    text = f"{details} Not found, left out: {', '.join(missing)}."
    return _result(request, Outcome.PARTIAL, tally, started, text, missing, http_status=status)


def _attempt_with_retries(run: _Run, request: Request, tally: Attempts) -> tuple[int, str]:
    """Send ``request`` until it succeeds, fails for good, or the run stops.

    Returns (http status, details) of the success; raises the last error otherwise.
    """
    opts = run.options
    retrying = retry_policy(opts, run.stop, tally, succeeded=lambda: run.successes > 0)
    for attempt in retrying:
        with attempt:
            if not run.pacer.acquire(run.stop):
                raise _Stopped
            n = tally.total + 1
            run.notify("sending", request, n)
            try:
                reply = run.client.update_status(request.body)
            except ForbiddenError as exc:
                tally.throttled += 1
                _note(run, request, n, tally, exc.status_code, exc.details)
                with run.lock:
                    run.forbidden_streak += 1
                    streak = run.forbidden_streak
                if run.successes > 0:
                    run.pacer.throttled(opts.throttle_pause_s)
                    if streak >= opts.max_forbidden_streak:
                        # A throttle lifts; this many 403s in a row looks like a revoked token.
                        run.halt(_STREAK_MESSAGE.format(n=streak))
                raise
            except APIError as exc:
                tally.normal += 1
                _note(run, request, n, tally, exc.status_code, exc.details)
                raise
            except TransportError as exc:
                tally.normal += 1
                _note(run, request, n, tally, None, str(exc))
                raise
            tally.normal += 1
            _note(run, request, n, tally, reply.http_status, reply.details)
            with run.lock:
                run.successes += 1
                run.forbidden_streak = 0
            run.pacer.succeeded()
            return reply.http_status, reply.details
    raise AssertionError("unreachable")  # pragma: no cover - tenacity returns or raises


def _note(
    run: _Run, request: Request, n: int, tally: Attempts, status: int | None, details: str
) -> None:
    tally.last_status = status
    tally.last_details = details
    if status is not None:  # an HTTP answer of any kind: the host is reachable
        with run.lock:
            run.unreachable_streak = 0
    run.notify("answered", request, n, status, details)


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


def _describe(tally: Attempts) -> str:
    if tally.last_status is None:
        return tally.last_details or "no answer"
    return f"HTTP {tally.last_status} {tally.last_details}".strip()


def _error_text(exc: SpectrumError) -> str:
    if isinstance(exc, APIError):
        return (
            f"HTTP {exc.status_code}: {exc.details}" if exc.details else f"HTTP {exc.status_code}"
        )
    return str(exc)


# --------------------------------------------------------------------------- frames


def results_frame(plan: Plan, results: Iterable[OrderResult]) -> pd.DataFrame:
    """One row per order of the plan, sent or not, in the order the sheet lists them.

    Columns start with ``purchaseOrderNumber, outcome, http_status, details, line_count,
    missing_ids, attempts, elapsed_s, source_rows``. Orders set aside by the plan
    (``invalid``, ``skipped``) are included, so every order has exactly one row.
    """
    sent = pd.DataFrame([r.as_row() for r in results], columns=list(RESULT_COLUMNS))
    aside = plan.set_aside.copy()
    defaults: dict[str, Any] = {HTTP_STATUS: None, ATTEMPTS: 0, ELAPSED_S: 0.0, MISSING_IDS: ""}
    for col in RESULT_COLUMNS:
        if col not in aside.columns:
            aside[col] = defaults[col]
    frames = [f for f in (sent, aside[list(RESULT_COLUMNS)]) if len(f)]
    out = pd.concat(frames, ignore_index=True) if frames else sent
    first_row = pd.to_numeric(out[SOURCE_ROWS].astype(str).str.split(",").str[0], errors="coerce")
    out = out.iloc[first_row.fillna(0).argsort(kind="stable")].reset_index(drop=True)
    out[HTTP_STATUS] = out[HTTP_STATUS].astype("Int64")
    out[ATTEMPTS] = out[ATTEMPTS].fillna(0).astype("int64")
    out[LINE_COUNT] = out[LINE_COUNT].fillna(0).astype("int64")
    out[ELAPSED_S] = out[ELAPSED_S].fillna(0.0).astype("float64")
    for col in (PO, OUTCOME, DETAILS, MISSING_IDS, SOURCE_ROWS):
        out[col] = out[col].fillna("").astype(object)
    return out


def line_results(results: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """The analyst's own rows with their order's ``outcome``, ``details`` and ``attempts``.

    An invalid row reports ``invalid`` with its own problem, even when the valid rows of
    its order were sent (``send_partial_orders``).
    """
    rows = plan.rows.copy()
    by_order = results.drop_duplicates(PO).set_index(PO)
    outcome = rows[PO].map(by_order[OUTCOME]).fillna(Outcome.INVALID.value)
    details = rows[PO].map(by_order[DETAILS]).fillna("")
    attempts = rows[PO].map(by_order[ATTEMPTS]).fillna(0).astype("int64")
    invalid = ~rows[VALID].to_numpy(bool)
    outcome = outcome.where(~invalid, Outcome.INVALID.value)
    details = details.where(~invalid, rows[PROBLEM])
    rows[OUTCOME] = outcome.astype(object)
    rows[DETAILS] = details.astype(object)
    rows[ATTEMPTS] = attempts
    return rows.sort_values(SOURCE_ROW, kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- façade


class _Progress(DispatchObserver):
    """A tqdm bar with ETA and counts by outcome (stderr, or a widget in notebooks)."""

    def __init__(self, file: IO[str] | None = None) -> None:
        self._file = file
        self._bar: Any = None
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def run_started(self, plan: Plan, options: SendOptions) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(
            total=plan.request_count, unit="order", desc="Sending", file=self._file, smoothing=0.1
        )

    def finished(self, result: OrderResult) -> None:
        with self._lock:
            self._counts[result.outcome.value] += 1
            if self._bar is not None:
                self._bar.set_postfix(dict(self._counts), refresh=False)
                self._bar.update(1)

    def run_finished(self, results: list[OrderResult], stopped: str | None) -> None:
        if self._bar is not None:
            self._bar.close()


def send_updates(
    source: str | Path | IO[bytes] | pd.DataFrame | Plan,
    client: SpectrumClient,
    *,
    dry_run: bool = False,
    sheet: str | None = None,
    columns: Mapping[str, str] | None = None,
    send_partial_orders: bool = False,
    max_per_minute: float = 100.0,
    workers: int = 4,
    max_attempts: int = 4,
    retry_without_missing: bool = False,
    progress: bool = True,
    stop: threading.Event | None = None,
    observers: Iterable[DispatchObserver] = (),
    runs_dir: str | Path | None = None,
    journal: bool = True,
    force: bool = False,
    source_name: str | None = None,
    source_hash: str | None = None,
) -> pd.DataFrame:
    """Validate, plan and send status updates; return one row per order.

    Parameters
    ----------
    source
        A path or upload (read with :func:`~spectrum_tools.read_updates`), a DataFrame of
        rows, or a ready :class:`~spectrum_tools.Plan`.
    client
        The Spectrum environment to send to.
    dry_run
        Send nothing; every sendable order gets outcome ``dry_run``.
    sheet, columns
        Passed to :func:`~spectrum_tools.read_updates` for a path or upload.
    send_partial_orders
        Send the valid rows of orders that have invalid rows (default: hold them back).
    max_per_minute, workers, max_attempts, retry_without_missing
        See :class:`SendOptions`.
    progress
        Show a progress bar with ETA (stderr in a terminal, a widget in Jupyter).
    stop
        An event another thread may set to stop the run gracefully.
    observers
        Extra hooks (see :class:`DispatchObserver`).
    runs_dir, journal
        Every send is a run recorded in the run journal of ``runs_dir`` (default
        ``./spectrum-runs``), unless ``journal=False``. Dry runs are not recorded.
    force
        Also send line items an earlier run already set to the same status on this host
        (by default such orders are ``skipped``, "already applied by run N").
    source_name, source_hash
        What the journal records about the input; by default the file's name and sha256
        ("DataFrame"/"Plan" and a hash of the payloads otherwise).

    Returns
    -------
    pandas.DataFrame
        One row per order: ``purchaseOrderNumber, outcome, http_status, details,
        line_count, missing_ids, attempts, elapsed_s, source_rows``. ``attrs`` holds
        ``host``, ``stopped`` (None, or why the run stopped early, e.g. "interrupted"),
        ``run_id`` and ``journal`` (the journal's path; both None when not recorded).

    Raises
    ------
    SpreadsheetError
        The source cannot be read.
    RunStoppedError
        401, or 403 before any success: the token is refused or the limit was already
        used up. Its ``results`` attribute holds the frame (unsent orders ``pending``).
    JournalError
        The run journal cannot be opened or written (the run stops).
    """
    options = SendOptions(
        max_per_minute=max_per_minute,
        workers=workers,
        max_attempts=max_attempts,
        retry_without_missing=retry_without_missing,
    )
    stop = stop if stop is not None else threading.Event()
    durable = None
    if journal:
        # Imported here, not at the top: spectrum_tools.runs builds on this module.
        from spectrum_tools.runs import JournaledSend

        durable = JournaledSend(
            client,
            runs_dir=runs_dir,
            force=force,
            source_name=source_name,
            source_hash=source_hash,
        )
        source = durable.read_source(source)
    plan = _as_plan(source, sheet=sheet, columns=columns, send_partial_orders=send_partial_orders)
    if durable is not None:  # skips what earlier runs applied; records the run
        plan = durable.begin(plan, options, dry_run=dry_run, stop=stop)
    run_attrs = durable.attrs if durable is not None else {"run_id": None, "journal": None}
    if dry_run:
        results = [
            OrderResult(
                purchase_order=r.purchase_order,
                outcome=Outcome.DRY_RUN,
                details="not sent (dry run)",
                line_count=r.line_count,
                source_rows=r.source_rows,
            )
            for r in plan.requests()
        ]
        frame = results_frame(plan, results)
        frame.attrs.update(host=client.host, stopped=None, **run_attrs)
        return frame
    # The journal first: an order is committed as in flight before anyone else hears of it.
    hooks: list[DispatchObserver] = [*(durable.observers if durable else ()), *observers]
    if progress:
        hooks.append(_Progress())
    try:
        results, stopped = run_plan(plan, client, options, observers=hooks, stop=stop)
    finally:
        if durable is not None:
            durable.finish()  # raises JournalError when the journal could not be written
    frame = results_frame(plan, results)
    frame.attrs.update(host=client.host, stopped=stopped, **run_attrs)
    if stopped is not None and stopped not in ("interrupted", "stopped"):
        raise RunStoppedError(stopped, results=frame)
    return frame


def _as_plan(
    source: str | Path | IO[bytes] | pd.DataFrame | Plan,
    *,
    sheet: str | None,
    columns: Mapping[str, str] | None,
    send_partial_orders: bool,
) -> Plan:
    if isinstance(source, Plan):
        return source
    rows = read_updates(source, sheet=sheet, columns=columns)
    return plan_updates(rows, send_partial_orders=send_partial_orders)
