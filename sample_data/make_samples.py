"""Generate the bundled sample data, deterministically. Writes files in ``sample_data/``.

Run ``python sample_data/make_samples.py`` from anywhere; it rewrites, next to itself:

- ``spectrum_orders.csv``: the order store the sandbox seeds from (plain UTF-8, comma).
- ``status_updates.xlsx``: a ``Notes`` sheet, then an ``Updates`` sheet of status updates.
- ``status_updates.csv``: the same rows as ``Updates``, UTF-8 with BOM, ``;``-delimited,
  CRLF line ends, as Excel's "CSV UTF-8" writes in many European locales.
- ``README.md``: what is in the files, and which rows are messy (spreadsheet row numbers).

Everything comes from one ``random.Random(SEED)``, and the xlsx is rewritten with fixed
zip timestamps and document dates, so running the script twice gives identical bytes.
Touches only the files listed above.
"""

from __future__ import annotations

import csv
import io
import random
import string
import zipfile
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import openpyxl
from openpyxl.styles import Font

SEED = 20240611
FIXED_TIME = datetime(2024, 6, 11, 9, 0, 0)

# The sandbox's seed file.
ORDER_COLUMNS = ("purchaseOrderNumber", "lineItemId", "recipeSetId", "workflowStatus")
# The analyst's spreadsheet.
UPDATE_COLUMNS = ("PO Number", "Recipe Set ID", "New Status", "Notes")

# Deliberate readable ids, each placed on a named order below.
ALL_DIGIT_ID = "12345678"  # stored as a NUMERIC cell in the xlsx
LEADING_ZERO_ID = "00123456"  # must not lose its zeros
DIGIT_FIRST_IDS = ("7QJ2M4KD", "2B9XK7WQ")
LEADING_ZERO_PO = "00012345"
SCI_NOTATION_ID = "1.23E+07"  # what Excel shows for 12345678 in a General cell

# Canonical status -> the spellings an analyst might type for it.
SPELLINGS: dict[str, tuple[str, ...]] = {
    "not-started": ("not-started",),
    "in-progress": ("in-progress", "In Progress"),
    "in-progress-step-1": ("in-progress-step-1",),
    "completed": ("completed", "Completed"),
    "revision": ("revision",),
    "on-hold": ("on-hold", "ON_HOLD"),
    "approved": ("approved",),
    "released": ("released",),
    "delivered": ("delivered", " delivered "),
    "cancelled": ("cancelled", "canceled"),
}
UPDATE_WEIGHTS = {
    "in-progress": 30,
    "completed": 20,
    "on-hold": 8,
    "approved": 8,
    "delivered": 8,
    "cancelled": 5,
    "revision": 4,
    "released": 3,
    "in-progress-step-1": 3,
    "not-started": 2,
}
NOTES = (
    "rush",
    "customer called; hold until Monday",
    "per Müller, approved by email",
    "re-check artwork, size 12",
    "café order",
)


@dataclass(frozen=True)
class Order:
    """One purchase order of the store."""

    po: str
    items: tuple[tuple[int, str, str], ...]  # (lineItemId, recipeSetId, workflowStatus)


@dataclass(frozen=True)
class Row:
    """One row of the Updates sheet, and why it is there when it is messy."""

    po: str
    line_id: str
    status: str
    notes: str = ""
    messy: str = ""  # empty for an ordinary valid row
    numeric_id: bool = False  # write the id as a NUMERIC xlsx cell


def _readable_id(rng: random.Random, taken: set[str]) -> str:
    """Return a fresh 8-character readable id starting with a letter."""
    alphabet = string.ascii_uppercase + string.digits
    while True:
        text = rng.choice(string.ascii_uppercase) + "".join(rng.choices(alphabet, k=7))
        if text not in taken:
            taken.add(text)
            return text


