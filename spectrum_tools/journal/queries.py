"""Reading the journal: the list of runs, one run in full, and what runs have applied.

I/O: reads the journal database; never writes. Storage only: deciding what to skip is the
façade's business (:func:`spectrum_tools.runs.skip_applied`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from spectrum_tools.journal.codec import order_result, rebuild_plan, rows_from_json
from spectrum_tools.journal.database import Database
from spectrum_tools.journal.recorder import meta_row
from spectrum_tools.journal.schema import (
    ATTEMPT_COLUMNS,
    BEFORE_COLUMNS,
    IN_FLIGHT,
    ORDER_COLUMNS,
    RUN_ID,
    SUCCESS,
)
from spectrum_tools.planning import Plan
from spectrum_tools.results import line_results, results_frame
from spectrum_tools.schema import LINE_ID, OUTCOME, PO, STATUS, VALID, Outcome

__all__ = ["RunRecord", "applied", "latest_unfinished", "load_run", "runs", "touched_after"]


@dataclass(frozen=True, eq=False)
class RunRecord:
    """One run as the journal holds it: enough for a report, a resume or a retry.

    Attributes
    ----------
    run_id
        The run's number in its journal.
    meta
        ``host`` (for display), ``environment`` (the environment key runs are matched
        by), ``source_name, source_hash, options, started_at, finished_at, state,
        stopped_reason, parent_run``, plus ``dry_run``, ``sessions`` (1 + resumes),
        ``requests``, ``tool_version`` and ``journal`` (the database path). Times are
        ISO 8601 text in UTC.
    results
        One row per order in the format of :func:`spectrum_tools.results.results_frame`.
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
    before_images
        What Spectrum held for each line item the run sent, read just before it
        (``purchaseOrderNumber, recipeSetReadableId, status, read_at, read_via``; an empty
        ``status`` was not known). Empty when the run was sent without read-back.
    """

    run_id: int
    meta: dict[str, Any]
    results: pd.DataFrame
    lines: pd.DataFrame
    invalid_rows: pd.DataFrame
    plan: Plan
    attempts: pd.DataFrame
    before_images: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=list(BEFORE_COLUMNS), dtype=object)
    )

    @property
    def counts(self) -> dict[str, int]:
        """Orders per outcome, every outcome listed (zeros included)."""
        found = self.results[OUTCOME].value_counts()
        return {o.value: int(found.get(o.value, 0)) for o in Outcome}

    def __repr__(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in self.counts.items() if v)
        return f"<RunRecord {self.run_id} ({self.meta['state']}) on {self.meta['host']}: {counts}>"


def runs(db: Database) -> pd.DataFrame:
    """One row per run, newest last.

    Returns
    -------
    pandas.DataFrame
        ``run_id, parent_run, started_at, finished_at, state, host, source_name,
        requests``, then a count of orders per outcome (one column per
        :class:`~spectrum_tools.schema.Outcome`), ``in_flight`` (orders that were in
        flight when the run ended), ``attempts`` (HTTP requests made) and
        ``environment`` (the environment key runs are matched by). ``state`` is
        ``running`` (a live process is sending it), ``finished``, ``stopped``,
        ``interrupted``, or ``unfinished`` (its process died mid-run: resume it).
    """
    head = [RUN_ID, "parent_run", "started_at", "finished_at", "state", "host"]
    head += ["source_name", "environment"]
    query = f"SELECT {', '.join(head)} FROM runs ORDER BY run_id"  # noqa: S608 - constants
    runs = pd.DataFrame(db.read(query))
    runs = runs if len(runs.columns) else pd.DataFrame(columns=head)
    runs.columns = head
    tallies = db.read(
        "SELECT run_id, outcome, state, COUNT(*), SUM(attempts), SUM(kind = 'request')"
        " FROM orders GROUP BY run_id, outcome, state"
    )
    counts: dict[int, dict[str, int]] = {}
    for run_id, outcome, state, n, attempts, requests in tallies:
        row = counts.setdefault(run_id, {"requests": 0, "attempts": 0, "in_flight": 0})
        row[outcome] = row.get(outcome, 0) + n
        row["requests"] += requests
        row["attempts"] += attempts or 0
        if state == IN_FLIGHT:
            row["in_flight"] += n
    columns = ["requests", *(o.value for o in Outcome), "in_flight", "attempts"]
    table = pd.DataFrame(
        [[counts.get(r, {}).get(c, 0) for c in columns] for r in runs[RUN_ID]],
        columns=columns,
        dtype="int64",
    )
    out = pd.concat([runs.drop(columns="environment").reset_index(drop=True), table], axis=1)
    out["environment"] = runs["environment"].astype(object).to_numpy()
    out[RUN_ID] = out[RUN_ID].astype("int64")
    out["parent_run"] = out["parent_run"].astype("Int64")
    out["state"] = [db.state_of(int(r), s) for r, s in zip(out[RUN_ID], out["state"], strict=True)]
    return out


def latest_unfinished(db: Database, environment: str | None = None) -> int | None:
    """The most recent run with orders still pending that no live process is sending.

    Dry runs never count; with ``environment`` (an environment key) only its runs do.
    Returns None when every run went to the end.
    """
    rows = db.read(
        "SELECT DISTINCT r.run_id FROM runs r JOIN orders o ON o.run_id = r.run_id"
        " WHERE r.dry_run = 0 AND o.kind = 'request' AND o.outcome = ?"
        " AND (? IS NULL OR r.environment = ?)"
        " ORDER BY r.run_id DESC",
        (Outcome.PENDING.value, environment, environment),
    )
    for (run_id,) in rows:
        if not db.live(int(run_id)):
            return int(run_id)
    return None


def applied(db: Database, environment: str) -> pd.DataFrame:
    """Line items that runs to ``environment`` are known to have set, with the run that did it.

    ``environment`` is an environment key (``client.environment_key``): runs match on it
    exactly, so two environments behind one gateway never count for each other.

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
    rows = db.read(
        "SELECT o.purchaseOrderNumber, l.recipeSetReadableId, l.workflowStatus, o.run_id,"
        " o.outcome, o.missing_ids || ',' || o.left_out, o.last_attempt"
        " FROM orders o JOIN runs r ON r.run_id = o.run_id"
        " JOIN lines l ON l.run_id = o.run_id AND l.seq = o.seq"
        " WHERE r.environment = ? AND r.dry_run = 0"
        " AND o.kind = 'request' AND o.attempts > 0 AND o.outcome != ?",
        (environment, Outcome.NOT_FOUND.value),
    )
    cols = [PO, LINE_ID, STATUS, RUN_ID, OUTCOME, "missing", "seq"]
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
    latest = sent.sort_values(["seq", RUN_ID], kind="stable").drop_duplicates(
        [PO, LINE_ID], keep="last"
    )
    done = latest.loc[latest[OUTCOME].isin(SUCCESS), [PO, LINE_ID, STATUS, RUN_ID]]
    return done.reset_index(drop=True).astype({RUN_ID: "int64"})


