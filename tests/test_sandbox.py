"""End-to-end tests of the sandbox: real HTTP (``requests``) against a real uvicorn thread.

Each test starts its own sandbox on a free port with a fresh store seeded from
``sample_data/spectrum_orders.csv``, so tests can change state freely.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spectrum_tools.errors import ConfigError, SpreadsheetError
from spectrum_tools.sandbox import (
    WORKFLOW_STATUSES,
    SandboxServer,
    SandboxSettings,
    SandboxStore,
    default_store_path,
    sample_data_dir,
    serve,
)
from spectrum_tools.statuses import WorkflowStatus

MakeSandbox = Callable[..., SandboxServer]  # the conftest fixture's factory

PO = "HA-US-DEV00011101"  # six line items in the sample store
OTHER_PO = "HA-US-DEV00011102"
STATUS_PATH = "/api/order/status"
TIMEOUT = 5


# -- helpers -------------------------------------------------------------------------------


def _headers(sb: SandboxServer, token: str | None = None) -> dict[str, str]:
    return {"SPECTRUM_API_TOKEN": sb.token if token is None else token}


def _ids(sb: SandboxServer, po: str) -> list[str]:
    order = sb.store.get_order(po)
    assert order is not None
    return [item["recipeSetId"] for item in order["lineItems"]]


def _items(ids: Sequence[str], status: str = "completed") -> list[dict[str, str]]:
    return [{"recipeSetReadableId": i, "workflowStatus": status} for i in ids]


def _put(
    sb: SandboxServer,
    body: object,
    *,
    method: str = "PUT",
    path: str = STATUS_PATH,
    token: str | None = None,
) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.request(
        method,
        sb.base_url + path,
        data=data,
        headers={**_headers(sb, token), "Content-Type": "application/json"},
        timeout=TIMEOUT,
        allow_redirects=False,
    )


def _update(
    sb: SandboxServer, po: str, ids: Sequence[str], status: str = "completed"
) -> requests.Response:
    return _put(sb, {"purchaseOrderNumber": po, "lineItems": _items(ids, status)})


def _get(sb: SandboxServer, po: str, token: str | None = None) -> requests.Response:
    return requests.get(
        f"{sb.base_url}/api/order/order-number/{po}", headers=_headers(sb, token), timeout=TIMEOUT
    )


def _search(sb: SandboxServer, body: Mapping[str, object]) -> requests.Response:
    return requests.post(
        sb.base_url + "/api/orders/search", json=body, headers=_headers(sb), timeout=TIMEOUT
    )


def _statuses(sb: SandboxServer, po: str) -> dict[str, str]:
    frame = sb.store.line_statuses()
    rows = frame[frame["purchaseOrderNumber"] == po]
    return dict(zip(rows["recipeSetId"], rows["workflowStatus"], strict=True))


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# -- the status endpoint: success ----------------------------------------------------------


def test_update_answers_200_with_documented_details_and_changes_the_store(
    sandbox: SandboxServer,
) -> None:
    ids = _ids(sandbox, PO)[:2]
    before = _statuses(sandbox, PO)

    response = _update(sandbox, PO, ids, "in-progress")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "purchaseOrderNumber": PO,
        "status": "OK",
        "details": f"Updated workflow status for recipeSetReadableId(s): {ids[0]}, {ids[1]}.",
    }
    after = _statuses(sandbox, PO)
    assert {i: after[i] for i in ids} == {i: "in-progress" for i in ids}
    assert {i: s for i, s in after.items() if i not in ids} == {
        i: s for i, s in before.items() if i not in ids
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", STATUS_PATH),
        ("PUT", STATUS_PATH + "/"),
        ("POST", STATUS_PATH),
        ("POST", STATUS_PATH + "/"),
    ],
)
def test_put_post_and_trailing_slash_all_update_without_redirect(
    sandbox: SandboxServer, method: str, path: str
) -> None:
    target = _ids(sandbox, OTHER_PO)[0]
    body = {"purchaseOrderNumber": OTHER_PO, "lineItems": _items([target], "delivered")}

    response = _put(sandbox, body, method=method, path=path)

    assert response.status_code == 200  # not a 307 to follow with the token
    assert _statuses(sandbox, OTHER_PO)[target] == "delivered"


def test_all_ten_documented_statuses_are_accepted(sandbox: SandboxServer) -> None:
    target = _ids(sandbox, PO)[0]
    for status in sorted(WORKFLOW_STATUSES):
        assert _update(sandbox, PO, [target], status).status_code == 200, status
        assert _statuses(sandbox, PO)[target] == status


def test_sandbox_vocabulary_matches_the_toolkit() -> None:
    # The sandbox keeps its own copy on purpose (it plays the vendor); they must agree.
    assert {s.value for s in WorkflowStatus} == WORKFLOW_STATUSES
    assert len(WORKFLOW_STATUSES) == 10


def test_repeated_id_in_one_request_last_status_wins_and_is_listed_once(
    sandbox: SandboxServer,
) -> None:
    target = _ids(sandbox, PO)[0]
    body = {
        "purchaseOrderNumber": PO,
        "lineItems": _items([target], "on-hold") + _items([target], "approved"),
    }

    response = _put(sandbox, body)

    assert response.status_code == 200
    assert response.json()["details"].endswith(f"recipeSetReadableId(s): {target}.")
    assert _statuses(sandbox, PO)[target] == "approved"


def test_leading_zero_po_and_ids_are_matched_as_text(sandbox: SandboxServer) -> None:
    assert _update(sandbox, "00012345", ["W4GEQ4PU"]).status_code == 200
    assert _update(sandbox, "HA-US-DEV00011107", ["00123456"]).status_code == 200
    # What a reader that turned the id into a number would send:
    assert _update(sandbox, "HA-US-DEV00011107", ["123456"]).status_code == 409
    assert _update(sandbox, "12345", ["W4GEQ4PU"]).status_code == 409


# -- not found: all or nothing -------------------------------------------------------------


def test_missing_id_answers_409_listing_missing_ids_and_changes_nothing(
    sandbox: SandboxServer,
) -> None:
    real = _ids(sandbox, PO)[:3]
    before = sandbox.store.line_statuses()
    stamp = sandbox.store.last_modified(PO, real[0])

    response = _update(sandbox, PO, [real[0], "NOPE0001", real[1], "NOPE0002", real[2]])

    assert response.status_code == 409
    assert response.json() == {
        "purchaseOrderNumber": PO,
        "status": "Error",
        "details": "Unable to find recipeSetReadableId(s): NOPE0001, NOPE0002.",
    }
    pd.testing.assert_frame_equal(sandbox.store.line_statuses(), before)
    assert sandbox.store.last_modified(PO, real[0]) == stamp


def test_id_of_another_order_is_not_found_on_this_one(sandbox: SandboxServer) -> None:
    foreign = _ids(sandbox, OTHER_PO)[0]

    response = _update(sandbox, PO, [_ids(sandbox, PO)[0], foreign])

    assert response.status_code == 409
    assert response.json()["details"] == f"Unable to find recipeSetReadableId(s): {foreign}."


def test_unknown_order_answers_409_listing_every_id(sandbox: SandboxServer) -> None:
    response = _update(sandbox, "HA-US-NOSUCHPO", ["AAAA1111", "BBBB2222"])

    assert response.status_code == 409
    assert response.json()["purchaseOrderNumber"] == "HA-US-NOSUCHPO"
    assert (
        response.json()["details"] == "Unable to find recipeSetReadableId(s): AAAA1111, BBBB2222."
    )


def test_not_found_status_can_be_404_as_newest_docs_say(make_sandbox: MakeSandbox) -> None:
    sb = make_sandbox(not_found_status=404)
    before = sb.store.line_statuses()

    response = _update(sb, PO, [_ids(sb, PO)[0], "NOPE0001"])

    assert response.status_code == 404
    assert response.json()["details"] == "Unable to find recipeSetReadableId(s): NOPE0001."
    pd.testing.assert_frame_equal(sb.store.line_statuses(), before)


@functools.cache
def _sample_orders() -> tuple[dict[str, str], ...]:
    with (sample_data_dir() / "spectrum_orders.csv").open(encoding="utf-8", newline="") as fh:
        return tuple(csv.DictReader(fh))


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    picks=st.lists(st.integers(min_value=0, max_value=5), min_size=1, max_size=6),
    strangers=st.lists(st.sampled_from(["NOPE0001", "NOPE0002", "ZZZZ9999"]), max_size=2),
    status=st.sampled_from(sorted(WORKFLOW_STATUSES)),
)
@pytest.mark.property
def test_store_update_is_all_or_nothing(
    tmp_path: Path, picks: list[int], strangers: list[str], status: str
) -> None:
    with SandboxStore(tmp_path / "prop.sqlite3") as store:
        store.seed(_sample_orders(), replace=True)
        order = store.get_order(PO)
        assert order is not None
        ids = [order["lineItems"][p]["recipeSetId"] for p in picks] + strangers
        before = store.line_statuses()

        missing = store.apply_status_update(PO, _items(ids, status))

        after = store.line_statuses()
        assert missing == list(dict.fromkeys(strangers))
        if missing:
            pd.testing.assert_frame_equal(after, before)
        else:
            mine = after[after["purchaseOrderNumber"] == PO].set_index("recipeSetId")
            assert set(mine.loc[ids, "workflowStatus"]) == {status}
            rest = after["purchaseOrderNumber"] != PO
            pd.testing.assert_frame_equal(after[rest], before[rest])


# -- malformed requests: 500 ---------------------------------------------------------------

_GOOD_ITEM = {"recipeSetReadableId": "TEBMKVGB", "workflowStatus": "completed"}


@pytest.mark.badinput
@pytest.mark.parametrize(
    ("body", "po_in_answer"),
    [
        pytest.param(b"{not json", "", id="not-json"),
        pytest.param(b"\xff\xfe", "", id="not-utf8"),
        pytest.param([_GOOD_ITEM], "", id="array-body"),
        pytest.param({"lineItems": [_GOOD_ITEM]}, "", id="no-po"),
        pytest.param({"purchaseOrderNumber": "  ", "lineItems": [_GOOD_ITEM]}, "", id="blank-po"),
        pytest.param({"purchaseOrderNumber": 11101, "lineItems": [_GOOD_ITEM]}, "", id="po-number"),
        pytest.param({"purchaseOrderNumber": PO}, PO, id="no-line-items"),
        pytest.param({"purchaseOrderNumber": PO, "lineItems": []}, PO, id="empty-line-items"),
        pytest.param({"purchaseOrderNumber": PO, "lineItems": _GOOD_ITEM}, PO, id="items-object"),
        pytest.param(
            {"purchaseOrderNumber": PO, "lineItems": [{"workflowStatus": "completed"}]},
            PO,
            id="no-id",
        ),
        pytest.param(
            {
                "purchaseOrderNumber": PO,
                "lineItems": [{"recipeSetReadableId": "", "workflowStatus": "completed"}],
            },
            PO,
            id="blank-id",
        ),
        pytest.param(
            {
                "purchaseOrderNumber": PO,
                "lineItems": [
                    _GOOD_ITEM,
                    {"recipeSetReadableId": "LKIHFPB5", "workflowStatus": "shipped"},
                ],
            },
            PO,
            id="unknown-status",
        ),
        pytest.param(
            {
                "purchaseOrderNumber": PO,
                "lineItems": [{"recipeSetReadableId": "TEBMKVGB", "workflowStatus": "Completed"}],
            },
            PO,
            id="status-not-normalised",
        ),
        pytest.param(
            {"purchaseOrderNumber": PO, "lineItems": [{"recipeSetReadableId": "TEBMKVGB"}]},
            PO,
            id="no-status",
        ),
    ],
)
def test_malformed_request_answers_500_naming_the_po_and_changes_nothing(
    sandbox: SandboxServer, body: object, po_in_answer: str
) -> None:
    before = sandbox.store.line_statuses()

    response = _put(sandbox, body)

    assert response.status_code == 500
    assert response.json() == {
        "purchaseOrderNumber": po_in_answer,
        "status": "Error",
        "details": f"Update status for {po_in_answer} encountered an error.",
    }
    pd.testing.assert_frame_equal(sandbox.store.line_statuses(), before)


# -- token ---------------------------------------------------------------------------------


@pytest.mark.security
@pytest.mark.parametrize("token", [None, "", "wrong-token", "SANDBOX-TEST-TOKEN"])
def test_bad_or_missing_token_answers_403_and_changes_nothing(
    sandbox: SandboxServer, token: str | None
) -> None:
    before = sandbox.store.line_statuses()
    headers = {} if token is None else {"SPECTRUM_API_TOKEN": token}

    response = requests.put(
        sandbox.base_url + STATUS_PATH,
        json={"purchaseOrderNumber": PO, "lineItems": _items(_ids(sandbox, PO))},
        headers=headers,
        timeout=TIMEOUT,
    )

    assert response.status_code == 403
    assert response.json()["status"] == "Error"
    assert "SPECTRUM_API_TOKEN" in response.json()["details"]
    pd.testing.assert_frame_equal(sandbox.store.line_statuses(), before)
    assert _get(sandbox, PO, token="wrong-token").status_code == 403


@pytest.mark.security
def test_auth_failure_status_can_be_401(make_sandbox: MakeSandbox) -> None:
    sb = make_sandbox(auth_failure_status=401)

    assert _update(sb, PO, ["TEBMKVGB"]).status_code == 200
    assert (
        _put(sb, {"purchaseOrderNumber": PO, "lineItems": [_GOOD_ITEM]}, token="x").status_code
        == 401
    )
    assert _get(sb, PO, token="x").status_code == 401


@pytest.mark.security
def test_token_in_query_string_is_not_accepted(sandbox: SandboxServer) -> None:
    response = requests.get(
        f"{sandbox.base_url}/api/order/order-number/{PO}",
        params={"SPECTRUM_API_TOKEN": sandbox.token},
        timeout=TIMEOUT,
    )
    assert response.status_code == 403


# -- rate limiting -------------------------------------------------------------------------


@pytest.mark.fault
def test_rate_limit_answers_403_per_endpoint_and_recovers_after_the_window(
    make_sandbox: MakeSandbox,
) -> None:
    window = 0.25
    sb = make_sandbox(rate_limit=3, rate_window_s=window)
    first = time.monotonic()
    codes = [_get(sb, PO).status_code for _ in range(4)]

    assert codes == [200, 200, 200, 403]
    throttled = _get(sb, PO)
    assert throttled.status_code == 403
    assert throttled.json() == {"status": "Error", "details": "Rate limit exceeded."}
    # Another endpoint has its own window.
    assert _update(sb, PO, ["TEBMKVGB"]).status_code == 200

    time.sleep(max(0.0, window - (time.monotonic() - first)) + 0.05)
    assert _get(sb, PO).status_code == 200


@pytest.mark.fault
def test_status_endpoint_spellings_share_one_rate_limit(make_sandbox: MakeSandbox) -> None:
    sb = make_sandbox(rate_limit=2)
    body = {"purchaseOrderNumber": PO, "lineItems": _items(["TEBMKVGB"])}

    assert _put(sb, body, method="PUT").status_code == 200
    assert _put(sb, body, method="POST", path=STATUS_PATH + "/").status_code == 200
    third = _put(sb, body, method="PUT", path=STATUS_PATH + "/")
    assert third.status_code == 403
    assert third.json()["details"] == "Rate limit exceeded."


@pytest.mark.fault
def test_rate_limit_counts_requests_with_a_bad_token(make_sandbox: MakeSandbox) -> None:
    sb = make_sandbox(rate_limit=2)

    assert _get(sb, PO, token="wrong").status_code == 403
    assert _get(sb, PO, token="wrong").status_code == 403
    throttled = _get(sb, PO)
    assert throttled.status_code == 403
    assert throttled.json()["details"] == "Rate limit exceeded."


@pytest.mark.fault
def test_default_settings_throttle_at_100_per_60_seconds(make_sandbox: MakeSandbox) -> None:
    assert SandboxSettings().rate_limit == 100
    assert SandboxSettings().rate_window_s == 60.0
    sb = make_sandbox(rate_limit=100)
    with requests.Session() as session:
        session.headers.update(_headers(sb))
        url = f"{sb.base_url}/api/order/order-number/{PO}"
        codes = [session.get(url, timeout=TIMEOUT).status_code for _ in range(101)]
    assert codes[:100] == [200] * 100
    assert codes[100] == 403


# -- reading orders back -------------------------------------------------------------------


def test_get_order_returns_line_items_with_integer_ids(sandbox: SandboxServer) -> None:
    _update(sandbox, PO, ["LKIHFPB5"], "revision")

    response = _get(sandbox, PO)

    assert response.status_code == 200
    body = response.json()
    assert body["purchaseOrderNumber"] == PO
    assert body["lineItems"][:2] == [
        {
            "id": 500001,
            "recipeSetId": "TEBMKVGB",
            "workflowStatus": "not-started",
            "skuQuantities": [],
        },
        {
            "id": 500002,
            "recipeSetId": "LKIHFPB5",
            "workflowStatus": "revision",
            "skuQuantities": [],
        },
    ]
    assert len(body["lineItems"]) == 6


def test_get_unknown_order_answers_404(sandbox: SandboxServer) -> None:
    response = _get(sandbox, "HA-US-NOSUCHPO")

    assert response.status_code == 404
    assert response.json()["status"] == "Error"
    assert response.json()["purchaseOrderNumber"] == "HA-US-NOSUCHPO"


def test_workflow_status_can_be_hidden_from_reads(make_sandbox: MakeSandbox) -> None:
    sb = make_sandbox(expose_workflow_status=False)

    items = _get(sb, PO).json()["lineItems"]

    assert items
    assert all("workflowStatus" not in item for item in items)
    assert all({"id", "recipeSetId", "skuQuantities"} <= item.keys() for item in items)
    # The store still knows the status: only the answer omits it.
    assert set(_statuses(sb, PO).values()) <= WORKFLOW_STATUSES


# -- search --------------------------------------------------------------------------------


def test_search_returns_orders_with_matching_line_items_in_the_window(
    sandbox: SandboxServer,
) -> None:
    now = datetime.now(UTC)
    _update(sandbox, PO, ["TEBMKVGB"], "released")
    _update(sandbox, OTHER_PO, _ids(sandbox, OTHER_PO)[:1], "released")

    response = _search(
        sandbox,
        {
            "lastModificationStartDate": _iso(now - timedelta(days=1)),
            "workflowStatuses": ["released"],
        },
    )

    assert response.status_code == 200
    orders = response.json()
    assert [o["purchaseOrderNumber"] for o in orders] == [PO, OTHER_PO]
    assert orders[0] == _get(sandbox, PO).json()  # whole orders, same shape as GET

    later = _search(
        sandbox,
        {
            "lastModificationStartDate": _iso(now + timedelta(days=1)),
            "lastModificationEndDate": _iso(now + timedelta(days=2)),
            "workflowStatuses": ["released"],
        },
    )
    assert later.status_code == 200
    assert later.json() == []


def test_search_window_over_31_days_answers_400_unless_ignored(sandbox: SandboxServer) -> None:
    _update(sandbox, PO, ["TEBMKVGB"], "released")
    end = datetime.now(UTC) + timedelta(minutes=1)
    body: dict[str, object] = {
        "lastModificationStartDate": _iso(end - timedelta(days=32)),
        "lastModificationEndDate": _iso(end),
        "workflowStatuses": ["released"],
    }

    refused = _search(sandbox, body)
    assert refused.status_code == 400
    assert refused.json()["status"] == "Error"
    assert "31 days" in refused.json()["details"]

    allowed = _search(sandbox, {**body, "ignoreDateRestriction": True})
    assert allowed.status_code == 200
    assert [o["purchaseOrderNumber"] for o in allowed.json()] == [PO]

    exactly_31 = _search(
        sandbox, {**body, "lastModificationStartDate": _iso(end - timedelta(days=31))}
    )
    assert exactly_31.status_code == 200


@pytest.mark.badinput
@pytest.mark.parametrize(
    "body",
    [
        {"workflowStatuses": ["completed"]},
        {"lastModificationStartDate": "yesterday", "workflowStatuses": ["completed"]},
        {"lastModificationStartDate": "2024-06-01T00:00:00Z", "workflowStatuses": []},
        {"lastModificationStartDate": "2024-06-01T00:00:00Z", "workflowStatuses": ["shipped"]},
        {
            "lastModificationStartDate": "2024-06-10T00:00:00Z",
            "lastModificationEndDate": "2024-06-01T00:00:00Z",
            "workflowStatuses": ["completed"],
        },
    ],
    ids=["no-start", "bad-date", "no-status", "unknown-status", "end-before-start"],
)
def test_bad_search_answers_400(sandbox: SandboxServer, body: Mapping[str, object]) -> None:
    response = _search(sandbox, body)

    assert response.status_code == 400
    assert response.json()["status"] == "Error"
    assert response.json()["details"]


# -- fault injection -----------------------------------------------------------------------


@pytest.mark.fault
def test_latency_switch_delays_every_api_answer(make_sandbox: MakeSandbox) -> None:
    sb = make_sandbox()
    started = time.perf_counter()
    assert _get(sb, PO).status_code == 200
    fast = time.perf_counter() - started

    sb.settings.latency_s = 0.3
    started = time.perf_counter()
    assert _get(sb, PO).status_code == 200
    assert _get(sb, PO, token="wrong").status_code == 403
    slow = time.perf_counter() - started

    assert slow >= 0.6
    assert slow > fast


@pytest.mark.fault
def test_update_is_applied_even_when_the_client_times_out(make_sandbox: MakeSandbox) -> None:
    sb = make_sandbox(latency_s=0.3)

    with pytest.raises(requests.Timeout):
        requests.put(
            sb.base_url + STATUS_PATH,
            json={"purchaseOrderNumber": PO, "lineItems": _items(["TEBMKVGB"], "on-hold")},
            headers=_headers(sb),
            timeout=(TIMEOUT, 0.1),
        )

    # The answer was late, not the update: it is in the store though no answer came.
    deadline = time.monotonic() + 2
    while _statuses(sb, PO)["TEBMKVGB"] != "on-hold" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _statuses(sb, PO)["TEBMKVGB"] == "on-hold"


@pytest.mark.fault
def test_fail_first_answers_500_then_succeeds(make_sandbox: MakeSandbox) -> None:
    sb = make_sandbox(fail_first={PO: 2})
    before = _statuses(sb, PO)

    first, second = _update(sb, PO, ["TEBMKVGB"]), _update(sb, PO, ["TEBMKVGB"])
    assert (first.status_code, second.status_code) == (500, 500)
    assert first.json() == {
        "purchaseOrderNumber": PO,
        "status": "Error",
        "details": f"Update status for {PO} encountered an error.",
    }
    assert _statuses(sb, PO) == before
    assert sb.settings.fail_first == {PO: 0}
    # Other orders are not affected.
    assert _update(sb, OTHER_PO, _ids(sb, OTHER_PO)[:1]).status_code == 200

    assert _update(sb, PO, ["TEBMKVGB"]).status_code == 200
    assert _statuses(sb, PO)["TEBMKVGB"] == "completed"


@pytest.mark.fault
def test_error_rate_is_reproducible_for_a_seed(make_sandbox: MakeSandbox) -> None:
    def codes(sb: SandboxServer) -> list[int]:
        return [_update(sb, PO, ["TEBMKVGB"]).status_code for _ in range(20)]

    first = codes(make_sandbox(error_rate=0.5, seed=7))
    again = codes(make_sandbox(error_rate=0.5, seed=7))
    other = codes(make_sandbox(error_rate=0.5, seed=8))

    assert first == again
    assert set(first) == {200, 500}
    assert other != first


@pytest.mark.fault
def test_error_rate_one_fails_every_update_and_changes_nothing(make_sandbox: MakeSandbox) -> None:
    sb = make_sandbox(error_rate=1.0)
    before = sb.store.line_statuses()

    assert {_update(sb, PO, _ids(sb, PO)).status_code for _ in range(5)} == {500}
    pd.testing.assert_frame_equal(sb.store.line_statuses(), before)
    assert _get(sb, PO).status_code == 200  # reads are not affected


# -- test-only helpers and the request log -------------------------------------------------


@pytest.mark.security
def test_request_log_records_requests_but_never_the_token(sandbox: SandboxServer) -> None:
    _update(sandbox, PO, ["TEBMKVGB", "LKIHFPB5"])
    _put(sandbox, {"purchaseOrderNumber": PO, "lineItems": [_GOOD_ITEM]}, token="wrong")
    # A careless client putting the token in the URL must not get it logged either.
    requests.get(
        f"{sandbox.base_url}/api/order/order-number/{PO}",
        params={"SPECTRUM_API_TOKEN": sandbox.token},
        headers=_headers(sandbox),
        timeout=TIMEOUT,
    )
    requests.get(
        f"{sandbox.base_url}/api/order/order-number/{sandbox.token}",
        headers=_headers(sandbox),
        timeout=TIMEOUT,
    )

    response = requests.get(
        sandbox.base_url + "/_sandbox/requests", headers=_headers(sandbox), timeout=TIMEOUT
    )

    assert response.status_code == 200
    assert sandbox.token not in response.text
    assert sandbox.token not in repr(sandbox.requests())
    log = response.json()
    assert log == json.loads(json.dumps(sandbox.requests()))
    assert [(r["method"], r["path"], r["status"]) for r in log] == [
        ("PUT", STATUS_PATH, 200),
        ("PUT", STATUS_PATH, 403),
        ("GET", f"/api/order/order-number/{PO}", 200),
        ("GET", "/api/order/order-number/***", 404),
    ]
    assert log[0]["purchaseOrderNumber"] == PO
    assert log[0]["lineItemCount"] == 2
    assert log[0]["recipeSetReadableIds"] == ["TEBMKVGB", "LKIHFPB5"]
    assert log[0]["monotonic"] <= log[1]["monotonic"]
    assert abs(log[0]["time"] - time.time()) < 60
    assert not any("header" in key.lower() or "token" in key.lower() for key in log[0])


def test_request_log_can_be_cleared(sandbox: SandboxServer) -> None:
    _get(sandbox, PO)
    _get(sandbox, PO)

    cleared = requests.delete(
        sandbox.base_url + "/_sandbox/requests", headers=_headers(sandbox), timeout=TIMEOUT
    )

    assert cleared.status_code == 200
    assert cleared.json() == {"cleared": 2}
    assert sandbox.requests() == []


@pytest.mark.security
def test_sandbox_helpers_need_the_token(sandbox: SandboxServer) -> None:
    url = sandbox.base_url + "/_sandbox/"
    assert requests.get(url + "requests", timeout=TIMEOUT).status_code == 403
    assert (
        requests.delete(
            url + "requests", headers=_headers(sandbox, "x"), timeout=TIMEOUT
        ).status_code
        == 403
    )
    refused = requests.put(url + "settings", json={"latency_s": 5}, timeout=TIMEOUT)
    assert refused.status_code == 403
    assert sandbox.settings.latency_s == 0.0


def test_settings_can_be_changed_over_http(sandbox: SandboxServer) -> None:
    url = sandbox.base_url + "/_sandbox/settings"

    changed = requests.put(
        url,
        json={"not_found_status": 404, "fail_first": {OTHER_PO: 1}},
        headers=_headers(sandbox),
        timeout=TIMEOUT,
    )

    assert changed.status_code == 200
    assert changed.json()["not_found_status"] == 404
    assert _update(sandbox, PO, ["NOPE0001"]).status_code == 404
    assert _update(sandbox, OTHER_PO, _ids(sandbox, OTHER_PO)[:1]).status_code == 500


@pytest.mark.badinput
@pytest.mark.parametrize(
    "change",
    [
        {"not_found_status": 418},
        {"latency_s": -1},
        {"no_such_switch": 1},
        {"rate_limit": 0},
        {"error_rate": 2},
    ],
)
def test_bad_settings_are_refused_and_change_nothing(
    sandbox: SandboxServer, change: dict[str, object]
) -> None:
    url = sandbox.base_url + "/_sandbox/settings"
    payload = {"latency_s": 0.25, **change}
    before = requests.get(url, headers=_headers(sandbox), timeout=TIMEOUT).json()

    response = requests.put(url, json=payload, headers=_headers(sandbox), timeout=TIMEOUT)

    assert response.status_code == 400
    assert response.json()["status"] == "Error"
    assert requests.get(url, headers=_headers(sandbox), timeout=TIMEOUT).json() == before
    assert sandbox.settings.latency_s == 0.0


def test_settings_validate_in_python_too() -> None:
    with pytest.raises(ConfigError, match="not_found_status"):
        SandboxSettings(not_found_status=400)
    with pytest.raises(ValueError, match="auth_failure_status"):
        SandboxSettings(auth_failure_status=404)


# -- the server itself ---------------------------------------------------------------------


@pytest.mark.security
def test_repr_never_shows_the_token(sandbox: SandboxServer) -> None:
    text = repr(sandbox)

    assert sandbox.token not in text
    assert sandbox.base_url in text
    assert "running" in text
    assert sandbox.token not in repr(sandbox.settings)
    assert sandbox.token not in repr(sandbox.store)


def test_port_zero_binds_a_real_port_that_answers_at_once(make_sandbox: MakeSandbox) -> None:
    sb = make_sandbox(port=0)

    assert sb.port > 0
    assert sb.base_url == f"http://127.0.0.1:{sb.port}"
    assert _get(sb, PO).status_code == 200  # no warm-up wait


def test_stop_closes_the_port_and_deletes_a_temporary_store() -> None:
    sb = SandboxServer(settings=SandboxSettings(rate_limit=None)).start()
    path, url = sb.store_path, sb.base_url
    assert path is not None
    assert path.exists()
    assert _get(sb, PO).status_code == 200

    sb.stop()

    assert not sb.running
    assert not path.exists()
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/api/order/order-number/" + PO, timeout=TIMEOUT)
    sb.stop()  # idempotent


def test_restart_keeps_port_and_a_persistent_store(
    make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sb = make_sandbox(store_path=tmp_path / "kept.sqlite3")
    url = sb.base_url
    assert _update(sb, PO, ["TEBMKVGB"], "delivered").status_code == 200

    sb.stop()
    sb.start()

    assert sb.base_url == url
    assert _get(sb, PO).json()["lineItems"][0]["workflowStatus"] == "delivered"


def test_seed_from_replaces_the_store(make_sandbox: MakeSandbox, tmp_path: Path) -> None:
    store_path = tmp_path / "seeded.sqlite3"
    frame = pd.DataFrame(
        {
            "purchaseOrderNumber": ["PO-A", "PO-A", "PO-B"],
            "recipeSetId": ["AAAA0001", "AAAA0002", "BBBB0001"],
            "workflowStatus": ["not-started", "on-hold", "approved"],
        }
    )

    sb = make_sandbox(store_path=store_path, seed_from=frame)

    assert sb.store.line_statuses().to_dict(orient="list") == {
        "purchaseOrderNumber": ["PO-A", "PO-A", "PO-B"],
        "recipeSetId": ["AAAA0001", "AAAA0002", "BBBB0001"],
        "workflowStatus": ["not-started", "on-hold", "approved"],
    }
    assert _get(sb, PO).status_code == 404


@pytest.mark.badinput
def test_bad_order_file_names_file_and_row(tmp_path: Path) -> None:
    orders = tmp_path / "orders.csv"
    orders.write_text(
        "purchaseOrderNumber,recipeSetId,workflowStatus\nPO-1,AAAA0001,not-started\nPO-1,AAAA0002,shipped\n",
        encoding="utf-8",
    )
    with SandboxStore(tmp_path / "s.sqlite3") as store:
        with pytest.raises(
            SpreadsheetError, match=r"orders\.csv, row 3: unknown workflowStatus 'shipped'"
        ):
            store.load_orders(orders)
        assert store.is_empty()  # all or nothing


def test_order_file_can_be_an_xlsx_with_numeric_cells(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["purchaseOrderNumber", "lineItemId", "recipeSetId", "workflowStatus"])
    sheet.append(["00012345", 7, 12345678, "on-hold"])  # numeric id and line item id
    book.save(tmp_path / "orders.xlsx")

    with SandboxStore(tmp_path / "s.sqlite3") as store:
        assert store.load_orders(tmp_path / "orders.xlsx") == 1
        assert store.get_order("00012345") == {
            "purchaseOrderNumber": "00012345",
            "lineItems": [
                {
                    "id": 7,
                    "recipeSetId": "12345678",
                    "workflowStatus": "on-hold",
                    "skuQuantities": [],
                }
            ],
        }


@pytest.mark.security
@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com"])  # noqa: S104
def test_serve_refuses_a_host_that_is_not_loopback(tmp_path: Path, host: str) -> None:
    store_path = tmp_path / "never.sqlite3"

    with pytest.raises(ConfigError, match="loopback"):
        serve(host=host, port=0, store_path=store_path, settings=None, token="t")

    assert not store_path.exists()  # refused before anything was opened


_FOREGROUND = """
import sys
from spectrum_tools.sandbox import serve
serve(port=0, store_path=sys.argv[1], token=sys.argv[2], log_level="info",
      on_ready=lambda url: print(url, flush=True))
