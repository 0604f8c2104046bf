"""Issue 11, the engine's part: every missing id used and re-sent without until the order
goes through, a stop during a retry wait leaves the order pending, and Stop/Ctrl-C wait at
most one request deadline for requests in flight.

Against the real sandbox and the raw-socket fault servers of tests/support; the engine is
driven through the public API (``send_updates``, ``send_plan``, ``resume_run``).
"""

from __future__ import annotations

import _thread
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import requests
from support.faultservers import (
    Action,
    Hang,
    Hit,
    Reply,
    fault_servers,
    ok,
    run_journaled,
    update_rows,
)
from support.observers import StopAfter
from support.sandboxes import NEW, order_numbers, send, sheet, store_statuses

from spectrum_tools import Journal, SpectrumClient, resume_run
from spectrum_tools.engine.pool import run_workers
from spectrum_tools.engine.sending import DETAILS_MAX
from spectrum_tools.planning import Request, plan_updates
from spectrum_tools.results import RunObserver
from spectrum_tools.sandbox import SandboxServer

TOKEN = "engine-test-token"


# -- #7: missing ids ---------------------------------------------------------------------------


@pytest.mark.fault
def test_eighty_unknown_ids_are_all_reported_and_the_real_line_item_is_set(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    po = order_numbers(sandbox, 1)[0]
    real = sheet(sandbox, [po]).iloc[:1]
    unknown = [f"NOSUCH{n:02d}" for n in range(80)]
    rows = pd.concat(
        [
            real,
            pd.DataFrame(
                {"purchaseOrderNumber": po, "recipeSetReadableId": unknown, "workflowStatus": NEW}
            ),
        ],
        ignore_index=True,
    )

    results = send(rows, sandbox, runs, retry_without_missing=True)

    row = results.set_index("purchaseOrderNumber").loc[po]
    assert row["outcome"] == "partial", row["details"]  # before: not_found
    assert row["missing_ids"].split(",") == unknown  # before: 46 of the 80
    assert store_statuses(sandbox)[(po, real["recipeSetReadableId"].iat[0])] == NEW
    assert len(row["details"]) <= DETAILS_MAX
    with Journal(runs) as journal:
        stored = journal.load_run(results.attrs["run_id"]).results.set_index("purchaseOrderNumber")
    assert stored.at[po, "details"] == row["details"]
    assert stored.at[po, "missing_ids"] == row["missing_ids"]


def _names_ten_at_a_time(hit: Hit) -> Action:
    """A server whose 404 names at most ten unknown ids per answer."""
    ids = [i["recipeSetReadableId"] for i in json.loads(hit.body)["lineItems"]]
    unknown = [i for i in ids if i.startswith("NOSUCH")]
    if not unknown:
        return ok(hit)
    details = "Unable to find recipeSetReadableId(s): " + ", ".join(unknown[:10]) + "."
    return Reply(
        404, {"purchaseOrderNumber": hit.purchase_order, "status": "Error", "details": details}
    )


@pytest.mark.fault
def test_resends_without_missing_ids_until_the_order_goes_through(tmp_path: Path) -> None:
    rows = pd.DataFrame(
        {
            "purchaseOrderNumber": "PO-M0001",
            "recipeSetReadableId": ["REAL0001", *(f"NOSUCH{n:02d}" for n in range(35))],
            "workflowStatus": "completed",
        }
    )
    plan = plan_updates(rows)
    with fault_servers(_names_ten_at_a_time) as (server,):
        client = SpectrumClient(server.base_url, token=TOKEN)
        results = run_journaled(plan, client, tmp_path / "runs", retry_without_missing=True)
        hits = server.hits

    row = results.iloc[0]
    assert row["outcome"] == "partial", row["details"]  # before: not_found after 2 tries
    assert len(row["missing_ids"].split(",")) == 35
    assert len(hits) == 5  # 35 unknown, 10 named per answer: 4 answers, then the update
    assert json.loads(hits[-1].body)["lineItems"] == [
        {"recipeSetReadableId": "REAL0001", "workflowStatus": "completed"}
    ]


# -- #8: a stop during a retry wait ------------------------------------------------------------


class _OnAnswer(RunObserver):
    """Does ``action`` once, when an attempt is answered with ``status``."""

    def __init__(self, status: int, action: Callable[[], object]) -> None:
        self.status = status
        self.action = action
        self._once = threading.Lock()

    def answered(
        self, request: Request, attempt: int, http_status: int | None, details: str
    ) -> None:
        if http_status == self.status and self._once.acquire(blocking=False):
            self.action()


def _first_503(hit: Hit) -> Action:
    return Reply(503, {"status": "Error", "details": "busy"}) if hit.attempt == 1 else ok(hit)


@pytest.mark.fault
@pytest.mark.parametrize("how", ["stop", "ctrl-c"])
def test_a_stop_during_a_retry_wait_leaves_the_order_pending_and_resume_sends_it(
    how: str, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    plan = plan_updates(update_rows(1))
    stop = threading.Event()
    action = stop.set if how == "stop" else _thread.interrupt_main
    with fault_servers(_first_503) as (server,):
        client = SpectrumClient(server.base_url, token=TOKEN)
        started = time.monotonic()
        results = run_journaled(
            plan,
            client,
            runs,
            stop=stop,
            observers=[_OnAnswer(503, action)],
            backoff_s=60.0,
            backoff_max_s=60.0,
        )
        took = time.monotonic() - started
        row = results.iloc[0]
        assert row["outcome"] == "pending", row["details"]  # before: failed
        assert row["attempts"] == 1
        assert "no definitive answer" in row["details"]
        assert took < 30  # the 60 s backoff was cut short by the stop

        resumed = resume_run(results.attrs["run_id"], client, runs_dir=runs, progress=False)
        assert resumed["outcome"].tolist() == ["updated"]  # before: not sent (failed)
        assert server.answered_ok(row["purchaseOrderNumber"])


@pytest.mark.fault
def test_ctrl_c_while_the_workers_start_stops_the_run_and_never_escapes() -> None:
    # The first worker is interrupted at once, while the main thread is still starting the
    # others: before, the KeyboardInterrupt escaped from Thread.start() every time, with
    # requests in flight and no outcome for them.
    for _ in range(20):
        first = threading.Lock()
        stop = threading.Event()
        finished = []

        def work(first: threading.Lock = first, finished: list[int] = finished) -> None:
            if first.acquire(blocking=False):
                _thread.interrupt_main()
            finished.append(1)

        run_workers(
            16,
            work,
            name="probe",
            on_interrupt=stop.set,
            on_crash=lambda exc: None,
            stop=stop,
            drain_s=5.0,
        )

        assert stop.is_set()  # the run was told to stop
        assert len(finished) == 16  # and waited for every worker


# -- #5: Stop and Ctrl-C wait at most one deadline -------------------------------------------


@pytest.mark.fault
@pytest.mark.parametrize("how", ["stop", "ctrl-c"])
def test_stop_waits_at_most_one_deadline_for_a_request_in_flight(how: str, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    plan = plan_updates(update_rows(3))
    stop = threading.Event()

    def hang_first(hit: Hit) -> Action:
        return Hang(20.0) if hit.n == 0 else ok(hit)

    action = stop.set if how == "stop" else _thread.interrupt_main
    with fault_servers(hang_first, max_hold_s=20.0) as (server,):
        # An injected session: the client cannot watch its sockets, so nothing but the
        # engine bounds this request (the server holds it 20 s, the read timeout is 25 s).
        client = SpectrumClient(
            server.base_url,
            token=TOKEN,
            timeout=(2.0, 25.0),
            deadline=1.0,
            session=requests.Session(),
        )
        started = time.monotonic()
        results = run_journaled(
            plan,
            client,
            runs,
            workers=1,
            stop=stop,
            observers=[StopAfter(1, action, when="sending")],
        )
        took = time.monotonic() - started

        assert took < 8, took  # before: the 20 s the server held the request
        row = results.iloc[0]
        assert row["outcome"] == "pending"
        assert row["details"].startswith("in flight when the run stopped")
        assert (results["outcome"] == "pending").all()
        with Journal(runs) as journal:
            table = journal.runs()
        assert table.at[0, "in_flight"] == 1
        assert table.at[0, "state"] in ("stopped", "interrupted")
