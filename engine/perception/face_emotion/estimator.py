"""The facial-emotion stage: FER classifier + FACS estimator on one tracked face."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from engine.calibration import Calibration
from engine.packets import FaceFrame
from engine.perception.face_emotion.classifier import FaceEmotionClassifier, combine
from engine.perception.face_emotion.facs import facs_emotion
from engine.vocabulary.arkit import ARKIT_BLENDSHAPES
from engine.vocabulary.emotions import EmotionEstimate


class FacialEmotion:
    """Reads the emotion of a tracked face. One per thread (the classifier session is not shared).

    With a calibration that has a resting face, FACS reads the user's expression relative to it,
    which is what makes it trustworthy (see docs/EMOTION.md).
    """

    def __init__(self, calibration: Calibration | None = None) -> None:
        self.classifier = FaceEmotionClassifier()
        self.set_calibration(calibration)
        self.last_ms = 0.0

    def set_calibration(self, calibration: Calibration | None) -> None:
        self._calibrated = bool(calibration and calibration.neutral)
        self._neutral = calibration.arrays()[0] if self._calibrated else None

    def read(self, image: np.ndarray, face: FaceFrame, face_crop: np.ndarray | None = None) -> FaceReading | None:
        """Each reader's estimate of the face and their combination; None when there is no face.
        ``face_crop``: the classifier's 48x48 input when the image already is one (a FER-style crop)."""
        if not face.present or face.landmarks is None:
            return None
        start = time.perf_counter()
        controls = face.blendshapes
        if self._neutral is not None:
            values = np.fromiter((controls.get(n, 0.0) for n in ARKIT_BLENDSHAPES), dtype=np.float64)
            controls = dict(zip(ARKIT_BLENDSHAPES, np.clip((values - self._neutral) / (1 - self._neutral), 0, 1)))
        fer = (self.classifier.classify(image, face.landmarks, face.t_capture) if face_crop is None
               else self.classifier.classify_crop(face_crop, face.t_capture))
        facs = facs_emotion(controls, face.t_capture, self._calibrated)
        self.last_ms = (time.perf_counter() - start) * 1000.0
        return FaceReading(fer, facs, combine([fer, facs]))

    def estimate(self, image: np.ndarray, face: FaceFrame) -> EmotionEstimate | None:
        """The face's emotion, or None when there is no face to read."""
        reading = self.read(image, face)
        return None if reading is None else reading.combined


@dataclass(frozen=True, slots=True)
class FaceReading:
    classifier: EmotionEstimate
    facs: EmotionEstimate | None
    combined: EmotionEstimate
