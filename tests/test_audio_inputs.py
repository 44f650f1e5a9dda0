"""Asked-for audio: --loop repeats it, audio-only ends with it, and the exit is quiet."""

from __future__ import annotations

import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
from conftest import shared_file

from engine.capture.audio import AudioFileSource
from engine.capture.resample import RATE
from engine.session import SessionSpec, SourceKind, build_session

ROOT = Path(__file__).resolve().parents[1]


def tone(path: Path, seconds: float, rate: int = 44_100) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.sin(2 * np.pi * 220 * t) * 12_000).astype("<i2").tobytes())
    return path


def test_loop_repeats_the_audio_file_and_its_timeline_runs_on(tmp_path):
    source = AudioFileSource(tone(tmp_path / "half.wav", 0.5), paced=False, loop=True)
    source.open()
    try:
        chunks = [source.read() for _ in range(150)]  # 1.5 s of 10 ms chunks from a 0.5 s file
    finally:
        source.close()
    assert all(c is not None for c in chunks)
    starts = [c.t_capture for c in chunks]
    assert np.all(np.diff(starts) > 0) and starts[-1] >= 1.45
    assert sum(len(c.samples) for c in chunks) >= int(1.45 * RATE)


def test_the_session_hands_loop_to_the_audio_file():
    spec = SessionSpec(source=SourceKind.DEMO, audio=shared_file("media/speech_imagine.wav"), loop=True, sinks=("null",))
    session = build_session(spec)
    assert session.pipeline.voice.source.loop is True


def test_audio_only_ends_when_the_audio_ends(tmp_path):
    spec = SessionSpec(source=SourceKind.NONE, audio=tone(tmp_path / "one.wav", 1.0), size=(320, 180), sinks=("null",))
    with build_session(spec) as session:
        assert session.wait(20.0), "the run ended with its audio"
    assert session.error is None and session.stats().frames_out > 10


def test_a_run_with_audio_exits_quietly(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "engine.commands.cli", "run", "--demo", "--audio",
                           str(tone(tmp_path / "a.wav", 2.0)), "--sink", "null", "--size", "320x180", "--seconds", "1",
                           "--quiet"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "nanobind" not in done.stderr and "leaked" not in done.stderr
