"""Synthetic test sounds: silence, a vowel-like buzz, clicks; written as 16-bit WAV."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

RATE = 16000


def vowel(seconds: float, rate: int = RATE, f0: float = 140.0) -> np.ndarray:
    """A sustained 'aa'-like vowel: harmonics of ``f0`` shaped by formants near 730 and 1150 Hz,
    with a 3 Hz syllable rhythm in its loudness (a pure tone does not open a mouth)."""
    t = np.arange(int(seconds * rate)) / rate
    signal = np.zeros_like(t)
    for k in range(1, int(7000 / f0)):
        f = k * f0
        gain = 1 / (1 + ((f - 730) / 120) ** 2) + 0.6 / (1 + ((f - 1150) / 150) ** 2) + 0.05
        signal += gain * np.sin(2 * np.pi * f * t)
    signal *= 0.4 / np.abs(signal).max() * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    return signal.astype(np.float32)


def silence(seconds: float, rate: int = RATE) -> np.ndarray:
    return np.zeros(int(seconds * rate), dtype=np.float32)


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def onsets(levels: np.ndarray, times: np.ndarray, threshold: float, refractory: float = 0.4) -> list[float]:
    """Times where ``levels`` rises through ``threshold`` (linear interpolation between samples),
    at most one per ``refractory`` seconds."""
    found: list[float] = []
    for i in range(1, len(levels)):
        if found and times[i] - found[-1] < refractory:
            continue
        if levels[i - 1] < threshold <= levels[i]:
            share = (threshold - levels[i - 1]) / (levels[i] - levels[i - 1])
            found.append(float(times[i - 1] + share * (times[i] - times[i - 1])))
    return found


def bursts(count: int, every_s: float = 0.8, length_s: float = 0.15, lead_s: float = 0.6) -> np.ndarray:
    """A click-and-flash style signal for the mouth: short vowel bursts (the mouth's 'flash') at
    known times after ``lead_s`` of silence, silence between them."""
    gap = silence(every_s - length_s)
    parts = [silence(lead_s)]
    for _ in range(count):
        parts += [vowel(length_s), gap]
    return np.concatenate(parts)


def av_offsets(path: Path, mouth_box=((0.47, 0.58), (0.45, 0.55)), window=(-0.2, 0.3)) -> list[float]:
    """Mouth minus sound onset (seconds) for each sound burst in the file: the sound's onset is where
    the audio track's envelope rises through half its peak; the mouth's is where the mouth region's
    change rises through half its peak within ``window`` around that burst (measured against the
    lowest level of the 0.4 s before, since the head's slow idle drift moves the region too)."""
    import av

    with av.open(str(path)) as container:
        vstream = container.streams.video[0]
        frames, times = [], []
        for frame in container.decode(vstream):
            frames.append(frame.to_ndarray(format="rgb24").astype(np.int16))
            times.append(float(frame.pts * vstream.time_base))
    with av.open(str(path)) as container:
        astream = container.streams.audio[0]
        blocks, starts = [], []
        for frame in container.decode(astream):
            blocks.append(frame.to_ndarray().reshape(-1))
            starts.append(float(frame.pts * astream.time_base))
        rate = astream.rate
    audio = np.concatenate(blocks)
    hop = rate // 200  # 5 ms envelope
    envelope = np.array([np.abs(audio[i:i + hop]).max() for i in range(0, len(audio) - hop, hop)])
    env_t = starts[0] + np.arange(len(envelope)) * hop / rate
    h, w = frames[0].shape[:2]
    (y0, y1), (x0, x1) = mouth_box
    box = (slice(int(y0 * h), int(y1 * h)), slice(int(x0 * w), int(x1 * w)))
    change = np.array([np.abs(f[box] - frames[0][box]).mean() for f in frames])
    t_v = np.array(times)
    offsets = []
    for sound in onsets(envelope, env_t, 0.5 * envelope.max()):
        near = (t_v >= sound + window[0]) & (t_v <= sound + window[1])
        before = (t_v >= sound + window[0] - 0.4) & (t_v < sound + window[0])
        if near.sum() < 3 or not before.any():
            continue
        rise = change[near] - change[before].min()
        mouth = onsets(rise, t_v[near], 0.5 * rise.max())
        if mouth:
            offsets.append(mouth[0] - sound)
    return offsets
