"""Raw-socket HTTP servers that misbehave on purpose, for the fault and security suites.

Every server binds ``127.0.0.1`` on a free port, serves each connection in its own daemon
thread, and stops by itself: it accepts at most ``max_connections`` connections and lives
at most ``lifetime_s`` seconds, and no behaviour holds a connection longer than
``max_hold_s``. Tests still stop servers explicitly (the ``fault_server`` fixture does).

A *behaviour* is a callable ``behaviour(hit) -> Action`` called once per request, with the
request already read off the socket; ``hit.n`` counts requests from 0. The server records
every request as a :class:`Hit`: the purchase order in the body, whether the token header
came along, and what the server managed to answer (``delivered``), so a test can compare
what the server did with what the client reports.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from spectrum_tools.engine import SendOptions
from spectrum_tools.errors import RunStoppedError
from spectrum_tools.journal import Journal
from spectrum_tools.runs import Recording, send_plan

TOKEN_HEADER = "SPECTRUM_API_TOKEN"
_MAX_HEAD = 64 * 1024
_MAX_BODY = 5 * 1024 * 1024


@dataclasses.dataclass
class Hit:
    """One request as the server read it, and what it answered."""

    n: int
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    purchase_order: str | None
    attempt: int = 1  # how many requests for this purchase order so far, this one included
    delivered: int | None = None  # status code of an answer sent in full, else None
    delivered_ok: bool = False  # a complete 2xx whose JSON says status OK

    @property
    def token(self) -> str | None:
        return self.headers.get(TOKEN_HEADER.lower())


# --------------------------------------------------------------------------- actions


@dataclasses.dataclass(frozen=True)
class Reply:
    """A complete HTTP response. ``body`` is JSON-encoded unless it is bytes."""

    status: int
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclasses.dataclass(frozen=True)
class Cut:
    """Headers promising the whole body, then only ``fraction`` of it, then close."""

    reply: Reply
    fraction: float = 0.5


@dataclasses.dataclass(frozen=True)
class Reset:
    """Abort the connection with a TCP RST (SO_LINGER 0), after reading the request."""


@dataclasses.dataclass(frozen=True)
class Close:
    """Close the connection cleanly without answering."""


@dataclasses.dataclass(frozen=True)
class Hang:
    """Say nothing for ``seconds`` (bounded by the server's ``max_hold_s``), then close."""

    seconds: float = 10.0


@dataclasses.dataclass(frozen=True)
class Trickle:
    """Send ``reply`` ``chunk`` bytes at a time, ``delay`` apart; stop after ``limit`` bytes."""

    reply: Reply
    chunk: int = 8
    delay: float = 0.02
    limit: int | None = None


Action = Reply | Cut | Reset | Close | Hang | Trickle
Behaviour = Callable[[Hit], Action]


def ok_body(hit: Hit) -> dict[str, str]:
    """Spectrum's documented 200 answer for the order in ``hit``."""
    ids = _ids(hit)
    return {
        "purchaseOrderNumber": hit.purchase_order or "",
        "status": "OK",
        "details": f"Updated workflow status for recipeSetReadableId(s): {', '.join(ids)}.",
    }


def ok(hit: Hit) -> Reply:
    """The documented success answer."""
    return Reply(200, ok_body(hit))


def error_body(hit: Hit, status: int) -> dict[str, str]:
    po = hit.purchase_order or ""
    return {
        "purchaseOrderNumber": po,
        "status": "Error",
        "details": f"Update status for {po} encountered an error. ({status})",
    }


def encode(reply: Reply) -> bytes:
    """Raw HTTP/1.1 response bytes with ``Connection: close``."""
    body = reply.body
    data = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    lines = [f"HTTP/1.1 {reply.status} X", f"Content-Length: {len(data)}", "Connection: close"]
    if not isinstance(body, bytes) and body is not None:
        lines.append("Content-Type: application/json")
    lines += [f"{k}: {v}" for k, v in reply.headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data


def _ids(hit: Hit) -> list[str]:
    try:
        items = json.loads(hit.body).get("lineItems", [])
        return [str(i["recipeSetReadableId"]) for i in items]
    except (ValueError, AttributeError, KeyError, TypeError):
        return []


def _is_ok(reply: Reply) -> bool:
    return (
        200 <= reply.status < 300
        and isinstance(reply.body, dict)
        and str(reply.body.get("status", "")).upper() == "OK"
    )


# --------------------------------------------------------------------------- the server


class FaultServer:
    """A misbehaving HTTP server on ``127.0.0.1`` (see the module docstring).

    Parameters
    ----------
    behaviour
        ``behaviour(hit) -> Action``, called once per request.
    max_connections
        Connections accepted at most; later ones are refused (the listener closes).
    lifetime_s
        The server stops accepting after this many seconds.
    max_hold_s
        No connection is held open longer than this (hangs and trickles included).
    """

    def __init__(
        self,
        behaviour: Behaviour,
        *,
        max_connections: int = 64,
        lifetime_s: float = 30.0,
        max_hold_s: float = 5.0,
    ) -> None:
        self.behaviour = behaviour
        self.hits: list[Hit] = []
        self.connections = 0
        self.max_connections = max_connections
        self.max_hold_s = max_hold_s
        self._deadline = time.monotonic() + lifetime_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self.port = int(self._sock.getsockname()[1])
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True, name="fault-accept")
        self._acceptor.start()

    # -- what tests read --------------------------------------------------------------

    def hits_for(self, purchase_order: str) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if h.purchase_order == purchase_order]

    def answered_ok(self, purchase_order: str) -> bool:
        """Whether the server delivered a complete success answer for this order."""
        return any(h.delivered_ok for h in self.hits_for(purchase_order))

    def tokens_seen(self) -> list[str | None]:
        with self._lock:
            return [h.token for h in self.hits]

    # -- life cycle -------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._sock.close()
        self._acceptor.join(timeout=2)
        for thread in list(self._threads):
            thread.join(timeout=2)

    def __enter__(self) -> FaultServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- serving ----------------------------------------------------------------------

    def _accept(self) -> None:
        try:
            while not self._stop.is_set() and time.monotonic() < self._deadline:
                if self.connections >= self.max_connections:
                    break
                try:
                    conn, _ = self._sock.accept()
                except OSError:  # timeout, or closed by stop()
                    continue
                self.connections += 1
                thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
                self._threads.append(thread)
                thread.start()
        finally:
            with contextlib.suppress(OSError):
                self._sock.close()

    def _serve(self, conn: socket.socket) -> None:
        started = time.monotonic()
        conn.settimeout(self.max_hold_s)
        try:
            with conn:
                hit = self._read(conn)
                if hit is None:
                    return
                action = self.behaviour(hit)
                self._act(conn, hit, action, started)
        except OSError:
            return

    def _read(self, conn: socket.socket) -> Hit | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk or len(data) > _MAX_HEAD:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        first, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = min(int(headers.get("content-length", "0") or 0), _MAX_BODY)
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        method, path, _ = [*first.split(" ", 2), "", ""][:3]
        po: str | None = None
        with contextlib.suppress(ValueError, AttributeError):
            value = json.loads(body).get("purchaseOrderNumber")
            po = value if isinstance(value, str) else None
        with self._lock:
            attempt = 1 + sum(h.purchase_order == po for h in self.hits)
            hit = Hit(len(self.hits), method, path, headers, body, po, attempt)
            self.hits.append(hit)
        return hit

    def _act(self, conn: socket.socket, hit: Hit, action: Action, started: float) -> None:
        hold_until = started + self.max_hold_s
        if isinstance(action, Reply):
            # Marked before sending: the client may act on the answer before sendall returns.
            hit.delivered, hit.delivered_ok = action.status, _is_ok(action)
            try:
                conn.sendall(encode(action))
            except OSError:
                hit.delivered, hit.delivered_ok = None, False
                raise
            _drain(conn)
        elif isinstance(action, Cut):
            raw = encode(action.reply)
            body_len = len(raw) - raw.index(b"\r\n\r\n") - 4
            keep = len(raw) - body_len + int(body_len * action.fraction)
            conn.sendall(raw[:keep])
        elif isinstance(action, Reset):
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif isinstance(action, Close):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        elif isinstance(action, Hang):
            self._stop.wait(max(0.0, min(started + action.seconds, hold_until) - time.monotonic()))
        elif isinstance(action, Trickle):
            raw = encode(action.reply)
            limit = len(raw) if action.limit is None else min(action.limit, len(raw))
            sent = 0
            try:
                while sent < limit and time.monotonic() < hold_until and not self._stop.is_set():
                    piece = raw[sent : min(sent + action.chunk, limit)]
                    if sent + len(piece) == len(raw):  # the last byte: the answer is complete
                        hit.delivered = action.reply.status
                        hit.delivered_ok = _is_ok(action.reply)
                    conn.sendall(piece)
                    sent += len(piece)
                    if sent < limit:
                        self._stop.wait(action.delay)
            except OSError:
                hit.delivered, hit.delivered_ok = None, False
                raise
            if sent == len(raw):
                _drain(conn)
        else:  # pragma: no cover - a test bug
            raise TypeError(f"unknown action {action!r}")


