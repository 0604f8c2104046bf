"""The sandbox's order state in one SQLite file. Touches that file (and its WAL side files).

Two tables: ``orders`` (one row per purchase order number, with the order's
``last_modified``) and ``line_items`` (integer ``id``, readable ``recipe_set_id``,
``workflow_status``, ``last_modified``). Times are fixed-width UTC ISO 8601 text, so text
order is time order. The database runs in WAL mode, so another process (or the ``sqlite3``
shell) can read it while the sandbox writes.

The order's last-modification time is what ``POST /api/orders/search`` filters on
(docs/spectrum-api.md, "How the sandbox plays reads"): an accepted status update sets it to
now; seeding sets it to the newest of the order's line items' times, and a seeded line item
without a time gets a deterministic age (:func:`seed_age`) so that search windows matter.

Thread safety: one connection, opened with ``check_same_thread=False`` and guarded by a lock.
The server's event-loop thread and a test's own thread may both call the store; every method
holds the lock for its whole transaction, and the sandbox's traffic is far too small for the
lock to matter.
"""

from __future__ import annotations

import hashlib
import math
import os
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, NamedTuple

import pandas as pd

from spectrum_tools.errors import SpreadsheetError
from spectrum_tools.sandbox.vendor import WORKFLOW_STATUSES, LineItemJSON, OrderJSON
from spectrum_tools.sheets import check_workbook_archive

__all__ = ["ORDER_FILE_COLUMNS", "SandboxStore", "format_timestamp", "seed_age"]

