"""Column resolution: find the API fields among a sheet's header cells. Pure: no I/O.

Analysts name columns every which way (``PO #``, ``Recipe Set ID``, ``New Status``);
headers are compared after dropping case, spaces and punctuation, and the header row may
sit below a few title rows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final

from spectrum_tools.errors import ConfigError
from spectrum_tools.schema import KEY_COLUMNS, LINE_ID, PO, STATUS

__all__ = [
    "COLUMN_ALIASES",
    "HEADER_SCAN_ROWS",
    "NOT_RECIPE_SET",
    "closest_header",
    "column_letter",
    "find_header",
    "resolve_columns",
]

# Header spellings per API field, compared after dropping case, spaces and punctuation.
COLUMN_ALIASES: Mapping[str, tuple[str, ...]] = {
    PO: (
        "purchaseOrderNumber",
        "PO",
        "PO Number",
        "PO No",
        "PO #",
        "PO Num",
        "Purchase Order",
        "Purchase Order No",
        "Purchase Order Number",
        "Order Number",
        "Order No",
    ),
    LINE_ID: (
        "recipeSetReadableId",
        "recipeSetId",
        "Recipe Set ID",
        "Recipe Set",
        "Readable ID",
        "Recipe Set Readable ID",
        # Not "Line Item ID" (nor "Line Item", "Line ID"): in Spectrum that is the line
        # item's integer ``id``, another number than the recipe set's readable id.
    ),
    STATUS: (
        "workflowStatus",
        "Status",
        "New Status",
        "Workflow Status",
        "Target Status",
        "New Workflow Status",
    ),
}

# Headers that look like the line-item id column but name Spectrum's integer line item
# ``id``: never taken as recipeSetReadableId (a column override still can take one).
NOT_RECIPE_SET: tuple[str, ...] = ("Line Item ID", "Line Item", "Line ID", "Line Item Id #")

# How far down a sheet the header row may be (title rows above it are common).
HEADER_SCAN_ROWS: Final = 20


def _squash(name: object) -> str:
    return re.sub(r"[\W_]+", "", str(name)).lower()


_ALIAS_INDEX: dict[str, str] = {
    _squash(alias): field for field, aliases in COLUMN_ALIASES.items() for alias in aliases
}
_NOT_IDS = frozenset(_squash(h) for h in NOT_RECIPE_SET)


def resolve_columns(
    headers: Sequence[object], columns: Mapping[str, str] | None = None
) -> tuple[dict[str, int], list[str]]:
    """Find the API fields among a header row.

    Parameters
    ----------
    headers
        The header cells, left to right.
    columns
        Overrides: API field name -> header text, e.g. ``{"purchaseOrderNumber": "My PO"}``.

    Returns
    -------
    (found, problems)
        ``found`` maps each API field found to its column index; ``problems`` lists one
        sentence per field that is missing or ambiguous.

    Raises
    ------
    ConfigError
        ``columns`` names something other than the three API fields.

    Examples
    --------
    >>> resolve_columns(["PO Number", "Recipe Set ID", "New Status"])[0]
    {'purchaseOrderNumber': 0, 'recipeSetReadableId': 1, 'workflowStatus': 2}
    """
    overrides = dict(columns or {})
    unknown = set(overrides) - set(KEY_COLUMNS)
    if unknown:
        raise ConfigError(
            f"columns= keys must be {', '.join(KEY_COLUMNS)}; got {', '.join(sorted(unknown))}"
        )
    squashed = [_squash(h) for h in headers]
    found: dict[str, int] = {}
    problems: list[str] = []
    for field in KEY_COLUMNS:
        if field in overrides:
            want = overrides[field]
            exact = [i for i, h in enumerate(headers) if str(h) == want]
            hits = exact or [i for i, s in enumerate(squashed) if s == _squash(want)]
            if not hits:
                problems.append(f"no column {want!r} (given for {field})")
                continue
            found[field] = hits[0]
            continue
        hits = [i for i, s in enumerate(squashed) if _ALIAS_INDEX.get(s) == field]
        hits = [i for i in hits if i not in found.values()]
        if len(hits) == 1:
            found[field] = hits[0]
        elif not hits:
            text = f"no column for {field} (e.g. {', '.join(COLUMN_ALIASES[field][1:4])})"
            lookalike = [str(h) for h, q in zip(headers, squashed, strict=True) if q in _NOT_IDS]
            if field == LINE_ID and lookalike:
                text += (
                    f"; {lookalike[0]!r} is Spectrum's integer line item id, not the recipe "
                    "set id (if it really holds recipe set ids, name it with --id-column / "
                    "columns=)"
                )
            problems.append(text)
        else:
            names = ", ".join(repr(str(headers[i])) for i in hits)
            problems.append(f"{names} could each be {field}; pass columns={{{field!r}: ...}}")
    return found, problems


def find_header(
    rows: Sequence[Sequence[str]], columns: Mapping[str, str] | None
) -> tuple[int | None, dict[str, int], list[str]]:
    """Return (header row index, field -> column index, problems of the first non-blank row).

    Examples
    --------
    >>> find_header([["Report"], [], ["PO", "Recipe Set", "Status"]], None)[:2]
    (2, {'purchaseOrderNumber': 0, 'recipeSetReadableId': 1, 'workflowStatus': 2})
    """
    first_problems: list[str] | None = None
    for index, row in enumerate(rows[:HEADER_SCAN_ROWS]):
        if not any(str(c).strip() for c in row):
            continue
        found, problems = resolve_columns(row, columns)
        if not problems:
            return index, found, []
        if first_problems is None:
            first_problems = problems
    return None, {}, first_problems or ["no header row"]


def closest_header(
    rows: Sequence[Sequence[str]], columns: Mapping[str, str] | None
) -> tuple[int | None, list[str]]:
    """The row that looks most like the header, and what it lacks (for an error message).

    The row with the most API fields found wins (then the one with the most cells), so
    a title row above the real header is not the one an error names.

    Examples
    --------
    >>> closest_header([["Order report"], ["PO #", "Item", "New Status"]], None)[0]
    1
    """
    best: tuple[int, int, int] | None = None
    best_problems: list[str] = ["no header row"]
    for index, row in enumerate(rows[:HEADER_SCAN_ROWS]):
        filled = sum(1 for c in row if str(c).strip())
        if not filled:
            continue
        found, problems = resolve_columns(row, columns)
        score = (len(found), filled, -index)
        if best is None or score > best:
            best, best_problems = score, problems
    return (None if best is None else -best[2]), best_problems


def column_letter(index: int) -> str:
    """The spreadsheet letter of a 0-based column index.

    Examples
    --------
    >>> column_letter(0), column_letter(25), column_letter(26)
    ('A', 'Z', 'AA')
    """
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters
