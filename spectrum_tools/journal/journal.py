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
  order's final outcome.

Storage only, one concept per module: :mod:`~spectrum_tools.journal.schema` (layout and
tables), :mod:`~spectrum_tools.journal.locks` (OS run locks),
:mod:`~spectrum_tools.journal.database` (the connection),
:mod:`~spectrum_tools.journal.recorder` (writing a run as it goes),
:mod:`~spectrum_tools.journal.queries` (reading runs back),
:mod:`~spectrum_tools.journal.codec` (rows and plans to and from the tables).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import pandas as pd

from spectrum_tools.engine import SendOptions
from spectrum_tools.journal import queries, recorder
from spectrum_tools.journal.database import Database
from spectrum_tools.journal.queries import RunRecord
from spectrum_tools.journal.recorder import RunRecorder
from spectrum_tools.journal.schema import DEFAULT_RUNS_DIR, JOURNAL_FILE
from spectrum_tools.planning import Plan

__all__ = ["DEFAULT_RUNS_DIR", "JOURNAL_FILE", "Journal", "RunRecord", "RunRecorder"]


class Journal(Database):
    """The run journal in a runs folder.

    Its parameters, attributes and errors are :class:`~.database.Database`'s (the
    runs folder, the database path; :class:`JournalError` when the file is not a journal).

    Examples
    --------
    >>> with Journal(getfixture("tmp_path") / "runs") as journal:
    ...     journal.path.name, len(journal.runs()), journal.latest_unfinished()
    ('journal.sqlite3', 0, None)
    """

    def start_run(
        self,
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
        """Record a new run and its plan (see :func:`.recorder.start_run`)."""
        return recorder.start_run(
            self,
            plan,
            host=host,
            environment=environment,
            source_name=source_name,
            source_hash=source_hash,
            options=options,
            parent_run=parent_run,
            dry_run=dry_run,
            stop=stop,
            before_images=before_images,
        )

    def continue_run(self, run_id: int, *, stop: threading.Event | None = None) -> RunRecorder:
        """Take a run up again: see :func:`~spectrum_tools.journal.recorder.continue_run`."""
        return recorder.continue_run(self, run_id, stop=stop)

    def runs(self) -> pd.DataFrame:
        """One row per run, newest last: see :func:`~spectrum_tools.journal.queries.runs`."""
        return queries.runs(self)

    def latest_unfinished(self, environment: str | None = None) -> int | None:
        """The latest unfinished run (see :func:`.queries.latest_unfinished`)."""
        return queries.latest_unfinished(self, environment)

    def applied(self, environment: str) -> pd.DataFrame:
        """Line items runs to an environment set: see :func:`.queries.applied`."""
        return queries.applied(self, environment)

    def touched_after(self, run_id: int, environment: str) -> pd.DataFrame:
        """Line items later runs set or may have set: see :func:`.queries.touched_after`."""
        return queries.touched_after(self, run_id, environment)

    def load_run(self, run_id: int) -> RunRecord:
        """Rebuild one run: see :func:`~spectrum_tools.journal.queries.load_run`."""
        return queries.load_run(self, run_id)
