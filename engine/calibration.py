"""Per-user calibration: neutral offsets and per-control gain, applied before filtering.

A control value ``v`` becomes ``clamp((v - neutral) / (1 - neutral) * gain, 0, 1)``: the user's
resting face maps to 0 and their full expression still reaches 1. Head angles get a neutral
offset (the way the user habitually sits). The profile holds numbers only, never images.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .arkit import ARKIT_BLENDSHAPES, ARKIT_INDEX
from .errors import AvatarcamError

# MediaPipe's blink score rarely exceeds ~0.75 with the eye shut; without a calibration the
# default lifts it so a real blink closes the avatar's eye.
DEFAULT_GAINS: dict[str, float] = {"eyeBlinkLeft": 1.4, "eyeBlinkRight": 1.4}


@dataclass(slots=True)
class Calibration:
    """Neutral offsets and gains by ARKit name; missing names mean neutral 0, gain 1."""

    neutral: dict[str, float] = field(default_factory=dict)
    gain: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_GAINS))
    head_neutral: tuple[float, float, float] = (0.0, 0.0, 0.0)

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
    def load(cls, path: Path) -> "Calibration":
        try:
            data = json.loads(Path(path).read_text())
            return cls(neutral=dict(data.get("neutral", {})), gain=dict(data.get("gain", DEFAULT_GAINS)),
                       head_neutral=tuple(data.get("head_neutral", (0.0, 0.0, 0.0))))
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise AvatarcamError(f"The calibration profile '{path}' could not be read ({exc}).",
                                 "Delete it or run the calibration again.") from exc
