"""Recording with sound: a live file output carries the voice input's sound, in sync with the mouth."""

from __future__ import annotations

import shutil
import subprocess

import av
import numpy as np
import pytest
from media_signals import av_offsets, bursts, write_wav

from engine.outputs.sinks import AudioTimeline, VideoFileSink
from engine.packets import AvatarFrame, RenderedFrame
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


def click_and_flash_offsets(path) -> list[float]:
    """Flash minus click (seconds) for each click in a file: a click is the audio rising through half
    its peak, its flash the first frame after it turned white (searched from 0.1 s before)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        flashes = [float(f.pts * stream.time_base) for f in container.decode(stream)
                   if f.to_ndarray(format="rgb24").mean() > 128]
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        blocks = [(float(f.pts * stream.time_base), f.to_ndarray().reshape(-1)) for f in container.decode(stream)]
        rate = stream.rate
    audio = np.concatenate([b for _, b in blocks])
    loud = np.flatnonzero(np.abs(audio) > 0.5 * np.abs(audio).max())
    clicks = [blocks[0][0] + i / rate for i in loud[np.r_[True, np.diff(loud) > rate // 5]]]
    offsets = []
    for click in clicks:
        after = [f for f in flashes if f >= click - 0.1]
        if after:
            offsets.append(after[0] - click)
    return offsets


def test_live_file_keeps_each_picture_with_its_sound_despite_jittered_stamps_and_clock_drift(tmp_path):
    """A microphone whose first chunk was stamped 18 ms late (a callback that ran late) and whose
    clock runs 0.12 % slow against the monotonic one (12 ms over the 10 s): the file lays its sound
    end to end, so the sound lies up to 20 ms from its stamps (a hole or cut only beyond that). A
    white frame shows each click's moment, as the mouth shows a burst's; every flash lands within
    one frame of its click in the written file, at the start and at the end of the run."""
    rate, chunk = 16000, 160
    out = tmp_path / "drift.mp4"
    sink = VideoFileSink(out)
    sink.add_audio(rate)
    sink.open(64, 48, FPS)
    period = chunk / rate * 1.0012  # monotonic seconds per chunk of samples
    t0 = 100.0
    clicks = [50 + 103 * i for i in range(9)]  # chunk numbers: about one a second, at every phase of the frames
    tone = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(chunk) / rate).astype(np.float32)
    newest, next_tick, flash_until = None, 0.0, -1
    for k in range(1000):
        t = t0 + k * period + (0.018 if k == 0 else 0.0)
        sink.write_audio(tone if k in clicks else np.zeros(chunk, np.float32), t)
        newest = t
        if k in clicks:
            flash_until = k + 10  # the "mouth" stays open 100 ms
        if k * period >= next_tick:  # a render tick: the frame shows the newest sound's moment
            next_tick += 1.0 / FPS
            white = k <= flash_until
            state = AvatarFrame(t_capture=newest, sequence=k, controls={}, t_voice=newest)
            image = np.full((48, 64, 3), 255 if white else 0, np.uint8)
            sink.write(RenderedFrame(image=image, t_capture=newest, sequence=k, fresh=True, state=state))
    sink.close()
    offsets = click_and_flash_offsets(out)
    assert len(offsets) == len(clicks), offsets
    # The flash shows a moment up to one tick after its click and is on screen while that moment's
    # sound plays: within one frame either way, start and end alike.
    assert all(abs(o) < 1.0 / FPS for o in offsets), [round(o * 1000, 1) for o in offsets]


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command to make the test video")
def test_live_recording_from_a_video_with_sound_stays_in_sync_from_start_to_end(tmp_path, face_model):
    """10 s of a video file with its own sound track (a test pattern, and vowel bursts about every
    0.8 s, muxed by ffmpeg), recorded live: the mouth follows each burst within one frame at the
    start of the recording and still at its end (no drift between the sound's clock and the picture)."""
    wav = write_wav(tmp_path / "bursts.wav", bursts(12))
    clip = tmp_path / "clip.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30", "-i", str(wav),
                    "-shortest", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-y", str(clip)], check=True)
    out = tmp_path / "live.mp4"
    session = build_session(SessionSpec(source=SourceKind.VIDEO, path=clip, audio=clip, face_model=face_model,
                                        size=(320, 180), fps=FPS, sinks=(VideoFileSink(out),)))
    with session:
        assert session.wait(40.0)
    assert session.error is None and not session.sink_errors
    offsets = av_offsets(out)
    assert len(offsets) >= 10, offsets
    ms = [round(o * 1000) for o in offsets]
    print(f"mouth - sound (ms): {ms}")  # docs/PERFORMANCE.md (pytest -s)
    assert abs(float(np.median(offsets[:3]))) <= 1.0 / FPS, ms
    assert abs(float(np.median(offsets[-3:]))) <= 1.0 / FPS, ms
    assert min(offsets) >= -1.0 / FPS and max(offsets) <= 0.25, ms  # late only by a render stall
