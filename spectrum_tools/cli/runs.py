"""``spectrum-tools resume | retry | runs | show``: durable runs from the journal."""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable

import pandas as pd

from spectrum_tools.cli.common import (
    EXIT_OK,
    client_for,
    confirm,
    confirm_send,
    exit_code,
    out,
    print_outcomes,
    print_run,
    write_results,
)
from spectrum_tools.client import SpectrumClient
from spectrum_tools.errors import (
    JournalError,
    RunStoppedError,
)
from spectrum_tools.journal import Journal
from spectrum_tools.runs import (
    picked_run,
    resume_run,
    retry_failed,
    retry_plan,
    run_options,
)
from spectrum_tools.schema import OUTCOME, Outcome

__all__ = ["resume_command", "retry_command", "runs_command", "show_command"]

_FORCE_HELP = (
    "also send line items a later run has set since (puts the older statuses back) "
    "and line items already applied"
)


def resume_command(args: argparse.Namespace) -> int:
    """Run ``spectrum-tools resume`` (arguments: :mod:`.commands`); return the exit code."""
    with client_for(args) as client:
        return _resume_with(args, client)


def _resume_with(args: argparse.Namespace, client: SpectrumClient) -> int:

    environment = client.environment_key
    with Journal.existing(args.runs_dir) as journal:
        run_id = args.run if args.run is not None else journal.latest_unfinished(environment)
        if run_id is None:
            raise JournalError(
                f"no unfinished run in {journal.path} to {environment}: nothing to resume"
            )
        record = journal.load_run(run_id)
    pending = int(record.counts[Outcome.PENDING.value])
    if args.run is None:  # say which run was picked, and how old it is, before sending
        out(f"Picked the latest unfinished run on {environment}: {picked_run(record)}")
    out(f"Resuming run {run_id}: {pending:,} orders pending or in flight, to {client.host}")
    if not args.yes and pending:  # as send and retry: host, orders, requests, ETA, then ask
        options = run_options(record, max_per_minute=args.max_per_minute, workers=args.workers)
        confirm_send(client.host, pending, options, orders=pending)
    return _journaled(
        lambda: resume_run(
            run_id,
            client,
            runs_dir=args.runs_dir,
            stop=threading.Event(),
            max_per_minute=args.max_per_minute,
            workers=args.workers,
            force=args.force,
        ),
        client,
        args,
    )


def retry_command(args: argparse.Namespace) -> int:
    """Run ``spectrum-tools retry`` (arguments: :mod:`.commands`); return the exit code."""
    with client_for(args) as client:
        return _retry_with(args, client)


def _retry_with(args: argparse.Namespace, client: SpectrumClient) -> int:

    with Journal.existing(args.runs_dir) as journal:
        record = journal.load_run(args.run)
    plan = retry_plan(record, include_not_found=args.include_not_found)
    kinds = "failed or not_found" if args.include_not_found else "failed"
    if plan.request_count == 0:
        out(f"Run {args.run} has no {kinds} orders: nothing to retry.")
        return EXIT_OK
    out(f"Retrying run {args.run}: {plan.request_count:,} {kinds} orders, as a new run")
    options = run_options(record, max_per_minute=args.max_per_minute, workers=args.workers)
    if not args.yes:
        confirm(client.host, plan, options)
    return _journaled(
        lambda: retry_failed(
            args.run,
            client,
            include_not_found=args.include_not_found,
            runs_dir=args.runs_dir,
            stop=threading.Event(),
            max_per_minute=args.max_per_minute,
            workers=args.workers,
            force=args.force,
        ),
        client,
        args,
    )


def _journaled(
    run: Callable[[], pd.DataFrame], client: SpectrumClient, args: argparse.Namespace
) -> int:
    """Run a resume or retry; report it (also when 401/403 stopped it) and give the exit code."""
    try:
        results = run()
    except RunStoppedError as exc:
        _finish_journaled(exc.results, client, args)
        raise
    _finish_journaled(results, client, args)
    return exit_code(results)


