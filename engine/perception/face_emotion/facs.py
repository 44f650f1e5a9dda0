"""FACS-style emotion estimate from the 52 ARKit blendshapes.

Each emotion is a prototype combination of action units (Ekman & Friesen; EMFACS), read from the
blendshapes that express them: happy = AU6 cheek raiser + AU12 lip corner puller, surprise =
AU1+2 brow raisers + AU5 upper lid raiser + AU26 jaw drop, and so on. An emotion's evidence is the
mean of its units, so one stray unit does not make an emotion. Works best on calibrated controls
(the user's resting face subtracted), which is why ``confidence`` depends on calibration.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from engine.vocabulary.emotions import EMOTIONS, EmotionEstimate


def _pair(stem: str) -> tuple[str, str]:
    return (f"{stem}Left", f"{stem}Right")


# Emotion -> (action unit, weight): a unit is the blendshapes that show it (their mean is its level).
# Weights below 1 mark supporting units: MediaPipe rarely reports cheekSquint even in a broad smile.
PROTOTYPES: dict[str, tuple[tuple[tuple[str, ...], float], ...]] = {
    "happy": ((_pair("mouthSmile"), 1.0), (_pair("cheekSquint"), 0.2)),  # AU12, AU6
    "sad": ((("browInnerUp",), 0.6), (_pair("mouthFrown"), 1.0), (("mouthShrugLower", "mouthPressLeft", "mouthPressRight"), 0.4)),  # AU1, AU15, AU17
    "angry": ((_pair("browDown"), 1.0), (_pair("eyeSquint"), 0.5), (("mouthPressLeft", "mouthPressRight", "mouthRollLower"), 0.5)),  # AU4, AU7, AU23/24
    "surprised": ((("browInnerUp",), 0.5), (_pair("browOuterUp"), 0.5), (_pair("eyeWide"), 1.0), (("jawOpen",), 1.0)),  # AU1, AU2, AU5, AU26
    "fearful": ((("browInnerUp",), 0.5), (_pair("eyeWide"), 1.0), (_pair("mouthStretch"), 1.0)),  # AU1, AU5, AU20
    "disgusted": ((_pair("noseSneer"), 1.0), (_pair("mouthUpperUp"), 0.7)),  # AU9, AU10
}
# Evidence at which an emotion counts as fully shown; below EVIDENCE_FLOOR it is ignored as noise.
FULL_EVIDENCE = 0.45
EVIDENCE_FLOOR = 0.1
SOFTNESS = 0.05  # keeps one absent unit from zeroing the product outright


def _evidence(controls: Mapping[str, float], units: tuple[tuple[tuple[str, ...], float], ...]) -> float:
    """Weighted geometric mean of the units' levels: a soft AND, so brows alone are not surprise."""
    levels = np.array([np.mean([controls.get(name, 0.0) for name in names]) for names, _ in units])
    weights = np.array([w for _, w in units])
    mean = float(np.exp(np.sum(weights * np.log(levels + SOFTNESS)) / weights.sum())) - SOFTNESS
    return min(1.0, max(0.0, mean - EVIDENCE_FLOOR) / (FULL_EVIDENCE - EVIDENCE_FLOOR))


def facs_emotion(controls: Mapping[str, float], t_capture: float, calibrated: bool) -> EmotionEstimate:
    """7-class estimate from blendshapes; neutral takes what no prototype claims."""
    scores = np.array([0.0 if e == "neutral" else _evidence(controls, PROTOTYPES[e]) for e in EMOTIONS])
    scores[0] = max(0.0, 1.0 - scores.max())
    probabilities = scores / scores.sum()
    # Uncalibrated, a resting face's own shapes (a natural frown, high brows) read as expression.
    return EmotionEstimate(t_capture, probabilities, confidence=0.8 if calibrated else 0.35, source="facs")
