"""The run journal: every send is a run, recorded in SQLite as it happens.

Touches: the runs folder on disk (default ``./spectrum-runs/``, resolved when a
:class:`Journal` is made, never at import): ``journal.sqlite3`` (SQLite in WAL mode with
``synchronous=NORMAL``: a committed outcome survives ``kill -9`` of the process) and
``locks/run-<id>.lock`` (an OS file lock held while a process sends a run; the kernel drops
it when the process dies, which is how a dead run is told from a live one).

What a run records (never the API token: the journal is given the host name only):

* the run: id, start and end, environment host, input file name and sha256, options,
  the parent run (for a retry), how it ended (finished / stopped / interrupted);
* the plan: every order with its JSON payload, line count and source rows, its line items,
  the orders set aside (invalid, skipped), and the validated rows themselves, so the
  per-line view and the invalid rows can be rebuilt without the input file;
* every attempt of every order (time sent, time answered, HTTP code, details) and the
  order's final outcome. An order is marked in flight *before* its request goes out
  (:meth:`RunRecorder.sending`) and its outcome is committed as soon as it is known
  (:meth:`RunRecorder.finished`): after a crash the journal says which orders are done,
  which failed, and which were in flight or never sent.

Thread-safe: dispatch calls the recorder from worker threads. One connection per
:class:`Journal`, guarded by a lock; other processes may read the same file at any time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

import numpy as np
import pandas as pd

from spectrum_tools.dispatch import (
    DispatchObserver,
    OrderResult,
    SendOptions,
    line_results,
    results_frame,
)
from spectrum_tools.errors import JournalError
from spectrum_tools.planning import Plan, Request
from spectrum_tools.schema import (
    DETAILS,
    LINE_COUNT,
    LINE_ID,
    OUTCOME,
    PO,
    SOURCE_ROW,
    SOURCE_ROWS,
    STATUS,
    VALID,
    Outcome,
)

__all__ = ["DEFAULT_RUNS_DIR", "JOURNAL_FILE", "Journal", "RunRecord", "RunRecorder"]

DEFAULT_RUNS_DIR: Final = Path("spectrum-runs")
"""The runs folder when none is given, relative to the working directory of the call."""

JOURNAL_FILE: Final = "journal.sqlite3"
_SCHEMA_VERSION: Final = 1
_BUSY_TIMEOUT_S: Final = 30.0
_RUN_ID: Final = "run_id"

# Order states inside the journal (the results frame shows the outcome only).
_PENDING, _IN_FLIGHT, _DONE = "pending", "in_flight", "done"
# Run states as stored; "unfinished" is derived: stored "running" but no process holds it.
_RUNNING, _FINISHED, _STOPPED, _INTERRUPTED, _UNFINISHED = (
    "running",
    "finished",
    "stopped",
    "interrupted",
    "unfinished",
)
_SUCCESS = (Outcome.UPDATED.value, Outcome.PARTIAL.value)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id         INTEGER PRIMARY KEY AUTOINCREMENT,
    parent_run     INTEGER REFERENCES runs(run_id),
    started_at     TEXT NOT NULL,
    finished_at    TEXT,
    state          TEXT NOT NULL,
    stopped_reason TEXT,
    host           TEXT NOT NULL,
    source_name    TEXT NOT NULL,
    source_hash    TEXT NOT NULL,
    options        TEXT NOT NULL,
    dry_run        INTEGER NOT NULL DEFAULT 0,
    sessions       INTEGER NOT NULL DEFAULT 1,
    tool_version   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS run_rows (
    run_id INTEGER PRIMARY KEY REFERENCES runs(run_id),
    rows   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    run_id              INTEGER NOT NULL REFERENCES runs(run_id),
    seq                 INTEGER NOT NULL,
    kind                TEXT NOT NULL,
    purchaseOrderNumber TEXT NOT NULL,
    payload             TEXT,
    line_count          INTEGER NOT NULL,
    source_rows         TEXT NOT NULL,
    state               TEXT NOT NULL,
    outcome             TEXT NOT NULL,
    http_status         INTEGER,
    details             TEXT NOT NULL DEFAULT '',
    missing_ids         TEXT NOT NULL DEFAULT '',
    attempts            INTEGER NOT NULL DEFAULT 0,
    last_attempt        INTEGER,
    elapsed_s           REAL NOT NULL DEFAULT 0,
    finished_at         TEXT,
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX IF NOT EXISTS orders_by_po ON orders(run_id, purchaseOrderNumber);
CREATE TABLE IF NOT EXISTS lines (
    run_id              INTEGER NOT NULL,
    seq                 INTEGER NOT NULL,
    position            INTEGER NOT NULL,
    recipeSetReadableId TEXT NOT NULL,
    workflowStatus      TEXT NOT NULL,
    PRIMARY KEY (run_id, seq, position)
);
CREATE TABLE IF NOT EXISTS attempts (
    attempt_id          INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id              INTEGER NOT NULL,
    purchaseOrderNumber TEXT NOT NULL,
    attempt             INTEGER NOT NULL,
    session             INTEGER NOT NULL,
    line_count          INTEGER NOT NULL,
    sent_at             TEXT NOT NULL,
    answered_at         TEXT,
    http_status         INTEGER,
    details             TEXT
);
CREATE INDEX IF NOT EXISTS attempts_by_order ON attempts(run_id, purchaseOrderNumber);
"""

