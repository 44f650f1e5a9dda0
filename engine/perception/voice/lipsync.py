"""Lip-sync: 16 kHz mono audio -> viseme weights and ARKit mouth controls every 10 ms.

Streaming and causal: ``LipSync.process(samples, t_first)`` takes blocks of any length and returns
one ``MouthFrame`` per 10 ms hop whose 25 ms analysis window is complete.

How the jaw is estimated (hand-designed; see docs/VOICE.md for the measurements behind it). The jaw
does not follow loudness alone: open vowels put more energy in the 1-3 kHz band relative to the
whole spectrum (spectral balance, "tilt") and have a high first formant (F1). Per hop:

* ``level``: the 80-7000 Hz energy in dB, placed between a tracked noise floor and a tracked speech
  peak (automatic gain: a quiet and a loud microphone give the same mouth), 0..1;
* ``tilt``: energy share of 1-3 kHz against the whole band, 0..1.5;
* ``F1``: first formant from LPC (order 8 at 8 kHz) in kHz;
* ``gate``: how far the level stands above the noise floor (silence -> 0, so the mouth rests);
* openness = gate * sqrt(level) * (tilt + F1), scaled to 0..1.

Vowel visemes (aa, ih, ee, oh, ou) come from the distance of (F1, F2) to textbook vowel formants,
weighted by voicing; SS/FF (fricatives) from an unvoiced, high-centroid spectrum; PP (closed lips,
nasals) from voiced low-band murmur; ``sil`` is what the gate leaves. Co-articulation: each channel
goes through an attack/release smoother (the jaw opens in ~20 ms, closes in ~40 ms; visemes cross-fade
over ~40 ms), so shapes blend into each other as in real speech instead of switching per hop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from engine.capture.resample import RATE

HOP = 160  # 10 ms at 16 kHz
WINDOW = 400  # 25 ms
NFFT = 512
VISEMES = ("sil", "PP", "FF", "SS", "aa", "ih", "ee", "oh", "ou")
VOWELS = ("aa", "ih", "ee", "oh", "ou")
# Adult average formants (Hz), F1 and F2 (Peterson & Barney style) of each vowel viseme.
_VOWEL_FORMANTS = {"aa": (730.0, 1150.0), "ih": (420.0, 1900.0), "ee": (290.0, 2250.0),
                   "oh": (520.0, 880.0), "ou": (330.0, 900.0)}
# ARKit mouth controls driven by lip-sync, each a weighted sum of visemes (times openness for 'jaw').
MOUTH_CONTROLS = ("jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthStretchLeft",
                  "mouthStretchRight", "mouthSmileLeft", "mouthSmileRight", "mouthLowerDownLeft",
                  "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight", "mouthRollLower",
                  "mouthPressLeft", "mouthPressRight", "mouthShrugUpper")
_SHAPES: dict[str, dict[str, float]] = {
    "mouthFunnel": {"oh": 0.55, "ou": 0.45},
    "mouthPucker": {"ou": 0.7, "oh": 0.25},
    "mouthStretchLeft": {"ee": 0.35, "ih": 0.25, "SS": 0.2},
    "mouthStretchRight": {"ee": 0.35, "ih": 0.25, "SS": 0.2},
    "mouthSmileLeft": {"ee": 0.25, "ih": 0.1},
    "mouthSmileRight": {"ee": 0.25, "ih": 0.1},
    "mouthUpperUpLeft": {"SS": 0.3, "FF": 0.2, "ee": 0.1},
    "mouthUpperUpRight": {"SS": 0.3, "FF": 0.2, "ee": 0.1},
    "mouthRollLower": {"FF": 0.5},
    "mouthPressLeft": {"PP": 0.45},
    "mouthPressRight": {"PP": 0.45},
    "mouthClose": {"PP": 0.25},
    "mouthShrugUpper": {"ou": 0.15, "PP": 0.1},
}
_LOWER_DOWN = {"aa": 0.5, "ih": 0.3, "ee": 0.2}  # lower lip drops with the jaw on open vowels


@dataclass(frozen=True, slots=True)
class LipSyncOptions:
    """Tuning. Times in seconds, levels in dB."""

    attack_s: float = 0.02  # jaw opening time constant
    release_s: float = 0.04  # jaw closing time constant
    viseme_s: float = 0.04  # viseme cross-fade time constant
    dynamic_range_db: float = 40.0  # level below the speech peak that still opens the mouth
    gate_db: float = 9.0  # above the noise floor: the mouth starts to move...
    silence_below_peak_db: float = 32.0  # ...and at least this far below the speech peak is silence;
    gate_width_db: float = 6.0  # the gate opens fully this much higher
    floor_rise_db_s: float = 0.5  # noise floor creeps up this fast (falls at once)...
    floor_below_peak_db: float = 30.0  # ...and stays this far below the speech peak
    peak_decay_db_s: float = 0.5  # speech peak decays this fast (rises at once)
    initial_peak_db: float = -20.0  # dBFS peak assumed before any speech was heard
    initial_floor_db: float = -75.0
    openness_scale: float = 0.35  # openness of (level 1, tilt 1, F1 0.75 kHz) -> jawOpen 0.6
    max_jaw: float = 0.9
    # Reported times are this much earlier than the sound (0 live). Mouths open slightly before the
    # sound they make; offline (a whole file) the analysis can show that, live it cannot.
    lead_s: float = 0.0


@dataclass(frozen=True, slots=True)
class MouthFrame:
    """One 10 ms hop: ``t`` is the capture time of the window's centre sample (monotonic seconds);
    ``t_ready`` that of its newest sample (when the frame could first exist)."""

    t: float
    t_ready: float
    visemes: Mapping[str, float]  # VISEMES -> 0..1, summing to 1
    controls: Mapping[str, float]  # MOUTH_CONTROLS -> 0..1
    level: float  # 0..1 between noise floor and speech peak
    energy_db: float  # dBFS of the window
    voiced: float  # 0..1
    f1_hz: float
    f2_hz: float

    @property
    def jaw_open(self) -> float:
        return self.controls["jawOpen"]

    @property
    def viseme(self) -> str:
        return max(self.visemes, key=self.visemes.__getitem__)


def _lpc(frame: np.ndarray, order: int) -> list[float] | None:
    """LPC coefficients (Levinson-Durbin on the autocorrelation); None for a silent frame.
    Plain floats: for order 8 that is several times faster than numpy's per-call overhead."""
    n = len(frame)
    r = [float(np.dot(frame[:n - k], frame[k:])) for k in range(order + 1)]
    if r[0] <= 1e-10:
        return None
    r[0] *= 1.0 + 1e-6  # white-noise correction keeps the recursion stable
    a = [1.0] + [0.0] * order
    err = r[0]
    for i in range(1, order + 1):
        k = -(r[i] + sum(a[j] * r[i - j] for j in range(1, i))) / err
        a = [a[j] + k * a[i - j] if 0 < j < i else a[j] for j in range(i)] + [k] + a[i + 1:]
        err *= 1.0 - k * k
        if err <= 0:
            return None
    return a


