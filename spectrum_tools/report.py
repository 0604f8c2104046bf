"""Reports of a run: one Excel workbook (or a folder of CSVs) an analyst can act on.

I/O: writes ``.xlsx`` / ``.csv`` files; reads the run journal when given a run id (or a
results frame whose ``attrs["run_id"]`` names a run and no plan). Never touches the network.

The workbook has four sheets:

* ``Summary`` — environment, input file and hash, times, requests sent, counts by outcome
  and by workflow status, and a bar chart of orders by outcome;
* ``Orders`` — one row per purchase order with its outcome;
* ``Lines`` — the analyst's own rows with ``outcome``, ``details`` and ``attempts``
  appended: the error file, ready to fix and upload again (:func:`~spectrum_tools.read_updates`
  finds it without being told the sheet);
* ``Invalid rows`` — the rows that failed validation, with their problems.

Every cell is written by :func:`spectrum_tools.sheets.write_workbook`: text is a typed
string cell (ids stay ``00123456``; ``=HYPERLINK(...)`` is shown, never run), columns are
sized, headers carry filters. The openpyxl write-only writer streams the rows, so a
100,000-order run writes in tens of seconds with flat memory. A table longer than Excel's
1,048,575 data rows continues on ``Lines (2)`` and so on.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol, cast

import pandas as pd

from spectrum_tools.charts import add_bar_chart
from spectrum_tools.errors import ConfigError
from spectrum_tools.journal import Journal
from spectrum_tools.planning import Plan
from spectrum_tools.readback.changes import (
    CURRENT_STATUS,
    FINAL_STATUSES,
    LEAVES_FINAL,
    READ_AT,
    READ_VIA,
    WANTED_STATUS,
)
from spectrum_tools.results import line_results
from spectrum_tools.schema import (
    ATTEMPTS,
    DETAILS,
    KEY_COLUMNS,
    LINE_ID,
    OUTCOME,
    PO,
    PROBLEM,
    SOURCE_ROW,
    SOURCE_SHEET,
    STATUS,
    VALID,
    Outcome,
)
from spectrum_tools.sheets import CORRECTIONS, write_table, write_workbook

__all__ = [
    "EXCEL_MAX_DATA_ROWS",
    "SHEET_CORRECTIONS",
    "SHEET_INVALID",
    "SHEET_LINES",
    "SHEET_ORDERS",
    "SHEET_SUMMARY",
    "RunLike",
    "export_csv",
    "write_report",
]

SHEET_SUMMARY: Final = "Summary"
SHEET_ORDERS: Final = "Orders"
SHEET_LINES: Final = "Lines"
SHEET_INVALID: Final = "Invalid rows"
SHEET_CHANGES: Final = "Changes"
SHEET_CORRECTIONS: Final = "Corrections"
CORRECTION_COLUMNS: Final = ("row", "column", "original", "corrected")
"""The Corrections sheet: each cell the analyst corrected in the app before sending."""

EXCEL_MAX_DATA_ROWS: Final = 1_048_575
"""Rows per sheet below the header row (Excel's limit is 1,048,576 rows in all)."""

# The Summary table's columns and sections.
_SECTION, _ITEM, _VALUE = "section", "item", "value"
_RUN = "run"
_ORDERS_BY_OUTCOME = "orders by outcome"
_LINES_BY_OUTCOME = "lines by outcome"
_LINES_BY_STATUS = "lines by workflow status"
_UPDATED_BY_STATUS = "lines updated by workflow status"

# Columns the toolkit adds to an analyst's rows; a re-uploaded error file carries them back
# in, and read_updates renames a clash such as "source_row" to "source_row (E)".
_OWN_COLUMNS: Final = frozenset({SOURCE_SHEET, SOURCE_ROW, VALID, PROBLEM, OUTCOME, DETAILS})
_OWN_COPY = re.compile(r"^(source_row|source_sheet|valid|problem) \([A-Z]{1,3}\)$")
_CSV_NAMES: Final = {
    SHEET_SUMMARY: "summary",
    SHEET_ORDERS: "orders",
    SHEET_LINES: "lines",
    SHEET_INVALID: "invalid-rows",
}


class RunLike(Protocol):
    """What a report needs from a journal's run record (``journal.RunRecord`` has it)."""

    @property
    def run_id(self) -> int: ...

    @property
    def meta(self) -> Mapping[str, Any]: ...

    @property
    def results(self) -> pd.DataFrame: ...

    @property
    def lines(self) -> pd.DataFrame: ...

    @property
    def invalid_rows(self) -> pd.DataFrame: ...


RunOrResults = RunLike | int | pd.DataFrame


@dataclass(frozen=True)
class _Tables:
    """Everything a report shows, gathered from a run record or a results frame."""

    meta: Mapping[str, Any]
    orders: pd.DataFrame
    lines: pd.DataFrame | None
    invalid: pd.DataFrame | None
    notes: tuple[str, ...] = field(default=())
    changes: pd.DataFrame | None = None
    corrections: pd.DataFrame | None = None


def write_report(
    run_or_results: RunOrResults,
    path: str | Path,
    *,
    plan: Plan | None = None,
    runs_dir: str | Path | None = None,
    changes: pd.DataFrame | None = None,
) -> Path:
    """Write a run's report workbook: Summary (with a chart), Orders, Lines, Invalid rows,
    Changes (what each line item held before -> what the run set) when known, and
    Corrections (the cells the analyst corrected in the app, from the rows'
    ``attrs["corrections"]``, kept by the journal) when there are any.

    Parameters
    ----------
    run_or_results
        A run record from the journal, a run id (loaded from the journal in ``runs_dir``),
        or the results frame :func:`~spectrum_tools.send_updates` returned.
    path
        The ``.xlsx`` file to write (parent folders are created).
    plan
        With a results frame: the plan that was sent, which supplies the Lines and
        Invalid rows sheets. Without it, a frame whose ``attrs["run_id"]`` is set takes
        them from the journal; otherwise those two sheets are left empty (Summary says so).
    runs_dir
        The runs folder whose journal holds the run (default ``./spectrum-runs``; for a
        results frame, the journal named in its ``attrs``).
    changes
        A preview's lines (current -> wanted per line item), shown as the Changes sheet;
        for a run from the journal, its before-images give that sheet.

    Returns
    -------
    pathlib.Path
        The workbook written.

    Raises
    ------
    ConfigError
        ``path`` is not an ``.xlsx`` file, or ``run_or_results`` is none of the above.
    JournalError
        There is no journal there, or it does not hold that run.

    Examples
    --------
    >>> from spectrum_tools import plan_updates, read_updates
    >>> rows = pd.DataFrame({"PO": ["P1"], "Recipe Set ID": ["00123456"], "Status": ["done"]})
    >>> plan = plan_updates(read_updates(rows))
    >>> results = pd.DataFrame({"purchaseOrderNumber": ["P1"], "outcome": ["invalid"],
    ...     "details": ["row 2: unknown status"], "attempts": [0]})
    >>> out = write_report(results, getfixture("tmp_path") / "r.xlsx", plan=plan)
    >>> read_updates(out)["recipeSetReadableId"].tolist()  # the Lines sheet, found by itself
    ['00123456']
    """
    target = Path(path)
    if target.suffix.lower() != ".xlsx":
        raise ConfigError(f"{target}: a report is an .xlsx workbook (use export_csv for CSV)")
    tables = _gather(run_or_results, plan=plan, runs_dir=runs_dir)
    if changes is not None:
        tables = dataclasses.replace(tables, changes=changes)
    if tables.changes is not None:
        leaving = int(tables.changes[LEAVES_FINAL].astype(bool).sum())
        if leaving:
            note = f"{leaving:,} line item(s) moved out of delivered or cancelled (see Changes)"
            tables = dataclasses.replace(tables, notes=(*tables.notes, note))
    summary, chart_rows = _summary(tables)
    sheets = dict(_split(SHEET_SUMMARY, summary))
    sheets.update(_split(SHEET_ORDERS, _plain(tables.orders)))
    sheets.update(_split(SHEET_LINES, _lines_view(tables.lines)))
    sheets.update(_split(SHEET_INVALID, _invalid_view(tables.invalid)))
    if tables.changes is not None:
        sheets.update(_split(SHEET_CHANGES, _plain(tables.changes)))
    if tables.corrections is not None:
        sheets.update(_split(SHEET_CORRECTIONS, tables.corrections))

    def decorate(book: Any) -> None:
        if chart_rows is not None:
            add_bar_chart(
                book, SHEET_SUMMARY, chart_rows, title="Orders by outcome", y_title="orders"
            )

    return write_workbook(target, sheets, decorate=decorate)


def export_csv(
    run_or_results: RunOrResults,
    folder: str | Path,
    *,
    plan: Plan | None = None,
    runs_dir: str | Path | None = None,
    prefix: str = "",
) -> list[Path]:
    """Write a run's report tables as CSV files, safe to open in Excel.

    The same tables as :func:`write_report`, one file each: ``summary.csv``,
    ``orders.csv``, ``lines.csv`` (the error file, readable by
    :func:`~spectrum_tools.read_updates`) and ``invalid-rows.csv``. Text that Excel would
    run as a formula is escaped with a leading ``'`` (see
    :func:`~spectrum_tools.write_table`).

    Parameters
    ----------
    run_or_results, plan, runs_dir
        As for :func:`write_report`.
    folder
        Where to write (created when missing).
    prefix
        Put before every file name, e.g. ``"run-12-"``.

    Returns
    -------
    list of pathlib.Path
        The files written, in the order above.
    """
    out_dir = Path(folder)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"{out_dir}: CSV export needs a folder, and this is a file")
    tables = _gather(run_or_results, plan=plan, runs_dir=runs_dir)
    frames = {
        SHEET_SUMMARY: _summary(tables)[0],
        SHEET_ORDERS: _plain(tables.orders),
        SHEET_LINES: _lines_view(tables.lines),
        SHEET_INVALID: _invalid_view(tables.invalid),
    }
    return [
        write_table(frame, out_dir / f"{prefix}{_CSV_NAMES[name]}.csv")
        for name, frame in frames.items()
    ]


