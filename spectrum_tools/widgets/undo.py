"""Undo in the app: pick a run (the one on screen, or one from the journal's history), see
what would be restored and what is left alone, then confirm like a send.

The library does the work (:func:`spectrum_tools.runs.undo_run`): first with
``dry_run=True`` (reads only) for this panel's table, then for real in the background.
"""

from __future__ import annotations

import html
from typing import Final

import ipywidgets as w
import pandas as pd

from spectrum_tools.journal import RunRecord
from spectrum_tools.runs.undo import undo_plan
from spectrum_tools.schema import DETAILS, LINE_ID, OUTCOME, PO, STATUS, Outcome
from spectrum_tools.widgets import _render
from spectrum_tools.widgets.grid import DataGrid

__all__ = ["UndoPanel", "history_options", "undo_table"]

_NONE: Final = 0
RESTORE: Final = "will be restored"
_APPLIED: Final = (Outcome.UPDATED.value, Outcome.PARTIAL.value)
_WHAT: Final = {
    Outcome.DRY_RUN.value: RESTORE,
    Outcome.UNCHANGED.value: "already as before: not sent",
}


def undo_table(record: RunRecord, dry: pd.DataFrame) -> pd.DataFrame:
    """One row per line item the run changed: what it set, what it goes back to, and why not.

    Parameters
    ----------
    record
        The run to undo, from the journal.
    dry
        :func:`~spectrum_tools.runs.undo_run`'s dry-run frame (``attrs["left_alone"]``).
    """
    plan, targets, without = undo_plan(record)
    before = plan.line_items()[[PO, LINE_ID, STATUS]].rename(columns={STATUS: "back"})
    rows = targets.merge(before, on=[PO, LINE_ID], how="left")
    rows = pd.concat(
        [rows, without[[PO, LINE_ID, STATUS]].assign(back="")], ignore_index=True
    ).fillna("")
    left = pd.DataFrame(dry.attrs.get("left_alone") or [], columns=[PO, LINE_ID, DETAILS])
    kept = {(str(p), str(i)): str(d) for p, i, d in left.itertuples(index=False)}
    outcome = dict(zip(dry[PO].astype(str), dry[OUTCOME].astype(str), strict=True))
    what = []
    for po, line in zip(rows[PO].astype(str), rows[LINE_ID].astype(str), strict=True):
        if (po, line) in kept:
            what.append("left alone: " + kept[(po, line)])
        else:
            found = outcome.get(po, "")
            what.append(_WHAT.get(found, found))
    run = record.run_id
    table = pd.DataFrame(
        {
            "PO number": rows[PO],
            "Line item": rows[LINE_ID],
            f"Run {run} set": rows[STATUS],
            "Back to": rows["back"].where(rows["back"] != "", "(not known)"),
            "What happens": what,
        }
    )
    first = table["What happens"].str.startswith("left alone").map({True: 1, False: 0})
    return table.iloc[first.argsort(kind="stable")].reset_index(drop=True)


def history_options(runs: pd.DataFrame) -> list[tuple[str, int]]:
    """Menu entries for the runs that changed something (not dry runs), the newest first."""
    if runs.empty:
        return []
    changed = runs[list(_APPLIED)].sum(axis=1) > 0
    done = runs.loc[(~runs["dry_run"]) & changed]
    return [
        (
            f"run {r['run_id']}: {r['source_name']} on {r['host']}, "
            f"{int(r[Outcome.UPDATED.value]) + int(r[Outcome.PARTIAL.value]):,} orders changed "
            f"({r['state']}, started {str(r['started_at'])[:19]})",
            int(r["run_id"]),
        )
        for r in done.iloc[::-1].to_dict("records")
    ]


class UndoPanel:
    """ "Undo this run", the run history with "Undo…", and what an undo would do."""

    def __init__(self) -> None:
        self.this_run_button = w.Button(
            description="Undo this run",
            icon="undo",
            disabled=True,
            tooltip="set what the run changed back to what Spectrum held before it",
            layout=w.Layout(width="160px"),
        )
        self.history = w.Dropdown(
            options=[("(no run yet)", _NONE)],
            value=_NONE,
            description="Earlier runs",
            style={"description_width": "110px"},
            layout=w.Layout(width="640px"),
        )
        self.history_button = w.Button(description="Undo…", icon="undo", disabled=True)
        self.note = w.HTML()
        self.note.add_class("spectrum-note")
        self.summary = w.HTML()
        self.grid = DataGrid("spectrum-undo-grid")
        self.history.observe(self._picked, names="value")
        self.box = w.VBox(
            [
                w.HTML("<b>Undo a run</b>"),
                w.HBox([self.this_run_button, self.note]),
                w.HBox([self.history, self.history_button]),
                self.summary,
                self.grid.box,
            ]
        )
        self.box.add_class("spectrum-undo")

    def show_history(self, options: list[tuple[str, int]]) -> None:
        """Offer the runs that changed something (label, run id), the newest first."""
        current = self.history.value
        self.history.options = options or [("(no run yet)", _NONE)]
        ids = [v for _l, v in options]
        self.history.value = current if current in ids else (ids[0] if ids else _NONE)
        self._picked()

    def selected_run(self) -> int | None:
        """The run picked in the history, or None."""
        return int(self.history.value) or None

    def show_preview(self, run_id: int, table: pd.DataFrame, host: str) -> int:
        """Show what undoing ``run_id`` would do; return the line items it restores."""
        what = table["What happens"]
        restore = int((what == RESTORE).sum())
        left = int(what.str.startswith("left alone").sum())
        same = len(table) - restore - left
        self.summary.value = (
            '<div class="spectrum-undo-summary">'
            f"Undo run <b>{run_id}</b> on <b>{html.escape(host)}</b>: "
            f"<b>{restore:,}</b> line items go back to what they were before it; "
            f"<b>{left:,}</b> left alone (changed since, or never read before the run); "
            f"{same:,} already as before.</div>"
        )
        self.grid.show(
            table,
            f"What undoing run {run_id} does, line item by line item",
            wide=["What happens"],
        )
        return restore

    def show_done(self, results: pd.DataFrame) -> None:
        """After the undo: what was left alone, in the note under the table."""
        count = len(results.attrs.get("left_alone") or [])
        undo_of = results.attrs.get("undo_of")
        left_text = (
            f"{count:,} line items left alone (marked in the table)" if count else "none left alone"
        )
        self.summary.value = _render.success_line(
            f"Run {undo_of} undone as run {results.attrs.get('run_id')}: "
            f"{_render.counts_text(results)}; {left_text}."
        )
        self.note.value = ""

    def clear(self) -> None:
        """Nothing about an undo on screen."""
        self.summary.value = self.note.value = ""
        self.grid.clear()
        self.this_run_button.disabled = True

    def _picked(self, _change: object = None) -> None:
        self.history_button.disabled = not self.history.value
