"""The journal's storage layout: where it lives, its SQL tables, the states it stores.

Pure: no I/O (constants and three tiny helpers). The layout is described in
:mod:`spectrum_tools.journal`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from spectrum_tools.errors import SpectrumError
from spectrum_tools.schema import (
    DETAILS,
    LINE_COUNT,
    LINE_ID,
    OUTCOME,
    PO,
    SOURCE_ROWS,
    Outcome,
)
from spectrum_tools.urls import environment_key, is_loopback

__all__ = [
    "ATTEMPT_COLUMNS",
    "BEFORE_COLUMNS",
    "BUSY_TIMEOUT_S",
    "DEFAULT_RUNS_DIR",
    "DONE",
    "FINISHED",
    "INTERRUPTED",
    "IN_FLIGHT",
    "JOURNAL_FILE",
    "MIGRATIONS",
    "ORDER_COLUMNS",
    "PENDING",
    "RUNNING",
    "RUN_ID",
    "SCHEMA",
    "SCHEMA_VERSION",
    "STOPPED",
    "SUCCESS",
    "UNFINISHED",
    "legacy_environment",
    "now",
    "resolve",
]

DEFAULT_RUNS_DIR: Final = Path("spectrum-runs")
"""The runs folder when none is given, relative to the working directory of the call."""

JOURNAL_FILE: Final = "journal.sqlite3"
SCHEMA_VERSION: Final = 2
"""``PRAGMA user_version`` of a journal this version writes; newer ones are refused.

Version 2 added ``runs.environment`` (the environment key, see
:func:`spectrum_tools.urls.environment_key`) and ``orders.left_out``; a version 1 journal
is migrated when opened (:data:`MIGRATIONS`)."""
BUSY_TIMEOUT_S: Final = 30.0
RUN_ID: Final = "run_id"

# Order states inside the journal (the results frame shows the outcome only).
PENDING, IN_FLIGHT, DONE = "pending", "in_flight", "done"
# Run states as stored; "unfinished" is derived: stored "running" but no process holds it.
RUNNING, FINISHED, STOPPED, INTERRUPTED, UNFINISHED = (
    "running",
    "finished",
    "stopped",
    "interrupted",
    "unfinished",
)
SUCCESS = (Outcome.UPDATED.value, Outcome.PARTIAL.value)

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id         INTEGER PRIMARY KEY AUTOINCREMENT,
    parent_run     INTEGER REFERENCES runs(run_id),
    started_at     TEXT NOT NULL,
    finished_at    TEXT,
    state          TEXT NOT NULL,
    stopped_reason TEXT,
    host           TEXT NOT NULL,
    environment    TEXT NOT NULL DEFAULT '',
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
    left_out            TEXT NOT NULL DEFAULT '',
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
CREATE TABLE IF NOT EXISTS before_images (
    run_id              INTEGER NOT NULL REFERENCES runs(run_id),
    purchaseOrderNumber TEXT NOT NULL,
    recipeSetReadableId TEXT NOT NULL,
    status              TEXT NOT NULL,
    read_at             TEXT NOT NULL,
    read_via            TEXT NOT NULL,
    PRIMARY KEY (run_id, purchaseOrderNumber, recipeSetReadableId)
);
CREATE INDEX IF NOT EXISTS runs_by_environment ON runs(environment, run_id);
"""
BEFORE_COLUMNS: Final = (PO, LINE_ID, "status", "read_at", "read_via")
"""The columns of a run's before-images (``status`` empty: not known when it was read)."""

MIGRATIONS: Final = {
    # 1 -> 2: the environment key (legacy rows get theirs from the stored host, see
    # legacy_environment) and the line items a resume or retry deliberately left out.
    1: (
        "ALTER TABLE runs ADD COLUMN environment TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE orders ADD COLUMN left_out TEXT NOT NULL DEFAULT ''",
        "CREATE INDEX IF NOT EXISTS runs_by_environment ON runs(environment, run_id)",
    ),
}
"""Statements that bring a journal of version ``key`` to version ``key + 1``."""

ORDER_COLUMNS = ["seq", "kind", PO, LINE_COUNT, SOURCE_ROWS, "state", OUTCOME, "http_status"]
ORDER_COLUMNS += [DETAILS, "missing_ids", "attempts", "elapsed_s"]
ATTEMPT_COLUMNS = [PO, "attempt", "session", "line_count", "sent_at", "answered_at"]
ATTEMPT_COLUMNS += ["http_status", "details"]


def legacy_environment(host: str) -> str:
    """The environment key of a run recorded before journals stored one (version 1).

    Version 1 kept only the host (``host`` or ``host:port``), and its clients spoke
    ``http://`` to loopback hosts only and ``https://`` to every other, with no path. So a
    legacy run's key is that URL, normalised; a host that does not parse is kept as is
    (it then matches no client's key, so nothing is skipped or resumed by mistake).

    Examples
    --------
    >>> legacy_environment("127.0.0.1:8765"), legacy_environment("Spectrum.Example.com:443")
    ('http://127.0.0.1:8765', 'https://spectrum.example.com')
    """
    name = host.partition("]")[0] + "]" if host.startswith("[") else host.partition(":")[0]
    scheme = "http" if is_loopback(name) else "https"
    try:
        return environment_key(f"{scheme}://{host}")
    except SpectrumError:
        return host


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def resolve(runs_dir: str | Path | None) -> Path:
    # DEFAULT_RUNS_DIR is read at call time (tests point it at a temporary folder).
    return Path(runs_dir) if runs_dir is not None else DEFAULT_RUNS_DIR
