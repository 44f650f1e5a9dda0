"""The emotion layer on the avatar: expressiveness, mixing, and no fight with the visemes."""

from __future__ import annotations

import numpy as np

from engine.animation.emotion_layer import apply_emotion
from engine.fusion.fuser import EmotionState
from engine.packets import AvatarFrame
from engine.vocabulary.emotions import EMOTIONS


def state(emotion: str, p: float = 1.0, speaking: float = 0.0) -> EmotionState:
    probs = np.full(len(EMOTIONS), (1 - p) / (len(EMOTIONS) - 1))
    probs[EMOTIONS.index(emotion)] = p
    return EmotionState(0.0, probs, emotion, 0.0, 0.0, speaking, "video_only", False)


FACE = AvatarFrame(0.0, 1, {"jawOpen": 0.4, "mouthSmileLeft": 0.2, "mouthSmileRight": 0.2})


def test_expressiveness_zero_is_a_pure_mirror():
    assert apply_emotion(FACE, state("happy"), 0.0) is FACE


def test_happy_adds_smile_and_cheeks_sad_lifts_inner_brows_and_drops_the_gaze():
    happy = apply_emotion(FACE, state("happy"), 1.0)
    assert happy.controls["mouthSmileLeft"] > 0.6 and happy.controls["cheekSquintRight"] > 0.3
    sad = apply_emotion(FACE, state("sad"), 1.0)
    assert sad.controls["browInnerUp"] > 0.5 and sad.controls["mouthFrownLeft"] > 0.4
    assert sad.eyes[1] < -4 and sad.head[1] < 0
    surprised = apply_emotion(FACE, state("surprised"), 1.0)
    assert surprised.controls["eyeWideLeft"] > 0.4 and surprised.controls["jawOpen"] > 0.5


def test_strength_follows_expressiveness_and_probability():
    half = apply_emotion(FACE, state("happy"), 0.5).controls["cheekSquintLeft"]
    full = apply_emotion(FACE, state("happy"), 1.0).controls["cheekSquintLeft"]
    unsure = apply_emotion(FACE, state("happy", p=0.4), 1.0).controls["cheekSquintLeft"]
    assert 0 < half < full and 0 < unsure < full


def test_while_speaking_the_layer_leaves_the_jaw_and_lips_to_the_visemes():
    quiet = apply_emotion(FACE, state("surprised"), 1.0)
    talking = apply_emotion(FACE, state("surprised", speaking=1.0), 1.0)
    assert quiet.controls["jawOpen"] > FACE.controls["jawOpen"]
    assert talking.controls["jawOpen"] == FACE.controls["jawOpen"]
    assert talking.controls["eyeWideLeft"] == quiet.controls["eyeWideLeft"], "the upper face still shows it"


def test_a_missing_classifier_falls_back_to_facs_and_says_why(monkeypatch):
    from engine.errors import ModelError
    from engine.packets import FaceFrame
    from engine.runtime import emotion_worker as stage_module

    def missing(*args, **kwargs):
        raise ModelError("The emotion model 'x.onnx' is missing.", "Reinstall avatarcam.")

    monkeypatch.setattr(stage_module, "FacialEmotion", missing)
    stage = stage_module.EmotionStage(enabled=True)
    face = FaceFrame(0.0, 0, True, 1.0, {"mouthSmileLeft": 0.9, "mouthSmileRight": 0.9},
                     landmarks=np.zeros((478, 3), np.float32))
    stage.add_face(face, np.zeros((64, 64, 3), np.uint8))
    assert "classifier off" in stage.error and "missing" in stage.error
    for i in range(15):  # half a second: long enough for the hysteresis to let the smile through
        face = FaceFrame(i / 30, i, True, 1.0, face.blendshapes, landmarks=face.landmarks)
        stage.add_face(face, np.zeros((64, 64, 3), np.uint8))
        _, state = stage.apply(AvatarFrame(i / 30, i, {}), None, i / 30)
    assert state.emotion == "happy", "the blendshapes still carry the smile"
