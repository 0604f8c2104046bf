"""Reading analysts' spreadsheets (XLSX, CSV, uploads, DataFrames) and writing tables back.

Every file here is written by the test itself into ``tmp_path`` (openpyxl for workbooks,
raw bytes for CSV), so each case shows exactly what the analyst's file holds.
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import io
import random
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pandas as pd
import pytest

from spectrum_tools import (
    ColumnError,
    ConfigError,
    SpectrumError,
    SpreadsheetError,
    list_sheets,
    read_updates,
    validate_updates,
    write_table,
)
from spectrum_tools.sheets import resolve_columns, write_workbook

PO, LINE_ID, STATUS = "purchaseOrderNumber", "recipeSetReadableId", "workflowStatus"
KEYS = [PO, LINE_ID, STATUS]
HEADER = ["PO Number", "Recipe Set ID", "New Status"]
REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- helpers


def make_xlsx(
    path: Path,
    sheets: Mapping[str, Sequence[Sequence[Any]]],
    *,
    hidden: Iterable[str] = (),
    merges: Mapping[str, Sequence[tuple[str, Any]]] | None = None,
) -> Path:
    """Write a workbook with openpyxl: sheet name -> rows; ``merges`` sheet -> (range, value)."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        ws = book.create_sheet(name)
        for row in rows:
            ws.append(list(row))
        if name in set(hidden):
            ws.sheet_state = "hidden"
        for cell_range, value in (merges or {}).get(name, ()):
            ws.merge_cells(cell_range)
            ws[cell_range.split(":")[0]] = value
    book.save(path)
    return path


def upload(data: bytes, name: str | None = "upload.csv") -> io.BytesIO:
    """What a notebook upload widget hands over: bytes with a ``.name``."""
    buffer = io.BytesIO(data)
    if name is not None:
        buffer.name = name
    return buffer


def read_error(source: Any, **kwargs: Any) -> SpreadsheetError:
    with pytest.raises(SpreadsheetError) as info:
        read_updates(source, **kwargs)
    return info.value


def assert_one_line_naming(exc: BaseException, file: str) -> str:
    text = str(exc)
    assert "\n" not in text, text
    assert "\r" not in text, text
    assert file in text, text
    return text


def keys(df: pd.DataFrame) -> list[list[str]]:
    return df[KEYS].to_numpy().tolist()


# --------------------------------------------------------------------------- XLSX cells


@pytest.fixture
def typed_book(tmp_path: Path) -> Path:
    """One sheet of awkward cells: a numeric id, leading zeros, NA/NULL, dates."""
    return make_xlsx(
        tmp_path / "typed.xlsx",
        {
            "Updates": [
                [*HEADER, "Due", "Stamp", "Owner"],
                ["00123", 12345678, "In Progress", dt.date(2024, 3, 5), None, "NA"],
                ["NULL", "NA", "completed", None, dt.datetime(2024, 3, 6, 13, 45), "NULL"],
                ["PO-3", "00000042", "approved", None, None, 7.0],
            ]
        },
    )


def test_xlsx_numeric_cell_becomes_its_digits(typed_book: Path) -> None:
    df = read_updates(typed_book)
    assert df.loc[0, LINE_ID] == "12345678"


def test_xlsx_text_cells_keep_leading_zeros(typed_book: Path) -> None:
    df = read_updates(typed_book)
    assert df.loc[0, PO] == "00123"
    assert df.loc[2, LINE_ID] == "00000042"


def test_xlsx_na_and_null_stay_literal_text(typed_book: Path) -> None:
    df = read_updates(typed_book)
    assert df.loc[1, PO] == "NULL"
    assert df.loc[1, LINE_ID] == "NA"
    assert df["Owner"].tolist() == ["NA", "NULL", "7"]


def test_xlsx_dates_are_iso_text(typed_book: Path) -> None:
    df = read_updates(typed_book)
    assert df.loc[0, "Due"] == "2024-03-05"
    assert dt.datetime.fromisoformat(df.loc[1, "Stamp"]) == dt.datetime(2024, 3, 6, 13, 45)
    assert df.loc[0, "Stamp"] == ""


def test_xlsx_every_cell_is_str(typed_book: Path) -> None:
    df = read_updates(typed_book)
    cells = df.drop(columns=["source_row"]).to_numpy().ravel().tolist()
    assert all(type(v) is str for v in cells), cells


