"""Step 4 of the app: the preview of what a send will do, as a table, with counts.

The preview's data has the shape of the read-back preview (issue 12,
``spectrum_tools.runs.preview_send(plan, client, options) -> Preview``, being written):
``plan``, ``lines``, ``orders``, ``counts``, ``eta_s`` and ``notes``. Until it lands,
:func:`build_send_preview` builds it from the plan alone (current status unknown): swap its
body for ``return preview_send(plan, client, options)`` and the panel shows read-back.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Final

import ipywidgets as w
import pandas as pd

from spectrum_tools.client import SpectrumClient
from spectrum_tools.engine import SendOptions
from spectrum_tools.planning import Plan
from spectrum_tools.schema import DETAILS, LINE_ID, OUTCOME, PAYLOAD, PO, STATUS, VALID, Outcome
from spectrum_tools.widgets import _render
from spectrum_tools.widgets.grid import DataGrid

__all__ = [
    "LINE_COLUMNS",
    "ORDER_DECISIONS",
    "PreviewPanel",
    "SendPreview",
    "build_send_preview",
]

# The columns of ``Preview.lines`` (per line item) in the read-back preview.
LINE_COLUMNS: Final = (
    PO,
    LINE_ID,
    "current_status",
    "wanted_status",
    "change",
    "leaves_final",
    "read_note",
    "decision",
)
SEND: Final = "send"
# Per order: what the send will do with it, in analysts' words.
ORDER_DECISIONS: Final = {
    SEND: "will be sent",
    "unchanged": "already set: not sent",
    "not_found": "refused: Spectrum does not know a line item",
    Outcome.INVALID.value: "held back: a row needs fixing",
    Outcome.SKIPPED.value: "skipped: an earlier run already set it",
}
_SAMPLES: Final = 3


@dataclass(frozen=True)
class SendPreview:
    """What a send of ``plan`` will do (the shape of the read-back ``Preview``).

    Attributes
    ----------
    plan
        The exact plan Send will send.
    lines
        One row per line item: :data:`LINE_COLUMNS`.
    orders
        One row per order: ``purchaseOrderNumber``, ``decision`` (send, unchanged,
        not_found, invalid, skipped), ``details``.
    counts
        Orders by decision.
    eta_s
        Seconds the requests of ``plan`` take at the chosen pace.
    notes
        Plain sentences to show above the table.
    """

    plan: Plan
    lines: pd.DataFrame
    orders: pd.DataFrame
    counts: dict[str, int]
    eta_s: float
    notes: tuple[str, ...]


def build_send_preview(
    plan: Plan, client: SpectrumClient | None, options: SendOptions
) -> SendPreview:
    """The preview of sending ``plan``: THE one place to swap in the read-back preview.

    Today there is no read-back: the current status is left empty and every change is
    ``unknown``. When ``spectrum_tools.runs.preview_send`` lands, the body becomes
    ``return preview_send(plan, client, options)`` (``client`` None: no token yet, keep
    this body for that case).

    Examples
    --------
    >>> from spectrum_tools.planning import plan_updates
    >>> from spectrum_tools.validation import validate_updates
    >>> rows = pd.DataFrame({"purchaseOrderNumber": ["P1", "P2"],
    ...     "recipeSetReadableId": ["AAAA1111", "BBBB2222"],
    ...     "workflowStatus": ["completed", "shipped"]})
    >>> p = build_send_preview(plan_updates(validate_updates(rows)), None, SendOptions())
    >>> p.counts, p.lines["decision"].tolist()
    ({'send': 1, 'invalid': 1}, ['send', 'invalid'])
    """
    sent = [(r.purchase_order, li) for r in plan.requests() for li in r.line_items]
    lines = pd.DataFrame(
        {
            PO: [po for po, _li in sent],
            LINE_ID: [li["recipeSetReadableId"] for _po, li in sent],
            "wanted_status": [li["workflowStatus"] for _po, li in sent],
            "decision": SEND,
        }
    )
    aside = plan.set_aside[[PO, OUTCOME, DETAILS]]
    held = plan.rows.loc[plan.rows[PO].isin(aside[PO]), [PO, LINE_ID, STATUS, VALID]]
    held = held.rename(columns={STATUS: "wanted_status"})
    held["decision"] = held[PO].map(aside.set_index(PO)[OUTCOME]).astype(object)
    held.loc[~held[VALID].astype(bool), "decision"] = Outcome.INVALID.value
    lines = pd.concat([lines, held.drop(columns=[VALID])], ignore_index=True)
    lines["current_status"] = ""
    lines["change"] = "unknown"
    lines["leaves_final"] = False
    lines["read_note"] = "current status not read"
    orders = pd.concat(
        [
            pd.DataFrame({PO: plan.orders[PO], "decision": SEND, DETAILS: ""}),
            aside.rename(columns={OUTCOME: "decision"}),
        ],
        ignore_index=True,
    )
    counts = {str(k): int(v) for k, v in orders["decision"].value_counts(sort=False).items()}
    notes = ("Current statuses are not read from Spectrum yet: the table shows the new ones.",)
    return SendPreview(
        plan=plan,
        lines=lines[list(LINE_COLUMNS)],
        orders=orders,
        counts=counts,
        eta_s=options.eta_seconds(plan.request_count),
        notes=notes,
    )


def preview_table(preview: SendPreview) -> pd.DataFrame:
    """The per-line table in analysts' words, what will be sent first."""
    lines = preview.lines
    rank = {name: i for i, name in enumerate(ORDER_DECISIONS)}
    lines = lines.iloc[lines["decision"].map(rank).fillna(len(rank)).argsort(kind="stable")]
    current = lines["current_status"].where(lines["current_status"] != "", "(not read)")
    return pd.DataFrame(
        {
            "PO number": lines[PO],
            "Line item": lines[LINE_ID],
            "Current status": current,
            "New status": lines["wanted_status"],
            "What happens": lines["decision"].map(ORDER_DECISIONS).fillna(lines["decision"]),
            "Note": _notes(lines),
        }
    ).reset_index(drop=True)


