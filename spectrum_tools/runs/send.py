"""Sending a plan as a new run, and the one-call :func:`send_updates` on top.

I/O: the input file, the run journal, the network (reads first, then status writes).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from spectrum_tools.client import SpectrumClient
from spectrum_tools.engine import SendOptions
from spectrum_tools.errors import RunStoppedError
from spectrum_tools.planning import Plan, plan_updates
from spectrum_tools.readback.preview import Preview, preview_plan
from spectrum_tools.results import OrderResult, RunObserver
from spectrum_tools.runs.recording import (
    DEFAULT_RECORDING,
    Recording,
    Source,
    replayable,
    source_identity,
)
from spectrum_tools.runs.skip import skip_applied
from spectrum_tools.runs.wiring import NOT_RECORDED, Adjustments, framed, send_new
from spectrum_tools.schema import Outcome
from spectrum_tools.sheets import read_updates

__all__ = [
    "preview_send",
    "send_plan",
    "send_updates",
]

# --------------------------------------------------------------------------- sending


def preview_send(
    plan: Plan,
    client: SpectrumClient,
    options: SendOptions | None = None,
    *,
    recording: Recording | None = DEFAULT_RECORDING,
    read_back: bool = True,
    progress: bool = False,
    stop: threading.Event | None = None,
) -> Preview:
    """What sending ``plan`` would change now, and the plan that changes only that.

    Skips what earlier runs applied (unless ``recording.force``, or no recording), then
    reads Spectrum's current state (unless ``read_back=False``) and decides each order:
    see :func:`~spectrum_tools.readback.preview.preview_plan`. Sends no status.

    Parameters
    ----------
    plan
        The plan as read, validated and planned from the sheet.
    client
        The environment.
    options
        The pace of the reads, the pace the ETA assumes, and ``retry_without_missing``.
    recording
        Where earlier runs are recorded (for the skip rule).
    read_back
        Read Spectrum's current state (default); False previews the plan as it is.
    progress, stop
        Progress bars; an event to stop reading.

    Returns
    -------
    Preview
        Hand it to :func:`send_plan` to send exactly what it shows.
    """
    options = options or SendOptions()
    if recording is not None and not recording.force:
        plan = skip_applied(plan, client.environment_key, runs_dir=recording.runs_dir)
    return preview_plan(plan, client, options, read_back=read_back, progress=progress, stop=stop)


def send_plan(
    plan: Plan | Preview,
    client: SpectrumClient,
    options: SendOptions | None = None,
    *,
    recording: Recording | None = DEFAULT_RECORDING,
    dry_run: bool = False,
    read_back: bool = True,
    progress: bool = True,
    stop: threading.Event | None = None,
    observers: Iterable[RunObserver] = (),
) -> pd.DataFrame:
    """Send ``plan`` as a journaled run; return one row per order.

    Unless given a :class:`~spectrum_tools.readback.preview.Preview`, it first skips
    what earlier runs applied and reads Spectrum's current state (:func:`preview_send`):
    an order whose every line item already holds the wanted status is ``unchanged`` and
    not sent, only line items that change are sent, and an order Spectrum would refuse
    whole is ``not_found`` without a request. What each sent line item held before is
    kept in the journal (its before-image), so the run can be undone.

    Parameters
    ----------
    plan
        The plan, or the exact preview shown to the user (sent as it is: nothing is read
        again).
    client
        The Spectrum environment to send to.
    options
        Pace, workers and retries (default :class:`~spectrum_tools.SendOptions`).
    recording
        How the run is recorded; None sends without a journal (and skips nothing).
    dry_run
        Send and record nothing; every order that would be sent gets outcome ``dry_run``
        (orders already set are ``unchanged``, orders earlier runs applied ``skipped``).
    read_back
        Read Spectrum's current state first (default); ignored for a preview.
    progress
        Show a progress bar with ETA (stderr in a terminal, a widget in Jupyter).
    stop
        An event another thread may set to stop the run gracefully.
    observers
        Extra hooks (see :class:`~spectrum_tools.results.RunObserver`).

    Returns
    -------
    pandas.DataFrame
        As :func:`send_updates`.

    Raises
    ------
    RunStoppedError
        The run stopped by itself (401, 403 before any success, an endless 403 streak, a
        host that does not answer), reading or sending: ``results`` holds the frame,
        unsent orders ``pending``.
    JournalError
        The run journal cannot be opened or written (the run stops).
    """
    options = options or SendOptions()
    stop = stop if stop is not None else threading.Event()
    preview = (
        plan
        if isinstance(plan, Preview)
        else preview_send(
            plan,
            client,
            options,
            recording=recording,
            read_back=read_back,
            progress=progress,
            stop=stop,
        )
    )
    if preview.stopped is not None:  # the read did not finish: nothing is sent
        return _unsent(preview, client)
    if dry_run:
        results = [
            OrderResult.unsent(r, Outcome.DRY_RUN, "not sent (dry run)")
            for r in preview.plan.requests()
        ]
        return framed(preview.plan, results, client, None, NOT_RECORDED)
    return send_new(
        preview.plan,
        client,
        options,
        recording,
        stop,
        observers,
        progress,
        Adjustments(left_out=preview.missing),
        preview.before_images(),
    )


def _unsent(preview: Preview, client: SpectrumClient) -> pd.DataFrame:
    """Every order pending: the read of the current state stopped before it finished."""
    stopped = preview.stopped
    assert stopped is not None
    text = f"not sent: reading the current state stopped ({stopped.message})"
    results = [OrderResult.unsent(r, Outcome.PENDING, text) for r in preview.plan.requests()]
    frame = framed(preview.plan, results, client, stopped, NOT_RECORDED)
    if not stopped.graceful:
        raise RunStoppedError(stopped.message, results=frame)
    return frame


def send_updates(
    source: Source,
    client: SpectrumClient,
    options: SendOptions | None = None,
    *,
    dry_run: bool = False,
    read_back: bool = True,
    sheet: str | None = None,
    columns: Mapping[str, str] | None = None,
    send_partial_orders: bool = False,
    progress: bool = True,
    stop: threading.Event | None = None,
    observers: Iterable[RunObserver] = (),
    runs_dir: str | Path | None = None,
    journal: bool = True,
    force: bool = False,
    **pace: Any,
) -> pd.DataFrame:
    """Read, validate, plan and send status updates; return one row per order.

    Parameters
    ----------
    source
        A path or upload (read with :func:`~spectrum_tools.read_updates`), a DataFrame of
        rows, or a ready :class:`~spectrum_tools.Plan`.
    client
        The Spectrum environment to send to.
    options
        Pace, workers and retries: a :class:`~spectrum_tools.SendOptions`. Its fields may
        also be given as keywords (``max_per_minute=60, workers=2``), not both.
    dry_run
        Send nothing; every order that would be sent gets outcome ``dry_run``.
    read_back
        Read Spectrum's current state first and send only what changes (default; see
        :func:`send_plan`).
    sheet, columns
        Passed to :func:`~spectrum_tools.read_updates` for a path or upload.
    send_partial_orders
        Send the valid rows of orders that have invalid rows (default: hold them back).
    progress
        Show a progress bar with ETA (stderr in a terminal, a widget in Jupyter).
    stop
        An event another thread may set to stop the run gracefully.
    observers
        Extra hooks (see :class:`~spectrum_tools.results.RunObserver`).
    runs_dir, journal
        Every send is a run recorded in the run journal of ``runs_dir`` (default
        ``./spectrum-runs``), unless ``journal=False``. Dry runs are not recorded.
    force
        Also send line items an earlier run already set to the same status on this environment
        (by default such orders are ``skipped``, "already applied by run N").

    Returns
    -------
    pandas.DataFrame
        One row per order: ``purchaseOrderNumber, outcome, http_status, details,
        line_count, missing_ids, attempts, elapsed_s, source_rows``. ``attrs`` holds
        ``host``, ``stopped`` (None, or why the run stopped early, e.g. "interrupted"),
        ``stop_reason`` (a :class:`~spectrum_tools.schema.StopReason` or None),
        ``run_id`` and ``journal`` (the journal's path; both None when not recorded).

    Raises
    ------
    SpreadsheetError
        The source cannot be read.
    ConfigError
        Both ``options`` and pace keywords, or an unknown keyword.
    RunStoppedError
        401, or 403 before any success: the token is refused or the limit was already
        used up. Its ``results`` attribute holds the frame (unsent orders ``pending``).
    JournalError
        The run journal cannot be opened or written (the run stops).
    """
    options = SendOptions.given(options, **pace)
    name, digest = source_identity(source)
    if journal and digest is None and not isinstance(source, str | Path | pd.DataFrame | Plan):
        source, digest = replayable(source)  # an upload: read once, hashed, handed on
    if isinstance(source, Plan):
        plan = source
    else:
        rows = read_updates(source, sheet=sheet, columns=columns)
        plan = plan_updates(rows, send_partial_orders=send_partial_orders)
    recording = (
        Recording(runs_dir=runs_dir, force=force, source_name=name, source_hash=digest)
        if journal
        else None
    )
    return send_plan(
        plan,
        client,
        options,
        recording=recording,
        dry_run=dry_run,
        read_back=read_back,
        progress=progress,
        stop=stop,
        observers=observers,
    )