def make_orders(rng: random.Random) -> list[Order]:
    """Build the 55 orders of the store, with the deliberate odd ids in known places."""
    pos = [f"HA-US-DEV{11101 + i:08d}" for i in range(45)]
    pos += [f"HA-UK-DEV{20201 + i:08d}" for i in range(8)]
    pos += ["HA-DE-DEV00030301", LEADING_ZERO_PO]
    special = {
        pos[6]: [LEADING_ZERO_ID],
        pos[11]: [ALL_DIGIT_ID],
        pos[3]: [DIGIT_FIRST_IDS[0]],
        pos[47]: [DIGIT_FIRST_IDS[1]],
    }
    taken = {ALL_DIGIT_ID, LEADING_ZERO_ID, *DIGIT_FIRST_IDS}
    statuses = ["not-started"] * 14 + ["in-progress", "on-hold", "approved"]
    orders: list[Order] = []
    next_id = 500001
    for po in pos:
        count = rng.randint(1, 8)
        ids = list(special.get(po, []))
        count = max(count, len(ids) + 1)
        while len(ids) < count:
            ids.append(_readable_id(rng, taken))
        rng.shuffle(ids)
        items = []
        for line_id in ids:
            items.append((next_id, line_id, rng.choice(statuses)))
            next_id += 1
        orders.append(Order(po, tuple(items)))
    return orders


def _spell(rng: random.Random, status: str) -> str:
    return rng.choice(SPELLINGS[status])


def _pick_status(rng: random.Random) -> str:
    names = list(UPDATE_WEIGHTS)
    return rng.choices(names, weights=[UPDATE_WEIGHTS[n] for n in names])[0]


def make_updates(rng: random.Random, orders: list[Order]) -> list[Row]:
    """Build the Updates rows: mostly valid, with one messy row of each kind."""
    # 50 of the 55 orders get updates; the special-id orders always do.
    must = {orders[3].po, orders[6].po, orders[11].po, orders[47].po, LEADING_ZERO_PO}
    others = [o.po for o in orders if o.po not in must]
    skipped = set(rng.sample(others, 5))
    blocks: list[list[Row]] = []
    for order in orders:
        if order.po in skipped:
            continue
        block: list[Row] = []
        for _, line_id, _status in order.items:
            special = line_id in (ALL_DIGIT_ID, LEADING_ZERO_ID, *DIGIT_FIRST_IDS)
            if not special and len(order.items) > 2 and rng.random() < 0.12:
                continue  # not every line item of an order is updated
            note = rng.choice(NOTES) if rng.random() < 0.1 else ""
            block.append(
                Row(
                    order.po,
                    line_id,
                    _spell(rng, _pick_status(rng)),
                    note,
                    numeric_id=line_id == ALL_DIGIT_ID,
                )
            )
        if block:
            blocks.append(block)

    # Messy rows. Blocks are picked among those with at least three rows, so every messy
    # order still has valid rows that a good reader keeps and sends.
    big = [i for i, b in enumerate(blocks) if len(b) >= 3 and b[0].po not in must]
    pick = iter(big)

    b = blocks[next(pick)]  # exact duplicate of a valid row, right below it
    b.insert(2, replace(b[1], messy="exact duplicate of the row above"))
    b = blocks[next(pick)]  # conflict: the same line item again, another status
    first = b[0]
    other = next(s for s in ("on-hold", "completed") if s not in first.status.lower())
    b.append(
        replace(
            first,
            status=_spell(rng, other),
            notes="",
            messy=f"conflict: same line item as row {{row_of:{first.po}:{first.line_id}}}, "
            "another status",
        )
    )
    b = blocks[next(pick)]  # a line item that is not on the order in the store
    real = b[1].line_id
    typo = real[:-1] + ("X" if real[-1] != "X" else "Y")
    assert typo not in {i for o in orders for _, i, _ in o.items}
    b.insert(
        2,
        Row(
            b[0].po,
            typo,
            _spell(rng, "completed"),
            "",
            messy=f"line item not in the store (typo of {real}): the sandbox answers 409 "
            "for this whole order and changes none of it",
        ),
    )
    b = blocks[next(pick)]
    b[1] = replace(b[1], status="shipped", messy="unknown status `shipped`")
    b = blocks[next(pick)]
    b[1] = replace(b[1], status="", messy="blank status")
    b = blocks[next(pick)]
    b[2] = replace(b[2], po="", messy=f"blank PO (the line item belongs to {b[2].po})")
    b = blocks[next(pick)]
    b.insert(
        1,
        Row(
            b[0].po,
            SCI_NOTATION_ID,
            _spell(rng, "in-progress"),
            "",
            messy=f"id mangled to scientific notation by Excel (text `{SCI_NOTATION_ID}`)",
        ),
    )
    b = blocks[next(pick)]
    b[0] = replace(
        b[0],
        po=f" {b[0].po} ",
        line_id=f"{b[0].line_id} ",
        messy="leading/trailing spaces around PO and id (valid once trimmed)",
    )

    # One order's rows split in two places: valid, but a planner must group them.
    split_at = next(pick)
    split = blocks[split_at]
    half = len(split) // 2
    tail = [
        replace(r, messy=f"second half of {r.po}'s rows, far from the first (valid)")
        for r in split[half:]
    ]
    blocks[split_at] = split[:half]

    rows: list[Row] = []
    for i, block in enumerate(blocks):
        rows.extend(block)
        if i == len(blocks) // 2:
            rows.append(Row("", "", "", "", messy="fully blank row"))
    rows.extend(tail)
    return rows


