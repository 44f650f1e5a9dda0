"""Learned lip-sync: features stream = batch, the ONNX contract, rest in silence, and fidelity on a clip
it never saw (talking_d6.mp4, against the jawOpen MediaPipe tracks in its video; issue 12)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import shared_file
from test_lipsync import _tracked_jaw, best_lag_r, rms_envelope, silence_mask

from engine.capture.decode import read_audio
from engine.perception.voice.features import (
    FEATURE_DIM,
    HOP,
    RATE,
    WINDOW,
    LogMelStream,
    log_mel_features,
)
from engine.perception.voice.learned_lipsync import DEFAULT_MODEL, LearnedLipSync
from engine.perception.voice.lipsync import MOUTH_CONTROLS


def speech_like(seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    """Syllables: a 130 Hz buzz with vowel formants, 4 per second, with short gaps."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    buzz = sum(np.sin(2 * np.pi * 130 * k * t) * np.exp(-((130 * k - 700) / 300) ** 2) for k in range(1, 40))
    syllables = np.clip(np.sin(2 * np.pi * 2 * t), 0, None) ** 2
    return (0.2 * buzz * syllables + 0.002 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def lipsync() -> LearnedLipSync:
    if not DEFAULT_MODEL.is_file():
        pytest.fail(f"{DEFAULT_MODEL} is missing: it ships with the project (models/train_lipsync.py rebuilds it)")
    return LearnedLipSync()


def test_streaming_features_equal_batch_features_for_any_block_size():
    signal = speech_like()
    whole = log_mel_features(signal)
    assert whole.shape == ((len(signal) - WINDOW) // HOP + 1, FEATURE_DIM)
    rng = np.random.default_rng(3)
    stream, parts, start = LogMelStream(), [], 0
    while start < len(signal):
        size = int(rng.integers(1, 900))
        parts.append(stream.process(signal[start:start + size]))
        start += size
    assert np.array_equal(np.concatenate(parts), whole)


def test_features_do_not_depend_on_microphone_gain():
    signal = speech_like()
    loud, quiet = log_mel_features(signal), log_mel_features(signal * 0.1)
    # Once the level reference has met the voice (first syllable), a 20 dB gain change cancels out:
    # within 0.1 dB typically, 1 dB at worst where a near-empty band meets the power floor (dB / 20).
    diff = np.abs(loud[20:] - quiet[20:])
    assert np.median(diff) < 0.005 and diff.max() < 0.05


def test_onnx_contract(lipsync):
    inputs = {i.name: i.shape for i in lipsync._session.get_inputs()}
    outputs = [o.name for o in lipsync._session.get_outputs()]
    assert list(inputs) == ["features", "feature_state", "layer_state"]
    assert inputs["features"][2] == FEATURE_DIM
    assert outputs == ["controls", "feature_state_out", "layer_state_out"]
    assert lipsync.control_names == MOUTH_CONTROLS
    assert lipsync.lookahead_hops <= 4
    assert lipsync.delay_s == pytest.approx(0.0125 + lipsync.lookahead_hops * 0.01)
    assert DEFAULT_MODEL.stat().st_size < 5_000_000


def test_poses_come_every_10_ms_whatever_the_block_size(lipsync):
    signal = speech_like()
    lipsync.reset()
    whole = lipsync.process(signal, 2.0)
    lipsync.reset()
    pieces, start = [], 0
    for size in [7, 160, 1000, 333] * 100:
        pieces += lipsync.process(signal[start:start + size], 2.0 + start / RATE)
        start += size
    assert len(pieces) == len(whole) == (len(signal) - WINDOW) // HOP + 1 - lipsync.lookahead_hops
    assert np.allclose([p.jaw_open for p in pieces], [p.jaw_open for p in whole], atol=1e-5)
    assert np.allclose(np.diff([p.t for p in whole]), HOP / RATE)
    assert whole[0].t == pytest.approx(2.0 + WINDOW / 2 / RATE)
    assert whole[0].t_ready - whole[0].t == pytest.approx(lipsync.delay_s)
    assert set(whole[0].controls) == set(MOUTH_CONTROLS)
    assert all(0.0 <= v <= 1.0 for p in whole for v in p.controls.values())
    assert max(p.jaw_open for p in whole) > 0.05  # the syllables do move the mouth


@pytest.mark.parametrize("level", [0.0, 1e-3])  # digital silence, -60 dBFS hiss (-50 dBFS opens it ~0.1)
def test_silence_and_low_noise_keep_the_mouth_at_rest(lipsync, level):
    lipsync.reset()
    noise = (level * np.random.default_rng(5).standard_normal(3 * RATE)).astype(np.float32)
    poses = lipsync.process(noise, 0.0)
    assert max(p.jaw_open for p in poses) <= 0.05


@pytest.mark.xfail(strict=True, reason="issue 12 acceptance not met yet: the model trained on 21 min (80 % one GRID "
                   "speaker) reaches r~0.07 on talking_d6 (loudness 0.31); see models/README.md")
def test_talking_d6_jaw_follows_the_tracked_mouth_better_than_loudness(lipsync, face_model):
    video = shared_file("media/talking_d6.mp4")
    tracked, fps = _tracked_jaw(video, face_model)
    samples = read_audio(video)
    lipsync.reset()
    poses = [p for start in range(0, len(samples), HOP) for p in lipsync.process(samples[start:start + HOP], 0.0)]
    times, jaw = np.array([p.t for p in poses]), np.array([p.jaw_open for p in poses])
    env_t, envelope = rms_envelope(samples)
    r_base, _ = best_lag_r(env_t, envelope, tracked, fps)
    r, lag = best_lag_r(times, jaw, tracked, fps)
    print(f"talking_d6: learned r={r:.3f} at {lag * 1000:+.0f} ms, loudness r={r_base:.3f}")
    assert r >= 0.6 and r >= r_base + 0.15
    silent = silence_mask(envelope, HOP / RATE)
    assert silent.sum() >= 15, "the clip has pauses of 150 ms or more"
    assert np.interp(env_t, times, jaw)[silent].max() <= 0.05
