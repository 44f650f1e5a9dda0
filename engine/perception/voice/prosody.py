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

import json
import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.capture.resample import RATE
from engine.paths import MODELS_DIR
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
    """Streaming prosody over 10 ms hops: the utterance features of the last ``window_s`` of speech,
    judged against ordinary speech (the norms) and, for pitch level, against this speaker's own
    running baseline once it has been heard for a while. Not thread-safe."""

    def __init__(self, window_s: float = 2.0, norms: dict[str, tuple[float, float]] | None = None) -> None:
        self._norms = norms if norms is not None else load_norms()
        self._buffer = np.zeros(0, dtype=np.float32)
        self._hops: deque[tuple[float, float, float, float, bool]] = deque(maxlen=int(window_s * RATE / HOP))
        self._baseline_st = 0.0  # the speaker's typical pitch, semitones re 100 Hz
        self._voiced_hops = 0
        self.pitch_hz = 0.0
        self.energy_db = -100.0

    def process(self, samples: np.ndarray, speaking: float) -> None:
        """Feed 16 kHz samples and the current speaking probability."""
        self._buffer = np.concatenate([self._buffer, np.asarray(samples, dtype=np.float32).reshape(-1)])
        while len(self._buffer) >= YIN_WINDOW:
            frame = self._buffer[:YIN_WINDOW]
            self._buffer = self._buffer[HOP:]
            level, f0, low, high = measure_hop(frame, speaking > 0.5)
            self.energy_db, self.pitch_hz = level, f0
            self._hops.append((level, f0, low, high, speaking > 0.5))
            if f0 > 0:
                self._voiced_hops += 1
                rate = 0.002 if self._voiced_hops > 1 else 1.0  # the first voiced hop sets the baseline
                self._baseline_st += rate * (12 * math.log2(f0 / 100.0) - self._baseline_st)

    def estimate(self) -> ProsodyEstimate:
        hops = np.array(self._hops, dtype=np.float64) if self._hops else np.zeros((0, 5))
        features = features_from_hops(hops[:, 0], hops[:, 1], hops[:, 2], hops[:, 3], hops[:, 4] > 0) \
            if len(hops) else None
        if features is None:
            return ProsodyEstimate(self.energy_db, self.pitch_hz, 0.0, 0.0, 0.0, 0.0,
                                   dict(zip(EMOTIONS, [1.0] + [0.0] * 6)))
        norms = dict(self._norms)
        # A speaker heard for ~30 s of voiced speech is their own reference for pitch level (which
        # otherwise mostly tells men from women); until then the population norm stands in.
        known = min(1.0, self._voiced_hops / 3000)
        mean, std = norms["f0_median_st"]
        norms["f0_median_st"] = ((1 - known) * mean + known * self._baseline_st, std)
        arousal, valence, confidence = arousal_valence(features, norms)
        confidence *= 0.5 + 0.5 * known
        return ProsodyEstimate(self.energy_db, self.pitch_hz, features.rate_hz, arousal, valence, confidence,
                               emotion_scores(valence, arousal, confidence))


# --- utterance-level prosody (per file, and the live window) ------------------------------------

# Arousal cues and their signs, after the eGeMAPS findings (Eyben et al. 2016): aroused speech is
# higher and wider in pitch, louder, more dynamic, faster, and has a flatter spectrum (more energy
# above 1 kHz). Each feature is z-scored against ordinary conversational speech (PROSODY_NORMS, fitted
# by models/fit_prosody_norms.py on the project's talking-head clips) and the weights sum to 1: the
# estimate says how far this speech sits from ordinary speech in the aroused direction. F0 level alone
# is confounded with the speaker's sex, so the pitch cues that count most are relative (range, rise).
AROUSAL_WEIGHTS: dict[str, float] = {
    "f0_median_st": 0.10, "f0_range_st": 0.20, "f0_rise_st": 0.20, "alpha_ratio_db": 0.20,
    "loudness_range_db": 0.10, "level_db": 0.10, "rate_hz": 0.10,
}
NORMS_FILE = MODELS_DIR / "prosody_norms.json"


@dataclass(frozen=True, slots=True)
class ProsodyFeatures:
    """Level-, speaker- and length-robust descriptors of a stretch of speech."""

    f0_median_st: float  # median pitch, semitones re 100 Hz
    f0_range_st: float  # p90 - p10 of pitch, semitones
    f0_rise_st: float  # median - p5: how far the speech sits above its own pitch floor
    alpha_ratio_db: float  # energy 1-5 kHz over 50 Hz-1 kHz on voiced frames
    loudness_range_db: float  # p95 - p25 of the level of speech frames
    level_db: float  # p90 level of speech frames, dBFS
    rate_hz: float  # syllable-like level peaks per second of speech
    voiced_s: float  # seconds of voiced speech the figures rest on

    def as_dict(self) -> dict[str, float]:
        return {name: float(getattr(self, name)) for name in self.__slots__}  # type: ignore[attr-defined]


_BANDS = np.fft.rfftfreq(YIN_WINDOW, 1.0 / RATE)
_LOW = (_BANDS >= 50) & (_BANDS < 1000)
_HIGH = (_BANDS >= 1000) & (_BANDS < 5000)
_HANN = np.hanning(YIN_WINDOW)


