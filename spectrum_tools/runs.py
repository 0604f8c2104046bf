"""Durable runs, the façade: send a Plan with SendOptions as a journaled run; resume a run,
retry its failures, skip what earlier runs applied; and :func:`send_updates`, the one-call
convenience on top.

I/O: the run journal (:mod:`spectrum_tools.journal`, in the runs folder), the input file
(read to hash it), and the network through the engine
(:func:`spectrum_tools.engine.run_plan`).

Every send, resume and retry goes through the same wiring (:func:`_send_recorded`): the
journal's recorder first (an order is committed as in flight before anyone else hears of
it), then the caller's observers and the progress bar; the recorder is closed however the
run ends, and a journal that could not be written raises :class:`JournalError`.

* :func:`send_plan` sends a plan as a new run (skipping what is already applied, unless
  ``force``); the CLI and the widgets send the plan they showed with it.
* :func:`resume_run` sends the orders of a run that are still pending or were in flight
  (a status PUT sets an absolute value, so re-sending an in-flight order is safe) and
  completes the same run.
* :func:`retry_failed` starts a new run, linked to the old one, with its failed orders.
* :func:`skip_applied` sets aside the orders whose every line item an earlier run already
  set to the same status on the same environment (its key, path included); resume and
  retry never send line items a later run has set since, unless ``force``.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

import pandas as pd

from spectrum_tools.client import SpectrumClient
from spectrum_tools.engine import SendOptions, SendProgress, format_duration, run_plan
from spectrum_tools.errors import ConfigError, JournalError, RunStoppedError
from spectrum_tools.journal import Journal, RunRecord, RunRecorder
from spectrum_tools.planning import Plan, Request, plan_updates
from spectrum_tools.results import OrderResult, RunObserver, RunSettings, RunStop, results_frame
from spectrum_tools.schema import LINE_ID, OUTCOME, PO, STATUS, Outcome
from spectrum_tools.sheets import read_updates

__all__ = [
    "Recording",
    "picked_run",
    "resume_run",
    "retry_failed",
    "retry_plan",
    "run_options",
    "send_plan",
    "send_updates",
    "skip_applied",
    "source_identity",
]

Source = str | Path | IO[bytes] | pd.DataFrame | Plan
_NOT_RECORDED: Final[dict[str, Any]] = {"run_id": None, "journal": None}
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recording:
    """How a new run is recorded in the journal.

    Attributes
    ----------
    runs_dir
        The runs folder (default ``./spectrum-runs``).
    force
        Send everything, even line items an earlier run already applied on this environment.
    source_name, source_hash
        What is recorded about the input (default: "Plan" and a hash of the payloads).
    parent_run
        The run this one retries.
    """

    runs_dir: str | Path | None = None
    force: bool = False
    source_name: str | None = None
    source_hash: str | None = None
    parent_run: int | None = None


# --------------------------------------------------------------------------- sending


def send_plan(
    plan: Plan,
    client: SpectrumClient,
    options: SendOptions | None = None,
    *,
    recording: Recording | None = Recording(),
    dry_run: bool = False,
    progress: bool = True,
    stop: threading.Event | None = None,
    observers: Iterable[RunObserver] = (),
) -> pd.DataFrame:
    """Send ``plan`` as a journaled run; return one row per order.

    Parameters
    ----------
    plan
        The exact plan to send (e.g. the one shown to the user).
    client
        The Spectrum environment to send to.
    options
        Pace, workers and retries (default :class:`~spectrum_tools.SendOptions`).
    recording
        How the run is recorded; None sends without a journal (and skips nothing).
    dry_run
        Send and record nothing; every sendable order gets outcome ``dry_run`` (orders
        earlier runs applied still show as ``skipped``).
    progress
        Show a progress bar with ETA (stderr in a terminal, a widget in Jupyter).
    stop
        An event another thread may set to stop the run gracefully.
    observers
        Extra hooks (see :class:`~spectrum_tools.results.RunObserver`).

    Returns
    -------
    pandas.DataFrame
        As :func:`send_updates`.

    Raises
    ------
    RunStoppedError
        The run stopped by itself (401, 403 before any success, an endless 403 streak, a
        host that does not answer): ``results`` holds the frame, unsent orders ``pending``.
    JournalError
        The run journal cannot be opened or written (the run stops).
    """
    options = options or SendOptions()
    stop = stop if stop is not None else threading.Event()
    if recording is not None and not recording.force:
        plan = skip_applied(plan, client.environment_key, runs_dir=recording.runs_dir)
    if dry_run:
        results = [
            OrderResult.unsent(r, Outcome.DRY_RUN, "not sent (dry run)") for r in plan.requests()
        ]
        return _framed(plan, results, client, None, _NOT_RECORDED)
    return _send_new(plan, client, options, recording, stop, observers, progress)


def send_updates(
    source: Source,
    client: SpectrumClient,
    options: SendOptions | None = None,
    *,
    dry_run: bool = False,
    sheet: str | None = None,
    columns: Mapping[str, str] | None = None,
    send_partial_orders: bool = False,
    progress: bool = True,
    stop: threading.Event | None = None,
    observers: Iterable[RunObserver] = (),
    runs_dir: str | Path | None = None,
    journal: bool = True,
    force: bool = False,
    **pace: Any,
) -> pd.DataFrame:
    """Read, validate, plan and send status updates; return one row per order.

    Parameters
    ----------
    source
        A path or upload (read with :func:`~spectrum_tools.read_updates`), a DataFrame of
        rows, or a ready :class:`~spectrum_tools.Plan`.
    client
        The Spectrum environment to send to.
    options
        Pace, workers and retries: a :class:`~spectrum_tools.SendOptions`. Its fields may
        also be given as keywords (``max_per_minute=60, workers=2``), not both.
    dry_run
        Send nothing; every sendable order gets outcome ``dry_run``.
    sheet, columns
        Passed to :func:`~spectrum_tools.read_updates` for a path or upload.
    send_partial_orders
        Send the valid rows of orders that have invalid rows (default: hold them back).
    progress
        Show a progress bar with ETA (stderr in a terminal, a widget in Jupyter).
    stop
        An event another thread may set to stop the run gracefully.
    observers
        Extra hooks (see :class:`~spectrum_tools.results.RunObserver`).
    runs_dir, journal
        Every send is a run recorded in the run journal of ``runs_dir`` (default
        ``./spectrum-runs``), unless ``journal=False``. Dry runs are not recorded.
    force
        Also send line items an earlier run already set to the same status on this environment
        (by default such orders are ``skipped``, "already applied by run N").

    Returns
    -------
    pandas.DataFrame
        One row per order: ``purchaseOrderNumber, outcome, http_status, details,
        line_count, missing_ids, attempts, elapsed_s, source_rows``. ``attrs`` holds
        ``host``, ``stopped`` (None, or why the run stopped early, e.g. "interrupted"),
        ``stop_reason`` (a :class:`~spectrum_tools.schema.StopReason` or None),
        ``run_id`` and ``journal`` (the journal's path; both None when not recorded).

    Raises
    ------
    SpreadsheetError
        The source cannot be read.
    ConfigError
        Both ``options`` and pace keywords, or an unknown keyword.
    RunStoppedError
        401, or 403 before any success: the token is refused or the limit was already
        used up. Its ``results`` attribute holds the frame (unsent orders ``pending``).
    JournalError
        The run journal cannot be opened or written (the run stops).
    """
    options = SendOptions.given(options, **pace)
    name, digest = source_identity(source)
    if journal and digest is None and not isinstance(source, str | Path | pd.DataFrame | Plan):
        source, digest = _replayable(source)  # an upload: read once, hashed, handed on
    if isinstance(source, Plan):
        plan = source
    else:
        rows = read_updates(source, sheet=sheet, columns=columns)
        plan = plan_updates(rows, send_partial_orders=send_partial_orders)
    recording = (
        Recording(runs_dir=runs_dir, force=force, source_name=name, source_hash=digest)
        if journal
        else None
    )
    return send_plan(
        plan,
        client,
        options,
        recording=recording,
        dry_run=dry_run,
        progress=progress,
        stop=stop,
        observers=observers,
    )


def _send_new(
    plan: Plan,
    client: SpectrumClient,
    options: SendOptions,
    recording: Recording | None,
    stop: threading.Event,
    observers: Iterable[RunObserver],
    progress: bool,
    notes: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Send ``plan`` as a new run (recorded unless ``recording`` is None)."""
    if recording is None:
        return _send_recorded(plan, client, options, None, stop, observers, progress, notes)
    with Journal(recording.runs_dir) as journal:
        recorder = journal.start_run(
            plan,
            host=client.host,
            environment=client.environment_key,
            source_name=recording.source_name or "Plan",
            source_hash=recording.source_hash or _plan_hash(plan),
            options=options,
            parent_run=recording.parent_run,
            stop=stop,
        )
        return _send_recorded(plan, client, options, recorder, stop, observers, progress, notes)


def _send_recorded(
    plan: Plan,
    client: SpectrumClient,
    options: SendOptions,
    recorder: RunRecorder | None,
    stop: threading.Event,
    observers: Iterable[RunObserver],
    progress: bool,
    notes: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The one journaled-run wiring: send, close the recorder, frame, raise if stopped.

    ``notes``: order -> text added to its result's details (e.g. the line items a resume
    left out), before any observer hears of the result.
    """
    # The journal first: an order is committed as in flight before anyone else hears of it.
    hooks: list[RunObserver] = [*([recorder] if recorder is not None else []), *observers]
    if progress:
        hooks.append(SendProgress())
    if notes:
        hooks = [_Noted(hook, notes) for hook in hooks]
    try:
        results, stopped = run_plan(plan, client, options, observers=hooks, stop=stop)
        results = [_note(r, notes) for r in results] if notes else results
    finally:
        if recorder is not None:
            _release(recorder)  # raises JournalError when the journal could not be written
    frame = _framed(plan, results, client, stopped, _recorded(recorder))
    if stopped is not None and not stopped.graceful:
        raise RunStoppedError(stopped.message, results=frame)
    return frame


class _Noted(RunObserver):
    """An observer that hears each result with its order's note added to the details."""

    def __init__(self, inner: RunObserver, notes: Mapping[str, str]) -> None:
        self.inner = inner
        self.notes = notes

    def run_started(self, plan: Plan, options: RunSettings) -> None:
        self.inner.run_started(plan, options)

    def sending(self, request: Request, attempt: int) -> None:
        self.inner.sending(request, attempt)

    def answered(
        self, request: Request, attempt: int, http_status: int | None, details: str
    ) -> None:
        self.inner.answered(request, attempt, http_status, details)

    def finished(self, result: OrderResult) -> None:
        self.inner.finished(_note(result, self.notes))

    def run_finished(self, results: list[OrderResult], stopped: RunStop | None) -> None:
        self.inner.run_finished([_note(r, self.notes) for r in results], stopped)


def _note(result: OrderResult, notes: Mapping[str, str]) -> OrderResult:
    note = notes.get(result.purchase_order)
    if not note or result.outcome is Outcome.PENDING:
        return result
    return replace(result, details=result.details + note)


def _framed(
    plan: Plan,
    results: Sequence[OrderResult],
    client: SpectrumClient,
    stopped: RunStop | None,
    recorded: Mapping[str, Any],
) -> pd.DataFrame:
    frame = results_frame(plan, results)
    _set_attrs(frame, client, stopped, recorded)
    return frame


def _set_attrs(
    frame: pd.DataFrame,
    client: SpectrumClient,
    stopped: RunStop | None,
    recorded: Mapping[str, Any],
) -> None:
    frame.attrs.update(
        host=client.host,
        stopped=stopped.message if stopped is not None else None,
        stop_reason=stopped.reason if stopped is not None else None,
        **recorded,
    )


def _recorded(recorder: RunRecorder | None) -> dict[str, Any]:
    if recorder is None:
        return dict(_NOT_RECORDED)
    return {"run_id": recorder.run_id, "journal": str(recorder.journal.path)}


def _release(recorder: RunRecorder) -> None:
    """Let go of the run; raise when the journal could not be written during it.

    Raises
    ------
    JournalError
        A journal write failed: the run was stopped, what was recorded stays.
    """
    recorder.close()
    if recorder.error is not None:
        raise JournalError(
            f"the run journal could not be written, so run {recorder.run_id} was stopped: "
            f"{recorder.error}"
        )


# --------------------------------------------------------------------------- sources


def source_identity(source: Source) -> tuple[str, str | None]:
    """The name and sha256 the journal records for an input.

    Returns
    -------
    (name, sha256)
        A path: its file name and the hash of its bytes. An upload: its name (or
        "upload") and, for bytes in memory (``io.BytesIO``), their hash; None for a
        stream (it is hashed as it is read). A DataFrame or a Plan: "DataFrame" or "Plan"
        and None (the plan's payloads are hashed when the run is recorded).

    Examples
    --------
    >>> source_identity(pd.DataFrame())
    ('DataFrame', None)
    """
    if isinstance(source, Plan):
        return "Plan", None
    if isinstance(source, pd.DataFrame):
        return "DataFrame", None
    if isinstance(source, str | Path):
        path = Path(source)
        try:
            return path.name, hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            return path.name, None  # reading it fails next, with the reader's clear message
    name = Path(str(getattr(source, "name", "") or "upload")).name
    if isinstance(source, io.BytesIO):
        return name, hashlib.sha256(source.getvalue()).hexdigest()
    return name, None


def _replayable(upload: IO[bytes]) -> tuple[IO[bytes], str]:
    """An upload read once: a fresh stream of its bytes, and their sha256."""
    data = upload.read()
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    replay = io.BytesIO(raw)
    replay.name = str(getattr(upload, "name", "") or "upload")
    return replay, hashlib.sha256(raw).hexdigest()


def _plan_hash(plan: Plan) -> str:
    digest = hashlib.sha256()
    for request in plan.requests():
        digest.update(json.dumps(request.body, sort_keys=True).encode())
        digest.update(b"\n")
    return digest.hexdigest()


# --------------------------------------------------------------------------- skip rules


def skip_applied(
    plan: Plan,
    environment: str,
    *,
    runs_dir: str | Path | None = None,
    journal: Journal | None = None,
) -> Plan:
    """Set aside as ``skipped`` the orders whose line items are all already applied there.

    An order with at least one line item not known to be applied is kept whole (the
    whole order is re-sent: a status PUT is idempotent).

    Parameters
    ----------
    plan
        The plan about to be sent.
    environment
        The environment key (``client.environment_key``): only runs to that very
        environment count, so ``https://gw/staging`` never skips for ``https://gw/prod``.
    runs_dir, journal
        Where past runs are: an open journal, or a runs folder (nothing is created when
        it has no journal yet).

    Returns
    -------
    Plan
        The plan without the skipped orders; they are in ``set_aside`` with ``details``
        naming the run(s): "already applied by run 7".
    """
    if journal is None:
        if not Journal.location(runs_dir).is_file():
            return plan
        with Journal(runs_dir) as opened:
            return skip_applied(plan, environment, journal=opened)
    if plan.request_count == 0:
        return plan
    applied = journal.applied(environment)
    if applied.empty:
        return plan
    wanted = pd.DataFrame(
        [
            (r.purchase_order, li["recipeSetReadableId"], li["workflowStatus"])
            for r in plan.requests()
            for li in r.line_items
        ],
        columns=[PO, LINE_ID, STATUS],
    )
    merged = wanted.merge(applied, on=[PO, LINE_ID, STATUS], how="left")
    done = merged.groupby(PO, sort=False)["run_id"].agg(["count", "size"])
    complete = done.index[done["count"] == done["size"]]
    if complete.empty:
        return plan
    by = merged.loc[merged[PO].isin(complete)].groupby(PO, sort=False)["run_id"]
    details = {str(po): _applied_text(sorted({int(r) for r in runs})) for po, runs in by}
    return plan.skip(details)


def _applied_text(runs: Sequence[int]) -> str:
    if len(runs) == 1:
        return f"already applied by run {runs[0]}"
    return "already applied by runs " + ", ".join(str(r) for r in runs)


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
        Also send line items later runs have set since (puts the old statuses back).

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
            record = _usable_run(journal, run_id, client, "resume")
            pending = record.results.loc[record.results[OUTCOME] == Outcome.PENDING.value, PO]
            if pending.empty and record.meta["state"] == "finished":
                recorder.close()
                return _whole_run(record.results, record, client, None)
            picked = picked_run(record) if chosen else None
            part = record.plan.only(pending.tolist())
            superseded = _Superseded.of(journal, record, part, environment, force=force)
            for result in superseded.skipped_results(part):
                recorder.finished(result)
            recorder.leave_out(superseded.left_out)
            part = superseded.apply(part)
            options = run_options(record, max_per_minute=max_per_minute, workers=workers)
        except BaseException:
            recorder.close()
            raise
        if picked is not None:
            _log.info("resuming %s", picked)
        try:
            sent = _send_recorded(
                part, client, options, recorder, stop, observers, progress, superseded.notes
            )
        except RunStoppedError as exc:
            full = _whole_run(journal.load_run(run_id).results, record, client, exc.results)
            full.attrs["picked"] = picked
            raise RunStoppedError(str(exc), results=full) from None
        full = _whole_run(journal.load_run(run_id).results, record, client, sent)
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
        Send every failed line item, superseded or already applied or not.

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
        record = _usable_run(journal, run_id, client, "retry")
        plan = retry_plan(record, include_not_found=include_not_found)
        superseded = _Superseded.of(journal, record, plan, client.environment_key, force=force)
    plan = superseded.apply(plan.skip(superseded.skipped))
    if plan.request_count == 0 and plan.set_aside.empty:
        frame = _framed(plan, [], client, None, _NOT_RECORDED)
        frame.attrs["parent_run"] = run_id
        return frame
    recording = Recording(
        runs_dir=runs_dir,
        force=force,
        source_name=record.meta["source_name"],
        source_hash=record.meta["source_hash"],
        parent_run=run_id,
    )
    options = run_options(record, max_per_minute=max_per_minute, workers=workers)
    stop = stop if stop is not None else threading.Event()
    try:
        frame = _send_new(
            plan, client, options, recording, stop, observers, progress, superseded.notes
        )
    except RunStoppedError as exc:
        if exc.results is not None:
            exc.results.attrs["parent_run"] = run_id
        raise
    frame.attrs["parent_run"] = run_id
    return frame


def retry_plan(record: RunRecord, *, include_not_found: bool = False) -> Plan:
    """The plan :func:`retry_failed` sends for a run: its ``failed`` (and ``not_found``) orders.

    Before superseded line items are taken out (see :func:`retry_failed`).

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
    orders = record.results.loc[record.results[OUTCOME].isin(wanted), PO].tolist()
    return record.plan.only(orders)


def _usable_run(journal: Journal, run_id: int, client: SpectrumClient, verb: str) -> RunRecord:
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


# --------------------------------------------------------------------------- superseded


@dataclass(frozen=True)
class _Superseded:
    """What a resume or retry of a run must not send: line items later runs set since.

    ``skipped``: order -> "superseded by run N" (nothing left to send); ``left_out``:
    order -> the line items taken out of an order that is still sent; ``notes``: order ->
    the text its result's details get.
    """

    skipped: dict[str, str]
    left_out: dict[str, tuple[str, ...]]
    notes: dict[str, str]

    @classmethod
    def of(
        cls, journal: Journal, record: RunRecord, plan: Plan, environment: str, *, force: bool
    ) -> _Superseded:
        if force or plan.request_count == 0:
            return cls({}, {}, {})
        later = journal.touched_after(record.run_id, environment)
        if later.empty:
            return cls({}, {}, {})
        by_item = {
            (str(po), str(li)): int(run)
            for po, li, run in later[[PO, LINE_ID, "run_id"]].itertuples(index=False)
        }
        skipped: dict[str, str] = {}
        left_out: dict[str, tuple[str, ...]] = {}
        notes: dict[str, str] = {}
        for request in plan.requests():
            po = request.purchase_order
            hits = {
                li["recipeSetReadableId"]: by_item[(po, li["recipeSetReadableId"])]
                for li in request.line_items
                if (po, li["recipeSetReadableId"]) in by_item
            }
            if not hits:
                continue
            runs = _runs_text(sorted(set(hits.values())))
            left_out[po] = tuple(hits)
            if len(hits) == request.line_count:
                skipped[po] = f"superseded by {runs}: not sent again (--force sends it)"
            else:
                notes[po] = f" Superseded by {runs}, not sent again: {_clipped_ids(tuple(hits))}."
        return cls(skipped, left_out, notes)

    def apply(self, plan: Plan) -> Plan:
        """``plan`` without the superseded line items and orders (a resume's part)."""
        if not self.left_out:
            return plan
        kept = [
            r.without(set(self.left_out.get(r.purchase_order, ())))
            for r in plan.requests()
            if r.purchase_order not in self.skipped
        ]
        items = [li for r in kept for li in r.line_items]
        return Plan.from_parts(
            plan.rows,
            purchase_orders=[r.purchase_order for r in kept],
            source_rows=[r.source_rows for r in kept],
            line_counts=[r.line_count for r in kept],
            ids=[li["recipeSetReadableId"] for li in items],
            statuses=[li["workflowStatus"] for li in items],
            set_aside=plan.set_aside,
            send_partial_orders=plan.send_partial_orders,
        )

    def skipped_results(self, plan: Plan) -> list[OrderResult]:
        """The ``skipped`` results of the orders left with nothing to send."""
        return [
            OrderResult.unsent(r, Outcome.SKIPPED, self.skipped[r.purchase_order])
            for r in plan.requests()
            if r.purchase_order in self.skipped
        ]


def _runs_text(runs: Sequence[int]) -> str:
    return f"run {runs[0]}" if len(runs) == 1 else "runs " + ", ".join(str(r) for r in runs)


def _clipped_ids(ids: tuple[str, ...], limit: int = 20) -> str:
    shown = ", ".join(ids[:limit])
    return shown if len(ids) <= limit else f"{shown} and {len(ids) - limit} more"


def _whole_run(
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
