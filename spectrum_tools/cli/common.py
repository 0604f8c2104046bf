"""What every subcommand shares: exit codes, one-line messages, the environment options,
the confirmation, and printing plans, outcomes and where a run is recorded.

I/O: stdout, stderr, stdin (confirmation), output files named on the command line.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO, TypeAlias

import pandas as pd

from spectrum_tools.client import SpectrumClient
from spectrum_tools.connect import connect
from spectrum_tools.engine import SendOptions, format_duration
from spectrum_tools.environments import environments_file, load_environments
from spectrum_tools.errors import (
    ConfigError,
    SpreadsheetError,
)
from spectrum_tools.planning import Plan
from spectrum_tools.results import line_results
from spectrum_tools.schema import KEY_COLUMNS, OUTCOME, SOURCE_SHEET, Outcome, StopReason
from spectrum_tools.sheets import read_updates, write_table, write_workbook
from spectrum_tools.validation import problem_counts

__all__ = [
    "EXIT_INCOMPLETE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Parser",
    "Subparsers",
    "UsageError",
    "add_environment_args",
    "check_output",
    "client_for",
    "confirm",
    "err",
    "exit_code",
    "out",
    "print_outcomes",
    "print_plan_summary",
    "print_run",
    "read_rows",
    "write_results",
]

EXIT_OK, EXIT_INCOMPLETE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """argparse complained; the message is already one line."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


Subparsers: TypeAlias = "argparse._SubParsersAction[Parser]"
"""What a subcommand module's ``register`` adds its parser to."""


def err(message: str) -> None:
    print(" ".join(message.split()), file=sys.stderr)


def out(message: str = "") -> None:
    print(message, flush=True)


def check_output(path: Path) -> None:
    """Refuse an --output that cannot be written, before any request goes out."""
    if path.suffix.lower() not in (".csv", ".xlsx"):
        raise ConfigError(f"{path}: --output must end in .csv or .xlsx")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create the folder {folder} ({exc.strerror})") from None
    if not os.access(folder, os.W_OK) or path.is_dir():
        raise ConfigError(f"{path}: cannot write there")


def read_rows(file: str, sheet: str | None) -> pd.DataFrame:
    """The sheet's rows; a sheet with a header and nothing under it is an error here."""
    rows = read_updates(file, sheet=sheet)
    if not any(bool((rows[c].astype(str).str.strip() != "").any()) for c in KEY_COLUMNS):
        where = str(rows[SOURCE_SHEET].iat[0]) if len(rows) else sheet
        raise SpreadsheetError(
            "there are no update rows under the header (wrong sheet, or an empty export?)",
            file=file,
            sheet=where or None,
        )
    return rows


def print_plan_summary(plan: Plan) -> None:
    summary = plan.summary()
    out(f"Rows:     {summary['rows']:>8,}")
    out(f"Valid:    {summary['valid_rows']:>8,}")
    out(f"Invalid:  {summary['invalid_rows']:>8,}")
    counts = problem_counts(plan.rows)
    for reason, n in counts.items():
        out(f"  {n:>6,}  {reason}")
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


def add_environment_args(p: argparse.ArgumentParser, what: str = "the environment") -> None:
    """--base-url, or --env NAME from the team's environments file (the same as the app's)."""
    p.add_argument(
        "--base-url",
        help=f"{what}, e.g. https://your-spectrum-host (default: SPECTRUM_BASE_URL)",
    )
    p.add_argument(
        "--env",
        metavar="NAME",
        help="a named environment from the environments file, or 'sandbox' (a bundled one)",
    )
    p.add_argument(
        "--environments",
        type=Path,
        metavar="FILE",
        help="environments file (default: SPECTRUM_ENVIRONMENTS or ./spectrum-environments.toml)",
    )


@contextlib.contextmanager
def client_for(args: argparse.Namespace) -> Iterator[SpectrumClient]:
    """The client for --base-url, or for --env NAME (starting the bundled sandbox for it)."""
    if args.env is None:
        with SpectrumClient(args.base_url) as client:
            yield client
        return

    if args.base_url:
        raise ConfigError("give --env or --base-url, not both")
    path, required = environments_file(args.environments, os.environ)
    known = load_environments(path, missing_ok=not required)
    if args.env not in known:
        raise ConfigError(f"no environment {args.env!r} (known: {', '.join(known)}; file {path})")
    with connect(known[args.env]) as connection:
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
    stream = stdin or sys.stdin  # None when the process has no standard input at all
    eta = format_duration(options.eta_seconds(plan.request_count))
    out(
        f"About to send {plan.request_count:,} requests for {plan.request_count:,} orders "
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
    """Write the results: ``.xlsx`` gets Orders, Lines and (after a read-back) Changes,
    current -> wanted per line item; anything else gets the per-order table."""
    if output is None or results is None:
        return
    if output.suffix.lower() == ".xlsx":
        sheets = {"Orders": results, "Lines": line_results(results, plan)}
        if changes is not None:
            sheets["Changes"] = changes
        write_workbook(output, sheets)
    else:
        write_table(results, output)
    out(f"Results written to {output}")


def runs_flag(runs_dir: Path | None) -> str:
    return f" --runs-dir {runs_dir}" if runs_dir is not None else ""


def print_run(results: pd.DataFrame, client: SpectrumClient, runs_dir: Path | None) -> None:
    """Where the run is journaled, and how to resume it when it did not finish."""
    run_id = results.attrs.get("run_id")
    if run_id is None:
        return
    out(f"Run {run_id} is recorded in the journal {results.attrs.get('journal')}")
    if bool((results[OUTCOME] == Outcome.PENDING.value).any()):
        out(
            f"Resume it with: spectrum-tools resume {run_id} --base-url {client.base_url}"
            + runs_flag(runs_dir)
        )


def exit_code(results: pd.DataFrame, *, every_row_valid: bool = True) -> int:
    """0 when every order made it (and every row was valid), 1 if not, 130 after Ctrl-C."""
    if results.attrs.get("stop_reason") is StopReason.INTERRUPTED:
        err("interrupted: in-flight requests finished; unsent orders are pending")
        return EXIT_INTERRUPTED
    good = {Outcome.UPDATED.value, Outcome.SKIPPED.value, Outcome.DRY_RUN.value}
    all_good = bool(results[OUTCOME].isin(good).all()) and every_row_valid
    return EXIT_OK if all_good else EXIT_INCOMPLETE
