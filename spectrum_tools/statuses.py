"""The workflow-status vocabulary of Spectrum and its normalisation. Pure: no I/O.

This is the one place the statuses are listed. Spectrum's docs list eight statuses; the
newest revision adds ``in-progress-step-1`` and ``released``; all ten are accepted.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from enum import StrEnum

__all__ = [
    "BUILT_IN_ALIASES",
    "StatusAliases",
    "WorkflowStatus",
    "normalise_status",
    "status_aliases",
    "suggest_status",
]


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


# Spellings analysts use that the plain case/separator rule cannot reach, each of which can
# only mean one status (another form of the same word). Words that name a different idea
# (``shipped``, ``done``, ``paused``) are not here: they are only suggested (see
# _SYNONYMS), or a team maps them in its environments file ([statuses.aliases]).
BUILT_IN_ALIASES: Mapping[str, WorkflowStatus] = {
    "canceled": WorkflowStatus.CANCELLED,
    "cancel": WorkflowStatus.CANCELLED,
    "complete": WorkflowStatus.COMPLETED,
    "in-progress-step1": WorkflowStatus.IN_PROGRESS_STEP_1,
    "inprogress-step-1": WorkflowStatus.IN_PROGRESS_STEP_1,
    "inprogress": WorkflowStatus.IN_PROGRESS,
    "notstarted": WorkflowStatus.NOT_STARTED,
    "onhold": WorkflowStatus.ON_HOLD,
    "approve": WorkflowStatus.APPROVED,
    "release": WorkflowStatus.RELEASED,
    "deliver": WorkflowStatus.DELIVERED,
    "revisions": WorkflowStatus.REVISION,
}
"""Built-in spellings (compared after case and separators are dropped) -> status."""

StatusAliases = Mapping[str, WorkflowStatus]
"""A team's own spellings, as :func:`status_aliases` checked them: key -> status."""

_SEPARATORS = re.compile(r"[\s_\-]+")


def _key(text: str) -> str:
    return _SEPARATORS.sub("-", text.strip().lower()).strip("-")


_BY_KEY: dict[str, WorkflowStatus] = {s.value: s for s in WorkflowStatus} | dict(BUILT_IN_ALIASES)


def status_aliases(
    spellings: Mapping[str, str | WorkflowStatus], *, where: str = "aliases"
) -> StatusAliases:
    """Check a team's own status spellings and return them ready for :func:`normalise_status`.

    Parameters
    ----------
    spellings
        Spelling -> workflow status, e.g. ``{"shipped": "delivered"}`` (the
        ``[statuses.aliases]`` table of an environments file). The status may itself be
        written loosely (``"On Hold"``).
    where
        Names the source in error messages (a file and table).

    Returns
    -------
    Mapping
        Normalised spelling -> :class:`WorkflowStatus`.

    Raises
    ------
    ValueError
        A value is not a workflow status, a spelling is blank, or a spelling already
        means another status (``completed = "delivered"`` would silently redefine one).

    Examples
    --------
    >>> dict(status_aliases({"Shipped": "delivered"}))
    {'shipped': <WorkflowStatus.DELIVERED: 'delivered'>}
    >>> status_aliases({"completed": "delivered"})
    Traceback (most recent call last):
    ...
    ValueError: aliases.completed: 'completed' already means 'completed'; ...
    """
    checked: dict[str, WorkflowStatus] = {}
    for spelling, wanted in spellings.items():
        key = _key(str(spelling))
        if not key:
            raise ValueError(f"{where}: an alias needs a spelling, not {spelling!r}")
        if not isinstance(wanted, str):
            raise ValueError(f"{where}.{spelling}: must be a quoted status, not {wanted!r}")
        status = _BY_KEY.get(_key(wanted))
        if status is None:
            hint = suggest_status(wanted)
            more = f"; did you mean {hint.value!r}?" if hint else ""
            raise ValueError(f"{where}.{spelling}: {wanted!r} is not a workflow status{more}")
        known = _BY_KEY.get(key)
        if known is not None and known is not status:
            raise ValueError(
                f"{where}.{spelling}: {spelling!r} already means {known.value!r}; "
                "an alias cannot give a status another meaning"
            )
        checked[key] = status
    return checked


def normalise_status(text: str, aliases: StatusAliases | None = None) -> WorkflowStatus | None:
    """Map a status as an analyst wrote it to the API spelling.

    Case, surrounding spaces, and spaces/underscores/hyphens between words are ignored;
    other forms of the same word are accepted (``canceled`` and ``cancel`` are
    ``cancelled``, ``Complete`` is ``completed``: :data:`BUILT_IN_ALIASES`), and so are a
    team's own spellings passed as ``aliases``.

    Parameters
    ----------
    text
        The cell text.
    aliases
        A team's spellings, from :func:`status_aliases` (e.g. ``shipped`` -> delivered).

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
    >>> normalise_status("COMPLETE").value
    'completed'
    >>> normalise_status("shipped") is None
    True
    >>> normalise_status("shipped", status_aliases({"shipped": "delivered"})).value
    'delivered'
    """
    key = _key(text)
    found = _BY_KEY.get(key)
    if found is None and aliases:
        found = aliases.get(key)
    return found


def suggest_status(text: str, aliases: StatusAliases | None = None) -> WorkflowStatus | None:
    """Return the workflow status closest to an unknown one, if one is close enough.

    ``aliases`` (a team's spellings, see :func:`status_aliases`) are candidates too.

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
    known = _BY_KEY | dict(aliases or {})
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    if close:
        return known[close[0]]
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
