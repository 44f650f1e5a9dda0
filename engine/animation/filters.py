"""Jitter filters for animation channels.

The One Euro filter (Casiez, Roussel & Vogel, CHI 2012) is an adaptive low-pass: at low speed its
cutoff is ``min_cutoff`` (a still face stays still), and the cutoff rises with the signal's speed
(``beta``), so a fast movement passes with little lag. ``OneEuroFilter`` runs a whole vector of
channels at once, each with its own state, so 52 blendshapes cost one numpy call.

One addition to the published filter: a speed floor. Tracker noise has a speed of its own (about
0.3 units/s for MediaPipe's noisiest blendshapes on a webcam-grain still face), and plain One Euro
opens its cutoff for it, letting the noise through. Only speed above ``speed_floor`` raises the
cutoff, so a low ``min_cutoff`` can hold a still face still while real movement, far faster than
the floor, still passes within a frame.
"""

from __future__ import annotations

import math

import numpy as np


def _alpha(cutoff_hz: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff_hz))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Vectorised One Euro filter over ``channels`` values. Not thread-safe.

    ``min_cutoff`` (Hz), ``beta`` and ``speed_floor`` (units/s) may be scalars or per-channel arrays. ``reset`` forgets the
    history so the next sample passes through unfiltered (used when tracking resumes).
    """

    def __init__(self, channels: int, min_cutoff: float | np.ndarray = 1.0, beta: float | np.ndarray = 0.0,
                 d_cutoff: float = 1.0, speed_floor: float | np.ndarray = 0.0) -> None:
        self.channels = channels
        self.min_cutoff = np.broadcast_to(np.asarray(min_cutoff, dtype=np.float64), (channels,))
        self.beta = np.broadcast_to(np.asarray(beta, dtype=np.float64), (channels,))
        self.speed_floor = np.broadcast_to(np.asarray(speed_floor, dtype=np.float64), (channels,))
        self.d_cutoff = d_cutoff
        self._x: np.ndarray | None = None
        self._dx = np.zeros(channels)
        self._t: float | None = None

    def reset(self) -> None:
        self._x = None
        self._t = None
        self._dx[:] = 0.0

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        """Filter sample ``x`` taken at time ``t`` (seconds); returns a new array."""
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._t is None or t <= self._t:
            if self._x is None or self._t is None:
                self._x, self._t = x.copy(), t
            return self._x.copy()
        dt = t - self._t
        self._t = t
        dx = (x - self._x) / dt
        self._dx += _alpha(self.d_cutoff, dt) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * np.maximum(0.0, np.abs(self._dx) - self.speed_floor)
        self._x = self._x + _alpha(cutoff, dt) * (x - self._x)
        return self._x.copy()
