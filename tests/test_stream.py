"""Live stream output (RTMP): H.264 + AAC to a local receiver, A/V offset, reconnect, bad URLs.

The receiver is FFmpeg's own RTMP listener on loopback (``ffmpeg -listen 1``): nothing leaves the machine.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import av
import numpy as np
import pytest
from media_signals import av_offsets, bursts, write_wav
from test_cli import assert_one_clear_line, run_cli

from engine.errors import SinkError
from engine.outputs.sinks import StreamSink, open_sink, redact
from engine.session import SessionSpec, SourceKind, build_session

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command as the RTMP receiver")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """``ffmpeg -listen 1 -i rtmp://127.0.0.1:PORT/live/test -c copy OUT.flv``."""

    def __init__(self, port: int, out: Path) -> None:
        self.out = out
        self.process = subprocess.Popen(
            ["ffmpeg", "-v", "error", "-listen", "1", "-analyzeduration", "500000", "-i", f"rtmp://127.0.0.1:{port}/live/test",
             "-c", "copy", "-flush_packets", "1", "-y", str(out)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10.0
        while not self._listening(port):  # wait until the listener takes connections
            assert time.monotonic() < deadline and self.process.poll() is None, "the ffmpeg receiver did not start"
            time.sleep(0.05)

    @staticmethod
    def _listening(port: int) -> bool:
        out = subprocess.run(["ss", "-ltn", f"sport = :{port}"], capture_output=True, text=True).stdout
        return f":{port}" in out

    def wait_for_bytes(self, size: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.out.exists() and self.out.stat().st_size >= size:
                return True
            time.sleep(0.05)
        return False

    def finish(self, timeout: float = 10.0) -> None:
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            self.process.wait(5)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(5)


@pytest.fixture
def receiver_factory(tmp_path):
    started: list[Receiver] = []

    def start(port: int, name: str) -> Receiver:
        started.append(Receiver(port, tmp_path / name))
        return started[-1]

    yield start
    for receiver in started:
        if receiver.process.poll() is None:
            receiver.kill()


def test_rtmp_stream_carries_video_and_sound_in_sync(tmp_path, receiver_factory):
    port = free_port()
    receiver = receiver_factory(port, "received.flv")
    wav = write_wav(tmp_path / "bursts.wav", bursts(6))  # 5.4 s of click-and-flash
    spec = SessionSpec(audio=wav, size=(320, 180), fps=30.0, sinks=(f"rtmp://127.0.0.1:{port}/live/test",))
    session = build_session(spec)
    with session:
        assert session.wait(30.0)
    assert session.error is None and not session.sink_errors
    receiver.finish()
    with av.open(str(receiver.out)) as container:
        kinds = {s.type: s.codec_context.name for s in container.streams}
    assert kinds == {"video": "h264", "audio": "aac"}
    offsets = av_offsets(receiver.out)
    assert len(offsets) >= 5, offsets
    assert abs(float(np.median(offsets))) <= 0.050, offsets  # the bar: A/V within 50 ms


def test_stream_reconnects_when_the_server_comes_back(tmp_path, receiver_factory):
    port = free_port()
    first = receiver_factory(port, "first.flv")
    sink = StreamSink(f"rtmp://127.0.0.1:{port}/live/test")
    session = build_session(SessionSpec(source=SourceKind.DEMO, size=(160, 96), fps=30.0, sinks=(sink,)))
    with session:
        assert first.wait_for_bytes(5_000, 20.0), "the first server got the stream"
        first.kill()  # the server goes away
        second = receiver_factory(port, "second.flv")
        assert second.wait_for_bytes(5_000, 30.0), f"the stream came back by itself ({sink.status})"
        assert sink.reconnects >= 1 and not session.sink_errors
    second.finish()
    with av.open(str(second.out)) as container:
        assert container.streams.video[0].codec_context.name == "h264"


@pytest.mark.parametrize("url", ["rtmp://", "rtmp://127.0.0.1", "rtmp://127.0.0.1/live", "rtmp://host:99999/live/key",
                                 "rtsp://"])
def test_bad_stream_urls_are_one_clear_line(capsys, url):
    with pytest.raises(SinkError):
        open_sink(url)
    code, _, err = run_cli(capsys, "run", "--demo", "--sink", url, "--seconds", "1")
    assert_one_clear_line(code, err, "rtmp://HOST")


def test_unreachable_server_is_one_clear_line_without_the_key(capsys):
    port = free_port()  # nothing listens there
    code, _, err = run_cli(capsys, "run", "--demo", "--size", "160x96", "--sink", f"rtmp://127.0.0.1:{port}/live/secret-key",
                           "--seconds", "1")
    assert_one_clear_line(code, err, "cannot connect", f"127.0.0.1:{port}")
    assert "secret-key" not in err


def test_redact_hides_the_stream_key_and_credentials():
    assert redact("rtmp://a.example/live/abc123") == "rtmp://a.example/live/…"
    assert redact("rtmp://user:pw@a.example:1935/app/key") == "rtmp://a.example:1935/app/…"