def _drain(conn: socket.socket) -> None:
    """Wait briefly for the client to close first, so a complete answer is not reset."""
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(0.5)
        while conn.recv(4096):
            pass


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def fault_servers(*behaviours: Behaviour, **options: Any) -> Iterator[list[FaultServer]]:
    """Start one server per behaviour; stop them all on exit."""
    servers = [FaultServer(b, **options) for b in behaviours]
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


# --------------------------------------------------------------------------- runs and checks
#
# Shared by the fault and property suites: send a plan with fast options through the
# journal (as send_updates does), then check what a user relies on against what the
# server actually did.

FAST_OPTIONS: dict[str, Any] = {
    "max_per_minute": 60_000.0,
    "workers": 2,
    "max_attempts": 3,
    "backoff_s": 0.01,
    "backoff_max_s": 0.05,
    "throttle_pause_s": 0.02,
    "retry_after_max_s": 0.3,
    "max_throttle_retries": 2,
}
FINAL_OUTCOMES = frozenset(
    {"updated", "partial", "not_found", "failed", "invalid", "pending", "skipped"}
)
_COMPARED = [
    "purchaseOrderNumber",
    "outcome",
    "http_status",
    "attempts",
    "missing_ids",
    "line_count",
    "source_rows",
]


def update_rows(n_orders: int, lines: int = 2, prefix: str = "PO-F") -> Any:
    """A frame of ``n_orders`` orders with ``lines`` distinct line items each."""
    import pandas as pd

    return pd.DataFrame(
        {
            "purchaseOrderNumber": [
                f"{prefix}{o:04d}" for o in range(n_orders) for _ in range(lines)
            ],
            "recipeSetReadableId": [
                f"L{o:03d}X{k:03d}" for o in range(n_orders) for k in range(lines)
            ],
            "workflowStatus": ["completed"] * (n_orders * lines),
        }
    )


