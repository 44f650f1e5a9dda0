"""Voice activity: Silero VAD (ONNX, MIT licence) run by onnxruntime -> speaking probability.

The model (``silero_vad`` in models/manifest.json) comes from the silero-vad wheel on PyPI, fetched
and extracted by the model manager on first use; no torch is needed. It reads 32 ms windows (512
samples at 16 kHz) plus the previous window's last 64 samples as context, and carries a recurrent
state from window to window. ``SileroVad.process`` takes 16 kHz blocks of any length and returns one
probability per complete window; ``probability`` is the newest.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from engine.capture.resample import RATE
from engine.errors import ModelError
from engine.onnx_session import create_session

log = logging.getLogger(__name__)

WINDOW = 512  # samples per decision at 16 kHz (32 ms)
CONTEXT = 64


class _WindowedVad:
    """Cuts a stream of 16 kHz samples into 32 ms windows; subclasses score each window 0..1."""

    probability: float = 0.0

    def _score(self, window: np.ndarray) -> float:
        raise NotImplementedError

    def process(self, samples: np.ndarray) -> list[float]:
        """Feed 16 kHz mono samples; one speech probability (0..1) per completed 32 ms window."""
        self._pending = np.concatenate([self._pending, np.asarray(samples, dtype=np.float32).reshape(-1)])
        out: list[float] = []
        while len(self._pending) >= WINDOW:
            window, self._pending = self._pending[:WINDOW], self._pending[WINDOW:]
            self.probability = self._score(window)
            out.append(self.probability)
        return out


class SileroVad(_WindowedVad):
    """Streaming Silero VAD. Not thread-safe: one instance per audio stream."""

    def __init__(self, model_path: str | Path, threads: int = 1) -> None:
        self._session = create_session(Path(model_path), threads=threads, what="voice activity model", gpu=False)
        names = {i.name for i in self._session.get_inputs()}
        if not {"input", "state", "sr"} <= names:
            raise ModelError(f"'{model_path}' is not a Silero VAD v5+ model (inputs {sorted(names)}).",
                             "Delete it and let avatarcam download it again.")
        self._sr = np.array(RATE, dtype=np.int64)
        self.reset()

    @classmethod
    def from_manager(cls, manager=None, progress=None) -> SileroVad:
        """The VAD with its model found or downloaded through the model manager (``ModelError`` if not)."""
        from engine.models import ModelManager

        return cls((manager or ModelManager()).ensure("silero_vad", progress=progress))

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self.probability = 0.0

    def _score(self, window: np.ndarray) -> float:
        x = np.concatenate([self._context, window])[None, :]
        prob, self._state = self._session.run(None, {"input": x, "state": self._state, "sr": self._sr})
        self._context = window[-CONTEXT:]
        return float(prob.reshape(-1)[0])


class EnergyVad(_WindowedVad):
    """A fallback when the Silero model is unavailable: speech probability from level above the
    tracked noise floor (cruder: music and noise count as speech)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._floor = -70.0
        self._pending = np.zeros(0, dtype=np.float32)
        self.probability = 0.0

    def _score(self, window: np.ndarray) -> float:
        db = 10 * np.log10(float(np.mean(window * window)) + 1e-12)
        self._floor = min(db, self._floor + 0.016)  # creeps up 0.5 dB/s, falls at once
        return float(np.clip((db - self._floor - 10.0) / 10.0, 0.0, 1.0))
