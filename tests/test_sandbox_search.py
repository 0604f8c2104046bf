"""The sandbox's read-back side (issue 12), end to end over real HTTP.

What a read-back client relies on (docs/spectrum-api.md, "Search" and "How the sandbox plays
reads"): search windows on each order's last-modification time, the 31-day limit and
``ignoreDateRestriction``, the per-order status filter, modification times moved by status
updates, the switches that hide ``workflowStatus`` or rename fields, and the test-only
``/_sandbox/orders/{po}`` route that stages "someone else changed it since".
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from spectrum_tools.sandbox import SandboxServer, SandboxStore, seed_age

MakeSandbox = Callable[..., SandboxServer]  # the conftest fixture's factory

PO = "HA-US-DEV00011101"  # six line items in the sample store; the fifth is approved
OTHER_PO = "HA-US-DEV00011102"  # six line items, all not-started
ALL_STATUSES = [
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
TIMEOUT = 5


class Api:
    """A token-carrying HTTP session on one sandbox: what a read-back client sends."""

    def __init__(self, sandbox: SandboxServer) -> None:
        self.sandbox = sandbox
        self.session = requests.Session()
        self.session.headers["SPECTRUM_API_TOKEN"] = sandbox.token

    def _url(self, path: str) -> str:
        return self.sandbox.base_url + path

    def search(
        self,
        start: datetime | str | None,
        statuses: Sequence[str] = ALL_STATUSES,
        *,
        end: datetime | None = None,
        timeout: float = TIMEOUT,
        **extra: object,
    ) -> requests.Response:
        body: dict[str, object] = {"workflowStatuses": list(statuses), **extra}
        if start is not None:
            body["lastModificationStartDate"] = iso(start) if isinstance(start, datetime) else start
        if end is not None:
            body["lastModificationEndDate"] = iso(end)
        return self.session.post(self._url("/api/orders/search"), json=body, timeout=timeout)

    def found(
        self, start: datetime, statuses: Sequence[str] = ALL_STATUSES, **kw: object
    ) -> list[str]:
        """Purchase order numbers a search answers, in answer order; fails on a non-200."""
        response = self.search(start, statuses, **kw)  # type: ignore[arg-type]
        assert response.status_code == 200, response.text
        return [order["purchaseOrderNumber"] for order in response.json()]

    def get(self, po: str) -> requests.Response:
        return self.session.get(self._url(f"/api/order/order-number/{po}"), timeout=TIMEOUT)

    def put_status(self, po: str, items: Mapping[str, str]) -> requests.Response:
        body = {
            "purchaseOrderNumber": po,
            "lineItems": [
                {"recipeSetReadableId": i, "workflowStatus": s} for i, s in items.items()
            ],
        }
        return self.session.put(self._url("/api/order/status"), json=body, timeout=TIMEOUT)

    def stage(
        self, po: str, items: Mapping[str, str] | None = None, modified: datetime | None = None
    ) -> requests.Response:
        body: dict[str, object] = {
            "lineItems": [{"recipeSetId": i, "workflowStatus": s} for i, s in (items or {}).items()]
        }
        if modified is not None:
            body["lastModified"] = iso(modified)
        return self.session.put(self._url(f"/_sandbox/orders/{po}"), json=body, timeout=TIMEOUT)

    def record(self, po: str) -> dict[str, object]:
        response = self.session.get(self._url(f"/_sandbox/orders/{po}"), timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        return body

    def switch(self, **changes: object) -> None:
        response = self.session.put(self._url("/_sandbox/settings"), json=changes, timeout=TIMEOUT)
        assert response.status_code == 200, response.text


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def when(text: object) -> datetime:
    assert isinstance(text, str)
    return datetime.fromisoformat(text)


@pytest.fixture
def api(sandbox: SandboxServer) -> Iterator[Api]:
    client = Api(sandbox)
    yield client
    client.session.close()


def _line_ids(api: Api, po: str) -> list[str]:
    items = api.record(po)["lineItems"]
    assert isinstance(items, list)
    return [item["recipeSetId"] for item in items]


def _all_pos(sandbox: SandboxServer) -> set[str]:
    return set(sandbox.store.line_statuses()["purchaseOrderNumber"])


# -- seeded times: deterministic, spread over months ----------------------------------------


def test_seeded_orders_get_their_deterministic_age_before_the_seeding(
    make_sandbox: MakeSandbox,
) -> None:
    before = datetime.now(UTC)
    sandbox = make_sandbox()
    after = datetime.now(UTC)

    for po in sorted(_all_pos(sandbox)):
        stamp = when(sandbox.store.order_last_modified(po))
        # Whole-second ages, microsecond stamps: allow the rounding of the seeding moment.
        assert before - seed_age(po) - timedelta(seconds=1) <= stamp <= after - seed_age(po), po


def test_seeded_ages_spread_over_months_so_search_windows_matter(sandbox: SandboxServer) -> None:
    api = Api(sandbox)
    now = datetime.now(UTC)
    windows = [(now - timedelta(days=31 * (k + 1)), now - timedelta(days=31 * k)) for k in range(3)]

    found = [api.found(start, end=end) for start, end in windows]

    assert all(found), "every one of the three newest 31-day windows holds orders"
    assert sum(map(len, found)) == len(set().union(*map(set, found)))  # no order twice
    covered = set().union(*map(set, found))
    older = _all_pos(sandbox) - covered
    assert older, "some orders lie beyond three windows, to be read one by one"
    assert len(older) <= len(covered) // 5
    assert all(seed_age(po) > timedelta(days=93) for po in older)
    # Nothing seeded is newer than a day: a fresh change is the only thing in the last day.
    assert api.found(now - timedelta(days=1)) == []


# -- windows ---------------------------------------------------------------------------------


def test_search_returns_orders_whose_last_modification_is_in_the_window(api: Api) -> None:
    t = datetime(2024, 5, 10, 12, 0, tzinfo=UTC)
    assert api.stage(PO, modified=t).status_code == 200
    assert api.stage(OTHER_PO, modified=t + timedelta(days=3)).status_code == 200
    kw = {"ignoreDateRestriction": False}

    assert api.found(t - timedelta(days=1), end=t + timedelta(days=1), **kw) == [PO]
    assert api.found(t + timedelta(days=1), end=t + timedelta(days=5), **kw) == [OTHER_PO]
    assert api.found(t - timedelta(days=1), end=t + timedelta(days=5), **kw) == [PO, OTHER_PO]
    # Both bounds are inclusive.
    assert api.found(t, end=t) == [PO]
    assert api.found(t + timedelta(microseconds=1), end=t + timedelta(days=1)) == []
    assert api.found(t - timedelta(days=1), end=t - timedelta(microseconds=1)) == []


def test_end_of_the_window_defaults_to_now(api: Api) -> None:
    now = datetime.now(UTC)
    api.stage(PO, modified=now - timedelta(hours=1))
    api.stage(OTHER_PO, modified=now + timedelta(days=2))  # "in the future"

    assert api.found(now - timedelta(days=1)) == [PO]
    assert api.found(now - timedelta(days=1), end=now + timedelta(days=3)) == [PO, OTHER_PO]


def test_start_with_an_offset_and_without_a_zone_means_the_same_moment(api: Api) -> None:
    t = datetime(2024, 5, 10, 12, 0, tzinfo=UTC)
    api.stage(PO, modified=t)

    assert api.found("2024-05-10T14:00:00+02:00", end=t + timedelta(days=1)) == [PO]  # type: ignore[arg-type]
    assert api.found("2024-05-10T12:00:00", end=t + timedelta(days=1)) == [PO]  # type: ignore[arg-type]
    assert api.found("2024-05-10T12:00:01", end=t + timedelta(days=1)) == []  # type: ignore[arg-type]


# -- the 31-day limit ------------------------------------------------------------------------


def test_window_over_31_days_answers_400_saying_why(api: Api) -> None:
    end = datetime.now(UTC)

    response = api.search(end - timedelta(days=31, seconds=1), end=end)

    assert response.status_code == 400
    assert response.json()["status"] == "Error"
    details = response.json()["details"]
    assert "31 days" in details
    assert "ignoreDateRestriction" in details
    # Exactly 31 days is allowed.
    assert api.search(end - timedelta(days=31), end=end).status_code == 200


def test_window_over_31_days_without_an_end_counts_from_now(api: Api) -> None:
    response = api.search(datetime.now(UTC) - timedelta(days=32))

    assert response.status_code == 400
    assert "31 days" in response.json()["details"]


def test_ignore_date_restriction_allows_a_long_window(api: Api, sandbox: SandboxServer) -> None:
    now = datetime.now(UTC)

    wide = api.found(now - timedelta(days=365), ignoreDateRestriction=True)

    assert sorted(wide) == sorted(_all_pos(sandbox))
    assert any(seed_age(po) > timedelta(days=100) for po in wide)


@pytest.mark.badinput
def test_the_misspelling_of_the_docs_prose_does_not_lift_the_limit(api: Api) -> None:
    response = api.search(datetime.now(UTC) - timedelta(days=60), ignoreDateRetriction=True)

    assert response.status_code == 400


@pytest.mark.badinput
@pytest.mark.parametrize(
    "extra",
    [
        {"ignoreDateRestriction": True},
        {"ignoreDateRestriction": True, "lastModificationStartDate": None},
        {"ignoreDateRestriction": "yes", "lastModificationStartDate": "2024-06-01T00:00:00Z"},
    ],
    ids=["no-start-even-if-ignored", "null-start", "flag-not-boolean"],
)
def test_start_is_required_and_the_flag_must_be_boolean(api: Api, extra: dict[str, object]) -> None:
    response = api.session.post(
        api.sandbox.base_url + "/api/orders/search",
        json={"workflowStatuses": ["not-started"], **extra},
        timeout=TIMEOUT,
    )

    assert response.status_code == 400
    assert response.json()["details"]


# -- the per-order status filter -------------------------------------------------------------


def test_status_filter_is_per_order_and_answers_whole_orders(api: Api) -> None:
    now = datetime.now(UTC)
    ids = _line_ids(api, PO)
    assert api.stage(PO, {ids[2]: "on-hold"}, modified=now - timedelta(hours=2)).status_code == 200
    api.stage(OTHER_PO, modified=now - timedelta(hours=1))  # modified, but all not-started
    start = now - timedelta(days=1)

    response = api.search(start, ["on-hold", "released"])

    assert response.status_code == 200
    orders = response.json()
    assert isinstance(orders, list)
    assert [o["purchaseOrderNumber"] for o in orders] == [PO]
    # The whole order, every line item and status, exactly as GET shows it.
    assert orders[0] == api.get(PO).json()
    statuses = [item["workflowStatus"] for item in orders[0]["lineItems"]]
    before = ["not-started", "not-started", "not-started", "not-started", "approved", "not-started"]
    assert statuses == [*before[:2], "on-hold", *before[3:]]
    assert api.found(start, ["approved"]) == [PO]  # any one line item is enough
    assert api.found(start, ["cancelled"]) == []
    assert api.found(start, ["not-started"]) == [PO, OTHER_PO]
    assert api.found(start, ["on-hold", "not-started"]) == [PO, OTHER_PO]


def test_search_answer_is_a_json_array_even_when_empty(api: Api) -> None:
    response = api.search(datetime.now(UTC) - timedelta(hours=1), ["released"])

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == []


# -- modification times move with status updates --------------------------------------------


def test_status_update_moves_the_order_into_the_newest_window(api: Api) -> None:
    now = datetime.now(UTC)
    target = _line_ids(api, PO)[0]
    api.stage(PO, modified=now - timedelta(days=40))
    assert PO not in api.found(now - timedelta(days=1))

    # Even setting the status it already has counts as a modification.
    assert api.put_status(PO, {target: "not-started"}).status_code == 200

    assert api.found(now - timedelta(days=1)) == [PO]
    record = api.record(PO)
    assert now <= when(record["lastModified"]) <= datetime.now(UTC)
    items = record["lineItems"]
    assert isinstance(items, list)
    touched = {item["recipeSetId"]: when(item["lastModified"]) for item in items}
    assert touched[target] == when(record["lastModified"])
    assert all(t < now for rid, t in touched.items() if rid != target)


def test_refused_or_failed_updates_leave_the_time_alone(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(fail_first={OTHER_PO: 1})
    api = Api(sandbox)
    old = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    api.stage(PO, modified=old)
    api.stage(OTHER_PO, modified=old)

    refused = api.put_status(PO, {_line_ids(api, PO)[0]: "completed", "NOPE0001": "completed"})
    failed = api.put_status(OTHER_PO, {_line_ids(api, OTHER_PO)[0]: "completed"})

    assert (refused.status_code, failed.status_code) == (409, 500)
    assert when(api.record(PO)["lastModified"]) == old
    assert when(api.record(OTHER_PO)["lastModified"]) == old
    assert api.found(datetime.now(UTC) - timedelta(days=1)) == []


# -- staging "someone else changed it since" -------------------------------------------------


def test_stage_sets_statuses_and_time_and_search_sees_them(api: Api) -> None:
    ids = _line_ids(api, PO)
    moment = datetime.now(UTC) - timedelta(days=3)

    response = api.stage(PO, {ids[0]: "delivered", ids[5]: "cancelled"}, moment)

    assert response.status_code == 200
    body = response.json()
    assert when(body["lastModified"]) == moment
    shown = {item["recipeSetId"]: item["workflowStatus"] for item in body["lineItems"]}
    assert (shown[ids[0]], shown[ids[5]], shown[ids[1]]) == (
        "delivered",
        "cancelled",
        "not-started",
    )
    assert api.found(moment - timedelta(days=1), ["cancelled"]) == [PO]
    assert api.found(moment + timedelta(seconds=1), ["cancelled"]) == []
    get_items = api.get(PO).json()["lineItems"]
    assert [i["workflowStatus"] for i in get_items][:2] == ["delivered", "not-started"]


def test_stage_without_a_time_stamps_now(api: Api) -> None:
    before = datetime.now(UTC)

    response = api.stage(PO, {_line_ids(api, PO)[1]: "approved"})

    assert response.status_code == 200
    assert before <= when(response.json()["lastModified"]) <= datetime.now(UTC)


@pytest.mark.badinput
def test_stage_is_all_or_nothing_and_names_what_is_wrong(api: Api) -> None:
    ids = _line_ids(api, PO)
    before = api.record(PO)

    missing = api.stage(PO, {ids[0]: "approved", "NOPE0001": "approved"}, datetime(2024, 1, 1))
    unknown_order = api.stage("HA-US-NOSUCHPO", {ids[0]: "approved"})
    bad_status = api.stage(PO, {ids[0]: "shipped"})
    bad_time = api.session.put(
        api.sandbox.base_url + f"/_sandbox/orders/{PO}",
        json={"lineItems": [], "lastModified": "last tuesday"},
        timeout=TIMEOUT,
    )

    assert missing.status_code == 409
    assert missing.json()["details"] == "Unable to find recipeSetReadableId(s): NOPE0001."
    assert unknown_order.status_code == 404
    assert bad_status.status_code == 400
    assert "workflowStatus" in bad_status.json()["details"]
    assert bad_time.status_code == 400
    assert "lastModified" in bad_time.json()["details"]
    assert api.record(PO) == before


@pytest.mark.security
def test_staging_needs_the_token_and_is_neither_logged_nor_throttled(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = make_sandbox(rate_limit=1)
    api = Api(sandbox)
    url = f"{sandbox.base_url}/_sandbox/orders/{PO}"

    assert requests.get(url, timeout=TIMEOUT).status_code == 403
    refused = requests.put(
        url, json={"lineItems": [], "lastModified": "2020-01-01T00:00:00Z"}, timeout=TIMEOUT
    )
    assert refused.status_code == 403
    assert when(api.record(PO)["lastModified"]) > datetime(2021, 1, 1, tzinfo=UTC)
    codes = [api.stage(PO).status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    assert sandbox.requests() == []


# -- the switches ----------------------------------------------------------------------------


def test_hiding_switch_drops_workflow_status_from_get_and_search_only(api: Api) -> None:
    now = datetime.now(UTC)
    ids = _line_ids(api, PO)
    api.stage(PO, {ids[0]: "on-hold"}, now - timedelta(hours=1))

    api.switch(expose_workflow_status=False)
    orders = api.search(now - timedelta(days=1), ["on-hold"]).json()
    read = api.get(PO).json()

    assert [o["purchaseOrderNumber"] for o in orders] == [PO]  # still filtered on status
    for answer in (orders[0], read):
        assert [i["recipeSetId"] for i in answer["lineItems"]] == ids
        assert all("workflowStatus" not in item for item in answer["lineItems"])
        assert all({"id", "skuQuantities"} <= item.keys() for item in answer["lineItems"])
    # The sandbox's own view still knows.
    items = api.record(PO)["lineItems"]
    assert isinstance(items, list)
    assert items[0]["workflowStatus"] == "on-hold"

    api.switch(expose_workflow_status=True)
    assert api.get(PO).json()["lineItems"][0]["workflowStatus"] == "on-hold"


def test_alternative_spelling_switch_renames_list_and_id_in_get_and_search(api: Api) -> None:
    now = datetime.now(UTC)
    ids = _line_ids(api, PO)
    api.stage(PO, {ids[0]: "released"}, now - timedelta(hours=1))
    documented = api.get(PO).json()

    api.switch(alternative_field_names=True)
    orders = api.search(now - timedelta(days=1), ["released"]).json()
    read = api.get(PO).json()

    assert [o["purchaseOrderNumber"] for o in orders] == [PO]
    for answer in (orders[0], read):
        assert set(answer) == {"purchaseOrderNumber", "line_items"}
        assert [i["recipeSetReadableId"] for i in answer["line_items"]] == ids
        assert all("recipeSetId" not in item for item in answer["line_items"])
        assert answer["line_items"][0]["workflowStatus"] == "released"
        # Same content, other names.
        renamed = [
            {("recipeSetId" if k == "recipeSetReadableId" else k): v for k, v in item.items()}
            for item in answer["line_items"]
        ]
        assert renamed == documented["lineItems"]

    api.switch(expose_workflow_status=False)
    both = api.search(now - timedelta(days=1), ["released"]).json()[0]
    assert all(
        set(item) == {"id", "recipeSetReadableId", "skuQuantities"} for item in both["line_items"]
    )


@pytest.mark.fault
def test_wide_search_latency_delays_only_searches_that_ignore_the_limit(
    make_sandbox: MakeSandbox,
) -> None:
    api = Api(make_sandbox(wide_search_latency_s=0.5))
    start = datetime.now(UTC) - timedelta(days=400)

    with pytest.raises(requests.Timeout):
        api.search(start, ignoreDateRestriction=True, timeout=0.2)

    assert api.search(datetime.now(UTC) - timedelta(days=30), timeout=TIMEOUT).status_code == 200
    assert api.search(start, ignoreDateRestriction=True, timeout=TIMEOUT).status_code == 200


# -- pacing and the log ----------------------------------------------------------------------


@pytest.mark.fault
def test_search_has_its_own_rate_limit(make_sandbox: MakeSandbox) -> None:
    api = Api(make_sandbox(rate_limit=2))
    start = datetime.now(UTC) - timedelta(days=1)

    codes = [api.search(start).status_code for _ in range(3)]

    assert codes == [200, 200, 403]
    assert api.get(PO).status_code == 200  # another endpoint, another budget


@pytest.mark.security
def test_search_is_logged_with_its_window_but_never_the_token(
    api: Api, sandbox: SandboxServer
) -> None:
    start = datetime(2024, 5, 1, tzinfo=UTC)
    api.stage(PO, modified=start + timedelta(days=1))

    api.search(start, ["not-started", "on-hold"], end=start + timedelta(days=2))
    api.search(start - timedelta(days=40), end=start)

    log = sandbox.requests()
    assert [(r["method"], r["path"], r["endpoint"], r["status"]) for r in log] == [
        ("POST", "/api/orders/search", "orders-search", 200),
        ("POST", "/api/orders/search", "orders-search", 400),
    ]
    assert log[0]["note"] == (
        "search 2024-05-01T00:00:00.000000Z to 2024-05-03T00:00:00.000000Z,"
        " 2 status(es): 1 order(s)"
    )
    assert log[0]["lineItemCount"] == 1
    assert "31 days" in log[1]["note"]
    assert sandbox.token not in repr(log)


# -- stores written before orders had a time -------------------------------------------------


def test_an_older_store_file_gets_order_times_from_its_line_items(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            """
            CREATE TABLE orders (purchase_order_number TEXT PRIMARY KEY);
            CREATE TABLE line_items (
                id INTEGER PRIMARY KEY, purchase_order_number TEXT NOT NULL,
                recipe_set_id TEXT NOT NULL, workflow_status TEXT NOT NULL,
                last_modified TEXT NOT NULL, UNIQUE (purchase_order_number, recipe_set_id));
            INSERT INTO orders VALUES ('PO-1');
            INSERT INTO line_items VALUES
                (1, 'PO-1', 'AAAA0001', 'on-hold', '2024-05-01T00:00:00.000000Z'),
                (2, 'PO-1', 'AAAA0002', 'not-started', '2024-05-03T00:00:00.000000Z');
            """
        )
    conn.close()

    with SandboxStore(path) as store:
        assert store.order_last_modified("PO-1") == "2024-05-03T00:00:00.000000Z"
        found = store.search(
            ["on-hold"],
            start=datetime(2024, 5, 2, tzinfo=UTC),
            end=datetime(2024, 5, 4, tzinfo=UTC),
        )
        assert [o["purchaseOrderNumber"] for o in found] == ["PO-1"]
    with SandboxStore(path) as again:  # opening twice migrates once
        assert again.order_last_modified("PO-1") == "2024-05-03T00:00:00.000000Z"


def test_explicit_seed_times_are_kept_and_the_order_takes_the_newest(tmp_path: Path) -> None:
    with SandboxStore(tmp_path / "s.sqlite3") as store:
        store.seed(
            [
                {
                    "purchaseOrderNumber": "PO-1",
                    "recipeSetId": "AAAA0001",
                    "workflowStatus": "on-hold",
                    "lastModified": "2024-05-01T10:00:00+02:00",
                },
                {
                    "purchaseOrderNumber": "PO-1",
                    "recipeSetId": "AAAA0002",
                    "workflowStatus": "approved",
                    "lastModified": "2024-04-01T00:00:00Z",
                },
            ]
        )

        assert store.order_last_modified("PO-1") == "2024-05-01T08:00:00.000000Z"
        assert store.last_modified("PO-1", "AAAA0002") == "2024-04-01T00:00:00.000000Z"