def run_journaled(
    plan: Any,
    client: Any,
    runs_dir: Any,
    *,
    stop: threading.Event | None = None,
    observers: Sequence[Any] = (),
    read_back: bool = False,
    **options: Any,
) -> Any:
    """Send ``plan`` with :data:`FAST_OPTIONS` (overridable) as a journaled run.

    The write path itself: Spectrum's current state is not read first unless
    ``read_back=True`` (fault servers answer status updates only, and these tests count
    status requests). Returns the results frame with ``attrs`` ``stopped``, ``run_id`` and
    ``journal``; a run that stopped by itself (401/403, no answer) is returned too, not raised.
    """
    opts = SendOptions(**{**FAST_OPTIONS, **options})
    try:
        return send_plan(
            plan,
            client,
            opts,
            recording=Recording(runs_dir=runs_dir),
            read_back=read_back,
            progress=False,
            stop=stop,
            observers=observers,
        )
    except RunStoppedError as exc:
        return exc.results


class ServerView:
    """What a server did, per purchase order: requests received and complete 200 OKs."""

    def __init__(self, ok: Callable[[str], bool], count: Callable[[str], int] | None) -> None:
        self.ok = ok
        self.count = count

    @classmethod
    def of(cls, server: FaultServer, *, sees_every_attempt: bool = True) -> ServerView:
        count = (lambda po: len(server.hits_for(po))) if sees_every_attempt else None
        return cls(server.answered_ok, count)

    @classmethod
    def of_sandbox(cls, sandbox: Any) -> ServerView:
        records = [r for r in sandbox.requests() if r["endpoint"] == "order-status"]

        def ok(po: str) -> bool:
            return any(r["purchaseOrderNumber"] == po and r["status"] == 200 for r in records)

        def count(po: str) -> int:
            return sum(r["purchaseOrderNumber"] == po for r in records)

        # Requests the sandbox refuses before reading them (rate limited) carry no PO.
        every_po_known = all(r["purchaseOrderNumber"] is not None for r in records)
        return cls(ok, count if every_po_known else None)