def _resolve_refs(rows: list[Row]) -> list[Row]:
    """Replace ``{row_of:PO:ID}`` placeholders with spreadsheet row numbers."""
    first_row: dict[tuple[str, str], int] = {}
    for n, r in enumerate(rows, start=2):
        first_row.setdefault((r.po, r.line_id), n)
    out = []
    for r in rows:
        text = r.messy
        while "{row_of:" in text:
            start = text.index("{row_of:")
            end = text.index("}", start)
            _, po, line_id = text[start + 1 : end].split(":")
            text = text[:start] + str(first_row[(po, line_id)]) + text[end + 1 :]
        out.append(replace(r, messy=text))
    return out


def write_orders_csv(path: Path, orders: list[Order]) -> None:
    """Write the sandbox's seed file."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(ORDER_COLUMNS)
        for order in orders:
            for line_item_id, line_id, status in order.items:
                writer.writerow((order.po, line_item_id, line_id, status))


def write_updates_csv(path: Path, rows: list[Row]) -> None:
    """Write the Updates rows as Excel's European "CSV UTF-8" does."""
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh, delimiter=";", lineterminator="\r\n")
        writer.writerow(UPDATE_COLUMNS)
        for r in rows:
            writer.writerow((r.po, r.line_id, r.status, r.notes))


def write_updates_xlsx(path: Path, rows: list[Row]) -> None:
    """Write the workbook: a Notes sheet first, then Updates with text PO/id cells."""
    wb = openpyxl.Workbook()
    notes = wb.active
    assert notes is not None
    notes.title = "Notes"
    notes["A1"] = "Status updates exported from the production tracker, week 24."
    notes["A3"] = "Do not edit by hand: the Updates sheet is the one to upload."
    ws = wb.create_sheet("Updates")
    ws.append(list(UPDATE_COLUMNS))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for n, r in enumerate(rows, start=2):
        if not (r.po or r.line_id or r.status or r.notes):
            continue  # a fully blank row has no cells at all, as in Excel
        for col, value in ((1, r.po), (2, r.line_id), (3, r.status), (4, r.notes)):
            if value == "":
                continue
            cell = ws.cell(row=n, column=col)
            if col == 2 and r.numeric_id:
                cell.value = int(value)
                cell.number_format = "0"
            else:
                cell.value = value
                if col in (1, 2):
                    cell.number_format = "@"  # a Text cell, as typed into a Text column
    for letter, width in zip("ABCD", (22, 16, 14, 36), strict=True):
        ws.column_dimensions[letter].width = width
    wb.properties.creator = "spectrum-tools sample generator"
    buffer = io.BytesIO()
    wb.save(buffer)
    _write_reproducible_zip(path, buffer.getvalue())


def _write_reproducible_zip(path: Path, data: bytes) -> None:
    """Rewrite an xlsx with fixed member times and document dates (openpyxl stamps now)."""
    stamp = FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as src,
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = _replace_dates(body, stamp)
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED_TIME.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(fixed, body)


