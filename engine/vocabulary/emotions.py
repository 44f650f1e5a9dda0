"""The seven emotion classes every stage speaks, and where each sits on the valence/arousal plane."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np


class Emotion(StrEnum):
    """The seven emotion classes, in the order of every probability vector."""

    NEUTRAL = "neutral"
    HAPPY = "happy"
    SAD = "sad"
    ANGRY = "angry"
    SURPRISED = "surprised"
    FEARFUL = "fearful"
    DISGUSTED = "disgusted"


class FusionMode(StrEnum):
    """Which modalities the fused emotion rests on (a stream older than ~0.4 s drops out)."""

    BOTH = "both"
    VIDEO_ONLY = "video_only"
    AUDIO_ONLY = "audio_only"
    NONE = "none"


EMOTIONS: tuple[str, ...] = tuple(e.value for e in Emotion)

# (valence, arousal) of each class, -1..1, after Russell's circumplex model of affect.
CIRCUMPLEX: dict[str, tuple[float, float]] = {
    "neutral": (0.0, 0.0),
    "happy": (0.8, 0.5),
    "sad": (-0.7, -0.4),
    "angry": (-0.6, 0.75),
    "surprised": (0.25, 0.8),
    "fearful": (-0.65, 0.65),
    "disgusted": (-0.7, 0.3),
}
_VA = np.array([CIRCUMPLEX[e] for e in EMOTIONS])


def valence_arousal(probabilities: np.ndarray) -> tuple[float, float]:
    """Expected (valence, arousal) of a 7-class distribution in ``EMOTIONS`` order."""
    v, a = np.asarray(probabilities, dtype=np.float64) @ _VA
    return float(v), float(a)


@dataclass(frozen=True, slots=True)
class EmotionEstimate:
    """One modality's reading: 7-class probabilities (``EMOTIONS`` order), how much to trust it."""

    t_capture: float
    probabilities: np.ndarray
    confidence: float  # 0..1
    source: str  # "fer", "facs", "face", "prosody", "sensevoice"

    @property
    def dominant(self) -> str:
        return EMOTIONS[int(np.argmax(self.probabilities))]

    def scores(self) -> dict[str, float]:
        return {name: round(float(p), 4) for name, p in zip(EMOTIONS, self.probabilities)}
