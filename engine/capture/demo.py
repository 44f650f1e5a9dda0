"""The offline demo: a scripted performance that needs no camera, microphone or model.

``DemoSource`` releases ``FaceFrame``s (not images) at a camera's pace, as if a tracker had read
them from a person: a loop of expressions, talking, head turns, gaze and natural blinks that shows
every part of the avatar off. The pipeline feeds them straight to the animation stage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType

from engine.capture.video import FramePacer, SourceInfo
from engine.idle import IdleMotion
from engine.packets import FaceFrame
from engine.stages import SourceCaps
from engine.vocabulary.arkit import ARKIT_BLENDSHAPES, both_sides, gaze_from_blendshapes

RAMP_S = 0.35  # each expression eases in and out over this long


@dataclass(frozen=True, slots=True)
class Beat:
    """One expression of the performance, held from ``start`` to ``end`` (seconds)."""

    start: float
    end: float
    controls: dict[str, float]
    head: tuple[float, float, float] = (0.0, 0.0, 0.0)
    talking: bool = False


PERFORMANCE: tuple[Beat, ...] = (
    Beat(1.5, 3.5, {**both_sides("mouthSmile", 0.85), **both_sides("cheekSquint", 0.45), **both_sides("eyeSquint", 0.25)}),
    Beat(4.0, 7.0, {"mouthFunnel": 0.1}, head=(4.0, 2.0, 0.0), talking=True),
    Beat(7.3, 9.0, {"browInnerUp": 0.9, **both_sides("browOuterUp", 0.8), **both_sides("eyeWide", 0.7), "jawOpen": 0.45},
         head=(0.0, 6.0, 0.0)),
    Beat(9.4, 10.6, {"eyeBlinkLeft": 1.0, "mouthSmileLeft": 0.6, "cheekSquintLeft": 0.4}, head=(0.0, 0.0, 6.0)),
    Beat(11.0, 12.2, {"eyeLookOutLeft": 0.7, "eyeLookInRight": 0.7}, head=(25.0, 0.0, 0.0)),
    Beat(12.4, 13.6, {"eyeLookInLeft": 0.7, "eyeLookOutRight": 0.7}, head=(-25.0, 0.0, 0.0)),
    Beat(14.0, 16.0, {"browInnerUp": 0.65, **both_sides("mouthFrown", 0.7), "mouthShrugLower": 0.35,
                      **both_sides("eyeLookDown", 0.35)}, head=(0.0, -8.0, -4.0)),
    Beat(16.4, 17.6, {"mouthPucker": 0.95, **both_sides("eyeSquint", 0.2)}, head=(0.0, 3.0, 5.0)),
    Beat(18.0, 19.6, {**both_sides("browDown", 0.85), **both_sides("noseSneer", 0.55), **both_sides("mouthPress", 0.5),
                      **both_sides("eyeSquint", 0.4)}, head=(0.0, -4.0, 0.0)),
    Beat(20.0, 21.0, {"cheekPuff": 0.85}),
    Beat(21.3, 22.4, {"jawOpen": 0.3, "tongueOut": 0.8}),
    Beat(22.8, 24.8, {"jawOpen": 0.35, **both_sides("mouthSmile", 1.0), **both_sides("cheekSquint", 0.6),
                      **both_sides("eyeSquint", 0.5)}, head=(0.0, 8.0, 0.0)),
)
LOOP_SECONDS = 27.0


def _envelope(t: float, beat: Beat) -> float:
    if t <= beat.start - RAMP_S or t >= beat.end + RAMP_S:
        return 0.0
    x = min((t - beat.start + RAMP_S) / RAMP_S, (beat.end + RAMP_S - t) / RAMP_S, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _talk(t: float) -> dict[str, float]:
    """Syllables at ~4.5 Hz with varied openness and lip rounding, as in speech."""
    syllable = max(0.0, math.sin(2 * math.pi * 4.5 * t)) * (0.55 + 0.45 * math.sin(2 * math.pi * 0.9 * t) ** 2)
    rounding = max(0.0, math.sin(2 * math.pi * 1.3 * t + 1.0))
    return {"jawOpen": 0.45 * syllable, "mouthFunnel": 0.35 * rounding * syllable, "mouthPucker": 0.3 * rounding,
            **both_sides("mouthLowerDown", 0.3 * syllable), **both_sides("mouthStretch", 0.2 * (1 - rounding) * syllable)}


def performance_at(t: float, idle: IdleMotion) -> tuple[dict[str, float], tuple[float, float, float]]:
    """Blendshapes (ARKit names, 0..1) and head pose (degrees) of the performance at time ``t``."""
    loop_t = t % LOOP_SECONDS
    controls = dict.fromkeys(ARKIT_BLENDSHAPES, 0.0)
    head = [0.0, 0.0, 0.0]
    for beat in PERFORMANCE:
        w = _envelope(loop_t, beat)
        if w == 0.0:
            continue
        values = {**beat.controls, **(_talk(loop_t) if beat.talking else {})}
        for name, value in values.items():
            controls[name] = min(1.0, controls[name] + w * value)
        head = [h + w * b for h, b in zip(head, beat.head)]
    blink = idle.blink(t)
    for side in ("Left", "Right"):
        controls[f"eyeBlink{side}"] = max(controls[f"eyeBlink{side}"], blink)
    drift = idle.head(t)
    return controls, (head[0] + drift[0], head[1] + drift[1], head[2] + drift[2])


class DemoSource:
    """A paced source of scripted ``FaceFrame``s; a drop-in for camera + tracker.

    Same lifecycle as the video sources: ``open``, blocking ``read`` (None once closed or after
    ``seconds``), idempotent, thread-safe ``close`` that interrupts a waiting ``read``.
    """

    caps = SourceCaps.FACES
    frames_skipped = 0

    def __init__(self, fps: float = 30.0, seconds: float | None = None, seed: int = 11) -> None:
        self.info = SourceInfo(name="demo performance", width=0, height=0, fps=fps, live=False, frame_count=None)
        self._fps = fps
        self._seconds = seconds
        self._seed = seed
        self._pacer: FramePacer | None = None
        self._index = 0

    def open(self) -> None:
        self._pacer = FramePacer(self._fps)
        self._idle = IdleMotion(self._seed)
        self._index = 0

    def read(self) -> FaceFrame | None:
        if self._pacer is None:
            return None
        t_media = self._index / self._fps
        if self._seconds is not None and t_media >= self._seconds:
            return None
        released = self._pacer.wait(t_media)
        if released is None:
            return None
        controls, head = performance_at(t_media, self._idle)
        blendshapes = MappingProxyType(controls)
        frame = FaceFrame(t_capture=released, index=self._index, present=True, confidence=1.0,
                          blendshapes=blendshapes, head_rotation=head, gaze=gaze_from_blendshapes(blendshapes),
                          blink=(controls["eyeBlinkLeft"], controls["eyeBlinkRight"]))
        self._index += 1
        return frame

    def close(self) -> None:
        if self._pacer is not None:
            self._pacer.stop()

    def __enter__(self) -> DemoSource:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