def measure_hop(frame: np.ndarray, speaking: bool) -> tuple[float, float, float, float]:
    """One 40 ms frame (every 10 ms hop): (level dB, f0 Hz or 0, energy 50 Hz-1 kHz, energy 1-5 kHz);
    pitch and spectrum only for speech, where they mean something."""
    x = frame.astype(np.float64)
    level = 10 * math.log10(float(np.mean(x * x)) + 1e-12) + 3.0
    if not speaking or level <= -55.0:
        return level, 0.0, 0.0, 0.0
    f0, periodicity = yin_pitch(frame)
    if periodicity < 0.5:
        return level, 0.0, 0.0, 0.0
    spectrum = np.abs(np.fft.rfft(x * _HANN)) ** 2
    return level, f0, float(spectrum[_LOW].sum()), float(spectrum[_HIGH].sum())


def features_from_hops(level: np.ndarray, f0: np.ndarray, low: np.ndarray, high: np.ndarray,
                       speech: np.ndarray) -> ProsodyFeatures | None:
    """Utterance features from per-hop measurements (``measure_hop``); None with under 0.3 s voiced."""
    voiced = f0 > 0
    if voiced.sum() < 30 or not speech.any():
        return None
    st = 12 * np.log2(f0[voiced] / 100.0)
    alpha = 10 * math.log10((float(high[voiced].mean()) + 1e-12) / (float(low[voiced].mean()) + 1e-12))
    speech_level = level[speech]
    smooth = np.convolve(level, np.ones(5) / 5, "same")
    peaks = (smooth[1:-1] > smooth[:-2]) & (smooth[1:-1] >= smooth[2:]) & speech[1:-1] & \
        (smooth[1:-1] > np.percentile(speech_level, 50))
    return ProsodyFeatures(
        f0_median_st=float(np.median(st)), f0_range_st=float(np.percentile(st, 90) - np.percentile(st, 10)),
        f0_rise_st=float(np.median(st) - np.percentile(st, 5)), alpha_ratio_db=alpha,
        loudness_range_db=float(np.percentile(speech_level, 95) - np.percentile(speech_level, 25)),
        level_db=float(np.percentile(speech_level, 90)),
        rate_hz=float(peaks.sum() / max(0.3, speech.sum() * HOP / RATE)),
        voiced_s=float(voiced.sum() * HOP / RATE))


def prosody_features(samples: np.ndarray, speaking: np.ndarray | None = None) -> ProsodyFeatures | None:
    """Features of 16 kHz mono ``samples`` (a file, an utterance); ``speaking`` (one probability per
    10 ms hop) marks speech, else speech is what stands 15 dB above the quietest tenth."""
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    hops = max(0, (len(x) - YIN_WINDOW) // HOP + 1)
    if hops < 10:
        return None
    frames = np.lib.stride_tricks.sliding_window_view(x, YIN_WINDOW)[::HOP][:hops]
    level = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12) + 3.0
    if speaking is not None and len(speaking) >= hops:
        speech = np.asarray(speaking[:hops]) > 0.5
    else:
        speech = level > np.percentile(level, 10) + 15.0
    measured = np.array([measure_hop(frame, bool(s)) for frame, s in zip(frames, speech)])
    return features_from_hops(measured[:, 0], measured[:, 1], measured[:, 2], measured[:, 3], speech)


def load_norms(path: Path = NORMS_FILE) -> dict[str, tuple[float, float]]:
    """Mean and standard deviation of each feature over ordinary speech."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return {name: (float(v["mean"]), float(v["std"])) for name, v in data["features"].items()}


def arousal_valence(features: ProsodyFeatures, norms: dict[str, tuple[float, float]]) -> tuple[float, float, float]:
    """(arousal, valence, confidence) of utterance-level ``features``, each of the first two -1..1."""
    values = features.as_dict()
    # Clipped: one feature far outside ordinary speech (a synthetic tone, a noisy line) must not
    # outvote the others.
    z = {name: float(np.clip((values[name] - mean) / max(std, 1e-6), -3.0, 3.0)) for name, (mean, std) in norms.items()}
    arousal = math.tanh(0.8 * sum(w * z[name] for name, w in AROUSAL_WEIGHTS.items()))
    # Valence has weak prosodic cues: lively, varied pitch without shouting leans positive.
    valence = math.tanh(0.3 * (z["f0_range_st"] + z["f0_rise_st"]) / 2 - 0.3 * max(0.0, z["level_db"] - 1.0))
    confidence = min(0.6, 0.6 * min(1.0, features.voiced_s / 1.5))  # prosody alone is a weak cue
    return arousal, valence, confidence


def emotion_scores(valence: float, arousal: float, confidence: float) -> dict:
    """7-class probabilities from a point on the valence/arousal plane; low confidence -> neutral."""
    d = np.array([(valence - v) ** 2 + (arousal - a) ** 2 for v, a in (CIRCUMPLEX[e] for e in EMOTIONS)])
    p = np.exp(-d / 0.15)
    p /= p.sum()
    p = confidence * p + (1.0 - confidence) * np.eye(len(EMOTIONS))[0]
    return dict(zip(EMOTIONS, p.round(4).tolist()))
