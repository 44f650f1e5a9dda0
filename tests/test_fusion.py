"""Fusion: face-only, voice-only, both; streams dropping out; conflicts; anomalies; no flicker."""

from __future__ import annotations

import numpy as np

from engine.fusion.fuser import EmotionFuser
from engine.vocabulary.emotions import EMOTIONS, EmotionEstimate

FPS = 30.0


def estimate(t: float, emotion: str, confidence: float, source: str, strength: float = 0.8) -> EmotionEstimate:
    p = np.full(len(EMOTIONS), (1.0 - strength) / (len(EMOTIONS) - 1))
    p[EMOTIONS.index(emotion)] = strength
    return EmotionEstimate(t, p, confidence, source)


def landmarks(scale: float = 0.2, shift: float = 0.0) -> np.ndarray:
    grid = np.stack(np.meshgrid(np.linspace(-1, 1, 22), np.linspace(-1, 1, 22)), -1).reshape(-1, 2)[:478]
    return np.c_[0.5 + shift + scale * grid, np.zeros(len(grid))]


def run(fuser, seconds, start=0.0, face=None, voice=None, speaking=0.0):
    states = []
    for i in range(int(seconds * FPS)):
        t = start + i / FPS
        if face:
            fuser.add_face(estimate(t, *face, "face"), landmarks())
        if voice:
            fuser.add_voice(estimate(t, *voice, "prosody"), speaking, t)
        states.append(fuser.update(t))
    return states


def test_face_only_voice_only_and_both():
    assert run(EmotionFuser(), 1.0, face=("happy", 0.9))[-1].mode == "video_only"
    voice = run(EmotionFuser(), 1.0, voice=("sad", 0.7), speaking=0.9)[-1]
    assert (voice.mode, voice.emotion) == ("audio_only", "sad") and voice.speaking_probability == 0.9
    both = run(EmotionFuser(), 1.0, face=("happy", 0.9), voice=("happy", 0.6))[-1]
    assert (both.mode, both.emotion) == ("both", "happy") and both.valence > 0.3
    assert run(EmotionFuser(), 1.0)[-1].mode == "none"


def test_a_stream_stopping_switches_the_mode_within_half_a_second():
    fuser = EmotionFuser()
    run(fuser, 1.0, face=("happy", 0.9), voice=("happy", 0.6))
    after = run(fuser, 1.0, start=1.0, voice=("happy", 0.6))  # the camera is covered
    switched = next(i for i, s in enumerate(after) if s.mode == "audio_only") / FPS
    assert switched <= 0.5


def test_conflicting_modalities_resolve_by_confidence():
    confident_face = run(EmotionFuser(), 1.5, face=("angry", 0.9), voice=("happy", 0.3))[-1]
    confident_voice = run(EmotionFuser(), 1.5, face=("angry", 0.2), voice=("happy", 0.9))[-1]
    assert confident_face.emotion == "angry" and confident_voice.emotion == "happy"


def test_dominant_emotion_does_not_flicker_but_a_real_change_shows_within_half_a_second():
    fuser = EmotionFuser()
    run(fuser, 1.0, face=("happy", 0.9))
    rng = np.random.default_rng(0)
    flicker = []
    for i in range(60):  # two near-tied readings alternating every frame
        t = 1.0 + i / FPS
        p = np.full(7, 0.05)
        p[EMOTIONS.index("happy")], p[EMOTIONS.index("surprised")] = (0.42, 0.33) if i % 2 else (0.33, 0.42)
        p += rng.uniform(0, 0.01, 7)
        fuser.add_face(EmotionEstimate(t, p / p.sum(), 0.9, "face"), landmarks())
        flicker.append(fuser.update(t).emotion)
    assert len(set(flicker)) == 1
    change = run(fuser, 1.0, start=3.0, face=("sad", 0.9))
    assert next(i for i, s in enumerate(change) if s.emotion == "sad") / FPS <= 0.5


def test_anomaly_on_collapsing_or_jumping_landmarks_and_on_clipping():
    fuser = EmotionFuser()
    run(fuser, 0.5, face=("happy", 0.9))
    fuser.add_face(estimate(0.6, "angry", 0.9, "face"), landmarks(scale=0.01))  # collapse
    state = fuser.update(0.6)
    assert state.anomaly and "landmarks collapsed" in state.anomaly_reasons
    assert state.face.dominant == "happy", "the implausible frame did not vote"
    assert not run(fuser, 1.0, start=1.2, face=("happy", 0.9))[-1].anomaly, "it clears"
    fuser.add_face(estimate(2.3, "happy", 0.9, "face"), landmarks(shift=0.4))  # jump
    assert "face jumped" in fuser.update(2.3).anomaly_reasons
    fuser.add_voice(None, 0.8, 2.4, clipping=True)
    assert "audio clipping" in fuser.update(2.4).anomaly_reasons
