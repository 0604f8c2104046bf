"""The sheet a command names: its rows read and validated (team aliases,
``--apply-suggestions``), what was left out said, and the plan summary printed.

Light: reading, validation and planning only, no HTTP, retry, server or Jupyter module,
so ``spectrum-tools validate`` loads nothing it does not use.

I/O: reads the file named on the command line and the environments file; writes stdout.
"""

from __future__ import annotations

import argparse
import os

import pandas as pd

from spectrum_tools.cli.console import out
from spectrum_tools.environments import environments_file, load_status_aliases
from spectrum_tools.errors import SpreadsheetError
from spectrum_tools.planning import Plan
from spectrum_tools.schema import KEY_COLUMNS, LINE_ID, PO, SOURCE_SHEET, STATUS
from spectrum_tools.sheets import read_updates
from spectrum_tools.statuses import StatusAliases
from spectrum_tools.validation import (
    apply_suggestions,
    ignored_rows,
    problem_summary,
    status_suggestions,
    validate_updates,
)

__all__ = [
    "checked_rows",
    "column_overrides",
    "print_plan_summary",
    "read_rows",
    "team_aliases",
]


def column_overrides(args: argparse.Namespace) -> dict[str, str]:
    """API field -> header, from --po-column / --id-column / --status-column."""
    given = {
        PO: getattr(args, "po_column", None),
        LINE_ID: getattr(args, "id_column", None),
        STATUS: getattr(args, "status_column", None),
    }
    return {field: header for field, header in given.items() if header}


def team_aliases(args: argparse.Namespace) -> StatusAliases:
    """The team's status spellings from the environments file ([statuses.aliases])."""
    path, required = environments_file(getattr(args, "environments", None), os.environ)
    return load_status_aliases(path, missing_ok=not required)


def checked_rows(args: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read, validate (team aliases, --apply-suggestions) and say what was left out.

    Returns
    -------
    (rows, validated)
        The rows as read (for the error file's original cells) and the validated rows.
    """
    rows = read_rows(args.file, args.sheet, columns=column_overrides(args) or None)
    aliases = team_aliases(args)
    validated = validate_updates(rows, aliases=aliases)
    for row, text in ignored_rows(validated):
        out(f"Ignored row {row} under the data (a footer, not an order): {text[:80]}")
    hints = status_suggestions(validated, aliases=aliases)
    hints = hints.loc[hints["suggestion"] != ""]
    if len(hints) and getattr(args, "apply_suggestions", False):
        validated = apply_suggestions(validated, aliases=aliases)
        for spelling, wanted, n in hints.itertuples(index=False, name=None):
            out(f"Applied suggestion: {spelling!r} -> {wanted} ({n:,} row{'s' * (n != 1)})")
        out("  (the sheet's spelling is kept in the original_status column)")
    elif len(hints):
        shown = ", ".join(f"{a!r} -> {b}" for a, b in hints[["spelling", "suggestion"]].values[:5])
        out(f"Suggestions: {shown}; --apply-suggestions takes them")
    return rows, validated


def read_rows(file: str, sheet: str | None, columns: dict[str, str] | None = None) -> pd.DataFrame:
    """The sheet's rows; a sheet with a header and nothing under it is an error here."""
    rows = read_updates(file, sheet=sheet, columns=columns)
    if not any(_has_text(rows[c].head(100)) or _has_text(rows[c]) for c in KEY_COLUMNS):
        where = str(rows[SOURCE_SHEET].iat[0]) if len(rows) else sheet
        raise SpreadsheetError(
            "there are no update rows under the header (wrong sheet, or an empty export?)",
            file=file,
            sheet=where or None,
        )
    return rows


def _has_text(column: pd.Series) -> bool:
    """Whether any cell of ``column`` holds more than whitespace."""
    return bool((column.astype(str).str.strip() != "").any())


def print_plan_summary(plan: Plan) -> None:
    summary = plan.summary()
    out(f"Rows:     {summary['rows']:>8,}")
    out(f"Valid:    {summary['valid_rows']:>8,}")
    out(f"Invalid:  {summary['invalid_rows']:>8,}")
    table = problem_summary(plan.rows)
    titles = {
        "folded duplicate": "Folded duplicates (the same order, line item and status as an "
        "earlier row: sent once)",
        "warning": "Warnings (sent as they are: check them)",
    }
    for severity, group in table.groupby("severity", sort=False):
        if severity in titles:
            out(f"{titles[str(severity)]}:")
        for kind, n, rows in group[["kind", "rows", "example_rows"]].itertuples(
            index=False, name=None
        ):
            more = ", ..." if n > 5 else ""
            out(f"  {n:>6,}  {kind}  (row{'s' * (n != 1)} {rows}{more})")
    out(
        f"Orders:   {summary['orders']:>8,}  ({summary['orders_held_invalid']:,} held back "
        "because a row is invalid)"
    )
    if summary["orders_skipped"]:
        out(
            f"Skipped:  {summary['orders_skipped']:>8,}  orders already applied by earlier runs "
            "(--force sends them)"
        )
    out(f"Requests: {summary['requests']:>8,}  (one per order)")
