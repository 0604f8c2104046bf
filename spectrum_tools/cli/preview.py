"""Printing a read-back preview: current -> wanted, what will be sent, and what it costs.

I/O: stdout.
"""

from __future__ import annotations

from spectrum_tools.cli.common import out
from spectrum_tools.engine import format_duration
from spectrum_tools.readback.preview import Preview

__all__ = ["print_preview"]

_TRANSITIONS_SHOWN = 12


def print_preview(preview: Preview, host: str) -> None:
    """Print what sending ``preview.plan`` would change, in an analyst's words."""
    c = preview.counts
    if preview.read_back:
        out(
            f"Read the current state from {host}: {preview.searches} search(es) and "
            f"{preview.gets} order read(s)."
        )
        for note in preview.notes:
            out(f"Note: {note}")
        out(
            f"Line items: {c['lines_change']:,} to change, {c['lines_already_set']:,} already "
            f"set, {c['lines_not_in_spectrum']:,} not in Spectrum, "
            f"{c['lines_unknown']:,} current status unknown."
        )
        if c["lines_leaving_final"]:
            out(
                f"WARNING: {c['lines_leaving_final']:,} line item(s) would move out of "
                "delivered or cancelled."
            )
        moves = preview.transitions()
        if len(moves):
            out("From -> to:")
            width = max(len(s) for s in moves["current_status"].head(_TRANSITIONS_SHOWN))
            for row in moves.head(_TRANSITIONS_SHOWN).itertuples(index=False):
                flag = "  (leaves a final status)" if row.leaves_final else ""
                out(f"  {row.current_status:<{width}} -> {row.wanted_status}: {row.count:,}{flag}")
            if len(moves) > _TRANSITIONS_SHOWN:
                out(f"  ... and {len(moves) - _TRANSITIONS_SHOWN} more kinds of change")
    else:
        out("Current state not read (read-back off): every planned order is sent whole.")
    out(
        f"Orders: {c['orders_send']:,} to send, {c['orders_unchanged']:,} unchanged, "
        f"{c['orders_not_found']:,} refused (not in Spectrum), {c['orders_invalid']:,} held "
        f"back (invalid rows), {c['orders_skipped']:,} skipped (already applied)."
    )
    pace = preview.options.max_per_minute
    out(
        f"Requests: {preview.requests:,}, about {format_duration(preview.eta_s)} at "
        f"{pace:g} per minute."
    )
