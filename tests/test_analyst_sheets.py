"""Issue 13, sheets and validation: what an analyst's real workbook needs.

Status aliases (built in and the team's), ids Excel stored as numbers, "Line Item ID",
title rows, footer rows, problems grouped by kind, and applying suggestions.
"""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from spectrum_tools.environments import load_environments, load_status_aliases
from spectrum_tools.errors import ColumnError, ConfigError
from spectrum_tools.planning import plan_updates
from spectrum_tools.sheets import HEADER_ROW, HEADERS, read_updates
from spectrum_tools.statuses import normalise_status, status_aliases
from spectrum_tools.validation import (
    ORIGINAL_STATUS,
    apply_suggestions,
    ignored_rows,
    problem_counts,
    problem_summary,
    status_suggestions,
    validate_updates,
)


def _frame(statuses: list[str], pos: list[str] | None = None) -> pd.DataFrame:
    n = len(statuses)
    return pd.DataFrame(
        {
            "purchaseOrderNumber": pos or [f"P{i}" for i in range(n)],
            "recipeSetReadableId": [f"ID{i:06d}" for i in range(n)],
            "workflowStatus": statuses,
        }
    )


def _workbook(path: Path, rows: list[list[object]]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


# -- statuses ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("Complete", "completed"),
        ("complete", "completed"),
        ("COMPLETE", "completed"),
        ("cancel", "cancelled"),
        ("Approve", "approved"),
        ("release", "released"),
        ("on hold", "on-hold"),
    ],
)
def test_unambiguous_spellings_are_accepted(written: str, expected: str) -> None:
    out = validate_updates(_frame([written]))
    assert out["valid"].tolist() == [True]
    assert out["workflowStatus"].tolist() == [expected]


@pytest.mark.parametrize("word", ["shipped", "done", "paused", "finished"])
def test_words_for_another_idea_are_not_built_in(word: str) -> None:
    out = validate_updates(_frame([word]))
    assert out["valid"].tolist() == [False]
    assert "did you mean" in out["problem"].iat[0]


def test_team_aliases_are_passed_in_not_global() -> None:
    rows = _frame(["shipped", "Shipped ", "complete"])
    with_team = validate_updates(rows, aliases={"shipped": "delivered"})
    assert with_team["valid"].all()
    assert with_team["workflowStatus"].tolist() == ["delivered", "delivered", "completed"]
    # Nothing leaked into a process-wide table: without the mapping, shipped is unknown again.
    assert validate_updates(rows)["valid"].tolist() == [False, False, True]
    assert normalise_status("shipped") is None


