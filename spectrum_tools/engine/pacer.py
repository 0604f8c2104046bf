"""Evenly spaced request slots shared by every worker of a run, with AIMD throttling.

Pure timing: no I/O; the clock is injectable. Spectrum answers 403 when throttled
(docs/spectrum-api.md, "Rate limiting"): the pace is cut by a third, and a clean stretch
earns it back step by step, never above the configured pace.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["Pacer"]


class Pacer:
    """Hands out evenly spaced request slots, shared by all workers of a run.

    Thread-safe. ``acquire`` blocks until the caller's slot (or until ``stop`` is set).

    Parameters
    ----------
    max_per_minute
        The configured pace: request starts per minute at most.
    clock
        Seconds, monotonic (tests inject a fake one).
    recover_after
        Successes in a row after a throttle that earn back one step; default about a
        minute of clean requests at the configured pace (at least 20).

    Attributes
    ----------
    slowdowns, speedups
        How many times the pace was cut after a throttle, and earned back a step.
    """

    # 2 %: a request delayed by up to ~1 s on the way (TLS set-up, jitter) still cannot
    # land in the same 60 s window as the 101st at 100/min.
    _MARGIN = 1.02

    def __init__(
        self,
        max_per_minute: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        recover_after: int | None = None,
    ) -> None:
        self.base_interval = 60.0 / max_per_minute * self._MARGIN
        self.interval = self.base_interval
        self.slowdowns = 0
        self.speedups = 0
        self._clock = clock
        self._next = clock()
        self._lock = threading.Lock()
        self._calm_until = 0.0
        self._clean = 0  # successes since the last throttle
        self._recover_after = recover_after or max(20, round(max_per_minute))

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
            self.slowdowns += 1

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
                self.speedups += 1

    @property
    def per_minute(self) -> float:
        """The current pace in requests per minute."""
        return 60.0 / self.interval
