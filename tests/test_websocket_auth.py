"""Who may connect to the WebSocket server (the data stream and the speak API), tried with raw
sockets so a request can carry any bytes at all: every request without the token gets a 401 with
a short body, whatever HTTP allows, and nothing is logged as an error."""

from __future__ import annotations

import logging
import socket

import pytest

from engine.errors import AvatarcamError
from engine.outputs.websocket import MAX_REQUEST_HEAD_BYTES, WebSocketOutput

UPGRADE = (b"Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")


def request(target: bytes, authorization: bytes | None = None) -> bytes:
    """A raw WebSocket upgrade request (any bytes at all)."""
    head = b"GET " + target + b" HTTP/1.1\r\n" + UPGRADE
    if authorization is not None:
        head += b"Authorization: " + authorization + b"\r\n"
    return head + b"\r\n"


def exchange(port: int, *parts: bytes, host: str = "127.0.0.1") -> bytes:
    """Sends ``parts`` one by one (a request may arrive in pieces); the answer, read until the
    server closes the connection or, after a 101, until the end of the response head."""
    with socket.create_connection((host, port), timeout=5) as sock:
        for part in parts:
            sock.sendall(part)
        answer = b""
        while not answer.startswith(b"HTTP/1.1 101 ") or b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer


def status(answer: bytes) -> bytes:
    return answer.split(b"\r\n", 1)[0]


def assert_refused(server: WebSocketOutput, answer: bytes, caplog) -> None:
    assert status(answer) == b"HTTP/1.1 401 Unauthorized", answer
    assert answer.endswith(b"\r\n\r\navatarcam: missing or wrong token\n"), answer
    assert server.refused == 1
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    # The server serves on: the right token still opens the stream.
    assert status(exchange(server.port, request(b"/?token=" + server.token.encode()))).startswith(b"HTTP/1.1 101 ")


@pytest.mark.parametrize("target, authorization", [
    (b"/", None),
    (b"/?token=", None),
    (b"/?token=%C3%A9t%C3%A9", None),  # non-ASCII, percent-encoded
    (b"/?token=%ED%A0%80", None),  # a lone surrogate
    (b"/?token=%FF%00%01", None),
    (b"/", b"Bearer \xe2\x82\xac\xff"),  # non-UTF-8 bytes in a header (HTTP tolerates them)
    (b"/", b"bearer wrong"),
    (b"/", b"Basic Zm9vOmJhcg=="),
])
def test_bad_tokens_get_401(server, target, authorization, caplog):
    assert_refused(server, exchange(server.port, request(target, authorization)), caplog)


@pytest.mark.parametrize("target, authorization", [
    (b"/?token=\xc3\xa9\xff\xfe", None),  # raw non-ASCII bytes in the request line
    (b"/?token=\x01\x7f", None),  # raw control bytes in the request line
    (b"/", b"bearer \x01\x7f"),  # control bytes in a header
    (b"/", b"BEARER \x00"),
    (b"/", b"Bearer \x7f\xff\xfe"),
])
def test_bad_tokens_in_bytes_http_forbids_get_401_too(server, target, authorization, caplog):
    # The HTTP parser would close these without an answer; the token is checked before it reads them.
    assert_refused(server, exchange(server.port, request(target, authorization)), caplog)


def test_a_token_wrapped_in_control_bytes_is_wrong(server, caplog):
    token = server.token.encode()
    assert_refused(server, exchange(server.port, request(b"/", b"Bearer \x01" + token)), caplog)


def test_a_request_that_is_not_http_at_all_gets_401(server, caplog):
    assert_refused(server, exchange(server.port, b"\x00\x01\x02\xff hello\n\n"), caplog)


@pytest.mark.parametrize("scheme", [b"Bearer", b"bearer", b"BEARER", b"bEaReR"])
def test_the_auth_scheme_is_case_insensitive(server, scheme):
    answer = exchange(server.port, request(b"/", scheme + b" " + server.token.encode()))
    assert status(answer) == b"HTTP/1.1 101 Switching Protocols", answer


def test_a_request_arriving_byte_by_byte_is_read_whole(server, caplog):
    good = request(b"/?token=" + server.token.encode())
    assert status(exchange(server.port, *(good[i:i + 1] for i in range(len(good))))).startswith(b"HTTP/1.1 101 ")
    bad = request(b"/", b"Bearer \x01")
    assert_refused(server, exchange(server.port, *(bad[i:i + 1] for i in range(len(bad)))), caplog)


def test_a_request_head_that_never_ends_is_refused_without_buffering_forever(server):
    answer = exchange(server.port, b"GET /?token=" + b"a" * (MAX_REQUEST_HEAD_BYTES + 1))
    assert status(answer) == b"HTTP/1.1 431 Request Header Fields Too Large", answer


def test_a_client_with_the_token_but_broken_http_is_closed_never_upgraded(server, caplog):
    # Holding the token, the request reaches the HTTP parser, which refuses it: closed, quietly.
    broken = request(b"/?token=" + server.token.encode()).replace(b"Host: x", b"Host: \x01")
    assert exchange(server.port, broken) == b""
    assert server.refused == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_binding_beyond_loopback_warns_and_ipv6_urls_are_bracketed():
    for host in ("127.0.0.1", "::1", "localhost"):
        assert WebSocketOutput(host, 8765).warning is None
    for host in ("0.0.0.0", "::", "192.168.1.5"):
        warning = WebSocketOutput(host, 8765).warning
        assert warning and "other computers" in warning and "--ws 8765" in warning
    assert WebSocketOutput("::1", 8765, token="t").url == "ws://[::1]:8765/?token=t"
    assert WebSocketOutput("::", 8765, token="t").url == "ws://[::]:8765/?token=t"


def test_ws_on_all_addresses_prints_the_warning():
    from engine.session import SessionSpec, SourceKind, build_session

    session = build_session(SessionSpec(source=SourceKind.DEMO, sinks=("null",), websocket="0.0.0.0:0"))
    assert any("other computers on the network" in note for note in session.notes)


def test_an_ipv6_loopback_server_is_reachable_at_its_printed_url():
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    output = WebSocketOutput("::1", 0)
    try:
        output.start()
    except AvatarcamError:
        pytest.skip("IPv6 loopback is not available here")
    try:
        assert output.url.startswith("ws://[::1]:")
        answer = exchange(output.port, request(b"/?token=" + output.token.encode()), host="::1")
        assert status(answer).startswith(b"HTTP/1.1 101 ")
    finally:
        output.close()