def touched_after(db: Database, run_id: int, environment: str) -> pd.DataFrame:
    """Line items that runs after ``run_id`` on ``environment`` set, or may have set.

    What a resume or a retry of ``run_id`` must not put back over (issue 11): a line item
    of a later, not dry, run whose order was sent and came back ``updated``, ``partial``
    (minus its missing ids), ``failed`` (the effect of a failed attempt is unknown), was
    in flight when that run ended, or is ``pending`` after an answer that was not a
    refusal (401/403 change nothing). Line items a later run left out, and ``not_found``
    orders, changed nothing and do not count.

    Returns
    -------
    pandas.DataFrame
        ``purchaseOrderNumber, recipeSetReadableId, run_id``: one row per line item, with
        the latest such run.
    """
    rows = db.read(
        "SELECT o.purchaseOrderNumber, l.recipeSetReadableId, o.run_id,"
        " o.missing_ids || ',' || o.left_out"
        " FROM orders o JOIN runs r ON r.run_id = o.run_id"
        " JOIN lines l ON l.run_id = o.run_id AND l.seq = o.seq"
        " WHERE r.environment = ? AND r.run_id > ? AND r.dry_run = 0"
        " AND o.kind = 'request' AND o.attempts > 0"
        " AND (o.outcome IN (?, ?, ?) OR o.state = ?"
        "      OR (o.outcome = ? AND COALESCE(o.http_status, 0) NOT IN (401, 403)))",
        (
            environment,
            int(run_id),
            *SUCCESS,
            Outcome.FAILED.value,
            IN_FLIGHT,
            Outcome.PENDING.value,
        ),
    )
    cols = [PO, LINE_ID, RUN_ID, "left"]
    found = pd.DataFrame(rows, columns=cols)
    if found.empty:
        return pd.DataFrame({PO: [], LINE_ID: []}, dtype=object).assign(
            run_id=pd.Series(dtype="int64")
        )
    pairs = zip(found[LINE_ID], found["left"], strict=True)
    kept = [li not in set(m.split(",")) for li, m in pairs]
    found = found.loc[np.asarray(kept, dtype=bool), [PO, LINE_ID, RUN_ID]]
    latest = found.sort_values(RUN_ID, kind="stable").drop_duplicates([PO, LINE_ID], keep="last")
    return latest.reset_index(drop=True).astype({RUN_ID: "int64"})


