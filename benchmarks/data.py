"""Generate benchmark data, deterministically: messy update sheets and sandbox orders.

Touches only the files it is asked to write (under the benchmark's output folder).

An update sheet looks like what analysts export: columns ``PO Number, Recipe Set ID,
New Status, Notes``, about four line items per order, statuses spelled every which way
(``In Progress``, `` completed ``, ``ON_HOLD``, ``canceled``), and a few percent of rows
that are wrong on purpose: unknown or blank statuses, blank ids and POs, ids mangled into
scientific notation or holding a space, exact duplicates, conflicting duplicates and fully
blank rows. Notes hold commas, quotes and accents, so the CSV needs real quoting.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "HEADER",
    "make_orders",
    "make_update_rows",
    "updates_for",
    "write_csv",
    "write_xlsx",
]

# Bump when the generated data changes, so cached files are regenerated.
VERSION = 1
HEADER = ("PO Number", "Recipe Set ID", "New Status", "Notes")

_ALPHABET = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", dtype=np.uint8)

# Canonical status -> (weight, spellings an analyst types for it).
_STATUSES: dict[str, tuple[int, tuple[str, ...]]] = {
    "in-progress": (30, ("in-progress", "In Progress", "IN PROGRESS", "in_progress")),
    "completed": (20, ("completed", "Completed", " completed ", "COMPLETED")),
    "on-hold": (8, ("on-hold", "ON_HOLD", "on hold", "On Hold")),
    "approved": (8, ("approved", "Approved")),
    "delivered": (8, ("delivered", " delivered ", "Delivered")),
    "cancelled": (5, ("cancelled", "canceled", "Cancelled")),
    "revision": (4, ("revision", "Revision")),
    "released": (3, ("released",)),
    "in-progress-step-1": (3, ("in-progress-step-1", "In Progress Step 1")),
    "not-started": (2, ("not-started", "Not Started", "not started")),
}
_UNKNOWN = ("shipped", "done", "tbd", "pending", "complet")
_NOTES = (
    "rush",
    "customer called, hold until Monday",
    'per Müller: "approved by email"',
    "re-check artwork; size 12",
    "café order",
)


def _random_ids(rng: np.random.Generator, n: int, letter_first: bool = False) -> np.ndarray:
    """``n`` readable ids: 8 characters of A-Z0-9 (the first a letter if asked)."""
    codes = _ALPHABET[rng.integers(0, len(_ALPHABET), size=(n, 8))]
    if letter_first:  # else "1E234567" happens, which validation flags as scientific notation
        codes[:, 0] = _ALPHABET[rng.integers(0, 26, size=n)]
    return np.frombuffer(codes.tobytes(), dtype="S8").astype(str).astype(object)


def make_update_rows(n_rows: int, seed: int = 1) -> pd.DataFrame:
    """Return ``n_rows`` messy update rows (all cells text) with the analyst's headers.

    Examples
    --------
    >>> rows = make_update_rows(1000)
    >>> rows.shape, list(rows.columns) == list(HEADER)
    ((1000, 4), True)
    """
    rng = np.random.default_rng(seed)
    # Orders: 1 + Poisson(3) line items (mean about 4), enough of them for n_rows.
    n_orders = n_rows // 4 + 16
    sizes = np.clip(1 + rng.poisson(3.0, n_orders), 1, 12)
    numbers = np.arange(n_orders)
    po_text = np.array([f"HA-US-BM{i:08d}" for i in numbers.tolist()], dtype=object)
    # One order in a hundred has an all-digit PO with leading zeros (ERP exports do that).
    digits = rng.random(n_orders) < 0.01
    po_text[digits] = [f"00{i:06d}" for i in numbers[digits].tolist()]
    po = np.repeat(po_text, sizes)
    n = len(po)
    ids = _random_ids(rng, n)

    names = list(_STATUSES)
    weights = np.array([_STATUSES[s][0] for s in names], dtype=float)
    canonical = rng.choice(len(names), size=n, p=weights / weights.sum())
    status = np.empty(n, dtype=object)
    for k, name in enumerate(names):
        where = np.flatnonzero(canonical == k)
        spellings = np.array(_STATUSES[name][1], dtype=object)
        status[where] = spellings[rng.integers(0, len(spellings), len(where))]

    notes = np.full(n, "", dtype=object)
    noted = rng.random(n) < 0.05
    notes[noted] = np.array(_NOTES, dtype=object)[rng.integers(0, len(_NOTES), noted.sum())]

    # Wrong on purpose, a few percent of rows in all.
    def pick(share: float) -> np.ndarray:
        return rng.random(n) < share

    unknown = pick(0.004)
    status[unknown] = np.array(_UNKNOWN, dtype=object)[
        rng.integers(0, len(_UNKNOWN), unknown.sum())
    ]
    status[pick(0.002)] = ""
    ids[pick(0.002)] = ""
    ids[pick(0.001)] = "1.23E+07"
    spaced = pick(0.001)
    ids[spaced] = [f"{v[:4]} {v[4:]}" for v in ids[spaced]]
    padded = pick(0.005)  # harmless: trimmed by validation
    ids[padded] = [f" {v}" for v in ids[padded]]
    po = po.copy()
    po[pick(0.001)] = ""

    # Exact duplicates (right below their row) and conflicting duplicates.
    repeat = np.ones(n, dtype=np.int64)
    dup = pick(0.01)
    repeat[dup] = 2
    order = np.repeat(np.arange(n), repeat)
    frame = pd.DataFrame(
        {
            HEADER[0]: po[order],
            HEADER[1]: ids[order],
            HEADER[2]: status[order],
            HEADER[3]: notes[order],
        }
    )
    second = np.flatnonzero(np.diff(order, prepend=-1) == 0)
    conflict = second[rng.random(len(second)) < 0.1]
    frame.iloc[conflict, 2] = "on-hold"
    blank = rng.random(len(frame)) < 0.001
    frame.loc[blank, list(HEADER)] = ""
    return frame.iloc[:n_rows].reset_index(drop=True)


def make_orders(n_orders: int, lines: int = 4, prefix: str = "HA-US-PACE") -> pd.DataFrame:
    """Return orders for the sandbox store, and the rows that update all their line items.

    Returns a frame with ``purchaseOrderNumber, recipeSetId, workflowStatus`` (the store's
    seed, every line item ``not-started``); the update rows are the same line items with
    ``in-progress`` (see :func:`updates_for`).
    """
    rng = np.random.default_rng(n_orders)
    ids = _random_ids(rng, n_orders * lines, letter_first=True)
    po = np.repeat([f"{prefix}{i:06d}" for i in range(n_orders)], lines)
    return pd.DataFrame(
        {"purchaseOrderNumber": po, "recipeSetId": ids, "workflowStatus": "not-started"}
    ).drop_duplicates(["purchaseOrderNumber", "recipeSetId"], ignore_index=True)


def updates_for(orders: pd.DataFrame, status: str = "in-progress") -> pd.DataFrame:
    """The update rows that set every line item of ``orders`` to ``status``."""
    return pd.DataFrame(
        {
            "purchaseOrderNumber": orders["purchaseOrderNumber"].to_numpy(),
            "recipeSetReadableId": orders["recipeSetId"].to_numpy(),
            "workflowStatus": status,
        }
    )


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write a plain comma-separated UTF-8 CSV (what ``pd.read_csv`` reads by default)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    frame.to_csv(tmp, index=False, encoding="utf-8")
    tmp.replace(path)
    return path


def write_xlsx(frame: pd.DataFrame, path: Path) -> Path:
    """Write one ``Updates`` sheet with openpyxl; all-digit ids become numeric cells."""
    from openpyxl import Workbook

    path.parent.mkdir(parents=True, exist_ok=True)
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Updates")
    sheet.append(list(frame.columns))
    for record in frame.itertuples(index=False, name=None):
        sheet.append([_xlsx_value(v) for v in record])
    tmp = path.with_suffix(".tmp")
    book.save(tmp)
    tmp.replace(path)
    return path


def _xlsx_value(text: str) -> str | int | None:
    if not text:
        return None  # Excel stores no cell at all for an empty one
    if text.isdigit() and text[0] != "0":
        return int(text)  # Excel turns an all-digit id into a number
    return text
