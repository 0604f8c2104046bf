"""Preview against the sandbox: current -> wanted per line item, and the narrowed plan."""

from __future__ import annotations

import pandas as pd

from spectrum_tools.engine import SendOptions
from spectrum_tools.planning import plan_updates
from spectrum_tools.readback.preview import preview_plan
from spectrum_tools.sandbox import SandboxServer
from spectrum_tools.schema import LINE_ID, PO, STATUS
from spectrum_tools.sheets import read_updates
from tests.support.sandboxes import FAST, MakeSandbox, client_for, order_numbers, store_statuses

FAST_READS = SendOptions(max_per_minute=FAST)


def _half_set_sheet(sb: SandboxServer, n: int) -> pd.DataFrame:
    """A sheet over ``n`` orders: even orders ask for what Spectrum already holds."""
    truth = store_statuses(sb)
    rows = []
    for k, po in enumerate(order_numbers(sb, n)):
        for (p, rid), status in truth.items():
            if p == po:
                rows.append((po, rid, status if k % 2 == 0 else "delivered"))
    return pd.DataFrame(rows, columns=[PO, LINE_ID, STATUS])


def test_preview_sends_nothing_and_splits_orders_by_what_changes(sandbox: SandboxServer) -> None:
    sheet = _half_set_sheet(sandbox, 10)
    plan = plan_updates(read_updates(sheet))
    preview = preview_plan(plan, client_for(sandbox), FAST_READS)

    assert not any(r["endpoint"] == "order-status" for r in sandbox.requests())
    decisions = preview.orders.set_index(PO)["decision"]
    evens = sheet[PO].drop_duplicates().tolist()[::2]
    assert set(decisions[evens]) == {"unchanged"}
    assert set(decisions.drop(evens)) == {"send"}
    assert preview.requests == 5
    assert preview.plan.request_count == 5
    assert set(preview.plan.orders[PO]).isdisjoint(evens)
    assert preview.counts["orders_unchanged"] == 5
    assert preview.counts["lines_already_set"] == int(sheet[PO].isin(evens).sum())


def test_only_line_items_that_change_are_in_the_narrowed_plan(sandbox: SandboxServer) -> None:
    truth = store_statuses(sandbox)
    sizes = pd.Series([p for p, _ in truth]).value_counts()
    po = sizes.index[sizes >= 2][0]  # an order with two line items or more
    lines = [(p, rid, s) for (p, rid), s in truth.items() if p == po]
    sheet = pd.DataFrame(lines, columns=[PO, LINE_ID, STATUS])
    sheet.loc[0, STATUS] = "cancelled" if sheet.loc[0, STATUS] != "cancelled" else "approved"
    preview = preview_plan(plan_updates(read_updates(sheet)), client_for(sandbox), FAST_READS)
    body = preview.plan.request(0).body
    assert [li["recipeSetReadableId"] for li in body["lineItems"]] == [sheet.loc[0, LINE_ID]]
    assert preview.orders["send_count"].tolist() == [1]


def test_orders_spectrum_lacks_are_refused_without_a_request(sandbox: SandboxServer) -> None:
    po = order_numbers(sandbox, 1)[0]
    rid = next(r for (p, r) in store_statuses(sandbox) if p == po)
    sheet = pd.DataFrame(
        {
            PO: [po, po, "NOPE-1"],
            LINE_ID: [rid, "ZZZZ9999", "AAAA1111"],
            STATUS: ["delivered", "delivered", "delivered"],
        }
    )
    plan = plan_updates(read_updates(sheet))
    preview = preview_plan(plan, client_for(sandbox), FAST_READS)
    orders = preview.orders.set_index(PO)
    assert orders.loc[po, "decision"] == "not_found"
    assert orders.loc[po, "missing_ids"] == "ZZZZ9999"
    assert orders.loc["NOPE-1", "decision"] == "not_found"
    assert preview.plan.request_count == 0

    # With retry_without_missing the rest of the order goes, and the gap is remembered.
    options = SendOptions(max_per_minute=FAST, retry_without_missing=True)
    preview = preview_plan(plan, client_for(sandbox), options)
    assert preview.plan.request(0).body["lineItems"] == [
        {"recipeSetReadableId": rid, "workflowStatus": "delivered"}
    ]
    assert preview.missing == {po: ("ZZZZ9999",)}


def test_leaving_a_final_status_is_flagged(sandbox: SandboxServer) -> None:
    po = order_numbers(sandbox, 1)[0]
    rid = next(r for (p, r) in store_statuses(sandbox) if p == po)
    sandbox.store.stage_order(po, {rid: "delivered"})
    sheet = pd.DataFrame({PO: [po], LINE_ID: [rid], STATUS: ["in progress"]})
    preview = preview_plan(plan_updates(read_updates(sheet)), client_for(sandbox), FAST_READS)
    assert preview.lines["leaves_final"].tolist() == [True]
    assert preview.counts["lines_leaving_final"] == 1
    moves = preview.transitions()
    assert moves[["current_status", "wanted_status", "count"]].values.tolist() == [
        ["delivered", "in-progress", 1]
    ]


def test_without_statuses_in_answers_everything_is_sent_and_nothing_skipped(
    make_sandbox: MakeSandbox,
) -> None:
    sb = make_sandbox(expose_workflow_status=False)
    sheet = _half_set_sheet(sb, 6)
    plan = plan_updates(read_updates(sheet))
    preview = preview_plan(plan, client_for(sb), FAST_READS)
    assert preview.statuses_shown is False
    assert set(preview.lines["change"]) == {"unknown"}
    assert preview.plan.request_count == plan.request_count == 6
    assert len(preview.notes) == 1 and "unknown" in preview.notes[0]
    assert preview.before_images()["current_status"].eq("").all()


def test_read_back_off_reads_nothing_and_keeps_the_plan(sandbox: SandboxServer) -> None:
    sheet = _half_set_sheet(sandbox, 4)
    plan = plan_updates(read_updates(sheet))
    preview = preview_plan(plan, client_for(sandbox), FAST_READS, read_back=False)
    assert sandbox.requests() == []
    assert preview.plan.request_count == plan.request_count
    assert preview.read_back is False
