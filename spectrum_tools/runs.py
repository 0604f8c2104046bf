"""Durable runs: journaled sends, resuming a run, retrying its failures, skipping what is applied.

I/O: the run journal (:mod:`spectrum_tools.journal`, in the runs folder), the input file
(read once more to hash it), and the network through
:func:`spectrum_tools.dispatch.send_updates`.

* :class:`JournaledSend` is what :func:`~spectrum_tools.dispatch.send_updates` uses to make
  every send a run: it names and hashes the input, skips what earlier runs already
  applied, records the plan, and hands dispatch the journal's observer.
* :func:`resume_run` sends the orders of a run that are still pending or were in flight
  (a status PUT sets an absolute value, so re-sending an in-flight order is safe) and
  completes the same run.
* :func:`retry_failed` starts a new run, linked to the old one, with its failed orders.
* :func:`skip_applied` sets aside the orders whose every line item an earlier run already
  set to the same status on the same host.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from spectrum_tools.client import SpectrumClient
from spectrum_tools.dispatch import DispatchObserver, SendOptions, results_frame, send_updates
from spectrum_tools.errors import ConfigError, JournalError, RunStoppedError
from spectrum_tools.journal import Journal, RunRecord, RunRecorder
from spectrum_tools.planning import Plan
from spectrum_tools.schema import LINE_COUNT, LINE_ID, OUTCOME, PO, SOURCE_ROWS, STATUS, Outcome

__all__ = [
    "JournaledSend",
    "resume_run",
    "retry_failed",
    "retry_plan",
    "skip_applied",
    "source_identity",
]

_SourceArg = str | Path | IO[bytes] | pd.DataFrame | Plan


def source_identity(source: _SourceArg) -> tuple[str, str | None]:
    """The name and sha256 the journal records for an input.

    Returns
    -------
    (name, sha256)
        A path: its file name and the hash of its bytes. An upload: its name (or
        "upload") and None (see :meth:`JournaledSend.read_source`). A DataFrame or a
        Plan: "DataFrame" or "Plan" and None (the plan's payloads are hashed later).

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
    return Path(str(getattr(source, "name", "") or "upload")).name, None


def _plan_hash(plan: Plan) -> str:
    digest = hashlib.sha256()
    for request in plan.requests():
        digest.update(json.dumps(request.body, sort_keys=True).encode())
        digest.update(b"\n")
    return digest.hexdigest()


class JournaledSend:
    """Makes one send a recorded run (used by :func:`~spectrum_tools.send_updates`).

    Call :meth:`read_source`, then :meth:`begin` with the plan, pass :attr:`observers`
    to dispatch, set :attr:`attrs` on the results, and call :meth:`finish`.

    Parameters
    ----------
    client
        The environment: its host is recorded and decides what counts as applied.
    runs_dir
        The runs folder (default ``./spectrum-runs``).
    force
        Send everything, even line items an earlier run already applied.
    source_name, source_hash
        Override what is recorded about the input (e.g. the CLI passes the file's).
    parent_run
        The run this one retries.
    """

    def __init__(
        self,
        client: SpectrumClient,
        *,
        runs_dir: str | Path | None = None,
        force: bool = False,
        source_name: str | None = None,
        source_hash: str | None = None,
        parent_run: int | None = None,
    ) -> None:
        self.host = client.host
        self.runs_dir = runs_dir
        self.force = force
        self.source_name = source_name
        self.source_hash = source_hash
        self.parent_run = parent_run
        self.recorder: RunRecorder | None = None
        self._journal: Journal | None = None

    def read_source(self, source: _SourceArg) -> _SourceArg:
        """Name and hash the input; an upload is read once here and handed on as bytes."""
        name, digest = source_identity(source)
        if not isinstance(source, str | Path | pd.DataFrame | Plan):
            data = source.read()
            raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
            digest = hashlib.sha256(raw).hexdigest()
            replay = io.BytesIO(raw)
            replay.name = str(getattr(source, "name", "") or "upload")
            source = replay
        self.source_name = self.source_name or name
        self.source_hash = self.source_hash or digest
        return source

    def begin(
        self,
        plan: Plan,
        options: SendOptions,
        *,
        dry_run: bool = False,
        stop: threading.Event | None = None,
    ) -> Plan:
        """Skip what is already applied (unless ``force``) and record the run.

        A dry run is not recorded (it sends nothing), but it shows what would be skipped.
        Returns the plan to send.
        """
        if dry_run:
            return plan if self.force else skip_applied(plan, self.host, runs_dir=self.runs_dir)
        journal = Journal(self.runs_dir)
        try:
            if not self.force:
                plan = skip_applied(plan, self.host, journal=journal)
            recorder = journal.start_run(
                plan,
                host=self.host,
                source_name=self.source_name or "Plan",
                source_hash=self.source_hash or _plan_hash(plan),
                options=options,
                parent_run=self.parent_run,
                stop=stop,
            )
        except BaseException:
            journal.close()
            raise
        self.recorder, self._journal = recorder, journal
        return plan

    @property
    def observers(self) -> list[DispatchObserver]:
        """The journal's recorder (first, so it commits before other observers run)."""
        return [self.recorder] if self.recorder is not None else []

    @property
    def attrs(self) -> dict[str, Any]:
        """``run_id`` and ``journal`` (the database path) for the results' ``attrs``."""
        if self.recorder is None:
            return {"run_id": None, "journal": None}
        return {"run_id": self.recorder.run_id, "journal": str(self.recorder.journal.path)}

    def finish(self) -> None:
        """Release the run; raise when the journal could not be written during it.

        Raises
        ------
        JournalError
            A journal write failed: the run was stopped, what was recorded stays.
        """
        recorder = self.recorder
        if recorder is None:
            return
        recorder.close()
        if self._journal is not None:
            self._journal.close()
        if recorder.error is not None:
            raise JournalError(
                f"the run journal could not be written, so run {recorder.run_id} was stopped: "
                f"{recorder.error}"
            )


def skip_applied(
    plan: Plan,
    host: str,
    *,
    runs_dir: str | Path | None = None,
    journal: Journal | None = None,
) -> Plan:
    """Set aside as ``skipped`` the orders whose line items are all already applied on ``host``.

    An order with at least one line item not known to be applied is kept whole (the
    whole order is re-sent: a status PUT is idempotent).

    Parameters
    ----------
    plan
        The plan about to be sent.
    host
        The environment's host (``client.host``).
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
            return skip_applied(plan, host, journal=opened)
    if plan.request_count == 0:
        return plan
    applied = journal.applied(host)
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


def resume_run(
    run_id: int | None,
    client: SpectrumClient,
    *,
    runs_dir: str | Path | None = None,
    progress: bool = True,
    stop: threading.Event | None = None,
    observers: Iterable[DispatchObserver] = (),
    max_per_minute: float | None = None,
    workers: int | None = None,
) -> pd.DataFrame:
    """Send a run's pending and in-flight orders, and complete the same run.

    Parameters
    ----------
    run_id
        The run; None takes the most recent unfinished run of the runs folder.
    client
        Must be the run's environment (same host).
    runs_dir
        The runs folder (default ``./spectrum-runs``).
    progress, stop, observers
        As for :func:`~spectrum_tools.send_updates`.
    max_per_minute, workers
        Override the pace the run was started with.

    Returns
    -------
    pandas.DataFrame
        The run's full results, every order of it once (not only the ones sent now);
        ``attrs``: ``host``, ``stopped``, ``run_id``, ``journal``.

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
    with Journal.existing(runs_dir) as journal:
        if run_id is None:
            run_id = journal.latest_unfinished()
            if run_id is None:
                raise JournalError(f"no unfinished run in {journal.path}: nothing to resume")
        record = _usable_run(journal, run_id, client, "resume")
        pending = record.results.loc[record.results[OUTCOME] == Outcome.PENDING.value, PO]
        if pending.empty and record.meta["state"] == "finished":
            return _with_attrs(record.results, record, client, None)
        stop = stop if stop is not None else threading.Event()
        recorder = journal.continue_run(run_id, stop=stop)
        stopped: RunStoppedError | None = None
        try:
            partial = send_updates(
                _only_orders(record.plan, pending.tolist()),
                client,
                journal=False,
                progress=progress,
                stop=stop,
                observers=[recorder, *observers],
                **_pace(record, max_per_minute, workers),
            )
            reason = partial.attrs.get("stopped")
        except RunStoppedError as exc:
            stopped, reason = exc, str(exc)
        finally:
            recorder.close()
        _check(recorder)
        full = _with_attrs(journal.load_run(run_id).results, record, client, reason)
    if stopped is not None:
        raise RunStoppedError(str(stopped), results=full) from None
    return full


def retry_failed(
    run_id: int,
    client: SpectrumClient,
    *,
    include_not_found: bool = False,
    runs_dir: str | Path | None = None,
    progress: bool = True,
    stop: threading.Event | None = None,
    observers: Iterable[DispatchObserver] = (),
    max_per_minute: float | None = None,
    workers: int | None = None,
) -> pd.DataFrame:
    """Send a run's ``failed`` orders again, as a new run linked to it (``parent_run``).

    Parameters
    ----------
    run_id
        The run whose failures to retry.
    client
        Must be the run's environment (same host).
    include_not_found
        Also retry ``not_found`` orders (e.g. after the missing line items were created).
    runs_dir, progress, stop, observers, max_per_minute, workers
        As for :func:`resume_run`. Other options (``retry_without_missing``, attempts)
        are the old run's. Line items already applied since are skipped.

    Returns
    -------
    pandas.DataFrame
        The new run's results (only the retried orders); ``attrs``: ``host``,
        ``stopped``, ``run_id`` (None when there was nothing to retry: no run is made),
        ``parent_run`` and ``journal``.

    Raises
    ------
    JournalError, ConfigError, RunStoppedError
        As for :func:`resume_run`.
    """
    with Journal.existing(runs_dir) as journal:
        record = _usable_run(journal, run_id, client, "retry")
    plan = retry_plan(record, include_not_found=include_not_found)
    if plan.request_count == 0:
        frame = results_frame(plan, [])
        frame.attrs.update(host=client.host, stopped=None, run_id=None, journal=None)
        frame.attrs["parent_run"] = run_id
        return frame
    durable = JournaledSend(
        client,
        runs_dir=runs_dir,
        source_name=record.meta["source_name"],
        source_hash=record.meta["source_hash"],
        parent_run=run_id,
    )
    stop = stop if stop is not None else threading.Event()
    pace = _pace(record, max_per_minute, workers)
    options = SendOptions(**pace)
    plan = durable.begin(plan, options, stop=stop)
    try:
        frame = send_updates(
            plan,
            client,
            journal=False,
            progress=progress,
            stop=stop,
            observers=[*durable.observers, *observers],
            **pace,
        )
    except RunStoppedError as exc:
        exc.results.attrs.update(durable.attrs, parent_run=run_id)
        durable.finish()
        raise
    frame.attrs.update(durable.attrs, parent_run=run_id)
    durable.finish()
    return frame


def retry_plan(record: RunRecord, *, include_not_found: bool = False) -> Plan:
    """The plan :func:`retry_failed` sends for a run: its ``failed`` (and ``not_found``) orders.

    Examples
    --------
    >>> from spectrum_tools.planning import plan_updates
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
    return _only_orders(record.plan, orders)


def _usable_run(journal: Journal, run_id: int, client: SpectrumClient, verb: str) -> RunRecord:
    record = journal.load_run(run_id)
    if record.meta["dry_run"]:
        raise JournalError(f"run {run_id} was a dry run: nothing was sent, nothing to {verb}")
    if record.meta["host"] != client.host:
        raise ConfigError(
            f"run {run_id} was sent to {record.meta['host']}, not {client.host}: "
            f"{verb} it with the base URL of {record.meta['host']}"
        )
    return record


def _pace(record: RunRecord, max_per_minute: float | None, workers: int | None) -> dict[str, Any]:
    """The old run's options as ``send_updates`` keywords, with the given overrides."""
    stored = record.meta["options"]
    defaults = SendOptions()
    return {
        "max_per_minute": float(
            max_per_minute or stored.get("max_per_minute", defaults.max_per_minute)
        ),
        "workers": int(workers or stored.get("workers", defaults.workers)),
        "max_attempts": int(stored.get("max_attempts", defaults.max_attempts)),
        "retry_without_missing": bool(
            stored.get("retry_without_missing", defaults.retry_without_missing)
        ),
    }


def _check(recorder: RunRecorder) -> None:
    if recorder.error is not None:
        raise JournalError(
            f"the run journal could not be written, so run {recorder.run_id} was stopped: "
            f"{recorder.error}"
        )


def _with_attrs(
    frame: pd.DataFrame, record: RunRecord, client: SpectrumClient, stopped: str | None
) -> pd.DataFrame:
    frame.attrs.update(
        host=client.host, stopped=stopped, run_id=record.run_id, journal=record.meta["journal"]
    )
    return frame


def _only_orders(plan: Plan, purchase_orders: Sequence[str]) -> Plan:
    """A plan holding only the given orders' requests and rows, nothing set aside.

    Built through Plan's dataclass constructor, as :meth:`Plan.skip` does with ``replace``.
    """
    wanted = set(purchase_orders)
    picked = [r for r in plan.requests() if r.purchase_order in wanted]
    sizes = np.array([r.line_count for r in picked], dtype=np.int64)
    items = [li for r in picked for li in r.line_items]
    return Plan(
        rows=plan.rows.loc[plan.rows[PO].isin(wanted)].reset_index(drop=True),
        orders=pd.DataFrame(
            {
                PO: pd.Series([r.purchase_order for r in picked], dtype=object),
                LINE_COUNT: sizes,
                SOURCE_ROWS: pd.Series([r.source_rows for r in picked], dtype=object),
            }
        ),
        set_aside=plan.set_aside.iloc[0:0].copy(),
        send_partial_orders=plan.send_partial_orders,
        _ids=np.array([li["recipeSetReadableId"] for li in items], dtype=object),
        _statuses=np.array([li["workflowStatus"] for li in items], dtype=object),
        _bounds=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
    )
