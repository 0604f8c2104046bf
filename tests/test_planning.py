"""Planning: one request per purchase order, in the API's exact JSON shape."""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spectrum_tools import (
    Outcome,
    Plan,
    Request,
    SpectrumClient,
    plan_updates,
    problem_counts,
    read_updates,
    send_updates,
    validate_updates,
)
from spectrum_tools.cli import main
from spectrum_tools.sandbox import SandboxServer

PO, LINE_ID, STATUS = "purchaseOrderNumber", "recipeSetReadableId", "workflowStatus"
SAMPLES = Path(__file__).resolve().parents[1] / "sample_data"


def rows(*triples: tuple[object, object, object]) -> pd.DataFrame:
    return pd.DataFrame(list(triples), columns=[PO, LINE_ID, STATUS], dtype=object)


def bodies(plan: Plan) -> list[dict[str, object]]:
    return [dict(r.body) for r in plan.requests()]


MIXED = rows(
    ("PO-2", "BBBB0001", "In Progress"),  # row 2
    ("PO-1", "AAAA0001", "completed"),  # row 3
    ("PO-2", "BBBB0002", "on hold"),  # row 4
    ("PO-3", "CCCC0001", "shipped"),  # row 5: unknown status, PO-3 held back
    ("PO-1", "AAAA0002", "approved"),  # row 6
    ("PO-3", "CCCC0002", "completed"),  # row 7: valid, but its order is held
    ("PO-1", "AAAA0001", "Completed"),  # row 8: duplicate of row 3
)


# --------------------------------------------------------------------------- shape


def test_one_request_per_order_in_the_api_json_shape() -> None:
    plan = plan_updates(MIXED)
    assert bodies(plan) == [
        {
            "purchaseOrderNumber": "PO-2",
            "lineItems": [
                {"recipeSetReadableId": "BBBB0001", "workflowStatus": "in-progress"},
                {"recipeSetReadableId": "BBBB0002", "workflowStatus": "on-hold"},
            ],
        },
        {
            "purchaseOrderNumber": "PO-1",
            "lineItems": [
                {"recipeSetReadableId": "AAAA0001", "workflowStatus": "completed"},
                {"recipeSetReadableId": "AAAA0002", "workflowStatus": "approved"},
            ],
        },
    ]


def test_body_is_plain_json_with_exactly_the_documented_keys() -> None:
    plan = plan_updates(MIXED)
    for request in plan.requests():
        body = json.loads(json.dumps(request.body))
        assert list(body) == ["purchaseOrderNumber", "lineItems"]
        assert isinstance(body["purchaseOrderNumber"], str)
        for item in body["lineItems"]:
            assert list(item) == ["recipeSetReadableId", "workflowStatus"]
            assert all(type(v) is str for v in item.values())


def test_orders_in_order_of_first_appearance() -> None:
    frame = rows(
        ("PO-C", "A", "completed"),
        ("PO-A", "B", "completed"),
        ("PO-C", "C", "completed"),
        ("PO-B", "D", "completed"),
        ("PO-A", "E", "completed"),
    )
    plan = plan_updates(frame)
    assert plan.orders[PO].tolist() == ["PO-C", "PO-A", "PO-B"]
    assert [[li[LINE_ID] for li in r.line_items] for r in plan.requests()] == [
        ["A", "C"],
        ["B", "E"],
        ["D"],
    ]


def test_duplicates_are_folded_into_one_line_item() -> None:
    plan = plan_updates(MIXED)
    po1 = plan.request(1)
    assert po1.purchase_order == "PO-1"
    assert [li[LINE_ID] for li in po1.line_items] == ["AAAA0001", "AAAA0002"]
    assert po1.line_count == 2
    # ...but the folded row is still accounted for.
    assert po1.source_rows == "3,6,8"


def test_orders_frame_and_request_count() -> None:
    plan = plan_updates(MIXED)
    assert plan.orders.to_dict("records") == [
        {PO: "PO-2", "line_count": 2, "source_rows": "2,4"},
        {PO: "PO-1", "line_count": 2, "source_rows": "3,6,8"},
    ]
    assert plan.request_count == 2
    assert len(plan) == 2
    assert len(list(plan.requests())) == 2


def test_raw_rows_are_validated_first() -> None:
    frame = rows((" PO-1 ", "AAAA0001 ", "In Progress"))
    assert bodies(plan_updates(frame)) == bodies(plan_updates(validate_updates(frame)))
    assert bodies(plan_updates(frame))[0]["purchaseOrderNumber"] == "PO-1"


def test_planning_does_not_mutate_its_input() -> None:
    before = copy.deepcopy(MIXED)
    plan_updates(MIXED)
    plan_updates(MIXED, send_partial_orders=True)
    pd.testing.assert_frame_equal(MIXED, before)


