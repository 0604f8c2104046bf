"""``spectrum-tools undo RUN``: set what a run changed back to what Spectrum held before it.

The library does the work (:func:`spectrum_tools.runs.undo_run`); this module reads the
arguments, shows what would be restored, confirms, and prints.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from spectrum_tools.cli.common import (
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

__all__ = ["undo_command"]

_SHOWN = 10


def undo_command(args: argparse.Namespace) -> int:
    """Run ``spectrum-tools undo`` (arguments: :mod:`.commands`); return the exit code."""
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
    _print_left_alone(pd.DataFrame(preview.attrs["left_alone"], columns=[PO, LINE_ID, DETAILS]))
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


def _print_left_alone(left: pd.DataFrame) -> None:
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