print("serve returned", flush=True)
"""


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_runs_in_the_foreground_until_interrupted(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    store_path = tmp_path / "fg.sqlite3"
    token = "fg-secret-token-4711"
    repo = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", _FOREGROUND, str(store_path), token],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()  # printed by on_ready once listening
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url), (
            proc.stderr.read() if proc.stderr else url
        )
        response = requests.get(
            f"{url}/api/order/order-number/{PO}",
            headers={"SPECTRUM_API_TOKEN": token},
            timeout=TIMEOUT,
        )
        assert response.status_code == 200

        proc.send_signal(stop_signal)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    assert proc.returncode == 0, err
    assert out.splitlines()[-1] == "serve returned"  # returned normally, after cleanup
    assert "GET /api/order/order-number/" in out + err  # uvicorn's access log, at info level
    assert token not in out + err
    assert store_path.exists()
    assert not Path(f"{store_path}-wal").exists()  # the store was closed cleanly


def test_default_store_path_is_in_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert default_store_path() == tmp_path / "spectrum-sandbox.sqlite3"


# -- the bundled sample data ---------------------------------------------------------------


def _update_rows() -> list[dict[str, str]]:
    with (sample_data_dir() / "status_updates.csv").open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh, delimiter=";"))


def test_sample_update_sheets_hold_the_same_rows() -> None:
    raw = (sample_data_dir() / "status_updates.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert raw.split(b"\n")[0] == b"\xef\xbb\xbfPO Number;Recipe Set ID;New Status;Notes\r"
    csv_rows = [
        [r["PO Number"], r["Recipe Set ID"], r["New Status"], r["Notes"]] for r in _update_rows()
    ]

    book = openpyxl.load_workbook(sample_data_dir() / "status_updates.xlsx")
    assert book.sheetnames == ["Notes", "Updates"]
    sheet = book["Updates"]
    assert [c.value for c in sheet[1]] == ["PO Number", "Recipe Set ID", "New Status", "Notes"]
    numeric = [c for row in sheet.iter_rows(min_row=2) for c in row if isinstance(c.value, int)]
    assert [c.value for c in numeric] == [12345678]
    xlsx_rows = [
        ["" if v is None else str(v) for v in row]
        for row in sheet.iter_rows(min_row=2, max_col=4, values_only=True)
    ]
    assert xlsx_rows == csv_rows
    assert 180 <= len(csv_rows) <= 230


def test_sample_updates_reference_the_sample_store(sandbox: SandboxServer) -> None:
    known = set(
        zip(
            *(sandbox.store.line_statuses()[c] for c in ("purchaseOrderNumber", "recipeSetId")),
            strict=True,
        )
    )
    rows = _update_rows()
    refs = {
        (r["PO Number"].strip(), r["Recipe Set ID"].strip()) for r in rows if r["PO Number"].strip()
    }
    unknown = sorted(ref for ref in refs - known)
    # Exactly the two documented messy ids: the Excel-mangled one and the typo.
    assert unknown == [("HA-US-DEV00011103", "HS7SW33X"), ("HA-US-DEV00011117", "1.23E+07")]
    assert len({po for po, _ in refs}) == 50


def test_sample_order_with_a_missing_item_answers_409_and_changes_nothing(
    sandbox: SandboxServer,
) -> None:
    po = "HA-US-DEV00011103"
    ids = [r["Recipe Set ID"] for r in _update_rows() if r["PO Number"] == po]
    before = sandbox.store.line_statuses()

    response = _update(sandbox, po, ids, "completed")

    assert response.status_code == 409
    assert response.json()["details"] == "Unable to find recipeSetReadableId(s): HS7SW33X."
    pd.testing.assert_frame_equal(sandbox.store.line_statuses(), before)


def test_sandbox_seeds_itself_from_the_sample_store(sandbox: SandboxServer) -> None:
    frame = sandbox.store.line_statuses()
    assert frame["purchaseOrderNumber"].nunique() == 55
    assert {"00012345", "HA-UK-DEV00020201"} <= set(frame["purchaseOrderNumber"])
    assert {"12345678", "00123456", "7QJ2M4KD"} <= set(frame["recipeSetId"])
    assert (frame["workflowStatus"] == "not-started").mean() > 0.6
