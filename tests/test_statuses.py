"""The workflow-status vocabulary: the ten API spellings, normalisation and suggestions."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spectrum_tools import WorkflowStatus, normalise_status
from spectrum_tools.statuses import suggest_status

# Copied from the API contract (docs/spectrum-api.md): eight statuses, plus the two the
# newest docs revision adds. Data, not code: these must match character for character.
API_STATUSES = [
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
]


def test_vocabulary_is_exactly_the_ten_documented_statuses() -> None:
    assert sorted(s.value for s in WorkflowStatus) == sorted(API_STATUSES)


@pytest.mark.parametrize("spelling", API_STATUSES)
def test_every_api_spelling_is_accepted_as_itself(spelling: str) -> None:
    status = normalise_status(spelling)
    assert status is not None
    assert status.value == spelling


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("In Progress", "in-progress"),
        ("ON_HOLD", "on-hold"),
        ("Not Started", "not-started"),
        ("canceled", "cancelled"),
        ("Canceled", "cancelled"),
        ("CANCELLED", "cancelled"),
        ("in_progress_step_1", "in-progress-step-1"),
        ("In Progress Step 1", "in-progress-step-1"),
        ("in progress step1", "in-progress-step-1"),
        (" delivered ", "delivered"),
        ("Completed", "completed"),
        ("on  hold", "on-hold"),
        ("On-Hold", "on-hold"),
        ("inprogress", "in-progress"),
        ("\tReleased\n", "released"),
    ],
)
def test_analyst_spellings_normalise_to_the_api_spelling(written: str, expected: str) -> None:
    status = normalise_status(written)
    assert status is not None, written
    assert status.value == expected


@pytest.mark.parametrize(
    "written", ["shipped", "", "   ", "complete d", "completedd", "in progress?", "hold on", "42"]
)
def test_unknown_status_is_none(written: str) -> None:
    assert normalise_status(written) is None


def test_status_serialises_as_its_api_spelling() -> None:
    # The JSON body must carry the API string, not "WorkflowStatus.IN_PROGRESS".
    status = normalise_status("In Progress")
    assert json.dumps({"workflowStatus": status}) == '{"workflowStatus": "in-progress"}'
    assert status == "in-progress"


@pytest.mark.parametrize(
    ("written", "suggested"),
    [
        ("complet", "completed"),
        ("shipped", "delivered"),
        ("on hld", "on-hold"),
        ("aproved", "approved"),
        ("done", "completed"),
    ],
)
def test_unknown_status_gets_a_close_suggestion(written: str, suggested: str) -> None:
    hint = suggest_status(written)
    assert hint is not None
    assert hint.value == suggested


@pytest.mark.parametrize("written", ["zzz", "", "   ", "xylophone"])
def test_no_suggestion_when_nothing_is_close(written: str) -> None:
    assert suggest_status(written) is None


# ----------------------------------------------------------------------- properties

_SEPARATOR = st.sampled_from([" ", "_", "-", "  ", " _ ", "\t"])


@st.composite
def _mangled(draw: st.DrawFn) -> tuple[str, str]:
    """An API status as an analyst might type it: any case, any separators, padding."""
    status = draw(st.sampled_from(API_STATUSES))
    words = status.split("-")
    cased = ["".join(c.upper() if draw(st.booleans()) else c for c in word) for word in words]
    text = cased[0]
    for word in cased[1:]:
        text += draw(_SEPARATOR) + word
    pad = st.sampled_from(["", " ", "  ", "\t"])
    return draw(pad) + text + draw(pad), status


@pytest.mark.property
@settings(max_examples=200, deadline=None)
@given(_mangled())
def test_any_case_and_separators_normalise(case: tuple[str, str]) -> None:
    text, expected = case
    status = normalise_status(text)
    assert status is not None, text
    assert status.value == expected


@pytest.mark.property
@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=30), _mangled().map(lambda c: c[0])))
def test_normalise_status_is_idempotent(text: str) -> None:
    first = normalise_status(text)
    if first is None:
        return
    assert normalise_status(first.value) == first
    assert normalise_status(str(first)) == first
