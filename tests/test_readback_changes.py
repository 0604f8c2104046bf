"""Read-back, pure parts: parsing order answers, look-back windows, current -> wanted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from spectrum_tools.readback.answers import OrderState, parse_order, search_windows
from spectrum_tools.readback.changes import (
    CHANGE,
    CURRENT_STATUS,
    DECISION,
    LEAVES_FINAL,
    SEEN,
    SEND_IDS,
    current_frame,
    line_changes,
    order_decisions,
)
from spectrum_tools.schema import LINE_ID, MISSING_IDS, PO, STATUS


def _wanted(*rows: tuple[str, str, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=[PO, LINE_ID, STATUS])


def _changes(wanted: pd.DataFrame, states: dict[str, OrderState]) -> pd.DataFrame:
    return line_changes(wanted, current_frame(wanted, states))


def test_parse_order_accepts_both_spellings_of_items_and_ids() -> None:
    answer = {
        "purchaseOrderNumber": "PO-1",
        "line_items": [
            {"id": 1, "recipeSetId": "AAAA1111", "workflowStatus": "on-hold"},
            {"id": 2, "recipeSetReadableId": "BBBB2222", "workflowStatus": "completed"},
        ],
    }
    state = parse_order("PO-1", answer)
    assert dict(state.statuses) == {"AAAA1111": "on-hold", "BBBB2222": "completed"}
    assert state.shows_statuses


def test_parse_order_without_statuses_says_so_instead_of_guessing() -> None:
    state = parse_order("PO-1", {"lineItems": [{"recipeSetId": "AAAA1111"}]})
    assert dict(state.statuses) == {"AAAA1111": None}
    assert not state.shows_statuses


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"purchaseOrderNumber": "PO-2", "lineItems": []}, "another order"),
        ({"purchaseOrderNumber": "PO-1", "lineItems": "nope"}, "no lineItems list"),
        ({}, "no lineItems list"),
    ],
)
def test_parse_order_refuses_answers_it_cannot_use(answer: dict[str, object], error: str) -> None:
    state = parse_order("PO-1", answer)
    assert error in state.error
    assert not state.statuses


def test_parse_order_line_listed_twice_with_two_statuses_is_unknown() -> None:
    items = [
        {"recipeSetId": "AAAA1111", "workflowStatus": "on-hold"},
        {"recipeSetId": "AAAA1111", "workflowStatus": "completed"},
    ]
    state = parse_order("P", {"lineItems": items})
    assert state.statuses["AAAA1111"] is None
    assert "twice" in state.notes["AAAA1111"]


def test_search_windows_cover_the_look_back_newest_first_at_most_31_days() -> None:
    end = datetime(2026, 12, 3, tzinfo=UTC)
    windows = search_windows(end, timedelta(days=92))
    assert windows[0][1] == end
    assert windows[-1][0] == end - timedelta(days=92)
    assert all(b - a <= timedelta(days=31) for a, b in windows)
    assert all(windows[i][0] == windows[i + 1][1] for i in range(len(windows) - 1))
    assert len(windows) == 3


def test_changes_classify_each_line_item() -> None:
    wanted = _wanted(
        ("P1", "A", "completed"),  # on-hold -> completed: a change
        ("P1", "B", "completed"),  # already completed
        ("P2", "C", "in-progress"),  # delivered -> in-progress: leaves a final status
        ("P3", "D", "completed"),  # status not shown: unknown
        ("P4", "E", "completed"),  # order not in Spectrum
        ("P1", "X", "completed"),  # line item not in the order
    )
    states = {
        "P1": OrderState("P1", {"A": "on-hold", "B": "Completed"}, via="search"),
        "P2": OrderState("P2", {"C": "delivered"}, via="search"),
        "P3": OrderState("P3", {"D": None}, via="order"),
        "P4": OrderState("P4", found=False, via="order"),
    }
    ch = _changes(wanted, states)
    assert ch[CHANGE].tolist() == [
        "change",
        "already_set",
        "change",
        "unknown",
        "not_in_spectrum",
        "not_in_spectrum",
    ]
    assert ch[CURRENT_STATUS].tolist()[:3] == ["on-hold", "completed", "delivered"]
    assert ch[LEAVES_FINAL].tolist() == [False, False, True, False, False, False]
    assert ch[SEEN].tolist()[3:] == ["no_status", "no_order", "no_line"]


def test_decisions_send_only_what_changes_and_refuse_orders_spectrum_lacks() -> None:
    wanted = _wanted(
        ("P1", "A", "completed"),
        ("P1", "B", "completed"),
        ("P2", "C", "completed"),
        ("P3", "D", "completed"),
        ("P3", "E", "completed"),
        ("P4", "F", "completed"),
    )
    states = {
        "P1": OrderState("P1", {"A": "on-hold", "B": "completed"}),
        "P2": OrderState("P2", {"C": "completed"}),
        "P3": OrderState("P3", {"D": "on-hold"}),
        "P4": OrderState("P4", found=False),
    }
    decisions = order_decisions(_changes(wanted, states)).set_index(PO)
    assert decisions[DECISION].to_dict() == {
        "P1": "send",
        "P2": "unchanged",
        "P3": "not_found",
        "P4": "not_found",
    }
    assert decisions.loc["P1", SEND_IDS] == ("A",)
    assert decisions.loc["P3", MISSING_IDS] == ("E",)
    assert "refused whole" in decisions.loc["P3", "details"]
    assert "no order P4" in decisions.loc["P4", "details"]


def test_decisions_with_retry_without_missing_send_the_rest() -> None:
    wanted = _wanted(("P3", "D", "completed"), ("P3", "E", "completed"))
    states = {"P3": OrderState("P3", {"D": "on-hold"})}
    decision = order_decisions(_changes(wanted, states), retry_without_missing=True).iloc[0]
    assert decision[DECISION] == "send"
    assert decision[SEND_IDS] == ("D",)
    assert decision[MISSING_IDS] == ("E",)


def test_unknown_statuses_are_never_taken_for_already_set() -> None:
    """The degraded path: Spectrum shows no statuses, so everything is sent, nothing skipped."""
    wanted = _wanted(("P1", "A", "completed"), ("P1", "B", "on-hold"))
    states = {"P1": OrderState("P1", {"A": None, "B": None})}
    decision = order_decisions(_changes(wanted, states)).iloc[0]
    assert decision[DECISION] == "send"
    assert decision[SEND_IDS] == ("A", "B")


def test_an_order_that_could_not_be_read_is_sent_whole() -> None:
    wanted = _wanted(("P1", "A", "completed"))
    ch = _changes(wanted, {"P1": OrderState("P1", error="HTTP 500")})
    assert ch[CHANGE].tolist() == ["unknown"]
    assert order_decisions(ch).iloc[0][DECISION] == "send"


def test_case_only_differences_in_line_ids_are_named() -> None:
    wanted = _wanted(("P1", "aaaa1111", "completed"))
    current = current_frame(wanted, {"P1": OrderState("P1", {"AAAA1111": "on-hold"})})
    assert "different case" in current["read_note"].iat[0]
