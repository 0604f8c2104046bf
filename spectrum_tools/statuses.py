"""The workflow-status vocabulary of Spectrum and its normalisation. Pure: no I/O.

This is the one place the statuses are listed. Spectrum's docs list eight statuses; the
newest revision adds ``in-progress-step-1`` and ``released``; all ten are accepted.
"""

from __future__ import annotations

import difflib
import re
from enum import StrEnum

__all__ = ["WorkflowStatus", "normalise_status", "suggest_status"]


class WorkflowStatus(StrEnum):
    """A line item's workflow status, spelled exactly as the API wants it."""

    NOT_STARTED = "not-started"
    IN_PROGRESS = "in-progress"
    IN_PROGRESS_STEP_1 = "in-progress-step-1"
    COMPLETED = "completed"
    REVISION = "revision"
    ON_HOLD = "on-hold"
    APPROVED = "approved"
    RELEASED = "released"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


# Spellings analysts use that the plain case/separator rule cannot reach.
_ALIASES: dict[str, WorkflowStatus] = {
    "canceled": WorkflowStatus.CANCELLED,
    "in-progress-step1": WorkflowStatus.IN_PROGRESS_STEP_1,
    "inprogress": WorkflowStatus.IN_PROGRESS,
    "notstarted": WorkflowStatus.NOT_STARTED,
    "onhold": WorkflowStatus.ON_HOLD,
}

_SEPARATORS = re.compile(r"[\s_\-]+")


def _key(text: str) -> str:
    return _SEPARATORS.sub("-", text.strip().lower()).strip("-")


_BY_KEY: dict[str, WorkflowStatus] = {s.value: s for s in WorkflowStatus} | _ALIASES


def normalise_status(text: str) -> WorkflowStatus | None:
    """Map a status as an analyst wrote it to the API spelling.

    Case, surrounding spaces, and spaces/underscores/hyphens between words are ignored;
    ``canceled`` (US spelling) is ``cancelled``.

    Parameters
    ----------
    text
        The cell text.

    Returns
    -------
    WorkflowStatus | None
        The status, or ``None`` when the text is not a workflow status.

    Examples
    --------
    >>> normalise_status(" In Progress ")
    <WorkflowStatus.IN_PROGRESS: 'in-progress'>
    >>> normalise_status("ON_HOLD").value
    'on-hold'
    >>> normalise_status("canceled").value
    'cancelled'
    >>> normalise_status("shipped") is None
    True
    """
    return _BY_KEY.get(_key(text))


def suggest_status(text: str) -> WorkflowStatus | None:
    """Return the workflow status closest to an unknown one, if one is close enough.

    Examples
    --------
    >>> suggest_status("complet").value
    'completed'
    >>> suggest_status("shipped").value
    'delivered'
    >>> suggest_status("zzz") is None
    True
    """
    key = _key(text)
    if not key:
        return None
    close = difflib.get_close_matches(key, list(_BY_KEY), n=1, cutoff=0.6)
    if close:
        return _BY_KEY[close[0]]
    # Words analysts use for a status Spectrum calls something else.
    return _SYNONYMS.get(key)


_SYNONYMS: dict[str, WorkflowStatus] = {
    "shipped": WorkflowStatus.DELIVERED,
    "done": WorkflowStatus.COMPLETED,
    "finished": WorkflowStatus.COMPLETED,
    "paused": WorkflowStatus.ON_HOLD,
    "hold": WorkflowStatus.ON_HOLD,
    "started": WorkflowStatus.IN_PROGRESS,
    "void": WorkflowStatus.CANCELLED,
}