# --------------------------------------------------------------------------- gathering


def _gather(source: RunOrResults, *, plan: Plan | None, runs_dir: str | Path | None) -> _Tables:
    if isinstance(source, pd.DataFrame):
        return _from_results(source, plan=plan, runs_dir=runs_dir)
    if isinstance(source, int) and not isinstance(source, bool):
        return _from_record(_load_run(source, runs_dir))
    if all(hasattr(source, a) for a in ("run_id", "meta", "results", "lines", "invalid_rows")):
        return _from_record(cast(RunLike, source))
    raise ConfigError(
        f"report: pass a run record, a run id or a results frame, not {type(source).__name__}"
    )


def _load_run(run_id: int, runs_dir: str | Path | None) -> RunLike:
    with Journal.existing(runs_dir) as journal:  # a report never creates a runs folder
        return journal.load_run(run_id)


def _from_record(record: RunLike) -> _Tables:
    meta = dict(record.meta)
    meta.setdefault("run_id", record.run_id)
    return _Tables(
        meta=meta,
        orders=record.results,
        lines=record.lines,
        invalid=record.invalid_rows,
        changes=_record_changes(record),
        corrections=_corrections(record.lines),
    )


def _corrections(rows: pd.DataFrame | None) -> pd.DataFrame | None:
    """The analyst's corrections kept with the rows (None when there are none)."""
    kept = () if rows is None else rows.attrs.get(CORRECTIONS, ())
    if not kept:
        return None
    records = [tuple(str(v) for v in c) for c in kept]
    return pd.DataFrame(records, columns=list(CORRECTION_COLUMNS), dtype=object)


