"""One Euro filter: a still signal stays still, a fast one is not late."""

from __future__ import annotations

import numpy as np

from engine.filters import OneEuroFilter

FPS = 30.0


def test_still_noisy_signal_is_smoothed_below_the_jitter_bar():
    rng = np.random.default_rng(0)
    f = OneEuroFilter(4, min_cutoff=1.5, beta=6.0)
    raw = 0.3 + rng.normal(0.0, 0.004, size=(300, 4))  # MediaPipe-like noise on a still face
    out = np.array([f(x, i / FPS) for i, x in enumerate(raw)])
    assert np.diff(out[30:], axis=0).std(axis=0).max() < 0.5 * np.diff(raw[30:], axis=0).std(axis=0).min()
    assert np.diff(out[30:], axis=0).std(axis=0).max() <= 0.005


def test_fast_step_passes_within_one_frame():
    f = OneEuroFilter(1, min_cutoff=1.5, beta=6.0)
    values = [f(np.array([0.8 if i >= 10 else 0.0]), i / FPS)[0] for i in range(20)]
    # The frame after the step already shows most of the movement; two frames later it is there.
    assert values[10] >= 0.5 * 0.8
    assert values[11] >= 0.9 * 0.8


def test_reset_passes_the_next_sample_through():
    f = OneEuroFilter(2, min_cutoff=0.5)
    f(np.zeros(2), 0.0)
    f(np.zeros(2), 0.033)
    f.reset()
    assert np.allclose(f(np.array([1.0, 2.0]), 0.066), [1.0, 2.0])
