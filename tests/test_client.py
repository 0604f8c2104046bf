"""The Spectrum client: request shape, configuration, URL safety, error mapping, secrecy.

Tier 2 and 3 of the test plan: every request goes over real HTTP on 127.0.0.1, either to a
raw-socket server (``make_raw_server`` in ``conftest.py``) that records exactly what arrived
on the wire, or to the real sandbox. Nothing in the client is mocked.
"""

from __future__ import annotations

import json
import pickle
import secrets
import socket
import time
import traceback
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

import pytest
import requests
from support.rawhttp import MakeRaw, RawRequest, http_response
from support.sandboxes import MakeSandbox

from spectrum_tools.client import DEFAULT_TIMEOUT, SpectrumClient, check_base_url, parse_missing_ids
from spectrum_tools.errors import (
    APIError,
    AuthenticationError,
    ConfigError,
    ForbiddenError,
    InsecureURLError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    SpectrumError,
    TransportError,
    UnexpectedResponseError,
)
from spectrum_tools.sandbox import SandboxServer

PO = "HA-US-DEV00011101"
BODY = {
    "purchaseOrderNumber": PO,
    "lineItems": [
        {"recipeSetReadableId": "TEBMKVGB", "workflowStatus": "delivered"},
        {"recipeSetReadableId": "LKIHFPB5", "workflowStatus": "in-progress-step-1"},
    ],
}


def _ok(request: RawRequest, n: int) -> bytes:
    return http_response(
        200,
        {
            "purchaseOrderNumber": PO,
            "status": "OK",
            "details": "Updated workflow status for recipeSetReadableId(s): TEBMKVGB, LKIHFPB5.",
        },
    )


