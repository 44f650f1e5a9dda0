"""Audio sources, resampling and the capture -> analysis ring buffer."""

from __future__ import annotations

import threading
import time

import av
import numpy as np
import pytest
from conftest import shared_file

from engine.capture.audio import AudioFileSource
from engine.capture.decode import read_audio
from engine.capture.resample import RATE, Resampler, to_mono, to_mono_16k
from engine.capture.ring import AudioRing
from engine.capture.video import NoVideoSource
from engine.errors import SourceError


def tone(rate: int, seconds: float, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    mono = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.repeat(mono[:, None], channels, axis=1).astype(np.float32)


def dominant_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / RATE)[np.argmax(spectrum)])


@pytest.mark.parametrize("rate,channels", [(8000, 1), (44100, 2), (48000, 2), (192000, 6), (16000, 1)])
def test_any_rate_and_channel_count_becomes_16k_mono(rate, channels):
    out = to_mono_16k(tone(rate, 1.0, 440.0, channels), rate)
    assert out.dtype == np.float32 and out.ndim == 1
    assert len(out) == pytest.approx(RATE, abs=2)
    assert dominant_hz(out) == pytest.approx(440.0, abs=2.0)
    assert np.abs(out[2000:-2000]).max() == pytest.approx(0.5, abs=0.02)


def test_streaming_resampler_matches_whole_signal_and_leaves_no_clicks():
    signal = tone(44100, 1.0, 300.0, 2)
    resampler = Resampler(44100)
    pieces = [resampler(signal[i:i + 441]) for i in range(0, len(signal), 441)]
    pieces.append(resampler(np.zeros((0, 2), np.float32), last=True))
    streamed = np.concatenate(pieces)
    assert len(streamed) == pytest.approx(RATE, abs=2)
    steady = streamed[1000:-1000]
    assert np.abs(np.diff(steady)).max() < 0.1  # a 300 Hz sine moves < 0.06 per sample: no jumps
    assert resampler.delay_s < 0.01


def test_integer_samples_are_scaled_to_plus_minus_one():
    assert to_mono(np.array([[32767, -32768]], dtype=np.int16))[0] == pytest.approx(0.0, abs=1e-4)
    assert to_mono(np.array([-32768], dtype=np.int16))[0] == -1.0


def test_ring_hands_over_samples_in_order_with_capture_times():
    ring = AudioRing(seconds=1.0)
    ring.write(np.arange(160, dtype=np.float32), 10.0)
    ring.write(np.arange(160, 320, dtype=np.float32), 10.01)
    samples, t_first = ring.read(timeout=0)
    assert np.array_equal(samples, np.arange(320, dtype=np.float32))
    assert t_first == pytest.approx(10.0)
    assert ring.read(timeout=0) is None


def test_ring_overrun_drops_the_oldest_and_counts_it():
    ring = AudioRing(seconds=0.1)  # 1600 samples
    for i in range(5):
        ring.write(np.full(1000, i, dtype=np.float32), 1.0 + i * 1000 / RATE)
    samples, t_first = ring.read(timeout=0)
    assert len(samples) == 1600 and ring.overrun_samples == 5000 - 1600
    assert samples[-1] == 4 and samples[0] == 3
    assert t_first == pytest.approx(1.0 + (5000 - 1600) / RATE)


def test_ring_read_waits_for_the_writer_and_close_wakes_it():
    ring = AudioRing()
    got = []
    reader = threading.Thread(target=lambda: got.append(ring.read(timeout=5.0)))
    reader.start()
    ring.write(np.ones(10, np.float32), 3.0)
    reader.join(2.0)
    assert got and len(got[0][0]) == 10
    waiter = threading.Thread(target=lambda: got.append(ring.read(timeout=5.0)))
    waiter.start()
    ring.close()
    waiter.join(2.0)
    assert not waiter.is_alive() and got[-1] is None


def _write_audio(path, samples: np.ndarray, rate: int, codec: str, layout: str) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        fmt = stream.codec_context.format.name
        frame_size = stream.codec_context.frame_size or 1024
        for start in range(0, len(samples), frame_size):
            block = samples[start:start + frame_size]
            if fmt.startswith("s16"):
                block = (block * 32767).astype(np.int16)
            elif fmt.startswith("s32"):
                block = (block * 2147483647).astype(np.int32)
            data = block.T.copy() if fmt.endswith("p") else block.reshape(1, -1).copy()
            frame = av.AudioFrame.from_ndarray(data, format=fmt, layout=layout)
            frame.sample_rate = rate
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


