"""``spectrum-tools report`` (a run's workbook or CSVs) and ``reconcile`` (sheet vs Spectrum)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from spectrum_tools.cli.common import (
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    check_output,
    client_for,
    err,
    out,
)
from spectrum_tools.errors import (
    ConfigError,
)
from spectrum_tools.handoff import write_error_file, write_success_file
from spectrum_tools.reconcile import (
    State,
    reconcile,
    reconcile_with_runs,
    reconciliation_summary,
    write_reconciliation,
)
from spectrum_tools.report import export_csv, write_report
from spectrum_tools.schema import StopReason
from spectrum_tools.sheets import write_table
from spectrum_tools.urls import environment_key

__all__ = ["reconcile_command", "report_command"]


def report_command(args: argparse.Namespace) -> int:
    """Run ``spectrum-tools report`` (arguments: :mod:`.commands`); return the exit code."""
    if args.output is None and args.errors is None and args.successes is None:
        raise ConfigError("report: give --output, --errors or --successes (or several)")
    for option in ("errors", "successes"):
        if getattr(args, option) is not None:
            check_output(getattr(args, option), option)
    if args.output is not None:
        _report_files(args)
    if args.errors is not None:
        written = write_error_file(args.run, args.errors, runs_dir=args.runs_dir)
        out(f"Rows that did not go through written to {written} (fix them and send it again)")
    if args.successes is not None:
        written = write_success_file(args.run, args.successes, runs_dir=args.runs_dir)
        out(f"Rows that went through written to {written}")
    return EXIT_OK


def _report_files(args: argparse.Namespace) -> None:
    text: str = args.output
    target = Path(text)
    suffix = target.suffix.lower()
    if suffix == ".xlsx":
        written = [write_report(args.run, target, runs_dir=args.runs_dir)]
    elif suffix == ".csv":
        prefix = f"{target.stem}-"
        written = export_csv(args.run, target.parent, runs_dir=args.runs_dir, prefix=prefix)
    elif text.endswith(("/", os.sep)) or target.is_dir() or not suffix:
        written = export_csv(args.run, target, runs_dir=args.runs_dir)
    else:
        raise ConfigError(f"{text}: write the report to FILE.xlsx, FILE.csv or a FOLDER/")
    for path in written:
        out(f"Report written to {path}")


def reconcile_command(args: argparse.Namespace) -> int:
    """Run ``spectrum-tools reconcile`` (arguments: :mod:`.commands`); return the exit code."""

    output: Path | None = args.output
    if output is not None and output.suffix.lower() not in (".xlsx", ".csv"):
        raise ConfigError(f"{output}: write the comparison to .xlsx or .csv")
    if args.from_runs:
        url = args.base_url or os.environ.get("SPECTRUM_BASE_URL")
        key = environment_key(url) if url else None
        frame = reconcile_with_runs(
            args.file, runs_dir=args.runs_dir, environment=key, sheet=args.sheet
        )
        shown = frame.attrs.get("environment") or "none"
        out(f"Compared with the runs journal (environment {shown})")
    else:
        if args.runs_dir is not None:
            raise ConfigError("--runs-dir goes with --from-runs")
        with client_for(args) as client:
            frame = reconcile(
                args.file,
                client,
                sheet=args.sheet,
                max_per_minute=args.max_per_minute,
                workers=args.workers,
            )
        requests = frame.attrs.get("requests", 0)
        out(f"Read the orders back from {client.host} ({requests:,} requests)")
    for state, count in reconciliation_summary(frame).itertuples(index=False, name=None):
        if count:
            out(f"  {state:<20} {count:>7,}")
    off = frame[frame["state"] != State.MATCH.value]
    for row in off.head(10).itertuples(index=False):
        out(
            f"  row {row.source_row}: {row.purchaseOrderNumber} {row.recipeSetReadableId}: "
            f"{row.state} ({row.details})"
        )
    if len(off) > 10:
        out(f"  ... and {len(off) - 10:,} more")
    if output is not None:
        if output.suffix.lower() == ".xlsx":
            written = write_reconciliation(frame, output)
        else:
            written = write_table(frame, output)
        out(f"Comparison written to {written}")
    if frame.attrs.get("stop_reason") is StopReason.INTERRUPTED:
        err("interrupted: orders not read yet are reported as error")
        return EXIT_INTERRUPTED
    return EXIT_OK if bool((frame["state"] == State.MATCH.value).all()) else EXIT_INCOMPLETE
