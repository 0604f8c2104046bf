"""Steps 3 and 4 of the app: validation results and the preview of what will be sent.

Display only: the counts come from :meth:`Plan.summary` and
:func:`~spectrum_tools.problem_counts`, the ETA from :meth:`SendOptions.eta_seconds`, the
payloads from :meth:`Plan.preview`.
"""

from __future__ import annotations

import html
import json

import ipywidgets as w

from spectrum_tools.engine import SendOptions
from spectrum_tools.planning import Plan
from spectrum_tools.schema import LINE_ID, PAYLOAD, PO, PROBLEM, SOURCE_ROW, STATUS, VALID
from spectrum_tools.validation import problem_counts
from spectrum_tools.widgets import _render

__all__ = ["PreviewPanel", "ValidatePanel"]

_SAFE_PACE = 100  # Spectrum: under 100 requests per 60 s never triggers the limit


class ValidatePanel:
    """The Validate button, the counts, and the invalid rows with their problems."""

    def __init__(self) -> None:
        self.button = w.Button(description="Validate", button_style="info", icon="check")
        self.send_partial = w.Checkbox(
            value=False,
            description="send the valid rows of orders that have invalid rows",
            indent=False,
            layout=w.Layout(width="auto"),
        )
        self.summary = w.HTML()
        self.invalid_rows = w.HTML()
        self.box = w.VBox(
            [
                w.HTML("<h3>3. Validate</h3>"),
                w.HBox([self.button, self.send_partial]),
                self.summary,
                self.invalid_rows,
            ]
        )

    def clear(self) -> None:
        """Forget the shown results (the input changed)."""
        self.summary.value = ""
        self.invalid_rows.value = ""

    def show(self, plan: Plan) -> None:
        """Show the plan's counts and its invalid rows."""
        s = plan.summary()
        self.summary.value = (
            '<div class="spectrum-validation">'
            f"<b>{s['rows']:,}</b> rows: <b>{s['valid_rows']:,}</b> valid, "
            f"<b>{s['invalid_rows']:,}</b> invalid. "
            f"<b>{s['orders']:,}</b> orders: <b>{s['requests']:,}</b> to send, "
            f"{s['orders_held_invalid']:,} held back because a row is invalid"
            f"{_skipped(s)}.</div>"
        )
        invalid = plan.rows.loc[~plan.rows[VALID], [SOURCE_ROW, PO, LINE_ID, STATUS, PROBLEM]]
        if invalid.empty:
            self.invalid_rows.value = _render.info_line("Every row is valid.")
            return
        counts = problem_counts(plan.rows).rename_axis("problem").reset_index()
        self.invalid_rows.value = _render.table(
            counts, css_class="spectrum-problem-counts", caption="Problems"
        ) + _render.table(
            invalid.rename(columns={SOURCE_ROW: "row"}),
            css_class="spectrum-invalid-rows",
            caption="Invalid rows (fix them in the sheet, or they are held back)",
        )


def _skipped(summary: dict[str, int]) -> str:
    n = summary.get("orders_skipped", 0)
    return f", {n:,} skipped (already applied)" if n else ""


class PreviewPanel:
    """Pace controls, the Preview button, orders / requests / ETA and sample payloads."""

    def __init__(self, *, max_per_minute: int, workers: int) -> None:
        self.max_per_minute = w.BoundedIntText(
            value=max_per_minute,
            min=1,
            max=6000,
            description="per minute",
            style={"description_width": "110px"},
            layout=w.Layout(width="220px"),
        )
        self.workers = w.BoundedIntText(
            value=workers,
            min=1,
            max=32,
            description="workers",
            style={"description_width": "80px"},
            layout=w.Layout(width="180px"),
        )
        self.retry_without_missing = w.Checkbox(
            value=False,
            description="after a 404/409, re-send the order without the missing line items",
            indent=False,
            layout=w.Layout(width="auto"),
        )
        self.pace_note = w.HTML()
        self.button = w.Button(description="Preview", button_style="info", icon="eye")
        self.summary = w.HTML()
        self.payloads = w.HTML()
        self.max_per_minute.observe(self._pace_changed, names="value")
        self._pace_changed()
        self.box = w.VBox(
            [
                w.HTML("<h3>4. Preview</h3>"),
                w.HBox([self.max_per_minute, self.workers, self.button]),
                self.pace_note,
                self.retry_without_missing,
                self.summary,
                self.payloads,
            ]
        )

    def options(self) -> SendOptions:
        """The pace and retry options as chosen (raises ConfigError when out of range)."""
        return SendOptions(
            max_per_minute=float(self.max_per_minute.value),
            workers=int(self.workers.value),
            retry_without_missing=bool(self.retry_without_missing.value),
        )

    def clear(self) -> None:
        """Forget the shown preview."""
        self.summary.value = ""
        self.payloads.value = ""

    def show(self, plan: Plan, host: str, source: str, samples: int = 3) -> None:
        """Show the run's size, its ETA at the chosen pace, and a few payloads."""
        options = self.options()
        eta = _render.duration(options.eta_seconds(plan.request_count))
        self.summary.value = (
            '<div class="spectrum-preview">'
            f"{html.escape(source)}: <b>{len(plan.orders) + len(plan.set_aside):,}</b> orders; "
            f"<b>{plan.request_count:,}</b> requests (one per order) to "
            f"<b>{html.escape(host)}</b> at {options.max_per_minute:g}/min with "
            f"{options.workers} workers: about <b>{eta}</b>.</div>"
        )
        preview = plan.preview(limit=samples)
        pretty = [json.dumps(json.loads(p), indent=2) for p in preview[PAYLOAD]]
        blocks = [f"<pre class='spectrum-payload'>{html.escape(p)}</pre>" for p in pretty]
        more = plan.request_count - len(blocks)
        tail = f"<i>… and {more:,} more requests</i>" if more > 0 else ""
        self.payloads.value = (
            "<b>Sample payloads</b>" + "".join(blocks) + tail if blocks else "Nothing to send."
        )

    def _pace_changed(self, _change: object = None) -> None:
        if self.max_per_minute.value > _SAFE_PACE:
            self.pace_note.value = _render.error_line(
                f"above {_SAFE_PACE}/min, Spectrum may throttle (HTTP 403): the run then slows "
                "down by itself"
            )
        else:
            self.pace_note.value = ""
