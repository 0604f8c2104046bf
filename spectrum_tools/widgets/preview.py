"""Step 4 of the app: what a send will change, read from Spectrum, as a table with counts.

The preview is the library's read-back :class:`~spectrum_tools.readback.preview.Preview`
(:func:`spectrum_tools.runs.preview_send`): per line item current -> new, per order what
will be sent, what is already set (``unchanged``), refused (Spectrum does not know a line
item), held back (invalid rows) or skipped (an earlier run set it), the from -> to
transitions, the request count and ETA of what will really be sent, and notes in plain
words. Send sends exactly that preview (:func:`spectrum_tools.runs.send_plan`).

Without a token (a real environment before it is typed) nothing can be read: the preview
is built from the plan alone (every current status unknown) and says so; Send then needs
another preview once the token is there.
"""

from __future__ import annotations

import html
import json
from typing import Final

import ipywidgets as w
import pandas as pd

from spectrum_tools.client import SpectrumClient
from spectrum_tools.engine import SendOptions
from spectrum_tools.planning import Plan
from spectrum_tools.readback import Change, Decision, Seen, current_frame, line_changes
from spectrum_tools.readback.preview import LINE_COLUMNS, ORDER_COLUMNS, SEND_COUNT, Preview
from spectrum_tools.runs import Recording, preview_send
from spectrum_tools.schema import (
    DETAILS,
    LINE_COUNT,
    LINE_ID,
    MISSING_IDS,
    OUTCOME,
    PAYLOAD,
    PO,
    SOURCE_ROWS,
    STATUS,
    VALID,
    Outcome,
)
from spectrum_tools.widgets import _render
from spectrum_tools.widgets.grid import DataGrid

__all__ = [
    "LINE_COLUMNS",
    "ORDER_DECISIONS",
    "UNREAD_NOTE",
    "PreviewPanel",
    "build_send_preview",
    "lines_to_send",
    "preview_table",
    "send_question",
]

# Per order: what the send will do with it, in analysts' words (in this order on screen).
ORDER_DECISIONS: Final = {
    Decision.SEND.value: "will be sent",
    Decision.UNCHANGED.value: "already set: not sent",
    Decision.NOT_FOUND.value: "refused: Spectrum does not know a line item",
    Outcome.INVALID.value: "held back: a row needs fixing",
    Outcome.SKIPPED.value: "skipped: an earlier run already set it",
}
UNREAD_NOTE: Final = (
    "No API token yet, so Spectrum was not asked what it holds: current statuses are "
    "unknown and every order would be sent whole. Type the token, then Preview again."
)
_SAMPLES: Final = 3
_TRANSITIONS_SHOWN: Final = 12
_SENT_CHANGES: Final = (Change.CHANGE.value, Change.UNKNOWN.value)


def build_send_preview(
    plan: Plan,
    client: SpectrumClient | None,
    options: SendOptions,
    *,
    recording: Recording | None = None,
) -> Preview:
    """The preview of sending ``plan``: read back from Spectrum when there is a client.

    Parameters
    ----------
    plan
        The validated plan.
    client
        The environment with its token; None (no token yet): the plan alone, unread.
    options
        The pace the ETA assumes, and ``retry_without_missing``.
    recording
        Where earlier runs are recorded (orders they applied are ``skipped``); None
        skips nothing.

    Returns
    -------
    Preview
        Hand it to :func:`spectrum_tools.runs.send_plan` to send exactly what it shows.

    Examples
    --------
    >>> from spectrum_tools.planning import plan_updates
    >>> from spectrum_tools.validation import validate_updates
    >>> rows = pd.DataFrame({"purchaseOrderNumber": ["P1", "P2"],
    ...     "recipeSetReadableId": ["AAAA1111", "BBBB2222"],
    ...     "workflowStatus": ["completed", "shipped"]})
    >>> p = build_send_preview(plan_updates(validate_updates(rows)), None, SendOptions())
    >>> p.read_back, p.orders["decision"].tolist(), p.lines["change"].tolist()
    (False, ['send', 'invalid'], ['unknown'])
    """
    if client is not None:
        return preview_send(plan, client, options, recording=recording)
    return _unread(plan, options)


