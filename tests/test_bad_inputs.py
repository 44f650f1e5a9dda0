"""Hostile and careless inputs at the command line and the API: each is one clear line and a
non-zero exit, never a traceback, a hang or NaN in a message."""

from __future__ import annotations

import json
import logging
import math
import socket
import struct
import zlib

import pytest

from engine.commands import cli
from engine.errors import AvatarcamError
from engine.outputs.websocket import WebSocketOutput


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def assert_one_line(code: int, err: str, *needles: str) -> None:
    assert code != 0, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle.lower() in lines[0].lower(), lines[0]


def huge_png(path, width: int = 60000, height: int = 60000):
    """A tiny PNG whose header claims ``width`` x ``height`` pixels."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    data += chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("argv, needle", [
    (["run", "--demo", "--seconds", "nan"], "finite"),
    (["run", "--demo", "--seconds", "inf"], "finite"),
    (["run", "--demo", "--seconds", "-1"], "above 0"),
    (["run", "--demo", "--expressiveness", "nan"], "finite"),
    (["bench", "--demo", "--expressiveness", "3"], "out of range"),
    (["snapshot", "--view-yaw", "inf", "--out", "x.png"], "finite"),
    (["snapshot", "--yaw", "nan", "--out", "x.png"], "finite"),
    (["snapshot", "--expression", "jawOpen=nan", "--out", "x.png"], "finite"),
])
def test_non_finite_and_out_of_range_numbers_are_refused(capsys, argv, needle):
    assert_one_line(*run_cli(capsys, *argv), needle)


def test_record_controls_into_a_missing_folder_or_a_folder(capsys, tmp_path):
    code, err = run_cli(capsys, "run", "--demo", "--sink", "null", "--seconds", "1",
                        "--record-controls", str(tmp_path / "nope" / "c.jsonl"))
    assert_one_line(code, err, "does not exist")
    code, err = run_cli(capsys, "run", "--demo", "--sink", "null", "--seconds", "1", "--record-controls", str(tmp_path))
    assert_one_line(code, err, "is a folder")


@pytest.mark.parametrize("out", ["x.txt", "folder"])
def test_snapshot_out_that_is_not_a_png_file(capsys, tmp_path, out):
    target = tmp_path / out
    if out == "folder":
        target.mkdir()
    assert_one_line(*run_cli(capsys, "snapshot", "--out", str(target)), ".png")


def test_an_image_whose_header_claims_60000x60000_is_refused_before_decoding(capsys, tmp_path):
    code, err = run_cli(capsys, "run", "--image", str(huge_png(tmp_path / "huge.png")), "--sink", "null",
                        "--seconds", "1")
    assert_one_line(code, err, "60000x60000")


def test_an_unreadable_audio_file_is_an_error_before_anything_runs(capsys, tmp_path):
    out = tmp_path / "never.mp4"
    code, err = run_cli(capsys, "run", "--demo", "--audio", str(tmp_path / "missing.wav"), "--sink", f"file:{out}",
                        "--seconds", "5")
    assert_one_line(code, err, "missing.wav")
    assert not out.exists(), "nothing ran"
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF....not audio at all" * 10)
    assert_one_line(*run_cli(capsys, "run", "--demo", "--audio", str(garbage), "--sink", "null"), "garbage.wav")


def test_the_session_api_refuses_non_finite_expressiveness(tmp_path):
    from engine.session import SessionSpec, SourceKind, build_session

    with pytest.raises(AvatarcamError, match="from 0 to 2"):
        build_session(SessionSpec(source=SourceKind.DEMO, sinks=("null",), expressiveness=math.nan))
    session = build_session(SessionSpec(source=SourceKind.DEMO, sinks=("null",)))
    for bad in (math.nan, math.inf, -0.5):
        with pytest.raises(AvatarcamError):
            session.set_expressiveness(bad)


def test_nan_never_reaches_a_message():
    from engine.fusion.fuser import EmotionState
    from engine.outputs.messages import MessageFactory
    from engine.packets import AvatarFrame

    frame = AvatarFrame(t_capture=1.0, sequence=1, controls={"jawOpen": math.nan, "browInnerUp": math.inf},
                        head=(math.nan, 0.0, math.inf), eyes=(math.nan, 1.0))
    factory = MessageFactory()
    text = json.dumps(factory.avatar_frame(frame, "aa", math.nan), allow_nan=False)  # raises on NaN
    assert json.loads(text)["payload"]["blendshapes"]["jawOpen"] == 0.0
    states = [s for s in _emotion_states() if isinstance(s, EmotionState)]
    for state in states[:1]:
        json.dumps(factory.emotion_update(state, frame), allow_nan=False)


def _emotion_states():
    from test_messages import demo_states

    return [state for _frame, state in demo_states(0.2)]


# --- WebSocket ---------------------------------------------------------------------------------------

def handshake(port: int, target: bytes, authorization: bytes | None = None, host: str = "127.0.0.1") -> bytes:
    """A raw WebSocket upgrade request (any bytes at all); the status line of the answer."""
    request = (b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")
    if authorization is not None:
        request += b"Authorization: " + authorization + b"\r\n"
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(request + b"\r\n")
        answer = b""
        while b"\r\n" not in answer:
            part = sock.recv(4096)
            if not part:
                break
            answer += part
    return answer.split(b"\r\n", 1)[0]


@pytest.mark.parametrize("target, authorization", [
    (b"/?token=%C3%A9t%C3%A9", None),  # non-ASCII, percent-encoded
    (b"/?token=%ED%A0%80", None),  # a lone surrogate
    (b"/?token=%FF%00%01", None),
    (b"/", b"Bearer \xe2\x82\xac\xff"),
    (b"/", b"bearer wrong"),
    (b"/", b"Basic Zm9vOmJhcg=="),
    (b"/?token=", None),
])
def test_bad_tokens_of_any_bytes_get_401(server, target, authorization):
    status = handshake(server.port, target, authorization)
    assert b" 401 " in status, status
    assert server.refused >= 1


@pytest.mark.parametrize("target, authorization", [
    (b"/?token=\xc3\xa9\xff\xfe", None),  # raw bytes in the request line
    (b"/", b"bearer \x01\x7f"),  # control characters in a header
])
def test_requests_that_are_not_http_are_closed_quietly_and_the_server_serves_on(server, target, authorization, caplog):
    # The HTTP layer refuses these before any token is looked at: the connection is closed
    # without an answer (never a 101, never a 500), nothing is logged above debug level.
    assert handshake(server.port, target, authorization) == b""
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert b" 101 " in handshake(server.port, b"/?token=" + server.token.encode())


@pytest.mark.parametrize("scheme", [b"Bearer", b"bearer", b"BEARER"])
def test_the_auth_scheme_is_case_insensitive(server, scheme):
    status = handshake(server.port, b"/", scheme + b" " + server.token.encode())
    assert b" 101 " in status, status


def test_binding_beyond_loopback_warns_and_ipv6_urls_are_bracketed():
    for host in ("127.0.0.1", "::1", "localhost"):
        assert WebSocketOutput(host, 8765).warning is None
    for host in ("0.0.0.0", "::", "192.168.1.5"):
        warning = WebSocketOutput(host, 8765).warning
        assert warning and "other computers" in warning and "--ws 8765" in warning
    assert WebSocketOutput("::1", 8765, token="t").url == "ws://[::1]:8765/?token=t"
    assert WebSocketOutput("::", 8765, token="t").url == "ws://[::]:8765/?token=t"


def test_ws_on_all_addresses_prints_the_warning(capsys):
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
        assert b" 101 " in handshake(output.port, b"/?token=" + output.token.encode(), host="::1")
    finally:
        output.close()
