"""Step 6 of the app: the outcome chart, the results grid, downloads, retry and resume.

The unfinished runs come from the journal (:meth:`Journal.runs`), so a run stopped, or cut
off by a kernel restart, can be resumed from a new kernel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import ipywidgets as w
import pandas as pd

from spectrum_tools.schema import (
    ATTEMPTS,
    DETAILS,
    ELAPSED_S,
    HTTP_STATUS,
    LINE_COUNT,
    MISSING_IDS,
    OUTCOME,
    PO,
    SOURCE_ROWS,
    Outcome,
)
from spectrum_tools.widgets import _render
from spectrum_tools.widgets.grid import FAILURES_FIRST, DataGrid, failures_first

__all__ = ["ResultsPanel", "unfinished_options"]

_NONE: Final = 0


class ResultsPanel:
    """The outcome chart, the results grid (failures first), downloads, retry and resume."""

    def __init__(self) -> None:
        self.summary = w.HTML()
        self.chart = w.HTML()
        self.grid = DataGrid("spectrum-results-grid")
        self.report_link = w.HTML()
        self.errors_link = w.HTML()
        self.success_link = w.HTML()
        self.retry_button = w.Button(
            description="Retry failures", icon="redo", disabled=True, layout=w.Layout(width="160px")
        )
        self.include_not_found = w.Checkbox(
            value=False,
            description="also orders with a line item Spectrum did not know",
            indent=False,
            layout=w.Layout(width="auto"),
        )
        self.retry_note = w.HTML()
        self.retry_note.add_class("spectrum-note")
        self.unfinished = w.Dropdown(
            options=[("(no unfinished run)", _NONE)],
            value=_NONE,
            description="Unfinished runs",
            style={"description_width": "110px"},
            layout=w.Layout(width="640px"),
        )
        self.refresh_button = w.Button(description="Refresh", icon="sync")
        self.resume_button = w.Button(description="Resume", icon="play", disabled=True)
        self.resume_note = w.HTML()
        self.resume_note.add_class("spectrum-note")
        self.unfinished.observe(self._picked, names="value")
        self.box = w.VBox(
            [
                w.HTML("<h3>6. Results</h3>"),
                self.summary,
                self.chart,
                self.grid.box,
                self.report_link,
                self.errors_link,
                self.success_link,
                w.HBox([self.retry_button, self.include_not_found, self.retry_note]),
                w.HBox([self.unfinished, self.refresh_button, self.resume_button]),
                self.resume_note,
            ]
        )

    def clear(self) -> None:
        """No run on screen (a new file was loaded)."""
        self.summary.value = self.chart.value = ""
        self.report_link.value = self.errors_link.value = self.success_link.value = ""
        self.retry_note.value = self.resume_note.value = ""
        self.grid.clear()
        self.retry_button.disabled = True

    def show(self, results: pd.DataFrame, title: str) -> None:
        """Show a run's chart and its per-order grid, failures first."""
        counts = results[OUTCOME].value_counts()
        self.summary.value = _render.info_line(f"{title}: {_render.counts_text(results)}")
        ordered = {name: int(counts.get(name, 0)) for name in FAILURES_FIRST}
        self.chart.value = _render.outcome_chart(ordered)
        self.grid.show(
            _for_analysts(failures_first(results)),
            "Orders (failures first; click a header to sort, type in a box to filter)",
            wide=[RESULT_LABELS[DETAILS]],
        )
        failed = int(counts.get(Outcome.FAILED.value, 0) + counts.get(Outcome.NOT_FOUND.value, 0))
        self.retry_button.disabled = failed == 0

    def show_files(
        self,
        report: Path | None,
        errors: Path | None,
        successes: Path | None,
        *,
        clear: bool = False,
    ) -> None:
        """Links to download the report workbook, the error file and the success file.

        ``clear``: no links at all (a run is going: the last run's files are stale).
        """
        if clear:
            self.report_link.value = self.errors_link.value = self.success_link.value = ""
            return
        self.report_link.value = (
            _render.download_link(report, "Report workbook") if report is not None else ""
        )
        self.errors_link.value = (
            _render.download_link(errors, "Error file: the rows that did not go through")
            if errors is not None
            else _render.success_line("Every row went through: no error file.")
        )
        self.success_link.value = (
            _render.download_link(successes, "Success file: the rows that went through")
            if successes is not None
            else ""
        )

    def show_unfinished(self, options: list[tuple[str, int]]) -> None:
        """Offer the unfinished runs (label, run id), the newest first."""
        self.unfinished.options = options or [("(no unfinished run)", _NONE)]
        self.unfinished.value = options[0][1] if options else _NONE
        self._picked()

    def selected_run(self) -> int | None:
        """The unfinished run picked, or None."""
        return int(self.unfinished.value) or None

    def _picked(self, _change: object = None) -> None:
        self.resume_button.disabled = not self.unfinished.value


# The results' columns in analysts' words, the reason right after the outcome.
RESULT_LABELS: Final = {
    PO: "PO number",
    OUTCOME: "outcome",
    DETAILS: "details",
    LINE_COUNT: "line items",
    MISSING_IDS: "line items Spectrum did not know",
    HTTP_STATUS: "HTTP code",
    ATTEMPTS: "attempts",
    ELAPSED_S: "seconds",
    SOURCE_ROWS: "rows in the sheet",
}


def _for_analysts(results: pd.DataFrame) -> pd.DataFrame:
    known = [c for c in RESULT_LABELS if c in results.columns]
    rest = [c for c in results.columns if c not in RESULT_LABELS]
    return results[[*known, *rest]].rename(columns=RESULT_LABELS)


def unfinished_options(runs: pd.DataFrame) -> list[tuple[str, int]]:
    """Menu entries for the runs with orders still pending that nobody is sending."""
    pending = Outcome.PENDING.value
    if runs.empty:
        return []
    open_runs = runs.loc[(~runs["dry_run"]) & (runs[pending] > 0) & (runs["state"] != "running")]
    return [
        (
            f"run {r['run_id']}: {r['source_name']} on {r['host']}, {r[pending]:,} pending "
            f"({r['state']}, started {str(r['started_at'])[:19]})",
            int(r["run_id"]),
        )
        for r in open_runs.iloc[::-1].to_dict("records")
    ]