def check_run(results: Any, plan: Any, server: ServerView, *, finished: bool = True) -> None:
    """The promises every run keeps, whatever the server did.

    * every order of the plan has exactly one row, with a final outcome;
    * a ``pending`` order was never answered 200 by the server (sent and reported unsent);
    * an ``updated`` order was answered 200 by the server;
    * ``attempts`` is the number of requests the server received for the order;
    * when the run went to the end (``finished``), nothing is left ``pending``.
    """
    pos = results["purchaseOrderNumber"].tolist()
    expected = [r.purchase_order for r in plan.requests()]
    expected += plan.set_aside["purchaseOrderNumber"].tolist()
    assert sorted(pos) == sorted(expected), "every order exactly once"
    outcomes = dict(zip(pos, results["outcome"], strict=True))
    assert set(outcomes.values()) <= FINAL_OUTCOMES, set(outcomes.values())
    attempts = dict(zip(pos, results["attempts"], strict=True))
    for po in (r.purchase_order for r in plan.requests()):
        outcome = outcomes[po]
        if outcome == "pending":
            assert not server.ok(po), f"{po}: answered 200 by the server but reported pending"
        if outcome == "updated":
            assert server.ok(po), f"{po}: reported updated but the server never answered 200"
        if server.count is not None:
            assert attempts[po] == server.count(po), (
                f"{po}: results say {attempts[po]} attempts, the server got {server.count(po)}"
            )
    if finished:
        assert "pending" not in outcomes.values(), results[["purchaseOrderNumber", "outcome"]]


def check_journal(results: Any, runs_dir: Any) -> Any:
    """The journal holds the same final outcome, status and attempts per order as ``results``.

    Returns the :class:`~spectrum_tools.journal.RunRecord`.
    """
    run_id = results.attrs.get("run_id")
    assert run_id is not None, "the run was not journaled"
    with Journal.existing(runs_dir) as journal:
        record = journal.load_run(run_id)
    mine = results[_COMPARED].sort_values("purchaseOrderNumber").reset_index(drop=True)
    theirs = record.results[_COMPARED].sort_values("purchaseOrderNumber").reset_index(drop=True)
    mine_rows = mine.astype(str).to_numpy().tolist()
    theirs_rows = theirs.astype(str).to_numpy().tolist()
    assert mine_rows == theirs_rows, (mine.to_string(), theirs.to_string())
    per_order = record.attempts.groupby("purchaseOrderNumber").size().to_dict()
    for po, n in zip(results["purchaseOrderNumber"], results["attempts"], strict=True):
        assert per_order.get(po, 0) == n, f"{po}: journal logged {per_order.get(po, 0)} attempts"
    return record


# --------------------------------------------------------------------------- forged workbooks
#
# Workbooks written byte by byte, for what openpyxl will not write: formulas with cached
# values, and zip bombs (an entry whose deflate stream inflates to gigabytes, built from
# one repeated compressed block so neither the disk nor the test pays for the gigabytes).

_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_OFFICE = "application/vnd.openxmlformats-officedocument.spreadsheetml"


def _zip(entries: list[tuple[str, bytes, int, int, int]]) -> bytes:
    """A zip archive from ``(name, data, crc32, declared size, method)`` entries."""
    out, central = bytearray(), bytearray()
    for name, data, crc, size, method in entries:
        raw = name.encode()
        offset = len(out)
        out += struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(data), size, len(raw), 0
        )
        out += raw + data
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            20,
            20,
            0,
            method,
            0,
            0x21,
            crc,
            len(data),
            size,
            len(raw),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        central += raw
    start = len(out)
    out += central
    out += struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), start, 0
    )
    return bytes(out)


def _stored(name: str, data: bytes) -> tuple[str, bytes, int, int, int]:
    return (name, data, zlib.crc32(data), len(data), 0)