def _record_changes(record: RunLike) -> pd.DataFrame | None:
    """A journaled run's Changes: each line item it sent, before -> what it set."""
    before = getattr(record, "before_images", None)
    plan = getattr(record, "plan", None)
    if not isinstance(before, pd.DataFrame) or before.empty or not isinstance(plan, Plan):
        return None
    merged = plan.line_items().merge(before, on=[PO, LINE_ID], how="inner")
    held = merged["status"].astype(str)
    return pd.DataFrame(
        {
            PO: merged[PO],
            LINE_ID: merged[LINE_ID],
            CURRENT_STATUS: held,
            WANTED_STATUS: merged[STATUS],
            LEAVES_FINAL: held.isin(FINAL_STATUSES) & (held != merged[STATUS].astype(str)),
            READ_AT: merged["read_at"],
            READ_VIA: merged["read_via"],
        }
    )


def _from_results(
    results: pd.DataFrame, *, plan: Plan | None, runs_dir: str | Path | None
) -> _Tables:
    meta: dict[str, Any] = {str(k): v for k, v in results.attrs.items()}
    if plan is not None:
        valid = plan.rows[VALID].to_numpy(bool)
        return _Tables(
            meta=meta,
            orders=results,
            lines=line_results(results, plan),
            invalid=plan.rows.loc[~valid],
            corrections=_corrections(plan.rows),
        )
    run_id = meta.get("run_id")
    if isinstance(run_id, int) and not isinstance(run_id, bool):
        if runs_dir is None and meta.get("journal"):  # send_updates says where it wrote
            runs_dir = Path(str(meta["journal"])).parent
        record = _load_run(run_id, runs_dir)
        merged: dict[str, Any] = {**dict(record.meta), **meta}
        return _Tables(
            meta=merged,
            orders=results,
            lines=record.lines,
            invalid=record.invalid_rows,
            changes=_record_changes(record),
            corrections=_corrections(record.lines),
        )
    note = "Lines and Invalid rows: not available (pass plan= with a results frame)"
    return _Tables(meta=meta, orders=results, lines=None, invalid=None, notes=(note,))


