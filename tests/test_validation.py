"""Validation: trimming, blank rows, statuses, Excel damage, duplicates and conflicts."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from spectrum_tools import ColumnError, plan_updates, problem_counts, validate_updates

PO, LINE_ID, STATUS = "purchaseOrderNumber", "recipeSetReadableId", "workflowStatus"


def rows(*triples: tuple[object, object, object], **extra: list[object]) -> pd.DataFrame:
    """A tiny update sheet: one (PO, line item, status) triple per row, plus extra columns."""
    frame = pd.DataFrame(list(triples), columns=[PO, LINE_ID, STATUS], dtype=object)
    for name, values in extra.items():
        frame[name] = values
    return frame


def problem_of(out: pd.DataFrame, source_row: int) -> str:
    return str(out.loc[out["source_row"] == source_row, "problem"].item())


def valid_of(out: pd.DataFrame, source_row: int) -> bool:
    return bool(out.loc[out["source_row"] == source_row, "valid"].item())


# --------------------------------------------------------------------------- basics


def test_clean_rows_are_valid_with_empty_problem() -> None:
    out = validate_updates(rows(("PO-1", "AAAA1111", "completed"), ("PO-2", "BBBB2222", "on-hold")))
    assert out["valid"].tolist() == [True, True]
    assert out["problem"].tolist() == ["", ""]
    assert out["valid"].dtype == bool


def test_source_row_is_added_as_spreadsheet_row_when_absent() -> None:
    out = validate_updates(rows(("P", "A", "completed"), ("P", "B", "completed")))
    assert out["source_row"].tolist() == [2, 3]


def test_existing_source_row_is_kept() -> None:
    frame = rows(("P", "A", "completed"), ("P", "B", "completed"))
    frame["source_row"] = [10, 14]
    assert validate_updates(frame)["source_row"].tolist() == [10, 14]


def test_row_order_and_extra_columns_are_kept() -> None:
    frame = rows(
        ("P2", "B", "completed"),
        ("P1", "A", "approved"),
        ("P2", "C", "revision"),
        Note=["x", "y", ""],
    )
    out = validate_updates(frame)
    assert out[LINE_ID].tolist() == ["B", "A", "C"]
    assert out["Note"].tolist() == ["x", "y", ""]


def test_whitespace_is_trimmed() -> None:
    out = validate_updates(rows((" PO-1 ", "\tAAAA1111 ", "  completed\n")))
    assert out.loc[0, [PO, LINE_ID, STATUS]].tolist() == ["PO-1", "AAAA1111", "completed"]
    assert out["valid"].tolist() == [True]


def test_invisible_characters_are_trimmed() -> None:
    # Pasted from a web page or an email: a zero-width space and a stray BOM.
    out = validate_updates(rows(("\ufeffPO-1", "AAAA1111\u200b", "completed")))
    assert out.loc[0, [PO, LINE_ID]].tolist() == ["PO-1", "AAAA1111"]
    assert out["valid"].tolist() == [True]


def test_fully_blank_rows_are_dropped_silently() -> None:
    frame = rows(
        ("PO-1", "A", "completed"),
        ("", "", ""),
        ("  ", None, np.nan),
        ("PO-1", "B", "approved"),
    )
    frame["source_row"] = [2, 3, 4, 5]
    out = validate_updates(frame)
    assert out["source_row"].tolist() == [2, 5]
    assert out["valid"].tolist() == [True, True]
    assert out["problem"].tolist() == ["", ""]


def test_row_with_only_a_note_is_reported_not_dropped() -> None:
    out = validate_updates(rows(("", "", ""), Note=["ask Dana"]))
    assert len(out) == 1
    assert not out.loc[0, "valid"]


@pytest.mark.parametrize(
    ("triple", "column"),
    [
        (("", "AAAA1111", "completed"), PO),
        (("PO-1", "  ", "completed"), LINE_ID),
        (("PO-1", "AAAA1111", None), STATUS),
    ],
)
def test_blank_key_cell_is_invalid(triple: tuple[str, str, str], column: str) -> None:
    out = validate_updates(rows(triple))
    assert out["valid"].tolist() == [False]
    assert f"blank {column}" in out.loc[0, "problem"]


@pytest.mark.badinput
def test_missing_key_column_is_a_column_error() -> None:
    frame = pd.DataFrame({PO: ["P"], "Status": ["completed"]})
    with pytest.raises(ColumnError) as info:
        validate_updates(frame)
    assert LINE_ID in str(info.value)
    assert STATUS in str(info.value)


# --------------------------------------------------------------------------- statuses


def test_statuses_are_normalised_to_the_api_spelling() -> None:
    written = [
        "In Progress",
        "ON_HOLD",
        "Not Started",
        "canceled",
        "in_progress_step_1",
        "Released",
    ]
    frame = rows(*[("PO-1", f"ID{i}", s) for i, s in enumerate(written)])
    out = validate_updates(frame)
    assert out[STATUS].tolist() == [
        "in-progress",
        "on-hold",
        "not-started",
        "cancelled",
        "in-progress-step-1",
        "released",
    ]
    assert out["valid"].all()


def test_unknown_status_is_invalid_with_a_suggestion() -> None:
    out = validate_updates(rows(("PO-1", "A", "shipped"), ("PO-1", "B", "xyzzy")))
    assert out["valid"].tolist() == [False, False]
    assert "shipped" in out.loc[0, "problem"]
    assert "did you mean 'delivered'?" in out.loc[0, "problem"]
    assert "xyzzy" in out.loc[1, "problem"]
    assert "did you mean" not in out.loc[1, "problem"]


def test_unknown_status_keeps_what_the_analyst_wrote() -> None:
    out = validate_updates(rows(("PO-1", "A", "Shipped!")))
    assert out.loc[0, STATUS] == "Shipped!"


# --------------------------------------------------------------------------- ids


@pytest.mark.parametrize("damaged", ["1.23E+07", "1.23e+07", "4,5E+11", "1E+15"])
def test_scientific_notation_id_is_flagged(damaged: str) -> None:
    out = validate_updates(rows(("PO-1", damaged, "completed")))
    assert out["valid"].tolist() == [False]
    assert "scientific notation" in out.loc[0, "problem"]
    assert LINE_ID in out.loc[0, "problem"]


def test_scientific_notation_po_is_flagged() -> None:
    out = validate_updates(rows(("1.23E+07", "AAAA1111", "completed")))
    assert out["valid"].tolist() == [False]
    assert PO in out.loc[0, "problem"]
    assert "scientific notation" in out.loc[0, "problem"]


@pytest.mark.parametrize("fine", ["12300000", "00123456", "7QJ2M4KD", "HA-US-DEV00011101"])
def test_plain_ids_are_not_flagged(fine: str) -> None:
    out = validate_updates(rows(("PO-1", fine, "completed"), (fine, "AAAA1111", "completed")))
    assert out["valid"].tolist() == [True, True]


def test_id_with_inner_space_is_invalid() -> None:
    out = validate_updates(rows(("PO-1", "AAAA 1111", "completed")))
    assert out["valid"].tolist() == [False]
    assert LINE_ID in out.loc[0, "problem"]


def test_float_ids_in_a_frame_are_never_sent_with_dot_zero() -> None:
    frame = pd.DataFrame(
        {PO: ["PO-1", "PO-2"], LINE_ID: [12345678.0, np.nan], STATUS: ["completed", "approved"]}
    )
    plan = plan_updates(frame)
    sent = [li[LINE_ID] for r in plan.requests() for li in r.line_items]
    assert "12345678.0" not in sent, sent


# --------------------------------------------------------------------------- duplicates


def test_exact_duplicates_are_folded_and_stay_valid() -> None:
    out = validate_updates(
        rows(
            ("PO-1", "AAAA1111", "completed"),
            ("PO-1", "BBBB2222", "approved"),
            ("PO-1", "AAAA1111", "completed"),
        )
    )
    assert out["valid"].tolist() == [True, True, True]
    assert out.loc[0, "problem"] == ""
    assert "duplicate" in out.loc[2, "problem"]
    assert "row 2" in out.loc[2, "problem"]


def test_duplicates_are_judged_after_normalisation() -> None:
    out = validate_updates(
        rows(("PO-1", "AAAA1111", "In Progress"), (" PO-1", "AAAA1111 ", "in_progress"))
    )
    assert out["valid"].tolist() == [True, True]
    assert "duplicate of row 2" in out.loc[1, "problem"]
    assert "conflict" not in out.loc[1, "problem"]


def test_same_id_in_two_orders_is_not_a_duplicate() -> None:
    out = validate_updates(
        rows(("PO-1", "AAAA1111", "completed"), ("PO-2", "AAAA1111", "approved"))
    )
    assert out["valid"].tolist() == [True, True]
    assert out["problem"].tolist() == ["", ""]


def test_conflicting_statuses_make_both_rows_invalid() -> None:
    out = validate_updates(
        rows(
            ("PO-1", "AAAA1111", "completed"),
            ("PO-1", "BBBB2222", "approved"),
            ("PO-1", "AAAA1111", "on hold"),
        )
    )
    assert out["valid"].tolist() == [False, True, False]
    for row in (2, 4):
        text = problem_of(out, row)
        assert "conflict" in text
        assert "row 2" in text
        assert "row 4" in text
    assert problem_of(out, 3) == ""


def test_several_problems_on_one_row_are_all_reported() -> None:
    out = validate_updates(rows(("", "1.23E+07", "shipped")))
    text = out.loc[0, "problem"]
    assert not out.loc[0, "valid"]
    assert f"blank {PO}" in text
    assert "scientific notation" in text
    assert "shipped" in text


def test_every_row_is_checked_not_just_the_first_bad_one() -> None:
    out = validate_updates(
        rows(("", "A", "completed"), ("PO-2", "", "completed"), ("PO-3", "C", "nope"))
    )
    assert out["valid"].tolist() == [False, False, False]
    assert all(out["problem"] != "")


# --------------------------------------------------------------------------- purity


def test_input_frame_is_never_mutated() -> None:
    frame = rows(
        (" PO-1 ", "AAAA1111", "In Progress"),
        ("", "", ""),
        ("PO-1", "AAAA1111", "in progress"),
        ("PO-2", 12345678, None),
        Note=["a", None, "c", np.nan],
    )
    before = copy.deepcopy(frame)
    out = validate_updates(frame)
    pd.testing.assert_frame_equal(frame, before)
    assert list(frame.columns) == list(before.columns)  # no valid/problem/source_row added
    out.loc[0, PO] = "changed"
    pd.testing.assert_frame_equal(frame, before)


# --------------------------------------------------------------------------- counts


def test_problem_counts_by_kind() -> None:
    out = validate_updates(
        rows(
            ("", "A", "completed"),
            ("", "B", "completed"),
            ("PO-3", "C", "shipped"),
            ("PO-3", "D", "xyzzy"),
            ("PO-4", "1.23E+07", "completed"),
            ("PO-5", "E", "completed"),
            ("PO-5", "E", "approved"),
            ("PO-6", "F", "completed"),
            ("PO-6", "F", "completed"),
        )
    )
    counts = problem_counts(out).to_dict()
    assert counts[f"blank {PO}"] == 2
    assert counts["unknown workflowStatus"] == 2
    assert counts["conflicting statuses"] == 2
    assert sum(v for k, v in counts.items() if "scientific" in k) == 1
    # A folded duplicate is valid: it is not a problem to count.
    assert not any("duplicate" in k for k in counts)
    assert sum(counts.values()) == 7


def test_problem_counts_empty_when_all_valid() -> None:
    out = validate_updates(rows(("P", "A", "completed"), ("P", "A", "completed")))
    assert problem_counts(out).to_dict() == {}


def test_trimmed_characters_are_exactly_what_str_strip_strips() -> None:
    # Arrow trims a listed set of characters; the list must be str.isspace() over all of
    # Unicode, or a cell would trim differently from Python's str.strip().
    from spectrum_tools import validation

    python = {c for c in map(chr, range(0x110000)) if c.isspace()}
    assert set(validation._WHITESPACE) == python


def test_reading_validating_and_planning_import_no_http_server_or_jupyter_stack() -> None:
    # The pure core and reading stand on their own (issue 14: `validate` must start fast).
    # The package root is bypassed so only these modules and what they import are loaded.
    import subprocess
    import sys

    code = (
        "import sys, types\n"
        "import importlib.util as u\n"
        "spec = u.find_spec('spectrum_tools')\n"
        "pkg = types.ModuleType('spectrum_tools')\n"
        "pkg.__path__ = list(spec.submodule_search_locations)\n"
        "sys.modules['spectrum_tools'] = pkg\n"
        "import spectrum_tools.sheets, spectrum_tools.validation, spectrum_tools.planning\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(done.stdout.split())
    heavy = {"requests", "urllib3", "tenacity", "tqdm", "starlette", "uvicorn", "ipywidgets"}
    heavy |= {"IPython", "ipykernel", "jupyter_client", "openpyxl", "python_calamine"}
    assert "pyarrow" in loaded and "pandas" in loaded
    assert loaded & heavy == set()
