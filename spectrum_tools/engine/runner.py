"""One paced-worker runner, used by status writes and reconciliation reads alike.

I/O: the network, through the :class:`~spectrum_tools.client.SpectrumClient` call the
caller hands to :meth:`PacedRun.call`; threads for the workers.

A :class:`PacedRun` holds the state of one run and the rules every request of it obeys
(docs/spectrum-api.md, "Rate limiting" and "What this means for a well-behaved client"):

* **Pacing**: request starts take evenly spaced slots of one shared :class:`Pacer`;
  retries take slots too; ``workers`` requests may be in flight at once.
* **Retries**: :func:`~spectrum_tools.engine.retry.retry_policy`.
* **403**: after a success in this run it is Spectrum's throttle: the pace is cut and the
  request retried; a clean stretch earns the pace back. Before any success the caller
  stops the run (:meth:`refuse`): it may as well be a bad token. A long streak of 403s
  after successes stops the run too (a token revoked mid-run looks like that).
* **No answer at all**: after 3 items in a row (``max_unreachable_orders`` once something
  got through) with no HTTP answer, the run stops: a wrong URL or a lost network.
* **Stopping**: Ctrl-C or the stop event: nothing new starts, in-flight requests get at
  most one request deadline (``client.deadline``) to finish; the run then ends without
  them (their items have no result: the caller reports them in flight).

Why a run ended is a :class:`~spectrum_tools.results.RunStop`, never a bare string.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

from spectrum_tools.client import SpectrumClient
from spectrum_tools.engine.options import SendOptions
from spectrum_tools.engine.pacer import Pacer
from spectrum_tools.engine.pool import run_workers
from spectrum_tools.engine.retry import Attempts, retry_policy
from spectrum_tools.errors import APIError, ForbiddenError, TransportError
from spectrum_tools.results import RunStop
from spectrum_tools.schema import StopReason

__all__ = ["PacedRun", "RunKind", "Stopped"]

T = TypeVar("T")
R = TypeVar("R")

_REFUSED: Final = (
    "Spectrum refused the first {noun} with HTTP {code}. Either the API token is not "
    "allowed (wrong token, or no access to this environment) or the rate limit was already "
    "used up by someone else. Check SPECTRUM_API_TOKEN and the base URL, wait a minute, and "
    "{then}."
)
_STREAK: Final = (
    "Spectrum answered HTTP 403 to {n} requests in a row after earlier successes. A "
    "throttle would have lifted by now, so the token may have been revoked, or another "
    "client is using up the rate limit. The run stopped; {left}: {then} later."
)
_UNREACHABLE: Final = (
    "No answer from {host} for {n} orders in a row ({reason}). Check the base URL and the "
    "network; the run stopped, {left}: {then} when the host answers."
)


@dataclass(frozen=True)
class RunKind:
    """How a run speaks of itself in its stop messages.

    Attributes
    ----------
    noun
        What the first requests are ("requests", "reads").
    left
        What happens to the items not done ("unsent orders are pending").
    then
        What the user does next ("resume the run").
    """

    noun: str
    left: str
    then: str


class Stopped(Exception):
    """The run was stopped before this attempt could start."""


class PacedRun(Generic[R]):
    """The shared state and rules of one paced run of requests.

    Parameters
    ----------
    client
        Where the requests go (its host names the run in messages).
    options
        Pace, workers, retries and stop thresholds.
    kind
        How stop messages speak of this run.
    stop
        Set it from another thread to stop gracefully; Ctrl-C sets it too.

    Attributes
    ----------
    stop
        The run's stop event.
    pacer
        The shared request slots.
    successes, requests
        Requests that succeeded, and requests sent (every attempt), so far.
    stopped
        Why the run stopped early, or None.
    """

    def __init__(
        self,
        client: SpectrumClient,
        options: SendOptions,
        kind: RunKind,
        *,
        stop: threading.Event | None = None,
    ) -> None:
        self.client = client
        self.options = options
        self.kind = kind
        self.stop = stop if stop is not None else threading.Event()
        self.pacer = Pacer(options.max_per_minute, recover_after=options.throttle_recovery)
        self.successes = 0
        self.requests = 0
        self.stopped: RunStop | None = None
        self._forbidden_streak = 0
        self._unreachable_streak = 0
        self._lock = threading.Lock()
        self.partial_results: Sequence[R | None] = []

    # -- stopping ------------------------------------------------------------------------

    def halt(self, reason: StopReason, message: str) -> None:
        """Stop the run (the first reason wins): nothing new starts."""
        with self._lock:
            if self.stopped is None:
                self.stopped = RunStop(reason, message)
        self.stop.set()

    def refuse(self, code: int) -> None:
        """401, or 403 before any success: stop, naming both likely causes."""
        k = self.kind
        self.halt(StopReason.REFUSED, _REFUSED.format(noun=k.noun, code=code, then=k.then))

    @property
    def has_succeeded(self) -> bool:
        """Whether any request of this run has succeeded (a 403 is a throttle then)."""
        return self.successes > 0

    # -- one request -------------------------------------------------------------------

    def call(
        self,
        send: Callable[[], T],
        tally: Attempts,
        *,
        answer: Callable[[T], tuple[int, str]],
        sending: Callable[[int], None] | None = None,
        answered: Callable[[int, int | None, str], None] | None = None,
    ) -> T:
        """Make one request, paced and retried, until it succeeds, fails for good, or the
        run stops.

        Parameters
        ----------
        send
            Makes the HTTP call (e.g. ``lambda: client.get_order(po)``).
        tally
            The request's attempts; counted here.
        answer
            The success's (HTTP status, details), for the hooks.
        sending, answered
            Called before each attempt (with its number) and after it (number, HTTP
            status or None when no answer came, details).

        Returns
        -------
        The success's value.

        Raises
        ------
        Stopped
            The run stopped before an attempt could start.
        APIError, TransportError
            The last failure, once retries are used up (or never allowed).
        """
        retrying = retry_policy(
            self.options, self.stop, tally, succeeded=lambda: self.has_succeeded
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._attempt(send, tally, answer, sending, answered)
        except TransportError as exc:
            self._count_unreachable(exc)
            raise
        raise AssertionError("unreachable")  # pragma: no cover - tenacity returns or raises

    def _attempt(
        self,
        send: Callable[[], T],
        tally: Attempts,
        answer: Callable[[T], tuple[int, str]],
        sending: Callable[[int], None] | None,
        answered: Callable[[int, int | None, str], None] | None,
    ) -> T:
        if not self.pacer.acquire(self.stop):
            raise Stopped
        n = tally.total + 1
        if sending is not None:
            sending(n)
        with self._lock:
            self.requests += 1
        try:
            value = send()
        except ForbiddenError as exc:
            tally.throttled += 1
            self._note(tally, n, exc.status_code, exc.details, answered)
            self._forbidden(exc)
            raise
        except APIError as exc:
            tally.normal += 1
            self._note(tally, n, exc.status_code, exc.details, answered)
            raise
        except TransportError as exc:
            tally.normal += 1
            self._note(tally, n, None, str(exc), answered)
            raise
        tally.normal += 1
        status, details = answer(value)
        self._note(tally, n, status, details, answered)
        with self._lock:
            self.successes += 1
            self._forbidden_streak = 0
        self.pacer.succeeded()
        return value

    def _note(
        self,
        tally: Attempts,
        n: int,
        status: int | None,
        details: str,
        answered: Callable[[int, int | None, str], None] | None,
    ) -> None:
        tally.last_status = status
        tally.last_details = details
        if status is not None:  # an HTTP answer of any kind: the host is reachable
            with self._lock:
                self._unreachable_streak = 0
        if answered is not None:
            answered(n, status, details)

    def _forbidden(self, exc: ForbiddenError) -> None:
        with self._lock:
            self._forbidden_streak += 1
            streak = self._forbidden_streak
        if not self.has_succeeded:
            return  # the caller refuses the run: it may be a bad token
        self.pacer.throttled(self.options.throttle_pause_s)
        if streak >= self.options.max_forbidden_streak:
            # A throttle lifts; this many 403s in a row looks like a revoked token.
            k = self.kind
            self.halt(
                StopReason.FORBIDDEN_STREAK, _STREAK.format(n=streak, left=k.left, then=k.then)
            )

    def _count_unreachable(self, exc: TransportError) -> None:
        """Stop the run when item after item gets no answer at all (host down, wrong URL,
        network gone) instead of burning through the whole sheet."""
        with self._lock:
            self._unreachable_streak += 1
            streak = self._unreachable_streak
            limit = self.options.max_unreachable_orders
            if not self.has_succeeded:
                limit = min(limit, 3)  # nothing ever got through: most likely a wrong URL
        if streak >= limit:
            k = self.kind
            message = _UNREACHABLE.format(
                host=self.client.host, n=streak, reason=exc, left=k.left, then=k.then
            )
            self.halt(StopReason.UNREACHABLE, message)

    # -- the whole run -----------------------------------------------------------------

    def run(
        self,
        count: int,
        work: Callable[[int], R],
        *,
        name: str,
        done: Callable[[int, R], None] | None = None,
        drain_s: float | None = None,
    ) -> Sequence[R | None]:
        """Do ``work(index)`` for every index below ``count`` on the run's workers.

        Parameters
        ----------
        count
            How many items.
        work
            One item's whole job (its requests go through :meth:`call`).
        name
            The worker threads' name prefix.
        done
            Called with each item's index and result as soon as it is known.
        drain_s
            Once the run is stopping, how long items in progress may take to finish
            (one request deadline); the run then ends without them (None: no bound).

        Returns
        -------
        One result per index; None for the items the run stopped before, or that were
        still in progress when ``drain_s`` ran out. :attr:`stopped` says why it stopped
        (``STOPPED`` when the stop event was set from outside).

        Raises
        ------
        Exception
            What a worker raised (the run is stopped first); :attr:`partial_results`
            then holds the results known so far.
        """
        results: list[R | None] = [None] * count
        self.partial_results = results
        cursor = iter(range(count))
        cursor_lock = threading.Lock()

        def loop() -> None:
            while not self.stop.is_set():
                with cursor_lock:
                    index = next(cursor, None)
                if index is None:
                    return
                result = work(index)
                results[index] = result
                if done is not None:
                    done(index, result)

        def crashed(exc: BaseException) -> None:  # a bug, or an unwritable journal
            self.halt(StopReason.CRASHED, f"stopped by an error: {exc}")

        run_workers(
            min(self.options.workers, max(1, count)),
            loop,
            name=name,
            on_interrupt=lambda: self.halt(StopReason.INTERRUPTED, StopReason.INTERRUPTED.value),
            on_crash=crashed,
            stop=self.stop,
            drain_s=drain_s,
        )
        results = list(results)  # a worker still out past drain_s can no longer change them
        if self.stop.is_set() and self.stopped is None and None in results:
            # stop.set() from outside: a graceful stop
            self.stopped = RunStop(StopReason.STOPPED, StopReason.STOPPED.value)
        return results
