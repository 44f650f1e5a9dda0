"""The voice in the live pipeline: audio-only mode, a face that is not there, and bad audio input."""

from __future__ import annotations

import numpy as np
from conftest import shared_file

from engine.capture.audio import AudioFileSource
from engine.capture.video import NoVideoSource
from engine.outputs.sinks import NullSink
from engine.perception.voice.voice import VoiceStage
from engine.runtime.pipeline import Pipeline, PipelineOptions

SMALL = dict(size=(160, 120), fps=30.0)


def _collect(pipeline_states):
    return lambda frame: pipeline_states.append(frame.state)


def test_audio_only_clip_moves_the_mouth_and_blinks_and_ends_with_the_audio():
    states = []
    voice = VoiceStage(AudioFileSource(shared_file("media/speech_imagine.wav")))
    pipeline = Pipeline(NoVideoSource(), [NullSink()], PipelineOptions(**SMALL), voice=voice,
                        on_frame=_collect(states))
    pipeline.start()
    try:
        assert pipeline.wait(30.0), "the audio-only run should end when the audio ends"
    finally:
        pipeline.stop()
    assert pipeline.error is None
    jaw = np.array([s.controls["jawOpen"] for s in states])
    blink = np.array([s.controls["eyeBlinkLeft"] for s in states])
    assert len(states) > 120  # ~5.6 s at 30 fps
    assert jaw.max() > 0.3 and jaw.std() > 0.05, "the voice should move the mouth"
    assert jaw[:10].max() <= 0.05, "the clip starts with silence: the mouth rests"
    assert blink.max() > 0.8, "idle blinks go on in audio-only mode"
    assert not any(s.face_present for s in states)
    stats = pipeline.stats()
    assert stats.sound_to_mouth_ms_p50 > 0 and "voice" in stats.voice_status


def test_no_face_in_the_video_hands_the_avatar_to_the_voice(face_model, tmp_path):
    import cv2

    from engine.capture.video import ImageSource

    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((240, 320, 3), 180, np.uint8))
    states = []
    voice = VoiceStage(AudioFileSource(shared_file("media/speech_radio31.wav")))
    pipeline = Pipeline(ImageSource(blank, fps=30.0), [NullSink()], PipelineOptions(face_model=face_model, **SMALL),
                        voice=voice, on_frame=_collect(states))
    pipeline.start()
    try:
        pipeline.wait(3.0)  # the image never ends: run for 3 s
    finally:
        pipeline.stop()
    assert pipeline.error is None
    late = [s for s in states[45:]]  # after the 0.4 s face-lost delay and the easing
    assert len(late) > 20, f"only {len(states)} frames in 3 s"
    jaw = np.array([s.controls["jawOpen"] for s in late])
    assert jaw.max() > 0.3 and jaw.std() > 0.05
    assert all(s.voice_weight > 0.9 for s in late)


def test_a_file_that_is_not_audio_is_reported_and_the_video_keeps_running(tmp_path):
    from engine.capture.demo import DemoSource

    bogus = tmp_path / "song.mp3"
    bogus.write_text("definitely not audio")
    states = []
    pipeline = Pipeline(DemoSource(fps=30.0), [NullSink()], PipelineOptions(**SMALL),
                        voice=VoiceStage(AudioFileSource(bogus)), on_frame=_collect(states))
    pipeline.start()
    try:
        pipeline.wait(1.0)
        assert pipeline.running
    finally:
        pipeline.stop()
    assert pipeline.error is None and len(states) > 15
    assert "Cannot read audio" in pipeline.voice_error and "song.mp3" in pipeline.voice_error
    assert "Cannot read audio" in pipeline.stats().voice_status


def test_cli_run_with_audio_only_records_a_moving_mouth(tmp_path):
    import json
    import subprocess
    import sys

    record = tmp_path / "controls.jsonl"
    result = subprocess.run([sys.executable, "-m", "engine.commands.cli", "run", "--audio", str(shared_file("media/speech_radio31.wav")),
                             "--sink", "null", "--size", "160x120", "--seconds", "3", "--quiet",
                             "--record-controls", str(record)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    jaw = [json.loads(line)["controls"]["jawOpen"] for line in record.read_text().splitlines()]
    assert len(jaw) > 60 and max(jaw) > 0.3
