"""Issue 11, the client's part: base URLs, token leaks, bounded answers, header-safe tokens,
missing ids parsed before any cut.

Every test goes over real HTTP on 127.0.0.1 (the small raw-socket servers below, which stop
by themselves) or through the public constructors; nothing in the client is mocked.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import secrets
import socket
import threading
import time
import traceback
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from spectrum_tools import SpectrumClient
from spectrum_tools.cli import main
from spectrum_tools.environments import custom_environment, load_environments
from spectrum_tools.errors import (
    ConfigError,
    InsecureURLError,
    NotFoundError,
    SpectrumError,
    TransportError,
    UnexpectedResponseError,
)
from spectrum_tools.urls import environment_key, parse_base_url

PO = "HA-US-DEV00011101"


def _body(*ids: str) -> Any:
    return {
        "purchaseOrderNumber": PO,
        "lineItems": [{"recipeSetReadableId": i, "workflowStatus": "completed"} for i in ids],
    }


def _cli(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue() + err.getvalue()


# --------------------------------------------------------------------------- a raw server


@dataclass
class Seen:
    """One request as the server read it."""

    method: str
    path: str
    headers: dict[str, str]


@dataclass
class RawServer:
    """A one-purpose HTTP server on 127.0.0.1 that stops by itself.

    ``answer(conn, seen)`` writes whatever it likes to the socket. The server accepts at
    most ``max_connections`` connections and lives at most ``lifetime_s`` seconds; each
    connection is closed when ``answer`` returns or when the test stops the server.
    """

    answer: Callable[[socket.socket, Seen, threading.Event], None]
    max_connections: int = 4
    lifetime_s: float = 20.0
    seen: list[Seen] = field(default_factory=list)
    stopped: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self.base_url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        deadline = time.monotonic() + self.lifetime_s
        accepted = 0
        with self._sock:
            while not self.stopped.is_set() and time.monotonic() < deadline:
                if accepted >= self.max_connections:
                    break
                try:
                    conn, _ = self._sock.accept()
                except OSError:
                    continue
                accepted += 1
                thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
                self._threads.append(thread)
                thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(self.lifetime_s)
        with conn, contextlib.suppress(OSError):
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            first, *lines = head.decode("latin-1").split("\r\n")
            pairs = (line.partition(":") for line in lines)
            headers = {k.strip().lower(): v.strip() for k, _, v in pairs}
            length = int(headers.get("content-length", "0") or 0)
            while len(body) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                body += chunk
            method, path = [*first.split(" "), "", ""][:2]
            self.seen.append(Seen(method, path, headers))
            self.answer(conn, self.seen[-1], self.stopped)

    def stop(self) -> None:
        self.stopped.set()
        self._acceptor.join(timeout=2)
        for thread in self._threads:
            thread.join(timeout=2)


@pytest.fixture
def raw_server() -> Iterator[Callable[..., RawServer]]:
    started: list[RawServer] = []

    def make(answer: Callable[[socket.socket, Seen, threading.Event], None]) -> RawServer:
        started.append(RawServer(answer))
        return started[-1]

    yield make
    for server in started:
        server.stop()


def head(status: int, headers: dict[str, str] | None = None, length: int | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} X", "Connection: close", "Content-Type: application/json"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def replying(status: int, body: Any, headers: dict[str, str] | None = None) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()

    def answer(conn: socket.socket, seen: Seen, stop: threading.Event) -> None:
        conn.sendall(head(status, headers, len(data)) + data)

    return answer


def ok_answer(conn: socket.socket, seen: Seen, stop: threading.Event) -> None:
    replying(200, {"purchaseOrderNumber": PO, "status": "OK", "details": "Updated."})(
        conn, seen, stop
    )


# --------------------------------------------------------------------------- #9, #2: base URLs


@pytest.mark.security
@pytest.mark.parametrize(
    "url",
    [
        "https://exa mple.com",
        "https://<b>x</b>.example.com",
        "https://spectrum.example.com\"onmouseover='x'",
        "https://exa\x00mple.com",
        "https://exa\tmple.com",
        "https://exa%20mple.com",
        "https://spectrum.example.com/<script>",
    ],
)
def test_hosts_with_spaces_markup_or_control_characters_are_refused(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        SpectrumClient(url, token="tok-abcdef0123456789")
    assert "\n" not in str(info.value)
    assert "<" not in str(info.value).replace("'<'", "")  # the markup is named, not echoed


@pytest.mark.security
@pytest.mark.parametrize(
    "spelling",
    [
        "https://spectrum.example.com",
        "https://Spectrum.EXAMPLE.com",
        "https://spectrum.example.com:443",
        "HTTPS://spectrum.example.com/",
        "  https://spectrum.example.com.//  ",
    ],
)
def test_one_environment_written_differently_is_one_environment(spelling: str) -> None:
    client = SpectrumClient(spelling, token="tok-abcdef0123456789")
    assert client.environment_key == "https://spectrum.example.com"
    assert client.host == "spectrum.example.com"
    assert client.base_url == "https://spectrum.example.com"
    assert environment_key(spelling) == client.environment_key


@pytest.mark.security
def test_two_environments_behind_one_gateway_have_two_keys_and_keep_their_paths(
    raw_server: Callable[..., RawServer],
) -> None:
    server = raw_server(ok_answer)
    staging = SpectrumClient(server.base_url + "/staging/", token="tok-abcdef0123456789")
    prod = SpectrumClient(server.base_url + "/prod", token="tok-abcdef0123456789")

    prod.update_status(_body("AAAA1111"))

    assert staging.environment_key != prod.environment_key
    assert staging.host == prod.host  # the host alone cannot tell them apart
    assert prod.environment_key == server.base_url + "/prod"
    assert [s.path for s in server.seen] == ["/prod/api/order/status"]
    assert custom_environment("https://GW.example.com:443/prod/").base_url == (
        "https://gw.example.com/prod"
    )


SECRET_URLS = [
    "https://user:SECRETpw77@spectrum.example.com",
    "https://SECRETpw77@spectrum.example.com/prod",
    "https://spectrum.example.com/?token=SECRETpw77",
    "https://spectrum.example.com/prod?SECRETpw77",
    "https://spectrum.example.com/#SECRETpw77",
    "user:SECRETpw77@spectrum.example.com",
    "https://user:SECRETpw77@spectrum.example.com:99999",
    "https://spectrum.example.com/?t=SECRETpw77 x",
    "http://user:SECRETpw77@10.0.0.1",
]


@pytest.mark.security
@pytest.mark.parametrize("url", SECRET_URLS)
def test_a_refused_base_url_never_repeats_its_user_info_or_query(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_base_url(url)
    assert "SECRET" not in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError) as client_info:
        SpectrumClient(url, token="tok-abcdef0123456789")
    assert "SECRET" not in "".join(traceback.format_exception(client_info.value))


@pytest.mark.security
@pytest.mark.parametrize("url", SECRET_URLS[:4])
def test_environments_file_and_cli_refuse_a_secret_url_without_repeating_it(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "envs.toml"
    path.write_text(f'[environments.live]\nbase_url = "{url}"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"environments\.live\.base_url") as info:
        load_environments(path)
    assert "SECRET" not in str(info.value)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPECTRUM_API_TOKEN", "tok-abcdef0123456789")
    sheet = tmp_path / "s.csv"
    sheet.write_text("PO,Recipe Set ID,Status\nP1,AAAA1111,completed\n", encoding="utf-8")
    code, printed = _cli("send", str(sheet), "--base-url", url, "--yes")
    assert code == 2
    assert "SECRET" not in printed
    assert not (tmp_path / "spectrum-runs").exists()


@pytest.mark.security
def test_plain_http_stays_loopback_only_after_normalising() -> None:
    assert parse_base_url("http://LOCALHOST:80/").url == "http://localhost"
    assert parse_base_url("http://[0:0::1]:8765").url == "http://[::1]:8765"
    with pytest.raises(InsecureURLError):
        parse_base_url("http://Spectrum.Example.com:80/prod")


# --------------------------------------------------------------------------- #4: the token


def _token() -> str:
    return "tok-" + secrets.token_hex(16)


def _pieces(token: str) -> list[str]:
    return [token[i : i + 8] for i in range(len(token) - 7)]


def _leaks(text: str, token: str) -> list[str]:
    return [piece for piece in _pieces(token) if piece in text]


def _echoing(status: int, make_details: Callable[[str], str]) -> Any:
    """An answer whose ``details`` is built from the token the request carried."""

    def answer(conn: socket.socket, seen: Seen, stop: threading.Event) -> None:
        details = make_details(seen.headers.get("spectrum_api_token", ""))
        body = {"purchaseOrderNumber": PO, "status": "OK" if status < 300 else "Error"}
        replying(status, {**body, "details": details})(conn, seen, stop)

    return answer


@pytest.mark.security
@pytest.mark.parametrize("status", [200, 403, 404, 500])
@pytest.mark.parametrize("at", [480, 490, 497])
def test_a_token_straddling_the_cut_does_not_leak_in_part(
    raw_server: Callable[..., RawServer], status: int, at: int
) -> None:
    token = _token()
    server = raw_server(_echoing(status, lambda t: "x" * at + t + " tail" * 50))
    client = SpectrumClient(server.base_url, token=token)

    if status == 200:
        shown = client.update_status(_body("AAAA1111")).details
    else:
        with pytest.raises(SpectrumError) as info:
            client.update_status(_body("AAAA1111"))
        shown = str(info.value) + info.value.details  # type: ignore[attr-defined]

    assert _leaks(shown, token) == []
    assert len(shown) < 1200  # and the text is bounded


@pytest.mark.security
@pytest.mark.parametrize("status", [200, 409])
def test_any_piece_of_eight_or_more_characters_of_the_token_is_masked(
    raw_server: Callable[..., RawServer], status: int
) -> None:
    token = _token()
    server = raw_server(
        _echoing(status, lambda t: f"gateway saw {t[3:19]} and {t[-9:]} and {t[:6]}")
    )
    client = SpectrumClient(server.base_url, token=token)

    if status == 200:
        shown = client.update_status(_body("AAAA1111")).details
    else:
        with pytest.raises(NotFoundError) as info:
            client.update_status(_body("AAAA1111"))
        shown = str(info.value)

    assert _leaks(shown, token) == []
    assert "gateway saw ***" in shown


@pytest.mark.security
@pytest.mark.parametrize("code", [301, 302, 307])
def test_a_redirect_message_never_shows_user_info_or_query_of_the_location(
    raw_server: Callable[..., RawServer], code: int
) -> None:
    token = _token()
    location = f"https://admin:PWSECRET99@Elsewhere.example:8443/login?token={token}#x"
    server = raw_server(replying(code, b"", {"Location": location}))

    with pytest.raises(UnexpectedResponseError) as info:
        SpectrumClient(server.base_url, token=token).update_status(_body("AAAA1111"))

    message = str(info.value)
    assert "elsewhere.example:8443" in message
    assert "PWSECRET99" not in message
    assert "admin" not in message
    assert _leaks(message, token) == []


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc.__cause__, exc.__context__]
    while todo:
        item = todo.pop()
        if item is not None and item not in seen:
            seen.append(item)
            todo += [item.__cause__, item.__context__]
    return seen


def _hang(conn: socket.socket, seen: Seen, stop: threading.Event) -> None:
    stop.wait(5)


def _drop(conn: socket.socket, seen: Seen, stop: threading.Event) -> None:
    conn.shutdown(socket.SHUT_RDWR)


def _cut_body(conn: socket.socket, seen: Seen, stop: threading.Event) -> None:
    conn.sendall(head(200, length=400) + b'{"status": "OK", "det')


@pytest.mark.security
@pytest.mark.parametrize(
    "answer",
    [_hang, _drop, _cut_body, replying(500, {"details": "boom"}), replying(302, b"")],
    ids=["timeout", "dropped", "cut", "500", "302"],
)
def test_toolkit_errors_carry_no_exception_chain_to_the_request(
    raw_server: Callable[..., RawServer], answer: Any
) -> None:
    token = _token()
    server = raw_server(answer)
    client = SpectrumClient(server.base_url, token=token, timeout=(2.0, 0.3))

    with pytest.raises(SpectrumError) as info:
        client.update_status(_body("AAAA1111"))

    assert info.value.__cause__ is None
    assert info.value.__context__ is None
    assert _chain(info.value) == []
    assert token not in "".join(traceback.format_exception(info.value))
    assert token not in repr(vars(info.value))


@pytest.mark.security
def test_refused_connection_error_carries_no_chain() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransportError, match="refused") as info:
        SpectrumClient(f"http://127.0.0.1:{port}", token=_token()).get_order(PO)
    assert info.value.__context__ is None


# --------------------------------------------------------------------------- #5: bounded answers


def _gzip_stream(prefix: bytes, filler: bytes, megabytes: int, suffix: bytes) -> bytes:
    """A gzip body inflating to ``prefix + filler * (megabytes MB) + suffix``, built in
    pieces so the test never holds the inflated text either."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = filler * (2**20 // len(filler))
    parts = [packer.compress(prefix)]
    parts += [packer.compress(block) for _ in range(megabytes)]
    parts += [packer.compress(suffix), packer.flush()]
    return b"".join(parts)


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    prefix = json.dumps({"purchaseOrderNumber": PO, "status": "OK"})[:-1].encode()
    return _gzip_stream(prefix + b', "details": "', b"a", 300, b'"}')


