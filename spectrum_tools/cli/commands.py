"""The subcommands' arguments, and the function that runs each.

Each function below adds one command's arguments and names the function that runs
it, ``"module:function"`` (:func:`~spectrum_tools.cli.arguments.runs_with`);
:mod:`~spectrum_tools.cli.entry` imports that module only when its command runs. So
this module imports nothing heavy: building the parser, ``--help`` and ``validate`` never
load the HTTP, retry, server or Jupyter stacks (issue 14; a test checks it).

The commands live one module per subcommand (or family): :mod:`.validate`, :mod:`.send`,
:mod:`.sandbox` (and ``demo``), :mod:`.report` (and ``reconcile``), :mod:`.runs`
(``resume``, ``retry``, ``runs``, ``show``), :mod:`.undo`, :mod:`.app`.

I/O: none.
"""

from __future__ import annotations

from pathlib import Path

from spectrum_tools.cli.arguments import (
    Subparsers,
    add_environment_args,
    add_handoff_args,
    add_pace_args,
    add_sheet_args,
    runs_with,
)

__all__ = ["register"]

_FORCE_HELP = (
    "also send line items a later run has set since (puts the older statuses back) "
    "and line items already applied"
)


def register(sub: Subparsers) -> None:
    """Add every subcommand, in the order ``spectrum-tools --help`` lists them."""
    for add in (_validate, _send, _sandbox, _report, _runs, _undo, _app):
        add(sub)


def _validate(sub: Subparsers) -> None:
    """Add ``validate``."""
    p = sub.add_parser("validate", help="check a sheet and show what would be sent")
    p.add_argument("file", help="an .xlsx or .csv of PO / line item / status rows")
    add_sheet_args(p, environments=True)
    p.add_argument("--output", "-o", type=Path, help="write the per-row table (.csv or .xlsx)")
    runs_with(p, "spectrum_tools.cli.validate:validate_command")


def _send(sub: Subparsers) -> None:
    """Add ``send``."""
    p = sub.add_parser("send", help="send a sheet's status updates to Spectrum")
    p.add_argument("file")
    add_environment_args(p)
    add_sheet_args(p)
    p.add_argument("--dry-run", action="store_true", help="plan and report, send nothing")
    add_pace_args(p)
    p.add_argument(
        "--output", "-o", type=Path, help="write results (.xlsx: sheets Orders and Lines; or .csv)"
    )
    add_handoff_args(p)
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.add_argument(
        "--retry-without-missing",
        action="store_true",
        help="after a 404/409, re-send the order without the missing line items",
    )
    p.add_argument(
        "--send-partial-orders",
        action="store_true",
        help="send the valid rows of orders that have invalid rows",
    )
    p.add_argument(
        "--no-read-back",
        dest="read_back",
        action="store_false",
        help="send every planned order whole, without reading Spectrum's current state first",
    )
    p.add_argument("--runs-dir", type=Path, help="runs folder (default ./spectrum-runs)")
    p.add_argument(
        "--force",
        action="store_true",
        help="also send line items an earlier run already set to the same status here",
    )
    runs_with(p, "spectrum_tools.cli.send:send_command")


def _sandbox(sub: Subparsers) -> None:
    """Add ``sandbox`` and ``demo``."""
    p = sub.add_parser("sandbox", help="run a local Spectrum-compatible server")
    p.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765)")
    p.add_argument("--store", type=Path, help="SQLite file (default ./spectrum-sandbox.sqlite3)")
    p.add_argument("--seed", type=Path, help="CSV/XLSX of orders to load (default: samples)")
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to each answer")
    p.add_argument(
        "--rate-limit",
        default="100",
        help="requests per 60 s before answering 403, or 'off' (default 100)",
    )
    p.add_argument("--error-rate", type=float, default=0.0, help="share of updates answering 500")
    runs_with(p, "spectrum_tools.cli.sandbox:sandbox_command")

    p = sub.add_parser("demo", help="send the sample sheet through a bundled sandbox")
    p.add_argument("--output-dir", type=Path, default=Path("demo-output"))
    runs_with(p, "spectrum_tools.cli.sandbox:demo_command")


