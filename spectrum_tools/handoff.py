"""The files an analyst hands on after a run: the error file and the success file.

I/O: writes ``.xlsx`` / ``.csv`` files; reads the run journal when given a run id. Never
touches the network.

The **error file** holds only the rows that did not go through (``invalid``,
``not_found``, ``failed``, ``pending``), in the analyst's own columns (their header texts,
the cells as the sheet had them, their other columns), plus ``outcome`` and ``reason``:
fix the rows and send the file again (:func:`~spectrum_tools.read_updates` reads it; the
``outcome``, ``reason`` and ``row in the sheet`` columns of an earlier error file are
replaced, not repeated). The **success file** holds the rows that did (``updated``,
``skipped``, ``unchanged``, and the rows of a ``partial`` order that Spectrum knew). A dry
run's sendable rows are in neither. Rows the analyst left out in the app are error rows
with outcome ``left_out``.

Like Salesforce Data Loader's ``error*.csv`` / ``success*.csv``: one row per input row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from spectrum_tools.errors import ConfigError
from spectrum_tools.journal import Journal
from spectrum_tools.planning import Plan
from spectrum_tools.results import line_results
from spectrum_tools.schema import (
    ATTEMPTS,
    DETAILS,
    KEY_COLUMNS,
    LINE_ID,
    MISSING_IDS,
    OUTCOME,
    PO,
    PROBLEM,
    SOURCE_ROW,
    SOURCE_SHEET,
    STATUS,
    VALID,
    Outcome,
)
from spectrum_tools.sheets import HEADERS, write_table, write_workbook
from spectrum_tools.validation import ORIGINAL_STATUS

__all__ = [
    "ERROR_OUTCOMES",
    "LEFT_OUT",
    "REASON",
    "ROW_IN_SHEET",
    "SUCCESS_OUTCOMES",
    "Handoff",
    "handoff_rows",
    "write_error_file",
    "write_success_file",
]

REASON: Final = "reason"
"""Why a row did not go through (or what happened to it), in the analyst's words."""
ROW_IN_SHEET: Final = "row in the sheet"
"""The row's number in the sheet it came from."""

LEFT_OUT: Final = "left_out"
"""The outcome of a row the analyst left out before sending (not an order outcome)."""

ERROR_OUTCOMES: Final = frozenset(
    {
        Outcome.INVALID.value,
        Outcome.NOT_FOUND.value,
        Outcome.FAILED.value,
        Outcome.PENDING.value,
        LEFT_OUT,
    }
)
"""Row outcomes that put a row in the error file."""
SUCCESS_OUTCOMES: Final = frozenset(
    {
        Outcome.UPDATED.value,
        Outcome.PARTIAL.value,
        Outcome.SKIPPED.value,
        Outcome.UNCHANGED.value,
    }
)
"""Row outcomes that put a row in the success file."""

# The toolkit's own columns: never the analyst's, so never copied as theirs.
_OWN: Final = frozenset(
    {SOURCE_SHEET, SOURCE_ROW, VALID, PROBLEM, OUTCOME, DETAILS, ATTEMPTS, REASON, ROW_IN_SHEET}
)
_UNKNOWN_LINE: Final = "Spectrum does not know this line item; the rest of its order was set"
_LEFT_OUT_REASON: Final = "left out before sending"


@dataclass(frozen=True)
class Handoff:
    """A run's rows split for handing on.

    Attributes
    ----------
    errors
        The rows that did not go through, analyst's columns then ``outcome``, ``reason``,
        ``row in the sheet``.
    successes
        The rows that did, in the same columns.
    """

    errors: pd.DataFrame
    successes: pd.DataFrame


