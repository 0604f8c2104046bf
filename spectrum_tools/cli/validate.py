"""``spectrum-tools validate``: check a sheet and show what would be sent.

Light: reading, validation and planning only (no HTTP, retry, server or Jupyter module).
"""

from __future__ import annotations

import argparse

from spectrum_tools.cli.console import EXIT_INCOMPLETE, EXIT_OK, out
from spectrum_tools.cli.rows import checked_rows, print_plan_summary
from spectrum_tools.planning import plan_updates
from spectrum_tools.sheets import write_table

__all__ = ["validate_command"]


def validate_command(args: argparse.Namespace) -> int:
    """Run ``spectrum-tools validate`` (arguments: :mod:`.commands`); return the exit code."""
    _, validated = checked_rows(args)
    plan = plan_updates(validated)
    print_plan_summary(plan)
    if args.output:
        written = write_table(validated, args.output)
        out(f"Per-row table written to {written}")
    return EXIT_OK if bool(validated["valid"].all()) else EXIT_INCOMPLETE