def _gzipped(status: int, data: bytes, chunked: bool = False) -> Any:
    def answer(conn: socket.socket, seen: Seen, stop: threading.Event) -> None:
        headers = {"Content-Encoding": "gzip"}
        conn.sendall(head(status, headers, len(data)) + data)

    return answer


@pytest.mark.fault
@pytest.mark.timeout(60)
@pytest.mark.parametrize("status", [200, 500])
def test_a_gzip_bomb_stops_at_the_cap_without_being_held(
    raw_server: Callable[..., RawServer], gzip_bomb: bytes, status: int
) -> None:
    assert len(gzip_bomb) < 2**20  # well under a megabyte on the wire, 300 MB inflated
    server = raw_server(_gzipped(status, gzip_bomb))
    client = SpectrumClient(server.base_url, token=_token())

    tracemalloc.start()
    try:
        with pytest.raises(TransportError, match="larger than 4 MB") as info:
            client.update_status(_body("AAAA1111"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 24 * 2**20, f"peak {peak / 2**20:.0f} MB while reading a capped answer"
    assert len(str(info.value)) < 300


@pytest.mark.fault
def test_a_body_over_the_cap_without_compression_is_refused_too(
    raw_server: Callable[..., RawServer],
) -> None:
    def endless_chunks(conn: socket.socket, seen: Seen, stop: threading.Event) -> None:
        conn.sendall(head(200, {"Transfer-Encoding": "chunked"}))
        piece = b"a" * 65536
        with contextlib.suppress(OSError):
            for _ in range(64):  # 4 MB at most; the client stops after 1 MB
                conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))

    server = raw_server(endless_chunks)
    client = SpectrumClient(server.base_url, token=_token(), max_answer_bytes=2**20)

    with pytest.raises(TransportError, match="larger than 1 MB"):
        client.get_order(PO)


