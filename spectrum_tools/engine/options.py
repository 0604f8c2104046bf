"""How a run paces and retries: :class:`SendOptions`, checked when built. Pure: no I/O.

The defaults follow Spectrum's documented limits (docs/spectrum-api.md, "Rate limiting").
"""

from __future__ import annotations

from dataclasses import dataclass

from spectrum_tools.errors import ConfigError

__all__ = ["SendOptions", "format_duration"]


@dataclass(frozen=True)
class SendOptions:
    """How a run (status writes or reconciliation reads) paces and retries.

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
        Writes only.
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
    throttle_recovery
        Successes in a row after a throttle that earn back one step of the pace; None
        (the default) is about a minute of clean requests at the configured pace.

    Raises
    ------
    ConfigError
        A pace, worker count or attempt count out of range.

    Examples
    --------
    >>> SendOptions(max_per_minute=60).eta_seconds(3)
    2.0
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
    throttle_recovery: int | None = None

    def __post_init__(self) -> None:
        if not 0.1 <= self.max_per_minute <= 1_000_000:
            raise ConfigError(
                f"max_per_minute must be between 0.1 and 1,000,000 (got {self.max_per_minute:g})"
            )
        if not 1 <= self.workers <= 256:
            raise ConfigError("workers must be between 1 and 256")
        if self.max_attempts < 1:
            raise ConfigError("max_attempts must be at least 1")
        if self.throttle_recovery is not None and self.throttle_recovery < 1:
            raise ConfigError("throttle_recovery must be at least 1")

    @classmethod
    def given(cls, options: SendOptions | None, **fields: object) -> SendOptions:
        """``options``, or options built from keyword ``fields``; not both.

        For the one-call conveniences, which take ``options=`` or the common keywords.

        Raises
        ------
        ConfigError
            Both were given, or a keyword is not a field of :class:`SendOptions`.

        Examples
        --------
        >>> SendOptions.given(None, workers=2).workers
        2
        """
        if options is not None and fields:
            raise ConfigError("give options= or keywords such as max_per_minute=, not both")
        if options is not None:
            return options
        try:
            return cls(**fields)  # type: ignore[arg-type]
        except TypeError as exc:
            raise ConfigError(f"not an option: {exc}") from None

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
