"""Charts in the workbooks the toolkit writes (run reports, reconciliations).

I/O: none of its own; it adds a chart to an openpyxl workbook that the caller saves
(:func:`~spectrum_tools.sheets.write_workbook`'s ``decorate`` hook).
"""

from __future__ import annotations

from typing import Any

from openpyxl.chart import BarChart, Reference

__all__ = ["add_bar_chart"]


def add_bar_chart(
    book: Any,
    sheet: str,
    rows: tuple[int, int],
    *,
    title: str,
    y_title: str,
    anchor: str = "E2",
) -> None:
    """Add a bar chart of a Summary-style table (labels in column B, counts in column C).

    Parameters
    ----------
    book
        An openpyxl workbook (write-only is fine: charts are written when it is saved).
    sheet
        The sheet holding the counts.
    rows
        First and last worksheet row (1-based) of the counts.
    title, y_title
        Chart and value-axis titles.
    anchor
        Top-left cell of the chart.
    """
    ws = next(w for w in book.worksheets if w.title == sheet)
    first, last = rows
    chart = BarChart()
    chart.type = "col"
    chart.title = title
    chart.y_axis.title = y_title
    chart.legend = None
    chart.add_data(Reference(ws, min_col=3, min_row=first, max_row=last), titles_from_data=False)
    chart.set_categories(Reference(ws, min_col=2, min_row=first, max_row=last))
    chart.width, chart.height = 16, 8
    ws.add_chart(chart, anchor)
