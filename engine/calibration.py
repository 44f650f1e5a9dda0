"""Per-user calibration: neutral offsets and per-control gain, applied before filtering.

A control value ``v`` becomes ``clamp((v - neutral) / (1 - neutral) * gain, 0, 1)``: the user's
resting face maps to 0 and their full expression still reaches 1. Head angles get a neutral
offset (the way the user habitually sits). The profile holds numbers only, never images.

``CalibrationSession`` builds one from perception results: a neutral capture (the median of each
blendshape and head angle over a few seconds of resting face), then guided maximum expressions
(``CALIBRATION_STEPS``: smile, brows up, jaw open, each eye closed, pucker, frown) whose 95th
percentile sets each control's range and the gain that makes that maximum reach 1.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import AvatarcamError
from engine.packets import FaceFrame
from engine.vocabulary.arkit import ARKIT_BLENDSHAPES, ARKIT_INDEX

# MediaPipe's blink score rarely exceeds ~0.75 with the eye shut; without a calibration the
# default lifts it so a real blink closes the avatar's eye.
DEFAULT_GAINS: dict[str, float] = {"eyeBlinkLeft": 1.4, "eyeBlinkRight": 1.4}


@dataclass(slots=True)
class Calibration:
    """Neutral offsets and gains by ARKit name; missing names mean neutral 0, gain 1.

    ``maximum`` keeps the raw value each guided expression reached (the control's range, shown by
    the wizard); the animation stage uses ``neutral`` and ``gain`` only.
    """

    neutral: dict[str, float] = field(default_factory=dict)
    gain: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_GAINS))
    head_neutral: tuple[float, float, float] = (0.0, 0.0, 0.0)
    maximum: dict[str, float] = field(default_factory=dict)

    def apply(self, blendshapes: Mapping[str, float]) -> dict[str, float]:
        """The calibrated value of each control, as the animation stage computes it (for meters)."""
        neutral, gain = self.arrays()
        raw = np.fromiter((blendshapes.get(n, 0.0) for n in ARKIT_BLENDSHAPES), dtype=np.float64,
                          count=len(ARKIT_BLENDSHAPES))
        values = np.clip((raw - neutral) / (1.0 - neutral) * gain, 0.0, 1.0)
        return dict(zip(ARKIT_BLENDSHAPES, values.tolist()))

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(neutral, gain) vectors in ``ARKIT_BLENDSHAPES`` order, for vectorised use."""
        neutral = np.zeros(len(ARKIT_BLENDSHAPES))
        gain = np.ones(len(ARKIT_BLENDSHAPES))
        for name, value in self.neutral.items():
            if name in ARKIT_INDEX:
                neutral[ARKIT_INDEX[name]] = min(max(value, 0.0), 0.95)
        for name, value in self.gain.items():
            if name in ARKIT_INDEX:
                gain[ARKIT_INDEX[name]] = max(value, 0.0)
        return neutral, gain

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"version": 1, **asdict(self)}, indent=1))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Calibration:
        try:
            data = json.loads(Path(path).read_text())
            return cls(neutral=dict(data.get("neutral", {})), gain=dict(data.get("gain", DEFAULT_GAINS)),
                       head_neutral=tuple(data.get("head_neutral", (0.0, 0.0, 0.0))),
                       maximum=dict(data.get("maximum", {})))
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise AvatarcamError(f"The calibration profile '{path}' could not be read ({exc}).",
                                 "Delete it or run the calibration again.") from exc


# --------------------------------------------------------------------------------------------
# Guided capture


@dataclass(frozen=True, slots=True)
class CalibrationStep:
    """One step of the guided capture: what to ask and which controls it calibrates."""

    name: str
    prompt: str
    controls: tuple[str, ...]
    seconds: float = 2.0