# --------------------------------------------------------------------------- holding back


def test_order_with_an_invalid_row_is_held_back_whole() -> None:
    plan = plan_updates(MIXED)
    assert "PO-3" not in plan.orders[PO].tolist()
    held = plan.set_aside.set_index(PO).loc["PO-3"]
    assert held["outcome"] == Outcome.INVALID == "invalid"
    assert held["source_rows"] == "5,7"
    assert held["line_count"] == 2
    assert "row 5" in held["details"]
    assert "shipped" in held["details"]
    assert "row 7" not in held["details"]  # row 7 is fine; only the problem rows are named


def test_held_order_details_name_every_bad_row_and_problem() -> None:
    plan = plan_updates(
        rows(
            ("PO-9", "A", "completed"),
            ("PO-9", "", "completed"),
            ("PO-9", "1.23E+07", "nope"),
            ("PO-8", "B", "completed"),
        )
    )
    assert plan.orders[PO].tolist() == ["PO-8"]
    details = plan.set_aside.set_index(PO).loc["PO-9", "details"]
    assert "row 3" in details
    assert "blank recipeSetReadableId" in details
    assert "row 4" in details
    assert "scientific notation" in details
    assert "nope" in details


def test_send_partial_orders_sends_the_valid_rows() -> None:
    plan = plan_updates(MIXED, send_partial_orders=True)
    assert plan.orders[PO].tolist() == ["PO-2", "PO-1", "PO-3"]
    assert plan.request(2).body == {
        "purchaseOrderNumber": "PO-3",
        "lineItems": [{"recipeSetReadableId": "CCCC0002", "workflowStatus": "completed"}],
    }
    assert plan.send_partial_orders is True
    assert "PO-3" not in plan.set_aside[PO].tolist()


def test_send_partial_orders_still_holds_orders_with_no_valid_row() -> None:
    frame = rows(("PO-1", "A", "completed"), ("PO-2", "B", "shipped"))
    plan = plan_updates(frame, send_partial_orders=True)
    assert plan.orders[PO].tolist() == ["PO-1"]
    assert plan.set_aside[PO].tolist() == ["PO-2"]
    assert plan.set_aside["outcome"].tolist() == ["invalid"]


def test_conflict_holds_back_the_order() -> None:
    frame = rows(("PO-1", "A", "completed"), ("PO-1", "A", "approved"), ("PO-2", "B", "completed"))
    plan = plan_updates(frame)
    assert plan.orders[PO].tolist() == ["PO-2"]
    assert plan.set_aside[PO].tolist() == ["PO-1"]
    assert "conflict" in plan.set_aside.loc[0, "details"]


@pytest.mark.parametrize(
    "frame",
    [
        rows(("PO-1", "A", "shipped"), ("PO-2", "", "completed")),
        rows(("", "", ""), (" ", "", "")),
        rows(),
    ],
    ids=["every-row-invalid", "only-blank-rows", "no-rows"],
)
def test_plan_with_nothing_to_send(frame: pd.DataFrame) -> None:
    plan = plan_updates(frame)
    assert plan.request_count == 0
    assert list(plan.requests()) == []
    assert plan.summary()["requests"] == 0


