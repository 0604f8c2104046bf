"""What every subcommand shares: exit codes, one-line messages, the environment options,
the confirmation, and printing plans, outcomes and where a run is recorded.

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
from typing import TextIO, TypeAlias

import pandas as pd

from spectrum_tools.client import SpectrumClient, check_base_url
from spectrum_tools.connect import connect
from spectrum_tools.engine import SendOptions, format_duration
from spectrum_tools.environments import (
    SANDBOX,
    Environment,
    environments_file,
    load_environments,
    load_status_aliases,
)
from spectrum_tools.errors import (
    ConfigError,
    SpreadsheetError,
)
from spectrum_tools.handoff import write_error_file, write_success_file
from spectrum_tools.planning import Plan
from spectrum_tools.report import write_report
from spectrum_tools.schema import (
    KEY_COLUMNS,
    LINE_ID,
    OUTCOME,
    PO,
    SOURCE_SHEET,
    STATUS,
    Outcome,
    StopReason,
)
from spectrum_tools.sheets import read_updates, write_table
from spectrum_tools.statuses import StatusAliases
from spectrum_tools.validation import (
    apply_suggestions,
    ignored_rows,
    problem_summary,
    status_suggestions,
    validate_updates,
)

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


def check_output(path: Path, option: str = "output") -> None:
    """Refuse an --output (--errors, --successes) that cannot be written, before any
    request goes out."""
    if path.suffix.lower() not in (".csv", ".xlsx"):
        raise ConfigError(f"{path}: --{option} must end in .csv or .xlsx")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create the folder {folder} ({exc.strerror})") from None
    if not os.access(folder, os.W_OK) or path.is_dir():
        raise ConfigError(f"{path}: cannot write there")


def add_sheet_args(p: argparse.ArgumentParser, *, environments: bool = False) -> None:
    """--sheet, the column overrides and --apply-suggestions (validate, send)."""
    p.add_argument("--sheet", help="workbook sheet (default: the first with the columns)")
    p.add_argument("--po-column", metavar="HEADER", help="the purchase order number column")
    p.add_argument(
        "--id-column", metavar="HEADER", help="the recipe set id column (recipeSetReadableId)"
    )
    p.add_argument("--status-column", metavar="HEADER", help="the new workflow status column")
    p.add_argument(
        "--apply-suggestions",
        action="store_true",
        help="take the suggested status for unknown spellings (the sheet's is kept in "
        "original_status)",
    )
    if environments:  # send has them already, with --env
        p.add_argument(
            "--environments",
            type=Path,
            metavar="FILE",
            help="environments file, for the team's status aliases "
            "(default: SPECTRUM_ENVIRONMENTS or ./spectrum-environments.toml)",
        )


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


def read_rows(file: str, sheet: str | None, columns: dict[str, str] | None = None) -> pd.DataFrame:
    """The sheet's rows; a sheet with a header and nothing under it is an error here."""
    rows = read_updates(file, sheet=sheet, columns=columns)
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