# --------------------------------------------------------------------------- tables


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    """A copy without ``attrs`` (they may hold objects no sheet should show)."""
    out = df.reset_index(drop=True)
    out.attrs = {}
    return out


def _analyst_extras(df: pd.DataFrame) -> list[str]:
    return [
        str(c)
        for c in df.columns
        if c not in KEY_COLUMNS
        and c not in _OWN_COLUMNS
        and c != ATTEMPTS
        and not _OWN_COPY.match(str(c))
    ]


def _lines_view(lines: pd.DataFrame | None) -> pd.DataFrame:
    """The analyst's columns first (so the sheet uploads again), then what happened."""
    if lines is None:
        return pd.DataFrame(columns=[*KEY_COLUMNS, SOURCE_ROW, OUTCOME, DETAILS, ATTEMPTS])
    head = [c for c in KEY_COLUMNS if c in lines.columns]
    tail = [c for c in (SOURCE_ROW, OUTCOME, DETAILS, ATTEMPTS) if c in lines.columns]
    return _plain(lines[[*head, *_analyst_extras(lines), *tail]])


def _invalid_view(invalid: pd.DataFrame | None) -> pd.DataFrame:
    if invalid is None:
        return pd.DataFrame(columns=[SOURCE_ROW, *KEY_COLUMNS, PROBLEM])
    head = [c for c in (SOURCE_ROW, *KEY_COLUMNS) if c in invalid.columns]
    tail = [c for c in (PROBLEM,) if c in invalid.columns]
    return _plain(invalid[[*head, *_analyst_extras(invalid), *tail]])


def _split(name: str, df: pd.DataFrame) -> Iterator[tuple[str, pd.DataFrame]]:
    """``(sheet name, chunk)`` pairs that each fit in one Excel sheet."""
    if len(df) <= EXCEL_MAX_DATA_ROWS:
        yield name, df
        return
    for part, start in enumerate(range(0, len(df), EXCEL_MAX_DATA_ROWS), start=1):
        label = name if part == 1 else f"{name} ({part})"
        yield label, df.iloc[start : start + EXCEL_MAX_DATA_ROWS]


