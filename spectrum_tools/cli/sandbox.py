"""``spectrum-tools sandbox`` and ``demo``: the bundled local server, and a rehearsal on it."""

from __future__ import annotations

import argparse
import errno
import os
from pathlib import Path

from spectrum_tools.cli.common import (
    EXIT_INCOMPLETE,
    EXIT_OK,
    out,
    port_in_use,
    print_plan_summary,
)
from spectrum_tools.cli.preview import print_preview
from spectrum_tools.cli.send import run_and_report
from spectrum_tools.client import SpectrumClient
from spectrum_tools.engine import SendOptions
from spectrum_tools.journal import Journal
from spectrum_tools.planning import plan_updates
from spectrum_tools.report import write_report
from spectrum_tools.runs import (
    Recording,
    preview_send,
    source_identity,
)
from spectrum_tools.sandbox import (
    SandboxServer,
    SandboxSettings,
    default_store_path,
    sample_data_dir,
    serve,
)
from spectrum_tools.sheets import read_updates
from spectrum_tools.validation import validate_updates

__all__ = ["demo_command", "sandbox_command"]


def sandbox_command(args: argparse.Namespace) -> int:
    """Run ``spectrum-tools sandbox`` (arguments: :mod:`.commands`); return the exit code."""

    limit = None if str(args.rate_limit).lower() in ("off", "none", "0") else int(args.rate_limit)
    settings = SandboxSettings(latency_s=args.latency, rate_limit=limit, error_rate=args.error_rate)
    store = args.store or default_store_path()
    token = os.environ.get("SPECTRUM_API_TOKEN") or "sandbox"

    def ready(url: str) -> None:
        out(f"Sandbox on {url}  (store: {store})")
        out(
            "Token: the value of SPECTRUM_API_TOKEN, or 'sandbox' when it is not set. Ctrl-C stops."
        )

    try:
        serve(
            port=args.port,
            store_path=store,
            seed_from=args.seed,
            settings=settings,
            token=token,
            log_level="warning",
            on_ready=ready,
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise port_in_use(args.port, "sandbox") from None
        raise
    return EXIT_OK


def demo_command(args: argparse.Namespace) -> int:
    """Run ``spectrum-tools demo`` (arguments: :mod:`.commands`); return the exit code."""

    sheet = sample_data_dir() / "status_updates.xlsx"
    out_dir: Path = args.output_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    store = out_dir / "sandbox.sqlite3"
    for leftover in out_dir.glob("sandbox.sqlite3*"):  # every demo starts from the samples
        leftover.unlink()
    out(f"Demo: sending {sheet.name} to a local sandbox (its state: {store})")
    with SandboxServer(store, settings=SandboxSettings(rate_limit=None)) as server:
        client = SpectrumClient(server.base_url, token=server.token)
        rows = read_updates(sheet)
        plan = plan_updates(validate_updates(rows))
        print_plan_summary(plan)
        options = SendOptions(max_per_minute=1200, workers=4, retry_without_missing=True)
        name, digest = source_identity(sheet)
        # The demo's sandbox starts from the samples every time, so earlier demo runs
        # say nothing about what it holds: record, but do not skip.
        recording = Recording(
            runs_dir=out_dir / "runs", force=True, source_name=name, source_hash=digest
        )
        preview = preview_send(plan, client, options, recording=recording)
        print_preview(preview, client.host)
        code = run_and_report(
            preview,
            plan,
            client,
            options,
            recording,
            dry_run=False,
            output=out_dir / "results.xlsx",
        )
        # The full report: Summary (with a chart), Orders, Lines, Invalid rows.

        recorded = Journal(out_dir / "runs").runs()
        if len(recorded):
            latest = int(recorded["run_id"].max())
            report = write_report(latest, out_dir / "report.xlsx", runs_dir=out_dir / "runs")
            out(f"Report written to {report}")
    out("The sample sheet has messy rows on purpose: see the Lines sheet of the report.")
    # The demo worked if the run went to the end; orders held back as invalid are the point.
    return EXIT_OK if code in (EXIT_OK, EXIT_INCOMPLETE) else code