@pytest.mark.parametrize("suffix,codec", [(".flac", "flac"), (".mp3", "libmp3lame"), (".wav", "pcm_s16le")])
def test_audio_files_decode_to_16k_mono(tmp_path, suffix, codec):
    if codec not in av.codecs_available:
        pytest.skip(f"FFmpeg here has no {codec} encoder")
    path = tmp_path / f"tone{suffix}"
    _write_audio(path, tone(44100, 1.0, 500.0, 2), 44100, codec, "stereo")
    out = read_audio(path)
    assert len(out) == pytest.approx(RATE, rel=0.1)
    assert dominant_hz(out[4000:12000]) == pytest.approx(500.0, abs=3.0)


def test_video_audio_track_is_read():
    out = read_audio(shared_file("media/talking_hdtf_katiehill.mp4"))
    assert len(out) == pytest.approx(8 * RATE, rel=0.01)
    assert np.abs(out).max() > 0.1


@pytest.mark.parametrize("content,message", [(b"not audio at all", "not an audio or video file"), (None, "no such file")])
def test_bad_files_raise_a_clear_source_error(tmp_path, content, message):
    path = tmp_path / "bad.wav"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SourceError, match=message) as info:
        AudioFileSource(path).open()
    assert "WAV, MP3 or FLAC" in str(info.value)


def test_a_video_without_sound_is_reported(tmp_path):
    path = tmp_path / "silent.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    with pytest.raises(SourceError, match="no audio track"):
        read_audio(path)


def test_unpaced_file_source_delivers_10_ms_chunks_on_media_time():
    source = AudioFileSource(shared_file("media/speech_imagine.wav"), paced=False)
    source.open()
    assert source.rate == 48000 and source.channels == 2
    chunks = list(iter(source.read, None))
    source.close()
    assert all(len(c.samples) == 160 for c in chunks[:-1])
    assert np.allclose(np.diff([c.t_capture for c in chunks]), 0.01)
    total = sum(len(c.samples) for c in chunks)
    assert total == pytest.approx(5.6056 * RATE, abs=200)


def test_paced_file_source_runs_like_a_microphone():
    source = AudioFileSource(shared_file("media/speech_radio31.wav"))
    source.open()
    start = time.monotonic()
    chunks = [source.read() for _ in range(30)]
    elapsed = time.monotonic() - start
    source.close()
    assert source.read() is None
    # 30 chunks of 10 ms are released over ~0.3 s, each once its last sample is "captured".
    assert elapsed >= 0.28
    assert chunks[-1].t_capture - chunks[0].t_capture == pytest.approx(0.29, abs=1e-6)
    assert all(c.t_end <= time.monotonic() for c in chunks)


def test_paired_audio_takes_the_video_timeline():
    class FakeVideo:
        media_origin = None  # fixed by the video's first frame, here by the timer below

    video = FakeVideo()
    origin = time.monotonic() + 0.05
    timer = threading.Timer(0.02, lambda: setattr(video, "media_origin", origin))
    timer.start()
    source = AudioFileSource(shared_file("media/speech_radio31.wav"), origin=lambda: video.media_origin)
    source.open()
    first = source.read()
    source.close()
    timer.join()
    assert first.t_capture == pytest.approx(origin, abs=1e-9)  # media time 0 of both is one instant


def test_close_interrupts_a_blocked_read():
    source = AudioFileSource(shared_file("media/speech_radio31.wav"), origin=lambda: None)
    source.open()
    source.read()
    done = []
    reader = threading.Thread(target=lambda: done.append([source.read() for _ in range(200)]))
    reader.start()
    time.sleep(0.05)  # let it block on pacing (this sleep is not synchronisation; the join is)
    source.close()
    reader.join(1.0)
    assert not reader.is_alive()


def test_no_video_source_ends_when_closed():
    source = NoVideoSource()
    source.open()
    timer = threading.Timer(0.05, source.close)
    timer.start()
    assert source.read() is None


def test_a_video_and_its_own_audio_share_one_timeline():
    from engine.capture.video import VideoFileSource

    clip = shared_file("media/talking_hdtf_katiehill.mp4")
    video = VideoFileSource(clip, paced=True)
    audio = AudioFileSource(clip, origin=lambda: video.media_origin)
    video.open()
    audio.open()
    try:
        frames = [video.read() for _ in range(3)]  # 25 fps: media times 0, 0.04, 0.08
        chunks = [audio.read() for _ in range(8)]  # 10 ms chunks: media times 0 .. 0.07
    finally:
        video.close()
        audio.close()
    origin = video.media_origin  # monotonic time of the video's media time 0
    assert origin is not None and frames[0].t_capture >= origin  # a frame is released at or after it is due
    assert chunks[0].t_capture == pytest.approx(origin, abs=1e-9)  # the audio's media time 0 is the same instant
    assert chunks[4].t_capture - chunks[0].t_capture == pytest.approx(0.04, abs=1e-6)  # media clock
