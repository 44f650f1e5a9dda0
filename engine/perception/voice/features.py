"""Log-mel features for the learned lip-sync, numpy only, identical in streaming and in batch.

One feature vector per 10 ms hop: the 40-band log-mel power spectrum of a 25 ms Hann window,
in dB *relative to a running speech-level reference*, divided by 20 (values sit
between about -5 and +1; digital silence from the start is SILENCE_VALUE, -3.25). The reference
makes the features independent of microphone gain without looking ahead:

* it follows the frame level up quickly (``REF_ATTACK`` per hop: a voice onset sets it within ~50 ms)
  and decays slowly (``REF_DECAY_DB`` per hop, 3 dB/s), so within a sentence it sits near the
  loud vowels' level and pauses read as "far below the voice", whatever the gain;
* it never falls under ``REF_FLOOR_DB`` (dBFS RMS), so a silent or near-silent input stays far
  below 0 instead of being amplified into speech-like values.

Delay: hop ``k`` covers samples ``[k*HOP, k*HOP + WINDOW)``; its time is the window's centre and it is
ready when the window's last sample arrives, ``FEATURE_DELAY_S`` (12.5 ms) after that centre.
``log_mel_features`` (training) is ``LogMelStream().process`` on the whole signal, so batch and
streaming share every operation.
"""

from __future__ import annotations

import numpy as np

RATE = 16_000
HOP = 160  # 10 ms
WINDOW = 400  # 25 ms
NFFT = 512
N_MELS = 40
FMIN, FMAX = 60.0, 7600.0
FEATURE_DIM = N_MELS
FEATURE_DELAY_S = (WINDOW - WINDOW // 2) / RATE
REF_FLOOR_DB = -55.0  # dBFS RMS: quieter than any voice worth animating
REF_ATTACK = 0.3  # fraction of the gap closed per hop when the level rises above the reference
REF_DECAY_DB = 0.03  # dB per hop the reference falls when the level is below it (3 dB/s)
MIN_DB = -120.0  # per-band power floor: digital silence must not give -inf
SCALE_DB = 20.0
SILENCE_VALUE = (MIN_DB - REF_FLOOR_DB) / SCALE_DB  # the feature value of digital silence in every band


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)


def _mel_filterbank() -> np.ndarray:
    """(N_MELS, NFFT//2+1) triangular HTK-mel filters."""
    bins = np.fft.rfftfreq(NFFT, 1.0 / RATE)
    edges = 700.0 * (10 ** (np.linspace(_hz_to_mel(FMIN), _hz_to_mel(FMAX), N_MELS + 2) / 2595.0) - 1.0)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling))


_WINDOW_FN = np.hanning(WINDOW + 2)[1:-1]  # periodic-like Hann without zero end points
# Power normalised so that the sum over all bins is the windowed mean square (dBFS RMS levels).
_FILTERS = _mel_filterbank() / (NFFT / 2 * np.sum(_WINDOW_FN ** 2))
_MIN_POWER = 10.0 ** (MIN_DB / 10.0)


def _mel_power(frames: np.ndarray) -> np.ndarray:
    """(n, WINDOW) samples -> (n, N_MELS) mel power (summing to the window's mean square)."""
    return (np.abs(np.fft.rfft(frames * _WINDOW_FN, NFFT, axis=1)) ** 2) @ _FILTERS.T


class LogMelStream:
    """Streaming features: feed 16 kHz float32 chunks of any length, get one row per completed hop.

    Not thread-safe. ``reset`` starts a new stream (empty buffer, reference at the floor).
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._pending = np.zeros(0, dtype=np.float64)
        self._ref = REF_FLOOR_DB
        self.hops = 0  # hops emitted since reset: hop k's centre is (k*HOP + WINDOW/2) / RATE s in

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """(n_new_hops, FEATURE_DIM) float32 for the hops whose window is now complete."""
        return self.process_levels(chunk)[0]

    def process_levels(self, chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``process`` plus, per new hop, the window's level and the running reference (both dBFS RMS),
        for a silence gate that must not be fooled by a quiet microphone."""
        self._pending = np.concatenate([self._pending, np.asarray(chunk, dtype=np.float64).reshape(-1)])
        n = (len(self._pending) - WINDOW) // HOP + 1 if len(self._pending) >= WINDOW else 0
        if n == 0:
            return np.zeros((0, FEATURE_DIM), dtype=np.float32), np.zeros(0), np.zeros(0)
        idx = np.arange(WINDOW)[None, :] + HOP * np.arange(n)[:, None]
        mel_power = _mel_power(self._pending[idx])
        self._pending = self._pending[n * HOP:]
        self.hops += n
        mel_db = 10.0 * np.log10(mel_power + _MIN_POWER)
        levels = 10.0 * np.log10(mel_power.sum(axis=1) + _MIN_POWER)
        refs = np.empty(n)
        ref = self._ref
        for i, level in enumerate(levels):  # the reference recursion is inherently sequential
            ref = ref + REF_ATTACK * (level - ref) if level > ref else max(REF_FLOOR_DB, ref - REF_DECAY_DB)
            refs[i] = ref
        self._ref = ref
        return ((mel_db - refs[:, None]) / SCALE_DB).astype(np.float32), levels, refs


def log_mel_features(samples: np.ndarray) -> np.ndarray:
    """(n_hops, FEATURE_DIM) float32 features of a whole 16 kHz signal, as the stream would give them."""
    return LogMelStream().process(samples)


def hop_times(n_hops: int) -> np.ndarray:
    """Seconds from the first sample to each hop's window centre."""
    return (np.arange(n_hops) * HOP + WINDOW / 2) / RATE