_ORDER_COLUMNS = ["seq", "kind", PO, LINE_COUNT, SOURCE_ROWS, "state", OUTCOME, "http_status"]
_ORDER_COLUMNS += [DETAILS, "missing_ids", "attempts", "elapsed_s"]
_ATTEMPT_COLUMNS = [PO, "attempt", "session", "line_count", "sent_at", "answered_at"]
_ATTEMPT_COLUMNS += ["http_status", "details"]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _resolve(runs_dir: str | Path | None) -> Path:
    # DEFAULT_RUNS_DIR is read at call time (tests point it at a temporary folder).
    return Path(runs_dir) if runs_dir is not None else DEFAULT_RUNS_DIR


# --------------------------------------------------------------------------- run locks


class _RunLock:
    """An exclusive OS lock on ``locks/run-<id>.lock``, held while a process sends a run.

    The kernel releases it when the process exits, however it exits (``kill -9``
    included), so "stored as running but nobody holds the lock" means the process died.
    Lock files are left in place: deleting one races with a process about to lock it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[bytes] | None = None

    def acquire(self) -> bool:
        """Take the lock without waiting; False when another holder has it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+b")
        if not _try_lock(handle):
            handle.close()
            return False
        self._handle = handle
        return True

    def release(self) -> None:
        """Let go of the lock (idempotent)."""
        handle, self._handle = self._handle, None
        if handle is not None:
            _unlock(handle)
            handle.close()

    @staticmethod
    def held(path: Path) -> bool:
        """Whether some process (this one included) holds the lock at ``path``."""
        if not path.exists():
            return False
        with path.open("a+b") as handle:
            if _try_lock(handle):
                _unlock(handle)
                return False
            return True


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(handle: IO[bytes]) -> bool:
        try:
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(handle: IO[bytes]) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(handle: IO[bytes]) -> bool:
        # flock (not lockf): two opens in one process conflict too, so a process can
        # also tell that one of its own runs is live.
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True

    def _unlock(handle: IO[bytes]) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, eq=False)
