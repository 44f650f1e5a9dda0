"""Late fusion of face and voice into one steady ``EmotionState``.

Each modality delivers ``EmotionEstimate``s (7-class probabilities + confidence). The fuser weights
every stream by its confidence and freshness (a stream silent for more than ``STALE_S`` drops out,
which sets the mode: both, video_only, audio_only or none), smooths the probabilities over time and
switches the dominant emotion with hysteresis, so it never flickers yet a real change shows within
half a second. It also raises ``anomaly`` on implausible input: collapsing or jumping landmarks and
clipped audio, so consumers can ignore those moments.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

from engine.vocabulary.emotions import EMOTIONS, EmotionEstimate, FusionMode, valence_arousal

STALE_S = 0.4  # a stream older than this is out of the mix (DESIGN.md)
SMOOTHING_S = 0.15  # time constant of the probability smoothing
SWITCH_MARGIN = 0.08  # a challenger must lead the current dominant emotion by this much ...
SWITCH_HOLD_S = 0.15  # ... for this long before the dominant emotion changes
COLLAPSE_RATIO = 0.35  # landmark spread shrinking below this share of its running level
JUMP_FRACTION = 0.25  # face centre moving more than this share of the frame in one step


_MODES = {(True, True): FusionMode.BOTH, (True, False): FusionMode.VIDEO_ONLY,  # (face?, voice?) -> mode
          (False, True): FusionMode.AUDIO_ONLY, (False, False): FusionMode.NONE}


@dataclass(frozen=True, slots=True)
class EmotionState:
    """The fused emotional state at one moment (the payload of an ``emotion_update``)."""

    t: float
    probabilities: np.ndarray  # EMOTIONS order, sums to 1
    emotion: str  # dominant, with hysteresis
    valence: float
    arousal: float
    speaking_probability: float
    mode: FusionMode
    anomaly: bool
    anomaly_reasons: tuple[str, ...] = ()
    face: EmotionEstimate | None = None
    voice: EmotionEstimate | None = None

    def scores(self) -> dict[str, float]:
        return {name: round(float(p), 4) for name, p in zip(EMOTIONS, self.probabilities)}


def fuse_once(t: float, face: EmotionEstimate | None = None, voice: EmotionEstimate | None = None, *,
              voice_valence_arousal: tuple[float, float] | None = None, speaking_probability: float = 0.0) -> EmotionState:
    """One moment judged on its own (an image, a file): confidence-weighted, no smoothing, no
    hysteresis, the emotion is the argmax. With the voice alone, ``voice_valence_arousal`` (the voice
    estimator's own reading) is reported instead of the one implied by its class scores."""
    estimates = [e for e in (face, voice) if e is not None]
    weights = np.array([max(e.confidence, 1e-3) for e in estimates])
    probabilities = (np.average(np.stack([e.probabilities for e in estimates]), axis=0, weights=weights)
                     if estimates else np.eye(len(EMOTIONS))[0])
    valence, arousal = valence_arousal(probabilities)
    if face is None and voice is not None and voice_valence_arousal is not None:
        valence, arousal = voice_valence_arousal
    mode = _MODES[(face is not None, voice is not None)]
    return EmotionState(t=t, probabilities=probabilities, emotion=EMOTIONS[int(np.argmax(probabilities))],
                        valence=float(valence), arousal=float(arousal), speaking_probability=speaking_probability,
                        mode=mode, anomaly=False, face=face, voice=voice)


@dataclass(slots=True)
class _Stream:
    latest: EmotionEstimate | None = None

    def weight(self, now: float) -> float:
        if self.latest is None:
            return 0.0
        age = now - self.latest.t_capture
        if age > STALE_S:
            return 0.0
        return self.latest.confidence * math.exp(-max(age, 0.0) / STALE_S)


@dataclass(slots=True)
class _LandmarkWatch:
    """Running level of landmark spread and position, to spot collapse and jumps."""

    spread: float | None = None
    centre: np.ndarray | None = None

    def check(self, landmarks: np.ndarray) -> list[str]:
        points = np.asarray(landmarks)[:, :2]
        spread = float(points.std(axis=0).mean())
        centre = points.mean(axis=0)
        reasons = []
        if self.spread is not None and spread < COLLAPSE_RATIO * self.spread:
            reasons.append("landmarks collapsed")
        if self.centre is not None and float(np.linalg.norm(centre - self.centre)) > JUMP_FRACTION:
            reasons.append("face jumped")
        if not reasons:  # learn only from plausible frames
            self.spread = spread if self.spread is None else 0.9 * self.spread + 0.1 * spread
        self.centre = centre
        return reasons


class EmotionFuser:
    """Combines face and voice estimates. Thread-safe: the tracking and audio threads feed it while
    the render thread reads it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._face = _Stream()
        self._voice = _Stream()
        self._speaking = (0.0, -math.inf)  # probability, time
        self._smoothed = np.eye(len(EMOTIONS))[0]
        self._dominant = "neutral"
        self._challenger: tuple[str, float] | None = None
        self._last_t: float | None = None
        self._landmarks = _LandmarkWatch()
        self._anomalies: dict[str, float] = {}  # reason -> time last seen

    def add_face(self, estimate: EmotionEstimate, landmarks: np.ndarray | None = None) -> None:
        with self._lock:
            self._add_face(estimate, landmarks)

    def _add_face(self, estimate: EmotionEstimate, landmarks: np.ndarray | None) -> None:
        reasons = self._landmarks.check(landmarks) if landmarks is not None else []
        for reason in reasons:
            self._anomalies[reason] = estimate.t_capture
        if not reasons:  # an implausible frame does not vote
            self._face.latest = estimate

    def add_voice(self, estimate: EmotionEstimate | None, speaking_probability: float, t: float,
                  clipping: bool = False) -> None:
        """A voice reading; ``clipping``: the voice stage found its samples clipped."""
        with self._lock:
            self._add_voice(estimate, speaking_probability, t, clipping)

    def _add_voice(self, estimate: EmotionEstimate | None, speaking_probability: float, t: float,
                   clipping: bool) -> None:
        if clipping:
            self._anomalies["audio clipping"] = t
        self._speaking = (speaking_probability, t)
        if estimate is not None:
            self._voice.latest = estimate

    def add_hint(self, estimate: EmotionEstimate) -> None:
        """An emotion given by the user or a program (not read from them): it takes the voice's
        place in the mix, so it blends and switches like a reading."""
        with self._lock:
            self._voice.latest = estimate

    def update(self, now: float) -> EmotionState:
        with self._lock:
            return self._update(now)

    def _update(self, now: float) -> EmotionState:
        wf, wv = self._face.weight(now), self._voice.weight(now)
        mode = _MODES[(wf > 0, wv > 0)]
        if wf + wv > 0:
            target = (wf * self._face.latest.probabilities if wf else 0) + (wv * self._voice.latest.probabilities if wv else 0)
            target = target / (wf + wv)
        else:
            target = np.eye(len(EMOTIONS))[0]  # nothing to go on: relax to neutral
        first = self._last_t is None
        alpha = 1.0 if first else 1.0 - math.exp(-max(0.0, now - self._last_t) / SMOOTHING_S)
        self._last_t = now
        self._smoothed = self._smoothed + alpha * (target - self._smoothed)
        self._switch_dominant(now)
        valence, arousal = valence_arousal(self._smoothed)
        recent = tuple(sorted(r for r, t in self._anomalies.items() if now - t <= STALE_S))
        speaking, t_speak = self._speaking
        return EmotionState(t=now, probabilities=self._smoothed.copy(), emotion=self._dominant, valence=valence,
                            arousal=arousal, speaking_probability=speaking if now - t_speak <= STALE_S else 0.0,
                            mode=mode, anomaly=bool(recent), anomaly_reasons=recent,
                            face=self._face.latest if wf else None, voice=self._voice.latest if wv else None)

    def _switch_dominant(self, now: float) -> None:
        leader = EMOTIONS[int(np.argmax(self._smoothed))]
        current = self._smoothed[EMOTIONS.index(self._dominant)]
        if leader == self._dominant or self._smoothed.max() - current < SWITCH_MARGIN:
            self._challenger = None
            return
        if self._challenger is None or self._challenger[0] != leader:
            self._challenger = (leader, now)
        elif now - self._challenger[1] >= SWITCH_HOLD_S:
            self._dominant, self._challenger = leader, None