def _token() -> str:
    return "tok-" + secrets.token_hex(16)


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither SPECTRUM_API_TOKEN nor SPECTRUM_BASE_URL is set."""
    monkeypatch.delenv("SPECTRUM_API_TOKEN", raising=False)
    monkeypatch.delenv("SPECTRUM_BASE_URL", raising=False)


# -- request shape -------------------------------------------------------------------------


def test_status_update_is_a_put_with_token_header_and_exactly_the_documented_body(
    make_raw_server: MakeRaw, no_env: None
) -> None:
    server = make_raw_server(_ok)
    token = _token()
    reply = SpectrumClient(server.base_url, token=token).update_status(BODY)  # type: ignore[arg-type]

    assert reply.http_status == 200
    assert reply.status == "OK"
    assert reply.purchase_order == PO
    [request] = server.requests
    assert (request.method, request.path) == ("PUT", "/api/order/status")
    # The header name is spelled exactly as Spectrum documents it, underscores and all.
    assert ("SPECTRUM_API_TOKEN", token) in request.headers
    assert request.header("Content-Type") == "application/json"
    assert json.loads(request.body) == BODY
    assert list(json.loads(request.body)) == ["purchaseOrderNumber", "lineItems"]


def test_base_url_with_trailing_slash_does_not_double_the_slash(
    make_raw_server: MakeRaw, no_env: None
) -> None:
    server = make_raw_server(_ok)
    SpectrumClient(server.base_url + "/", token=_token()).update_status(BODY)  # type: ignore[arg-type]
    assert server.requests[0].path == "/api/order/status"


def test_sandbox_accepts_the_clients_token_and_applies_the_update(
    sandbox: SandboxServer,
) -> None:
    reply = SpectrumClient(sandbox.base_url, token=sandbox.token).update_status(BODY)  # type: ignore[arg-type]

    assert reply.http_status == 200
    assert "TEBMKVGB" in reply.details
    items = {
        i["recipeSetId"]: i["workflowStatus"] for i in sandbox.store.get_order(PO)["lineItems"]
    }  # type: ignore[index]
    assert items["TEBMKVGB"] == "delivered"
    assert items["LKIHFPB5"] == "in-progress-step-1"


def test_read_back_and_search_go_through_the_same_client(sandbox: SandboxServer) -> None:
    client = SpectrumClient(sandbox.base_url, token=sandbox.token)
    order = client.get_order("00012345")  # leading zeros: a PO is text
    assert order["purchaseOrderNumber"] == "00012345"
    assert [i["recipeSetId"] for i in order["lineItems"]][:1] == ["W4GEQ4PU"]
    found = client.search_orders(
        "2000-01-01T00:00:00+00:00", ["on-hold"], ignore_date_restriction=True
    )
    assert "00012345" in {o["purchaseOrderNumber"] for o in found}
    with pytest.raises(NotFoundError):
        client.get_order("NO-SUCH-PO")


# -- configuration -------------------------------------------------------------------------


def test_token_comes_from_the_environment_when_not_given(
    make_raw_server: MakeRaw, no_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_raw_server(_ok)
    token = _token()
    monkeypatch.setenv("SPECTRUM_API_TOKEN", token)
    SpectrumClient(server.base_url).update_status(BODY)  # type: ignore[arg-type]
    assert server.requests[0].header("SPECTRUM_API_TOKEN") == token


def test_token_argument_wins_over_the_environment(
    make_raw_server: MakeRaw, no_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_raw_server(_ok)
    monkeypatch.setenv("SPECTRUM_API_TOKEN", "from-env")
    SpectrumClient(server.base_url, token="from-argument").update_status(BODY)  # type: ignore[arg-type]
    assert server.requests[0].header("SPECTRUM_API_TOKEN") == "from-argument"


def test_base_url_comes_from_the_environment_when_not_given(
    make_raw_server: MakeRaw, no_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_raw_server(_ok)
    monkeypatch.setenv("SPECTRUM_BASE_URL", server.base_url)
    client = SpectrumClient(token=_token())
    client.update_status(BODY)  # type: ignore[arg-type]
    assert client.base_url == server.base_url
    assert len(server.requests) == 1


@pytest.mark.parametrize("token", [None, "", "   "])
def test_missing_or_blank_token_is_a_config_error(no_env: None, token: str | None) -> None:
    with pytest.raises(ConfigError, match="SPECTRUM_API_TOKEN"):
        SpectrumClient("https://spectrum.example.com", token=token)


def test_missing_base_url_is_a_config_error(no_env: None) -> None:
    with pytest.raises(ConfigError, match="SPECTRUM_BASE_URL"):
        SpectrumClient(token=_token())


@pytest.mark.security
def test_token_with_a_line_break_is_refused_without_echoing_it(no_env: None) -> None:
    token = _token()
    with pytest.raises(ConfigError) as info:
        SpectrumClient("https://spectrum.example.com", token=token + "\r\nX-Injected: 1")
    assert token not in str(info.value)


# -- plain http only to loopback -------------------------------------------------------------


@pytest.mark.security
@pytest.mark.parametrize(
    "url",
    [
        "http://localhost.evil.com",
        "http://10.0.0.1",
        "http://127.0.0.1.nip.io",
        "http://example.com:8765",
        "http://0.0.0.0:8765",
        "http://[::ffff:10.0.0.1]",
    ],
)
def test_plain_http_to_a_host_that_is_not_loopback_is_refused(url: str, no_env: None) -> None:
    with pytest.raises(InsecureURLError, match="https://"):
        check_base_url(url)
    with pytest.raises(InsecureURLError):
        SpectrumClient(url, token=_token())


@pytest.mark.security
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1@evil.example.com",  # userinfo trick: the host is evil.example.com
        "http://user:pw@127.0.0.1",
        "ftp://127.0.0.1",
        "127.0.0.1:8765",
        "https://spectrum.example.com/?token=x",
    ],
)
def test_urls_with_credentials_queries_or_other_schemes_are_refused(url: str) -> None:
    with pytest.raises(ConfigError):
        check_base_url(url)


@pytest.mark.security
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1", "http://127.0.0.1"),
        ("http://localhost", "http://localhost"),
        ("http://[::1]", "http://[::1]"),
        ("http://127.0.0.1:8765/", "http://127.0.0.1:8765"),
        ("http://127.5.6.7:1", "http://127.5.6.7:1"),
        ("https://spectrum.example.com/", "https://spectrum.example.com"),
    ],
)
def test_loopback_http_and_any_https_are_accepted(url: str, expected: str) -> None:
    assert check_base_url(url) == expected
    assert SpectrumClient(url, token=_token()).base_url == expected


# -- redirects and timeouts ------------------------------------------------------------------


@pytest.mark.security
@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_redirect_is_not_followed_and_the_target_never_sees_the_token(
    make_raw_server: MakeRaw, code: int
) -> None:
    target = make_raw_server(_ok)
    redirector = make_raw_server(
        lambda r, n: http_response(code, b"", {"Location": target.base_url + "/api/order/status"})
    )
    token = _token()

    with pytest.raises(UnexpectedResponseError) as info:
        SpectrumClient(redirector.base_url, token=token).update_status(BODY)  # type: ignore[arg-type]

    assert info.value.status_code == code
    assert "not followed" in str(info.value)
    assert token not in str(info.value)
    assert len(redirector.requests) == 1
    time.sleep(0.2)  # a client following the redirect would have connected by now
    assert target.requests == []


@pytest.mark.fault
@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.update_status(BODY),
        lambda c: c.get_order(PO),
        lambda c: c.search_orders("2024-01-01T00:00:00Z", ["completed"]),
    ],
    ids=["update_status", "get_order", "search_orders"],
)
def test_a_server_that_never_answers_raises_transport_error_after_the_timeout(
    make_raw_server: MakeRaw, call: Callable[[SpectrumClient], Any]
) -> None:
    server = make_raw_server(lambda r, n: None)
    token = _token()
    client = SpectrumClient(server.base_url, token=token, timeout=(2.0, 0.3))

    with pytest.raises(TransportError, match="timed out") as info:
        call(client)

    assert len(server.requests) == 1
    assert isinstance(info.value, ConnectionError)  # except ConnectionError keeps working
    assert token not in "".join(traceback.format_exception(info.value))


class _RecordingSession(requests.Session):
    """A real session that also remembers the keyword arguments of every request."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict[str, Any]] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.calls.append(kwargs)
        return super().request(method, url, *args, **kwargs)