class RunRecord:
    """One run as the journal holds it: enough for a report, a resume or a retry.

    Attributes
    ----------
    run_id
        The run's number in its journal.
    meta
        ``host, source_name, source_hash, options, started_at, finished_at, state,
        stopped_reason, parent_run``, plus ``dry_run``, ``sessions`` (1 + resumes),
        ``requests``, ``tool_version`` and ``journal`` (the database path). Times are
        ISO 8601 text in UTC.
    results
        One row per order in the format of :func:`spectrum_tools.dispatch.results_frame`.
        Orders in flight when the run ended, or never sent, are ``pending`` (an in-flight
        one's ``details`` start with "in flight").
    lines
        The analyst's rows with ``outcome``, ``details`` and ``attempts`` appended.
    invalid_rows
        The rows that failed validation, with their ``problem``.
    plan
        The run's :class:`~spectrum_tools.planning.Plan`, rebuilt from the journal.
    attempts
        Every attempt: ``purchaseOrderNumber, attempt, session, line_count, sent_at,
        answered_at, http_status, details`` (``http_status`` empty when no answer came).
    """

    run_id: int
    meta: dict[str, Any]
    results: pd.DataFrame
    lines: pd.DataFrame
    invalid_rows: pd.DataFrame
    plan: Plan
    attempts: pd.DataFrame

    @property
    def counts(self) -> dict[str, int]:
        """Orders per outcome, every outcome listed (zeros included)."""
        found = self.results[OUTCOME].value_counts()
        return {o.value: int(found.get(o.value, 0)) for o in Outcome}

    def __repr__(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in self.counts.items() if v)
        return f"<RunRecord {self.run_id} ({self.meta['state']}) on {self.meta['host']}: {counts}>"