def test_xlsx_source_row_and_sheet(typed_book: Path) -> None:
    df = read_updates(typed_book)
    assert df["source_row"].tolist() == [2, 3, 4]
    assert df["source_sheet"].tolist() == ["Updates"] * 3
    assert list(df.columns[:3]) == KEYS


def test_xlsx_large_numeric_id_never_gets_dot_zero(tmp_path: Path) -> None:
    path = make_xlsx(
        tmp_path / "big.xlsx", {"S": [HEADER, ["PO-1", 1234567890123450, "completed"]]}
    )
    value = read_updates(path).loc[0, LINE_ID]
    flagged = not validate_updates(read_updates(path)).loc[0, "valid"]
    assert value == "1234567890123450" or flagged, value


# --------------------------------------------------------------------------- XLSX sheets


@pytest.fixture
def three_sheet_book(tmp_path: Path) -> Path:
    """Notes first (no columns), then a hidden sheet with columns, then the data."""
    return make_xlsx(
        tmp_path / "book.xlsx",
        {
            "Notes": [["Status updates for March"], ["Ask Dana before sending"]],
            "Old": [HEADER, ["OLD-1", "OLDID001", "completed"]],
            "Updates": [HEADER, ["PO-1", "AAAA1111", "completed"]],
            "Second": [["PO", "recipeSetId", "Status"], ["PO-2", "BBBB2222", "approved"]],
        },
        hidden=["Old"],
    )


def test_default_sheet_skips_notes_and_hidden_sheets(three_sheet_book: Path) -> None:
    df = read_updates(three_sheet_book)
    assert df["source_sheet"].unique().tolist() == ["Updates"]
    assert keys(df) == [["PO-1", "AAAA1111", "completed"]]


def test_sheet_picked_by_name(three_sheet_book: Path) -> None:
    df = read_updates(three_sheet_book, sheet="Second")
    assert keys(df) == [["PO-2", "BBBB2222", "approved"]]
    assert df["source_sheet"].tolist() == ["Second"]


def test_hidden_sheet_can_still_be_picked_by_name(three_sheet_book: Path) -> None:
    df = read_updates(three_sheet_book, sheet="Old")
    assert keys(df) == [["OLD-1", "OLDID001", "completed"]]


@pytest.mark.badinput
def test_wrong_sheet_name_lists_the_sheets(three_sheet_book: Path) -> None:
    exc = read_error(three_sheet_book, sheet="Update")
    text = assert_one_line_naming(exc, "book.xlsx")
    for name in ("Notes", "Updates", "Second"):
        assert repr(name) in text, text
    assert "'Update'" in text


def test_list_sheets_gives_visible_worksheets(three_sheet_book: Path, tmp_path: Path) -> None:
    assert list_sheets(three_sheet_book) == ["Notes", "Updates", "Second"]
    csv_path = tmp_path / "x.csv"
    csv_path.write_bytes(b"PO,Recipe Set ID,Status\nP,A,completed\n")
    assert list_sheets(csv_path) == []


@pytest.mark.badinput
def test_no_sheet_with_the_columns_is_a_column_error(tmp_path: Path) -> None:
    path = make_xlsx(
        tmp_path / "bad.xlsx",
        {"Notes": [["hello"]], "Data": [["PO Number", "Recipe Set ID", "Stat"], ["P", "A", "x"]]},
    )
    exc = read_error(path)
    assert isinstance(exc, ColumnError)
    text = assert_one_line_naming(exc, "bad.xlsx")
    assert "'Data'" in text
    assert "'Notes'" in text


@pytest.mark.badinput
def test_missing_column_in_workbook_names_missing_and_found(tmp_path: Path) -> None:
    path = make_xlsx(
        tmp_path / "one.xlsx", {"Sheet1": [["PO Number", "Recipe Set ID", "Stat"], ["P", "A", "x"]]}
    )
    text = str(read_error(path))
    assert "'Stat'" in text, text
    assert "'PO Number'" in text, text


@pytest.mark.badinput
def test_missing_column_on_named_sheet_names_missing_and_found(tmp_path: Path) -> None:
    path = make_xlsx(
        tmp_path / "one.xlsx", {"Sheet1": [["PO Number", "Recipe Set ID", "Stat"], ["P", "A", "x"]]}
    )
    exc = read_error(path, sheet="Sheet1")
    assert isinstance(exc, ColumnError)
    text = assert_one_line_naming(exc, "one.xlsx")
    assert STATUS in text
    assert "'Stat'" in text
    assert "'PO Number'" in text
    assert "'Recipe Set ID'" in text