_DECIMATED_WINDOW = np.hamming(WINDOW // 2)


def formants(frame16: np.ndarray) -> tuple[float, float]:
    """(F1, F2) in Hz of one 16 kHz frame, 0 where not found: LPC order 8 at 8 kHz, pre-emphasised."""
    x = np.convolve(frame16, (0.25, 0.5, 0.25), "same")[::2].astype(np.float64)
    x[1:] -= 0.9 * x[:-1].copy()
    x *= _DECIMATED_WINDOW if len(x) == len(_DECIMATED_WINDOW) else np.hamming(len(x))
    a = _lpc(x, 8)
    if a is None:
        return 0.0, 0.0
    roots = np.roots(a)
    roots = roots[np.imag(roots) > 0.01]
    freqs = np.angle(roots) * 8000.0 / (2 * math.pi)
    bandwidth = -np.log(np.abs(roots)) * 8000.0 / math.pi
    found = np.sort(freqs[(freqs > 200.0) & (bandwidth < 500.0)])
    return (float(found[0]) if len(found) > 0 else 0.0, float(found[1]) if len(found) > 1 else 0.0)


class _Smoother:
    """Per-channel one-pole smoother with separate rise and fall time constants (seconds)."""

    def __init__(self, channels: int, rise_s: float, fall_s: float, dt: float) -> None:
        self.a_rise = 1.0 - math.exp(-dt / rise_s)
        self.a_fall = 1.0 - math.exp(-dt / fall_s)
        self.value = np.zeros(channels)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        alpha = np.where(x > self.value, self.a_rise, self.a_fall)
        self.value = self.value + alpha * (x - self.value)
        return self.value


class LipSync:
    """Streaming audio -> ``MouthFrame`` every 10 ms. Not thread-safe: one analyser per stream.

    ``process(samples, t_first)``: ``samples`` is 16 kHz mono float32, ``t_first`` the capture
    time of its first sample. Gaps or overlaps in time are tolerated (the clock follows the samples).
    """

    def __init__(self, options: LipSyncOptions | None = None) -> None:
        self.options = options = options or LipSyncOptions()
        self._buffer = np.zeros(0, dtype=np.float32)
        self._t_buffer = 0.0  # capture time of _buffer[0]
        self._window = np.hanning(WINDOW).astype(np.float32)
        freqs = np.fft.rfftfreq(NFFT, 1.0 / RATE)
        self._freqs = freqs
        self._band_all = (freqs >= 80) & (freqs < 7000)
        self._band_low = (freqs >= 80) & (freqs < 300)
        self._band_mid = (freqs >= 1000) & (freqs < 3000)
        self._band_high = (freqs >= 3000) & (freqs < 7000)
        dt = HOP / RATE
        self._dt = dt
        self._peak = options.initial_peak_db
        self._floor = options.initial_floor_db
        self._jaw = _Smoother(1, options.attack_s, options.release_s, dt)
        self._visemes = _Smoother(len(VISEMES), options.viseme_s, options.viseme_s, dt)
        self._visemes.value[0] = 1.0
        self._vowel_f = np.array([_VOWEL_FORMANTS[v] for v in VOWELS])

    def reset(self) -> None:
        """Forget buffered audio (a gap in the stream); the level trackers keep what they learnt."""
        self._buffer = np.zeros(0, dtype=np.float32)

    def process(self, samples: np.ndarray, t_first: float) -> list[MouthFrame]:
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if len(self._buffer) == 0:
            self._t_buffer = t_first
        self._buffer = np.concatenate([self._buffer, samples])
        frames: list[MouthFrame] = []
        start = 0
        while start + WINDOW <= len(self._buffer):
            t0 = self._t_buffer + start / RATE
            frames.append(self._analyse(self._buffer[start:start + WINDOW], t0))
            start += HOP
        if start:
            self._buffer = self._buffer[start:]
            self._t_buffer += start / RATE
        return frames

    def _analyse(self, frame: np.ndarray, t0: float) -> MouthFrame:
        o = self.options
        spectrum = np.abs(np.fft.rfft(frame * self._window, NFFT)) ** 2 + 1e-12
        all_p = float(spectrum[self._band_all].sum())
        energy_db = 10.0 * math.log10(float(np.mean(frame * frame)) + 1e-12) + 3.0  # dBFS: a full-scale sine is 0
        low_db = 10.0 * math.log10(float(spectrum[self._band_low].sum()) / all_p)
        mid_db = 10.0 * math.log10(float(spectrum[self._band_mid].sum()) / all_p)
        high_db = 10.0 * math.log10(float(spectrum[self._band_high].sum()) / all_p)
        centroid = float((spectrum * self._freqs).sum() / spectrum.sum())
        # Level trackers: the floor falls at once and creeps up; the peak rises at once and decays.
        self._floor = min(energy_db, self._floor + o.floor_rise_db_s * self._dt, self._peak - o.floor_below_peak_db)
        self._peak = max(energy_db, self._peak - o.peak_decay_db_s * self._dt, self._floor + o.dynamic_range_db / 2)
        threshold = max(self._floor + o.gate_db, self._peak - o.silence_below_peak_db)
        gate = min(1.0, max(0.0, (energy_db - threshold) / o.gate_width_db))
        level = min(1.0, max(0.0, (energy_db - self._peak + o.dynamic_range_db) / o.dynamic_range_db))
        tilt = min(1.5, max(0.0, (mid_db + 25.0) / 25.0))
        f1, f2 = formants(frame) if gate > 0.0 else (0.0, 0.0)
        # Voicing: energy below 3 kHz dominates and a plausible F1 exists.
        voiced = gate * (1.0 if f1 > 0.0 else 0.3) * min(1.0, max(0.0, (high_db + 3.0) / -12.0 + 1.0))
        voiced = min(1.0, max(0.0, voiced))
        openness = gate * math.sqrt(level) * (tilt + min(f1, 1200.0) / 1000.0) * o.openness_scale
        jaw = float(self._jaw(np.array([min(o.max_jaw, openness)]))[0])

        raw = np.zeros(len(VISEMES))
        raw[0] = 1.0 - gate
        fricative = gate * (1.0 - voiced) * min(1.0, max(0.0, (centroid - 2500.0) / 2000.0))
        raw[VISEMES.index("SS")] = fricative
        raw[VISEMES.index("FF")] = gate * (1.0 - voiced) - fricative
        raw[VISEMES.index("PP")] = voiced * min(1.0, max(0.0, (low_db + 3.0) / 3.0)) * (1.0 - level)
        vowel_share = max(0.0, gate - raw[1:4].sum())
        if vowel_share > 0.0 and f1 > 0.0 and f2 > 0.0:
            d = np.log(np.array([f1, f2]) / self._vowel_f)  # log-distance to each vowel's formants
            affinity = np.exp(-((d[:, 0] / 0.25) ** 2 + (d[:, 1] / 0.3) ** 2))
            if affinity.sum() < 1e-6:
                affinity = np.ones(len(VOWELS))
            raw[4:] = vowel_share * affinity / affinity.sum()
        else:
            raw[0] += vowel_share
        raw /= max(raw.sum(), 1e-9)
        visemes = self._visemes(raw)
        visemes = visemes / max(visemes.sum(), 1e-9)
        weights = dict(zip(VISEMES, visemes.tolist()))
        controls = {name: 0.0 for name in MOUTH_CONTROLS}
        controls["jawOpen"] = jaw
        for name, mix in _SHAPES.items():
            controls[name] = min(1.0, sum(weights[v] * w for v, w in mix.items()))
        lower = min(1.0, sum(weights[v] * w for v, w in _LOWER_DOWN.items()) * min(1.0, 2.0 * jaw))
        controls["mouthLowerDownLeft"] = controls["mouthLowerDownRight"] = lower
        return MouthFrame(t=t0 + WINDOW / 2 / RATE - o.lead_s, t_ready=t0 + WINDOW / RATE,
                          visemes=MappingProxyType(weights), controls=MappingProxyType(controls),
                          level=level * gate, energy_db=energy_db, voiced=voiced, f1_hz=f1, f2_hz=f2)


def analyse_signal(samples: np.ndarray, options: LipSyncOptions | None = None, block: int = 1600) -> list[MouthFrame]:
    """Run ``LipSync`` over a whole 16 kHz signal in blocks, as a live stream would; t=0 at sample 0."""
    sync = LipSync(options)
    frames: list[MouthFrame] = []
    for start in range(0, len(samples), block):
        frames.extend(sync.process(samples[start:start + block], start / RATE))
    return frames


OFFLINE_LEAD_S = 0.02  # measured: see docs/VOICE.md
OFFLINE_OPTIONS = LipSyncOptions(lead_s=OFFLINE_LEAD_S)


def lipsync_file(path) -> list[MouthFrame]:
    """Lip-sync of a whole audio file or video's audio track (``avatarcam lipsync``); t = seconds
    from the track's start, shown ``OFFLINE_LEAD_S`` ahead of the sound as a mouth moves.
    Raises ``SourceError`` for a file that is not audio."""
    from engine.capture.decode import read_audio

    return analyse_signal(read_audio(path), OFFLINE_OPTIONS)