def _report(sub: Subparsers) -> None:
    """Add ``report`` and ``reconcile``."""
    p = sub.add_parser("report", help="write a run's report workbook (or CSV files)")
    p.add_argument("run", type=int, help="the run's id (as the journal numbers runs)")
    p.add_argument(
        "--output",
        "-o",
        help="FILE.xlsx (Summary, Orders, Lines, Invalid rows); FOLDER/ or FILE.csv for CSVs",
    )
    add_handoff_args(p)
    p.add_argument("--runs-dir", type=Path, help="runs folder (default ./spectrum-runs)")
    runs_with(p, "spectrum_tools.cli.report:report_command")

    p = sub.add_parser("reconcile", help="compare a sheet with the statuses Spectrum holds")
    p.add_argument("file", help="the .xlsx or .csv of PO / line item / status rows")
    add_environment_args(p)
    p.add_argument("--sheet", help="workbook sheet (default: the first with the columns)")
    p.add_argument(
        "--output", "-o", type=Path, help="write the comparison (.xlsx: Summary and Lines; .csv)"
    )
    add_pace_args(p, noun="read")
    p.add_argument(
        "--from-runs",
        action="store_true",
        help="compare with what recorded runs applied (the journal only, no API calls)",
    )
    p.add_argument("--runs-dir", type=Path, help="runs folder for --from-runs")
    runs_with(p, "spectrum_tools.cli.report:reconcile_command")


def _runs(sub: Subparsers) -> None:
    """Add ``resume``, ``retry``, ``runs`` and ``show``."""
    runs_help = "runs folder (default ./spectrum-runs)"
    p = sub.add_parser("resume", help="send a run's pending and in-flight orders, same run")
    p.add_argument("run", type=int, nargs="?", help="run id (default: latest unfinished run)")
    add_environment_args(p, "the run's environment")
    p.add_argument("--runs-dir", type=Path, help=runs_help)
    p.add_argument("--output", "-o", type=Path, help="write the run's results (.xlsx or .csv)")
    add_pace_args(p, of_run=True)
    p.add_argument("--force", action="store_true", help=_FORCE_HELP)
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    runs_with(p, "spectrum_tools.cli.runs:resume_command")

    p = sub.add_parser("retry", help="send a run's failed orders again, as a new linked run")
    p.add_argument("run", type=int, help="the run whose failed orders to send again")
    add_environment_args(p, "the run's environment")
    p.add_argument("--include-not-found", action="store_true", help="also retry not_found orders")
    p.add_argument("--runs-dir", type=Path, help=runs_help)
    p.add_argument("--output", "-o", type=Path, help="write the new run's results")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    add_pace_args(p, of_run=True)
    p.add_argument("--force", action="store_true", help=_FORCE_HELP)
    runs_with(p, "spectrum_tools.cli.runs:retry_command")

    p = sub.add_parser("runs", help="list the journal's runs with counts by outcome")
    p.add_argument("--runs-dir", type=Path, help=runs_help)
    runs_with(p, "spectrum_tools.cli.runs:runs_command")

    p = sub.add_parser("show", help="print one run: details, counts, orders not updated")
    p.add_argument("run", type=int, help="the run's id")
    p.add_argument("--runs-dir", type=Path, help=runs_help)
    runs_with(p, "spectrum_tools.cli.runs:show_command")


def _undo(sub: Subparsers) -> None:
    """Add ``undo``."""
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
    add_pace_args(p, of_run=True)
    runs_with(p, "spectrum_tools.cli.undo:undo_command")


def _app(sub: Subparsers) -> None:
    """Add ``app``."""
    p = sub.add_parser("app", help="serve the bulk-update notebook as a web app (Voila)")
    p.add_argument("--port", type=int, default=8866, help="port on 127.0.0.1 (default 8866)")
    p.add_argument("--runs-dir", type=Path, help="runs folder (default ./spectrum-runs)")
    p.add_argument(
        "--environments",
        type=Path,
        metavar="FILE",
        help="environments file (default: SPECTRUM_ENVIRONMENTS or ./spectrum-environments.toml)",
    )
    runs_with(p, "spectrum_tools.cli.app:app_command")
