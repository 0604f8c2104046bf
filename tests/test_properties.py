"""Property-based tests (hypothesis): the pipeline's promises hold for any input.

* normalisation is idempotent (statuses, and validation as a whole);
* every valid row lands in exactly one request, and grouping never mixes orders;
* writing results, reports and per-row tables and reading them back keeps every id byte
  for byte (leading zeros, digits only, ``=``-prefixed, unicode);
* any interleaving of sending, stopping (at a random point, or ``kill -9`` of the sending
  process) and resuming ends with exactly one final outcome per order, in the journal
  as in the results, and the sandbox holding every valid line.

Examples are few and small (``max_examples`` 10-40), so the suite stays quick.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support.faultservers import check_journal, run_journaled
from support.observers import StopAfter

from spectrum_tools import (
    Journal,
    SpectrumClient,
    WorkflowStatus,
    export_csv,
    normalise_status,
    plan_updates,
    read_updates,
    resume_run,
    send_updates,
    validate_updates,
    write_report,
    write_table,
)
from spectrum_tools.sandbox import SandboxServer

pytestmark = [pytest.mark.property, pytest.mark.timeout(120)]

KEYS = ["purchaseOrderNumber", "recipeSetReadableId", "workflowStatus"]
FEW = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --------------------------------------------------------------------------- strategies

SPELLINGS = [s.value for s in WorkflowStatus] + [
    "In Progress",
    " ON_HOLD ",
    "Completed",
    "canceled",
    "not started",
    "In-Progress-Step-1",
    "shipped",
    "done",
    "",
    "compleet",
]
status_text = st.one_of(
    st.sampled_from(SPELLINGS),
    st.builds(
        lambda s, sep, case: (s.replace("-", sep)).upper() if case else s.replace("-", sep),
        st.sampled_from([s.value for s in WorkflowStatus]),
        st.sampled_from(["-", " ", "_", "  ", " - "]),
        st.booleans(),
    ),
    st.text(max_size=12),
)
po_text = st.sampled_from(["P1", "P2", " P1 ", "p1", "00123", "=P3", "P 4", "", "1.2E+07", "\tP5"])
id_text = st.sampled_from(["AAAA1111", "BBBB2222", "00000042", " CCCC3333", "DD DD", "", "=X"])

rows_frames = st.lists(st.tuples(po_text, id_text, status_text), min_size=0, max_size=25).map(
    lambda rows: pd.DataFrame(rows, columns=KEYS, dtype=object)
)

id_chars = st.characters(
    codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp"), exclude_characters="\x7f"
)
ids = st.one_of(
    st.from_regex(r"0{1,4}[0-9]{1,8}", fullmatch=True),  # leading zeros
    st.from_regex(r"[0-9]{6,20}", fullmatch=True),  # digits only, beyond float precision
    st.builds(
        lambda c, t: c + t,
        st.sampled_from(["=", "+", "-", "@", "'=", "''"]),
        st.text(id_chars, max_size=10),
    ),
    st.text(id_chars, min_size=1, max_size=16),
)


# --------------------------------------------------------------------------- normalisation


@FEW
@given(text=status_text)
def test_status_normalisation_is_idempotent(text: str) -> None:
    once = normalise_status(text)
    if once is None:
        return
    assert normalise_status(once.value) is once
    assert normalise_status(f"  {once.value.upper()}  ") is once


@FEW
@given(frame=rows_frames)
def test_validation_is_idempotent(frame: pd.DataFrame) -> None:
    once = validate_updates(frame)
    twice = validate_updates(once[[*KEYS, "source_row"]])

    assert once[KEYS].to_numpy().tolist() == twice[KEYS].to_numpy().tolist()
    assert once["valid"].tolist() == twice["valid"].tolist()
    for col in KEYS[:2]:  # trimmed: no space left at either end of a kept id
        assert all(v == v.strip() for v in once[col])


@given(core=st.from_regex(r"[A-Z0-9]{8}", fullmatch=True))
@example(core="AAAA1111")
@settings(max_examples=5, deadline=None)
def test_invisible_and_white_space_around_an_id_are_all_trimmed(core: str) -> None:
    frame = pd.DataFrame(
        {
            "purchaseOrderNumber": ["P1"],
            "recipeSetReadableId": ["\u200b \u200b" + core + "\u00a0\u200b"],
            "workflowStatus": ["completed"],
        }
    )

    out = validate_updates(frame)

    assert out.loc[0, "recipeSetReadableId"] == core


# --------------------------------------------------------------------------- planning


@FEW
@given(frame=rows_frames, partial=st.booleans())
def test_every_valid_row_lands_in_exactly_one_request_of_its_own_order(
    frame: pd.DataFrame, partial: bool
) -> None:
    validated = validate_updates(frame)
    plan = plan_updates(validated, send_partial_orders=partial)
    requests = list(plan.requests())
    by_po = {r.purchase_order: r for r in requests}

    # Grouping never mixes orders: one request per order, distinct line items in each.
    assert len(by_po) == len(requests) == plan.request_count
    for request in requests:
        line_ids = [li["recipeSetReadableId"] for li in request.line_items]
        assert len(line_ids) == len(set(line_ids)) == request.line_count > 0
        rows = validated.loc[validated["purchaseOrderNumber"] == request.purchase_order]
        sendable = rows.loc[rows["valid"]]
        wanted = set(zip(sendable["recipeSetReadableId"], sendable["workflowStatus"], strict=True))
        sent = {(li["recipeSetReadableId"], li["workflowStatus"]) for li in request.line_items}
        assert sent == wanted  # every valid row of the order, nothing of another order
        assert request.source_rows.split(",") == [str(r) for r in sendable["source_row"]]
        if not partial:
            assert rows["valid"].all()  # an order with an invalid row is held back whole

    # Every order is either sent or set aside, never both, never neither.
    aside = plan.set_aside["purchaseOrderNumber"].tolist()
    assert not set(aside) & set(by_po)
    assert sorted([*aside, *by_po]) == sorted(set(validated["purchaseOrderNumber"]))
    for po in aside:
        assert not validated.loc[validated["purchaseOrderNumber"] == po, "valid"].all() or not po


# --------------------------------------------------------------------------- write, then read


@FEW
@given(pos=st.lists(ids, min_size=1, max_size=6), line_ids=st.lists(ids, min_size=6, max_size=6))
def test_results_and_tables_keep_every_id_byte_for_byte(
    pos: list[str], line_ids: list[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("roundtrip")
    rows = pd.DataFrame(
        {
            "purchaseOrderNumber": [pos[i % len(pos)] for i in range(6)],
            "recipeSetReadableId": line_ids,
            "workflowStatus": ["completed"] * 6,
            "Notes": line_ids[::-1],
        }
    )
    for name in ("rows.csv", "rows.xlsx"):
        write_table(rows, root / name)
        back = read_updates(root / name)
        for col in [*KEYS, "Notes"]:
            assert back[col].tolist() == rows[col].tolist(), (name, col)


@FEW
@given(pos=st.lists(ids, min_size=1, max_size=4), line_ids=st.lists(ids, min_size=4, max_size=4))
def test_report_lines_read_back_as_the_rows_that_were_planned(
    pos: list[str], line_ids: list[str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("report")
    rows = pd.DataFrame(
        {
            "purchaseOrderNumber": [pos[i % len(pos)] for i in range(4)],
            "recipeSetReadableId": line_ids,
            "workflowStatus": ["completed", "on hold", "approved", "completed"],
        }
    )
    plan = plan_updates(validate_updates(rows))
    results = send_updates(
        plan,
        SpectrumClient("https://spectrum.example.com", token="t-" + "7" * 12),
        dry_run=True,
        read_back=False,  # the plan as written: the host is not real, nothing is read
        progress=False,
        journal=False,
    )
    write_report(results, root / "report.xlsx", plan=plan)
    written = export_csv(results, root / "csv", plan=plan)
    lines_csv = next(p for p in written if p.name.endswith("lines.csv"))

    for path in (root / "report.xlsx", lines_csv):
        back = read_updates(path)  # finds the Lines sheet without being told
        assert back["purchaseOrderNumber"].tolist() == plan.rows["purchaseOrderNumber"].tolist()
        assert back["recipeSetReadableId"].tolist() == plan.rows["recipeSetReadableId"].tolist()
    assert sorted(results["purchaseOrderNumber"]) == sorted(set(plan.rows["purchaseOrderNumber"]))


# --------------------------------------------------------------------------- crash and resume

TARGET = "delivered"  # no line item of the sample store has this status yet


@pytest.fixture(scope="module")
def shared_sandbox(tmp_path_factory: pytest.TempPathFactory) -> SandboxServer:
    from spectrum_tools.sandbox import SandboxSettings

    server = SandboxServer(
        tmp_path_factory.mktemp("sandbox") / "store.sqlite3",
        settings=SandboxSettings(rate_limit=None),
    ).start()
    yield server  # type: ignore[misc]
    server.stop()


def _sheet(sandbox: SandboxServer, n_orders: int) -> pd.DataFrame:
    lines = sandbox.store.line_statuses()
    wanted = list(dict.fromkeys(lines["purchaseOrderNumber"]))[:n_orders]
    picked = lines.loc[lines["purchaseOrderNumber"].isin(wanted)]
    return pd.DataFrame(
        {
            "purchaseOrderNumber": picked["purchaseOrderNumber"].tolist(),
            "recipeSetReadableId": picked["recipeSetId"].tolist(),
            "workflowStatus": TARGET,
        }
    )


def _applied(sandbox: SandboxServer, sheet: pd.DataFrame) -> dict[str, bool]:
    store = sandbox.store.line_statuses().set_index(["purchaseOrderNumber", "recipeSetId"])
    now = store.loc[
        list(zip(sheet["purchaseOrderNumber"], sheet["recipeSetReadableId"], strict=True)),
        "workflowStatus",
    ]
    same = pd.Series(now.to_numpy() == TARGET, index=sheet["purchaseOrderNumber"])
    return same.groupby(level=0).all().to_dict()


def _answered_200(sandbox: SandboxServer) -> set[str]:
    return {
        r["purchaseOrderNumber"]
        for r in sandbox.requests()
        if r["endpoint"] == "order-status" and r["status"] == 200
    }


def _check_step(
    results: pd.DataFrame, sandbox: SandboxServer, sheet: pd.DataFrame, runs: Path
) -> None:
    """After any send or resume: one outcome per order, journal agrees, store agrees."""
    record = check_journal(results, runs)
    got = dict(zip(record.results["purchaseOrderNumber"], record.results["outcome"], strict=True))
    assert sorted(got) == sorted(set(sheet["purchaseOrderNumber"]))
    assert set(got.values()) <= {"updated", "pending"}
    applied, answered = _applied(sandbox, sheet), _answered_200(sandbox)
    for po, outcome in got.items():
        if outcome == "updated":
            assert applied[po] and po in answered, po
        else:
            assert not applied[po] and po not in answered, f"{po} pending but applied"


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    n_orders=st.integers(min_value=2, max_value=8),
    stops=st.lists(st.integers(min_value=0, max_value=8), min_size=0, max_size=3),
    workers=st.integers(min_value=1, max_value=3),
)
def test_send_stop_resume_in_any_order_ends_with_one_outcome_per_order(
    shared_sandbox: SandboxServer,
    tmp_path_factory: pytest.TempPathFactory,
    n_orders: int,
    stops: list[int],
    workers: int,
) -> None:
    sandbox = shared_sandbox
    sandbox.store.reset()
    sandbox.store.load_orders(Path(__file__).parents[1] / "sample_data" / "spectrum_orders.csv")
    sandbox.clear_requests()
    sheet = _sheet(sandbox, n_orders)
    client = SpectrumClient(sandbox.base_url, token=sandbox.token)
    runs = tmp_path_factory.mktemp("props-runs")  # one per example, under pytest's basetemp

    # The first send, stopped after a random number of orders (0: before any).
    first_stop = stops[0] if stops else None
    stop = threading.Event()
    if first_stop == 0:
        stop.set()
    observers = [StopAfter(first_stop, stop.set)] if first_stop else []
    results = run_journaled(
        plan_updates(sheet), client, runs, stop=stop, observers=observers, workers=workers
    )
    run_id = results.attrs["run_id"]
    _check_step(results, sandbox, sheet, runs)

    # Resumes, each stopped at a random point, then one that goes to the end.
    for k in [*stops[1:], None]:
        stop = threading.Event()
        observers = [StopAfter(k, stop.set)] if k else []
        if k == 0:
            stop.set()
        results = resume_run(
            run_id, client, runs_dir=runs, progress=False, stop=stop, observers=observers,
            max_per_minute=60_000, workers=workers,
        )  # fmt: skip
        _check_step(results, sandbox, sheet, runs)

    assert set(results["outcome"]) == {"updated"}
    assert all(_applied(sandbox, sheet).values())
    with Journal.existing(runs) as journal:
        assert journal.runs()["state"].tolist() == ["finished"]
        attempts = journal.load_run(run_id).attempts
    # Nothing was sent twice: one attempt per order over every session.
    assert attempts.groupby("purchaseOrderNumber").size().eq(1).all()


_SENDER = textwrap.dedent(
    """
    import sys
    import pandas as pd
    from spectrum_tools import SpectrumClient, send_updates
    from spectrum_tools.results import RunObserver

    class Say(RunObserver):
        def finished(self, result):
            print("DONE", result.purchase_order, flush=True)

    url, token, runs, sheet = sys.argv[1:5]
    send_updates(
        pd.read_csv(sheet, dtype=str), SpectrumClient(url, token=token), runs_dir=runs,
        max_per_minute=240, workers=2, progress=False, observers=[Say()],
        read_back=False,  # killed during the status updates themselves
    )
    print("FINISHED", flush=True)
    """
)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kill_after", [1, 4])
def test_kill_9_mid_run_then_resume_ends_with_one_outcome_per_order(
    shared_sandbox: SandboxServer, tmp_path: Path, kill_after: int
) -> None:
    sandbox = shared_sandbox
    sandbox.store.reset()
    sandbox.store.load_orders(Path(__file__).parents[1] / "sample_data" / "spectrum_orders.csv")
    sandbox.clear_requests()
    sheet = _sheet(sandbox, 10)
    sheet.to_csv(tmp_path / "sheet.csv", index=False)
    runs = tmp_path / "runs"

    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _SENDER,
            sandbox.base_url,
            sandbox.token,
            str(runs),
            str(tmp_path / "sheet.csv"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        done = 0
        assert proc.stdout is not None
        for line in proc.stdout:
            assert not line.startswith("FINISHED"), "the run ended before it could be killed"
            done += line.startswith("DONE")
            if done >= kill_after:
                os.kill(proc.pid, signal.SIGKILL)
                break
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL

    with Journal.existing(runs) as journal:
        crashed = journal.load_run(1)
    at_kill = dict(
        zip(crashed.results["purchaseOrderNumber"], crashed.results["outcome"], strict=True)
    )
    assert sum(o == "updated" for o in at_kill.values()) >= kill_after  # nothing answered is lost
    assert "pending" in at_kill.values()
    assert crashed.meta["state"] == "unfinished"
    applied, answered = _applied(sandbox, sheet), _answered_200(sandbox)
    for po, outcome in at_kill.items():
        if outcome == "updated":
            assert applied[po] and po in answered
        elif "in flight" not in str(
            crashed.results.set_index("purchaseOrderNumber").loc[po, "details"]
        ):
            assert po not in answered, f"{po}: never sent says the journal, yet answered"

    client = SpectrumClient(sandbox.base_url, token=sandbox.token)
    results = resume_run(
        None, client, runs_dir=runs, progress=False, max_per_minute=60_000, read_back=False
    )

    _check_step(results, sandbox, sheet, runs)
    assert set(results["outcome"]) == {"updated"}
    assert all(_applied(sandbox, sheet).values())
    resent = [r["purchaseOrderNumber"] for r in sandbox.requests() if r["status"] == 200]
    # Only orders without a recorded answer went out twice (in flight at the kill).
    twice = {po for po in resent if resent.count(po) > 1}
    assert twice <= {po for po, o in at_kill.items() if o == "pending"}
