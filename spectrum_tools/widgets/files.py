"""The files an analyst hands on from the app: the error file, the success file, and the
corrections made in the app (kept with the run and added to its report workbook).

I/O: writes ``.xlsx`` files with the toolkit's safe writer
(:func:`~spectrum_tools.sheets.write_workbook`: ids stay text, nothing runs as a formula)
and adds a sheet to a report workbook with openpyxl. The report module takes no extra
sheets yet, so the Corrections sheet is added here, after :func:`write_report` wrote it.

The error file holds only the rows that did not go through (invalid, not found, failed,
pending, left out), with the analyst's own headers and values, plus ``outcome`` and
``reason``: fix them and load the file again. The success file holds the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Final

import pandas as pd
from openpyxl import load_workbook
from openpyxl.styles import Font

from spectrum_tools.schema import (
    DETAILS,
    KEY_COLUMNS,
    LINE_ID,
    MISSING_IDS,
    OUTCOME,
    PO,
    SOURCE_ROW,
    SOURCE_SHEET,
    Outcome,
)
from spectrum_tools.sheets import write_workbook

__all__ = [
    "ERROR_OUTCOMES",
    "LEFT_OUT_OUTCOME",
    "add_sheet",
    "row_outcomes",
    "split_rows",
    "write_rows",
]

LEFT_OUT_OUTCOME: Final = "left_out"
# A row did not go through: fix it and send it again.
ERROR_OUTCOMES: Final = frozenset(
    {
        Outcome.INVALID.value,
        Outcome.NOT_FOUND.value,
        Outcome.FAILED.value,
        Outcome.PENDING.value,
        LEFT_OUT_OUTCOME,
    }
)
_ROW_LABEL: Final = "row in the sheet"
_OWN: Final = frozenset({"valid", "problem", "attempts", OUTCOME, DETAILS, SOURCE_SHEET})


def row_outcomes(lines: pd.DataFrame, results: pd.DataFrame) -> pd.DataFrame:
    """Per sheet row: ``source_row, outcome, reason``.

    ``lines`` is :func:`~spectrum_tools.line_results` (the order's outcome on each row);
    a line item of a ``partial`` order that Spectrum did not know is ``not_found`` here.

    Examples
    --------
    >>> lines = pd.DataFrame({"source_row": [2, 3], "purchaseOrderNumber": ["P", "P"],
    ...     "recipeSetReadableId": ["A", "B"], "outcome": ["partial"] * 2, "details": ["ok"] * 2})
    >>> results = pd.DataFrame({"purchaseOrderNumber": ["P"], "missing_ids": ["B"]})
    >>> row_outcomes(lines, results)["outcome"].tolist()
    ['partial', 'not_found']
    """
    out = lines[[SOURCE_ROW, PO, LINE_ID, OUTCOME, DETAILS]].copy()
    if MISSING_IDS in results.columns:
        missing = results.drop_duplicates(PO).set_index(PO)[MISSING_IDS].fillna("").astype(str)
        ids = out[PO].map(missing).fillna("")
        unknown = [
            line_id in str(m).split(",") and bool(m)
            for line_id, m in zip(out[LINE_ID].tolist(), ids.tolist(), strict=True)
        ]
        hit = pd.Series(unknown, index=out.index) & (out[OUTCOME] == Outcome.PARTIAL.value)
        out.loc[hit, OUTCOME] = Outcome.NOT_FOUND.value
        out.loc[hit, DETAILS] = (
            "Spectrum does not know this line item; the rest of its order was set"
        )
    return out.rename(columns={DETAILS: "reason"})[[SOURCE_ROW, OUTCOME, "reason"]]


def split_rows(
    raw: pd.DataFrame,
    outcomes: pd.DataFrame,
    headers: Mapping[str, str],
    order: Sequence[str] = (),
    left_out: Iterable[int] = (),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The error rows and the success rows, in the analyst's own columns.

    Parameters
    ----------
    raw
        The rows as read (:func:`~spectrum_tools.read_updates`, corrections applied), with
        ``source_row``.
    outcomes
        :func:`row_outcomes`.
    headers
        API field -> the analyst's header (the key columns get their names back).
    order
        The sheet's header row, to put the columns back in the sheet's order.
    left_out
        Sheet rows the analyst left out in the app (error rows, outcome ``left_out``).

    Returns
    -------
    (errors, successes)
        Each: the analyst's columns, then ``outcome``, ``reason``, ``row in the sheet``.
    """
    by_row = outcomes.drop_duplicates(SOURCE_ROW).set_index(SOURCE_ROW)
    rows = raw.loc[:, [c for c in raw.columns if c not in _OWN]].copy()
    rows[OUTCOME] = rows[SOURCE_ROW].map(by_row[OUTCOME])
    rows["reason"] = rows[SOURCE_ROW].map(by_row["reason"]).fillna("")
    gone = rows[SOURCE_ROW].isin(list(left_out))
    rows.loc[gone, OUTCOME] = LEFT_OUT_OUTCOME
    rows.loc[gone, "reason"] = "left out in the app"
    rows = rows.loc[rows[OUTCOME].notna()]  # blank rows: neither error nor success
    named = rows.rename(columns={f: headers.get(f, f) for f in KEY_COLUMNS})
    named = named.rename(columns={SOURCE_ROW: _ROW_LABEL})
    first = [c for c in order if c in named.columns and c not in (OUTCOME, "reason", _ROW_LABEL)]
    rest = [c for c in named.columns if c not in first and c not in (OUTCOME, "reason", _ROW_LABEL)]
    named = named[[*first, *rest, OUTCOME, "reason", _ROW_LABEL]]
    bad = named[OUTCOME].isin(ERROR_OUTCOMES)
    return named.loc[bad].reset_index(drop=True), named.loc[~bad].reset_index(drop=True)


def write_rows(df: pd.DataFrame, path: Path, sheet: str) -> Path:
    """Write rows as a one-sheet workbook (ids as text, filters on, columns sized)."""
    return write_workbook(path, {sheet: df})


def add_sheet(workbook: Path, name: str, df: pd.DataFrame) -> Path:
    """Add (or replace) a sheet of text cells in an existing ``.xlsx``, keeping the rest."""
    book = load_workbook(workbook)
    if name in book.sheetnames:
        del book[name]
    ws = book.create_sheet(name)
    ws.append([str(c) for c in df.columns])
    for record in df.itertuples(index=False, name=None):
        ws.append(["" if v is None else str(v) for v in record])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for row in ws.iter_rows(min_row=2):
        for cell in row:
            cell.data_type = "s"  # text, never a formula
    book.save(workbook)
    return workbook
