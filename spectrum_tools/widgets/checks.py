"""Step 3 of the app: validation counts, problems by kind, the suggested statuses, and the
grid to fix invalid rows.

Display only: the counts come from :meth:`Plan.summary` and
:func:`~spectrum_tools.validation.problem_counts`, the suggestions from
:func:`~spectrum_tools.validation.status_suggestions`; the fixing is :class:`FixPanel`'s.
Problems name the analyst's own column headers, not the API's field names.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping

import ipywidgets as w
import pandas as pd

from spectrum_tools.planning import Plan
from spectrum_tools.schema import KEY_COLUMNS
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
        self.suggestions = w.HTML()
        self.suggestions_button = w.Button(
            description="Apply suggestions",
            icon="magic",
            disabled=True,
            tooltip="Take the suggested status for every unknown spelling (the sheet's own "
            "spelling stays in the report)",
            layout=w.Layout(width="auto"),
        )
        self.suggestions_button.add_class("spectrum-apply-suggestions")
        self.suggestions_box = w.VBox([self.suggestions, self.suggestions_button])
        self.suggestions_box.layout.display = "none"
        self.fixes = FixPanel(on_edit)
        self.box = w.VBox(
            [
                w.HTML("<h3>3. Check the rows</h3>"),
                w.HBox([self.button, self.note]),
                self.send_partial,
                self.summary,
                self.invalid_rows,
                self.suggestions_box,
                self.fixes.box,
            ]
        )

    def clear(self) -> None:
        """Forget the shown results (a new file: its corrections go too)."""
        self.summary.value = ""
        self.invalid_rows.value = ""
        self.note.value = ""
        self.show_suggestions(pd.DataFrame(), taken=False)
        self.fixes.clear()

    def show(self, plan: Plan, headers: Mapping[str, str] | None = None) -> None:
        """Show the plan's counts and its problems grouped by kind.

        ``headers`` (API field -> the analyst's header) names the columns in the problems.
        """
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
        counts["problem"] = [in_their_words(str(k), headers or {}) for k in counts["problem"]]
        self.invalid_rows.value = _render.table(
            counts, css_class="spectrum-problem-counts", caption="Problems, by kind"
        )

    def show_suggestions(self, hints: pd.DataFrame, *, taken: bool) -> None:
        """Offer the suggested statuses (``spelling``, ``suggestion``, ``rows``) in one click.

        ``taken``: they are applied now; the button then puts the sheet's spellings back.
        """
        if not taken and hints.empty:
            self.suggestions.value = ""
            self.suggestions_button.disabled = True
            self.suggestions_box.layout.display = "none"
            return
        self.suggestions_box.layout.display = None
        self.suggestions_button.disabled = False
        if taken:
            self.suggestions.value = _render.success_line(
                "Suggested statuses taken; the sheet's own spelling stays in the report."
            )
            self.suggestions_button.description = "Use the sheet's own spellings"
            self.suggestions_button.icon = "undo"
            return
        top = hints.head(8)
        moves = ", ".join(
            f"{html.escape(str(spelling))} → <b>{html.escape(str(suggestion))}</b> "
            f"({n:,} row{'s' if n != 1 else ''})"
            for spelling, suggestion, n in zip(
                top["spelling"].tolist(),
                top["suggestion"].tolist(),
                top["rows"].tolist(),
                strict=True,
            )
        )
        more = f" and {len(hints) - 8:,} more" if len(hints) > 8 else ""
        self.suggestions.value = (
            f'<div class="spectrum-suggestions">Suggested statuses: {moves}{more}.</div>'
        )
        self.suggestions_button.description = f"Apply {len(hints):,} suggestion" + (
            "s" if len(hints) != 1 else ""
        )
        self.suggestions_button.icon = "magic"


def in_their_words(kind: str, headers: Mapping[str, str]) -> str:
    """A problem kind with the API field names replaced by the analyst's headers.

    Examples
    --------
    >>> in_their_words("unknown workflowStatus", {"workflowStatus": "New Status"})
    'unknown New Status'
    """
    for field in KEY_COLUMNS:
        header = headers.get(field)
        if header and field in kind:
            kind = kind.replace(field, header)
    return kind


def _skipped(summary: dict[str, int]) -> str:
    n = summary.get("orders_skipped", 0)
    return f", {n:,} skipped (already applied)" if n else ""
