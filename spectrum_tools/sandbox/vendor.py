"""What the sandbox says as Spectrum: its status vocabulary, JSON shapes and exact texts. Pure.

Everything here follows the API contract in ``docs/spectrum-api.md`` (sections "Workflow
statuses", "Status answers", "Not found: 404 and 409" and "Missing-id parsing"). The strings
are data: clients parse them, so they must match Spectrum's texts character for character.

The sandbox deliberately keeps its *own* copy of the workflow-status vocabulary instead of
importing :mod:`spectrum_tools.statuses`: it plays the vendor, and a vendor that shared the
client's vocabulary would accept the client's typos. ``tests/test_sandbox.py`` checks that
the two lists agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, TypedDict

__all__ = [
    "BAD_TOKEN_DETAILS",
    "RATE_LIMIT_DETAILS",
    "WORKFLOW_STATUSES",
    "ErrorBody",
    "LineItemJSON",
    "OrderJSON",
    "StatusAnswer",
    "error_body",
    "not_found_details",
    "server_error_details",
    "updated_details",
]

# The eight documented statuses, plus the two the newest revision adds
# (docs/spectrum-api.md, Workflow statuses).
WORKFLOW_STATUSES: Final = frozenset(
    {
        "not-started",
        "in-progress",
        "completed",
        "revision",
        "on-hold",
        "approved",
        "delivered",
        "cancelled",
        "in-progress-step-1",
        "released",
    }
)

RATE_LIMIT_DETAILS: Final = "Rate limit exceeded."
BAD_TOKEN_DETAILS: Final = "Invalid or missing SPECTRUM_API_TOKEN."  # noqa: S105 - a message


class LineItemJSON(TypedDict, total=False):
    """A line item as ``GET /api/order/order-number/{po}`` returns it.

    ``workflowStatus`` is absent when the sandbox hides it (whether Spectrum sends it is
    not documented).
    """

    id: int
    recipeSetId: str
    workflowStatus: str
    skuQuantities: list[object]


class OrderJSON(TypedDict):
    """An order as ``GET /api/order/order-number/{po}`` and the search return it."""

    purchaseOrderNumber: str
    lineItems: list[LineItemJSON]


class StatusAnswer(TypedDict):
    """Every answer of the status endpoint: ``{purchaseOrderNumber, status, details}``."""

    purchaseOrderNumber: str
    status: str
    details: str


class ErrorBody(TypedDict):
    """An error that is not about one order (token, throttling, bad search)."""

    status: str
    details: str


def _join(ids: Iterable[str]) -> str:
    # How several ids are joined is undocumented (every example has one id): the sandbox
    # uses ", " and a final "." (docs/spectrum-api.md, Missing-id parsing). [assumption]
    return ", ".join(ids) + "."


def updated_details(ids: Iterable[str]) -> str:
    """Return the ``details`` text of a 200 answer.

    Examples
    --------
    >>> updated_details(["MUEMVK2U"])
    'Updated workflow status for recipeSetReadableId(s): MUEMVK2U.'
    """
    return "Updated workflow status for recipeSetReadableId(s): " + _join(ids)


def not_found_details(ids: Iterable[str]) -> str:
    """Return the ``details`` text of a 409/404 answer.

    Examples
    --------
    >>> not_found_details(["A1B2C3D4", "X9Y8Z7W6"])
    'Unable to find recipeSetReadableId(s): A1B2C3D4, X9Y8Z7W6.'
    """
    return "Unable to find recipeSetReadableId(s): " + _join(ids)


def server_error_details(po: str) -> str:
    """Return the ``details`` text of a 500 answer (``po`` is empty when unknown).

    Examples
    --------
    >>> server_error_details("HA-US-DEV00011103")
    'Update status for HA-US-DEV00011103 encountered an error.'
    """
    return f"Update status for {po} encountered an error."


def error_body(details: str) -> ErrorBody:
    """Return ``{"status": "Error", "details": details}``.

    Examples
    --------
    >>> error_body("Rate limit exceeded.")
    {'status': 'Error', 'details': 'Rate limit exceeded.'}
    """
    return {"status": "Error", "details": details}
