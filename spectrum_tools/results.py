"""What a run gives back: one result per order, the results and per-line frames, how the
run ended, and the observer protocol a run calls as it goes. Pure: no I/O.

Every order of a plan ends with exactly one :class:`OrderResult`; :func:`results_frame`
turns them (plus the orders the plan set aside) into the frame users see, and
:func:`line_results` maps it back onto the analyst's own rows. :class:`RunStop` says why a
run ended early (a :class:`~spectrum_tools.schema.StopReason` and a message for people).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from spectrum_tools.planning import Plan, Request
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
    StopReason,
)

__all__ = [
    "OrderResult",
    "RunObserver",
    "RunSettings",
    "RunStop",
    "line_results",
    "results_frame",
]


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

    @classmethod
    def unsent(
        cls,
        request: Request,
        outcome: Outcome,
        details: str,
        *,
        attempts: int = 0,
        http_status: int | None = None,
    ) -> OrderResult:
        """A result for an order that was not applied: ``pending``, ``dry_run``...

        Examples
        --------
        >>> from spectrum_tools.planning import Request
        >>> r = OrderResult.unsent(Request("P1", (), "2"), Outcome.DRY_RUN, "not sent")
        >>> r.outcome.value, r.source_rows
        ('dry_run', '2')
        """
        return cls(
            purchase_order=request.purchase_order,
            outcome=outcome,
            http_status=http_status,
            details=details,
            line_count=request.line_count,
            attempts=attempts,
            source_rows=request.source_rows,
        )

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


@dataclass(frozen=True)
class RunStop:
    """Why a run ended before its last order: a reason to compare, a message to show.

    ``str()`` is the message, which is what ``results.attrs["stopped"]`` holds.

    Examples
    --------
    >>> stop = RunStop(StopReason.INTERRUPTED, "interrupted")
    >>> stop.graceful, str(stop)
    (True, 'interrupted')
    """

    reason: StopReason
    message: str

    @property
    def graceful(self) -> bool:
        """Stopped on purpose (Ctrl-C, the stop event): the results are returned, not raised."""
        return self.reason in (StopReason.INTERRUPTED, StopReason.STOPPED)

    def __str__(self) -> str:
        return self.message


class RunSettings(Protocol):
    """What an observer may read of a run's options (:class:`~spectrum_tools.SendOptions`)."""

    @property
    def max_per_minute(self) -> float: ...

    def eta_seconds(self, requests: int) -> float: ...


class RunObserver:
    """Hooks a run calls as it goes; subclass and override what you need.

    Called from worker threads: implementations must be thread-safe. The journal
    records from these hooks; progress bars and widgets display from them.
    """

    def run_started(self, plan: Plan, options: RunSettings) -> None:
        """Before the first request."""

    def sending(self, request: Request, attempt: int) -> None:
        """Just before an attempt goes out (the order is now in flight)."""

    def answered(
        self, request: Request, attempt: int, http_status: int | None, details: str
    ) -> None:
        """After each attempt, with the HTTP status (None when there was no answer)."""

    def finished(self, result: OrderResult) -> None:
        """When an order has its final outcome."""

    def run_finished(self, results: list[OrderResult], stopped: RunStop | None) -> None:
        """After the last order; ``stopped`` says why the run stopped early, if it did."""


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
