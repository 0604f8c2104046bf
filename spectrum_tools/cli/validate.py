"""``spectrum-tools validate``: check a sheet and show what would be sent."""

from __future__ import annotations

import argparse
from pathlib import Path

from spectrum_tools.cli.common import (
    EXIT_INCOMPLETE,
    EXIT_OK,
    Subparsers,
    add_sheet_args,
    checked_rows,
    out,
    print_plan_summary,
)
from spectrum_tools.planning import plan_updates
from spectrum_tools.sheets import write_table

__all__ = ["register"]


def register(sub: Subparsers) -> None:
    """Add the subcommand(s) to the parser."""
    p = sub.add_parser("validate", help="check a sheet and show what would be sent")
    p.add_argument("file", help="an .xlsx or .csv of PO / line item / status rows")
    add_sheet_args(p, environments=True)
    p.add_argument("--output", "-o", type=Path, help="write the per-row table (.csv or .xlsx)")
    p.set_defaults(func=_validate)


def _validate(args: argparse.Namespace) -> int:
    _, validated = checked_rows(args)
    plan = plan_updates(validated)
    print_plan_summary(plan)
    if args.output:
        written = write_table(validated, args.output)
        out(f"Per-row table written to {written}")
    return EXIT_OK if bool(validated["valid"].all()) else EXIT_INCOMPLETE