def handoff_rows(
    lines: pd.DataFrame,
    results: pd.DataFrame,
    *,
    original: pd.DataFrame | None = None,
    headers: Mapping[str, str] | None = None,
    order: Sequence[str] = (),
    left_out: Iterable[int] = (),
) -> Handoff:
    """Split a run's rows into the error rows and the success rows, in the analyst's columns.

    Parameters
    ----------
    lines
        Every row with its order's ``outcome`` and ``details``
        (:func:`~spectrum_tools.line_results`, or a journal run's ``lines``).
    results
        The per-order results (their ``missing_ids`` make the unknown line items of a
        ``partial`` order ``not_found`` rows).
    original
        The rows as read (:func:`~spectrum_tools.read_updates`), before trimming and
        normalising: their key cells are shown as the sheet had them (a status that
        :func:`~spectrum_tools.validation.apply_suggestions` changed shows the new one;
        ``original_status`` keeps the sheet's). Default: the cells as validated.
    headers
        API field -> the analyst's header text. Default: ``original.attrs["headers"]``,
        then ``lines.attrs["headers"]``; fields without one keep the API name (which
        :func:`~spectrum_tools.read_updates` also reads).
    order
        The sheet's header row: the analyst's columns come in this order (the rest after
        them). Default: the three key columns, then the others as read.
    left_out
        Sheet rows the analyst left out before sending (taken from ``original``, which
        must then hold them): error rows with outcome :data:`LEFT_OUT`.

    Returns
    -------
    Handoff
        ``errors`` and ``successes``, each in sheet row order.

    Examples
    --------
    >>> lines = pd.DataFrame({"purchaseOrderNumber": ["P1", "P2"],
    ...     "recipeSetReadableId": ["A", "B"], "workflowStatus": ["completed"] * 2,
    ...     "source_row": [2, 3],
    ...     "outcome": ["updated", "not_found"], "details": ["", "404: no such order"]})
    >>> results = pd.DataFrame({"purchaseOrderNumber": ["P1", "P2"], "missing_ids": ["", ""]})
    >>> files = handoff_rows(lines, results, headers={"purchaseOrderNumber": "PO #"})
    >>> files.errors.columns.tolist()
    ['PO #', 'recipeSetReadableId', 'workflowStatus', 'outcome', 'reason', 'row in the sheet']
    >>> files.errors[["PO #", "outcome", "reason"]].values.tolist()
    [['P2', 'not_found', '404: no such order']]
    """
    rows = lines.sort_values(SOURCE_ROW, kind="stable").reset_index(drop=True)
    outcome, reason = _row_outcomes(rows, results)
    shown = rows.copy()
    if original is not None:
        shown = _original_cells(shown, original)
    names = dict(headers or {})
    for source in (original, lines):
        if not names and source is not None:
            names = dict(source.attrs.get(HEADERS, {}))
    extras = [c for c in rows.columns if c not in KEY_COLUMNS and not _is_own(c)]
    table = pd.DataFrame(
        {names.get(c, c): shown[c].astype(object).to_numpy() for c in KEY_COLUMNS}
        | {c: shown[c].to_numpy() for c in extras}
    )
    table[OUTCOME] = outcome
    table[REASON] = reason
    table[ROW_IN_SHEET] = rows[SOURCE_ROW].to_numpy()
    gone = _left_out_rows(original, set(left_out), set(rows[SOURCE_ROW].tolist()))
    if len(gone):
        extra = pd.DataFrame(
            {names.get(c, c): gone[c].astype(object).to_numpy() for c in KEY_COLUMNS}
            | {c: gone[c].to_numpy() if c in gone else "" for c in extras}
        )
        extra[OUTCOME] = LEFT_OUT
        extra[REASON] = _LEFT_OUT_REASON
        extra[ROW_IN_SHEET] = gone[SOURCE_ROW].to_numpy()
        table = pd.concat([table, extra], ignore_index=True)
        table = table.sort_values(ROW_IN_SHEET, kind="stable").reset_index(drop=True)
    table = table[_in_sheet_order(list(table.columns), order)]
    bad = table[OUTCOME].isin(ERROR_OUTCOMES).to_numpy()
    good = table[OUTCOME].isin(SUCCESS_OUTCOMES).to_numpy()
    return Handoff(
        errors=table.loc[bad].reset_index(drop=True),
        successes=table.loc[good].reset_index(drop=True),
    )


def write_error_file(
    run_or_results: int | pd.DataFrame,
    path: str | Path,
    *,
    plan: Plan | None = None,
    original: pd.DataFrame | None = None,
    headers: Mapping[str, str] | None = None,
    runs_dir: str | Path | None = None,
) -> Path:
    """Write the error file of a run: the rows that did not go through, ready to fix.

    Parameters
    ----------
    run_or_results
        A run id (loaded from the journal in ``runs_dir``), or the results frame
        :func:`~spectrum_tools.send_updates` / :func:`~spectrum_tools.runs.send_plan`
        returned (then ``plan`` is needed, or its ``attrs["run_id"]`` names a run).
    path
        ``.xlsx`` (sheet ``Errors``) or ``.csv`` (formula-escaped, see
        :func:`~spectrum_tools.write_table`).
    plan, original, headers
        The plan that was sent; the rows as read and the analyst's headers (see
        :func:`handoff_rows`).
    runs_dir
        The runs folder (default ``./spectrum-runs``).

    Returns
    -------
    pathlib.Path
        The file written (also when no row failed: it then holds the header only).

    Raises
    ------
    ConfigError
        The extension is neither ``.xlsx`` nor ``.csv``; a results frame without a plan
        or a run id.
    JournalError
        The journal does not hold the run.
    """
    return _write(run_or_results, path, "errors", plan, original, headers, runs_dir)


def write_success_file(
    run_or_results: int | pd.DataFrame,
    path: str | Path,
    *,
    plan: Plan | None = None,
    original: pd.DataFrame | None = None,
    headers: Mapping[str, str] | None = None,
    runs_dir: str | Path | None = None,
) -> Path:
    """Write the success file of a run: the rows that went through (sheet ``Succeeded``).

    Parameters and errors as :func:`write_error_file`.
    """
    return _write(run_or_results, path, "successes", plan, original, headers, runs_dir)


# --------------------------------------------------------------------------- helpers


