"""Read-back against the sandbox over HTTP: a few searches, then a GET only for what no
window covered; the degraded path when answers carry no statuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from spectrum_tools.engine import SendOptions
from spectrum_tools.errors import RunStoppedError
from spectrum_tools.readback import read_current, read_orders
from spectrum_tools.sandbox import SandboxServer, seed_age
from spectrum_tools.schema import LINE_ID, PO
from tests.support.sandboxes import FAST, MakeSandbox, client_for, sheet, store_statuses

FAST_READS = SendOptions(max_per_minute=FAST)


def _all_orders(sb: SandboxServer) -> list[str]:
    return list(dict.fromkeys(sb.store.line_statuses()[PO]))


def _endpoints(sb: SandboxServer) -> list[str]:
    return [r["endpoint"] for r in sb.requests()]


def test_a_sheet_of_every_sample_order_is_read_in_a_few_requests(sandbox: SandboxServer) -> None:
    orders = _all_orders(sandbox)
    old = [po for po in orders if seed_age(po) > timedelta(days=92)]
    rows = sheet(sandbox, orders)
    current = read_current(rows, client_for(sandbox), options=FAST_READS, progress=False)

    truth = store_statuses(sandbox)
    wanted = [truth[(po, rid)] for po, rid in zip(rows[PO], rows[LINE_ID], strict=True)]
    assert current["current_status"].tolist() == wanted
    assert set(current["seen"]) == {"status"}
    calls = _endpoints(sandbox)
    assert calls.count("orders-search") <= 3  # three windows of 31 days cover the default look-back
    assert calls.count("order-number") == len(old)  # only what no window covered is read one by one
    assert len(calls) < len(orders) / 5
    by_po = current.drop_duplicates(PO).set_index(PO)
    assert set(by_po.loc[old, "read_via"]) == {"order"}
    assert current.attrs["statuses_shown"] is True


def test_searching_stops_once_every_order_is_found(sandbox: SandboxServer) -> None:
    recent = sorted(_all_orders(sandbox), key=seed_age)[:3]
    read_orders(recent, client_for(sandbox), options=FAST_READS, progress=False)
    assert _endpoints(sandbox) == ["orders-search"]


def test_an_order_spectrum_does_not_have_is_not_found(sandbox: SandboxServer) -> None:
    rows = pd.DataFrame({PO: ["NO-SUCH-PO"], LINE_ID: ["AAAA1111"]})
    current = read_current(rows, client_for(sandbox), options=FAST_READS, progress=False)
    assert current["seen"].tolist() == ["no_order"]
    assert "does not know order NO-SUCH-PO" in current["read_note"].iat[0]


def test_a_change_made_since_is_what_the_read_reports(sandbox: SandboxServer) -> None:
    po = _all_orders(sandbox)[0]
    rows = sheet(sandbox, [po]).head(1)
    sandbox.store.stage_order(po, {rows[LINE_ID].iat[0]: "cancelled"})
    current = read_current(rows, client_for(sandbox), options=FAST_READS, progress=False)
    assert current["current_status"].tolist() == ["cancelled"]


def test_answers_without_statuses_degrade_to_unknown_and_say_so_once(
    make_sandbox: MakeSandbox,
) -> None:
    sb = make_sandbox(expose_workflow_status=False)
    rows = sheet(sb, _all_orders(sb)[:5])
    current = read_current(rows, client_for(sb), options=FAST_READS, progress=False)
    assert set(current["seen"]) == {"no_status"}
    assert set(current["current_status"]) == {""}
    assert current.attrs["statuses_shown"] is False
    notes = current.attrs["notes"]
    assert len(notes) == 1
    assert "unknown" in notes[0]


def test_alternative_field_names_are_read_too(make_sandbox: MakeSandbox) -> None:
    sb = make_sandbox(alternative_field_names=True)
    rows = sheet(sb, _all_orders(sb)[:5])
    current = read_current(rows, client_for(sb), options=FAST_READS, progress=False)
    truth = store_statuses(sb)
    assert current["current_status"].tolist() == [
        truth[(po, rid)] for po, rid in zip(rows[PO], rows[LINE_ID], strict=True)
    ]


def test_a_failing_search_falls_back_to_one_read_per_order(make_sandbox: MakeSandbox) -> None:
    sb = make_sandbox()
    rows = sheet(sb, _all_orders(sb)[:4])
    # A window longer than 31 days is refused by Spectrum (HTTP 400): not retried, and the
    # orders are still read, one by one.
    reading = read_orders(
        rows[PO].tolist(),
        client_for(sb),
        options=FAST_READS,
        progress=False,
        clock=lambda: datetime.now(UTC),
        window=timedelta(days=40),
    )
    assert reading.searches == 1
    assert reading.gets == 4
    assert any("search failed" in n for n in reading.notes)
    assert all(s.found and not s.error for s in reading.states.values())


def test_a_refused_token_stops_the_read_before_any_get(sandbox: SandboxServer) -> None:
    rows = sheet(sandbox, _all_orders(sandbox)[:3])
    with pytest.raises(RunStoppedError, match="refused the first reads"):
        read_current(rows, client_for(sandbox, token="wrong-token"), progress=False)
    assert _endpoints(sandbox) == ["orders-search"]


def test_a_po_that_lost_its_leading_zeros_gets_a_did_you_mean(
    make_sandbox: MakeSandbox,
) -> None:
    orders = pd.DataFrame(
        {
            "purchaseOrderNumber": ["00012345", "00012345"],
            "recipeSetId": ["00777777", "ABCD1234"],
            "workflowStatus": ["on-hold", "on-hold"],
        }
    )
    sb = make_sandbox(seed_from=orders)
    po = "00012345"
    sb.store.stage_order(po, {})  # modified just now: inside the newest search window
    rows = pd.DataFrame({PO: ["12345", po], LINE_ID: ["ABCD1234", "777777"]})
    current = read_current(rows, client_for(sb), options=FAST_READS, progress=False)
    assert current["seen"].tolist() == ["no_order", "no_line"]
    assert current["read_note"].iat[0].endswith("did you mean 00012345?")
    assert current["read_note"].iat[1].endswith("did you mean 00777777?")
