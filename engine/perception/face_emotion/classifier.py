"""Facial emotion recognition: avatarcam's own CNN, trained on FER-2013, on a FER-framed face crop.

The model ships in ``models/fer_cnn.onnx`` (trained from scratch by ``models/train_fer.py`` on the
FER-2013 Training split; see models/README.md for its card). Contract: input ``face`` float32
[N, 1, 48, 48], grey, pixel / 255; output ``probabilities`` softmax [N, 7] in ``EMOTIONS`` order.
onnxruntime runs it with the TensorRT, then CUDA, then CPU provider, whichever is present.

Deployment matches training: a tracked face is cut out with ``fer_face_crop`` (landmarks onto where
FER-2013 puts them: eyes level, same scale and margin); an image that already is a face crop and in
which no face can be found is classified whole, with reduced confidence.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.onnx_session import create_session
from engine.paths import MODELS_DIR
from engine.perception.face_emotion.alignment import fer_face_crop, whole_image_crop
from engine.vocabulary.emotions import EmotionEstimate

FER_MODEL = MODELS_DIR / "fer_cnn.onnx"
LEFT_EYE_OUTER, RIGHT_EYE_OUTER = 263, 33  # MediaPipe landmark indices (subject's left, right)
WHOLE_IMAGE_CONFIDENCE = 0.5  # no landmarks: the framing is a guess


class FaceEmotionClassifier:
    """Classifies one face. Thread-compatible: use one instance per thread."""

    def __init__(self, model_path: Path = FER_MODEL) -> None:
        self._session = create_session(model_path, what="emotion model")
        self.providers = self._session.get_providers()

    def classify_crop(self, crop: np.ndarray, t_capture: float = 0.0, confidence: float = 1.0) -> EmotionEstimate:
        """A 48x48 grey uint8 FER-framed face -> its 7-class estimate."""
        tensor = (crop.astype(np.float32) / 255.0)[None, None]
        probabilities = self._session.run(None, {"face": tensor})[0][0].astype(np.float64)
        return EmotionEstimate(t_capture, probabilities, confidence=confidence, source="fer")

    def classify(self, image: np.ndarray, landmarks: np.ndarray, t_capture: float = 0.0) -> EmotionEstimate:
        """The tracked face in ``image`` (landmarks normalised to it)."""
        return self.classify_crop(fer_face_crop(image, landmarks), t_capture, _confidence(landmarks, image.shape))

    def classify_whole(self, image: np.ndarray, t_capture: float = 0.0) -> EmotionEstimate:
        """An image that is itself a face crop, when no face was found in it."""
        return self.classify_crop(whole_image_crop(image), t_capture, WHOLE_IMAGE_CONFIDENCE)


def _confidence(landmarks: np.ndarray, shape: tuple[int, ...]) -> float:
    """Trust falls for small faces (few pixels) and turned faces (trained on frontal)."""
    h = float(landmarks[:, 1].max() - landmarks[:, 1].min()) * shape[0]
    size = min(1.0, h / 96.0)
    nose, left, right = landmarks[1, 0], landmarks[LEFT_EYE_OUTER, 0], landmarks[RIGHT_EYE_OUTER, 0]
    symmetry = min(abs(left - nose), abs(nose - right)) / max(abs(left - nose), abs(nose - right), 1e-6)
    return round(size * (0.3 + 0.7 * symmetry), 3)


# How much each face reader counts, measured on held-out FER-2013 faces (models/eval_face_emotion.py):
# the classifier alone is right on 0.634 of them, FACS on 0.394; weighing FACS at 0.1 of the
# classifier (chosen on one half of the faces) gives 0.636 on the other half (classifier alone 0.633).
RELIABILITY: dict[str, float] = {"fer": 1.0, "facs": 0.1}


def combine(estimates: list[EmotionEstimate], source: str = "face") -> EmotionEstimate:
    """Reliability- and confidence-weighted mean of several estimates of one moment (FER, FACS)."""
    weights = np.array([e.confidence * RELIABILITY.get(e.source, 1.0) for e in estimates])
    if weights.sum() <= 0:
        weights = np.ones(len(estimates))
    probabilities = np.average(np.stack([e.probabilities for e in estimates]), axis=0, weights=weights)
    # Agreement raises trust: two sources that point the same way are worth more than either.
    agree = float(np.mean([e.dominant == estimates[0].dominant for e in estimates]))
    confidence = min(1.0, max(e.confidence for e in estimates) * (0.8 + 0.4 * agree))
    return EmotionEstimate(max(e.t_capture for e in estimates), probabilities, confidence, source)
