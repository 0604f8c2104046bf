"""Recording a run as it goes: a new run with its whole plan, then every attempt and outcome.

I/O: writes the journal database and takes the run's OS lock (see
:mod:`spectrum_tools.journal.locks`). An order is marked in flight *before* its request goes
out (:meth:`RunRecorder.sending`) and its outcome is committed as soon as it is known
(:meth:`RunRecorder.finished`): after a crash the journal says which orders are done, which
failed, and which were in flight or never sent. Never given the API token.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from spectrum_tools.engine import SendOptions
from spectrum_tools.errors import JournalError
from spectrum_tools.journal.codec import rows_to_json
from spectrum_tools.journal.database import Database
from spectrum_tools.journal.locks import RunLock
from spectrum_tools.journal.schema import (
    DONE,
    FINISHED,
    IN_FLIGHT,
    INTERRUPTED,
    PENDING,
    RUNNING,
    STOPPED,
    legacy_environment,
    now,
)
from spectrum_tools.planning import Plan, Request
from spectrum_tools.results import OrderResult, RunObserver, RunSettings, RunStop
from spectrum_tools.schema import (
    DETAILS,
    LINE_COUNT,
    LINE_ID,
    MISSING_IDS,
    OUTCOME,
    PO,
    SOURCE_ROWS,
    Outcome,
    StopReason,
)
from spectrum_tools.version import __version__

__all__ = ["RunRecorder", "continue_run", "meta_row", "start_run"]


class RunRecorder(RunObserver):
    """Writes one run into the journal as the engine sends. Get one from :func:`start_run`.

    Every hook commits before it returns, so what it recorded survives the process
    being killed right after. :meth:`sending` raises :class:`JournalError` when it cannot
    record (the request then does not go out); the other hooks keep the first error in
    :attr:`error`, set ``stop`` so no new request starts, and return.

    Attributes
    ----------
    run_id
        The run being recorded.
    error
        The first journal write that failed, or None.
    """

    def __init__(
        self,
        journal: Database,
        run_id: int,
        session: int | None,
        lock: RunLock,
        *,
        stop: threading.Event | None = None,
    ) -> None:
        self.run_id = run_id
        self.journal = journal
        self.error: Exception | None = None
        self.stop = stop
        self._session = session or 0  # None: a resumed run, its session starts with the run
        self._resuming = session is None
        self._lock = lock
        self._open: dict[tuple[str, int], int] = {}
        self._guard = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"<RunRecorder run {self.run_id} in {self.journal.path}>"

    def _failed(self, exc: Exception) -> None:
        with self._guard:
            if self.error is None:
                self.error = exc
        if self.stop is not None:
            self.stop.set()

    def run_started(self, plan: Plan, options: RunSettings) -> None:
        """A resumed run: mark it running again, as a new session (before any request).

        Raises
        ------
        JournalError
            The journal cannot be written (the run does not start).
        """
        if not self._resuming:
            return
        try:
            with self.journal.write() as db:
                db.execute(
                    "UPDATE runs SET state = ?, finished_at = NULL, stopped_reason = NULL,"
                    " sessions = sessions + 1 WHERE run_id = ?",
                    (RUNNING, self.run_id),
                )
                row = db.execute("SELECT sessions FROM runs WHERE run_id = ?", (self.run_id,))
                self._session = int(row.fetchone()[0])
        except sqlite3.Error as exc:
            error = JournalError(f"cannot resume run {self.run_id} in {self.journal.path}: {exc}")
            self._failed(error)
            raise error from None
        self._resuming = False

    def leave_out(self, left_out: Mapping[str, Iterable[str]]) -> None:
        """Record, per order, the line items this session deliberately does not send.

        A resume leaves out line items a later run has set (issue 11): the journal then
        does not count them as set by this run (:func:`~.queries.applied`).

        Raises
        ------
        JournalError
            The journal cannot be written.
        """
        rows = [(",".join(ids), self.run_id, po) for po, ids in left_out.items()]
        if not rows:
            return
        try:
            with self.journal.write() as db:
                db.executemany(
                    "UPDATE orders SET left_out = ? WHERE run_id = ? AND kind = 'request'"
                    " AND purchaseOrderNumber = ?",
                    rows,
                )
        except sqlite3.Error as exc:
            message = f"cannot record run {self.run_id} in {self.journal.path}: {exc}"
            raise JournalError(message) from None

    def sending(self, request: Request, attempt: int) -> None:
        """Mark the order in flight and log the attempt, committed before the request."""
        po = request.purchase_order
        try:
            with self.journal.write() as db:
                cursor = db.execute(
                    "INSERT INTO attempts (run_id, purchaseOrderNumber, attempt, session,"
                    " line_count, sent_at) VALUES (?, ?, (SELECT COALESCE(MAX(attempt), 0) + 1"
                    " FROM attempts WHERE run_id = ? AND purchaseOrderNumber = ?), ?, ?, ?)",
                    (self.run_id, po, self.run_id, po, self._session, request.line_count, now()),
                )
                attempt_id = cursor.lastrowid
                db.execute(
                    "UPDATE orders SET state = ?, attempts = attempts + 1, last_attempt = ?"
                    " WHERE run_id = ? AND kind = 'request' AND purchaseOrderNumber = ?",
                    (IN_FLIGHT, attempt_id, self.run_id, po),
                )
        except (sqlite3.Error, OSError) as exc:
            error = JournalError(f"cannot record run {self.run_id} in {self.journal.path}: {exc}")
            self._failed(error)
            raise error from exc
        with self._guard:
            self._open[(po, attempt)] = int(attempt_id or 0)

    def answered(
        self, request: Request, attempt: int, http_status: int | None, details: str
    ) -> None:
        """Record the answer (or its absence) of one attempt."""
        with self._guard:
            attempt_id = self._open.pop((request.purchase_order, attempt), None)
        if attempt_id is None:
            return
        try:
            with self.journal.write() as db:
                db.execute(
                    "UPDATE attempts SET answered_at = ?, http_status = ?, details = ?"
                    " WHERE attempt_id = ?",
                    (now(), http_status, details, attempt_id),
                )
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc)

    def finished(self, result: OrderResult) -> None:
        """Commit the order's final outcome (``pending`` when it was not sent)."""
        state = PENDING if result.outcome == Outcome.PENDING else DONE
        # Dispatch reports "pending, not sent" (0 attempts) for every order without a
        # result when a run stops; after Ctrl-C that can include one whose request is out.
        # The journal saw it leave: keep it in flight rather than call it unsent.
        keep_in_flight = state == PENDING and not result.attempts
        try:
            with self.journal.write() as db:
                db.execute(
                    "UPDATE orders SET state = ?, outcome = ?, http_status = ?, details = ?,"
                    " missing_ids = ?, elapsed_s = ?, finished_at = ?"
                    " WHERE run_id = ? AND kind = 'request' AND purchaseOrderNumber = ?"
                    " AND NOT (? AND state = 'in_flight')",
                    (
                        state,
                        result.outcome.value,
                        result.http_status,
                        result.details,
                        ",".join(result.missing_ids),
                        round(result.elapsed_s, 3),
                        now(),
                        self.run_id,
                        result.purchase_order,
                        keep_in_flight,
                    ),
                )
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc)

    def run_finished(self, results: list[OrderResult], stopped: RunStop | None) -> None:
        """Record how the run ended, then let go of the run."""
        pending = sum(r.outcome == Outcome.PENDING for r in results)
        reason = stopped.message if stopped is not None else None
        if stopped is not None and stopped.reason is StopReason.INTERRUPTED:
            state = INTERRUPTED
        elif stopped is not None:
            state = STOPPED
        elif pending:  # the stop event came after every order was taken: no reason given
            state, reason = STOPPED, f"stopped early: {pending} orders not sent"
        else:
            state = FINISHED
        try:
            with self.journal.write() as db:
                db.execute(
                    "UPDATE runs SET finished_at = ?, state = ?, stopped_reason = ?"
                    " WHERE run_id = ?",
                    (now(), state, reason, self.run_id),
                )
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc)
        self.close()

    def close(self) -> None:
        """Release the run, so another process may resume it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._lock.release()


def start_run(
    journal: Database,
    plan: Plan,
    *,
    host: str,
    environment: str | None = None,
    source_name: str,
    source_hash: str,
    options: SendOptions | Mapping[str, Any],
    parent_run: int | None = None,
    dry_run: bool = False,
    stop: threading.Event | None = None,
    before_images: pd.DataFrame | None = None,
) -> RunRecorder:
    """Record a new run and its whole plan; return the observer that records the rest.

    Parameters
    ----------
    plan
        What the run will send (its set-aside orders are recorded with their outcome).
    host
        The environment's host (``client.host``). Never pass a URL with credentials:
        the journal keeps what it is given. For display only.
    environment
        The environment key (``client.environment_key``): what runs are matched by.
        None: derived from ``host`` as for a legacy run
        (:func:`~spectrum_tools.journal.schema.legacy_environment`); pass the key.
    source_name, source_hash
        The input file's name and sha256 (or "DataFrame"/"Plan" and a payload hash).
    options
        How the run paces and retries (stored as JSON).
    parent_run
        The run this one retries, if any.
    dry_run
        Record a run that sends nothing (ignored when deciding what was applied).
    stop
        The run's stop event: set by the recorder when the journal cannot be written.
    before_images
        What Spectrum held for the line items about to be sent, read just before
        (``purchaseOrderNumber, recipeSetReadableId, current_status, read_at,
        read_via``; an empty status: not known). Undo restores these.

    Returns
    -------
    RunRecorder
        Pass it to the engine as an observer; it holds the run's lock until
        ``run_finished`` (or :meth:`RunRecorder.close`).
    """
    environment = environment if environment is not None else legacy_environment(host)
    settings = dataclasses.asdict(options) if isinstance(options, SendOptions) else options
    stored = {**settings, "send_partial_orders": plan.send_partial_orders}

    started = now()
    requests = list(plan.requests())
    order_rows = [
        (i, "request", r.purchase_order, json.dumps(r.body), r.line_count, r.source_rows)
        for i, r in enumerate(requests)
    ]
    line_rows = [
        (i, k, li["recipeSetReadableId"], li["workflowStatus"])
        for i, r in enumerate(requests)
        for k, li in enumerate(r.line_items)
    ]
    items = {(r.purchase_order, li["recipeSetReadableId"]) for r in requests for li in r.line_items}
    aside = plan.set_aside
    missing = (
        aside[MISSING_IDS].fillna("").astype(str).tolist()
        if MISSING_IDS in aside
        else [""] * len(aside)
    )
    aside_rows = [
        (len(requests) + j, str(po), str(outcome), int(count), str(rows), str(details), gone)
        for j, ((po, outcome, count, rows, details), gone) in enumerate(
            zip(
                aside[[PO, OUTCOME, LINE_COUNT, SOURCE_ROWS, DETAILS]].itertuples(index=False),
                missing,
                strict=True,
            )
        )
    ]
    lock: RunLock | None = None
    try:
        with journal.write() as db:
            if not dry_run:  # in the write transaction: two sends cannot both pass it
                _refuse_overlap(journal, db, environment, items)
            cursor = db.execute(
                "INSERT INTO runs (parent_run, started_at, state, host, environment,"
                " source_name, source_hash, options, dry_run, tool_version)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    parent_run,
                    started,
                    RUNNING,
                    host,
                    environment,
                    source_name,
                    source_hash,
                    json.dumps(stored, default=str),
                    int(dry_run),
                    __version__,
                ),
            )
            run_id = int(cursor.lastrowid or 0)
            # Locked before the run is committed: no other process can see it unlocked
            # (as "unfinished") and resume it under our feet.
            lock = RunLock(journal.lock_path(run_id))
            if not lock.acquire():  # a fresh id: only a broken runs folder gets here
                raise JournalError(f"cannot lock run {run_id} in {journal.runs_dir}")
            db.execute(
                "INSERT INTO run_rows (run_id, rows) VALUES (?, ?)",
                (run_id, rows_to_json(plan.rows)),
            )
            db.executemany(
                "INSERT INTO orders (run_id, seq, kind, purchaseOrderNumber, payload,"
                " line_count, source_rows, state, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, *row, PENDING, Outcome.PENDING.value) for row in order_rows],
            )
            db.executemany(
                "INSERT INTO lines (run_id, seq, position, recipeSetReadableId,"
                " workflowStatus) VALUES (?, ?, ?, ?, ?)",
                [(run_id, *row) for row in line_rows],
            )
            db.executemany(
                "INSERT INTO orders (run_id, seq, kind, purchaseOrderNumber, outcome,"
                " line_count, source_rows, details, missing_ids, state)"
                " VALUES (?, ?, 'set_aside', ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, *row, DONE) for row in aside_rows],
            )
            db.executemany(
                "INSERT OR REPLACE INTO before_images (run_id, purchaseOrderNumber,"
                " recipeSetReadableId, status, read_at, read_via) VALUES (?, ?, ?, ?, ?, ?)",
                [(run_id, *row) for row in _before_rows(before_images)],
            )
    except (sqlite3.Error, OSError) as exc:
        if lock is not None:
            lock.release()
        raise JournalError(f"cannot record a new run in {journal.path}: {exc}") from None
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return RunRecorder(journal, run_id, 1, lock, stop=stop)


def _refuse_overlap(
    journal: Database, db: sqlite3.Connection, environment: str, items: set[tuple[str, str]]
) -> None:
    """Refuse a new run while a live run on the same environment has some of its line
    items still to send or in flight (issue 11: two sends of one sheet at once).

    Skipping cannot help there (the other run has not applied them yet) and sending both
    would race two processes over the same orders; the analyst waits for the other run,
    or stops it, and sends again: what it applied is skipped then.

    Raises
    ------
    JournalError
        Such a live run exists (naming it); nothing was recorded.
    """
    if not items:
        return
    candidates = db.execute(
        "SELECT DISTINCT r.run_id, r.started_at FROM runs r JOIN orders o ON o.run_id = r.run_id"
        " WHERE r.environment = ? AND r.dry_run = 0 AND o.kind = 'request' AND o.state != ?",
        (environment, DONE),
    ).fetchall()
    for run_id, started in candidates:
        if not journal.live(int(run_id)):
            continue
        rows = db.execute(
            "SELECT o.purchaseOrderNumber, l.recipeSetReadableId FROM orders o"
            " JOIN lines l ON l.run_id = o.run_id AND l.seq = o.seq"
            " WHERE o.run_id = ? AND o.kind = 'request' AND o.state != ?",
            (run_id, DONE),
        ).fetchall()
        orders = {po for po, li in rows if (po, li) in items}
        if orders:
            raise JournalError(
                f"run {run_id} (started {str(started)[:19].replace('T', ' ')} UTC) is sending "
                f"{len(orders):,} of these orders to {environment} right now; wait for it to "
                "end (or stop it), then send again: what it applied is skipped then. "
                "Nothing was sent"
            )


def continue_run(
    journal: Database, run_id: int, *, stop: threading.Event | None = None
) -> RunRecorder:
    """Take a run up again (for :func:`~spectrum_tools.resume_run`): lock it first.

    The run's lock is taken before anything of it is read, so a second resume of the same
    run either waits out this one and then reads what it did, or is refused: two resumes
    never send the same orders. The new session starts (``state`` running, ``sessions``
    + 1) when the engine starts the run (:meth:`RunRecorder.run_started`); closing the
    recorder before that changes nothing.

    Raises
    ------
    JournalError
        No such run, or another process is sending it right now.
    """
    meta_row(journal, run_id)
    lock = RunLock(journal.lock_path(run_id))
    if not lock.acquire():
        raise JournalError(
            f"run {run_id} is being sent by another process right now; "
            "wait for it to end (or stop it) before resuming"
        )
    return RunRecorder(journal, run_id, None, lock, stop=stop)


def meta_row(db: Database, run_id: int) -> tuple[Any, ...]:
    """The ``runs`` row of one run.

    Raises
    ------
    JournalError
        No such run.
    """
    rows = db.read(
        "SELECT run_id, parent_run, started_at, finished_at, state, stopped_reason, host,"
        " source_name, source_hash, options, dry_run, sessions, tool_version, environment"
        " FROM runs WHERE run_id = ?",
        (int(run_id),),
    )
    if not rows:
        raise JournalError(f"no run {run_id} in {db.path}")
    return tuple(rows[0])


def _before_rows(images: pd.DataFrame | None) -> list[tuple[str, str, str, str, str]]:
    if images is None or images.empty:
        return []
    columns = [PO, LINE_ID, "current_status", "read_at", "read_via"]
    return [
        (str(po), str(line_id), _text(status), _text(when), _text(via))
        for po, line_id, status, when, via in images[columns].itertuples(index=False, name=None)
    ]


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
