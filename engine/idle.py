"""Idle life: what keeps the avatar alive when nothing drives it (face lost, camera off).

Blinks at natural, irregular intervals, slow breathing, a gently wandering head and small eye
saccades. Deterministic for a given seed, and a pure function of time apart from its blink/saccade
schedule, so re-rendering at any rate gives smooth motion.
"""

from __future__ import annotations

import math
import random

BLINK_SECONDS = 0.16  # a natural blink closes and reopens in ~150 ms
BLINK_INTERVAL = (1.8, 4.5)  # seconds between blinks: ~19 a minute, as people do
SACCADE_INTERVAL = (0.8, 2.5)
SACCADE_RANGE_DEG = (6.0, 3.0)  # yaw, pitch
BREATH_HZ = 0.22
BREATH_PITCH_DEG = 0.8


class IdleMotion:
    """Procedural blinks, breathing, head drift and saccades as a function of time (seconds)."""

    def __init__(self, seed: int = 7) -> None:
        self._rng = random.Random(seed)
        self._next_blink: float | None = None
        self._blink_start = -math.inf
        self._next_saccade: float | None = None
        self._gaze = (0.0, 0.0)

    def blink(self, t: float) -> float:
        """Eyelid closure 0..1 at time ``t``."""
        if self._next_blink is None:
            self._next_blink = t + self._rng.uniform(*BLINK_INTERVAL) / 2
        if t >= self._next_blink:
            self._blink_start = self._next_blink
            self._next_blink += self._rng.uniform(*BLINK_INTERVAL)
        phase = (t - self._blink_start) / BLINK_SECONDS
        return math.sin(math.pi * phase) if 0.0 <= phase <= 1.0 else 0.0

    def head(self, t: float) -> tuple[float, float, float]:
        """Small, incommensurate sines: a head that drifts without a visible loop (degrees)."""
        yaw = 2.5 * math.sin(0.31 * t) + 1.0 * math.sin(0.77 * t + 1.3)
        pitch = 1.2 * math.sin(0.23 * t + 0.4) + BREATH_PITCH_DEG * math.sin(2 * math.pi * BREATH_HZ * t)
        roll = 1.0 * math.sin(0.17 * t + 2.1)
        return yaw, pitch, roll

    def gaze(self, t: float) -> tuple[float, float]:
        """Eye direction that holds, then jumps (a saccade) to a new nearby point."""
        if self._next_saccade is None or t >= self._next_saccade:
            self._next_saccade = t + self._rng.uniform(*SACCADE_INTERVAL)
            self._gaze = (self._rng.uniform(-1, 1) * SACCADE_RANGE_DEG[0], self._rng.uniform(-1, 1) * SACCADE_RANGE_DEG[1])
        return self._gaze
