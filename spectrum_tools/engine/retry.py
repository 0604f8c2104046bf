"""The retry policy of one request, shared by status writes and reconciliation reads.

Pure policy (tenacity): no I/O of its own. Sleeping goes through an injectable function,
by default a wait on the run's stop event, so a stop ends a backoff at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import tenacity

from spectrum_tools.engine.options import SendOptions
from spectrum_tools.errors import ForbiddenError, RateLimitedError, ServerError, TransportError

__all__ = ["Attempts", "retry_policy"]

# Transient answers worth another try; a status PUT sets an absolute value, so it is safe.
_RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})


@dataclass
class Attempts:
    """How many attempts one request has used, by kind (403 throttles count apart)."""

    normal: int = 0
    throttled: int = 0
    last_status: int | None = None
    last_details: str = ""

    @property
    def total(self) -> int:
        """Every attempt made, throttled ones included."""
        return self.normal + self.throttled

    def describe(self) -> str:
        """The last answer in a few words ("HTTP 500 boom", or why there was none)."""
        if self.last_status is None:
            return self.last_details or "no answer"
        return f"HTTP {self.last_status} {self.last_details}".strip()


def retry_policy(
    options: SendOptions,
    stop: threading.Event,
    attempts: Attempts,
    *,
    succeeded: Callable[[], bool],
    sleep: Callable[[float], None] | None = None,
) -> tenacity.Retrying:
    """The retry policy of one request.

    Retries transient failures (connection errors, timeouts, 429, 500/502/503/504) up to
    ``options.max_attempts`` with exponential backoff and jitter, honouring a capped
    ``Retry-After``; retries a 403 only once the run has ``succeeded`` (it is Spectrum's
    throttle then; the pacer holds everyone back, so no extra wait), up to
    ``options.max_throttle_retries``. Never retries anything else.

    Parameters
    ----------
    options
        Attempts, backoff and caps.
    stop
        The run's stop event: the default ``sleep`` ends early when it is set.
    attempts
        The request's tally; the caller counts into it as answers arrive.
    succeeded
        Whether any request of the run has succeeded yet.
    sleep
        How to wait between attempts (default: ``stop.wait``); tests inject a recorder.
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

    def stop_aware_sleep(seconds: float) -> None:
        stop.wait(seconds)

    return tenacity.Retrying(
        retry=should_retry,
        wait=wait,
        sleep=sleep or stop_aware_sleep,
        stop=tenacity.stop_never,
        reraise=True,
    )