class RunRecorder(DispatchObserver):
    """Writes one run into the journal as dispatch goes. Get one from :meth:`Journal.start_run`.

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
        journal: Journal,
        run_id: int,
        session: int,
        lock: _RunLock,
        *,
        stop: threading.Event | None = None,
    ) -> None:
        self.run_id = run_id
        self.journal = journal
        self.error: Exception | None = None
        self.stop = stop
        self._session = session
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

    def sending(self, request: Request, attempt: int) -> None:
        """Mark the order in flight and log the attempt, committed before the request."""
        po = request.purchase_order
        try:
            with self.journal._write() as db:
                cursor = db.execute(
                    "INSERT INTO attempts (run_id, purchaseOrderNumber, attempt, session,"
                    " line_count, sent_at) VALUES (?, ?, (SELECT COALESCE(MAX(attempt), 0) + 1"
                    " FROM attempts WHERE run_id = ? AND purchaseOrderNumber = ?), ?, ?, ?)",
                    (self.run_id, po, self.run_id, po, self._session, request.line_count, _now()),
                )
                attempt_id = cursor.lastrowid
                db.execute(
                    "UPDATE orders SET state = ?, attempts = attempts + 1, last_attempt = ?"
                    " WHERE run_id = ? AND kind = 'request' AND purchaseOrderNumber = ?",
                    (_IN_FLIGHT, attempt_id, self.run_id, po),
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
            with self.journal._write() as db:
                db.execute(
                    "UPDATE attempts SET answered_at = ?, http_status = ?, details = ?"
                    " WHERE attempt_id = ?",
                    (_now(), http_status, details, attempt_id),
                )
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc)

    def finished(self, result: OrderResult) -> None:
        """Commit the order's final outcome (``pending`` when it was not sent)."""
        state = _PENDING if result.outcome == Outcome.PENDING else _DONE
        # Dispatch reports "pending, not sent" (0 attempts) for every order without a
        # result when a run stops; after Ctrl-C that can include one whose request is out.
        # The journal saw it leave: keep it in flight rather than call it unsent.
        keep_in_flight = state == _PENDING and not result.attempts
        try:
            with self.journal._write() as db:
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
                        _now(),
                        self.run_id,
                        result.purchase_order,
                        keep_in_flight,
                    ),
                )
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc)

    def run_finished(self, results: list[OrderResult], stopped: str | None) -> None:
        """Record how the run ended, then let go of the run."""
        pending = sum(r.outcome == Outcome.PENDING for r in results)
        if stopped == "interrupted":
            state = _INTERRUPTED
        elif stopped is not None:
            state = _STOPPED
        elif pending:  # stopped through the stop event: dispatch gives no reason then
            state, stopped = _STOPPED, f"stopped early: {pending} orders not sent"
        else:
            state = _FINISHED
        try:
            with self.journal._write() as db:
                db.execute(
                    "UPDATE runs SET finished_at = ?, state = ?, stopped_reason = ?"
                    " WHERE run_id = ?",
                    (_now(), state, stopped, self.run_id),
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


# --------------------------------------------------------------------------- journal


class Journal:
    """The run journal in a runs folder.

    Parameters
    ----------
    runs_dir
        The runs folder; created when missing. Default ``spectrum-runs`` in the current
        working directory at the time of the call.

    Attributes
    ----------
    runs_dir
        The folder.
    path
        The SQLite database, ``runs_dir / "journal.sqlite3"``.

    Raises
    ------
    JournalError
        The folder cannot be created, or the file is not a journal (or one written by a
        newer spectrum-tools).

    Examples
    --------
    >>> import tempfile
    >>> with Journal(Path(tempfile.mkdtemp()) / "runs") as journal:
    ...     journal.path.name, len(journal.runs()), journal.latest_unfinished()
    ('journal.sqlite3', 0, None)
    """

    def __init__(self, runs_dir: str | Path | None = None) -> None:
        self.runs_dir = _resolve(runs_dir)
        self.path = self.runs_dir / JOURNAL_FILE
        self._lock = threading.RLock()
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(f"cannot open the run journal {self.path}: {exc}") from None
        try:
            self._setup()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise JournalError(f"{self.path} is not a usable run journal: {exc}") from None

    @classmethod
    def existing(cls, runs_dir: str | Path | None = None) -> Journal:
        """Open the journal of a runs folder that must already have one.

        Raises
        ------
        JournalError
            There is no journal in that folder (nothing is created).
        """
        path = cls.location(runs_dir)
        if not path.is_file():
            raise JournalError(f"no run journal at {path}: no run was sent with this runs folder")
        return cls(runs_dir)

    @staticmethod
    def location(runs_dir: str | Path | None = None) -> Path:
        """Where the journal of a runs folder is (or would be); nothing is created.

        Examples
        --------
        >>> Journal.location("runs").as_posix()
        'runs/journal.sqlite3'
        """
        return _resolve(runs_dir) / JOURNAL_FILE

    def _setup(self) -> None:
        db = self._db
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > _SCHEMA_VERSION:
            raise JournalError(
                f"{self.path} was written by a newer spectrum-tools (journal version "
                f"{version}); upgrade spectrum-tools to read it"
            )
        db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit is in the OS before the hook returns, so kill -9 of
        # this process cannot lose it; only a power cut or OS crash can lose the last
        # commits. FULL would also fsync every commit, delaying the request behind it by
        # milliseconds and bunching the paced starts. What a power cut could lose is
        # harmless: an order then looks unsent or in flight, and resume re-sends it (a
        # status PUT is idempotent).
        db.execute("PRAGMA synchronous=NORMAL")
        if version < _SCHEMA_VERSION:
            with self._write() as tx:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        tx.execute(statement)
                tx.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

    def __repr__(self) -> str:
        return f"Journal({str(self.runs_dir)!r})"

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connection. Idempotent."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One committed write transaction (the lock keeps worker threads in turn)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise JournalError(f"cannot read the run journal {self.path}: {exc}") from None

    def _lock_path(self, run_id: int) -> Path:
        return self.runs_dir / "locks" / f"run-{run_id}.lock"

    def _live(self, run_id: int) -> bool:
        return _RunLock.held(self._lock_path(run_id))

    def _state(self, run_id: int, stored: str) -> str:
        if stored != _RUNNING:
            return stored
        return _RUNNING if self._live(run_id) else _UNFINISHED

    # -- recording ---------------------------------------------------------------------

    def start_run(
        self,
        plan: Plan,
        *,
        host: str,
        source_name: str,
        source_hash: str,
        options: SendOptions | Mapping[str, Any],
        parent_run: int | None = None,
        dry_run: bool = False,
        stop: threading.Event | None = None,
    ) -> RunRecorder:
        """Record a new run and its whole plan; return the observer that records the rest.

        Parameters
        ----------
        plan
            What the run will send (its set-aside orders are recorded with their outcome).
        host
            The environment's host (``client.host``). Never pass a URL with credentials:
            the journal keeps what it is given.
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

        Returns
        -------
        RunRecorder
            Pass it to dispatch as an observer; it holds the run's lock until
            ``run_finished`` (or :meth:`RunRecorder.close`).
        """
        settings = dataclasses.asdict(options) if isinstance(options, SendOptions) else options
        stored = {**settings, "send_partial_orders": plan.send_partial_orders}
        from spectrum_tools import __version__  # the package imports this module

        started = _now()
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
        aside = plan.set_aside
        aside_rows = [
            (len(requests) + j, str(po), str(outcome), int(count), str(rows), str(details))
            for j, (po, outcome, count, rows, details) in enumerate(
                aside[[PO, OUTCOME, LINE_COUNT, SOURCE_ROWS, DETAILS]].itertuples(index=False)
            )
        ]
        lock: _RunLock | None = None
        try:
            with self._write() as db:
                cursor = db.execute(
                    "INSERT INTO runs (parent_run, started_at, state, host, source_name,"
                    " source_hash, options, dry_run, tool_version)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        parent_run,
                        started,
                        _RUNNING,
                        host,
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
                lock = _RunLock(self._lock_path(run_id))
                if not lock.acquire():  # a fresh id: only a broken runs folder gets here
                    raise JournalError(f"cannot lock run {run_id} in {self.runs_dir}")
                db.execute(
                    "INSERT INTO run_rows (run_id, rows) VALUES (?, ?)",
                    (run_id, _rows_to_json(plan.rows)),
                )
                db.executemany(
                    "INSERT INTO orders (run_id, seq, kind, purchaseOrderNumber, payload,"
                    " line_count, source_rows, state, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(run_id, *row, _PENDING, Outcome.PENDING.value) for row in order_rows],
                )
                db.executemany(
                    "INSERT INTO lines (run_id, seq, position, recipeSetReadableId,"
                    " workflowStatus) VALUES (?, ?, ?, ?, ?)",
                    [(run_id, *row) for row in line_rows],
                )
                db.executemany(
                    "INSERT INTO orders (run_id, seq, kind, purchaseOrderNumber, outcome,"
                    " line_count, source_rows, details, state)"
                    " VALUES (?, ?, 'set_aside', ?, ?, ?, ?, ?, ?)",
                    [(run_id, *row, _DONE) for row in aside_rows],
                )
        except (sqlite3.Error, OSError) as exc:
            if lock is not None:
                lock.release()
            raise JournalError(f"cannot record a new run in {self.path}: {exc}") from None
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        return RunRecorder(self, run_id, 1, lock, stop=stop)

    def continue_run(self, run_id: int, *, stop: threading.Event | None = None) -> RunRecorder:
        """Take a run up again (for :func:`~spectrum_tools.resume_run`): a new session.

        Raises
        ------
        JournalError
            No such run, or another process is sending it right now.
        """
        self._meta_row(run_id)
        lock = _RunLock(self._lock_path(run_id))
        if not lock.acquire():
            raise JournalError(
                f"run {run_id} is being sent by another process right now; "
                "wait for it to end (or stop it) before resuming"
            )
        try:
            with self._write() as db:
                db.execute(
                    "UPDATE runs SET state = ?, finished_at = NULL, stopped_reason = NULL,"
                    " sessions = sessions + 1 WHERE run_id = ?",
                    (_RUNNING, run_id),
                )
                session = int(
                    db.execute("SELECT sessions FROM runs WHERE run_id = ?", (run_id,)).fetchone()[
                        0
                    ]
                )
        except sqlite3.Error as exc:
            lock.release()
            raise JournalError(f"cannot resume run {run_id} in {self.path}: {exc}") from None
        return RunRecorder(self, run_id, session, lock, stop=stop)

    # -- reading -----------------------------------------------------------------------

    def runs(self) -> pd.DataFrame:
        """One row per run, newest last.

        Returns
        -------
        pandas.DataFrame
            ``run_id, parent_run, started_at, finished_at, state, host, source_name,
            requests``, then a count of orders per outcome (one column per
            :class:`~spectrum_tools.schema.Outcome`), ``in_flight`` (orders that were in
            flight when the run ended) and ``attempts`` (HTTP requests made). ``state`` is
            ``running`` (a live process is sending it), ``finished``, ``stopped``,
            ``interrupted``, or ``unfinished`` (its process died mid-run: resume it).
        """
        head = [_RUN_ID, "parent_run", "started_at", "finished_at", "state", "host"]
        head += ["source_name"]
        query = f"SELECT {', '.join(head)} FROM runs ORDER BY run_id"  # noqa: S608 - constants
        runs = pd.DataFrame(self._read(query))
        runs = runs if len(runs.columns) else pd.DataFrame(columns=head)
        runs.columns = head
        tallies = self._read(
            "SELECT run_id, outcome, state, COUNT(*), SUM(attempts), SUM(kind = 'request')"
            " FROM orders GROUP BY run_id, outcome, state"
        )
        counts: dict[int, dict[str, int]] = {}
        for run_id, outcome, state, n, attempts, requests in tallies:
            row = counts.setdefault(run_id, {"requests": 0, "attempts": 0, "in_flight": 0})
            row[outcome] = row.get(outcome, 0) + n
            row["requests"] += requests
            row["attempts"] += attempts or 0
            if state == _IN_FLIGHT:
                row["in_flight"] += n
        columns = ["requests", *(o.value for o in Outcome), "in_flight", "attempts"]
        table = pd.DataFrame(
            [[counts.get(r, {}).get(c, 0) for c in columns] for r in runs[_RUN_ID]],
            columns=columns,
            dtype="int64",
        )
        out = pd.concat([runs.reset_index(drop=True), table], axis=1)
        out[_RUN_ID] = out[_RUN_ID].astype("int64")
        out["parent_run"] = out["parent_run"].astype("Int64")
        out["state"] = [
            self._state(int(r), s) for r, s in zip(out[_RUN_ID], out["state"], strict=True)
        ]
        return out

    def latest_unfinished(self) -> int | None:
        """The most recent run with orders still pending that no live process is sending.

        Dry runs never count. Returns None when every run went to the end.
        """
        rows = self._read(
            "SELECT DISTINCT r.run_id FROM runs r JOIN orders o ON o.run_id = r.run_id"
            " WHERE r.dry_run = 0 AND o.kind = 'request' AND o.outcome = ?"
            " ORDER BY r.run_id DESC",
            (Outcome.PENDING.value,),
        )
        for (run_id,) in rows:
            if not self._live(int(run_id)):
                return int(run_id)
        return None

    def applied(self, host: str) -> pd.DataFrame:
        """Line items that runs to ``host`` are known to have set, with the run that did it.

        For each line item the latest run that sent it counts: an ``updated`` order (or a
        ``partial`` one, minus its missing ids) applied its statuses; a later attempt whose
        effect is unknown (``failed``, or in flight when its run died) means the status is
        no longer known, so the line item is left out. ``not_found`` changed nothing and
        is ignored. Dry runs never count.

        Returns
        -------
        pandas.DataFrame
            ``purchaseOrderNumber, recipeSetReadableId, workflowStatus, run_id``.
        """
        rows = self._read(
            "SELECT o.purchaseOrderNumber, l.recipeSetReadableId, l.workflowStatus, o.run_id,"
            " o.outcome, o.missing_ids, o.last_attempt"
            " FROM orders o JOIN runs r ON r.run_id = o.run_id"
            " JOIN lines l ON l.run_id = o.run_id AND l.seq = o.seq"
            " WHERE r.host = ? AND r.dry_run = 0 AND o.kind = 'request' AND o.attempts > 0"
            " AND o.outcome != ?",
            (host, Outcome.NOT_FOUND.value),
        )
        cols = [PO, LINE_ID, STATUS, _RUN_ID, OUTCOME, "missing", "seq"]
        sent = pd.DataFrame(rows, columns=cols)
        if sent.empty:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in cols[:3]}).assign(
                run_id=pd.Series(dtype="int64")
            )
        missing = [
            li in set(m.split(",")) if m else False
            for li, m in zip(sent[LINE_ID], sent["missing"], strict=True)
        ]
        sent = sent.loc[~np.asarray(missing, dtype=bool)]
        latest = sent.sort_values(["seq", _RUN_ID], kind="stable").drop_duplicates(
            [PO, LINE_ID], keep="last"
        )
        done = latest.loc[latest[OUTCOME].isin(_SUCCESS), [PO, LINE_ID, STATUS, _RUN_ID]]
        return done.reset_index(drop=True).astype({_RUN_ID: "int64"})

    def _meta_row(self, run_id: int) -> tuple[Any, ...]:
        rows = self._read(
            "SELECT run_id, parent_run, started_at, finished_at, state, stopped_reason, host,"
            " source_name, source_hash, options, dry_run, sessions, tool_version"
            " FROM runs WHERE run_id = ?",
            (int(run_id),),
        )
        if not rows:
            raise JournalError(f"no run {run_id} in {self.path}")
        return tuple(rows[0])

    def load_run(self, run_id: int) -> RunRecord:
        """Rebuild one run from the journal.

        Raises
        ------
        JournalError
            No such run.
        """
        (
            _,
            parent,
            started,
            finished,
            state,
            reason,
            host,
            source_name,
            source_hash,
            options,
            dry_run,
            sessions,
            version,
        ) = self._meta_row(run_id)
        options_dict = json.loads(options)
        (rows_json,) = self._read("SELECT rows FROM run_rows WHERE run_id = ?", (run_id,))[0]
        orders = pd.DataFrame(
            self._read(
                "SELECT seq, kind, purchaseOrderNumber, line_count, source_rows, state, outcome,"
                " http_status, details, missing_ids, attempts, elapsed_s"
                " FROM orders WHERE run_id = ? ORDER BY seq",
                (run_id,),
            ),
            columns=_ORDER_COLUMNS,
        )
        lines = self._read(
            "SELECT seq, recipeSetReadableId, workflowStatus FROM lines WHERE run_id = ?"
            " ORDER BY seq, position",
            (run_id,),
        )
        attempts = pd.DataFrame(
            self._read(
                "SELECT purchaseOrderNumber, attempt, session, line_count, sent_at, answered_at,"
                " http_status, details FROM attempts WHERE run_id = ? ORDER BY attempt_id",
                (run_id,),
            ),
            columns=_ATTEMPT_COLUMNS,
        ).astype({"http_status": "Int64"})
        plan = _rebuild_plan(
            _rows_from_json(rows_json),
            orders,
            lines,
            send_partial_orders=bool(options_dict.get("send_partial_orders", False)),
        )
        requests = orders.loc[orders["kind"] == "request"]
        results = results_frame(plan, [_order_result(o) for o in requests.itertuples()])
        meta: dict[str, Any] = {
            "host": host,
            "source_name": source_name,
            "source_hash": source_hash,
            "options": options_dict,
            "started_at": started,
            "finished_at": finished,
            "state": self._state(int(run_id), state),
            "stopped_reason": reason,
            "parent_run": parent,
            "dry_run": bool(dry_run),
            "sessions": int(sessions),
            "requests": len(requests),
            "tool_version": version,
            "journal": str(self.path),
        }
        rows = plan.rows
        return RunRecord(
            run_id=int(run_id),
            meta=meta,
            results=results,
            lines=line_results(results, plan),
            invalid_rows=rows.loc[~rows[VALID].to_numpy(bool)].reset_index(drop=True),
            plan=plan,
            attempts=attempts,
        )