def _unread(plan: Plan, options: SendOptions) -> Preview:
    """The plan as it is: every line item sent, its current status unknown (no token)."""
    wanted = plan.line_items()
    current = current_frame(wanted, {})
    current["seen"] = Seen.UNREAD.value
    current["read_note"] = "not read: needs a token"
    lines = line_changes(wanted, current)
    lines["decision"] = Decision.SEND.value
    lines[SOURCE_ROWS] = wanted[SOURCE_ROWS].to_numpy(object)
    orders = plan.orders
    sent = pd.DataFrame(
        {
            PO: orders[PO],
            "decision": Decision.SEND.value,
            LINE_COUNT: orders[LINE_COUNT],
            SEND_COUNT: orders[LINE_COUNT],
            MISSING_IDS: "",
            DETAILS: "",
            SOURCE_ROWS: orders[SOURCE_ROWS],
        }
    )
    aside = plan.set_aside
    held = pd.DataFrame(
        {
            PO: aside[PO],
            "decision": aside[OUTCOME],
            LINE_COUNT: aside[LINE_COUNT],
            SEND_COUNT: 0,
            MISSING_IDS: "",
            DETAILS: aside[DETAILS],
            SOURCE_ROWS: aside[SOURCE_ROWS],
        }
    )
    frames = [f for f in (sent, held) if len(f)]
    both = pd.concat(frames, ignore_index=True) if frames else sent
    return Preview(
        plan=plan,
        lines=lines[list(LINE_COLUMNS)].reset_index(drop=True),
        orders=both[list(ORDER_COLUMNS)].reset_index(drop=True),
        options=options,
        read_back=False,
        notes=(UNREAD_NOTE,),
    )


def lines_to_send(preview: Preview) -> int:
    """Line items the send really changes (their order is sent, their status differs)."""
    lines = preview.lines
    sent = (lines["decision"] == Decision.SEND.value) & lines["change"].isin(_SENT_CHANGES)
    return int(sent.sum())


def leaving_final(preview: Preview) -> int:
    """Line items the send moves out of ``delivered`` or ``cancelled``."""
    lines = preview.lines
    sent = lines["decision"] == Decision.SEND.value
    return int((lines["leaves_final"].astype(bool) & sent).sum())


def send_question(preview: Preview, host: str, environment: str) -> str:
    """The confirmation: what will really be sent, where, how long, and what is not sent.

    A line item leaving ``delivered`` or ``cancelled`` is flagged in red.
    """
    orders = preview.orders["decision"].value_counts()
    others = [
        f"{int(orders.get(d, 0)):,} {label.split(':')[0]}"
        for d, label in ORDER_DECISIONS.items()
        if d != Decision.SEND.value and orders.get(d, 0)
    ]
    final = leaving_final(preview)
    return (
        f"Send <b>{preview.requests:,}</b> requests (one per order, "
        f"{lines_to_send(preview):,} line items that change) to <b>{html.escape(host)}</b> "
        f"({html.escape(environment)}), at {preview.options.max_per_minute:g} a minute: about "
        f"<b>{_render.duration(preview.eta_s)}</b>?"
        + (f" Not sent: {'; '.join(others)} (see the preview)." if others else "")
        + (
            '<div class="spectrum-final-warning" style="color:#b00020;font-weight:700">'
            f"&#9888; {final:,} line item(s) move out of delivered or cancelled.</div>"
            if final
            else ""
        )
        + (f"<div><i>{html.escape(UNREAD_NOTE)}</i></div>" if not preview.read_back else "")
    )


