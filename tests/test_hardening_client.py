"""Issue 11, the client's part: base URLs, token leaks, bounded answers, header-safe tokens,
missing ids parsed before any cut.

Every test goes over real HTTP on 127.0.0.1 (the small raw-socket servers below, which stop
by themselves) or through the public constructors; nothing in the client is mocked.
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from spectrum_tools import SpectrumClient
from spectrum_tools.cli import main
from spectrum_tools.environments import custom_environment, load_environments
from spectrum_tools.errors import (
    ConfigError,
    InsecureURLError,
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