def _notes(lines: pd.DataFrame) -> pd.Series:
    """The read note, led by a warning when a line item leaves a final status."""
    final = lines["leaves_final"].astype(bool)
    warning = final.map({True: "moves out of a final status; ", False: ""})
    return (warning + lines["read_note"].astype(str)).str.rstrip("; ")


class PreviewPanel:
    """Pace controls, the Preview button, the counts, the table, and the JSON behind a toggle."""

    def __init__(self, *, max_per_minute: int, workers: int) -> None:
        self.max_per_minute = w.BoundedIntText(
            value=max_per_minute,
            min=1,
            max=6000,
            description="Requests a minute",
            style={"description_width": "130px"},
            layout=w.Layout(width="240px"),
        )
        self.workers = w.BoundedIntText(
            value=workers,
            min=1,
            max=32,
            description="At once",
            style={"description_width": "70px"},
            layout=w.Layout(width="150px"),
        )
        self.retry_without_missing = w.Checkbox(
            value=False,
            description="when Spectrum does not know a line item, send the rest of its order",
            indent=False,
            layout=w.Layout(width="auto"),
        )
        self.pace_note = w.HTML()
        self.button = w.Button(description="Preview", button_style="info", icon="eye")
        self.note = w.HTML()
        self.note.add_class("spectrum-note")
        self.summary = w.HTML()
        self.grid = DataGrid("spectrum-preview-grid")
        self.payloads = w.HTML()
        self.json_toggle = w.Accordion(children=[self.payloads], titles=("The exact JSON",))
        self.json_toggle.selected_index = None
        self.json_toggle.layout.display = "none"
        self.max_per_minute.observe(self._pace_changed, names="value")
        self._pace_changed()
        self.box = w.VBox(
            [
                w.HTML("<h3>4. Preview</h3>"),
                w.HBox([self.max_per_minute, self.workers]),
                self.pace_note,
                self.retry_without_missing,
                w.HBox([self.button, self.note]),
                self.summary,
                self.grid.box,
                self.json_toggle,
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
        self.grid.clear()
        self.json_toggle.layout.display = "none"
        self.json_toggle.selected_index = None

    def show(self, preview: SendPreview, host: str, source: str) -> None:
        """Show the counts, the per-line table and the JSON sample of ``preview``."""
        options = self.options()
        plan = preview.plan
        orders = preview.orders["decision"].value_counts()
        parts = [
            f"{ORDER_DECISIONS.get(str(k), str(k))} <b>{int(v):,}</b>" for k, v in orders.items()
        ]
        eta = _render.duration(preview.eta_s)
        notes = "".join(f"<div><i>{html.escape(n)}</i></div>" for n in preview.notes)
        self.summary.value = (
            '<div class="spectrum-preview">'
            f"{html.escape(source)}: <b>{len(preview.orders):,}</b> orders "
            f"({len(preview.lines):,} line items): {'; '.join(parts)}.<br>"
            f"<b>{plan.request_count:,}</b> requests (one per order) to "
            f"<b>{html.escape(host)}</b> at {options.max_per_minute:g} a minute, "
            f"{options.workers} at once: about <b>{eta}</b>.{notes}</div>"
        )
        self.grid.show(preview_table(preview), "Line items: current and new status")
        sample = plan.preview(limit=_SAMPLES)
        pretty = [json.dumps(json.loads(p), indent=2) for p in sample[PAYLOAD]]
        blocks = [f"<pre class='spectrum-payload'>{html.escape(p)}</pre>" for p in pretty]
        more = plan.request_count - len(blocks)
        tail = f"<i>… and {more:,} more requests</i>" if more > 0 else ""
        self.payloads.value = "".join(blocks) + tail if blocks else "Nothing to send."
        self.json_toggle.set_title(
            0, f"The exact JSON sent ({len(blocks)} of {plan.request_count:,} requests)"
        )
        self.json_toggle.layout.display = None

    def _pace_changed(self, _change: object = None) -> None:
        if self.max_per_minute.value > _SAFE_PACE:
            self.pace_note.value = _render.error_line(
                f"above {_SAFE_PACE} a minute Spectrum may turn requests away for a while; "
                "the run then slows down by itself"
            )
        else:
            self.pace_note.value = ""


_SAFE_PACE: Final = 100  # Spectrum: under 100 requests per 60 s never triggers the limit