def test_title_rows_above_the_header(tmp_path: Path) -> None:
    path = make_xlsx(
        tmp_path / "titled.xlsx",
        {
            "Updates": [
                ["March status updates"],
                ["prepared by ops"],
                [],
                HEADER,
                ["PO-1", "AAAA1111", "completed"],
                ["PO-1", "BBBB2222", "approved"],
            ]
        },
    )
    df = read_updates(path)
    assert keys(df) == [["PO-1", "AAAA1111", "completed"], ["PO-1", "BBBB2222", "approved"]]
    assert df["source_row"].tolist() == [5, 6]


def test_data_not_starting_in_a1_keeps_spreadsheet_row_numbers(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    ws = book.active
    for col, value in zip("CDE", HEADER, strict=True):
        ws[f"{col}3"] = value
    for col, value in zip("CDE", ["PO-1", "AAAA1111", "done"], strict=True):
        ws[f"{col}4"] = value
    path = tmp_path / "offset.xlsx"
    book.save(path)
    df = read_updates(path)
    assert keys(df) == [["PO-1", "AAAA1111", "done"]]
    assert df["source_row"].tolist() == [4]


def test_merged_po_cell_applies_to_every_row_it_spans(tmp_path: Path) -> None:
    path = make_xlsx(
        tmp_path / "merged.xlsx",
        {
            "Updates": [
                HEADER,
                [None, "AAAA1111", "completed"],
                [None, "BBBB2222", "approved"],
                ["PO-2", "CCCC3333", "revision"],
            ]
        },
        merges={"Updates": [("A2:A3", "PO-MERGED")]},
    )
    df = read_updates(path)
    assert df[PO].tolist() == ["PO-MERGED", "PO-MERGED", "PO-2"]
    assert df["source_row"].tolist() == [2, 3, 4]


def test_extra_columns_are_kept(tmp_path: Path) -> None:
    path = make_xlsx(
        tmp_path / "extra.xlsx",
        {
            "Updates": [
                ["Notes", *HEADER, "Owner", None],
                ["call first", "PO-1", "AAAA1111", "completed", "Dana", "loose cell"],
            ]
        },
    )
    df = read_updates(path)
    assert df.loc[0, "Notes"] == "call first"
    assert df.loc[0, "Owner"] == "Dana"
    # A value under a header-less column is not lost either.
    others = df.drop(columns=[*KEYS, "Notes", "Owner", "source_row", "source_sheet"])
    assert others.iloc[0].tolist() == ["loose cell"]


def test_blank_rows_keep_spreadsheet_numbering(tmp_path: Path) -> None:
    path = make_xlsx(
        tmp_path / "gaps.xlsx",
        {"S": [HEADER, ["PO-1", "AAAA1111", "completed"], [], ["PO-1", "BBBB2222", "approved"]]},
    )
    checked = validate_updates(read_updates(path))
    assert checked["source_row"].tolist() == [2, 4]


def test_xlsx_upload_reads_like_the_file(three_sheet_book: Path) -> None:
    from_upload = read_updates(upload(three_sheet_book.read_bytes(), "book.xlsx"))
    pd.testing.assert_frame_equal(from_upload, read_updates(three_sheet_book))


# --------------------------------------------------------------------------- CSV


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("cp1252", b"")],
    ids=["utf-8", "utf-8-bom", "cp1252"],
)
def test_csv_encodings(tmp_path: Path, encoding: str, bom: bytes) -> None:
    text = "Notes,PO Number,Recipe Set ID,New Status\r\nCafé crème,PO-1,AAAA1111,completed\r\n"
    path = tmp_path / "enc.csv"
    path.write_bytes(bom + text.encode(encoding))
    df = read_updates(path)
    # "Notes" is the first header: a BOM left in place would show up in its name.
    assert "Notes" in df.columns
    assert df.loc[0, "Notes"] == "Café crème"
    assert keys(df) == [["PO-1", "AAAA1111", "completed"]]


