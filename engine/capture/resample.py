"""Any rate, any channel count -> 16 kHz mono float32, with a maintained resampler (soxr).

``Resampler`` is streaming: feed it blocks as they arrive (a microphone callback, a decoder) and it
returns the 16 kHz samples ready so far, keeping its filter state between blocks, so block edges
leave no clicks. ``to_mono_16k`` converts a whole signal at once.
"""

from __future__ import annotations

import numpy as np
import soxr

RATE = 16_000  # the analysis rate of every voice stage


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Frames x channels (or 1-D) of any numeric dtype -> 1-D float32 in -1..1, channels averaged."""
    data = np.asarray(samples)
    if data.dtype.kind in "iu":
        info = np.iinfo(data.dtype)
        scale = float(max(-info.min, info.max + 1))
        offset = 0.0 if data.dtype.kind == "i" else scale / 2
        data = (data.astype(np.float32) - offset) / (scale if data.dtype.kind == "i" else offset)
    data = data.astype(np.float32, copy=False)
    if data.ndim == 2:
        data = data.mean(axis=1, dtype=np.float32)
    return np.ascontiguousarray(data.reshape(-1))


class Resampler:
    """Streaming conversion of one stream at ``rate`` Hz to 16 kHz mono float32. Not thread-safe."""

    def __init__(self, rate: float, quality: str = "HQ") -> None:
        if not rate > 0:
            raise ValueError(f"sample rate must be positive, got {rate}")
        self.rate = float(rate)
        self._stream = None if int(rate) == RATE else soxr.ResampleStream(self.rate, RATE, 1, dtype="float32",
                                                                         quality=quality)

    @property
    def delay_s(self) -> float:
        """Seconds the resampler holds back (its filter's group delay); 0 at 16 kHz."""
        return 0.0 if self._stream is None else float(self._stream.delay()) / RATE

    def __call__(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        mono = to_mono(block)
        if self._stream is None:
            return mono
        return self._stream.resample_chunk(mono, last=last)


def to_mono_16k(samples: np.ndarray, rate: float) -> np.ndarray:
    """A whole signal (frames x channels or 1-D) at ``rate`` -> 16 kHz mono float32."""
    mono = to_mono(samples)
    if int(rate) == RATE:
        return mono
    return soxr.resample(mono, rate, RATE, quality="HQ").astype(np.float32, copy=False)
