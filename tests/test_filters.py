"""One Euro filter with a speed floor: a still signal stays still, a fast one is not late."""

from __future__ import annotations

import numpy as np

from engine.animation.filters import OneEuroFilter

FPS = 30.0
TUNED = dict(min_cutoff=0.3, beta=8.0, speed_floor=1.2)  # the animator's defaults for mouth controls


def test_speed_floor_keeps_noise_from_opening_the_cutoff():
    rng = np.random.default_rng(0)
    raw = 0.3 + rng.normal(0.0, 0.03, size=(300, 4))  # MediaPipe-like noise of a noisy channel
    plain = OneEuroFilter(4, min_cutoff=0.3, beta=8.0)
    floored = OneEuroFilter(4, **TUNED)
    jitter = {name: np.diff(np.array([f(x, i / FPS) for i, x in enumerate(raw)])[30:], axis=0).std(axis=0).max()
              for name, f in (("plain", plain), ("floored", floored))}
    assert jitter["floored"] <= 0.005
    assert jitter["floored"] < 0.5 * jitter["plain"]


def test_fast_step_passes_within_one_frame():
    f = OneEuroFilter(1, **TUNED)
    values = [f(np.array([0.8 if i >= 10 else 0.0]), i / FPS)[0] for i in range(20)]
    assert values[10] >= 0.75 * 0.8  # the frame of the step already shows most of it
    assert values[11] >= 0.9 * 0.8


def test_fast_movement_lags_less_than_one_frame():
    """A 2 Hz open-close (speech-like) is followed with under 33 ms of lag."""
    rng = np.random.default_rng(1)
    t = np.arange(0, 6, 1 / FPS)
    clean = 0.4 * (1 - np.cos(2 * np.pi * 2.0 * t))
    f = OneEuroFilter(1, **TUNED)
    out = np.array([f(np.array([x]), ti)[0] for ti, x in zip(t, clean + rng.normal(0, 0.01, t.shape))])
    shifts_ms = np.arange(-10, 80, 1.0)
    errors = [np.mean((out[30:] - np.interp(t - s / 1000, t, clean)[30:]) ** 2) for s in shifts_ms]
    assert shifts_ms[int(np.argmin(errors))] <= 1000 / FPS


def test_reset_passes_the_next_sample_through():
    f = OneEuroFilter(2, min_cutoff=0.5)
    f(np.zeros(2), 0.0)
    f(np.zeros(2), 0.033)
    f.reset()
    assert np.allclose(f(np.array([1.0, 2.0]), 0.066), [1.0, 2.0])
