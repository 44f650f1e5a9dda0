"""A ring buffer of 16 kHz samples between audio capture and analysis (DESIGN.md: audio goes
through a ring buffer, video through newest-wins slots).

The writer (a microphone callback or a file reader) appends blocks stamped with the capture time
of their first sample; the reader takes everything written since its last read, with the capture
time of the first sample it gets. A writer that gets ahead by more than the capacity overwrites
the oldest samples, which are counted in ``overrun_samples`` (never an error). Thread-safe for one
writer and one reader.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from engine.capture.resample import RATE


class AudioRing:
    def __init__(self, seconds: float = 4.0) -> None:
        self.capacity = int(seconds * RATE)
        self._data = np.zeros(self.capacity, dtype=np.float32)
        self._written = 0  # samples ever written
        self._read = 0  # samples ever read (or skipped)
        self._anchor = (0, 0.0)  # (sample number, capture time) of the newest write
        self._cond = threading.Condition()
        self._closed = False
        self.overrun_samples = 0

    def write(self, samples: np.ndarray, t_first: float) -> None:
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if len(samples) == 0:
            return
        if len(samples) > self.capacity:
            t_first += (len(samples) - self.capacity) / RATE
            samples = samples[-self.capacity:]
        with self._cond:
            start = self._written % self.capacity
            first = min(len(samples), self.capacity - start)
            self._data[start:start + first] = samples[:first]
            self._data[:len(samples) - first] = samples[first:]
            self._anchor = (self._written, t_first)
            self._written += len(samples)
            if self._written - self._read > self.capacity:
                self.overrun_samples += self._written - self._read - self.capacity
                self._read = self._written - self.capacity
            self._cond.notify_all()

    def read(self, timeout: float | None = None, min_samples: int = 1) -> tuple[np.ndarray, float] | None:
        """Everything unread as (samples, capture time of the first), waiting up to ``timeout`` for at
        least ``min_samples``; None on timeout or once closed and drained."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._written - self._read < min_samples:
                if self._closed:
                    if self._written > self._read:
                        break
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            count = self._written - self._read
            start = self._read % self.capacity
            first = min(count, self.capacity - start)
            out = np.concatenate([self._data[start:start + first], self._data[:count - first]])
            anchor_index, anchor_t = self._anchor
            t_first = anchor_t + (self._read - anchor_index) / RATE
            self._read = self._written
            return out, t_first

    @property
    def available(self) -> int:
        with self._cond:
            return self._written - self._read

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def reopen(self) -> None:
        with self._cond:
            self._closed = False