@pytest.mark.parametrize(
    ("delimiter", "note"),
    [(",", "a; b\tc"), (";", "a, b, c, d, e"), ("\t", "a, b; c")],
    ids=["comma", "semicolon", "tab"],
)
def test_csv_delimiter_is_detected(tmp_path: Path, delimiter: str, note: str) -> None:
    rows = [[*HEADER, "Notes"], ["PO-1", "AAAA1111", "completed", note]]
    rows += [["PO-2", "BBBB2222", "approved", note]]
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter).writerows(rows)
    path = tmp_path / "delim.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    df = read_updates(path)
    assert keys(df) == [["PO-1", "AAAA1111", "completed"], ["PO-2", "BBBB2222", "approved"]]
    assert df["Notes"].tolist() == [note, note]


def test_csv_cells_are_literal_text(tmp_path: Path) -> None:
    path = tmp_path / "lit.csv"
    path.write_bytes(b"PO,Recipe Set ID,Status\n00123,NA,completed\nNULL,0042,N/A\n")
    df = read_updates(path)
    assert keys(df) == [["00123", "NA", "completed"], ["NULL", "0042", "N/A"]]


def test_csv_title_rows_and_blank_lines_keep_row_numbers(tmp_path: Path) -> None:
    path = tmp_path / "titled.csv"
    path.write_bytes(
        b"March updates\r\n\r\nPO,Recipe Set ID,Status\r\nP1,A1,completed\r\n\r\nP2,B2,approved\r\n"
    )
    df = read_updates(path)
    assert df["source_row"].tolist() == [4, 5, 6]
    checked = validate_updates(df)
    assert checked["source_row"].tolist() == [4, 6]
    assert checked[PO].tolist() == ["P1", "P2"]


def test_csv_quoted_newline_in_a_note_stays_one_row(tmp_path: Path) -> None:
    path = tmp_path / "nl.csv"
    path.write_bytes(b'PO,Recipe Set ID,Status,Notes\nP1,A1,completed,"two\nlines"\nP2,B2,done,x\n')
    df = read_updates(path)
    assert df["Notes"].tolist() == ["two\nlines", "x"]
    assert df["source_row"].tolist() == [2, 3]


@pytest.mark.badinput
def test_csv_ragged_row_is_an_error_naming_the_row(tmp_path: Path) -> None:
    lines = ["PO,Recipe Set ID,Status"] + [f"P{i},ID{i},completed" for i in range(2, 60)]
    lines[44] = "P45,ID45,completed,stray"  # spreadsheet row 45
    path = tmp_path / "ragged.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    text = assert_one_line_naming(read_error(path), "ragged.csv")
    assert "row 45" in text


