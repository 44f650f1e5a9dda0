"""SIGTERM and SIGHUP (``kill``, a logout, a service manager) stop a run like the Stop button:
the recording is finalised (an mp4 with its moov atom, decodable) and the devices released."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)  # polling a condition with a deadline
    return condition()


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")
@pytest.mark.parametrize("number", [signal.SIGTERM, getattr(signal, "SIGHUP", signal.SIGTERM)], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_stops_the_run_and_the_recording_is_playable(number, tmp_path):
    out = tmp_path / "x.mp4"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "engine.commands.cli", "run", "--demo", "--sink", f"file:{out}",
                                "--size", "320x180", "--quiet"], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Frames are being written once the file holds more than its header.
        assert _wait_for(lambda: out.is_file() and out.stat().st_size > 4096 or process.poll() is not None, 90.0)
        assert process.poll() is None, process.communicate()[1]
        process.send_signal(number)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode != 0 and "avatarcam: stopped." in stderr
    assert "Traceback" not in stderr
    data = out.read_bytes()
    assert b"moov" in data, "the file was finalised"
    with av.open(str(out)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames > 5


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")
@pytest.mark.parametrize("number", [signal.SIGTERM, getattr(signal, "SIGHUP", signal.SIGTERM)], ids=["SIGTERM", "SIGHUP"])
def test_the_app_quits_on_sigterm_and_sighup_like_its_quit_action(qtbot, number):
    from PySide6.QtWidgets import QWidget

    from app.main import quit_on_signals

    window = QWidget()
    quits: list[int] = []
    window.quit = lambda: quits.append(1)  # the main window's Quit: stops the session, releases devices
    qtbot.addWidget(window)
    saved = {n: signal.getsignal(n) for n in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        quit_on_signals(window)
        os.kill(os.getpid(), number)
        qtbot.waitUntil(lambda: quits == [1], timeout=3_000)
    finally:
        for n, handler in saved.items():
            signal.signal(n, handler)
