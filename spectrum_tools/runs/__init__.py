"""Durable runs, the façade: send a Plan with SendOptions as a journaled run; resume a run,
retry its failures, skip what earlier runs applied; and :func:`send_updates`, the one-call
convenience on top.

I/O: the run journal (:mod:`spectrum_tools.journal`, in the runs folder), the input file
(read to hash it), and the network through the engine
(:func:`spectrum_tools.engine.run_plan`).

Every send, resume and retry goes through the same wiring (:func:`_send_recorded`): the
journal's recorder first (an order is committed as in flight before anyone else hears of
it), then the caller's observers and the progress bar; the recorder is closed however the
run ends, and a journal that could not be written raises :class:`JournalError`.

* :func:`send_plan` sends a plan as a new run (skipping what is already applied, unless
  ``force``); the CLI and the widgets send the plan they showed with it.
* :func:`resume_run` sends the orders of a run that are still pending or were in flight
  (a status PUT sets an absolute value, so re-sending an in-flight order is safe) and
  completes the same run.
* :func:`retry_failed` starts a new run, linked to the old one, with its failed orders.
* :func:`skip_applied` sets aside the orders whose every line item an earlier run already
  set to the same status on the same environment (its key, path included); resume and
  retry never send line items a later run has set since, unless ``force``.
"""

from spectrum_tools.runs.recording import Recording, source_identity
from spectrum_tools.runs.resume import picked_run, resume_run, retry_failed, retry_plan, run_options
from spectrum_tools.runs.send import preview_send, send_plan, send_updates
from spectrum_tools.runs.skip import skip_applied
from spectrum_tools.runs.undo import undo_run

__all__ = [
    "Recording",
    "picked_run",
    "preview_send",
    "resume_run",
    "retry_failed",
    "retry_plan",
    "run_options",
    "send_plan",
    "send_updates",
    "skip_applied",
    "source_identity",
    "undo_run",
]