def preview_table(preview: Preview, plan: Plan | None = None) -> pd.DataFrame:
    """One row per line item in analysts' words: current -> new and what happens to it.

    ``plan`` (the plan before the read) adds the rows of orders it held back or skipped,
    whose line items the read did not ask about. Line items that will be sent come first.
    """
    lines = preview.lines
    shown = pd.DataFrame(
        {
            PO: lines[PO],
            LINE_ID: lines[LINE_ID],
            "current": lines["current_status"].astype(str),
            "wanted": lines["wanted_status"].astype(str),
            "what": [
                _what(str(d), str(c))
                for d, c in zip(lines["decision"], lines["change"], strict=True)
            ],
            "note": _notes(lines),
        }
    )
    held = _held_rows(preview, plan)
    if len(held):
        shown = pd.concat([shown, held], ignore_index=True)
    rank = {text: i for i, text in enumerate(_WHAT_ORDER)}
    shown = shown.iloc[shown["what"].map(rank).fillna(len(rank)).argsort(kind="stable")]
    current = shown["current"].where(shown["current"] != "", "?")
    arrow = current + " → " + shown["wanted"]
    same = shown["what"] == _ALREADY
    arrow = arrow.where(~same, "already " + shown["wanted"])
    return pd.DataFrame(
        {
            "PO number": shown[PO],
            "Line item": shown[LINE_ID],
            "Current → new": arrow,
            "Current status": shown["current"].where(shown["current"] != "", "(unknown)"),
            "New status": shown["wanted"],
            "What happens": shown["what"],
            "Note": shown["note"],
        }
    ).reset_index(drop=True)


_SENT: Final = "will be sent"
_SENT_UNKNOWN: Final = "will be sent (current status unknown)"
_ALREADY: Final = "already set: not sent"
_LEFT_OUT: Final = "left out: Spectrum does not have it (the rest of its order goes)"
_REFUSED_LINE: Final = "refused: Spectrum does not have this line item"
_REFUSED_ORDER: Final = "refused with its order (Spectrum does not know another line item)"
_WHAT_ORDER: Final = (
    _SENT,
    _SENT_UNKNOWN,
    _LEFT_OUT,
    _ALREADY,
    _REFUSED_LINE,
    _REFUSED_ORDER,
    ORDER_DECISIONS[Outcome.INVALID.value],
    ORDER_DECISIONS[Outcome.SKIPPED.value],
)


def _what(decision: str, change: str) -> str:
    """What happens to one line item, from its order's decision and its own change."""
    if decision == Decision.SEND.value:
        return {
            Change.CHANGE.value: _SENT,
            Change.UNKNOWN.value: _SENT_UNKNOWN,
            Change.ALREADY_SET.value: _ALREADY,
            Change.NOT_IN_SPECTRUM.value: _LEFT_OUT,
        }.get(change, _SENT)
    if decision == Decision.NOT_FOUND.value:
        return _REFUSED_LINE if change == Change.NOT_IN_SPECTRUM.value else _REFUSED_ORDER
    if decision == Decision.UNCHANGED.value:
        return _ALREADY
    return ORDER_DECISIONS.get(decision, decision)


def _notes(lines: pd.DataFrame) -> pd.Series:
    """The read note, led by a warning when a line item leaves a final status."""
    final = lines["leaves_final"].astype(bool)
    warning = final.map({True: "⚠ moves out of a final status; ", False: ""})
    return (warning + lines["read_note"].fillna("").astype(str)).str.rstrip("; ")


def _held_rows(preview: Preview, plan: Plan | None) -> pd.DataFrame:
    """Rows of the orders the plan set aside before the read (held back, skipped)."""
    columns = [PO, LINE_ID, "current", "wanted", "what", "note"]
    if plan is None:
        return pd.DataFrame(columns=columns)
    asked = set(preview.lines[PO])
    aside = preview.orders[~preview.orders[PO].isin(asked)].set_index(PO)["decision"]
    rows = plan.rows.loc[plan.rows[PO].isin(aside.index)]
    what = rows[PO].map(aside).map(ORDER_DECISIONS).astype(object)
    what = what.where(rows[VALID].astype(bool), ORDER_DECISIONS[Outcome.INVALID.value])
    return pd.DataFrame(
        {
            PO: rows[PO].astype(str),
            LINE_ID: rows[LINE_ID].astype(str),
            "current": "",
            "wanted": rows[STATUS].astype(str),
            "what": what.fillna("").astype(str),
            "note": "",
        },
        columns=columns,
    )