# Columns of an order file (``sample_data/spectrum_orders.csv``); the last two are optional.
ORDER_FILE_COLUMNS: Final = (
    "purchaseOrderNumber",
    "recipeSetId",
    "workflowStatus",
    "lineItemId",
    "lastModified",
)
_REQUIRED: Final = ORDER_FILE_COLUMNS[:3]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS orders (
    purchase_order_number TEXT PRIMARY KEY,
    last_modified TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS line_items (
    id INTEGER PRIMARY KEY,
    purchase_order_number TEXT NOT NULL
        REFERENCES orders (purchase_order_number) ON DELETE CASCADE,
    recipe_set_id TEXT NOT NULL,
    workflow_status TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    UNIQUE (purchase_order_number, recipe_set_id)
);
CREATE INDEX IF NOT EXISTS line_items_by_modified ON line_items (last_modified);
"""
# A store written before orders had a time gets the column, filled from its line items.
_MIGRATE_ORDER_TIME: Final = """
ALTER TABLE orders ADD COLUMN last_modified TEXT NOT NULL DEFAULT '';
UPDATE orders SET last_modified = COALESCE(
    (SELECT MAX(l.last_modified) FROM line_items AS l
     WHERE l.purchase_order_number = orders.purchase_order_number), '');
"""
_ORDER_TIME_INDEX: Final = "CREATE INDEX IF NOT EXISTS orders_by_modified ON orders (last_modified)"

# Seeded ages (see seed_age): most orders within the toolkit's default look-back of about
# three months, one in _OLD_ONE_IN beyond it.
_RECENT_AGES: Final = (timedelta(days=1), timedelta(days=85))
_OLD_AGES: Final = (timedelta(days=100), timedelta(days=200))
_OLD_ONE_IN: Final = 20


class _SeedRow(NamedTuple):
    po: str
    recipe_set_id: str
    status: str
    line_item_id: int | None
    modified: str | None


def format_timestamp(moment: datetime) -> str:
    """Return the store's fixed-width UTC text for a moment (naive means UTC).

    Examples
    --------
    >>> format_timestamp(datetime(2024, 6, 11, 9, 30))
    '2024-06-11T09:30:00.000000Z'
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def seed_age(purchase_order_number: str) -> timedelta:
    """Return how long before seeding an order without a ``lastModified`` was last modified.

    A function of the purchase order number alone, so every seeding of the same orders
    spreads them the same way: about nineteen orders in twenty get 1 to 85 days, the rest
    100 to 200 days (beyond a look-back of about three months). Whole seconds.

    Examples
    --------
    >>> seed_age("HA-US-DEV00011101") == seed_age("HA-US-DEV00011101")
    True
    >>> timedelta(days=1) <= seed_age("HA-US-DEV00011101") <= timedelta(days=200)
    True
    """
    digest = hashlib.sha256(purchase_order_number.encode("utf-8")).digest()
    low, high = _OLD_AGES if digest[0] % _OLD_ONE_IN == 0 else _RECENT_AGES
    fraction = int.from_bytes(digest[1:9], "big") / 2**64
    return timedelta(seconds=round((low + (high - low) * fraction).total_seconds()))


class SandboxStore:
    """Orders and line items of the sandbox, in a SQLite file.

    Parameters
    ----------
    path
        The database file; created with its tables when missing.
    clock
        Returns "now" for last-modified stamps; defaults to the UTC wall clock.

    Examples
    --------
    >>> tmp = getfixture("tmp_path") / "s.sqlite3"
    >>> with SandboxStore(tmp) as store:
    ...     store.seed([{"purchaseOrderNumber": "PO-1", "recipeSetId": "ABCD1234",
    ...                  "workflowStatus": "not-started"}])
    ...     store.apply_status_update(
    ...         "PO-1", [{"recipeSetReadableId": "ABCD1234", "workflowStatus": "completed"}])
    ...     store.get_order("PO-1")["lineItems"][0]["workflowStatus"]
    1
    []
    'completed'
    """

    def __init__(
        self, path: str | os.PathLike[str], *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self._path = Path(path)
        self._clock = clock or _utc_now
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            self._path, check_same_thread=False, isolation_level=None, timeout=10.0
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.executescript(_SCHEMA)
        columns = {str(row[1]) for row in self._conn.execute("PRAGMA table_info(orders)")}
        if "last_modified" not in columns:
            self._conn.executescript(f"BEGIN; {_MIGRATE_ORDER_TIME} COMMIT;")
        self._conn.execute(_ORDER_TIME_INDEX)

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        return f"SandboxStore({str(self._path)!r}, {state})"

    def __enter__(self) -> SandboxStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database; further calls raise ``RuntimeError``. Idempotent."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"the sandbox store {self._path} is closed")
        return self._conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- loading ---------------------------------------------------------------------------

    def is_empty(self) -> bool:
        """Return whether the store holds no order at all."""
        with self._lock:
            row = self._connection().execute("SELECT COUNT(*) FROM orders").fetchone()
        return int(row[0]) == 0

    def reset(self) -> None:
        """Delete every order and line item."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM line_items")
            conn.execute("DELETE FROM orders")

    def seed(self, rows: Iterable[Mapping[str, object]], *, replace: bool = False) -> int:
        """Add or overwrite line items, all in one transaction.

        Parameters
        ----------
        rows
            Mappings with ``purchaseOrderNumber``, ``recipeSetId``, ``workflowStatus`` and
            optionally ``lineItemId`` (integer; assigned when blank) and ``lastModified``
            (ISO 8601; when blank, :func:`seed_age` of the PO before now). A line item
            already in the store (same PO and ``recipeSetId``) gets the row's status and
            time; it keeps its ``id``. Each order seeded gets, as its own last-modification
            time, the newest time of its line items.
        replace
            Empty the store first (in the same transaction).

        Returns
        -------
        int
            How many line items were written.

        Raises
        ------
        spectrum_tools.errors.SpreadsheetError
            (a ``ValueError``) for a blank PO or id, a status Spectrum does not know, a bad
            ``lineItemId`` or time, a line item twice in ``rows``, or a ``lineItemId``
            already used by another line item. Then nothing is changed. ``row`` is 1 for
            the first row.
        """
        return self._seed(rows, replace=replace, first_row=1, file=None)

    def _seed(
        self,
        rows: Iterable[Mapping[str, object]],
        *,
        replace: bool,
        first_row: int,
        file: str | None,
    ) -> int:
        parsed: list[_SeedRow] = []
        seen: dict[tuple[str, str], int] = {}
        for number, row in enumerate(rows, start=first_row):
            try:
                item = _parse_seed_row(row)
            except ValueError as exc:
                raise SpreadsheetError(str(exc), file=file, row=number) from None
            key = (item.po, item.recipe_set_id)
            if key in seen:
                raise SpreadsheetError(
                    f"line item {item.recipe_set_id} of {item.po} is already on row {seen[key]}",
                    file=file,
                    row=number,
                )
            seen[key] = number
            parsed.append(item)
        now = self._clock()
        with self._transaction() as conn:
            if replace:
                conn.execute("DELETE FROM line_items")
                conn.execute("DELETE FROM orders")
            for item in parsed:
                conn.execute(
                    "INSERT OR IGNORE INTO orders (purchase_order_number) VALUES (?)", (item.po,)
                )
                try:
                    conn.execute(
                        "INSERT INTO line_items (id, purchase_order_number, recipe_set_id,"
                        " workflow_status, last_modified) VALUES (?, ?, ?, ?, ?)"
                        " ON CONFLICT (purchase_order_number, recipe_set_id) DO UPDATE SET"
                        " workflow_status = excluded.workflow_status,"
                        " last_modified = excluded.last_modified",
                        (
                            item.line_item_id,
                            item.po,
                            item.recipe_set_id,
                            item.status,
                            item.modified or format_timestamp(now - seed_age(item.po)),
                        ),
                    )
                except sqlite3.IntegrityError as exc:
                    raise SpreadsheetError(
                        f"lineItemId {item.line_item_id} is already used by another line item",
                        file=file,
                        row=seen[(item.po, item.recipe_set_id)],
                    ) from exc
            conn.executemany(
                "UPDATE orders SET last_modified = (SELECT MAX(l.last_modified)"
                " FROM line_items AS l WHERE l.purchase_order_number = ?)"
                " WHERE purchase_order_number = ?",
                [(po, po) for po in dict.fromkeys(item.po for item in parsed)],
            )
        return len(parsed)

    def load_orders(
        self, source: str | os.PathLike[str] | pd.DataFrame, *, replace: bool = False
    ) -> int:
        """Seed from an order file (CSV or XLSX) or a DataFrame.

        Parameters
        ----------
        source
            A ``.csv`` (any of ``,;`` or tab as delimiter, UTF-8 with or without BOM), an
            ``.xlsx`` (first sheet), or a DataFrame, with columns
            ``purchaseOrderNumber, recipeSetId, workflowStatus`` and optionally
            ``lineItemId, lastModified``. Every cell is read as text.
        replace
            Empty the store first, in the same transaction.

        Returns
        -------
        int
            How many line items were written.

        Raises
        ------
        spectrum_tools.errors.SpreadsheetError
            (a ``ValueError``) for a missing column or a bad row; it names the file and the
            row as a spreadsheet shows it (header on row 1). Nothing is changed.
        FileNotFoundError
            When the file does not exist.
        """
        if isinstance(source, pd.DataFrame):
            frame, name = source, "DataFrame"
        else:
            path = Path(source)
            name = str(path)
            if path.suffix.lower() in (".xlsx", ".xlsm"):
                # An order file is untrusted input too: refuse a zip bomb before parsing.
                check_workbook_archive(path.read_bytes(), name)
                # openpyxl gives a whole-number cell as int ("12345678"), not float.
                frame = pd.read_excel(path, dtype=str, keep_default_na=False, engine="openpyxl")
            else:
                frame = pd.read_csv(
                    path,
                    dtype=str,
                    keep_default_na=False,
                    sep=None,
                    engine="python",
                    encoding="utf-8-sig",
                )
        frame = frame.rename(columns=lambda c: str(c).strip())
        missing = [c for c in _REQUIRED if c not in frame.columns]
        if missing:
            raise SpreadsheetError(f"missing column(s) {', '.join(missing)}", file=name)
        columns = [c for c in ORDER_FILE_COLUMNS if c in frame.columns]
        records = [
            {str(k): v for k, v in record.items()}
            for record in frame[columns].to_dict(orient="records")
        ]
        # Header on row 1: the first data row is row 2, as a spreadsheet shows it.
        return self._seed(records, replace=replace, first_row=2, file=name)

    # -- reading ---------------------------------------------------------------------------

    def get_order(self, po: str) -> OrderJSON | None:
        """Return an order as ``GET /api/order/order-number/{po}`` shows it, or ``None``.

        Line items come in ``id`` order, each with ``workflowStatus`` and an empty
        ``skuQuantities``.
        """
        with self._lock:
            return self._get_order(self._connection(), po)

    def _get_order(self, conn: sqlite3.Connection, po: str) -> OrderJSON | None:
        known = conn.execute(
            "SELECT 1 FROM orders WHERE purchase_order_number = ?", (po,)
        ).fetchone()
        if known is None:
            return None
        items: list[LineItemJSON] = [
            {"id": int(i), "recipeSetId": r, "workflowStatus": s, "skuQuantities": []}
            for i, r, s in conn.execute(
                "SELECT id, recipe_set_id, workflow_status FROM line_items"
                " WHERE purchase_order_number = ? ORDER BY id",
                (po,),
            )
        ]
        return {"purchaseOrderNumber": po, "lineItems": items}

    def line_statuses(self) -> pd.DataFrame:
        """Return every line item's status, for tests to assert the state.

        Returns
        -------
        pandas.DataFrame
            Columns ``purchaseOrderNumber, recipeSetId, workflowStatus`` (text), one row per
            line item, ordered by purchase order number then line item ``id``.
        """
        with self._lock:
            rows = (
                self._connection()
                .execute(
                    "SELECT purchase_order_number, recipe_set_id, workflow_status FROM line_items"
                    " ORDER BY purchase_order_number, id"
                )
                .fetchall()
            )
        return pd.DataFrame(
            rows, columns=["purchaseOrderNumber", "recipeSetId", "workflowStatus"], dtype=str
        )

    def last_modified(self, po: str, recipe_set_id: str) -> str | None:
        """Return a line item's last-modified stamp (UTC ISO 8601), or ``None`` if absent."""
        with self._lock:
            row = (
                self._connection()
                .execute(
                    "SELECT last_modified FROM line_items"
                    " WHERE purchase_order_number = ? AND recipe_set_id = ?",
                    (po, recipe_set_id),
                )
                .fetchone()
            )
        return None if row is None else str(row[0])

    def order_last_modified(self, po: str) -> str | None:
        """Return an order's last-modification time (UTC ISO 8601), or ``None`` if absent.

        This is the time ``POST /api/orders/search`` filters on.
        """
        with self._lock:
            row = (
                self._connection()
                .execute("SELECT last_modified FROM orders WHERE purchase_order_number = ?", (po,))
                .fetchone()
            )
        return None if row is None else str(row[0])

    def order_record(self, po: str) -> dict[str, object] | None:
        """Return an order with every status and time, for tests; ``None`` if absent.

        Returns
        -------
        dict or None
            ``{"purchaseOrderNumber", "lastModified", "lineItems": [{"id", "recipeSetId",
            "workflowStatus", "lastModified"}, ...]}``, line items in ``id`` order. This is
            the sandbox's own view (``GET /_sandbox/orders/{po}``), not an answer Spectrum
            gives: no switch hides or renames anything here.
        """
        with self._lock:
            conn = self._connection()
            order = conn.execute(
                "SELECT last_modified FROM orders WHERE purchase_order_number = ?", (po,)
            ).fetchone()
            if order is None:
                return None
            items = [
                {"id": int(i), "recipeSetId": r, "workflowStatus": s, "lastModified": t}
                for i, r, s, t in conn.execute(
                    "SELECT id, recipe_set_id, workflow_status, last_modified FROM line_items"
                    " WHERE purchase_order_number = ? ORDER BY id",
                    (po,),
                )
            ]
        return {"purchaseOrderNumber": po, "lastModified": str(order[0]), "lineItems": items}

    def search(
        self,
        workflow_statuses: Collection[str],
        *,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[OrderJSON]:
        """Return the orders having a line item in one of the statuses, modified in a window.

        Parameters
        ----------
        workflow_statuses
            Statuses to match. The filter is per order: an order matches when *any* of its
            line items holds one of them.
        start, end
            Inclusive bounds on the *order's* last-modification time
            (:meth:`order_last_modified`); ``None`` is unbounded.

        Returns
        -------
        list of dict
            Whole orders (every line item, as :meth:`get_order`), by purchase order number.
        """
        statuses = sorted(set(workflow_statuses))
        if not statuses:
            return []
        low = format_timestamp(start) if start is not None else ""
        high = format_timestamp(end) if end is not None else "~"  # "~" sorts after digits
        marks = ", ".join("?" * len(statuses))
        query = (
            "SELECT l.purchase_order_number, l.id, l.recipe_set_id, l.workflow_status"  # noqa: S608 - only "?" marks
            " FROM line_items AS l JOIN orders AS o"
            " ON o.purchase_order_number = l.purchase_order_number"
            " WHERE o.last_modified >= ? AND o.last_modified <= ? AND EXISTS ("
            " SELECT 1 FROM line_items AS m"
            " WHERE m.purchase_order_number = o.purchase_order_number"
            f" AND m.workflow_status IN ({marks}))"
            " ORDER BY l.purchase_order_number, l.id"
        )
        orders: dict[str, OrderJSON] = {}
        with self._lock:
            for po, i, r, s in self._connection().execute(query, (low, high, *statuses)):
                order = orders.setdefault(
                    str(po), {"purchaseOrderNumber": str(po), "lineItems": []}
                )
                order["lineItems"].append(
                    {"id": int(i), "recipeSetId": r, "workflowStatus": s, "skuQuantities": []}
                )
        return list(orders.values())

    # -- writing ---------------------------------------------------------------------------

    def apply_status_update(self, po: str, line_items: Sequence[Mapping[str, str]]) -> list[str]:
        """Set line items' statuses, all or none, in one transaction.

        Parameters
        ----------
        po
            Purchase order number, matched exactly.
        line_items
            ``{"recipeSetReadableId": ..., "workflowStatus": ...}`` mappings, as in the
            request body. Ids are matched exactly; when an id comes twice, the last wins.

        Returns
        -------
        list of str
            The ids not found on that order (all of them when the order does not exist),
            each once, in request order. When it is not empty nothing was changed.
            Otherwise the updated line items and the order get the clock's time as their
            last modification, even where the status was already the one asked for.

        Raises
        ------
        ValueError
            When a status is not one of Spectrum's; nothing is changed.
        """
        wanted = [(i["recipeSetReadableId"], i["workflowStatus"]) for i in line_items]
        bad = sorted({s for _, s in wanted if s not in WORKFLOW_STATUSES})
        if bad:
            raise ValueError(f"unknown workflow status(es): {', '.join(bad)}")
        now = format_timestamp(self._clock())
        with self._transaction() as conn:
            present = {
                str(r)
                for (r,) in conn.execute(
                    "SELECT recipe_set_id FROM line_items WHERE purchase_order_number = ?", (po,)
                )
            }
            missing = list(dict.fromkeys(r for r, _ in wanted if r not in present))
            if missing:
                return missing
            conn.executemany(
                "UPDATE line_items SET workflow_status = ?, last_modified = ?"
                " WHERE purchase_order_number = ? AND recipe_set_id = ?",
                [(status, now, po, rid) for rid, status in wanted],
            )
            conn.execute(
                "UPDATE orders SET last_modified = ? WHERE purchase_order_number = ?", (now, po)
            )
        return []

    def stage_order(
        self,
        po: str,
        statuses: Mapping[str, str],
        *,
        modified: datetime | None = None,
    ) -> list[str]:
        """Set line items' statuses and the order's time directly, all or none (tests only).

        This is how a test stages "someone else changed it since": unlike a status update
        it can put any time on the order, in the past or the future.

        Parameters
        ----------
        po
            Purchase order number, matched exactly.
        statuses
            ``recipeSetId`` -> new ``workflowStatus``; may be empty to move only the time.
        modified
            The time to record on those line items and on the order (naive means UTC);
            the clock's now when omitted.

        Returns
        -------
        list of str
            The ids not on that order, in the mapping's order. When it is not empty,
            nothing was changed.

        Raises
        ------
        KeyError
            When the order does not exist.
        ValueError
            When a status is not one of Spectrum's; nothing is changed.
        """
        bad = sorted({s for s in statuses.values() if s not in WORKFLOW_STATUSES})
        if bad:
            raise ValueError(f"unknown workflow status(es): {', '.join(bad)}")
        stamp = format_timestamp(modified if modified is not None else self._clock())
        with self._transaction() as conn:
            known = conn.execute(
                "SELECT 1 FROM orders WHERE purchase_order_number = ?", (po,)
            ).fetchone()
            if known is None:
                raise KeyError(po)
            present = {
                str(r)
                for (r,) in conn.execute(
                    "SELECT recipe_set_id FROM line_items WHERE purchase_order_number = ?", (po,)
                )
            }
            missing = [r for r in statuses if r not in present]
            if missing:
                return missing
            conn.executemany(
                "UPDATE line_items SET workflow_status = ?, last_modified = ?"
                " WHERE purchase_order_number = ? AND recipe_set_id = ?",
                [(status, stamp, po, rid) for rid, status in statuses.items()],
            )
            conn.execute(
                "UPDATE orders SET last_modified = ? WHERE purchase_order_number = ?", (stamp, po)
            )
        return []


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _parse_seed_row(row: Mapping[str, object]) -> _SeedRow:
    po = _text(row.get("purchaseOrderNumber"))
    rid = _text(row.get("recipeSetId"))
    status = _text(row.get("workflowStatus"))
    if not po:
        raise ValueError("blank purchaseOrderNumber")
    if not rid:
        raise ValueError("blank recipeSetId")
    if status not in WORKFLOW_STATUSES:
        raise ValueError(f"unknown workflowStatus {status!r}")
    line_item_id: int | None = None
    raw_id = row.get("lineItemId")
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        line_item_id = raw_id
    elif _text(raw_id):
        try:
            line_item_id = int(_text(raw_id))
        except ValueError:
            raise ValueError(f"lineItemId {raw_id!r} is not an integer") from None
    modified: str | None = None
    raw_time = row.get("lastModified")
    if isinstance(raw_time, datetime):
        modified = format_timestamp(raw_time)
    elif _text(raw_time):
        try:
            modified = format_timestamp(datetime.fromisoformat(_text(raw_time)))
        except ValueError:
            raise ValueError(f"lastModified {raw_time!r} is not ISO 8601") from None
    return _SeedRow(po, rid, status, line_item_id, modified)