def _package(sheets: Sequence[tuple[str, str]]) -> list[tuple[str, bytes, int, int, int]]:
    """The fixed parts of a workbook: ``sheets`` is ``(name, state)`` per sheet."""
    overrides = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{_OFFICE}.worksheet+xml"/>'
        for i in range(1, len(sheets) + 1)
    )
    types = (
        '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
        'package/2006/content-types"><Default Extension="rels" ContentType="application/'
        'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
        f'ContentType="application/xml"/><Override PartName="/xl/workbook.xml" '
        f'ContentType="{_OFFICE}.sheet.main+xml"/>{overrides}</Types>'
    )
    rels = (
        f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{_PKG_NS}">'
        f'<Relationship Id="rId1" Type="{_REL_NS}/officeDocument" Target="xl/workbook.xml"/>'
        "</Relationships>"
    )
    listed = "".join(
        f'<sheet name="{name}" sheetId="{i}" r:id="rId{i}"'
        + (f' state="{state}"' if state != "visible" else "")
        + "/>"
        for i, (name, state) in enumerate(sheets, start=1)
    )
    book = (
        f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{_NS}" xmlns:r="{_REL_NS}">'
        f"<sheets>{listed}</sheets></workbook>"
    )
    book_rels = "".join(
        f'<Relationship Id="rId{i}" Type="{_REL_NS}/worksheet" Target="worksheets/sheet{i}.xml"/>'
        for i in range(1, len(sheets) + 1)
    )
    book_rels = (
        f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{_PKG_NS}">'
        f"{book_rels}</Relationships>"
    )
    return [
        _stored("[Content_Types].xml", types.encode()),
        _stored("_rels/.rels", rels.encode()),
        _stored("xl/workbook.xml", book.encode()),
        _stored("xl/_rels/workbook.xml.rels", book_rels.encode()),
    ]


def _sheet_head() -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{_NS}"><sheetData>'.encode()


def inline_row(*cells: str) -> str:
    """One ``<row>`` of inline-string cells (text is XML-escaped)."""
    from xml.sax.saxutils import escape

    return (
        "<row>"
        + "".join(f'<c t="inlineStr"><is><t>{escape(c)}</t></is></c>' for c in cells)
        + "</row>"
    )


def forged_xlsx(sheets: Sequence[tuple[str, str, str]]) -> bytes:
    """A workbook from ``(name, state, rows XML)`` per sheet, ``state`` visible/hidden/veryHidden.

    ``rows XML`` is the inside of ``<sheetData>``, e.g. built with :func:`inline_row`, or
    cells such as ``<c r="A2" t="str"><f>UPPER("po1")</f><v>PO1</v></c>`` (a formula with
    its cached value, as Excel saves it).
    """
    parts = _package([(name, state) for name, state, _ in sheets])
    for i, (_, _, rows) in enumerate(sheets, start=1):
        xml = _sheet_head() + rows.encode() + b"</sheetData></worksheet>"
        parts.append(_stored(f"xl/worksheets/sheet{i}.xml", xml))
    return _zip(parts)


def zip_bomb(inflated_mb: int, *, declared_mb: int | None = None) -> bytes:
    """An .xlsx whose one sheet inflates to ``inflated_mb`` MiB of a single 'A...' cell.

    The sheet's deflate stream is one 1 MiB block compressed once and repeated (each
    block starts afresh after a full flush, so the repetition is a valid stream): a
    2.5 GB sheet costs about 2.5 MB of bytes. ``declared_mb`` makes the zip directory lie
    about the inflated size (default: it tells the truth).
    """

    def deflated(data: bytes, mode: int) -> bytes:
        packer = zlib.compressobj(9, zlib.DEFLATED, -15)
        return packer.compress(data) + packer.flush(mode)

    head = _sheet_head() + b'<row><c t="inlineStr"><is><t>'
    tail = b"</t></is></c></row></sheetData></worksheet>"
    block = b"A" * (1 << 20)
    packed_block = deflated(block, zlib.Z_FULL_FLUSH)
    stream = deflated(head, zlib.Z_FULL_FLUSH) + packed_block * inflated_mb
    stream += deflated(tail, zlib.Z_FINISH)
    crc = zlib.crc32(head)
    block_crc_state = crc
    for _ in range(inflated_mb):
        block_crc_state = zlib.crc32(block, block_crc_state)
    crc = zlib.crc32(tail, block_crc_state)
    size = len(head) + len(block) * inflated_mb + len(tail)
    declared = size if declared_mb is None else declared_mb << 20
    if declared >= 1 << 32:
        raise ValueError("keep the declared size under 4 GiB (no zip64 here)")
    parts = _package([("Updates", "visible")])
    parts.append(("xl/worksheets/sheet1.xml", stream, crc, declared, 8))
    return _zip(parts)
