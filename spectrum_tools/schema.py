"""Column names and outcome vocabulary shared by every stage. Pure: no I/O.

API fields keep the API's spelling (``purchaseOrderNumber``, ``recipeSetReadableId``,
``workflowStatus``); the toolkit's own columns are snake_case. Every stage refers to
columns through these constants, never through string literals.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, TypedDict

__all__ = [
    "ATTEMPTS",
    "DETAILS",
    "ELAPSED_S",
    "HTTP_STATUS",
    "KEY_COLUMNS",
    "LINE_COUNT",
    "LINE_ID",
    "MISSING_IDS",
    "OUTCOME",
    "PAYLOAD",
    "PO",
    "PROBLEM",
    "RESULT_COLUMNS",
    "SOURCE_ROW",
    "SOURCE_ROWS",
    "SOURCE_SHEET",
    "STATUS",
    "VALID",
    "LineItem",
    "Outcome",
    "StatusUpdate",
    "StopReason",
]

# The API's own names.
PO: Final = "purchaseOrderNumber"
LINE_ID: Final = "recipeSetReadableId"
STATUS: Final = "workflowStatus"
KEY_COLUMNS: Final = (PO, LINE_ID, STATUS)

# Where a row came from, as the spreadsheet shows it (header on row 1: first data row 2).
SOURCE_ROW: Final = "source_row"
SOURCE_SHEET: Final = "source_sheet"

# Validation.
VALID: Final = "valid"
PROBLEM: Final = "problem"

# Planning and results.
LINE_COUNT: Final = "line_count"
SOURCE_ROWS: Final = "source_rows"
PAYLOAD: Final = "payload"
OUTCOME: Final = "outcome"
HTTP_STATUS: Final = "http_status"
DETAILS: Final = "details"
MISSING_IDS: Final = "missing_ids"
ATTEMPTS: Final = "attempts"
ELAPSED_S: Final = "elapsed_s"

# The per-order results frame always starts with these columns, in this order.
RESULT_COLUMNS: Final = (
    PO,
    OUTCOME,
    HTTP_STATUS,
    DETAILS,
    LINE_COUNT,
    MISSING_IDS,
    ATTEMPTS,
    ELAPSED_S,
    SOURCE_ROWS,
)


class Outcome(StrEnum):
    """The one final outcome every order of a run ends with."""

    UPDATED = "updated"  # 200: every line item updated
    PARTIAL = "partial"  # re-sent without the missing ids, and that succeeded
    NOT_FOUND = "not_found"  # 404/409: nothing in the order changed
    FAILED = "failed"  # retries exhausted, or an answer that is not success
    INVALID = "invalid"  # held back: a row of this order did not validate
    PENDING = "pending"  # never sent (run stopped, interrupted, or not reached)
    DRY_RUN = "dry_run"  # planned only
    SKIPPED = "skipped"  # an earlier run already applied exactly this
    UNCHANGED = "unchanged"  # read-back: Spectrum already holds every wanted status


class StopReason(StrEnum):
    """Why a run (of sends or of reads) ended before its last order."""

    INTERRUPTED = "interrupted"  # Ctrl-C: in-flight requests finished
    STOPPED = "stopped"  # the stop event was set (Stop button, a journal write failed)
    REFUSED = "refused"  # 401, or 403 before any success: bad token or limit used up
    FORBIDDEN_STREAK = "forbidden_streak"  # endless 403s after successes: token revoked?
    UNREACHABLE = "unreachable"  # orders in a row got no answer at all
    CRASHED = "crashed"  # a bug, or an unwritable journal


class LineItem(TypedDict):
    """One line item of a status update, as the API spells it."""

    recipeSetReadableId: str
    workflowStatus: str


class StatusUpdate(TypedDict):
    """The body of ``PUT /api/order/status``: one purchase order and its line items."""

    purchaseOrderNumber: str
    lineItems: list[LineItem]
