"""Raw HTTP servers on plain sockets, for tests of the client's request shape and of retries.

They answer whatever a test scripts, byte for byte (127.0.0.1 only, a free port).
"""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
from collections.abc import Callable

__all__ = ["MakeRaw", "RawRequest", "RawServer", "http_response"]


@dataclasses.dataclass
class RawRequest:
    """One request as a raw server read it off the socket: header names keep their case."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


def http_response(status: int, body: object = None, headers: dict[str, str] | None = None) -> bytes:
    """Raw HTTP/1.1 response bytes; ``body`` is JSON-encoded unless it is bytes."""
    data = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(data)}", "Connection: close"]
    if not isinstance(body, bytes) and body is not None:
        lines.append("Content-Type: application/json")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


class RawServer:
    """An HTTP server on a plain socket (127.0.0.1, free port) that records every request.

    ``respond(request, n)`` (``n`` counts requests from 0) returns the response bytes,
    ``b""`` to close the connection without answering, or ``None`` to never answer.
    """

    def __init__(self, respond: Callable[[RawRequest, int], bytes | None]) -> None:
        self.respond = respond
        self.requests: list[RawRequest] = []
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self.port = int(self._sock.getsockname()[1])
        self.base_url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:  # timeout, or closed by stop()
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            first, *lines = head.decode("latin-1").split("\r\n")
            headers = [(k, v.strip()) for k, _, v in (line.partition(":") for line in lines)]
            length = int(next((v for k, v in headers if k.lower() == "content-length"), "0"))
            while len(body) < length:
                body += conn.recv(65536)
            method, path, _ = first.split(" ", 2)
            request = RawRequest(method, path, headers, body)
            self.requests.append(request)
            answer = self.respond(request, len(self.requests) - 1)
            if answer is None:
                self._stop.wait()
            else:
                conn.sendall(answer)

    def stop(self) -> None:
        self._stop.set()
        self._sock.close()


MakeRaw = Callable[[Callable[[RawRequest, int], bytes | None]], RawServer]