@pytest.mark.badinput
def test_csv_ragged_row_near_the_top_is_an_error_too(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_bytes(b"PO,Recipe Set ID,Status\nP1,A1,completed\nP2,B2,in progress,step 1\n")
    text = assert_one_line_naming(read_error(path), "short.csv")
    assert "row 3" in text


@pytest.mark.badinput
@pytest.mark.parametrize("data", [b"", b"   \r\n\r\n"], ids=["empty", "whitespace"])
def test_empty_csv_is_a_clear_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(data)
    text = assert_one_line_naming(read_error(path), "empty.csv")
    assert "empty" in text


def test_header_only_csv_gives_zero_rows(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_bytes(b"PO Number,Recipe Set ID,New Status,Notes\r\n")
    df = read_updates(path)
    assert len(df) == 0
    assert {*KEYS, "source_row", "source_sheet", "Notes"} <= set(df.columns)
    assert len(validate_updates(df)) == 0


@pytest.mark.badinput
def test_csv_renamed_to_xlsx_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "renamed.xlsx"
    path.write_bytes(b"PO,Recipe Set ID,Status\nP1,A1,completed\n")
    text = assert_one_line_naming(read_error(path), "renamed.xlsx")
    assert "csv" in text.lower()


@pytest.mark.badinput
def test_random_bytes_are_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "noise.csv"
    path.write_bytes(random.Random(2).randbytes(4096))
    assert_one_line_naming(read_error(path), "noise.csv")


@pytest.mark.badinput
def test_truncated_workbook_is_a_clear_error(tmp_path: Path, typed_book: Path) -> None:
    data = typed_book.read_bytes()
    path = tmp_path / "cut.xlsx"
    path.write_bytes(data[: len(data) // 2])
    text = assert_one_line_naming(read_error(path), "cut.xlsx")
    assert "corrupt" in text or "cannot be read" in text


@pytest.mark.badinput
def test_zip_magic_then_garbage_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.xlsx"
    path.write_bytes(b"PK\x03\x04" + b"\x00garbage" * 200)
    assert_one_line_naming(read_error(path), "junk.xlsx")


@pytest.mark.badinput
def test_zip_that_is_not_a_workbook_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "archive.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    text = assert_one_line_naming(read_error(path), "archive.xlsx")
    assert "not an Excel workbook" in text


@pytest.mark.badinput
def test_password_protected_or_xls_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "locked.xlsx"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1024))
    text = assert_one_line_naming(read_error(path), "locked.xlsx")
    assert "password" in text.lower()


@pytest.mark.badinput
def test_missing_file_and_folder_are_clear_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    assert_one_line_naming(read_error(missing), "nope.csv")
    assert_one_line_naming(read_error(tmp_path), str(tmp_path))


@pytest.mark.badinput
def test_sheet_given_for_a_csv_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "plain.csv"
    path.write_bytes(b"PO,Recipe Set ID,Status\nP1,A1,completed\n")
    text = assert_one_line_naming(read_error(path, sheet="Updates"), "plain.csv")
    assert "Updates" in text


def test_errors_are_valueerrors_and_spectrum_errors(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        read_updates(path)
    with pytest.raises(SpectrumError):
        read_updates(path)


# --------------------------------------------------------------------------- uploads


def test_csv_upload_with_name() -> None:
    df = read_updates(upload(b"PO;Recipe Set ID;Status\r\n00123;AB12CD34;In Progress\r\n"))
    assert keys(df) == [["00123", "AB12CD34", "In Progress"]]
    assert df["source_row"].tolist() == [2]


@pytest.mark.badinput
def test_upload_errors_name_the_upload() -> None:
    assert_one_line_naming(read_error(upload(b"", "from-widget.csv")), "from-widget.csv")
    assert_one_line_naming(read_error(upload(b"a,b\n1,2\n", None)), "upload")


# --------------------------------------------------------------------------- DataFrames


def test_dataframe_float_ids_become_digits_and_nan_blank() -> None:
    frame = pd.DataFrame(
        {
            "PO": ["PO-1", "PO-2", "PO-3"],
            "recipeSetId": [12345678.0, np.nan, 5.0],
            "Status": ["completed", None, "approved"],
            "Qty": [1, 2, 3],
        }
    )
    df = read_updates(frame)
    assert df[LINE_ID].tolist() == ["12345678", "", "5"]
    assert df[STATUS].tolist() == ["completed", "", "approved"]
    assert df["Qty"].tolist() == ["1", "2", "3"]
    assert df["source_row"].tolist() == [2, 3, 4]


def test_dataframe_input_is_not_mutated() -> None:
    frame = pd.DataFrame(
        {"PO": [" PO-1", "PO-2"], "recipeSetId": [1.0, np.nan], "Status": ["x", None]}
    )
    before = copy.deepcopy(frame)
    read_updates(frame)
    pd.testing.assert_frame_equal(frame, before)


def test_reading_a_read_frame_again_keeps_rows_and_sources(three_sheet_book: Path) -> None:
    first = read_updates(three_sheet_book, sheet="Second")
    again = read_updates(first)
    pd.testing.assert_frame_equal(again[first.columns], first, check_dtype=False)


@pytest.mark.badinput
def test_dataframe_missing_column_names_missing_and_found() -> None:
    frame = pd.DataFrame({"PO": ["P"], "Thing": ["A"], "Status": ["done"]})
    with pytest.raises(ColumnError) as info:
        read_updates(frame)
    text = assert_one_line_naming(info.value, "DataFrame")
    assert LINE_ID in text
    assert "'Thing'" in text


# --------------------------------------------------------------------------- columns


def csv_with_header(tmp_path: Path, header: Sequence[str], row: Sequence[str]) -> Path:
    path = tmp_path / "cols.csv"
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, row])
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "alias",
    [
        "PO",
        "PO Number",
        "Purchase Order",
        "purchaseOrderNumber",
        "po_number",
        "PURCHASE ORDER",
        "purchase-order-number",
        "P.O. Number",
        " po  number ",
    ],
)
def test_po_column_aliases(tmp_path: Path, alias: str) -> None:
    path = csv_with_header(tmp_path, [alias, "Recipe Set ID", "Status"], ["P1", "A1", "done"])
    assert keys(read_updates(path)) == [["P1", "A1", "done"]]


