"""Step 3 of the app: validation counts, problems by kind, and the grid to fix invalid rows.

Display only: the counts come from :meth:`Plan.summary` and
:func:`~spectrum_tools.validation.problem_counts`; the fixing is :class:`FixPanel`'s.
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as w

from spectrum_tools.planning import Plan
from spectrum_tools.validation import problem_counts
from spectrum_tools.widgets import _render
from spectrum_tools.widgets.fixes import FixPanel

__all__ = ["ValidatePanel"]


class ValidatePanel:
    """The Validate button, the counts, the problems, and the fix grid of invalid rows."""

    def __init__(self, on_edit: Callable[[], None]) -> None:
        self.button = w.Button(description="Validate", button_style="info", icon="check")
        self.note = w.HTML()
        self.note.add_class("spectrum-note")
        self.send_partial = w.Checkbox(
            value=False,
            description="send the good rows of an order even when another of its rows is invalid",
            indent=False,
            layout=w.Layout(width="auto"),
        )
        self.summary = w.HTML()
        self.invalid_rows = w.HTML()
        self.fixes = FixPanel(on_edit)
        self.box = w.VBox(
            [
                w.HTML("<h3>3. Check the rows</h3>"),
                w.HBox([self.button, self.note]),
                self.send_partial,
                self.summary,
                self.invalid_rows,
                self.fixes.box,
            ]
        )

    def clear(self) -> None:
        """Forget the shown results (a new file: its corrections go too)."""
        self.summary.value = ""
        self.invalid_rows.value = ""
        self.note.value = ""
        self.fixes.clear()

    def show(self, plan: Plan) -> None:
        """Show the plan's counts and its problems grouped by kind."""
        s = plan.summary()
        self.summary.value = (
            '<div class="spectrum-validation">'
            f"<b>{s['rows']:,}</b> rows: <b>{s['valid_rows']:,}</b> valid, "
            f"<b>{s['invalid_rows']:,}</b> invalid. "
            f"<b>{s['orders']:,}</b> orders: <b>{s['requests']:,}</b> to send, "
            f"{s['orders_held_invalid']:,} held back because a row is invalid"
            f"{_skipped(s)}.</div>"
        )
        if not s["invalid_rows"]:
            self.invalid_rows.value = _render.success_line("Every row is valid.")
            return
        counts = problem_counts(plan.rows).rename_axis("problem").reset_index()
        self.invalid_rows.value = _render.table(
            counts, css_class="spectrum-problem-counts", caption="Problems, by kind"
        )


def _skipped(summary: dict[str, int]) -> str:
    n = summary.get("orders_skipped", 0)
    return f", {n:,} skipped (already applied)" if n else ""