def test_every_call_sets_the_default_timeout_and_disables_redirects(
    sandbox: SandboxServer,
) -> None:
    session = _RecordingSession()
    client = SpectrumClient(sandbox.base_url, token=sandbox.token, session=session)
    client.update_status(BODY)  # type: ignore[arg-type]
    client.get_order(PO)
    client.search_orders("2000-01-01T00:00:00Z", ["completed"], ignore_date_restriction=True)

    assert DEFAULT_TIMEOUT == (5.0, 30.0)
    assert len(session.calls) == 3
    for kwargs in session.calls:
        assert kwargs["timeout"] == (5.0, 30.0)
        assert kwargs["allow_redirects"] is False


@pytest.mark.fault
def test_connection_refused_and_dropped_connections_are_transport_errors(
    make_raw_server: MakeRaw,
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    with pytest.raises(TransportError, match="refused"):
        SpectrumClient(f"http://127.0.0.1:{closed_port}", token=_token()).update_status(BODY)  # type: ignore[arg-type]

    dropper = make_raw_server(lambda r, n: b"")
    with pytest.raises(TransportError):
        SpectrumClient(dropper.base_url, token=_token()).update_status(BODY)  # type: ignore[arg-type]


# -- error mapping ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (401, AuthenticationError),
        (403, ForbiddenError),
        (404, NotFoundError),
        (409, NotFoundError),
        (429, RateLimitedError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
        (400, UnexpectedResponseError),
        (418, UnexpectedResponseError),
    ],
)
def test_http_error_statuses_map_to_exception_classes(
    make_raw_server: MakeRaw, code: int, cls: type[APIError]
) -> None:
    details = f"Update status for {PO} encountered an error."
    server = make_raw_server(
        lambda r, n: http_response(
            code, {"purchaseOrderNumber": PO, "status": "Error", "details": details}
        )
    )
    with pytest.raises(cls) as info:
        SpectrumClient(server.base_url, token=_token()).update_status(BODY)  # type: ignore[arg-type]

    error = info.value
    assert type(error) is cls
    assert isinstance(error, SpectrumError)
    assert error.status_code == code
    assert error.purchase_order == PO
    assert error.details == details
    assert str(error) == f"HTTP {code} for {PO}: {details}"
    if code in (401, 403):
        assert isinstance(error, PermissionError)


@pytest.mark.fault
@pytest.mark.parametrize(
    ("header", "expected"),
    [("7", 7.0), ("0", 0.0), ("-3", 0.0), ("soon", None), (None, None)],
)
def test_429_carries_retry_after_seconds(
    make_raw_server: MakeRaw, header: str | None, expected: float | None
) -> None:
    headers = {} if header is None else {"Retry-After": header}
    server = make_raw_server(lambda r, n: http_response(429, b"Too Many Requests", headers))
    with pytest.raises(RateLimitedError) as info:
        SpectrumClient(server.base_url, token=_token()).update_status(BODY)  # type: ignore[arg-type]
    assert info.value.retry_after == expected
    assert "Too Many Requests" in str(info.value)


@pytest.mark.fault
def test_429_retry_after_as_an_http_date(make_raw_server: MakeRaw) -> None:
    when = formatdate(time.time() + 30, usegmt=True)
    server = make_raw_server(lambda r, n: http_response(429, None, {"Retry-After": when}))
    with pytest.raises(RateLimitedError) as info:
        SpectrumClient(server.base_url, token=_token()).update_status(BODY)  # type: ignore[arg-type]
    assert info.value.retry_after is not None
    assert 20 <= info.value.retry_after <= 31


@pytest.mark.parametrize(
    "answer",
    [
        http_response(200, {"purchaseOrderNumber": PO, "status": "Error", "details": "nope"}),
        http_response(200, b"<html>maintenance</html>"),
        http_response(200, [1, 2]),
    ],
    ids=["status-not-ok", "html", "json-list"],
)
def test_a_2xx_that_is_not_the_documented_ok_answer_is_not_success(
    make_raw_server: MakeRaw, answer: bytes
) -> None:
    server = make_raw_server(lambda r, n: answer)
    with pytest.raises(UnexpectedResponseError) as info:
        SpectrumClient(server.base_url, token=_token()).update_status(BODY)  # type: ignore[arg-type]
    assert info.value.status_code == 200