@pytest.mark.parametrize(
    "alias",
    ["Recipe Set ID", "recipeSetReadableId", "recipeSetId", "recipe_set_id", "RECIPE-SET-ID"],
)
def test_line_id_column_aliases(tmp_path: Path, alias: str) -> None:
    path = csv_with_header(tmp_path, ["PO", alias, "Status"], ["P1", "A1", "done"])
    assert keys(read_updates(path)) == [["P1", "A1", "done"]]


@pytest.mark.parametrize(
    "alias", ["Status", "New Status", "workflowStatus", "workflow_status", "NEW-STATUS", "status:"]
)
def test_status_column_aliases(tmp_path: Path, alias: str) -> None:
    path = csv_with_header(tmp_path, ["PO", "Recipe Set ID", alias], ["P1", "A1", "done"])
    assert keys(read_updates(path)) == [["P1", "A1", "done"]]


def test_columns_override_names_the_header(tmp_path: Path) -> None:
    path = csv_with_header(
        tmp_path, ["Order ref", "Item", "Target", "Comment"], ["P1", "A1", "done", "c"]
    )
    df = read_updates(
        path,
        columns={PO: "Order ref", LINE_ID: "Item", STATUS: "Target"},
    )
    assert keys(df) == [["P1", "A1", "done"]]
    assert df["Comment"].tolist() == ["c"]


@pytest.mark.badinput
def test_ambiguous_status_columns_are_an_error(tmp_path: Path) -> None:
    path = csv_with_header(
        tmp_path, ["PO", "Recipe Set ID", "Status", "New Status"], ["P1", "A1", "old", "done"]
    )
    exc = read_error(path)
    assert isinstance(exc, ColumnError)
    text = assert_one_line_naming(exc, "cols.csv")
    assert "'Status'" in text
    assert "'New Status'" in text


def test_override_resolves_an_ambiguity(tmp_path: Path) -> None:
    path = csv_with_header(
        tmp_path, ["PO", "Recipe Set ID", "Status", "New Status"], ["P1", "A1", "old", "done"]
    )
    df = read_updates(path, columns={STATUS: "New Status"})
    assert df[STATUS].tolist() == ["done"]
    assert df["Status"].tolist() == ["old"]


@pytest.mark.badinput
def test_missing_column_names_what_is_missing_and_found(tmp_path: Path) -> None:
    path = csv_with_header(tmp_path, ["PO", "Item code", "Status"], ["P1", "A1", "done"])
    exc = read_error(path)
    assert isinstance(exc, ColumnError)
    text = assert_one_line_naming(exc, "cols.csv")
    assert LINE_ID in text
    assert "'Item code'" in text
    assert "'PO'" in text
    assert f"no column for {PO}" not in text


@pytest.mark.badinput
def test_override_for_an_absent_header_is_a_column_error(tmp_path: Path) -> None:
    path = csv_with_header(tmp_path, ["PO", "Recipe Set ID", "Status"], ["P1", "A1", "done"])
    exc = read_error(path, columns={PO: "Order ref"})
    assert isinstance(exc, ColumnError)
    assert "'Order ref'" in assert_one_line_naming(exc, "cols.csv")


@pytest.mark.badinput
def test_override_with_an_unknown_field_is_a_config_error(tmp_path: Path) -> None:
    path = csv_with_header(tmp_path, ["PO", "Recipe Set ID", "Status"], ["P1", "A1", "done"])
    with pytest.raises(ConfigError, match="purchaseOrder") as info:
        read_updates(path, columns={"purchaseOrder": "PO"})
    assert isinstance(info.value, ValueError)


def test_resolve_columns_gives_indices_and_problems() -> None:
    found, problems = resolve_columns(["Notes", "po #", "Recipe Set", "Workflow Status"])
    assert found == {PO: 1, LINE_ID: 2, STATUS: 3}
    assert problems == []
    found, problems = resolve_columns(["PO", "Notes"])
    assert found == {PO: 0}
    assert len(problems) == 2
    assert any(LINE_ID in p for p in problems)
    assert any(STATUS in p for p in problems)


# --------------------------------------------------------------------------- writing

FORMULAS = ["=1+1", "+SUM(A1)", "-5", "@x", '=HYPERLINK("http://evil.example","x")']
IDS = ["00123", "12345678", "NA", "NULL", "Café", 'a;b,c"d', " padded ", "1.23E+07", ""]


def table(values: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            PO: [f"PO-{i}" for i in range(len(values))],
            LINE_ID: list(values),
            STATUS: ["completed"] * len(values),
            "Notes": list(values),
        }
    )


