"""HTML for the widget panels: tables, one-line messages, badges, download links. Pure.

Everything shown goes through :func:`html.escape` (or pandas' escaping ``to_html``): cell
text from a spreadsheet is never markup.
"""

from __future__ import annotations

import base64
import html
import mimetypes
from pathlib import Path
from typing import Final

import pandas as pd

from spectrum_tools.engine import format_duration as duration
from spectrum_tools.errors import SpectrumError
from spectrum_tools.schema import OUTCOME, Outcome

__all__ = [
    "APP_STYLE",
    "badge",
    "counts_text",
    "download_link",
    "duration",
    "error_line",
    "info_line",
    "one_line",
    "outcome_chart",
    "success_line",
    "table",
]

# Past this size a file is not embedded in the page (it would bloat the notebook and the
# browser); its path on disk is shown instead.
MAX_EMBED_BYTES: Final = 15 * 1024 * 1024

_COLOURS: Final = {
    "production": ("#ffffff", "#b00020"),
    "custom": ("#ffffff", "#b00020"),
    "staging": ("#0b3d91", "#dbe8ff"),
    "sandbox": ("#0f5132", "#d1e7dd"),
}


# The app's own look: a disabled button looks disabled (grey, no pointer), messages sit next
# to the button that caused them, tables and charts share one font size.
APP_STYLE: Final = (
    "<style>"
    ".spectrum-app .jupyter-button:disabled,.spectrum-app .jupyter-button.mod-disabled"
    "{opacity:.35;filter:grayscale(1);cursor:not-allowed;box-shadow:none}"
    ".spectrum-app .spectrum-note{margin:0 0 0 10px;align-self:center}"
    ".spectrum-app .spectrum-chart{font-size:12px;margin:6px 0}"
    ".spectrum-app .spectrum-chart .bar{display:inline-block;height:14px;vertical-align:middle}"
    ".spectrum-app .spectrum-fix-grid input{font-family:monospace}"
    ".spectrum-app td.spectrum-wide{min-width:32em;white-space:normal}"
    "</style>"
)

# Colours of the outcomes in the chart: red for what did not go through, green for done.
_OUTCOME_COLOURS: Final = {
    Outcome.UPDATED.value: "#2e7d32",
    Outcome.PARTIAL.value: "#9e9d24",
    Outcome.SKIPPED.value: "#607d8b",
    "unchanged": "#607d8b",
    Outcome.NOT_FOUND.value: "#c62828",
    Outcome.FAILED.value: "#b71c1c",
    Outcome.INVALID.value: "#6a1b9a",
    Outcome.PENDING.value: "#ef6c00",
    Outcome.DRY_RUN.value: "#1565c0",
}


def one_line(exc: BaseException) -> str:
    """An exception as one line: the toolkit's own message, or the type for a bug."""
    text = " ".join(str(exc).split())
    if isinstance(exc, SpectrumError):
        return text or type(exc).__name__
    return f"unexpected {type(exc).__name__}: {text}"[:400]


def error_line(message: str) -> str:
    """A one-line error in red."""
    return (
        '<div class="spectrum-error" style="color:#b00020;font-weight:600">'
        f"&#9888; {html.escape(message)}</div>"
    )


def info_line(message: str) -> str:
    """A one-line neutral message."""
    return f'<div class="spectrum-info">{html.escape(message)}</div>'


def success_line(message: str) -> str:
    """A one-line message saying something worked, in green."""
    return (
        '<div class="spectrum-info spectrum-success" style="color:#0f5132;font-weight:600">'
        f"&#10004; {html.escape(message)}</div>"
    )


def badge(kind: str, text: str) -> str:
    """A coloured banner; ``kind`` is production, custom, staging or sandbox."""
    fg, bg = _COLOURS.get(kind, _COLOURS["staging"])
    weight = "800" if kind in ("production", "custom") else "600"
    return (
        f'<div class="spectrum-badge spectrum-badge-{html.escape(kind)}" '
        f'style="color:{fg};background:{bg};padding:6px 10px;border-radius:4px;'
        f'font-weight:{weight};letter-spacing:0.02em">{html.escape(text)}</div>'
    )


def table(df: pd.DataFrame, *, css_class: str, max_rows: int = 200, caption: str = "") -> str:
    """A DataFrame as an escaped HTML table, cut at ``max_rows`` with a note saying so."""
    shown = df.head(max_rows)
    shown = shown.astype(object).where(shown.notna(), "")  # no <NA> / NaN in cells
    note = ""
    if len(df) > max_rows:
        note = f"showing the first {max_rows:,} of {len(df):,} rows"
    body = shown.to_html(
        index=False, escape=True, na_rep="", classes=["spectrum-table", css_class], border=0
    )
    head = f"<b>{html.escape(caption)}</b> " if caption else ""
    tail = f"<div><i>{html.escape(note)}</i></div>" if note else ""
    style = (
        "<style>.spectrum-table{border-collapse:collapse;font-size:12px;line-height:1.35}"
        ".spectrum-table th,.spectrum-table td{border:1px solid #ccc;padding:2px 6px;"
        "text-align:left;vertical-align:top;max-width:420px}</style>"
    )
    return f'{style}<div style="max-height:420px;overflow:auto">{head}{body}</div>{tail}'


def download_link(path: Path, label: str) -> str:
    """A link that downloads ``path`` from the page itself (works in JupyterLab and Voila).

    The file is embedded as a data URI up to :data:`MAX_EMBED_BYTES`; a bigger one is only
    named, with its location on disk.
    """
    where = html.escape(str(path))
    size = path.stat().st_size
    if size > MAX_EMBED_BYTES:
        return (
            f"<div>{html.escape(label)}: too big to download here; "
            f"it is at <code>{where}</code></div>"
        )
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<div><a class="spectrum-download" download="{html.escape(path.name)}" '
        f'href="data:{kind};base64,{data}">&#11015; {html.escape(label)} '
        f"({html.escape(path.name)}, {size / 1024:,.0f} KB)</a> <small>saved at "
        f"<code>{where}</code></small></div>"
    )


def counts_text(results: pd.DataFrame) -> str:
    """Orders by outcome in one line, in the outcome vocabulary's order."""
    counts = results[OUTCOME].value_counts()
    parts = [f"{o.value} {int(counts[o.value]):,}" for o in Outcome if o.value in counts]
    return ", ".join(parts) or "no orders"


def outcome_chart(counts: dict[str, int], *, title: str = "Orders by outcome") -> str:
    """Horizontal bars, one per outcome, with its count: plain HTML (no plotting library).

    Examples
    --------
    >>> "updated" in outcome_chart({"updated": 3, "failed": 1})
    True
    """
    shown = [(k, v) for k, v in counts.items() if v]
    if not shown:
        return ""
    top = max(v for _k, v in shown)
    rows = []
    for name, value in shown:
        width = max(2, round(300 * value / top))
        colour = _OUTCOME_COLOURS.get(name, "#1565c0")
        rows.append(
            f'<tr class="spectrum-chart-{html.escape(name)}"><td>{html.escape(name)}</td>'
            f'<td><span class="bar" style="width:{width}px;background:{colour}"></span> '
            f"<b>{value:,}</b></td></tr>"
        )
    return (
        f'<div class="spectrum-chart"><b>{html.escape(title)}</b>'
        f"<table>{''.join(rows)}</table></div>"
    )