def test_header_only_csv_plans_to_nothing(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_bytes(b"PO Number,Recipe Set ID,New Status\r\n")
    plan = plan_updates(read_updates(path))
    assert plan.request_count == 0


# --------------------------------------------------------------------------- preview etc.


def test_preview_columns_and_payload() -> None:
    plan = plan_updates(MIXED)
    preview = plan.preview()
    assert list(preview.columns) == [PO, "line_count", "source_rows", "payload"]
    assert len(preview) == plan.request_count
    for i, payload in enumerate(preview["payload"]):
        assert json.loads(payload) == plan.request(i).body
    assert len(plan.preview(limit=1)) == 1


def test_summary_counts() -> None:
    assert plan_updates(MIXED).summary() == {
        "rows": 7,
        "valid_rows": 6,
        "invalid_rows": 1,
        "orders": 3,
        "orders_held_invalid": 1,
        "orders_skipped": 0,
        "requests": 2,
    }


def test_skip_sets_orders_aside_as_skipped() -> None:
    plan = plan_updates(MIXED)
    skipped = plan.skip({"PO-2": "already applied by run 12"})
    assert skipped.orders[PO].tolist() == ["PO-1"]
    assert [b["purchaseOrderNumber"] for b in bodies(skipped)] == ["PO-1"]
    assert bodies(skipped)[0] == bodies(plan)[1]
    row = skipped.set_aside.set_index(PO).loc["PO-2"]
    assert row["outcome"] == Outcome.SKIPPED == "skipped"
    assert row["details"] == "already applied by run 12"
    assert skipped.summary()["orders_skipped"] == 1
    assert skipped.summary()["orders"] == plan.summary()["orders"]
    # The original plan is unchanged: plans are values.
    assert plan.request_count == 2
    assert plan.skip({}) is plan


def test_request_without_drops_ids() -> None:
    request = plan_updates(MIXED).request(1)
    smaller = request.without({"AAAA0001"})
    assert isinstance(smaller, Request)
    assert smaller.body == {
        "purchaseOrderNumber": "PO-1",
        "lineItems": [{"recipeSetReadableId": "AAAA0002", "workflowStatus": "approved"}],
    }
    assert request.line_count == 2


@pytest.mark.skipif(not (SAMPLES / "status_updates.csv").exists(), reason="no sample data")
def test_sample_sheet_flags_every_documented_messy_row() -> None:
    checked = validate_updates(read_updates(SAMPLES / "status_updates.xlsx"))
    by_row = checked.set_index("source_row")
    assert 118 not in by_row.index  # the fully blank row is dropped
    for row, words in {
        15: "conflict",
        9: "conflict",
        35: "shipped",
        39: "blank workflowStatus",
        52: "blank purchaseOrderNumber",
        58: "scientific notation",
    }.items():
        assert not by_row.loc[row, "valid"], row
        assert words in by_row.loc[row, "problem"], (row, by_row.loc[row, "problem"])
    assert by_row.loc[4, "valid"]
    assert "duplicate" in by_row.loc[4, "problem"]
    # Valid once trimmed / normalised; row 18's id is only wrong on the server side.
    for row in (2, 18, 32, 44, 63, 208, 209, 210, 211, 212, 213):
        assert by_row.loc[row, "valid"], (row, by_row.loc[row, "problem"])
    assert by_row.loc[63, [PO, LINE_ID]].tolist() == ["HA-US-DEV00011118", "H68BSMMU"]
    plan = plan_updates(checked)
    held = set(plan.set_aside[PO])
    assert {"HA-US-DEV00011102", "HA-US-DEV00011108", "HA-US-DEV00011117"} <= held
    sent = {r.purchase_order: r for r in plan.requests()}
    late = sent["HA-US-DEV00011121"]  # its rows come in two far-apart runs
    assert {"MGYQ8PK3", "U6N4K82Z", "ZYHLHR4X"} <= {li[LINE_ID] for li in late.line_items}
    assert len(sent) == plan.request_count == len(set(plan.orders[PO]))


# --------------------------------------------------------------------------- properties

_row = st.tuples(
    st.sampled_from(["PO-1", "PO-2", "PO-3", " PO-1", ""]),
    st.sampled_from(["AAAA1111", "BBBB2222", "CCCC3333", "", "1.23E+07", "00123"]),
    st.sampled_from(["completed", "In Progress", "on_hold", "shipped", "", "approved"]),
)
# An always-valid order keeps every example plannable (an all-invalid sheet is its own test).
_sheet = st.lists(_row, max_size=25).map(lambda r: rows(("PO-Z", "ZZZZ9999", "released"), *r))


@pytest.mark.property
@settings(max_examples=80, deadline=None)
@given(_sheet, st.booleans())
def test_every_valid_row_of_a_sent_order_lands_in_exactly_one_request(
    frame: pd.DataFrame, partial: bool
) -> None:
    plan = plan_updates(frame, send_partial_orders=partial)
    checked = plan.rows
    held = set(plan.set_aside.loc[plan.set_aside["outcome"] == "invalid", PO])
    requests = list(plan.requests())
    for _, row in checked[checked["valid"]].iterrows():
        if row[PO] in held:
            continue
        item = {LINE_ID: row[LINE_ID], STATUS: row[STATUS]}
        # The same id may exist in two orders; what matters is this order's one request.
        carrying = [r for r in requests if r.purchase_order == row[PO]]
        assert len(carrying) == 1, row.to_dict()
        assert carrying[0].line_items.count(item) == 1, row.to_dict()
        assert str(row["source_row"]) in carrying[0].source_rows.split(",")
    if not partial:
        # Nothing of a held order is ever sent.
        assert not held & {r.purchase_order for r in requests}


@pytest.mark.property
@settings(max_examples=80, deadline=None)
@given(_sheet, st.booleans())
def test_a_request_never_mixes_orders(frame: pd.DataFrame, partial: bool) -> None:
    plan = plan_updates(frame, send_partial_orders=partial)
    checked = plan.rows.set_index("source_row")
    requests = list(plan.requests())
    assert len({r.purchase_order for r in requests}) == len(requests)
    for request in requests:
        source_rows = [int(s) for s in request.source_rows.split(",")]
        assert set(checked.loc[source_rows, PO]) == {request.purchase_order}
        mine = checked.loc[source_rows]
        pairs = set(zip(mine[LINE_ID], mine[STATUS], strict=True))
        assert {(li[LINE_ID], li[STATUS]) for li in request.line_items} <= pairs
        assert request.line_count == len({li[LINE_ID] for li in request.line_items})


# --------------------------------------------------------------------------- trust (issue 11 #3)


def _validated_file(tmp_path: Path) -> Path:
    """What ``spectrum-tools validate -o rows.csv`` writes for a sheet with two bad rows."""
    sheet = tmp_path / "sheet.csv"
    sheet.write_text(
        "PO Number,Recipe Set ID,New Status\n"
        "HA-US-DEV00011101,TEBMKVGB,completed\n"
        "HA-US-DEV00011102,ONCHR9YG,shipped\n"  # unknown status: invalid
        "HA-US-DEV00011102,JW0368Z2,completed\n"
        f"HA-US-DEV00011103,{'X' * 65},completed\n",  # longer than any recipe-set id
        encoding="utf-8",
    )
    written = tmp_path / "rows.csv"
    assert main(["validate", str(sheet), "-o", str(written)]) == 1
    assert "False" in written.read_text(encoding="utf-8-sig")  # the file says valid=False
    return written


def test_a_valid_column_from_a_file_is_never_trusted(tmp_path: Path) -> None:
    rows = read_updates(_validated_file(tmp_path))
    assert set(rows["valid"]) == {"True", "False"}  # text, as any file holds it

    plan = plan_updates(rows)

    assert [b["purchaseOrderNumber"] for b in bodies(plan)] == ["HA-US-DEV00011101"]
    held = plan.set_aside.set_index("purchaseOrderNumber")["details"]
    assert "is not a workflow status" in held["HA-US-DEV00011102"]
    assert "longer than 64 characters" in held["HA-US-DEV00011103"]


def test_valid_true_typed_in_by_hand_does_not_make_a_row_sendable() -> None:
    forged = rows(("P1", "AAAA1111", "completed"), ("P2", "", "nonsense"))
    forged["valid"] = True
    forged["problem"] = ""

    plan = plan_updates(forged)

    assert [b["purchaseOrderNumber"] for b in bodies(plan)] == ["P1"]
    assert plan.set_aside["purchaseOrderNumber"].tolist() == ["P2"]


def test_rows_validated_in_this_process_are_planned_without_validating_again() -> None:
    validated = validate_updates(rows(("P1", "AAAA1111", "completed")))
    assert plan_updates(validated).rows is validated
    # A pickle (or any file) loses the mark: those rows are validated again.
    again = plan_updates(copy.deepcopy(validated))
    assert again.rows["valid"].tolist() == [True]
    unpickled = pickle.loads(pickle.dumps(validated))  # noqa: S301 - our own bytes
    assert plan_updates(unpickled).rows is not unpickled


@pytest.mark.badinput
def test_send_updates_on_a_validate_output_file_sends_no_invalid_row(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    client = SpectrumClient(sandbox.base_url, token=sandbox.token)

    results = send_updates(
        _validated_file(tmp_path), client, progress=False, runs_dir=tmp_path / "runs"
    )

    # Reads come first (read-back); the status updates went to the valid order only.
    sent = {r["purchaseOrderNumber"] for r in sandbox.requests() if r["endpoint"] == "order-status"}
    assert sent == {"HA-US-DEV00011101"}
    outcome = results.set_index("purchaseOrderNumber")["outcome"]
    assert outcome["HA-US-DEV00011102"] == "invalid"
    assert outcome["HA-US-DEV00011103"] == "invalid"


# --------------------------------------------------------------------------- id length (issue 11)


@pytest.mark.parametrize(
    ("column", "limit"), [("recipeSetReadableId", 64), ("purchaseOrderNumber", 100)]
)
def test_an_id_longer_than_any_spectrum_id_is_invalid_with_a_clear_reason(
    column: str, limit: int
) -> None:
    ok, long, huge = "A" * limit, "A" * (limit + 1), "7" * 100_000
    frame = pd.DataFrame(
        {
            "purchaseOrderNumber": ["P1", "P2", "P3"],
            "recipeSetReadableId": ["AAAA1111", "BBBB2222", "CCCC3333"],
            "workflowStatus": ["completed"] * 3,
        }
    )
    frame[column] = [ok, long, huge]

    out = validate_updates(frame)

    assert out["valid"].tolist() == [True, False, False]
    reason = f"{column} is longer than {limit} characters (no Spectrum id is)"
    assert out["problem"].tolist()[1:] == [reason, reason]
    assert problem_counts(out).to_dict() == {f"{column} too long": 2}
    assert "7" * 200 not in " ".join(plan_updates(out).set_aside["details"])