@pytest.mark.fault
def test_sandbox_answers_map_to_the_same_classes(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(not_found_status=409, fail_first={PO: 1})
    client = SpectrumClient(sandbox.base_url, token=sandbox.token)
    with pytest.raises(ServerError, match=f"Update status for {PO} encountered an error"):
        client.update_status(BODY)  # type: ignore[arg-type]
    missing = {
        "purchaseOrderNumber": PO,
        "lineItems": [
            {"recipeSetReadableId": "TEBMKVGB", "workflowStatus": "completed"},
            {"recipeSetReadableId": "NOPE0001", "workflowStatus": "completed"},
            {"recipeSetReadableId": "NOPE0002", "workflowStatus": "completed"},
        ],
    }
    with pytest.raises(NotFoundError) as info:
        client.update_status(missing)  # type: ignore[arg-type]
    assert info.value.status_code == 409
    sent = [i["recipeSetReadableId"] for i in missing["lineItems"]]  # type: ignore[index]
    assert parse_missing_ids(info.value.details, sent) == ("NOPE0001", "NOPE0002")

    with pytest.raises(ForbiddenError):
        SpectrumClient(sandbox.base_url, token="wrong-token").update_status(BODY)  # type: ignore[arg-type]
    sandbox.settings.auth_failure_status = 401
    with pytest.raises(AuthenticationError):
        SpectrumClient(sandbox.base_url, token="wrong-token").update_status(BODY)  # type: ignore[arg-type]


# -- parse_missing_ids ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("details", "sent", "expected"),
    [
        (
            "Unable to find recipeSetReadableId(s): MUEMVK2U.",
            ["AAAA1111", "MUEMVK2U"],
            ("MUEMVK2U",),
        ),
        ("Unable to find recipeSetReadableId(s): A1,B2.", ["A1", "B2"], ("A1", "B2")),
        ("Unable to find recipeSetReadableId(s): A1, B2.", ["B2", "A1"], ("B2", "A1")),
        ("Unable to find recipeSetReadableId(s): A1 B2", ["A1", "B2"], ("A1", "B2")),
        ("unable to find recipesetreadableid(s):A1;", ["A1"], ("A1",)),
        ("Unable to find recipeSetReadableId(s): A1, ZZ9.", ["A1", "B2"], ("A1",)),
        ("Unable to find recipeSetReadableId(s): A1.", ["A12"], ()),
        ("Update status for PO1 encountered an error.", ["A1"], ()),
        ("", ["A1"], ()),
    ],
)
def test_parse_missing_ids_keeps_only_sent_ids_in_sent_order(
    details: str, sent: list[str], expected: tuple[str, ...]
) -> None:
    assert parse_missing_ids(details, sent) == expected


# -- the token stays secret ------------------------------------------------------------------


@pytest.mark.security
def test_token_is_not_in_repr_str_vars_or_pickle(no_env: None) -> None:
    token = _token()
    client = SpectrumClient("https://spectrum.example.com", token=token)
    assert token not in repr(client)
    assert token not in str(client)
    assert token not in repr(vars(client))
    with pytest.raises(TypeError) as info:
        pickle.dumps(client)
    assert token not in str(info.value)
    with pytest.raises(TypeError):
        pickle.dumps(client._token)


@pytest.mark.security
@pytest.mark.parametrize("code", [401, 403, 404, 409, 429, 500, 418, 302])
def test_token_is_not_in_exception_messages_or_tracebacks(
    make_raw_server: MakeRaw, code: int
) -> None:
    token = _token()
    server = make_raw_server(
        lambda r, n: http_response(
            code, {"status": "Error", "details": "no"}, {"Location": "https://elsewhere.example/"}
        )
    )
    with pytest.raises(SpectrumError) as info:
        SpectrumClient(server.base_url, token=token).update_status(BODY)  # type: ignore[arg-type]
    assert token not in str(info.value)
    assert token not in repr(info.value)
    assert token not in "".join(traceback.format_exception(info.value))
    assert server.requests[0].header("SPECTRUM_API_TOKEN") == token  # it was sent, though


@pytest.mark.security
def test_token_echoed_by_the_server_is_redacted_from_the_error(make_raw_server: MakeRaw) -> None:
    token = _token()
    server = make_raw_server(
        lambda r, n: http_response(
            403,
            {"status": "Error", "details": f"token {r.header('SPECTRUM_API_TOKEN')} not allowed"},
        )
    )
    with pytest.raises(ForbiddenError) as info:
        SpectrumClient(server.base_url, token=token).update_status(BODY)  # type: ignore[arg-type]
    assert token not in str(info.value)
    assert token not in info.value.details