def _write(
    run_or_results: int | pd.DataFrame,
    path: str | Path,
    which: str,
    plan: Plan | None,
    original: pd.DataFrame | None,
    headers: Mapping[str, str] | None,
    runs_dir: str | Path | None,
) -> Path:
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".xlsx", ".csv"):
        raise ConfigError(f"{target}: write the {which[:-2]} file as .xlsx or .csv")
    lines, results = _lines_and_results(run_or_results, plan, runs_dir)
    files = handoff_rows(lines, results, original=original, headers=headers)
    table = files.errors if which == "errors" else files.successes
    if suffix == ".xlsx":
        sheet = "Errors" if which == "errors" else "Succeeded"
        return write_workbook(target, {sheet: table})
    return write_table(table, target)


def _lines_and_results(
    source: int | pd.DataFrame, plan: Plan | None, runs_dir: str | Path | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    if isinstance(source, pd.DataFrame):
        if plan is not None:
            lines = line_results(source, plan)
            lines.attrs = dict(plan.rows.attrs)
            return lines, source
        run_id = source.attrs.get("run_id")
        if not isinstance(run_id, int) or isinstance(run_id, bool):
            raise ConfigError("pass plan= with a results frame that names no journaled run")
        if runs_dir is None and source.attrs.get("journal"):
            runs_dir = Path(str(source.attrs["journal"])).parent
        source = run_id
    if isinstance(source, bool) or not isinstance(source, int):
        raise ConfigError(f"pass a run id or a results frame, not {type(source).__name__}")
    with Journal.existing(runs_dir) as journal:
        record = journal.load_run(source)
    return record.lines, record.results


def _left_out_rows(original: pd.DataFrame | None, rows: set[int], sent: set[int]) -> pd.DataFrame:
    """The rows of ``original`` the analyst left out (and that were not sent after all)."""
    wanted = rows - sent
    if not wanted:
        return pd.DataFrame()
    if original is None:
        raise ConfigError("rows left out need the rows as read (original=) to be shown")
    at = original[SOURCE_ROW].astype("int64").isin(wanted).to_numpy()
    return original.loc[at].drop_duplicates(SOURCE_ROW)


def _in_sheet_order(columns: list[str], order: Sequence[str]) -> list[str]:
    """The analyst's columns in the sheet's order, then the others, then our three."""
    ours = [OUTCOME, REASON, ROW_IN_SHEET]
    theirs = [c for c in columns if c not in ours]
    first = [c for c in dict.fromkeys(str(o) for o in order) if c in theirs]
    return [*first, *(c for c in theirs if c not in first), *ours]


def _is_own(column: object) -> bool:
    name = str(column)
    if name in _OWN:
        return True
    # read_updates renames a sheet column that clashes with its own: "source_row (E)".
    base = name.rsplit(" (", 1)[0] if name.endswith(")") else name
    return base in _OWN


def _row_outcomes(rows: pd.DataFrame, results: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each row's outcome and reason; unknown line items of a partial order: not_found."""
    outcome = rows[OUTCOME].astype(str).to_numpy(dtype=object)
    reason = rows[DETAILS].fillna("").astype(str).to_numpy(dtype=object)
    if MISSING_IDS in results.columns and len(rows):
        missing = results.drop_duplicates(PO).set_index(PO)[MISSING_IDS]
        by_order = rows[PO].map(missing).fillna("").astype(str).tolist()
        unknown = np.fromiter(
            (
                bool(m) and str(i) in m.split(",")
                for i, m in zip(rows[LINE_ID].tolist(), by_order, strict=True)
            ),
            dtype=bool,
            count=len(rows),
        )
        hit = unknown & (outcome == Outcome.PARTIAL.value)
        outcome[hit] = Outcome.NOT_FOUND.value
        reason[hit] = _UNKNOWN_LINE
    return outcome, reason


def _original_cells(shown: pd.DataFrame, original: pd.DataFrame) -> pd.DataFrame:
    """The key cells as the sheet had them, matched by sheet row (and sheet)."""
    both = SOURCE_SHEET in shown.columns and SOURCE_SHEET in original.columns
    keys = [SOURCE_ROW, SOURCE_SHEET] if both else [SOURCE_ROW]
    raw = original.assign(**{SOURCE_ROW: original[SOURCE_ROW].astype("int64")})
    raw = raw.drop_duplicates(keys).set_index(keys)
    out = shown.assign(**{SOURCE_ROW: shown[SOURCE_ROW].astype("int64")})
    at = pd.MultiIndex.from_frame(out[keys].astype(object)) if both else pd.Index(out[SOURCE_ROW])
    if both:
        raw.index = pd.MultiIndex.from_frame(raw.index.to_frame().astype(object))
    changed = (
        out[ORIGINAL_STATUS].astype(str).to_numpy() != ""
        if ORIGINAL_STATUS in out.columns
        else np.zeros(len(out), dtype=bool)
    )
    for col in KEY_COLUMNS:
        if col not in raw.columns:
            continue
        cells = raw[col].reindex(at).to_numpy(dtype=object)
        found = pd.notna(cells)
        if col == STATUS:
            found &= ~changed
        values = np.array(out[col].astype(object).tolist(), dtype=object)
        values[found] = cells[found]
        out[col] = values
    return out