def test_xlsx_cells_are_never_formulas(tmp_path: Path) -> None:
    path = write_table(table(FORMULAS), tmp_path / "out.xlsx")
    ws = openpyxl.load_workbook(path).active
    for col in ("B", "D"):
        cells = ws[col][1:]
        assert [c.value for c in cells] == FORMULAS
        assert [c.data_type for c in cells] == ["s"] * len(FORMULAS)


def test_csv_formula_cells_are_escaped(tmp_path: Path) -> None:
    path = write_table(table(FORMULAS), tmp_path / "out.csv")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads accents right
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [r[1] for r in rows[1:]] == ["'" + v for v in FORMULAS]
    assert [r[3] for r in rows[1:]] == ["'" + v for v in FORMULAS]
    assert all(r[0].startswith("PO-") for r in rows[1:])  # plain text is left alone


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_round_trip_keeps_every_id_byte_for_byte(tmp_path: Path, suffix: str) -> None:
    values = FORMULAS + IDS
    path = write_table(table(values), tmp_path / f"round{suffix}")
    back = read_updates(path)
    assert back[LINE_ID].tolist() == values
    assert back["Notes"].tolist() == values
    assert back[PO].tolist() == [f"PO-{i}" for i in range(len(values))]


def test_csv_round_trip_keeps_a_leading_apostrophe(tmp_path: Path) -> None:
    values = ["'-5", "'=x"]
    back = read_updates(write_table(table(values), tmp_path / "apos.csv"))
    assert back[LINE_ID].tolist() == values


def test_csv_round_trip_with_a_carriage_return_in_a_note(tmp_path: Path) -> None:
    frame = table(["AAAA1111", "BBBB2222"])
    frame["Notes"] = ["old mac\rnote", "x"]
    back = read_updates(write_table(frame, tmp_path / "cr.csv"))
    assert back[PO].tolist() == ["PO-0", "PO-1"]


def test_ids_written_to_xlsx_are_text_cells(tmp_path: Path) -> None:
    path = write_table(table(["00123", "12345678"]), tmp_path / "ids.xlsx")
    ws = openpyxl.load_workbook(path).active
    assert [(c.value, c.data_type) for c in ws["B"][1:]] == [("00123", "s"), ("12345678", "s")]


def test_write_workbook_several_sheets(tmp_path: Path) -> None:
    counts = pd.DataFrame({"outcome": ["updated", "invalid"], "orders": [3, 1]})
    path = write_workbook(
        tmp_path / "nested" / "report.xlsx",
        {"Rows": table(["00123", "=1+1"]), "Summary": counts},
    )
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["Rows", "Summary"]
    assert [c.data_type for c in book["Summary"]["B"][1:]] == ["n", "n"]
    assert [c.value for c in book["Summary"]["B"][1:]] == [3, 1]
    back = read_updates(path, sheet="Rows")
    assert back[LINE_ID].tolist() == ["00123", "=1+1"]


@pytest.mark.badinput
def test_write_table_refuses_other_extensions(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\.txt"):
        write_table(table(["A"]), tmp_path / "out.txt")
    assert not (tmp_path / "out.txt").exists()


# --------------------------------------------------------------------------- sample data

SAMPLES = REPO / "sample_data"


@pytest.mark.skipif(not (SAMPLES / "status_updates.xlsx").exists(), reason="no sample data")
def test_sample_workbook_and_csv_give_the_same_rows() -> None:
    book = read_updates(SAMPLES / "status_updates.xlsx")
    text = read_updates(SAMPLES / "status_updates.csv")
    assert set(book["source_sheet"]) == {"Updates"}  # the Notes sheet comes first
    columns = [*KEYS, "source_row", "Notes"]
    pd.testing.assert_frame_equal(book[columns], text[columns])
    assert len(book) == 212
    assert book["source_row"].tolist() == list(range(2, 214))


@pytest.mark.skipif(not (SAMPLES / "status_updates.xlsx").exists(), reason="no sample data")
def test_sample_workbook_odd_ids_survive() -> None:
    df = read_updates(SAMPLES / "status_updates.xlsx").set_index("source_row")
    assert df.loc[44, LINE_ID] == "12345678"  # a NUMERIC cell in the workbook
    assert df.loc[32, LINE_ID] == "00123456"
    assert df.loc[[208, 209, 210], PO].tolist() == ["00012345"] * 3
