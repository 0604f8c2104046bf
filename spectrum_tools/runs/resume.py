"""Taking a run up again: resume its pending orders, or retry its failures as a new run.

I/O: the run journal and the network.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from spectrum_tools.client import SpectrumClient
from spectrum_tools.engine import SendOptions, format_duration
from spectrum_tools.errors import ConfigError, JournalError, RunStoppedError
from spectrum_tools.journal import Journal, RunRecord
from spectrum_tools.planning import Plan, plan_updates
from spectrum_tools.results import RunObserver
from spectrum_tools.runs.recording import Recording
from spectrum_tools.runs.reread import reread
from spectrum_tools.runs.skip import Superseded
from spectrum_tools.runs.wiring import NOT_RECORDED, Adjustments, framed, send_new, send_recorded
from spectrum_tools.schema import LINE_ID, OUTCOME, PO, STATUS, Outcome

__all__ = [
    "expected_statuses",
    "picked_run",
    "resume_run",
    "retry_failed",
    "retry_plan",
    "run_options",
    "usable_run",
]

_log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- resume, retry


def run_options(
    record: RunRecord, *, max_per_minute: float | None = None, workers: int | None = None
) -> SendOptions:
    """The options a run was sent with, with the given pace overrides (resume, retry).

    Examples
    --------
    >>> record = RunRecord(1, {"options": {"max_per_minute": 50.0, "workers": 2}}, *[None] * 5)
    >>> options = run_options(record, workers=8)
    >>> options.max_per_minute, options.workers
    (50.0, 8)
    """
    stored = record.meta["options"]
    defaults = SendOptions()
    return replace(
        defaults,
        max_per_minute=float(
            max_per_minute or stored.get("max_per_minute", defaults.max_per_minute)
        ),
        workers=int(workers or stored.get("workers", defaults.workers)),
        max_attempts=int(stored.get("max_attempts", defaults.max_attempts)),
        retry_without_missing=bool(
            stored.get("retry_without_missing", defaults.retry_without_missing)
        ),
    )


def resume_run(
    run_id: int | None,
    client: SpectrumClient,
    *,
    runs_dir: str | Path | None = None,
    progress: bool = True,
    stop: threading.Event | None = None,
    observers: Iterable[RunObserver] = (),
    max_per_minute: float | None = None,
    workers: int | None = None,
    force: bool = False,
    read_back: bool = True,
) -> pd.DataFrame:
    """Send a run's pending and in-flight orders, and complete the same run.

    The run is locked before it is read, so two resumes of one run never send the same
    orders. A line item that a later run on the same environment has set (or may have
    set: sent, in flight) is not sent again unless ``force``: an order left with nothing
    to send ends ``skipped`` ("superseded by run N"), one with some line items left is
    sent without the superseded ones, which its ``details`` name.

    Parameters
    ----------
    run_id
        The run; None takes the most recent unfinished run on ``client``'s environment,
        and says which before sending (a log line on ``spectrum_tools.runs``, and the
        ``picked`` attr: "run 7, started 2 h 05 min ago").
    client
        Must be the run's environment (same environment key).
    runs_dir
        The runs folder (default ``./spectrum-runs``).
    progress, stop, observers
        As for :func:`send_updates`.
    max_per_minute, workers
        Override the pace the run was started with.
    force
        Also send line items later runs have set since (puts the old statuses back), and
        line items someone else changed since the run (see ``read_back``).
    read_back
        Read the current state first (default): line items already set are not sent,
        and a line item whose status is neither what Spectrum held before the run (its
        before-image) nor what the run sets was changed by someone else since: it is
        left alone and named in its order's ``details``, unless ``force``.

    Returns
    -------
    pandas.DataFrame
        The run's full results, every order of it once (not only the ones sent now);
        ``attrs``: ``host``, ``stopped``, ``stop_reason``, ``run_id``, ``journal``,
        ``picked`` (None when ``run_id`` was given).

    Raises
    ------
    JournalError
        No journal, no such run, no unfinished run, a dry run, or the run is being sent by
        another process right now.
    ConfigError
        ``client`` is another environment than the run's.
    RunStoppedError
        401, or 403 before any success; ``results`` holds the run's full results.
    """
    environment = client.environment_key
    chosen = run_id is None
    with Journal.existing(runs_dir) as journal:
        if run_id is None:
            run_id = journal.latest_unfinished(environment)
            if run_id is None:
                raise JournalError(
                    f"no unfinished run in {journal.path} to {environment}: nothing to resume"
                )
        stop = stop if stop is not None else threading.Event()
        recorder = journal.continue_run(run_id, stop=stop)  # the lock first, then read
        try:
            record = usable_run(journal, run_id, client, "resume")
            pending = record.results.loc[record.results[OUTCOME] == Outcome.PENDING.value, PO]
            if pending.empty and record.meta["state"] == "finished":
                recorder.close()
                return whole_run(record.results, record, client, None)
            picked = picked_run(record) if chosen else None
            part = record.plan.only(pending.tolist())
            superseded = Superseded.of(journal, record, part, environment, force=force)
            for result in superseded.skipped_results(part):
                recorder.finished(result)
            recorder.leave_out(superseded.left_out)
            part = superseded.apply(part)
            options = run_options(record, max_per_minute=max_per_minute, workers=workers)
            adjust = Adjustments(notes=superseded.notes)
            if read_back and part.request_count:
                again = reread(
                    part,
                    client,
                    options,
                    run_id=run_id,
                    expected=expected_statuses(record, part),
                    force=force,
                    progress=progress,
                    stop=stop,
                )
                stopped = again.preview.stopped
                if stopped is not None:  # nothing is sent on a read that did not finish
                    recorder.close()
                    full = whole_run(record.results, record, client, None)
                    full.attrs.update(stopped=stopped.message, stop_reason=stopped.reason)
                    if not stopped.graceful:
                        raise RunStoppedError(stopped.message, results=full)
                    return full
                for result in again.set_aside_results(part):
                    recorder.finished(result)
                adjust = Adjustments(
                    notes=_joined(superseded.notes, again.notes), left_out=again.preview.missing
                )
                part = again.plan
        except BaseException:
            recorder.close()
            raise
        if picked is not None:
            _log.info("resuming %s", picked)
        try:
            sent = send_recorded(
                part,
                client,
                options,
                recorder,
                stop,
                observers,
                progress,
                adjust,
            )
        except RunStoppedError as exc:
            full = whole_run(journal.load_run(run_id).results, record, client, exc.results)
            full.attrs["picked"] = picked
            raise RunStoppedError(str(exc), results=full) from None
        full = whole_run(journal.load_run(run_id).results, record, client, sent)
        full.attrs["picked"] = picked
        return full


def retry_failed(
    run_id: int,
    client: SpectrumClient,
    *,
    include_not_found: bool = False,
    runs_dir: str | Path | None = None,
    progress: bool = True,
    stop: threading.Event | None = None,
    observers: Iterable[RunObserver] = (),
    max_per_minute: float | None = None,
    workers: int | None = None,
    force: bool = False,
    read_back: bool = True,
) -> pd.DataFrame:
    """Send a run's ``failed`` orders again, as a new run linked to it (``parent_run``).

    Line items a later run on the same environment has set (or may have set) since are
    not sent again unless ``force``, as for :func:`resume_run`: an order left with
    nothing to send is ``skipped`` ("superseded by run N"). Line items already applied
    with the same status are skipped too (as for any send).

    Parameters
    ----------
    run_id
        The run whose failures to retry.
    client
        Must be the run's environment (same environment key).
    include_not_found
        Also retry ``not_found`` orders (e.g. after the missing line items were created).
    runs_dir, progress, stop, observers, max_per_minute, workers
        As for :func:`resume_run`. Other options (``retry_without_missing``, attempts)
        are the old run's.
    force
        Send every failed line item, superseded or already applied or changed since.
    read_back
        Read the current state first, as for :func:`resume_run`.

    Returns
    -------
    pandas.DataFrame
        The new run's results (only the retried orders); ``attrs``: ``host``,
        ``stopped``, ``stop_reason``, ``run_id`` (None when there was nothing to retry: no
        run is made), ``parent_run`` and ``journal``.

    Raises
    ------
    JournalError, ConfigError, RunStoppedError
        As for :func:`resume_run`.
    """
    with Journal.existing(runs_dir) as journal:
        record = usable_run(journal, run_id, client, "retry")
        plan = retry_plan(record, include_not_found=include_not_found)
        superseded = Superseded.of(journal, record, plan, client.environment_key, force=force)
    plan = superseded.apply(plan.skip(superseded.skipped))
    options = run_options(record, max_per_minute=max_per_minute, workers=workers)
    stop = stop if stop is not None else threading.Event()
    adjust = Adjustments(notes=superseded.notes)
    before_images: pd.DataFrame | None = None
    if read_back and plan.request_count:
        again = reread(
            plan,
            client,
            options,
            run_id=run_id,
            expected=expected_statuses(record, plan),
            force=force,
            progress=progress,
            stop=stop,
        )
        if again.preview.stopped is not None:
            frame = framed(plan, [], client, again.preview.stopped, NOT_RECORDED)
            frame.attrs["parent_run"] = run_id
            if not again.preview.stopped.graceful:
                raise RunStoppedError(again.preview.stopped.message, results=frame)
            return frame
        plan = again.plan
        adjust = Adjustments(
            notes=_joined(superseded.notes, again.notes), left_out=again.preview.missing
        )
        before_images = again.preview.before_images()
    if plan.request_count == 0 and plan.set_aside.empty:
        frame = framed(plan, [], client, None, NOT_RECORDED)
        frame.attrs["parent_run"] = run_id
        return frame
    recording = Recording(
        runs_dir=runs_dir,
        force=force,
        source_name=record.meta["source_name"],
        source_hash=record.meta["source_hash"],
        parent_run=run_id,
        kind="retry",
    )
    try:
        frame = send_new(
            plan,
            client,
            options,
            recording,
            stop,
            observers,
            progress,
            adjust,
            before_images,
        )
    except RunStoppedError as exc:
        if exc.results is not None:
            exc.results.attrs["parent_run"] = run_id
        raise
    frame.attrs["parent_run"] = run_id
    return frame


def retry_plan(record: RunRecord, *, include_not_found: bool = False) -> Plan:
    """The plan :func:`retry_failed` sends for a run: its ``failed`` (and ``not_found``) orders.

    Planned again from the run's own rows, so an order the run set aside without a
    request (``not_found`` after its read-back) can be retried too. Before superseded
    line items are taken out, and before the re-read (see :func:`retry_failed`).

    Examples
    --------
    >>> plan = plan_updates(pd.DataFrame({"purchaseOrderNumber": ["P1", "P2"],
    ...     "recipeSetReadableId": ["AAAA1111", "BBBB2222"], "workflowStatus": ["completed"] * 2}))
    >>> results = pd.DataFrame({"purchaseOrderNumber": ["P1", "P2"],
    ...     "outcome": ["updated", "failed"]})
    >>> record = RunRecord(1, {}, results, results, results.iloc[0:0], plan, results.iloc[0:0])
    >>> retry_plan(record).orders["purchaseOrderNumber"].tolist()
    ['P2']
    """
    wanted = [Outcome.FAILED.value] + ([Outcome.NOT_FOUND.value] if include_not_found else [])
    orders = set(record.results.loc[record.results[OUTCOME].isin(wanted), PO])
    rows = record.plan.rows
    picked = rows.loc[rows[PO].isin(orders)].reset_index(drop=True)
    return plan_updates(picked, send_partial_orders=record.plan.send_partial_orders)


def usable_run(journal: Journal, run_id: int, client: SpectrumClient, verb: str) -> RunRecord:
    record = journal.load_run(run_id)
    if record.meta["dry_run"]:
        raise JournalError(f"run {run_id} was a dry run: nothing was sent, nothing to {verb}")
    if record.meta["environment"] != client.environment_key:
        raise ConfigError(
            f"run {run_id} was sent to {record.meta['environment']}, not "
            f"{client.environment_key}: {verb} it with the base URL "
            f"{record.meta['environment']}"
        )
    return record


def picked_run(record: RunRecord) -> str:
    """ "run 7, started 2 h 05 min ago (2024-05-01 09:12 UTC)": which run, how old."""
    started = str(record.meta["started_at"])
    try:
        age = (datetime.now(UTC) - datetime.fromisoformat(started)).total_seconds()
    except ValueError:
        return f"run {record.run_id}, started {started}"
    return (
        f"run {record.run_id}, started {format_duration(max(0.0, age))} ago "
        f"({started[:16].replace('T', ' ')} UTC)"
    )


def whole_run(
    frame: pd.DataFrame, record: RunRecord, client: SpectrumClient, sent: pd.DataFrame | None
) -> pd.DataFrame:
    """A run's full results with the attrs of the session that just ended (``sent``)."""
    frame.attrs.update(
        host=client.host,
        stopped=sent.attrs.get("stopped") if sent is not None else None,
        stop_reason=sent.attrs.get("stop_reason") if sent is not None else None,
        run_id=record.run_id,
        journal=record.meta["journal"],
        picked=None,
    )
    return frame


def expected_statuses(record: RunRecord, plan: Plan) -> dict[tuple[str, str], set[str]]:
    """(order, line item) -> what a resume or retry of ``record`` may find there: its
    before-image or the run's target. Line items without a before-image have no
    expectation (nothing can be concluded about them)."""
    images = record.before_images
    before = {
        (str(po), str(i)): str(status)
        for po, i, status in images[[PO, LINE_ID, "status"]].itertuples(index=False)
        if status
    }
    lines = plan.line_items()
    return {
        (po, i): {target, before[(po, i)]}
        for po, i, target in lines[[PO, LINE_ID, STATUS]].itertuples(index=False)
        if (po, i) in before
    }


def _joined(*notes: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in notes:
        for po, text in part.items():
            out[po] = out.get(po, "") + text
    return out
