"""Recording with sound: a live file output carries the voice input's sound, in sync with the mouth."""

from __future__ import annotations

import av
import numpy as np
from media_signals import av_offsets, bursts, write_wav

from engine.outputs.sinks import AudioTimeline, VideoFileSink
from engine.session import SessionSpec, SourceKind, build_session

FPS = 30.0


def test_timeline_fills_holes_cuts_overlaps_and_drops_sound_before_time_zero():
    timeline = AudioTimeline(1000)
    timeline.add(np.ones(100, np.float32), 9.95)  # starts 50 ms before time 0: the first 50 samples go
    timeline.origin = 10.0
    timeline.add(np.full(100, 2, np.float32), 10.05)  # contiguous
    timeline.add(np.full(100, 3, np.float32), 10.25)  # a 100 ms hole (a stalled microphone) before it
    timeline.add(np.full(100, 4, np.float32), 10.30)  # overlaps the previous by 50 ms
    blocks = timeline.flush()
    track = np.zeros(timeline.next)
    for position, samples in blocks:
        track[position:position + len(samples)] = samples
    assert timeline.next == 400
    assert list(track[[0, 49, 50, 149, 150, 249, 250, 349, 350, 399]]) == [1, 1, 2, 2, 0, 0, 3, 3, 4, 4]


def test_recording_without_a_voice_input_has_no_sound(tmp_path):
    out = tmp_path / "silent.mp4"
    with build_session(SessionSpec(source=SourceKind.DEMO, size=(160, 96), sinks=(f"file:{out}",))) as session:
        session.wait(1.0)
    with av.open(str(out)) as container:
        assert container.streams.video and not container.streams.audio


def test_live_recording_with_audio_keeps_mouth_and_sound_together(tmp_path):
    wav = write_wav(tmp_path / "bursts.wav", bursts(5))
    out = tmp_path / "live.mp4"
    sink = VideoFileSink(out)
    session = build_session(SessionSpec(audio=wav, size=(320, 180), fps=FPS, sinks=(sink,)))
    with session:
        assert session.wait(30.0)
    assert session.error is None and not session.sink_errors
    with av.open(str(out)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert audio.codec_context.name == "aac"
        assert abs(float(video.duration * video.time_base) - float(audio.duration * audio.time_base)) < 0.25
    offsets = av_offsets(out)
    assert len(offsets) >= 4, offsets
    # The mouth follows its sound by the lip-sync's own ~20 ms (the same offline): within one frame.
    assert abs(float(np.median(offsets))) <= 1.0 / FPS, offsets
    # A burst whose first open-mouth frame was never rendered (the render thread stalled on a loaded
    # machine) shows in the next frame that was: late by the stall, never early, never drifting.
    assert min(offsets) >= -1.0 / FPS and max(offsets) <= 0.25, offsets
