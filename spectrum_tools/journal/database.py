"""The journal's SQLite connection: opening, the schema, one write transaction at a time.

I/O: ``journal.sqlite3`` in the runs folder (created when missing), in WAL mode with
``synchronous=NORMAL``: a committed write survives ``kill -9`` of the process. Thread-safe:
one connection per :class:`Database`, guarded by a lock; other processes may read the same
file at any time.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from spectrum_tools.errors import JournalError
from spectrum_tools.journal.locks import RunLock
from spectrum_tools.journal.schema import (
    BUSY_TIMEOUT_S,
    JOURNAL_FILE,
    MIGRATIONS,
    RUNNING,
    SCHEMA,
    SCHEMA_VERSION,
    UNFINISHED,
    legacy_environment,
    resolve,
)

__all__ = ["Database"]


class Database:
    """The connection to the run journal of a runs folder (see :class:`Journal`).

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
    """

    def __init__(self, runs_dir: str | Path | None = None) -> None:
        self.runs_dir = resolve(runs_dir)
        self.path = self.runs_dir / JOURNAL_FILE
        self._lock = threading.RLock()
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(f"cannot open the run journal {self.path}: {exc}") from None
        try:
            self._setup()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise JournalError(f"{self.path} is not a usable run journal: {exc}") from None

    @classmethod
    def existing(cls, runs_dir: str | Path | None = None) -> Self:
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
        >>> Database.location("runs").as_posix()
        'runs/journal.sqlite3'
        """
        return resolve(runs_dir) / JOURNAL_FILE

    def _setup(self) -> None:
        db = self._db
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
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
        if version < SCHEMA_VERSION:
            with self.write() as tx:
                # Re-read inside the write lock: another process may have just migrated it.
                version = int(tx.execute("PRAGMA user_version").fetchone()[0])
                has_runs = tx.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'"
                ).fetchone()
                if has_runs and version >= 1:
                    _migrate(tx, version)
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        tx.execute(statement)
                tx.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def __repr__(self) -> str:
        return f"Journal({str(self.runs_dir)!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connection. Idempotent."""
        with self._lock:
            self._db.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One committed write transaction (the lock keeps worker threads in turn)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise JournalError(f"cannot read the run journal {self.path}: {exc}") from None

    def lock_path(self, run_id: int) -> Path:
        return self.runs_dir / "locks" / f"run-{run_id}.lock"

    def live(self, run_id: int) -> bool:
        return RunLock.held(self.lock_path(run_id))

    def state_of(self, run_id: int, stored: str) -> str:
        if stored != RUNNING:
            return stored
        return RUNNING if self.live(run_id) else UNFINISHED


def _migrate(tx: sqlite3.Connection, version: int) -> None:
    """Bring a journal written by an older spectrum-tools up to :data:`SCHEMA_VERSION`.

    Version 1 -> 2: runs get their environment key, derived from the stored host as the
    version 1 client spoke to it (:func:`~spectrum_tools.journal.schema.legacy_environment`).
    """
    for step in range(version, SCHEMA_VERSION):
        for statement in MIGRATIONS.get(step, ()):
            tx.execute(statement)
        if step == 1:
            hosts = tx.execute("SELECT run_id, host FROM runs").fetchall()
            tx.executemany(
                "UPDATE runs SET environment = ? WHERE run_id = ?",
                [(legacy_environment(str(host)), run_id) for run_id, host in hosts],
            )
