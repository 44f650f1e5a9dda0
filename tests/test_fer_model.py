"""The project's own FER classifier (models/fer_cnn.onnx): the ONNX contract and a sanity check on
held-out FER-2013 faces (from models/train_fer.py's validation split, never trained on)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "fer_cnn.onnx"
FER_TRAIN = ROOT / ".." / "shared" / "datasets" / "fer2013" / "train"
EMOTIONS = ("neutral", "happy", "sad", "angry", "surprised", "fearful", "disgusted")
FOLDER_TO_EMOTION = {"neutral": "neutral", "happy": "happy", "sad": "sad", "angry": "angry",
                     "surprise": "surprised", "fear": "fearful", "disgust": "disgusted"}
# Five validation faces per class (fixed seed draw from the split).
VALIDATION_FACES = (
    "neutral/Training_6168724.jpg", "neutral/Training_66115358.jpg", "neutral/Training_70505572.jpg",
    "neutral/Training_92084741.jpg", "neutral/Training_95659938.jpg",
    "happy/Training_10474350.jpg", "happy/Training_37720847.jpg", "happy/Training_39357416.jpg",
    "happy/Training_87906888.jpg", "happy/Training_92192542.jpg",
    "sad/Training_2212223.jpg", "sad/Training_37724231.jpg", "sad/Training_40620210.jpg",
    "sad/Training_49292217.jpg", "sad/Training_8345487.jpg",
    "angry/Training_46232619.jpg", "angry/Training_51191080.jpg", "angry/Training_53557482.jpg",
    "angry/Training_58588458.jpg", "angry/Training_61050899.jpg",
    "surprise/Training_41749867.jpg", "surprise/Training_55502456.jpg", "surprise/Training_65663468.jpg",
    "surprise/Training_71221415.jpg", "surprise/Training_9932811.jpg",
    "fear/Training_14147384.jpg", "fear/Training_15343805.jpg", "fear/Training_2196654.jpg",
    "fear/Training_55204362.jpg", "fear/Training_682406.jpg",
    "disgust/Training_63987627.jpg", "disgust/Training_79019465.jpg", "disgust/Training_85412014.jpg",
    "disgust/Training_89374221.jpg", "disgust/Training_93703215.jpg",
)


@pytest.fixture(scope="module")
def session() -> ort.InferenceSession:
    return ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])


def test_contract(session: ort.InferenceSession) -> None:
    (face,) = session.get_inputs()
    (probabilities,) = session.get_outputs()
    assert face.name == "face" and face.shape[1:] == [1, 48, 48]
    assert probabilities.name == "probabilities" and probabilities.shape[1] == len(EMOTIONS)
    batch = np.random.default_rng(0).random((3, 1, 48, 48), dtype=np.float32)
    out = session.run(None, {"face": batch})[0]
    assert out.shape == (3, len(EMOTIONS))
    assert np.all(out >= 0) and np.allclose(out.sum(axis=1), 1.0, atol=1e-5)


def test_held_out_faces_above_chance(session: ort.InferenceSession) -> None:
    if not FER_TRAIN.is_dir():
        pytest.skip(f"FER-2013 training folder not found at {FER_TRAIN.resolve()} (shared test material)")
    cv2 = pytest.importorskip("cv2")
    faces = np.stack([cv2.imread(str(FER_TRAIN / name), cv2.IMREAD_GRAYSCALE) for name in VALIDATION_FACES])
    truth = np.array([EMOTIONS.index(FOLDER_TO_EMOTION[name.split("/")[0]]) for name in VALIDATION_FACES])
    predicted = session.run(None, {"face": (faces.astype(np.float32) / 255.0)[:, None]})[0].argmax(axis=1)
    # Chance is 1/7 on these five-per-class faces; ask for at least twice that.
    assert (predicted == truth).mean() >= 2 / 7
