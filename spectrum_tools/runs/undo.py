"""Undo a run: set every line item it changed back to what Spectrum held before it.

I/O: the run journal (the run, its before-images; the undo is a new run) and the network
(a read of the current state, then status writes).

Undo is a new run, linked to the one it undoes (``parent_run``, kind ``undo``), sent with
the same pacing, journal and report as any send. For each line item the run changed:

* it is set back to its before-image (what a read-back found just before the run);
* unless its current status is no longer what the run set: someone changed it since, so
  it is kept as it is and reported ("changed since run 7: now cancelled"), unless
  ``force``;
* a line item with no before-image (the run was sent without read-back, or Spectrum's
  answers carried no statuses) is reported and left alone: there is nothing to go back to.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import pandas as pd

from spectrum_tools.client import SpectrumClient
from spectrum_tools.errors import RunStoppedError
from spectrum_tools.journal import Journal, RunRecord
from spectrum_tools.planning import Plan, plan_updates
from spectrum_tools.results import OrderResult, RunObserver
from spectrum_tools.runs.recording import Recording
from spectrum_tools.runs.reread import reread
from spectrum_tools.runs.resume import run_options, usable_run
from spectrum_tools.runs.wiring import NOT_RECORDED, Adjustments, framed, send_new
from spectrum_tools.schema import (
    DETAILS,
    LINE_ID,
    MISSING_IDS,
    OUTCOME,
    PO,
    STATUS,
    Outcome,
)

__all__ = ["NO_BEFORE_IMAGE", "undo_plan", "undo_run"]

NO_BEFORE_IMAGE: Final = "no before-image: the run was sent without reading what Spectrum held"
_APPLIED: Final = (Outcome.UPDATED.value, Outcome.PARTIAL.value)


def undo_plan(record: RunRecord) -> tuple[Plan, pd.DataFrame, pd.DataFrame]:
    """What undoing a run sends, before the current state is read. Pure.

    Returns
    -------
    (plan, targets, without_image)
        ``plan`` sets each line item the run changed back to its before-image;
        ``targets`` holds ``purchaseOrderNumber, recipeSetReadableId, workflowStatus``
        (what the run set) for those line items; ``without_image`` the line items the run
        changed that have no before-image (``details`` says so).
    """
    changed = _changed_by(record)
    before = record.before_images.rename(columns={"status": "before"})
    merged = changed.merge(before[[PO, LINE_ID, "before"]], on=[PO, LINE_ID], how="left")
    known = merged["before"].fillna("").astype(str) != ""
    without = merged.loc[~known, [PO, LINE_ID, STATUS]].reset_index(drop=True)
    without[DETAILS] = NO_BEFORE_IMAGE
    restore = merged.loc[known]
    rows = pd.DataFrame(
        {
            PO: restore[PO].to_numpy(object),
            LINE_ID: restore[LINE_ID].to_numpy(object),
            STATUS: restore["before"].to_numpy(object),
        }
    )
    plan = plan_updates(rows)
    return plan, restore[[PO, LINE_ID, STATUS]].reset_index(drop=True), without


def _changed_by(record: RunRecord) -> pd.DataFrame:
    """The line items a run set: sent in an order that went through, minus missing ids."""
    results = record.results
    done = results.loc[results[OUTCOME].isin(_APPLIED)]
    missing = {
        (str(po), i)
        for po, ids in zip(done[PO], done[MISSING_IDS], strict=True)
        for i in str(ids).split(",")
        if i
    }
    lines = record.plan.line_items()
    lines = lines[lines[PO].isin(set(done[PO]))]
    keep = [(po, i) not in missing for po, i in zip(lines[PO], lines[LINE_ID], strict=True)]
    return lines.loc[keep, [PO, LINE_ID, STATUS]].reset_index(drop=True)


def undo_run(
    run_id: int,
    client: SpectrumClient,
    *,
    runs_dir: str | Path | None = None,
    dry_run: bool = False,
    force: bool = False,
    progress: bool = True,
    stop: threading.Event | None = None,
    observers: Iterable[RunObserver] = (),
    max_per_minute: float | None = None,
    workers: int | None = None,
) -> pd.DataFrame:
    """Set every line item run ``run_id`` changed back to its before-image, as a new run.

    Parameters
    ----------
    run_id
        The run to undo.
    client
        Must be the run's environment (same environment key).
    runs_dir
        The runs folder (default ``./spectrum-runs``).
    dry_run
        Read and decide, send and record nothing (orders to restore are ``dry_run``).
    force
        Also restore line items someone changed since the run (their change is lost).
    progress, stop, observers
        As for :func:`~spectrum_tools.runs.send_updates`.
    max_per_minute, workers
        Override the pace the run was sent with.

    Returns
    -------
    pandas.DataFrame
        The undo run's results, one row per order it concerns; ``attrs`` as for a send,
        plus ``undo_of`` (``run_id``) and ``left_alone``: the line items kept as they
        are, as records (``purchaseOrderNumber``, ``recipeSetReadableId``, ``details``
        saying why: changed since, or no before-image); ``pd.DataFrame(...)`` of it is a
        table. Plain records, not a frame: pandas copies ``attrs`` through operations.

    Raises
    ------
    JournalError
        No journal, no such run, or a dry run.
    ConfigError
        ``client`` is another environment than the run's.
    RunStoppedError
        Spectrum refused the reads or the writes; ``results`` holds the frame.
    """
    with Journal.existing(runs_dir) as journal:
        record = usable_run(journal, run_id, client, "undo")
    plan, targets, without = undo_plan(record)
    options = run_options(record, max_per_minute=max_per_minute, workers=workers)
    options = dataclasses.replace(options, retry_without_missing=True)
    expected = {
        (str(po), str(i)): {str(target)}
        for po, i, target in targets[[PO, LINE_ID, STATUS]].itertuples(index=False)
    }
    stop = stop if stop is not None else threading.Event()
    again = reread(
        plan,
        client,
        options,
        run_id=run_id,
        expected=expected,
        force=force,
        progress=progress,
        stop=stop,
    )
    left_alone = pd.concat(
        [again.left_alone[[PO, LINE_ID, DETAILS]], without[[PO, LINE_ID, DETAILS]]],
        ignore_index=True,
    )
    stopped = again.preview.stopped
    if stopped is not None and not stopped.graceful:
        frame = framed(again.plan, [], client, stopped, NOT_RECORDED)
        frame.attrs.update(undo_of=run_id, left_alone=left_alone.to_dict("records"))
        raise RunStoppedError(stopped.message, results=frame)
    if dry_run or stopped is not None or not again.plan.request_count + len(again.plan.set_aside):
        results = [
            OrderResult.unsent(r, Outcome.DRY_RUN, "not sent (dry run)")
            for r in again.plan.requests()
        ]
        frame = framed(again.plan, results, client, again.preview.stopped, NOT_RECORDED)
    else:
        recording = Recording(
            runs_dir=runs_dir,
            force=True,  # what earlier runs applied is exactly what undo puts back
            source_name=f"undo of run {run_id}",
            source_hash=str(record.meta["source_hash"]),
            parent_run=run_id,
            kind="undo",
        )
        frame = send_new(
            again.plan,
            client,
            options,
            recording,
            stop,
            observers,
            progress,
            Adjustments(notes=again.notes, left_out=again.preview.missing),
            again.preview.before_images(),
        )
    frame.attrs.update(undo_of=run_id, left_alone=left_alone.to_dict("records"))
    return frame