def _finish_journaled(
    results: pd.DataFrame | None, client: SpectrumClient, args: argparse.Namespace
) -> None:
    """After a resume or retry: outcomes, the results file, where the run is recorded."""
    if results is None:
        return
    run_id = results.attrs.get("run_id")
    if run_id is not None:
        with Journal.existing(args.runs_dir) as journal:
            plan = journal.load_run(run_id).plan
        write_results(results, plan, args.output)
    print_run(results, client, args.runs_dir)
    print_outcomes(results)


def runs_command(args: argparse.Namespace) -> int:
    """Run ``spectrum-tools runs`` (arguments: :mod:`.commands`); return the exit code."""

    location = Journal.location(args.runs_dir)
    if not location.is_file():
        out(f"No runs yet (no journal at {location}).")
        return EXIT_OK
    with Journal(args.runs_dir) as journal:
        runs = journal.runs()
    out(f"Runs in {location}:")
    if runs.empty:
        out("  (none)")
        return EXIT_OK
    counts = [o.value for o in Outcome] + ["in_flight"]
    shown = runs[["run_id", "parent_run", "state", "started_at", "environment", "source_name"]]
    shown = shown.copy()
    shown["started_at"] = shown["started_at"].map(_when)
    shown["parent_run"] = shown["parent_run"].map(lambda r: "" if pd.isna(r) else str(r))
    shown["requests"] = runs["requests"]
    for column in counts:
        if bool((runs[column] > 0).any()):
            shown[column] = runs[column]
    shown = shown.rename(
        columns={
            "run_id": "run",
            "parent_run": "retry of",
            "started_at": "started (UTC)",
            "source_name": "source",
        }
    )
    out(shown.to_string(index=False))
    return EXIT_OK


def show_command(args: argparse.Namespace) -> int:
    """Run ``spectrum-tools show`` (arguments: :mod:`.commands`); return the exit code."""

    with Journal.existing(args.runs_dir) as journal:
        record = journal.load_run(args.run)
    meta = record.meta
    options = ", ".join(f"{k}={v}" for k, v in sorted(meta["options"].items()))
    out(f"Run {record.run_id}: {meta['state']}" + ("  (dry run)" if meta["dry_run"] else ""))
    out(f"  Environment:  {meta['host']}  ({meta['environment']})")
    out(f"  Input:        {meta['source_name']}  (sha256 {meta['source_hash']})")
    out(f"  Started:      {_when(meta['started_at'])} UTC")
    finished = _when(meta["finished_at"])
    out(f"  Finished:     {finished + ' UTC' if finished else '-'}")
    if meta["stopped_reason"]:
        out(f"  Stopped:      {' '.join(str(meta['stopped_reason']).split())}")
    if meta["parent_run"] is not None:
        out(f"  Retry of:     run {meta['parent_run']}")
    if meta["sessions"] > 1:
        out(f"  Sessions:     {meta['sessions']} (resumed {meta['sessions'] - 1} times)")
    out(f"  Requests:     {meta['requests']:,} planned, {len(record.attempts):,} sent")
    out(f"  Options:      {options}")
    out(f"  Journal:      {meta['journal']}")
    print_outcomes(record.results)
    results = record.results
    rest = results.loc[~results[OUTCOME].isin([Outcome.UPDATED.value, Outcome.SKIPPED.value])]
    if not rest.empty:
        out(f"Orders not updated ({len(rest):,}):")
        table = rest[["purchaseOrderNumber", OUTCOME, "http_status", "details"]].copy()
        table["http_status"] = table["http_status"].map(lambda c: "" if pd.isna(c) else str(c))
        table["details"] = table["details"].map(_clip)
        out(table.to_string(index=False))
    return exit_code(results)


def _when(stamp: object) -> str:
    """An ISO 8601 UTC time from the journal, to the second, for a terminal."""
    if stamp is None or (isinstance(stamp, float) and pd.isna(stamp)):
        return ""
    return str(stamp)[:19].replace("T", " ")


def _clip(text: object, width: int = 90) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
