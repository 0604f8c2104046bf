"""``spectrum-tools undo RUN``: set what a run changed back to what Spectrum held before it.

The library does the work (:func:`spectrum_tools.runs.undo_run`); this module reads the
arguments, shows what would be restored, confirms, and prints.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from spectrum_tools.cli.common import (
    Subparsers,
    add_environment_args,
    client_for,
    confirm_send,
    exit_code,
    out,
    print_outcomes,
    print_run,
)
from spectrum_tools.client import SpectrumClient
from spectrum_tools.errors import RunStoppedError
from spectrum_tools.journal import Journal
from spectrum_tools.report import write_report
from spectrum_tools.runs import run_options, undo_run
from spectrum_tools.schema import DETAILS, LINE_ID, OUTCOME, PO, Outcome
from spectrum_tools.sheets import write_table

__all__ = ["register"]

_SHOWN = 10


def register(sub: Subparsers) -> None:
    """Add the subcommand to the parser."""
    p = sub.add_parser(
        "undo", help="set what a run changed back to what Spectrum held before it (a new run)"
    )
    p.add_argument("run", type=int, help="the run to undo")
    add_environment_args(p)
    p.add_argument("--runs-dir", type=Path, help="runs folder (default ./spectrum-runs)")
    p.add_argument("--dry-run", action="store_true", help="read and show, restore nothing")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.add_argument(
        "--force",
        action="store_true",
        help="also restore line items someone changed since the run (their change is lost)",
    )
    p.add_argument("--output", "-o", type=Path, help="write the undo's results (.xlsx or .csv)")
    p.add_argument("--max-per-minute", type=float, help="request pace (default: the run's)")
    p.add_argument("--workers", type=int, help="requests in flight (default: the run's)")
    p.set_defaults(func=_undo)


def _undo(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        return _undo_with(args, client)


def _undo_with(args: argparse.Namespace, client: SpectrumClient) -> int:
    common = {
        "runs_dir": args.runs_dir,
        "force": args.force,
        "max_per_minute": args.max_per_minute,
        "workers": args.workers,
    }
    out(f"Reading what run {args.run} changed, as {client.host} holds it now ...")
    preview = undo_run(args.run, client, dry_run=True, progress=True, **common)
    to_send = int((preview[OUTCOME] == Outcome.DRY_RUN.value).sum())
    _print_left_alone(preview.attrs["left_alone"], args.run)
    out(
        f"Orders to restore: {to_send:,}; already as before: "
        f"{int((preview[OUTCOME] == Outcome.UNCHANGED.value).sum()):,}."
    )
    if args.dry_run or to_send == 0:
        _write(preview, args.output)
        print_outcomes(preview)
        return exit_code(preview)
    if not args.yes:
        with Journal.existing(args.runs_dir) as journal:
            record = journal.load_run(args.run)
        options = run_options(record, max_per_minute=args.max_per_minute, workers=args.workers)
        confirm_send(client.host, to_send, options, orders=to_send)
    try:
        results = undo_run(args.run, client, progress=True, **common)
    except RunStoppedError as exc:
        if exc.results is not None:
            _write(exc.results, args.output)
        raise
    print_run(results, client, args.runs_dir)
    print_outcomes(results)
    _write(results, args.output)
    return exit_code(results)


def _print_left_alone(left: pd.DataFrame, run_id: int) -> None:
    if left.empty:
        return
    out(f"Left as they are ({len(left):,} line items):")
    for po, line_id, why in left[[PO, LINE_ID, DETAILS]].head(_SHOWN).itertuples(index=False):
        out(f"  {po} / {line_id}: {why}")
    if len(left) > _SHOWN:
        out(f"  ... and {len(left) - _SHOWN:,} more")


def _write(results: pd.DataFrame, output: Path | None) -> None:
    if output is None:
        return
    if output.suffix.lower() == ".xlsx":
        write_report(results, output)
    else:
        write_table(results, output)
    out(f"Results written to {output}")
