"""The ``spectrum-tools`` command line. Thin: parse arguments, call the library, print.

I/O: reads files named on the command line, the environment (``SPECTRUM_API_TOKEN``,
``SPECTRUM_BASE_URL``) and stdin for confirmation; writes stdout, stderr and output files.

Exit codes: 0 all good; 1 some rows or orders did not make it; 2 usage errors,
unreadable input, or a run stopped by 401/403; 130 after Ctrl-C. A
:class:`~spectrum_tools.errors.SpectrumError` becomes one line on stderr; tracebacks are
for bugs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TextIO

import pandas as pd

from spectrum_tools.client import SpectrumClient
from spectrum_tools.engine import SendOptions, format_duration
from spectrum_tools.errors import (
    ConfigError,
    JournalError,
    RunStoppedError,
    SpectrumError,
    SpreadsheetError,
)
from spectrum_tools.planning import Plan, plan_updates
from spectrum_tools.results import line_results
from spectrum_tools.runs import Recording, run_options, send_plan, skip_applied, source_identity
from spectrum_tools.schema import KEY_COLUMNS, OUTCOME, SOURCE_SHEET, VALID, Outcome, StopReason
from spectrum_tools.sheets import read_updates, write_table, write_workbook
from spectrum_tools.validation import problem_counts, validate_updates

__all__ = ["main"]

EXIT_OK, EXIT_INCOMPLETE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _UsageError(Exception):
    """argparse complained; the message is already one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(f"{self.prog}: {message}")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="spectrum-tools",
        description="Bulk workflow-status updates for Spectrum orders.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("validate", help="check a sheet and show what would be sent")
    p.add_argument("file", help="an .xlsx or .csv of PO / line item / status rows")
    p.add_argument("--sheet", help="workbook sheet (default: the first with the columns)")
    p.add_argument("--output", "-o", type=Path, help="write the per-row table (.csv or .xlsx)")
    p.set_defaults(func=_validate)

    p = sub.add_parser("send", help="send a sheet's status updates to Spectrum")
    p.add_argument("file")
    _add_environment_args(p)
    p.add_argument("--sheet")
    p.add_argument("--dry-run", action="store_true", help="plan and report, send nothing")
    p.add_argument(
        "--max-per-minute",
        type=float,
        default=100.0,
        help="request pace (default 100: Spectrum's documented safe level)",
    )
    p.add_argument("--workers", type=int, default=4, help="requests in flight (default 4)")
    p.add_argument(
        "--output", "-o", type=Path, help="write results (.xlsx: sheets Orders and Lines; or .csv)"
    )
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
    p.add_argument("--runs-dir", type=Path, help="runs folder (default ./spectrum-runs)")
    p.add_argument(
        "--force",
        action="store_true",
        help="also send line items an earlier run already set to the same status here",
    )
    p.set_defaults(func=_send)

    p = sub.add_parser("sandbox", help="run a local Spectrum-compatible server")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--store", type=Path, help="SQLite file (default ./spectrum-sandbox.sqlite3)")
    p.add_argument("--seed", type=Path, help="CSV/XLSX of orders to load (default: samples)")
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to each answer")
    p.add_argument(
        "--rate-limit",
        default="100",
        help="requests per 60 s before answering 403, or 'off' (default 100)",
    )
    p.add_argument("--error-rate", type=float, default=0.0, help="share of updates answering 500")
    p.set_defaults(func=_sandbox)

    p = sub.add_parser("demo", help="send the sample sheet through a bundled sandbox")
    p.add_argument("--output-dir", type=Path, default=Path("demo-output"))
    p.set_defaults(func=_demo)
    _add_report_commands(sub)
    _add_run_commands(sub)
    _add_app_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (see the module docstring)."""
    try:
        args = _parser().parse_args(argv)
        if args.command in _WRITES_TABLE and getattr(args, "output", None) is not None:
            _check_output(args.output)  # before anything is sent, not after
        code: int = args.func(args)
        return code
    except _UsageError as exc:
        _err(str(exc))
        return EXIT_USAGE
    except RunStoppedError as exc:
        _err(f"stopped: {exc}")
        return EXIT_USAGE
    except SpectrumError as exc:
        _err(f"error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_INTERRUPTED
    except OSError as exc:  # a disk full or a folder that vanished while writing
        _err(f"error: {exc.filename or 'writing'}: {exc.strerror or exc}")
        return EXIT_USAGE


_WRITES_TABLE = frozenset({"validate", "send", "resume", "retry"})


def _check_output(path: Path) -> None:
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


def _err(message: str) -> None:
    print(" ".join(message.split()), file=sys.stderr)


def _out(message: str = "") -> None:
    print(message, flush=True)


# --------------------------------------------------------------------------- validate


def _validate(args: argparse.Namespace) -> int:
    rows = _read_rows(args.file, args.sheet)
    validated = validate_updates(rows)
    plan = plan_updates(validated)
    _print_plan_summary(plan)
    if args.output:
        written = write_table(validated, args.output)
        _out(f"Per-row table written to {written}")
    return EXIT_OK if bool(validated["valid"].all()) else EXIT_INCOMPLETE


def _read_rows(file: str, sheet: str | None) -> pd.DataFrame:
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


def _print_plan_summary(plan: Plan) -> None:
    summary = plan.summary()
    _out(f"Rows:     {summary['rows']:>8,}")
    _out(f"Valid:    {summary['valid_rows']:>8,}")
    _out(f"Invalid:  {summary['invalid_rows']:>8,}")
    counts = problem_counts(plan.rows)
    for reason, n in counts.items():
        _out(f"  {n:>6,}  {reason}")
    _out(
        f"Orders:   {summary['orders']:>8,}  ({summary['orders_held_invalid']:,} held back "
        "because a row is invalid)"
    )
    if summary["orders_skipped"]:
        _out(
            f"Skipped:  {summary['orders_skipped']:>8,}  orders already applied by earlier runs "
            "(--force sends them)"
        )
    _out(f"Requests: {summary['requests']:>8,}  (one per order)")


# --------------------------------------------------------------------------- send


def _send(args: argparse.Namespace) -> int:
    with _client_for(args) as client:
        return _send_with(args, client)


def _add_environment_args(p: argparse.ArgumentParser, what: str = "the environment") -> None:
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
def _client_for(args: argparse.Namespace) -> Iterator[SpectrumClient]:
    """The client for --base-url, or for --env NAME (starting the bundled sandbox for it)."""
    if args.env is None:
        with SpectrumClient(args.base_url) as client:
            yield client
        return
    from spectrum_tools.connect import connect
    from spectrum_tools.environments import environments_file, load_environments

    if args.base_url:
        raise ConfigError("give --env or --base-url, not both")
    path, required = environments_file(args.environments, os.environ)
    known = load_environments(path, missing_ok=not required)
    if args.env not in known:
        raise ConfigError(f"no environment {args.env!r} (known: {', '.join(known)}; file {path})")
    with connect(known[args.env]) as connection:
        if connection.sandbox is not None:
            _out(f"Sandbox started on {connection.client.base_url} for this run")
        yield connection.client


def _send_with(args: argparse.Namespace, client: SpectrumClient) -> int:
    options = SendOptions(
        max_per_minute=args.max_per_minute,
        workers=args.workers,
        retry_without_missing=args.retry_without_missing,
    )
    rows = _read_rows(args.file, args.sheet)
    plan = plan_updates(validate_updates(rows), send_partial_orders=args.send_partial_orders)
    if not args.force:  # shown before confirming; send_updates skips the same orders
        plan = skip_applied(plan, client.host, runs_dir=args.runs_dir)
    _print_plan_summary(plan)
    if not args.dry_run and plan.request_count and not args.yes:
        _confirm(client.host, plan, options)
    name, digest = source_identity(args.file)
    recording = Recording(
        runs_dir=args.runs_dir, force=args.force, source_name=name, source_hash=digest
    )
    return _run_and_report(
        plan, client, options, recording, dry_run=args.dry_run, output=args.output
    )


def _confirm(host: str, plan: Plan, options: SendOptions, stdin: TextIO | None = None) -> None:
    stream = stdin or sys.stdin  # None when the process has no standard input at all
    eta = format_duration(options.eta_seconds(plan.request_count))
    _out(
        f"About to send {plan.request_count:,} requests for {plan.request_count:,} orders "
        f"to {host} at {options.max_per_minute:g}/min (about {eta})."
    )
    if stream is None or not stream.isatty():
        raise ConfigError("not on a terminal, so nothing to confirm with: add --yes to send")
    answer = input(f"Type the host name ({host}) to send, anything else to cancel: ")
    if answer.strip() != host:
        raise ConfigError("cancelled: nothing was sent")


def _run_and_report(
    plan: Plan,
    client: SpectrumClient,
    options: SendOptions,
    recording: Recording,
    *,
    dry_run: bool,
    output: Path | None,
) -> int:
    runs_dir = Path(recording.runs_dir) if recording.runs_dir is not None else None
    try:
        results = send_plan(
            plan, client, options, recording=recording, dry_run=dry_run, stop=threading.Event()
        )
    except RunStoppedError as exc:
        results = exc.results
        _write_results(results, plan, output)
        _print_run(results, client, runs_dir)
        raise
    _print_run(results, client, runs_dir)
    _print_outcomes(results)
    _write_results(results, plan, output)
    # With --send-partial-orders an order can be updated while one of its rows never went.
    every_row = bool(plan.rows[VALID].all()) if len(plan.rows) else True
    return _exit_code(results, every_row_valid=every_row)


def _print_outcomes(results: pd.DataFrame) -> None:
    counts = results[OUTCOME].value_counts()
    _out("Outcomes:")
    for outcome in Outcome:
        if counts.get(outcome.value, 0):
            _out(f"  {outcome.value:<10} {int(counts[outcome.value]):>7,}")


def _write_results(results: pd.DataFrame | None, plan: Plan, output: Path | None) -> None:
    if output is None or results is None:
        return
    if output.suffix.lower() == ".xlsx":
        write_workbook(output, {"Orders": results, "Lines": line_results(results, plan)})
    else:
        write_table(results, output)
    _out(f"Results written to {output}")


# --------------------------------------------------------------------------- sandbox


def _sandbox(args: argparse.Namespace) -> int:
    from spectrum_tools.sandbox import SandboxSettings, default_store_path, serve

    limit = None if str(args.rate_limit).lower() in ("off", "none", "0") else int(args.rate_limit)
    settings = SandboxSettings(latency_s=args.latency, rate_limit=limit, error_rate=args.error_rate)
    store = args.store or default_store_path()
    token = os.environ.get("SPECTRUM_API_TOKEN") or "sandbox"

    def ready(url: str) -> None:
        _out(f"Sandbox on {url}  (store: {store})")
        _out(
            "Token: the value of SPECTRUM_API_TOKEN, or 'sandbox' when it is not set. Ctrl-C stops."
        )

    serve(
        port=args.port,
        store_path=store,
        seed_from=args.seed,
        settings=settings,
        token=token,
        log_level="warning",
        on_ready=ready,
    )
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from spectrum_tools.sandbox import SandboxServer, SandboxSettings, sample_data_dir

    sheet = sample_data_dir() / "status_updates.xlsx"
    out_dir: Path = args.output_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    store = out_dir / "sandbox.sqlite3"
    for leftover in out_dir.glob("sandbox.sqlite3*"):  # every demo starts from the samples
        leftover.unlink()
    _out(f"Demo: sending {sheet.name} to a local sandbox (its state: {store})")
    with SandboxServer(store, settings=SandboxSettings(rate_limit=None)) as server:
        client = SpectrumClient(server.base_url, token=server.token)
        rows = read_updates(sheet)
        plan = plan_updates(validate_updates(rows))
        _print_plan_summary(plan)
        options = SendOptions(max_per_minute=1200, workers=4, retry_without_missing=True)
        name, digest = source_identity(sheet)
        # The demo's sandbox starts from the samples every time, so earlier demo runs
        # say nothing about what it holds: record, but do not skip.
        recording = Recording(
            runs_dir=out_dir / "runs", force=True, source_name=name, source_hash=digest
        )
        code = _run_and_report(
            plan, client, options, recording, dry_run=False, output=out_dir / "results.xlsx"
        )
        # The full report: Summary (with a chart), Orders, Lines, Invalid rows.
        from spectrum_tools.journal import Journal
        from spectrum_tools.report import write_report

        recorded = Journal(out_dir / "runs").runs()
        if len(recorded):
            latest = int(recorded["run_id"].max())
            report = write_report(latest, out_dir / "report.xlsx", runs_dir=out_dir / "runs")
            _out(f"Report written to {report}")
    _out("The sample sheet has messy rows on purpose: see the Lines sheet of the report.")
    # The demo worked if the run went to the end; orders held back as invalid are the point.
    return EXIT_OK if code in (EXIT_OK, EXIT_INCOMPLETE) else code


# --------------------------------------------------------------------------- report, reconcile


def _add_report_commands(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser("report", help="write a run's report workbook (or CSV files)")
    p.add_argument("run", type=int, help="the run's id (as the journal numbers runs)")
    p.add_argument(
        "--output",
        "-o",
        required=True,
        help="FILE.xlsx (Summary, Orders, Lines, Invalid rows); FOLDER/ or FILE.csv for CSVs",
    )
    p.add_argument("--runs-dir", type=Path, help="runs folder (default ./spectrum-runs)")
    p.set_defaults(func=_report)

    p = sub.add_parser("reconcile", help="compare a sheet with the statuses Spectrum holds")
    p.add_argument("file", help="the .xlsx or .csv of PO / line item / status rows")
    _add_environment_args(p)
    p.add_argument("--sheet", help="workbook sheet (default: the first with the columns)")
    p.add_argument(
        "--output", "-o", type=Path, help="write the comparison (.xlsx: Summary and Lines; .csv)"
    )
    p.add_argument(
        "--max-per-minute",
        type=float,
        default=100.0,
        help="read pace (default 100: Spectrum's documented safe level)",
    )
    p.add_argument("--workers", type=int, default=4, help="reads in flight (default 4)")
    p.add_argument(
        "--from-runs",
        action="store_true",
        help="compare with what recorded runs applied (the journal only, no API calls)",
    )
    p.add_argument("--runs-dir", type=Path, help="runs folder for --from-runs")
    p.set_defaults(func=_reconcile)


def _report(args: argparse.Namespace) -> int:
    from spectrum_tools.report import export_csv, write_report

    text: str = args.output
    out = Path(text)
    suffix = out.suffix.lower()
    if suffix == ".xlsx":
        written = [write_report(args.run, out, runs_dir=args.runs_dir)]
    elif suffix == ".csv":
        prefix = f"{out.stem}-"
        written = export_csv(args.run, out.parent, runs_dir=args.runs_dir, prefix=prefix)
    elif text.endswith(("/", os.sep)) or out.is_dir() or not suffix:
        written = export_csv(args.run, out, runs_dir=args.runs_dir)
    else:
        raise ConfigError(f"{text}: write the report to FILE.xlsx, FILE.csv or a FOLDER/")
    for path in written:
        _out(f"Report written to {path}")
    return EXIT_OK


def _reconcile(args: argparse.Namespace) -> int:
    from urllib.parse import urlsplit

    from spectrum_tools.client import check_base_url
    from spectrum_tools.reconcile import (
        State,
        reconcile,
        reconcile_with_runs,
        reconciliation_summary,
        write_reconciliation,
    )

    output: Path | None = args.output
    if output is not None and output.suffix.lower() not in (".xlsx", ".csv"):
        raise ConfigError(f"{output}: write the comparison to .xlsx or .csv")
    if args.from_runs:
        url = args.base_url or os.environ.get("SPECTRUM_BASE_URL")
        host = urlsplit(check_base_url(url)).netloc if url else None
        frame = reconcile_with_runs(args.file, runs_dir=args.runs_dir, host=host, sheet=args.sheet)
        _out(f"Compared with the runs journal (environment {frame.attrs.get('host') or 'none'})")
    else:
        if args.runs_dir is not None:
            raise ConfigError("--runs-dir goes with --from-runs")
        with _client_for(args) as client:
            frame = reconcile(
                args.file,
                client,
                sheet=args.sheet,
                max_per_minute=args.max_per_minute,
                workers=args.workers,
            )
        requests = frame.attrs.get("requests", 0)
        _out(f"Read the orders back from {client.host} ({requests:,} requests)")
    for state, count in reconciliation_summary(frame).itertuples(index=False, name=None):
        if count:
            _out(f"  {state:<20} {count:>7,}")
    off = frame[frame["state"] != State.MATCH.value]
    for row in off.head(10).itertuples(index=False):
        _out(
            f"  row {row.source_row}: {row.purchaseOrderNumber} {row.recipeSetReadableId}: "
            f"{row.state} ({row.details})"
        )
    if len(off) > 10:
        _out(f"  ... and {len(off) - 10:,} more")
    if output is not None:
        if output.suffix.lower() == ".xlsx":
            written = write_reconciliation(frame, output)
        else:
            written = write_table(frame, output)
        _out(f"Comparison written to {written}")
    if frame.attrs.get("stop_reason") is StopReason.INTERRUPTED:
        _err("interrupted: orders not read yet are reported as error")
        return EXIT_INTERRUPTED
    return EXIT_OK if bool((frame["state"] == State.MATCH.value).all()) else EXIT_INCOMPLETE


# --------------------------------------------------------------------------- durable runs


def _add_run_commands(sub: argparse._SubParsersAction[_Parser]) -> None:
    runs_help = "runs folder (default ./spectrum-runs)"
    p = sub.add_parser("resume", help="send a run's pending and in-flight orders, same run")
    p.add_argument("run", type=int, nargs="?", help="run id (default: latest unfinished run)")
    _add_environment_args(p, "the run's environment")
    p.add_argument("--runs-dir", type=Path, help=runs_help)
    p.add_argument("--output", "-o", type=Path, help="write the run's results (.xlsx or .csv)")
    p.add_argument("--max-per-minute", type=float, help="request pace (default: the run's)")
    p.add_argument("--workers", type=int, help="requests in flight (default: the run's)")
    p.set_defaults(func=_resume)

    p = sub.add_parser("retry", help="send a run's failed orders again, as a new linked run")
    p.add_argument("run", type=int, help="the run whose failed orders to send again")
    _add_environment_args(p, "the run's environment")
    p.add_argument("--include-not-found", action="store_true", help="also retry not_found orders")
    p.add_argument("--runs-dir", type=Path, help=runs_help)
    p.add_argument("--output", "-o", type=Path, help="write the new run's results")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.add_argument("--max-per-minute", type=float, help="request pace (default: the run's)")
    p.add_argument("--workers", type=int, help="requests in flight (default: the run's)")
    p.set_defaults(func=_retry)

    p = sub.add_parser("runs", help="list the journal's runs with counts by outcome")
    p.add_argument("--runs-dir", type=Path, help=runs_help)
    p.set_defaults(func=_runs)

    p = sub.add_parser("show", help="print one run: details, counts, orders not updated")
    p.add_argument("run", type=int, help="the run's id")
    p.add_argument("--runs-dir", type=Path, help=runs_help)
    p.set_defaults(func=_show)


def _runs_flag(runs_dir: Path | None) -> str:
    return f" --runs-dir {runs_dir}" if runs_dir is not None else ""


def _print_run(results: pd.DataFrame, client: SpectrumClient, runs_dir: Path | None) -> None:
    """Where the run is journaled, and how to resume it when it did not finish."""
    run_id = results.attrs.get("run_id")
    if run_id is None:
        return
    _out(f"Run {run_id} is recorded in the journal {results.attrs.get('journal')}")
    if bool((results[OUTCOME] == Outcome.PENDING.value).any()):
        _out(
            f"Resume it with: spectrum-tools resume {run_id} --base-url {client.base_url}"
            + _runs_flag(runs_dir)
        )


def _exit_code(results: pd.DataFrame, *, every_row_valid: bool = True) -> int:
    """0 when every order made it (and every row was valid), 1 if not, 130 after Ctrl-C."""
    if results.attrs.get("stop_reason") is StopReason.INTERRUPTED:
        _err("interrupted: in-flight requests finished; unsent orders are pending")
        return EXIT_INTERRUPTED
    good = {Outcome.UPDATED.value, Outcome.SKIPPED.value, Outcome.DRY_RUN.value}
    all_good = bool(results[OUTCOME].isin(good).all()) and every_row_valid
    return EXIT_OK if all_good else EXIT_INCOMPLETE


def _resume(args: argparse.Namespace) -> int:
    with _client_for(args) as client:
        return _resume_with(args, client)


def _resume_with(args: argparse.Namespace, client: SpectrumClient) -> int:
    from spectrum_tools.journal import Journal
    from spectrum_tools.runs import resume_run

    with Journal.existing(args.runs_dir) as journal:
        run_id = args.run if args.run is not None else journal.latest_unfinished()
        if run_id is None:
            raise JournalError(f"no unfinished run in {journal.path}: nothing to resume")
        pending = int(journal.load_run(run_id).counts[Outcome.PENDING.value])
    _out(f"Resuming run {run_id}: {pending:,} orders pending or in flight, to {client.host}")
    return _journaled(
        lambda: resume_run(
            run_id,
            client,
            runs_dir=args.runs_dir,
            stop=threading.Event(),
            max_per_minute=args.max_per_minute,
            workers=args.workers,
        ),
        client,
        args,
    )


def _retry(args: argparse.Namespace) -> int:
    with _client_for(args) as client:
        return _retry_with(args, client)


def _retry_with(args: argparse.Namespace, client: SpectrumClient) -> int:
    from spectrum_tools.journal import Journal
    from spectrum_tools.runs import retry_failed, retry_plan

    with Journal.existing(args.runs_dir) as journal:
        record = journal.load_run(args.run)
    plan = retry_plan(record, include_not_found=args.include_not_found)
    kinds = "failed or not_found" if args.include_not_found else "failed"
    if plan.request_count == 0:
        _out(f"Run {args.run} has no {kinds} orders: nothing to retry.")
        return EXIT_OK
    _out(f"Retrying run {args.run}: {plan.request_count:,} {kinds} orders, as a new run")
    options = run_options(record, max_per_minute=args.max_per_minute, workers=args.workers)
    if not args.yes:
        _confirm(client.host, plan, options)
    return _journaled(
        lambda: retry_failed(
            args.run,
            client,
            include_not_found=args.include_not_found,
            runs_dir=args.runs_dir,
            stop=threading.Event(),
            max_per_minute=args.max_per_minute,
            workers=args.workers,
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
    return _exit_code(results)


def _finish_journaled(
    results: pd.DataFrame | None, client: SpectrumClient, args: argparse.Namespace
) -> None:
    """After a resume or retry: outcomes, the results file, where the run is recorded."""
    if results is None:
        return
    run_id = results.attrs.get("run_id")
    if run_id is not None:
        from spectrum_tools.journal import Journal

        with Journal.existing(args.runs_dir) as journal:
            plan = journal.load_run(run_id).plan
        _write_results(results, plan, args.output)
    _print_run(results, client, args.runs_dir)
    _print_outcomes(results)


def _runs(args: argparse.Namespace) -> int:
    from spectrum_tools.journal import Journal

    location = Journal.location(args.runs_dir)
    if not location.is_file():
        _out(f"No runs yet (no journal at {location}).")
        return EXIT_OK
    with Journal(args.runs_dir) as journal:
        runs = journal.runs()
    _out(f"Runs in {location}:")
    if runs.empty:
        _out("  (none)")
        return EXIT_OK
    counts = [o.value for o in Outcome] + ["in_flight"]
    shown = runs[["run_id", "parent_run", "state", "started_at", "host", "source_name"]].copy()
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
    _out(shown.to_string(index=False))
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    from spectrum_tools.journal import Journal

    with Journal.existing(args.runs_dir) as journal:
        record = journal.load_run(args.run)
    meta = record.meta
    options = ", ".join(f"{k}={v}" for k, v in sorted(meta["options"].items()))
    _out(f"Run {record.run_id}: {meta['state']}" + ("  (dry run)" if meta["dry_run"] else ""))
    _out(f"  Environment:  {meta['host']}")
    _out(f"  Input:        {meta['source_name']}  (sha256 {meta['source_hash']})")
    _out(f"  Started:      {_when(meta['started_at'])} UTC")
    finished = _when(meta["finished_at"])
    _out(f"  Finished:     {finished + ' UTC' if finished else '-'}")
    if meta["stopped_reason"]:
        _out(f"  Stopped:      {' '.join(str(meta['stopped_reason']).split())}")
    if meta["parent_run"] is not None:
        _out(f"  Retry of:     run {meta['parent_run']}")
    if meta["sessions"] > 1:
        _out(f"  Sessions:     {meta['sessions']} (resumed {meta['sessions'] - 1} times)")
    _out(f"  Requests:     {meta['requests']:,} planned, {len(record.attempts):,} sent")
    _out(f"  Options:      {options}")
    _out(f"  Journal:      {meta['journal']}")
    _print_outcomes(record.results)
    results = record.results
    rest = results.loc[~results[OUTCOME].isin([Outcome.UPDATED.value, Outcome.SKIPPED.value])]
    if not rest.empty:
        _out(f"Orders not updated ({len(rest):,}):")
        table = rest[["purchaseOrderNumber", OUTCOME, "http_status", "details"]].copy()
        table["http_status"] = table["http_status"].map(lambda c: "" if pd.isna(c) else str(c))
        table["details"] = table["details"].map(_clip)
        _out(table.to_string(index=False))
    return _exit_code(results)


def _when(stamp: object) -> str:
    """An ISO 8601 UTC time from the journal, to the second, for a terminal."""
    if stamp is None or (isinstance(stamp, float) and pd.isna(stamp)):
        return ""
    return str(stamp)[:19].replace("T", " ")


def _clip(text: object, width: int = 90) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


# --------------------------------------------------------------------------- app (Voila)


def _add_app_command(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser("app", help="serve the bulk-update notebook as a web app (Voila)")
    p.add_argument("--port", type=int, default=8866, help="port on 127.0.0.1 (default 8866)")
    p.add_argument("--runs-dir", type=Path, help="runs folder (default ./spectrum-runs)")
    p.add_argument(
        "--environments",
        type=Path,
        metavar="FILE",
        help="environments file (default: SPECTRUM_ENVIRONMENTS or ./spectrum-environments.toml)",
    )
    p.set_defaults(func=_app)


def _app(args: argparse.Namespace) -> int:
    from spectrum_tools.environments import environments_file, load_environments
    from spectrum_tools.widgets import notebooks_dir

    try:
        from voila.app import Voila
    except ModuleNotFoundError:
        raise ConfigError("the app needs Voila: pip install 'spectrum-tools[jupyter]'") from None
    try:
        notebook = notebooks_dir() / "bulk_update.ipynb"
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from None
    path, required = environments_file(args.environments, os.environ)
    load_environments(path, missing_ok=not required)  # a bad file fails here, in one line
    # The notebook's kernel runs in notebooks/ and reads these (it is an edge too).
    runs_dir = (args.runs_dir or Path("spectrum-runs")).resolve()
    os.environ["SPECTRUM_RUNS_DIR"] = str(runs_dir)
    if required or path.is_file():
        os.environ["SPECTRUM_ENVIRONMENTS"] = str(path.resolve())
    _out(f"Bulk-update app on http://127.0.0.1:{args.port}/  (runs folder: {runs_dir})")
    _out("Each browser tab gets its own kernel. Ctrl-C stops.")
    argv = [
        str(notebook),
        "--no-browser",
        f"--port={args.port}",
        "--Voila.ip=127.0.0.1",
        "--Voila.port_retries=0",
    ]
    try:
        Voila.launch_instance(argv=argv)
    except SystemExit as exc:  # Voila exits 1 when the port is taken
        if exc.code:
            raise ConfigError(f"Voila could not serve on 127.0.0.1:{args.port} (in use?)") from None
    return EXIT_OK