@pytest.mark.fault
def test_search_answers_have_their_own_larger_cap_and_gzip_still_works(
    raw_server: Callable[..., RawServer],
) -> None:
    orders = [{"purchaseOrderNumber": f"PO-{n}", "lineItems": []} for n in range(100)]
    small = gzip.compress(json.dumps(orders).encode())
    big = _gzip_stream(b'[{"purchaseOrderNumber": "', b"P", 3, b'"}]')
    answers = iter([small, big, small])
    server = raw_server(lambda c, s, e: _gzipped(200, next(answers))(c, s, e))
    client = SpectrumClient(
        server.base_url, token=_token(), max_answer_bytes=2**10, max_search_bytes=2 * 2**20
    )

    assert len(json.dumps(orders)) > 2**10
    assert client.search_orders("2024-01-01T00:00:00Z", ["completed"]) == orders
    with pytest.raises(TransportError, match="larger than 2 MB"):
        client.search_orders("2024-01-01T00:00:00Z", ["completed"])
    with pytest.raises(TransportError, match="larger than 1,024 bytes"):
        client.get_order(PO)  # the order read keeps the small cap


def _trickle(where: str) -> Any:
    """Send a complete answer one byte at a time, 20 ms apart, until the client leaves."""
    data = json.dumps({"purchaseOrderNumber": PO, "status": "OK", "details": "x" * 4000})
    raw = head(200, length=len(data)) + data.encode()
    start = 0 if where == "head" else len(head(200, length=len(data)))

    def answer(conn: socket.socket, seen: Seen, stop: threading.Event) -> None:
        conn.sendall(raw[:start])
        with contextlib.suppress(OSError):
            for byte in raw[start:]:
                conn.sendall(bytes([byte]))
                if stop.wait(0.02):
                    return

    return answer