# --------------------------------------------------------------------------- summary


def _text(value: object) -> object:
    """A meta value as one Summary cell: numbers stay numbers, the rest becomes text."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return value
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, Mapping):
        return json.dumps(dict(value), sort_keys=True, default=str)
    return " ".join(str(value).split())


def _counts(values: pd.Series, order: Sequence[str] = ()) -> list[tuple[str, int]]:
    """Value counts, known values in ``order`` first, then the others by count."""
    counts = values.astype(str).value_counts(sort=True)
    known = [(v, int(counts[v])) for v in order if v in counts.index]
    rest = [(str(v), int(n)) for v, n in counts.items() if v not in order]
    return known + rest


def _summary(tables: _Tables) -> tuple[pd.DataFrame, tuple[int, int] | None]:
    """The Summary table and the worksheet rows of "orders by outcome" (for the chart)."""
    meta, orders, lines = tables.meta, tables.orders, tables.lines
    outcomes = [o.value for o in Outcome]
    attempts = pd.to_numeric(orders[ATTEMPTS], errors="coerce") if ATTEMPTS in orders else None
    rows: list[tuple[str, str, object]] = [
        (_RUN, "Run", _text(meta.get("run_id"))),
        (_RUN, "Environment (host)", _text(meta.get("host"))),
        (_RUN, "Input file", _text(meta.get("source_name"))),
        (_RUN, "Input file hash", _text(meta.get("source_hash"))),
        (_RUN, "Started", _text(meta.get("started_at"))),
        (_RUN, "Finished", _text(meta.get("finished_at"))),
        (_RUN, "State", _text(meta.get("state"))),
        (_RUN, "Stopped because", _text(meta.get("stopped_reason", meta.get("stopped")))),
    ]
    if meta.get("parent_run") is not None:
        rows.append((_RUN, "Retry of run", _text(meta.get("parent_run"))))
    if meta.get("dry_run"):
        rows.append((_RUN, "Dry run", "yes: nothing was sent"))
    if meta.get("options"):
        rows.append((_RUN, "Options", _text(meta.get("options"))))
    if meta.get("journal"):
        rows.append((_RUN, "Run journal", _text(meta.get("journal"))))
    rows += [
        (_RUN, "Requests sent", int(attempts.fillna(0).sum()) if attempts is not None else ""),
        (_RUN, "Orders", len(orders)),
        (_RUN, "Lines", len(lines) if lines is not None else ""),
        (_RUN, "Invalid rows", len(tables.invalid) if tables.invalid is not None else ""),
    ]
    rows += [(_RUN, "Note", note) for note in tables.notes]
    chart: tuple[int, int] | None = None
    if OUTCOME in orders.columns and len(orders):
        by_outcome = _counts(orders[OUTCOME], outcomes)
        first = len(rows) + 2  # worksheet row: header on row 1
        rows += [(_ORDERS_BY_OUTCOME, k, n) for k, n in by_outcome]
        chart = (first, first + len(by_outcome) - 1)
    if lines is not None and OUTCOME in lines.columns and len(lines):
        rows += [(_LINES_BY_OUTCOME, k, n) for k, n in _counts(lines[OUTCOME], outcomes)]
    if lines is not None and STATUS in lines.columns and len(lines):
        sent = lines[lines[OUTCOME] != Outcome.INVALID.value] if OUTCOME in lines else lines
        rows += [(_LINES_BY_STATUS, k, n) for k, n in _counts(sent[STATUS])]
        if OUTCOME in lines.columns:
            done = lines[lines[OUTCOME] == Outcome.UPDATED.value]
            rows += [(_UPDATED_BY_STATUS, k, n) for k, n in _counts(done[STATUS])]
    frame = pd.DataFrame(rows, columns=[_SECTION, _ITEM, _VALUE], dtype=object)
    return frame, chart
