"""``spectrum-tools send``: confirm, then send a sheet as a journaled run.

The library does the work (:func:`spectrum_tools.runs.send_plan` sends exactly the plan
shown); this module reads the arguments and prints.
"""

from __future__ import annotations

import argparse
import os
import threading
from pathlib import Path

import pandas as pd

from spectrum_tools.cli.common import (
    EXIT_INCOMPLETE,
    EXIT_OK,
    checked_rows,
    client_for,
    confirm,
    environment_for,
    exit_code,
    out,
    print_outcomes,
    print_plan_summary,
    print_run,
    write_handoff,
    write_results,
)
from spectrum_tools.cli.preview import print_preview
from spectrum_tools.client import SpectrumClient
from spectrum_tools.engine import SendOptions
from spectrum_tools.environments import SANDBOX
from spectrum_tools.errors import (
    RunStoppedError,
)
from spectrum_tools.planning import Plan, plan_updates
from spectrum_tools.readback.preview import Preview
from spectrum_tools.runs import (
    Recording,
    preview_send,
    send_plan,
    source_identity,
)
from spectrum_tools.schema import VALID

__all__ = ["send_command"]


def send_command(args: argparse.Namespace) -> int:
    """Run ``spectrum-tools send`` (arguments: :mod:`.commands`); return the exit code."""
    if args.dry_run and args.env != SANDBOX and not os.environ.get("SPECTRUM_API_TOKEN", ""):
        return _plan_without_token(args)
    with client_for(args) as client:
        return _send_with(args, client)


def _plan_without_token(args: argparse.Namespace) -> int:
    """``--dry-run`` with no token: validate and plan; Spectrum's state needs a token."""
    environment_for(args)  # a wrong --env or --base-url is still an error
    _, validated = checked_rows(args)
    plan = plan_updates(validated, send_partial_orders=args.send_partial_orders)
    print_plan_summary(plan)
    out(
        "No API token, so Spectrum was not asked: its current statuses and the runs already "
        "applied there are not checked. Set SPECTRUM_API_TOKEN to see them."
    )
    return EXIT_OK if bool(validated[VALID].all()) else EXIT_INCOMPLETE


def _send_with(args: argparse.Namespace, client: SpectrumClient) -> int:
    options = SendOptions(
        max_per_minute=args.max_per_minute,
        workers=args.workers,
        retry_without_missing=args.retry_without_missing,
    )
    rows, validated = checked_rows(args)
    plan = plan_updates(validated, send_partial_orders=args.send_partial_orders)
    print_plan_summary(plan)
    name, digest = source_identity(args.file)
    recording = Recording(
        runs_dir=args.runs_dir, force=args.force, source_name=name, source_hash=digest
    )
    # Read first and show what will really change; then send exactly that.
    preview = preview_send(
        plan, client, options, recording=recording, read_back=args.read_back, progress=True
    )
    if preview.stopped is None:  # a read that stopped sends nothing; the files say pending
        print_preview(preview, client.host)
    if preview.stopped is None and not args.dry_run and preview.requests and not args.yes:
        confirm(client.host, preview.plan, options, warning=final_warning(preview))
    return run_and_report(
        preview,
        plan,
        client,
        options,
        recording,
        dry_run=args.dry_run,
        output=args.output,
        handoff=(args.errors, args.successes, rows),
    )


def final_warning(preview: Preview) -> str | None:
    """The line a confirmation adds when line items would leave delivered or cancelled."""
    leaving = preview.counts["lines_leaving_final"]
    if not leaving:
        return None
    return f"WARNING: {leaving:,} line item(s) would move out of delivered or cancelled."


def run_and_report(
    what: Plan | Preview,
    plan: Plan,
    client: SpectrumClient,
    options: SendOptions,
    recording: Recording,
    *,
    dry_run: bool,
    output: Path | None,
    handoff: tuple[Path | None, Path | None, pd.DataFrame | None] = (None, None, None),
) -> int:
    """Send ``what`` (the previewed plan, or a plan), print and write the outcome; the
    exit code.

    ``plan`` is the sheet's whole plan (for the per-line results); ``handoff`` is (error
    file, success file, the rows as read) for :func:`~spectrum_tools.cli.common.write_handoff`.
    """
    errors, successes, original = handoff
    runs_dir = Path(recording.runs_dir) if recording.runs_dir is not None else None
    changes = what.lines if isinstance(what, Preview) else None
    try:
        results = send_plan(
            what, client, options, recording=recording, dry_run=dry_run, stop=threading.Event()
        )
    except RunStoppedError as exc:
        results = exc.results
        write_results(results, plan, output, changes=changes)
        write_handoff(results, plan, errors=errors, successes=successes, original=original)
        print_run(results, client, runs_dir)
        raise
    print_run(results, client, runs_dir)
    print_outcomes(results)
    write_results(results, plan, output, changes=changes)
    write_handoff(results, plan, errors=errors, successes=successes, original=original)
    # With --send-partial-orders an order can be updated while one of its rows never went.
    every_row = bool(plan.rows[VALID].all()) if len(plan.rows) else True
    return exit_code(results, every_row_valid=every_row)