# --------------------------------------------------------------------------- rebuilding


def _order_result(order: Any) -> OrderResult:
    """An order row of the journal as dispatch's :class:`OrderResult`."""
    details = str(order.details or "")
    if order.state == _IN_FLIGHT:
        details = (
            f"in flight when the run ended (sent {order.attempts} time(s), no final answer "
            "recorded); resuming re-sends it" + (f"; last answer: {details}" if details else "")
        )
    elif order.outcome == Outcome.PENDING.value and not details:
        details = "not sent yet"
    status = order.http_status
    return OrderResult(
        purchase_order=str(order.purchaseOrderNumber),
        outcome=Outcome(order.outcome),
        http_status=None if status is None or pd.isna(status) else int(status),
        details=details,
        line_count=int(order.line_count),
        missing_ids=tuple(i for i in str(order.missing_ids or "").split(",") if i),
        attempts=int(order.attempts),
        elapsed_s=float(order.elapsed_s or 0.0),
        source_rows=str(order.source_rows),
    )


def _rebuild_plan(
    rows: pd.DataFrame,
    orders: pd.DataFrame,
    lines: Sequence[tuple[int, str, str]],
    *,
    send_partial_orders: bool,
) -> Plan:
    """The run's Plan from the journal's own records (not by planning the rows again).

    The journal holds what was actually planned and sent; planning the rows again with a
    newer spectrum-tools could give other payloads. Plan is built through its dataclass
    constructor, as :meth:`Plan.skip` does with ``replace``.
    """
    requests = orders.loc[orders["kind"] == "request"]
    aside = orders.loc[orders["kind"] == "set_aside"]
    seqs = requests["seq"].to_numpy(dtype=np.int64)
    line_seq = np.fromiter((s for s, _, _ in lines), dtype=np.int64, count=len(lines))
    top = int(max(seqs.max(initial=-1), line_seq.max(initial=-1))) + 1
    sizes = np.bincount(line_seq, minlength=top)[seqs].astype(np.int64)
    return Plan(
        rows=rows,
        orders=pd.DataFrame(
            {
                PO: pd.Series(requests[PO].tolist(), dtype=object),
                LINE_COUNT: sizes,
                SOURCE_ROWS: pd.Series(requests[SOURCE_ROWS].tolist(), dtype=object),
            }
        ),
        set_aside=pd.DataFrame(
            {
                PO: pd.Series(aside[PO].tolist(), dtype=object),
                OUTCOME: pd.Series(aside[OUTCOME].tolist(), dtype=object),
                LINE_COUNT: aside[LINE_COUNT].to_numpy(dtype=np.int64),
                SOURCE_ROWS: pd.Series(aside[SOURCE_ROWS].tolist(), dtype=object),
                DETAILS: pd.Series(aside[DETAILS].tolist(), dtype=object),
            }
        ),
        send_partial_orders=send_partial_orders,
        _ids=np.array([i for _, i, _ in lines], dtype=object),
        _statuses=np.array([s for _, _, s in lines], dtype=object),
        _bounds=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
    )


