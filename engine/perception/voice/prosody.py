"""Prosody: energy, pitch and speaking rate -> arousal and valence, with confidence. Always works
offline; the fallback for (and complement to) SenseVoice.

Pitch is estimated with YIN (de Cheveigné & Kawahara 2002: cumulative-mean-normalised difference,
threshold 0.15) on 40 ms windows every 10 ms. Per speaker, the estimator keeps slow running
statistics (median-like pitch, typical level) and judges the last ~2 s of voiced speech against them:

* arousal rises with loudness above the speaker's typical level, pitch raised and more varied, and a
  faster syllable rate (energy peaks per second);
* valence (weak cue, low confidence): higher, more varied pitch with moderate energy leans positive;
  low, flat, quiet speech leans negative.

Confidence grows with the amount of voiced speech heard in the window and with the number of
utterances heard from this speaker (the baseline), capped at 0.6: prosody alone is a weak emotion cue.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from engine.capture.resample import RATE
from engine.vocabulary.emotions import CIRCUMPLEX, EMOTIONS

YIN_WINDOW = 640  # 40 ms
HOP = 160
F0_MIN, F0_MAX = 70.0, 400.0


def yin_pitch(frame: np.ndarray, threshold: float = 0.15) -> tuple[float, float]:
    """(f0 Hz, periodicity 0..1) of a 16 kHz frame; f0 = 0 when unvoiced."""
    max_lag = int(RATE / F0_MIN)
    min_lag = int(RATE / F0_MAX)
    n = len(frame) - max_lag
    if n <= 0:
        return 0.0, 0.0
    x = frame.astype(np.float64)
    energy = np.cumsum(np.concatenate([[0.0], x * x]))
    # d(tau) = sum (x_j - x_{j+tau})^2 over the first n samples, via energies and a correlation.
    corr = np.correlate(x[:n + max_lag], x[:n], "valid")[:max_lag + 1]
    e0 = energy[n] - energy[0]
    e_tau = energy[np.arange(max_lag + 1) + n] - energy[np.arange(max_lag + 1)]
    d = e0 + e_tau - 2.0 * corr
    d[0] = 0.0
    cmnd = np.ones_like(d)
    running = np.cumsum(d[1:])
    cmnd[1:] = d[1:] * np.arange(1, len(d)) / np.maximum(running, 1e-12)
    below = np.nonzero(cmnd[min_lag:] < threshold)[0]
    if len(below) == 0:
        return 0.0, float(max(0.0, 1.0 - cmnd[min_lag:].min()))
    tau = below[0] + min_lag
    while tau + 1 < len(cmnd) and cmnd[tau + 1] < cmnd[tau]:
        tau += 1
    if 1 <= tau < len(cmnd) - 1:  # parabolic interpolation
        a, b, c = cmnd[tau - 1], cmnd[tau], cmnd[tau + 1]
        shift = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) != 0 else 0.0
    else:
        shift = 0.0
    return RATE / (tau + shift), float(max(0.0, 1.0 - cmnd[tau]))


@dataclass(frozen=True, slots=True)
class ProsodyEstimate:
    energy_db: float
    pitch_hz: float  # newest voiced f0, 0 when unvoiced
    rate_hz: float  # syllable-like energy peaks per second over the window
    arousal: float  # -1..1
    valence: float  # -1..1
    confidence: float  # 0..1
    scores: dict  # EMOTIONS -> probability


class ProsodyEstimator:
    """Streaming prosody over 10 ms hops. Not thread-safe."""

    def __init__(self, window_s: float = 2.0) -> None:
        self._buffer = np.zeros(0, dtype=np.float32)
        size = int(window_s * RATE / HOP)
        self._pitch = deque(maxlen=size)
        self._energy = deque(maxlen=size)
        self._speech = deque(maxlen=size)
        self._baseline_pitch = 0.0
        self._baseline_energy = -25.0
        self._voiced_hops = 0
        self.pitch_hz = 0.0
        self.energy_db = -100.0

    def process(self, samples: np.ndarray, speaking: float) -> None:
        """Feed 16 kHz samples and the current speaking probability."""
        self._buffer = np.concatenate([self._buffer, np.asarray(samples, dtype=np.float32).reshape(-1)])
        while len(self._buffer) >= YIN_WINDOW:
            frame = self._buffer[:YIN_WINDOW]
            self._buffer = self._buffer[HOP:]
            self.energy_db = 10 * math.log10(float(np.mean(frame * frame)) + 1e-12) + 3.0
            f0, periodicity = yin_pitch(frame) if speaking > 0.5 and self.energy_db > -50 else (0.0, 0.0)
            if periodicity < 0.5:
                f0 = 0.0
            self.pitch_hz = f0
            self._pitch.append(f0)
            self._energy.append(self.energy_db)
            self._speech.append(speaking)
            if f0 > 0:
                self._voiced_hops += 1
                rate = 0.002 if self._voiced_hops > 1 else 1.0  # the first voiced hop sets the baseline
                self._baseline_pitch += rate * (f0 - self._baseline_pitch)
                self._baseline_energy += rate * (self.energy_db - self._baseline_energy)

    def estimate(self) -> ProsodyEstimate:
        pitch = np.array(self._pitch)
        voiced = pitch[pitch > 0] if len(pitch) else pitch
        energy = np.array(self._energy) if self._energy else np.array([-100.0])
        speech = np.array(self._speech) if self._speech else np.array([0.0])
        if len(voiced) < 10 or not self._baseline_pitch:
            return ProsodyEstimate(self.energy_db, self.pitch_hz, 0.0, 0.0, 0.0, 0.0,
                                   dict(zip(EMOTIONS, [1.0] + [0.0] * 6)))
        semitones = 12 * np.log2(voiced / self._baseline_pitch)
        pitch_raise = float(np.median(semitones))  # semitones above the speaker's usual pitch
        pitch_var = float(np.std(semitones))  # semitones
        loud = float(np.percentile(energy[speech > 0.5], 90) - self._baseline_energy) if (speech > 0.5).any() else 0.0
        # Syllable rate: peaks of the smoothed energy over speech.
        smooth = np.convolve(energy, np.ones(5) / 5, "same")
        peaks = (smooth[1:-1] > smooth[:-2]) & (smooth[1:-1] >= smooth[2:]) & (smooth[1:-1] > smooth.max() - 25)
        speech_s = max(0.2, float((speech > 0.5).sum()) * HOP / RATE)
        rate = float(peaks.sum()) / speech_s
        arousal = math.tanh(0.12 * loud + 0.15 * pitch_raise + 0.12 * (pitch_var - 2.0) + 0.25 * (rate - 4.0))
        valence = math.tanh(0.1 * pitch_raise + 0.1 * (pitch_var - 2.0) - 0.05 * max(0.0, loud - 6.0))
        confidence = min(0.6, 0.6 * min(1.0, len(voiced) / 100) * min(1.0, self._voiced_hops / 300))
        return ProsodyEstimate(self.energy_db, self.pitch_hz, rate, arousal, valence, confidence,
                               emotion_scores(valence, arousal, confidence))


def emotion_scores(valence: float, arousal: float, confidence: float) -> dict:
    """7-class probabilities from a point on the valence/arousal plane; low confidence -> neutral."""
    d = np.array([(valence - v) ** 2 + (arousal - a) ** 2 for v, a in (CIRCUMPLEX[e] for e in EMOTIONS)])
    p = np.exp(-d / 0.15)
    p /= p.sum()
    p = confidence * p + (1.0 - confidence) * np.eye(len(EMOTIONS))[0]
    return dict(zip(EMOTIONS, p.round(4).tolist()))