@pytest.mark.badinput
@pytest.mark.parametrize(
    ("aliases", "says"),
    [
        ({"shipped": "sent"}, "'sent' is not a workflow status"),
        ({"completed": "delivered"}, "'completed' already means 'completed'"),
        ({"  ": "delivered"}, "needs a spelling"),
    ],
)
def test_a_bad_alias_is_a_config_error(aliases: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        validate_updates(_frame(["x"]), aliases=aliases)
    with pytest.raises(ValueError, match=says):
        status_aliases(aliases)


def test_environments_file_holds_the_team_aliases(tmp_path: Path) -> None:
    path = tmp_path / "envs.toml"
    path.write_text(
        '[environments.staging]\nbase_url = "https://staging.example.com"\nproduction = false\n'
        '\n[statuses.aliases]\nshipped = "delivered"\n"on the truck" = "Delivered"\n',
        encoding="utf-8",
    )
    assert list(load_environments(path)) == ["sandbox", "staging"]  # [statuses] is fine there
    aliases = load_status_aliases(path)
    out = validate_updates(_frame(["Shipped", "On The Truck"]), aliases=aliases)
    assert out["workflowStatus"].tolist() == ["delivered", "delivered"]
    assert dict(load_status_aliases(tmp_path / "absent.toml", missing_ok=True)) == {}


@pytest.mark.badinput
def test_an_alias_to_no_status_in_the_file_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "envs.toml"
    path.write_text('[statuses.aliases]\nshipped = "gone"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_status_aliases(path)
    assert str(path) in str(info.value)
    assert "statuses.aliases.shipped" in str(info.value)


# -- ids stored as numbers --------------------------------------------------------------------


def test_id_cells_stored_as_numbers_are_flagged_and_kept_as_text(tmp_path: Path) -> None:
    path = _workbook(
        tmp_path / "ids.xlsx",
        [
            ["PO #", "Recipe Set", "New Status"],
            ["00012345", "AAAA1111", "completed"],
            [12345, "AAAA2222", "completed"],
            ["P2", 77770000, "completed"],
        ],
    )
    out = validate_updates(read_updates(path))
    assert out["purchaseOrderNumber"].tolist() == ["00012345", "12345", "P2"]
    assert out["recipeSetReadableId"].tolist()[2] == "77770000"
    assert out["valid"].all()  # a warning: a numeric PO may be right
    problems = out["problem"].tolist()
    assert problems[0] == ""
    assert (
        "purchaseOrderNumber stored as a number in Excel: leading zeros may be lost"
        in (problems[1])
    )
    assert "recipeSetReadableId stored as a number in Excel" in problems[2]
    table = problem_summary(out)
    assert set(table["severity"]) == {"warning"}
    assert problem_counts(out).empty  # not counted as invalid


def test_numeric_ids_of_an_analysts_dataframe_are_flagged() -> None:
    rows = pd.DataFrame(
        {"PO": [12345, 777], "Recipe Set": ["A1", "B2"], "Status": ["approved"] * 2}
    )
    out = validate_updates(read_updates(rows))
    assert out["purchaseOrderNumber"].tolist() == ["12345", "777"]
    assert out["problem"].str.contains("stored as a number").all()


# -- columns and header rows ------------------------------------------------------------------


@pytest.mark.parametrize("header", ["Line Item ID", "Line Item", "Line ID"])
def test_line_item_id_is_never_the_recipe_set_id(header: str) -> None:
    rows = pd.DataFrame({"PO": ["P1"], header: ["101"], "Status": ["approved"]})
    with pytest.raises(ColumnError) as info:
        read_updates(rows)
    assert "integer line item id, not the recipe set id" in str(info.value)
    # Both columns present: the recipe set column is taken, the line item id is kept aside.
    both = read_updates(rows.assign(**{"Recipe Set": ["AAAA1111"]}))
    assert both["recipeSetReadableId"].tolist() == ["AAAA1111"]
    assert both[header].tolist() == ["101"]
    # And it can still be named explicitly when it really holds recipe set ids.
    named = read_updates(rows, columns={"recipeSetReadableId": header})
    assert named["recipeSetReadableId"].tolist() == ["101"]


def test_error_names_the_real_header_row_not_the_title(tmp_path: Path) -> None:
    path = _workbook(
        tmp_path / "titled.xlsx",
        [["Status updates, week 12"], [], ["PO #", "Line Item ID", "New Status"], ["P1", 1, "x"]],
    )
    with pytest.raises(ColumnError) as info:
        read_updates(path)
    message = str(info.value)
    assert ", row 3:" in message
    assert "'PO #', 'Line Item ID', 'New Status'" in message
    assert "week 12" not in message


def test_rows_remember_header_texts_and_row(tmp_path: Path) -> None:
    path = _workbook(
        tmp_path / "titled.xlsx",
        [["Report"], ["PO #", "Recipe Set", "New Status"], ["P1", "AAAA1111", "Complete"]],
    )
    rows = read_updates(path)
    assert rows.attrs[HEADER_ROW] == 2
    assert rows.attrs[HEADERS] == {
        "purchaseOrderNumber": "PO #",
        "recipeSetReadableId": "Recipe Set",
        "workflowStatus": "New Status",
    }
    assert rows["source_row"].tolist() == [3]


# -- footer rows ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "footer",
    [
        ["rows: 2", "", ""],
        ["Total", "", ""],
        ["Grand Total: 2", "", ""],
        ["2", "", ""],
        ["", "", "2 rows"],
    ],
)
def test_footer_rows_are_ignored_and_reported(tmp_path: Path, footer: list[str]) -> None:
    path = _workbook(
        tmp_path / "footer.xlsx",
        [
            ["PO #", "Recipe Set", "New Status"],
            ["P1", "AAAA1111", "completed"],
            ["P2", "BBBB2222", "completed"],
            [],
            footer,
        ],
    )
    out = validate_updates(read_updates(path))
    assert out["valid"].all()
    assert len(out) == 2
    assert ignored_rows(out) == [(5, next(c for c in footer if c))]
    summary = plan_updates(out).summary()
    assert summary["orders_held_invalid"] == 0
    assert summary["requests"] == 2


def test_an_incomplete_row_in_the_middle_is_not_a_footer() -> None:
    rows = _frame(["completed", "", "completed"])
    out = validate_updates(rows)
    assert ignored_rows(out) == []
    assert out["valid"].tolist() == [True, False, True]


def test_an_incomplete_last_row_that_is_no_footer_stays_invalid() -> None:
    rows = _frame(["completed", ""], pos=["P1", "P2"])
    out = validate_updates(rows)
    assert ignored_rows(out) == []
    assert out["valid"].tolist() == [True, False]


# -- summary by kind --------------------------------------------------------------------------


def test_folded_duplicates_are_counted_apart_from_invalid_rows() -> None:
    rows = pd.DataFrame(
        {
            "purchaseOrderNumber": ["P1"] * 4 + ["P2", "P3"],
            "recipeSetReadableId": ["A", "A", "A", "B", "C", "D"],
            "workflowStatus": ["completed"] * 4 + ["nope", "shiped"],
        }
    )
    out = validate_updates(rows)
    table = problem_summary(out)
    as_list = table[["severity", "kind", "rows"]].values.tolist()
    assert as_list == [
        ["invalid", "unknown workflowStatus", 2],
        ["folded duplicate", "duplicate row", 2],
    ]
    assert table["example_rows"].tolist() == ["6, 7", "3, 4"]
    assert problem_counts(out).to_dict() == {"unknown workflowStatus": 2}


# -- suggestions ------------------------------------------------------------------------------


def test_apply_suggestions_keeps_the_original_spelling() -> None:
    rows = _frame(["complet", "shipped", "zzz", "approved"])
    out = validate_updates(rows)
    table = status_suggestions(out)
    assert dict(zip(table["spelling"], table["suggestion"], strict=True)) == {
        "complet": "completed",
        "shipped": "delivered",
        "zzz": "",
    }
    fixed = apply_suggestions(out)
    assert fixed["workflowStatus"].tolist() == ["completed", "delivered", "zzz", "approved"]
    assert fixed[ORIGINAL_STATUS].tolist() == ["complet", "shipped", "", ""]
    assert fixed["valid"].tolist() == [True, True, False, True]
    # The plan (and so the journal and the report) keeps the column.
    assert ORIGINAL_STATUS in plan_updates(fixed).rows.columns