def _rows_to_json(rows: pd.DataFrame) -> str:
    """The validated rows as JSON: column names, dtypes and values, ids kept as text."""
    columns = [str(c) for c in rows.columns]
    data = []
    for position in range(rows.shape[1]):
        values = rows.iloc[:, position]
        data.append([None if _is_missing(v) else _plain(v) for v in values.tolist()])
    return json.dumps(
        {"columns": columns, "dtypes": [str(t) for t in rows.dtypes], "data": data},
        default=str,
    )


def _rows_from_json(text: str) -> pd.DataFrame:
    stored = json.loads(text)
    series = []
    for values, dtype in zip(stored["data"], stored["dtypes"], strict=True):
        column = pd.Series(values, dtype=object)
        with contextlib.suppress(TypeError, ValueError):  # else keep object: values matter
            column = column.astype(dtype)
        series.append(column)
    frame = pd.concat(series, axis=1) if series else pd.DataFrame()
    frame.columns = stored["columns"]
    if SOURCE_ROW in frame.columns and frame[SOURCE_ROW].dtype == object:
        frame[SOURCE_ROW] = pd.to_numeric(frame[SOURCE_ROW], errors="coerce")
    return frame


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _plain(value: object) -> object:
    """A JSON-ready scalar (numpy scalars become Python ones)."""
    if isinstance(value, np.generic):
        return value.item()
    return value
