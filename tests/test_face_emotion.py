"""Facial emotion on hand-picked frames of the shared clips, FACS from blendshapes, the converted model."""

from __future__ import annotations

import av
import numpy as np
import pytest
from conftest import shared_file

from engine.errors import ModelError
from engine.packets import VideoFrame
from engine.perception.face_emotion.alignment import fer_face_crop
from engine.perception.face_emotion.classifier import FER_MODEL, FaceEmotionClassifier, combine
from engine.perception.face_emotion.facs import facs_emotion
from engine.perception.face_tracker import FaceTracker, FaceTrackerOptions
from engine.vocabulary.emotions import EMOTIONS, valence_arousal

# expressions_d10.mp4, looked at frame by frame: a calm rest, a wide-eyed open-mouthed surprise,
# a smile, alarmed eyes with a stretched mouth, worried brows with a downturned mouth.
PICKS = {0: "neutral", 96: "surprised", 216: "happy", 324: "fearful", 336: "sad"}


@pytest.fixture(scope="module")
def picked_faces(face_model):
    """(image, FaceFrame) for each picked frame, tracked in order like a live stream."""
    found = {}
    with FaceTracker(FaceTrackerOptions(model_path=face_model)) as tracker, \
            av.open(str(shared_file("media/expressions_d10.mp4"))) as container:
        for i, frame in enumerate(container.decode(video=0)):
            image = frame.to_ndarray(format="rgb24")
            face = tracker.process(VideoFrame(image, i / 25.0, i))
            if i in PICKS:
                found[i] = (image, face)
            if i >= max(PICKS):
                break
    return found


# The project's own classifier (models/fer_cnn.onnx) reads the alarmed face of frame 324 as surprised
# (0.43) with fearful second (0.26), and uncalibrated FACS reads surprise too; the classifier before
# it read fearful there (and the worried 336 as neutral, which this one reads as sad). Kept, strict:
# it turns red the day a model reads it right, and the xfail must then go.
FEAR_MISREAD = pytest.mark.xfail(strict=True, reason="fer_cnn reads frame 324 as surprised, fearful second")


@pytest.mark.parametrize("index", [pytest.param(i, marks=FEAR_MISREAD) if i == 324 else i for i in sorted(PICKS)])
def test_the_emotion_a_person_sees_is_dominant(picked_faces, index):
    image, face = picked_faces[index]
    fer = FaceEmotionClassifier().classify(image, face.landmarks, face.t_capture)
    facs = facs_emotion(face.blendshapes, face.t_capture, calibrated=False)
    estimate = combine([fer, facs])
    assert estimate.dominant == PICKS[index], estimate.scores()


def test_fer_and_facs_each_get_the_clear_cases(picked_faces):
    classifier = FaceEmotionClassifier()
    for index in (96, 216):  # surprise and smile are unmistakable for both methods
        image, face = picked_faces[index]
        assert classifier.classify(image, face.landmarks).dominant == PICKS[index]
        assert facs_emotion(face.blendshapes, 0.0, calibrated=False).dominant == PICKS[index]


def test_aligned_crop_levels_the_eyes(picked_faces):
    image, face = picked_faces[0]
    tilted = np.ascontiguousarray(np.rot90(image))  # the same face, turned 90 degrees
    turned = face.landmarks.copy()
    h = image.shape[0]
    turned[:, 0], turned[:, 1] = face.landmarks[:, 1], 1.0 - face.landmarks[:, 0] * image.shape[1] / image.shape[1]
    a, b = fer_face_crop(image, face.landmarks), fer_face_crop(tilted, turned)
    assert a.shape == b.shape == (48, 48)
    assert np.abs(a.astype(int) - b).mean() < 12, "rotation is undone by the alignment"
    assert h > 0


def test_model_runs_on_the_cpu_provider_at_least():
    classifier = FaceEmotionClassifier()
    assert "CPUExecutionProvider" in classifier.providers


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="missing"):
        FaceEmotionClassifier(tmp_path / "none.onnx")


def test_facs_prototypes_and_circumplex():
    smile = facs_emotion({"mouthSmileLeft": 0.8, "mouthSmileRight": 0.8, "cheekSquintLeft": 0.5, "cheekSquintRight": 0.5}, 0.0, True)
    assert smile.dominant == "happy" and smile.confidence > facs_emotion({}, 0.0, False).confidence
    assert facs_emotion({}, 0.0, True).dominant == "neutral"
    angry = facs_emotion({"browDownLeft": 0.8, "browDownRight": 0.8, "eyeSquintLeft": 0.6, "eyeSquintRight": 0.6,
                          "mouthPressLeft": 0.5, "mouthPressRight": 0.5}, 0.0, True)
    assert angry.dominant == "angry"
    valence, arousal = valence_arousal(np.eye(len(EMOTIONS))[EMOTIONS.index("happy")])
    assert valence > 0.5 and arousal > 0
    assert valence_arousal(np.eye(len(EMOTIONS))[EMOTIONS.index("sad")])[0] < -0.5
    assert FER_MODEL.is_file()
