"""Interactive tables for the app: sortable, filterable, scrollable. Widgets only.

Built on itables' :class:`~itables.widget.ITable` (DataTables in an anywidget), chosen over
ipydatagrid because it is actively maintained, renders real HTML tables (readable by screen
readers and testable in a browser), and works the same in JupyterLab 4 and Voila. Every
column gets a filter box in its header; the search box filters all columns; clicking a
header sorts. Cells are text (``allow_html`` off): spreadsheet text is never markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import ipywidgets as w
import pandas as pd

from spectrum_tools.schema import OUTCOME, Outcome

__all__ = ["FAILURES_FIRST", "WIDE_COLUMN", "DataGrid", "failures_first"]

# Outcomes in the order an analyst wants to see them: what needs attention first.
FAILURES_FIRST: Final = (
    Outcome.FAILED.value,
    Outcome.NOT_FOUND.value,
    Outcome.PENDING.value,
    Outcome.INVALID.value,
    Outcome.PARTIAL.value,
    Outcome.SKIPPED.value,
    "unchanged",
    Outcome.UPDATED.value,
    Outcome.DRY_RUN.value,
)
WIDE_COLUMN: Final = "32em"
"""The least width of a column of long texts (the results' details, a preview's reason)."""
# Past this, the table in the page is cut (itables says so); the full data is in the files.
_MAX_BYTES: Final = "2MB"


def failures_first(df: pd.DataFrame, column: str = OUTCOME) -> pd.DataFrame:
    """The rows sorted by outcome, failures first; sheet order kept within an outcome.

    Examples
    --------
    >>> df = pd.DataFrame({"outcome": ["updated", "failed", "updated", "not_found"]})
    >>> failures_first(df)["outcome"].tolist()
    ['failed', 'not_found', 'updated', 'updated']
    """
    rank = {name: i for i, name in enumerate(FAILURES_FIRST)}
    keys = df[column].map(rank).fillna(len(rank))
    return df.iloc[keys.argsort(kind="stable")].reset_index(drop=True)


class DataGrid:
    """A titled interactive table that can be filled, emptied and hidden.

    Parameters
    ----------
    css_class
        A class on the box (``spectrum-...``) so tests and styles can find it.
    page_length
        Rows per page.
    """

    def __init__(self, css_class: str, *, page_length: int = 10) -> None:
        self._page_length = page_length
        self.frame: pd.DataFrame | None = None
        self.caption = w.HTML()
        self.box = w.VBox([self.caption], layout=w.Layout(width="100%"))
        self.box.add_class(css_class)
        self.box.layout.display = "none"

    def show(
        self,
        df: pd.DataFrame,
        caption: str = "",
        *,
        hidden: Sequence[str] = (),
        wide: Sequence[str] = (),
    ) -> None:
        """Show ``df`` (its index is not shown), replacing what was there.

        ``wide`` columns (long texts such as ``details``) get room to be read: at least
        :data:`WIDE_COLUMN` wide, wrapping inside it, instead of a narrow column of tall rows.
        """
        from itables.widget import ITable  # the jupyter extra; imported with the first table

        shown = df.drop(columns=[c for c in hidden if c in df.columns]).reset_index(drop=True)
        shown = shown.astype(object).where(shown.notna(), "").astype(str)
        self.frame = shown
        self.caption.value = f"<b>{caption}</b>" if caption else ""
        options: dict[str, Any] = {
            "showIndex": False,
            "order": [],  # keep the order given (failures first), until a header is clicked
            "column_filters": "header",
            "pageLength": self._page_length,
            "lengthMenu": [10, 25, 100, 500],
            "scrollX": True,
            "maxBytes": _MAX_BYTES,
            "classes": "display compact cell-border",
            "allow_html": False,
        }
        wide_at = [i for i, c in enumerate(shown.columns) if c in set(wide)]
        if wide_at:
            options["columnDefs"] = [
                {"targets": wide_at, "width": WIDE_COLUMN, "className": "spectrum-wide"}
            ]
            options["style"] = "table-layout:auto;width:100%;margin:0"
        table = ITable(shown, **options)
        self.box.children = [self.caption, table]
        self.box.layout.display = None

    def clear(self) -> None:
        """Empty and hide the table."""
        self.frame = None
        self.caption.value = ""
        self.box.children = [self.caption]
        self.box.layout.display = "none"