def _replace_dates(xml: bytes, stamp: bytes) -> bytes:
    for tag in (b"dcterms:created", b"dcterms:modified"):
        start = xml.find(b">", xml.find(b"<" + tag)) + 1
        end = xml.find(b"</" + tag, start)
        if start > 0 and end > start:
            xml = xml[:start] + stamp + xml[end:]
    return xml


def write_readme(path: Path, orders: list[Order], rows: list[Row]) -> None:
    """Write README.md, with the messy rows as the spreadsheet numbers them."""
    n_items = sum(len(o.items) for o in orders)
    n_pos = len({r.po.strip() for r in rows if r.po.strip()})
    id_rows = {
        r.line_id: n
        for n, r in enumerate(rows, start=2)
        if r.line_id in (ALL_DIGIT_ID, LEADING_ZERO_ID, *DIGIT_FIRST_IDS)
    }
    po_rows = [n for n, r in enumerate(rows, start=2) if r.po == LEADING_ZERO_PO]
    lines = [
        "# Sample data",
        "",
        "Generated by `make_samples.py` (fixed seed; run it again to get the same bytes).",
        "Do not edit these files by hand: change the script and re-run it.",
        "",
        "## `spectrum_orders.csv`: the sandbox's order store",
        "",
        f"Columns `{'`, `'.join(ORDER_COLUMNS)}`; {len(orders)} purchase orders, "
        f"{n_items} line items, plain UTF-8, comma-delimited. `lineItemId` is the integer "
        "`id` that `GET /api/order/order-number/{po}` returns; `recipeSetId` is the "
        "8-character readable id. Odd values on purpose: PO `00012345` (leading zeros), "
        f"ids `{ALL_DIGIT_ID}` (all digits), `{LEADING_ZERO_ID}` (leading zeros), "
        f"`{DIGIT_FIRST_IDS[0]}` and `{DIGIT_FIRST_IDS[1]}` (start with a digit). "
        "Read it with every column as text.",
        "",
        "## `status_updates.xlsx` and `status_updates.csv`: an analyst's update sheet",
        "",
        f"Columns `{'`, `'.join(UPDATE_COLUMNS)}`; {len(rows)} data rows "
        f"(header on row 1) over {n_pos} orders. The xlsx has a first sheet `Notes` (two "
        "lines of text, no columns) and the data on sheet `Updates`; PO and id cells are "
        f"Text cells, except id `{ALL_DIGIT_ID}` (row {id_rows[ALL_DIGIT_ID]}), a NUMERIC "
        "cell (calamine reads it as 12345678.0). The csv holds the same rows: UTF-8 with "
        "BOM, `;`-delimited, CRLF, quoted where a note has a `;`. Statuses are spelled "
        "messily but recognisably (`In Progress`, `ON_HOLD`, `Completed`, `canceled`, "
        "` delivered `); those rows are valid. Other rows worth a look: "
        f"id `{LEADING_ZERO_ID}` row {id_rows[LEADING_ZERO_ID]}, PO `{LEADING_ZERO_PO}` "
        f"rows {', '.join(map(str, po_rows))}.",
        "",
        "Row numbers below are as the spreadsheet shows them. The fully blank row is a "
        "real row (`;;;` in the csv, a row without cells in the xlsx): a reader that skips "
        "it must still report the rows after it under these numbers.",
        "",
        "| row | PO Number | Recipe Set ID | New Status | why it is there |",
        "| --- | --- | --- | --- | --- |",
    ]
    for n, r in enumerate(rows, start=2):
        if r.messy:
            cells = [f"`{c}`" if c else "(blank)" for c in (r.po, r.line_id, r.status)]
            lines.append(f"| {n} | {' | '.join(cells)} | {r.messy} |")
    lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    """Regenerate every sample file next to this script."""
    here = Path(__file__).resolve().parent
    rng = random.Random(SEED)
    orders = make_orders(rng)
    rows = _resolve_refs(make_updates(rng, orders))
    write_orders_csv(here / "spectrum_orders.csv", orders)
    write_updates_csv(here / "status_updates.csv", rows)
    write_updates_xlsx(here / "status_updates.xlsx", rows)
    write_readme(here / "README.md", orders, rows)


if __name__ == "__main__":
    main()