def summary_html(preview: Preview, host: str, source: str) -> str:
    """Counts, notes, the final-status warning, requests and ETA, and the from -> to table."""
    c = preview.counts
    options = preview.options
    orders = preview.orders["decision"].value_counts()
    parts = [
        f'<span class="spectrum-decision-{html.escape(d)}">{html.escape(label)} '
        f"<b>{int(orders.get(d, 0)):,}</b></span>"
        for d, label in ORDER_DECISIONS.items()
        if orders.get(d, 0)
    ]
    if preview.read_back:
        read = (
            f"Read what <b>{html.escape(host)}</b> holds now: {preview.searches:,} "
            f"search(es) and {preview.gets:,} order read(s). Line items: "
            f"<b>{c['lines_change']:,}</b> to change, <b>{c['lines_already_set']:,}</b> "
            f"already set, <b>{c['lines_not_in_spectrum']:,}</b> not in Spectrum"
            + (
                f", <b>{c['lines_unknown']:,}</b> current status unknown"
                if c["lines_unknown"]
                else ""
            )
            + "."
        )
    else:
        read = f"Current statuses not read from <b>{html.escape(host)}</b>."
    notes = "".join(
        f'<div class="spectrum-preview-note"><i>{html.escape(n)}</i></div>' for n in preview.notes
    )
    final = leaving_final(preview)
    warning = (
        '<div class="spectrum-final-warning" style="color:#b00020;font-weight:700">'
        f"&#9888; {final:,} line item(s) move out of delivered or cancelled: check they "
        "should.</div>"
        if final
        else ""
    )
    moves = _transitions_html(preview)
    return (
        '<div class="spectrum-preview">'
        f"{html.escape(source)}: <b>{len(preview.orders):,}</b> orders: {'; '.join(parts)}."
        f"<br>{read}{notes}{warning}"
        f"<div><b>{preview.requests:,}</b> requests (one per order sent, "
        f"{lines_to_send(preview):,} line items) to <b>{html.escape(host)}</b> at "
        f"{options.max_per_minute:g} a minute, {options.workers} at once: about "
        f"<b>{_render.duration(preview.eta_s)}</b>.</div>{moves}</div>"
    )


def _transitions_html(preview: Preview) -> str:
    """The from -> to table: how many line items go from each status to each new one."""
    moves = preview.transitions()
    moves = moves[moves["count"] > 0]
    if moves.empty:
        return ""
    shown = moves.head(_TRANSITIONS_SHOWN)
    rows = "".join(
        f'<tr class="{"spectrum-leaves-final" if final else ""}">'
        f"<td>{html.escape(str(now))}</td><td>→</td>"
        f"<td>{html.escape(str(new))}</td><td><b>{int(count):,}</b></td>"
        f"<td>{'⚠ leaves a final status' if final else ''}</td></tr>"
        for now, new, count, final in zip(
            shown["current_status"],
            shown["wanted_status"],
            shown["count"],
            shown["leaves_final"].astype(bool),
            strict=True,
        )
    )
    more = len(moves) - len(shown)
    tail = f"<div><i>… and {more:,} more kinds of change</i></div>" if more > 0 else ""
    return (
        '<div class="spectrum-transitions" style="margin-top:6px"><b>From → to</b>'
        '<table style="font-size:12px;border-collapse:collapse">'
        "<tr><th style='text-align:left'>Now</th><th></th><th style='text-align:left'>New"
        "</th><th>Line items</th><th></th></tr>"
        f"{rows}</table>{tail}</div>"
    )


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

    def show(self, preview: Preview, host: str, source: str, plan: Plan | None = None) -> None:
        """Show the counts, the per-line table and the JSON sample of ``preview``.

        ``plan`` is the plan before the read (its held-back rows are listed too).
        """
        self.summary.value = summary_html(preview, host, source)
        self.grid.show(
            preview_table(preview, plan),
            "Line items: current → new status (click a header to sort, type to filter)",
            wide=["What happens"],
        )
        sent = preview.plan
        sample = sent.preview(limit=_SAMPLES)
        pretty = [json.dumps(json.loads(p), indent=2) for p in sample[PAYLOAD]]
        blocks = [f"<pre class='spectrum-payload'>{html.escape(p)}</pre>" for p in pretty]
        more = sent.request_count - len(blocks)
        tail = f"<i>… and {more:,} more requests</i>" if more > 0 else ""
        self.payloads.value = "".join(blocks) + tail if blocks else "Nothing to send."
        self.json_toggle.set_title(
            0, f"The exact JSON sent ({len(blocks)} of {sent.request_count:,} requests)"
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