@pytest.mark.fault
@pytest.mark.timeout(30)
@pytest.mark.parametrize("where", ["head", "body"])
def test_a_trickling_server_cannot_hold_a_call_past_the_deadline(
    raw_server: Callable[..., RawServer], where: str
) -> None:
    server = raw_server(_trickle(where))
    client = SpectrumClient(server.base_url, token=_token(), timeout=(1.0, 1.0), deadline=1.5)

    started = time.monotonic()
    with pytest.raises(TransportError, match=r"1\.5 s deadline") as info:
        client.update_status(_body("AAAA1111"))
    took = time.monotonic() - started

    assert 1.4 < took < 2.5, f"the call took {took:.1f} s with a 1.5 s deadline"
    assert isinstance(info.value, ConnectionError)  # what the engine retries like a timeout


@pytest.mark.fault
@pytest.mark.timeout(60)
def test_a_send_retries_an_attempt_over_the_deadline_and_then_succeeds(
    raw_server: Callable[..., RawServer], tmp_path: Path
) -> None:
    from spectrum_tools import send_updates

    attempts: list[int] = []

    def first_trickles(conn: socket.socket, seen: Seen, stop: threading.Event) -> None:
        attempts.append(1)
        (_trickle("body") if len(attempts) == 1 else ok_answer)(conn, seen, stop)

    server = raw_server(first_trickles)
    client = SpectrumClient(server.base_url, token=_token(), timeout=(1.0, 1.0), deadline=1.0)
    rows = pd.DataFrame(
        {
            "purchaseOrderNumber": [PO],
            "recipeSetReadableId": ["AAAA1111"],
            "workflowStatus": ["completed"],
        }
    )

    results = send_updates(
        rows,
        client,
        max_per_minute=6000,
        workers=1,
        max_attempts=3,
        progress=False,
        runs_dir=tmp_path / "runs",
        read_back=False,  # the raw server answers status updates only
    )

    assert results["outcome"].tolist() == ["updated"]
    assert results["attempts"].tolist() == [2]


