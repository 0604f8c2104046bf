"""Fix invalid rows in the app: an editable grid of them, re-validated on every edit.

Each invalid row shows its row number, its three key cells as text boxes (the analyst's own
spelling), a "leave out" box and its problem. Editing a cell (Enter, or leaving the box)
records the correction and asks the app to validate again; the problem column then says
whether the row is fine now. The corrections (row, column, original -> corrected) ride on
the rows' ``attrs`` (:data:`~spectrum_tools.sheets.CORRECTIONS`): the journal keeps them
with the run and its report shows them on the Corrections sheet.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from typing import Final

import ipywidgets as w
import pandas as pd

from spectrum_tools.report import CORRECTION_COLUMNS
from spectrum_tools.schema import KEY_COLUMNS, PROBLEM, SOURCE_ROW, VALID
from spectrum_tools.sheets import CORRECTIONS
from spectrum_tools.widgets import _render

__all__ = ["LEFT_OUT", "FixPanel", "apply_corrections"]

LEFT_OUT: Final = "(row left out)"
_WHOLE_ROW: Final = "(whole row)"
# Past this many invalid rows the grid shows the first ones; the rest are fixed in the sheet.
MAX_ROWS: Final = 100


def apply_corrections(rows: pd.DataFrame, fixes: Mapping[tuple[int, str], str]) -> pd.DataFrame:
    """``rows`` (as read) with the fixes applied: (sheet row, field) -> new text.

    A fix of field :data:`LEFT_OUT` drops the row.

    Examples
    --------
    >>> rows = pd.DataFrame({"source_row": [2, 3], "workflowStatus": ["shipped", "done"]})
    >>> apply_corrections(rows, {(2, "workflowStatus"): "delivered", (3, LEFT_OUT): ""})
       source_row workflowStatus
    0           2      delivered
    """
    out = rows.copy()
    at = out[SOURCE_ROW].to_numpy()
    drop = [row for (row, field) in fixes if field == LEFT_OUT]
    for (row, field), value in fixes.items():
        if field != LEFT_OUT:
            out.loc[at == row, field] = value
    return out.loc[~out[SOURCE_ROW].isin(drop)].reset_index(drop=True)


class FixPanel:
    """The editable grid of the invalid rows.

    Parameters
    ----------
    on_edit
        Called (no arguments) after each edit, so the app validates again.
    """

    def __init__(self, on_edit: Callable[[], None]) -> None:
        self._on_edit = on_edit
        self._original: dict[tuple[int, str], str] = {}
        self._fixes: dict[tuple[int, str], str] = {}
        self._headers: dict[str, str] = {}
        self._cells: dict[tuple[int, str], w.Text] = {}
        self._leave_out: dict[int, w.Checkbox] = {}
        self._problems: dict[int, w.HTML] = {}
        self._filling = False
        self.title = w.HTML()
        self.grid = w.GridBox(layout=w.Layout(grid_gap="2px 6px"))
        self.grid.add_class("spectrum-fix-grid")
        self.box = w.VBox([self.title, self.grid])
        self.box.layout.display = "none"

    @property
    def fixes(self) -> dict[tuple[int, str], str]:
        """(sheet row, field or :data:`LEFT_OUT`) -> corrected text."""
        return dict(self._fixes)

    @property
    def version(self) -> int:
        """Changes with every edit (part of what a preview was made for)."""
        return hash(tuple(sorted(self._fixes.items())))

    def corrections(self) -> pd.DataFrame:
        """The corrections made, one row each: ``row, column, original, corrected``.

        ``column`` is the analyst's header; a row left out has column "(whole row)".
        """
        return pd.DataFrame(self._records(), columns=list(CORRECTION_COLUMNS))

    def apply(self, rows: pd.DataFrame, *, leave_out: bool = True) -> pd.DataFrame:
        """``rows`` (as read) with the corrections made, recorded in ``attrs``.

        Parameters
        ----------
        rows
            The rows as read, with ``source_row``.
        leave_out
            Drop the rows the analyst left out (False: keep them, for the error file).
        """
        fixes = {k: v for k, v in self._fixes.items() if leave_out or k[1] != LEFT_OUT}
        out = apply_corrections(rows, fixes)
        records = self._records()
        if records:
            out.attrs[CORRECTIONS] = tuple(records)
        return out

    def _records(self) -> list[tuple[int, str, str, str]]:
        records = []
        for (row, field), value in sorted(self._fixes.items()):
            if field == LEFT_OUT:
                records.append((row, _WHOLE_ROW, "", LEFT_OUT))
            else:
                original = self._original.get((row, field), "")
                records.append((row, self._headers.get(field, field), original, value))
        return records

    def clear(self) -> None:
        """Forget the rows and the corrections (a new file)."""
        self._fixes.clear()
        self._original.clear()
        self._cells.clear()
        self._leave_out.clear()
        self._problems.clear()
        self.grid.children = ()
        self.title.value = ""
        self.box.layout.display = "none"

    def show(self, raw: pd.DataFrame, checked: pd.DataFrame, headers: Mapping[str, str]) -> None:
        """Offer the invalid rows of ``checked`` for editing, with their ``raw`` cells.

        Parameters
        ----------
        raw
            The rows as read (the analyst's spelling), with ``source_row``.
        checked
            The same rows validated (``valid``, ``problem``), corrections applied.
        headers
            API field -> the analyst's header, for the column titles.
        """
        self._headers = dict(headers)
        invalid = checked.loc[~checked[VALID].astype(bool)]
        rows = [int(r) for r in invalid[SOURCE_ROW].tolist()]
        left_out = sorted(r for r, f in self._fixes if f == LEFT_OUT)
        rows = sorted(set(rows) | set(left_out) | {r for r, _f in self._fixes})[:MAX_ROWS]
        if not rows:
            self.clear_grid_only()
            return
        by_row = raw.set_index(SOURCE_ROW)
        self._filling = True
        try:
            children: list[w.Widget] = [
                w.HTML("<b>Row</b>"),
                *[w.HTML(f"<b>{html.escape(headers.get(f, f))}</b>") for f in KEY_COLUMNS],
                w.HTML("<b>Leave out</b>"),
                w.HTML("<b>Problem</b>"),
            ]
            self._cells.clear()
            self._leave_out.clear()
            self._problems.clear()
            for row in rows:
                children.append(w.HTML(f"<b>{row}</b>"))
                for field in KEY_COLUMNS:
                    original = str(by_row.at[row, field]) if row in by_row.index else ""
                    self._original.setdefault((row, field), original)
                    cell = w.Text(
                        value=self._fixes.get((row, field), self._original[(row, field)]),
                        continuous_update=False,
                        layout=w.Layout(width="auto"),
                    )
                    cell.add_class(f"spectrum-fix-{field}")
                    cell.add_class(f"spectrum-fix-row-{row}")
                    cell.observe(self._edited(row, field), names="value")
                    self._cells[(row, field)] = cell
                    children.append(cell)
                skip = w.Checkbox(value=(row, LEFT_OUT) in self._fixes, indent=False)
                skip.observe(self._left_out(row), names="value")
                self._leave_out[row] = skip
                problem = w.HTML()
                self._problems[row] = problem
                children.extend([skip, problem])
            self.grid.children = children
            self.grid.layout.grid_template_columns = "50px 1fr 1fr 1fr 80px 2fr"
        finally:
            self._filling = False
        more = len(invalid) - len(rows)
        tail = f" (the first {len(rows)}; fix the other {more:,} in the sheet)" if more > 0 else ""
        self.title.value = (
            "<b>Fix the invalid rows here</b>: type the right value and press Enter, or tick "
            f"“Leave out”.{tail}"
        )
        self.box.layout.display = None
        self.update_problems(checked)

    def clear_grid_only(self) -> None:
        """No invalid rows to show (the corrections made so far are kept)."""
        self.grid.children = ()
        self.title.value = ""
        self.box.layout.display = "none"

    def update_problems(self, checked: pd.DataFrame) -> None:
        """Show each row's problem after the latest validation (or that it is fine now)."""
        problems = checked.set_index(SOURCE_ROW)
        for row, label in self._problems.items():
            if (row, LEFT_OUT) in self._fixes:
                label.value = _render.info_line("left out: not sent")
            elif row not in problems.index:
                label.value = _render.info_line("blank row: ignored")
            else:
                found = problems.loc[[row]]
                bad = found.loc[~found[VALID].astype(bool), PROBLEM]
                label.value = (
                    _render.error_line("; ".join(str(p) for p in bad))
                    if len(bad)
                    else _render.success_line("fine now")
                )

    def edit(self, row: int, field: str, value: str) -> None:
        """Type ``value`` into a cell of the grid (as the analyst would)."""
        self._cells[(row, field)].value = value

    def _edited(self, row: int, field: str) -> Callable[[dict[str, object]], None]:
        def changed(change: dict[str, object]) -> None:
            if self._filling:
                return
            value = str(change["new"])
            if value == self._original.get((row, field), ""):
                self._fixes.pop((row, field), None)
            else:
                self._fixes[(row, field)] = value
            self._on_edit()

        return changed

    def _left_out(self, row: int) -> Callable[[dict[str, object]], None]:
        def changed(change: dict[str, object]) -> None:
            if self._filling:
                return
            if change["new"]:
                self._fixes[(row, LEFT_OUT)] = ""
            else:
                self._fixes.pop((row, LEFT_OUT), None)
            self._on_edit()

        return changed
