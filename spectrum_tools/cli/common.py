"""What the sending subcommands share: the environment and its client, the
confirmation, and printing outcomes and where a run is recorded; writing results.

Heavy (the client, the sandbox connection, reports): imported only by the commands that
send or read Spectrum, when they run. The light shared pieces live in
:mod:`~spectrum_tools.cli.console`, :mod:`~spectrum_tools.cli.arguments` and
:mod:`~spectrum_tools.cli.rows`, and are re-exported here for the subcommands.

I/O: stdout, stderr, stdin (confirmation), output files named on the command line.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pandas as pd

from spectrum_tools.cli.arguments import (
    Parser,
    Subparsers,
    UsageError,
    add_environment_args,
    add_sheet_args,
    check_output,
)
from spectrum_tools.cli.console import (
    EXIT_INCOMPLETE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    err,
    out,
)
from spectrum_tools.cli.rows import checked_rows, print_plan_summary, read_rows
from spectrum_tools.client import SpectrumClient, check_base_url
from spectrum_tools.connect import connect
from spectrum_tools.engine import SendOptions, format_duration
from spectrum_tools.environments import (
    SANDBOX,
    Environment,
    environments_file,
    load_environments,
)
from spectrum_tools.errors import ConfigError
from spectrum_tools.handoff import write_error_file, write_success_file
from spectrum_tools.planning import Plan
from spectrum_tools.report import write_report
from spectrum_tools.schema import OUTCOME, Outcome, StopReason
from spectrum_tools.sheets import write_table

__all__ = [
    "EXIT_INCOMPLETE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Parser",
    "Subparsers",
    "UsageError",
    "add_environment_args",
    "add_sheet_args",
    "check_output",
    "check_port",
    "checked_rows",
    "client_for",
    "confirm",
    "confirm_send",
    "environment_for",
    "err",
    "exit_code",
    "out",
    "port_in_use",
    "print_outcomes",
    "print_plan_summary",
    "print_run",
    "read_rows",
    "write_handoff",
    "write_results",
]


def port_in_use(port: int, what: str) -> ConfigError:
    """The one-line error for a busy port: which port, and the option that changes it."""
    return ConfigError(
        f"port {port} on 127.0.0.1 is already in use (another {what} running?): "
        f"pick another with --port, e.g. --port {port + 1}"
    )


def check_port(port: int, what: str) -> None:
    """Refuse a loopback port another process holds, before starting a server on it.

    Raises
    ------
    ConfigError
        From :func:`port_in_use`.
    """
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise port_in_use(port, what) from None
            raise


def environment_for(args: argparse.Namespace) -> Environment | None:
    """The --env NAME environment (None without --env), checked without connecting.

    Raises
    ------
    ConfigError
        --env with --base-url, an unknown name, a bad environments file or base URL.
    """
    if args.env is None:
        if args.base_url:
            check_base_url(args.base_url)
        return None
    if args.base_url:
        raise ConfigError("give --env or --base-url, not both")
    path, required = environments_file(args.environments, os.environ)
    known = load_environments(path, missing_ok=not required)
    if args.env not in known:
        raise ConfigError(f"no environment {args.env!r} (known: {', '.join(known)}; file {path})")
    return known[args.env]


@contextlib.contextmanager
def client_for(args: argparse.Namespace) -> Iterator[SpectrumClient]:
    """The client for --base-url, or for --env NAME (starting the bundled sandbox for it)."""
    environment = environment_for(args)
    if environment is None:
        with SpectrumClient(args.base_url) as client:
            yield client
        return
    with connect(environment) as connection:
        if connection.sandbox is not None:
            out(f"Sandbox started on {connection.client.base_url} for this run")
        yield connection.client


def confirm(
    host: str,
    plan: Plan,
    options: SendOptions,
    stdin: TextIO | None = None,
    *,
    warning: str | None = None,
) -> None:
    """Show what a plan would send and ask for the host name (see :func:`confirm_send`)."""
    # One request per order: the plan's requests are its orders.
    confirm_send(
        host, plan.request_count, options, orders=plan.request_count, stdin=stdin, warning=warning
    )


def confirm_send(
    host: str,
    requests: int,
    options: SendOptions,
    *,
    orders: int | None = None,
    stdin: TextIO | None = None,
    warning: str | None = None,
) -> None:
    """Show host, orders, requests and ETA (and ``warning``); on a terminal, the host name
    typed sends.

    Raises
    ------
    ConfigError
        Not on a terminal (``--yes`` is needed), or the answer was not the host name.
    """
    stream = stdin or sys.stdin  # None when the process has no standard input at all
    eta = format_duration(options.eta_seconds(requests))
    count = requests if orders is None else orders
    out(
        f"About to send {requests:,} requests for {count:,} orders "
        f"to {host} at {options.max_per_minute:g}/min (about {eta})."
    )
    if warning:
        out(warning)
    if stream is None or not stream.isatty():
        raise ConfigError("not on a terminal, so nothing to confirm with: add --yes to send")
    answer = input(f"Type the host name ({host}) to send, anything else to cancel: ")
    if answer.strip() != host:
        raise ConfigError("cancelled: nothing was sent")


def print_outcomes(results: pd.DataFrame) -> None:
    counts = results[OUTCOME].value_counts()
    out("Outcomes:")
    for outcome in Outcome:
        if counts.get(outcome.value, 0):
            out(f"  {outcome.value:<10} {int(counts[outcome.value]):>7,}")


def write_results(
    results: pd.DataFrame | None,
    plan: Plan,
    output: Path | None,
    *,
    changes: pd.DataFrame | None = None,
) -> None:
    """``.xlsx``: the report workbook (Summary with its chart, Orders, Lines, Invalid rows,
    and after a read-back Changes: current -> wanted per line item); ``.csv``: the
    per-order results."""
    if output is None or results is None:
        return
    if output.suffix.lower() == ".xlsx":
        write_report(results, output, plan=plan, changes=changes)
    else:
        write_table(results, output)
    out(f"Results written to {output}")


def write_handoff(
    results: pd.DataFrame | None,
    plan: Plan,
    *,
    errors: Path | None,
    successes: Path | None,
    original: pd.DataFrame | None = None,
) -> None:
    """The error file and the success file of a run (see :mod:`spectrum_tools.handoff`)."""
    if results is None:
        return
    if errors is not None:
        written = write_error_file(results, errors, plan=plan, original=original)
        out(f"Rows that did not go through written to {written} (fix them and send it again)")
    if successes is not None:
        written = write_success_file(results, successes, plan=plan, original=original)
        out(f"Rows that went through written to {written}")


def runs_flag(runs_dir: Path | None) -> str:
    return f" --runs-dir {runs_dir}" if runs_dir is not None else ""


def print_run(results: pd.DataFrame, client: SpectrumClient, runs_dir: Path | None) -> None:
    """Where the run is journaled, and how to resume it when it did not finish."""
    run_id = results.attrs.get("run_id")
    if run_id is None:
        return
    out(f"Run {run_id} is recorded in the journal {results.attrs.get('journal')}")
    if bool((results[OUTCOME] == Outcome.PENDING.value).any()):
        where = (
            f"--env {SANDBOX}"
            if client.environment_key == SANDBOX
            else f"--base-url {client.base_url}"
        )
        out(f"Resume it with: spectrum-tools resume {run_id} {where}" + runs_flag(runs_dir))


def exit_code(results: pd.DataFrame, *, every_row_valid: bool = True) -> int:
    """0 when every order made it (and every row was valid), 1 if not, 130 after Ctrl-C."""
    if results.attrs.get("stop_reason") is StopReason.INTERRUPTED:
        err("interrupted: in-flight requests finished; unsent orders are pending")
        return EXIT_INTERRUPTED
    good = {o.value for o in (Outcome.UPDATED, Outcome.UNCHANGED, Outcome.SKIPPED, Outcome.DRY_RUN)}
    all_good = bool(results[OUTCOME].isin(good).all()) and every_row_valid
    return EXIT_OK if all_good else EXIT_INCOMPLETE
