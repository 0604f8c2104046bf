"""The exception tree of spectrum-tools. Pure: no I/O.

Every exception the toolkit raises on purpose derives from :class:`SpectrumError`, so a
caller can catch the whole family at once. Leaves also inherit the matching builtin, so
``except ValueError`` or ``except PermissionError`` keeps working::

    SpectrumError
    ├── SpreadsheetError (ValueError)      unreadable or unusable input file / frame
    │   └── ColumnError                    a needed column is missing or ambiguous
    ├── ConfigError (ValueError)           bad arguments, URL or environment settings
    │   └── InsecureURLError               plain http:// to a host that is not loopback
    ├── TransportError (ConnectionError)   no usable HTTP answer: refused, reset, timed out,
    │                                      over the deadline or the size cap
    ├── APIError                           Spectrum answered with an error status
    │   ├── NotFoundError                  404 / 409: line items not found (per order)
    │   ├── ServerError                    5xx: retry-safe, a status PUT is idempotent
    │   ├── RateLimitedError               429 (gateway) with an optional Retry-After
    │   ├── ForbiddenError (PermissionError)       403: throttled OR token not allowed
    │   ├── AuthenticationError (PermissionError)  401: the token was refused
    │   └── UnexpectedResponseError        another status, or a body not in the documented shape
    ├── RunStoppedError (RuntimeError)     a run was stopped as a whole (401/403 before any success)
    └── JournalError (RuntimeError)        the run journal is missing, locked or inconsistent

Per-order failures are *results*, not exceptions: the engine turns ``NotFoundError`` and
exhausted retries into rows of the results frame. Only what poisons a whole run raises.

No exception message ever contains the API token: messages are built from the status
code, the purchase order number and Spectrum's ``details`` text only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "APIError",
    "AuthenticationError",
    "ColumnError",
    "ConfigError",
    "ForbiddenError",
    "InsecureURLError",
    "JournalError",
    "NotFoundError",
    "RateLimitedError",
    "RunStoppedError",
    "ServerError",
    "SpectrumError",
    "SpreadsheetError",
    "TransportError",
    "UnexpectedResponseError",
    "error_for_status",
]


class SpectrumError(Exception):
    """Root of every exception raised on purpose by spectrum-tools."""


class SpreadsheetError(SpectrumError, ValueError):
    """The input cannot be read or used.

    The message is one line naming the file, and where known the sheet, row and column.

    Parameters
    ----------
    message
        What is wrong, in the analyst's terms.
    file, sheet, row, column
        Where. ``row`` is the row number as the spreadsheet shows it.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        sheet: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.file = file
        self.sheet = sheet
        self.row = row
        self.column = column
        self.reason = message
        where = []
        if file:
            where.append(file)
        if sheet:
            where.append(f"sheet {sheet!r}")
        if row is not None:
            where.append(f"row {row}")
        if column:
            where.append(f"column {column!r}")
        text = f"{', '.join(where)}: {message}" if where else message
        # One line, always: a newline inside a cell must not break the CLI's contract.
        super().__init__(" ".join(text.split()))


class ColumnError(SpreadsheetError):
    """A needed column is missing or more than one column could be it."""


class ConfigError(SpectrumError, ValueError):
    """An argument, URL, environment file or setting is not usable."""


class InsecureURLError(ConfigError):
    """A plain ``http://`` URL whose host is not loopback: the token would travel in clear."""


class TransportError(SpectrumError, ConnectionError):
    """No usable HTTP answer: connection refused or reset, timeout, truncated response, or
    an answer over the request's deadline or size cap. Retry-safe for a status PUT."""

    def __init__(self, message: str, *, purchase_order: str | None = None) -> None:
        self.purchase_order = purchase_order
        super().__init__(message)


class APIError(SpectrumError):
    """Spectrum answered with an HTTP error status.

    Attributes
    ----------
    status_code
        The HTTP status code.
    details
        Spectrum's ``details`` text (or a short excerpt of a non-JSON body).
    purchase_order
        The purchase order the request was about, when there was one.
    """

    def __init__(
        self,
        status_code: int,
        details: str = "",
        *,
        purchase_order: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status_code = status_code
        self.details = details
        self.purchase_order = purchase_order
        self.retry_after = retry_after
        po = f" for {purchase_order}" if purchase_order else ""
        text = f"HTTP {status_code}{po}: {details}" if details else f"HTTP {status_code}{po}"
        super().__init__(" ".join(text.split()))


class NotFoundError(APIError):
    """404 or 409: one or more line items were not found; nothing in the order changed.

    Attributes
    ----------
    missing_ids
        The sent line-item ids the answer names as not found, in sent order, parsed from
        the *whole* ``details`` text before it was cut (``details`` itself is bounded).
    """

    def __init__(
        self,
        status_code: int,
        details: str = "",
        *,
        purchase_order: str | None = None,
        retry_after: float | None = None,
        missing_ids: Sequence[str] = (),
    ) -> None:
        super().__init__(
            status_code, details, purchase_order=purchase_order, retry_after=retry_after
        )
        self.missing_ids: tuple[str, ...] = tuple(missing_ids)


class ServerError(APIError):
    """5xx: an error in the request or inside Spectrum. Safe to retry (a PUT is idempotent)."""


class RateLimitedError(APIError):
    """429 from a gateway in front of Spectrum, with ``retry_after`` seconds when given."""


class ForbiddenError(APIError, PermissionError):
    """403: Spectrum's throttling answer, and also what a token without access gets."""


class AuthenticationError(APIError, PermissionError):
    """401: the token was refused."""


class UnexpectedResponseError(APIError):
    """A status code or body the documented contract does not describe."""


class RunStoppedError(SpectrumError, RuntimeError):
    """A whole run was stopped (for example by 401/403 before any request succeeded).

    Attributes
    ----------
    results
        The run's per-order results frame (unsent orders ``pending``), when there is one:
        nothing the analyst sent is lost because the run stopped.
    """

    def __init__(self, message: str, *, results: Any = None) -> None:
        self.results = results
        super().__init__(message)


class JournalError(SpectrumError, RuntimeError):
    """The run journal cannot be opened, is locked, or does not hold the run asked for."""


# One table from HTTP status to exception class, as simple-salesforce does. 404 and 409
# mean the same thing: the newest docs revision documents 404 where older ones said 409.
_STATUS_ERRORS: dict[int, type[APIError]] = {
    401: AuthenticationError,
    403: ForbiddenError,
    404: NotFoundError,
    409: NotFoundError,
    429: RateLimitedError,
    500: ServerError,
    502: ServerError,
    503: ServerError,
    504: ServerError,
}


def error_for_status(status_code: int) -> type[APIError]:
    """Return the exception class for an HTTP error status.

    Parameters
    ----------
    status_code
        An HTTP status code of 400 or more.

    Returns
    -------
    type[APIError]
        The matching class; any other 5xx is a :class:`ServerError`, anything else
        unlisted is an :class:`UnexpectedResponseError`.

    Examples
    --------
    >>> error_for_status(409).__name__
    'NotFoundError'
    >>> error_for_status(599).__name__
    'ServerError'
    """
    if status_code in _STATUS_ERRORS:
        return _STATUS_ERRORS[status_code]
    if 500 <= status_code < 600:
        return ServerError
    return UnexpectedResponseError
