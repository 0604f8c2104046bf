"""The one journaled-run wiring every send, resume, retry and undo goes through.

I/O: the run journal (through its recorder) and the network (through the engine).

The journal's recorder hears of every order first (an order is committed as in flight
before anyone else hears of it), then the caller's observers and the progress bar; the
recorder is closed however the run ends, and a journal that could not be written raises
:class:`~spectrum_tools.errors.JournalError`.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
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
    "Adjustments",
    "framed",
    "send_new",
    "send_recorded",
]

NOT_RECORDED: Final[dict[str, Any]] = {"run_id": None, "journal": None}


@dataclass(frozen=True)
class Adjustments:
    """What the façade knows about some orders before they are sent, for their results.

    Attributes
    ----------
    notes
        Order -> text added to its result's details (e.g. the line items a resume left
        out because a later run set them).
    left_out
        Order -> line items a read-back showed Spectrum does not have; they were left out
        of the request, so a success is ``partial`` with them as ``missing_ids``.
    """

    notes: Mapping[str, str] = field(default_factory=dict)
    left_out: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.notes or self.left_out)

    def apply(self, result: OrderResult) -> OrderResult:
        """``result`` as the analyst must see it (unchanged for a ``pending`` order)."""
        po = result.purchase_order
        if result.outcome is Outcome.PENDING:
            return result
        missing = self.left_out.get(po, ())
        if missing and result.outcome is Outcome.UPDATED:
            result = replace(
                result,
                outcome=Outcome.PARTIAL,
                missing_ids=missing,
                details=f"{result.details} Not in Spectrum, left out: {', '.join(missing)}.",
            )
        note = self.notes.get(po)
        return replace(result, details=result.details + note) if note else result


def send_new(
    plan: Plan,
    client: SpectrumClient,
    options: SendOptions,
    recording: Recording | None,
    stop: threading.Event,
    observers: Iterable[RunObserver],
    progress: bool,
    adjust: Adjustments | None = None,
    before_images: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Send ``plan`` as a new run (recorded unless ``recording`` is None), with the
    line items' ``before_images`` (what a read-back found) kept in the journal."""
    if recording is None:
        return send_recorded(plan, client, options, None, stop, observers, progress, adjust)
    with Journal(recording.runs_dir) as journal:
        recorder = journal.start_run(
            plan,
            host=client.host,
            environment=client.environment_key,
            source_name=recording.source_name or "Plan",
            source_hash=recording.source_hash or plan_hash(plan),
            options={**dataclasses.asdict(options), "kind": recording.kind},
            parent_run=recording.parent_run,
            stop=stop,
            before_images=before_images,
        )
        return send_recorded(plan, client, options, recorder, stop, observers, progress, adjust)


def send_recorded(
    plan: Plan,
    client: SpectrumClient,
    options: SendOptions,
    recorder: RunRecorder | None,
    stop: threading.Event,
    observers: Iterable[RunObserver],
    progress: bool,
    adjust: Adjustments | None = None,
) -> pd.DataFrame:
    """The one journaled-run wiring: send, close the recorder, frame, raise if stopped.

    ``adjust`` shapes each result before any observer (the journal first) hears of it.
    """
    # The journal first: an order is committed as in flight before anyone else hears of it.
    hooks: list[RunObserver] = [*([recorder] if recorder is not None else []), *observers]
    if progress:
        hooks.append(SendProgress())
    if adjust:
        hooks = [_Adjusted(hook, adjust) for hook in hooks]
    try:
        results, stopped = run_plan(plan, client, options, observers=hooks, stop=stop)
        results = [adjust.apply(r) for r in results] if adjust else results
    finally:
        if recorder is not None:
            _release(recorder)  # raises JournalError when the journal could not be written
    frame = framed(plan, results, client, stopped, _recorded(recorder))
    if stopped is not None and not stopped.graceful:
        raise RunStoppedError(stopped.message, results=frame)
    return frame


class _Adjusted(RunObserver):
    """An observer that hears each result as :meth:`Adjustments.apply` shapes it."""

    def __init__(self, inner: RunObserver, adjust: Adjustments) -> None:
        self.inner = inner
        self.adjust = adjust

    def run_started(self, plan: Plan, options: RunSettings) -> None:
        self.inner.run_started(plan, options)

    def sending(self, request: Request, attempt: int) -> None:
        self.inner.sending(request, attempt)

    def answered(
        self, request: Request, attempt: int, http_status: int | None, details: str
    ) -> None:
        self.inner.answered(request, attempt, http_status, details)

    def finished(self, result: OrderResult) -> None:
        self.inner.finished(self.adjust.apply(result))

    def run_finished(self, results: list[OrderResult], stopped: RunStop | None) -> None:
        self.inner.run_finished([self.adjust.apply(r) for r in results], stopped)


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