def load_run(db: Database, run_id: int) -> RunRecord:
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
        environment,
    ) = meta_row(db, run_id)
    options_dict = json.loads(options)
    (rows_json,) = db.read("SELECT rows FROM run_rows WHERE run_id = ?", (run_id,))[0]
    orders = pd.DataFrame(
        db.read(
            "SELECT seq, kind, purchaseOrderNumber, line_count, source_rows, state, outcome,"
            " http_status, details, missing_ids, attempts, elapsed_s"
            " FROM orders WHERE run_id = ? ORDER BY seq",
            (run_id,),
        ),
        columns=ORDER_COLUMNS,
    )
    lines = db.read(
        "SELECT seq, recipeSetReadableId, workflowStatus FROM lines WHERE run_id = ?"
        " ORDER BY seq, position",
        (run_id,),
    )
    attempts = pd.DataFrame(
        db.read(
            "SELECT purchaseOrderNumber, attempt, session, line_count, sent_at, answered_at,"
            " http_status, details FROM attempts WHERE run_id = ? ORDER BY attempt_id",
            (run_id,),
        ),
        columns=ATTEMPT_COLUMNS,
    ).astype({"http_status": "Int64"})
    plan = rebuild_plan(
        rows_from_json(rows_json),
        orders,
        lines,
        send_partial_orders=bool(options_dict.get("send_partial_orders", False)),
    )
    requests = orders.loc[orders["kind"] == "request"]
    results = results_frame(plan, [order_result(o) for o in requests.itertuples()])
    meta: dict[str, Any] = {
        "host": host,
        "environment": environment,
        "source_name": source_name,
        "source_hash": source_hash,
        "options": options_dict,
        "started_at": started,
        "finished_at": finished,
        "state": db.state_of(int(run_id), state),
        "stopped_reason": reason,
        "parent_run": parent,
        "dry_run": bool(dry_run),
        "sessions": int(sessions),
        "requests": len(requests),
        "tool_version": version,
        "journal": str(db.path),
    }
    before = pd.DataFrame(
        db.read(
            "SELECT purchaseOrderNumber, recipeSetReadableId, status, read_at, read_via"
            " FROM before_images WHERE run_id = ?",
            (run_id,),
        ),
        columns=list(BEFORE_COLUMNS),
        dtype=object,
    )
    rows = plan.rows
    lines_frame = line_results(results, plan)
    lines_frame.attrs = dict(rows.attrs)  # the analyst's headers and corrections
    return RunRecord(
        run_id=int(run_id),
        meta=meta,
        results=results,
        lines=lines_frame,
        invalid_rows=rows.loc[~rows[VALID].to_numpy(bool)].reset_index(drop=True),
        plan=plan,
        attempts=attempts,
        before_images=before,
    )