@pytest.mark.fault
def test_details_kept_on_replies_and_errors_are_bounded(
    raw_server: Callable[..., RawServer],
) -> None:
    huge = "d" * 2**20
    answers = iter(
        [
            replying(200, {"purchaseOrderNumber": PO, "status": "OK", "details": huge}),
            replying(500, {"details": huge}),
            replying(502, b"<html>" + b"z" * 2**20 + b"</html>"),
        ]
    )
    server = raw_server(lambda c, s, e: next(answers)(c, s, e))
    client = SpectrumClient(server.base_url, token=_token())

    assert len(client.update_status(_body("AAAA1111")).details) <= 500
    for _ in range(2):
        with pytest.raises(SpectrumError) as info:
            client.update_status(_body("AAAA1111"))
        assert len(info.value.details) <= 500  # type: ignore[attr-defined]
        assert len(str(info.value)) < 600


# --------------------------------------------------------------------------- #6: header-safe token


@pytest.mark.security
@pytest.mark.parametrize(
    "token",
    [
        "tok\u2019abcdef0123",
        "tok-abc\u00a0def0123",
        "tok-\u00e9t\u00e9-0123",
        "tok-ab\x00cd",
        "t\x7f",
    ],
)
def test_a_token_an_http_header_cannot_carry_is_refused_when_the_client_is_made(
    token: str,
) -> None:
    with pytest.raises(ConfigError, match="HTTP header") as info:
        SpectrumClient("https://spectrum.example.com", token=token)
    assert token not in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.security
def test_the_cli_refuses_such_a_token_with_exit_2_and_starts_no_run(
    raw_server: Callable[..., RawServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = raw_server(ok_answer)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPECTRUM_API_TOKEN", "tok\u2019abcdef0123456789")
    sheet = tmp_path / "s.csv"
    sheet.write_text("PO,Recipe Set ID,Status\nP1,AAAA1111,completed\n", encoding="utf-8")

    code, printed = _cli("send", str(sheet), "--base-url", server.base_url, "--yes")

    assert code == 2
    assert "HTTP header" in printed
    assert "Traceback" not in printed and "UnicodeEncodeError" not in printed
    assert "abcdef0123456789" not in printed
    assert server.seen == []
    assert not any((tmp_path / "spectrum-runs").glob("**/*.*"))


# --------------------------------------------------------------------------- #7: missing ids


@pytest.mark.fault
def test_every_missing_id_is_reported_even_when_the_details_are_cut(
    raw_server: Callable[..., RawServer],
) -> None:
    missing = [f"M{n:07d}" for n in range(80)]
    text = f"Unable to find recipeSetReadableId(s): {', '.join(missing)}."
    server = raw_server(
        replying(404, {"purchaseOrderNumber": PO, "status": "Error", "details": text})
    )
    client = SpectrumClient(server.base_url, token=_token())

    with pytest.raises(NotFoundError) as info:
        client.update_status(_body("REAL0001", *missing))

    assert info.value.missing_ids == tuple(missing)
    assert len(info.value.details) <= 500  # the kept text is still bounded
