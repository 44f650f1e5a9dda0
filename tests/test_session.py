"""One composition root: a session built from a spec for every source kind, and its controls."""

from __future__ import annotations

import threading
import wave
from dataclasses import fields

import numpy as np
import pytest
from conftest import shared_file
from fakes import StubCapture

from engine.runtime.stats import Stats
from engine.session import SessionHooks, SessionSpec, SourceKind, build_session

SMALL = dict(size=(320, 180), fps=30.0, sinks=("null",))
STAT_FIELDS = {f.name for f in fields(Stats)}


def run_until_frames(spec: SessionSpec, frames: int, **overrides) -> Stats:
    """Run ``spec`` until ``frames`` output frames went out (or the source ended); its stats."""
    enough = threading.Event()
    seen = [0]

    def count(_frame) -> None:
        seen[0] += 1
        if seen[0] >= frames:
            enough.set()

    session = build_session(spec, SessionHooks(on_frame=count), **overrides)
    with session:
        assert enough.wait(30.0) or session.wait(0), "the session produced frames"
        stats = session.stats()
    assert session.error is None
    return stats


@pytest.mark.parametrize("kind", ["camera", "video", "image", "demo", "audio-only"])
def test_a_session_is_built_from_a_spec_for_every_source_kind(kind, face_model, monkeypatch):
    specs = {
        "camera": SessionSpec(source=SourceKind.CAMERA, face_model=face_model, **SMALL),
        "video": SessionSpec(source=SourceKind.VIDEO, path=shared_file("media/expressions_d0.mp4"),
                             face_model=face_model, **SMALL),
        "image": SessionSpec(source=SourceKind.IMAGE, path=shared_file("media/portrait_s0.jpg"),
                             face_model=face_model, **SMALL),
        "demo": SessionSpec(source=SourceKind.DEMO, **SMALL),
        "audio-only": SessionSpec(source=SourceKind.NONE, audio=shared_file("media/speech_radio31.wav"), **SMALL),
    }
    if kind == "camera":
        monkeypatch.setattr("engine.capture.video.cv2.VideoCapture", StubCapture)
        monkeypatch.setattr("engine.capture.video.list_cameras", lambda: [(0, "Stub camera")])
    stats = run_until_frames(specs[kind], 20)
    assert isinstance(stats, Stats) and stats.frames_out >= 20
    assert set(stats.as_dict()) <= STAT_FIELDS, "the same fields whatever the source"
    if kind in ("camera", "video", "image"):
        assert stats.track_ms_p50 is not None and stats.faces_found > 0, "the face tracker ran"
    if kind == "audio-only":
        assert stats.voice_status and stats.track_ms_p50 is None


def test_clipped_audio_in_a_running_session_raises_the_anomaly(tmp_path):
    path = tmp_path / "clipped.wav"
    t = np.arange(16000 * 3) / 16000
    samples = np.clip(np.sin(2 * np.pi * 220 * t) * 3.0, -1, 1)  # a loud voice driven into the rails
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes((samples * 32767).astype("<i2").tobytes())
    spec = SessionSpec(source=SourceKind.NONE, audio=path, emotion=True, **SMALL)
    with build_session(spec) as session:
        flagged = False
        while not flagged and not session.wait(0.1):
            flagged = bool(session.stats().anomaly)
    assert flagged, "the voice stage's clipping reached the fused emotion as an anomaly"


def test_the_spec_is_the_only_place_defaults_live():
    spec = SessionSpec()
    assert spec.source is SourceKind.AUTO and spec.sinks == ("virtualcam",)
    assert not spec.emotion and spec.microphone is None and spec.websocket is None, "privacy by default"
