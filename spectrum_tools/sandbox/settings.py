"""The sandbox's fault switches, changeable while it runs. Pure: no I/O.

One :class:`SandboxSettings` object is shared by reference with the running app, which reads
it on every request: assigning a field (from a test, or through ``PUT /_sandbox/settings``)
takes effect on the next request.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from spectrum_tools.errors import ConfigError

__all__ = ["SandboxSettings"]

_NOT_FOUND_CODES = (404, 409)
_AUTH_FAILURE_CODES = (401, 403)


@dataclass
class SandboxSettings:
    """Fault switches of the sandbox.

    Parameters
    ----------
    latency_s
        Seconds added to every ``/api/`` response. The request is processed first and the
        answer delayed, so a client that times out still had its update applied, as it
        may happen with the real service.
    rate_limit
        Requests allowed per ``rate_window_s`` sliding window, per endpoint; ``None`` turns
        throttling off. Spectrum's documented safe pace is 100 per 60 s.
    rate_window_s
        Length of the sliding window, in seconds.
    error_rate
        Probability that a well-formed status update answers 500 (nothing is changed),
        drawn from ``random.Random(seed)``.
    seed
        Seed of that generator; changing it re-seeds on the next request.
    fail_first
        Purchase order number -> how many of its next well-formed status updates answer
        500. Each injected failure counts the entry down, so the dict shows the failures
        still to come.
    not_found_status
        409 (the docs) or 404 (the newest docs revision) for line items not found.
    auth_failure_status
        403 (what Spectrum is believed to answer for a bad token, the same code as
        throttling) or 401.
    expose_workflow_status
        When false, line items in ``GET /api/order/order-number/{po}`` and
        ``POST /api/orders/search`` answers omit ``workflowStatus`` (whether Spectrum sends
        it is not documented), to test readers that must then report "unknown"
        (docs/spectrum-api.md, Line-level workflowStatus). Searches still filter on it.
    alternative_field_names
        When true, those same answers spell the line-item list ``line_items`` and each
        line item's readable id ``recipeSetReadableId`` (instead of ``lineItems`` and
        ``recipeSetId``), as some public client code does (docs/spectrum-api.md,
        Alternative field names).
    wide_search_latency_s
        Extra seconds before answering a search that sets ``ignoreDateRestriction``
        (Spectrum warns such a search may take over 30 s), added to ``latency_s``.

    Raises
    ------
    spectrum_tools.errors.ConfigError
        (a ``ValueError``) when a value is out of range or of the wrong type.

    Examples
    --------
    >>> s = SandboxSettings(rate_limit=None)
    >>> s.update({"latency_s": 0.5, "not_found_status": 404})
    >>> (s.latency_s, s.not_found_status, s.rate_limit)
    (0.5, 404, None)
    """

    latency_s: float = 0.0
    rate_limit: int | None = 100
    rate_window_s: float = 60.0
    error_rate: float = 0.0
    seed: int = 0
    fail_first: dict[str, int] = field(default_factory=dict)
    not_found_status: int = 409
    auth_failure_status: int = 403
    expose_workflow_status: bool = True
    alternative_field_names: bool = False
    wide_search_latency_s: float = 0.0

    def __post_init__(self) -> None:
        problems = list(self._problems())
        if problems:
            raise ConfigError("invalid sandbox settings: " + "; ".join(problems))

    def _problems(self) -> list[str]:
        out: list[str] = []
        if not _is_number(self.latency_s) or self.latency_s < 0:
            out.append(f"latency_s must be a number >= 0, got {self.latency_s!r}")
        if self.rate_limit is not None and (not _is_int(self.rate_limit) or self.rate_limit < 1):
            out.append(f"rate_limit must be an integer >= 1 or None, got {self.rate_limit!r}")
        if not _is_number(self.rate_window_s) or self.rate_window_s <= 0:
            out.append(f"rate_window_s must be a number > 0, got {self.rate_window_s!r}")
        if not _is_number(self.error_rate) or not 0 <= self.error_rate <= 1:
            out.append(f"error_rate must be between 0 and 1, got {self.error_rate!r}")
        if not _is_int(self.seed):
            out.append(f"seed must be an integer, got {self.seed!r}")
        if not isinstance(self.fail_first, dict) or not all(
            isinstance(k, str) and _is_int(v) and v >= 0 for k, v in self.fail_first.items()
        ):
            out.append("fail_first must map purchase order numbers to integers >= 0")
        if self.not_found_status not in _NOT_FOUND_CODES or not _is_int(self.not_found_status):
            out.append(f"not_found_status must be 404 or 409, got {self.not_found_status!r}")
        if self.auth_failure_status not in _AUTH_FAILURE_CODES or not _is_int(
            self.auth_failure_status
        ):
            out.append(f"auth_failure_status must be 401 or 403, got {self.auth_failure_status!r}")
        if not isinstance(self.expose_workflow_status, bool):
            out.append("expose_workflow_status must be true or false")
        if not isinstance(self.alternative_field_names, bool):
            out.append("alternative_field_names must be true or false")
        if not _is_number(self.wide_search_latency_s) or self.wide_search_latency_s < 0:
            out.append(
                f"wide_search_latency_s must be a number >= 0, got {self.wide_search_latency_s!r}"
            )
        return out

    def update(self, changes: Mapping[str, object]) -> None:
        """Change several switches at once, all or none.

        Parameters
        ----------
        changes
            Field name -> new value, e.g. the JSON body of ``PUT /_sandbox/settings``.

        Raises
        ------
        spectrum_tools.errors.ConfigError
            (a ``ValueError``) for an unknown name or an invalid value; then nothing is
            changed.
        """
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ConfigError(f"unknown sandbox settings: {', '.join(unknown)}")
        values = dict(changes)
        if isinstance(values.get("fail_first"), dict):
            values["fail_first"] = dict(values["fail_first"])  # type: ignore[call-overload]
        candidate = dataclasses.replace(self, **values)  # type: ignore[arg-type]
        for name in changes:
            setattr(self, name, getattr(candidate, name))

    def to_dict(self) -> dict[str, object]:
        """Return the switches as a JSON-ready dict.

        Examples
        --------
        >>> SandboxSettings().to_dict()["rate_limit"]
        100
        """
        out = dataclasses.asdict(self)
        out["fail_first"] = dict(self.fail_first)
        return out


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
