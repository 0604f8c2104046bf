"""The one journaled-run wiring every send, resume, retry and undo goes through.

I/O: the run journal (through its recorder) and the network (through the engine).

The journal's recorder hears of every order first (an order is committed as in flight
before anyone else hears of it), then the caller's observers and the progress bar; the
recorder is closed however the run ends, and a journal that could not be written raises
:class:`~spectrum_tools.errors.JournalError`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final

import pandas as pd

from spectrum_tools.client import SpectrumClient
from spectrum_tools.engine import SendOptions, SendProgress, run_plan
from spectrum_tools.errors import JournalError, RunStoppedError
from spectrum_tools.journal import Journal, RunRecorder
from spectrum_tools.planning import Plan, Request
from spectrum_tools.results import OrderResult, RunObserver, RunSettings, RunStop, results_frame
from spectrum_tools.runs.recording import Recording, plan_hash
from spectrum_tools.schema import Outcome

__all__ = [
    "NOT_RECORDED",
    "framed",
    "send_new",
    "send_recorded",
]

NOT_RECORDED: Final[dict[str, Any]] = {"run_id": None, "journal": None}


def send_new(
    plan: Plan,
    client: SpectrumClient,
    options: SendOptions,
    recording: Recording | None,
    stop: threading.Event,
    observers: Iterable[RunObserver],
    progress: bool,
    notes: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Send ``plan`` as a new run (recorded unless ``recording`` is None)."""
    if recording is None:
        return send_recorded(plan, client, options, None, stop, observers, progress, notes)
    with Journal(recording.runs_dir) as journal:
        recorder = journal.start_run(
            plan,
            host=client.host,
            environment=client.environment_key,
            source_name=recording.source_name or "Plan",
            source_hash=recording.source_hash or plan_hash(plan),
            options=options,
            parent_run=recording.parent_run,
            stop=stop,
        )
        return send_recorded(plan, client, options, recorder, stop, observers, progress, notes)


def send_recorded(
    plan: Plan,
    client: SpectrumClient,
    options: SendOptions,
    recorder: RunRecorder | None,
    stop: threading.Event,
    observers: Iterable[RunObserver],
    progress: bool,
    notes: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The one journaled-run wiring: send, close the recorder, frame, raise if stopped.

    ``notes``: order -> text added to its result's details (e.g. the line items a resume
    left out), before any observer hears of the result.
    """
    # The journal first: an order is committed as in flight before anyone else hears of it.
    hooks: list[RunObserver] = [*([recorder] if recorder is not None else []), *observers]
    if progress:
        hooks.append(SendProgress())
    if notes:
        hooks = [_Noted(hook, notes) for hook in hooks]
    try:
        results, stopped = run_plan(plan, client, options, observers=hooks, stop=stop)
        results = [_note(r, notes) for r in results] if notes else results
    finally:
        if recorder is not None:
            _release(recorder)  # raises JournalError when the journal could not be written
    frame = framed(plan, results, client, stopped, _recorded(recorder))
    if stopped is not None and not stopped.graceful:
        raise RunStoppedError(stopped.message, results=frame)
    return frame


class _Noted(RunObserver):
    """An observer that hears each result with its order's note added to the details."""

    def __init__(self, inner: RunObserver, notes: Mapping[str, str]) -> None:
        self.inner = inner
        self.notes = notes

    def run_started(self, plan: Plan, options: RunSettings) -> None:
        self.inner.run_started(plan, options)

    def sending(self, request: Request, attempt: int) -> None:
        self.inner.sending(request, attempt)

    def answered(
        self, request: Request, attempt: int, http_status: int | None, details: str
    ) -> None:
        self.inner.answered(request, attempt, http_status, details)

    def finished(self, result: OrderResult) -> None:
        self.inner.finished(_note(result, self.notes))

    def run_finished(self, results: list[OrderResult], stopped: RunStop | None) -> None:
        self.inner.run_finished([_note(r, self.notes) for r in results], stopped)


def _note(result: OrderResult, notes: Mapping[str, str]) -> OrderResult:
    note = notes.get(result.purchase_order)
    if not note or result.outcome is Outcome.PENDING:
        return result
    return replace(result, details=result.details + note)


def framed(
    plan: Plan,
    results: Sequence[OrderResult],
    client: SpectrumClient,
    stopped: RunStop | None,
    recorded: Mapping[str, Any],
) -> pd.DataFrame:
    frame = results_frame(plan, results)
    _set_attrs(frame, client, stopped, recorded)
    return frame


def _set_attrs(
    frame: pd.DataFrame,
    client: SpectrumClient,
    stopped: RunStop | None,
    recorded: Mapping[str, Any],
) -> None:
    frame.attrs.update(
        host=client.host,
        stopped=stopped.message if stopped is not None else None,
        stop_reason=stopped.reason if stopped is not None else None,
        **recorded,
    )


def _recorded(recorder: RunRecorder | None) -> dict[str, Any]:
    if recorder is None:
        return dict(NOT_RECORDED)
    return {"run_id": recorder.run_id, "journal": str(recorder.journal.path)}


def _release(recorder: RunRecorder) -> None:
    """Let go of the run; raise when the journal could not be written during it.

    Raises
    ------
    JournalError
        A journal write failed: the run was stopped, what was recorded stays.
    """
    recorder.close()
    if recorder.error is not None:
        raise JournalError(
            f"the run journal could not be written, so run {recorder.run_id} was stopped: "
            f"{recorder.error}"
        )