NEUTRAL_STEP = CalibrationStep("neutral", "Relax your face and look at the camera.", (), 3.0)
CALIBRATION_STEPS: tuple[CalibrationStep, ...] = (
    CalibrationStep("smile", "Smile as widely as you can.", ("mouthSmileLeft", "mouthSmileRight")),
    CalibrationStep("brows_up", "Raise your eyebrows high.", ("browInnerUp", "browOuterUpLeft", "browOuterUpRight")),
    CalibrationStep("jaw_open", "Open your mouth wide.", ("jawOpen",)),
    CalibrationStep("left_eye", "Close your left eye only.", ("eyeBlinkLeft",)),
    CalibrationStep("right_eye", "Close your right eye only.", ("eyeBlinkRight",)),
    CalibrationStep("pucker", "Pucker your lips, as for a kiss.", ("mouthPucker",)),
    CalibrationStep("frown", "Frown: pull your brows down and the corners of your mouth down.",
                    ("browDownLeft", "browDownRight", "mouthFrownLeft", "mouthFrownRight")),
)
MIN_RANGE = 0.05  # a maximum this close to neutral is not trusted: the gain stays as it was
GAIN_LIMITS = (0.5, 4.0)


class CalibrationSession:
    """Collects perception results for the neutral capture and the guided maxima.

    ``begin(step_name)`` starts collecting, ``add(face)`` (any thread; faces without a face present
    are ignored) keeps each result while a step is open, ``end()`` closes it and returns how many
    were kept. ``result()`` builds a ``Calibration`` from what was collected, starting from
    ``base`` (a step with no samples leaves its controls as they were).
    """

    def __init__(self, base: Calibration | None = None) -> None:
        self.base = base or Calibration()
        self._lock = threading.Lock()
        self._current: str | None = None
        self._samples: dict[str, list[FaceFrame]] = {}

    @property
    def current(self) -> str | None:
        return self._current

    def begin(self, step: str) -> None:
        with self._lock:
            self._current = step
            self._samples[step] = []

    def add(self, face: FaceFrame) -> None:
        if not face.present:
            return
        with self._lock:
            if self._current is not None:
                self._samples[self._current].append(face)

    def end(self) -> int:
        with self._lock:
            step, self._current = self._current, None
            return len(self._samples.get(step, [])) if step else 0

    def count(self, step: str) -> int:
        with self._lock:
            return len(self._samples.get(step, []))

    def _matrix(self, step: str) -> np.ndarray:
        with self._lock:
            faces = list(self._samples.get(step, []))
        return np.array([[f.blendshapes.get(n, 0.0) for n in ARKIT_BLENDSHAPES] for f in faces], dtype=np.float64)

    def result(self) -> Calibration:
        base = self.base
        neutral_vec, _ = base.arrays()
        neutral = dict(base.neutral)
        head_neutral = base.head_neutral
        rest = self._matrix(NEUTRAL_STEP.name)
        if len(rest):
            neutral_vec = np.median(rest, axis=0)
            neutral = {n: round(float(v), 4) for n, v in zip(ARKIT_BLENDSHAPES, neutral_vec)}
            with self._lock:
                heads = np.array([f.head_rotation for f in self._samples[NEUTRAL_STEP.name]])
            head_neutral = tuple(round(float(v), 3) for v in np.median(heads, axis=0))
        gain = dict(base.gain)
        maximum = dict(base.maximum)
        for step in CALIBRATION_STEPS:
            values = self._matrix(step.name)
            if not len(values):
                continue
            for name in step.controls:
                index = ARKIT_INDEX[name]
                top = float(np.percentile(values[:, index], 95))
                maximum[name] = round(top, 4)
                n = min(max(float(neutral_vec[index]), 0.0), 0.95)
                if top - n >= MIN_RANGE:
                    gain[name] = round(min(max((1.0 - n) / (top - n), GAIN_LIMITS[0]), GAIN_LIMITS[1]), 3)
        return Calibration(neutral=neutral, gain=gain, head_neutral=head_neutral, maximum=maximum)
