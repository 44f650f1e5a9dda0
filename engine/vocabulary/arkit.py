"""The 52 ARKit blendshape names: the closed vocabulary every stage speaks.

MediaPipe's Face Landmarker reports these names (plus ``_neutral``), "perfect sync" avatars carry
morph targets with the same names, and the VMC protocol sends them. Names are kept exactly as
ARKit spells them; ``Left``/``Right`` are the subject's own left and right.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum


class Blendshape(IntEnum):
    """The 52 ARKit coefficients in MediaPipe's order; the value indexes blendshape arrays."""

    browDownLeft = 0
    browDownRight = 1
    browInnerUp = 2
    browOuterUpLeft = 3
    browOuterUpRight = 4
    cheekPuff = 5
    cheekSquintLeft = 6
    cheekSquintRight = 7
    eyeBlinkLeft = 8
    eyeBlinkRight = 9
    eyeLookDownLeft = 10
    eyeLookDownRight = 11
    eyeLookInLeft = 12
    eyeLookInRight = 13
    eyeLookOutLeft = 14
    eyeLookOutRight = 15
    eyeLookUpLeft = 16
    eyeLookUpRight = 17
    eyeSquintLeft = 18
    eyeSquintRight = 19
    eyeWideLeft = 20
    eyeWideRight = 21
    jawForward = 22
    jawLeft = 23
    jawOpen = 24
    jawRight = 25
    mouthClose = 26
    mouthDimpleLeft = 27
    mouthDimpleRight = 28
    mouthFrownLeft = 29
    mouthFrownRight = 30
    mouthFunnel = 31
    mouthLeft = 32
    mouthLowerDownLeft = 33
    mouthLowerDownRight = 34
    mouthPressLeft = 35
    mouthPressRight = 36
    mouthPucker = 37
    mouthRight = 38
    mouthRollLower = 39
    mouthRollUpper = 40
    mouthShrugLower = 41
    mouthShrugUpper = 42
    mouthSmileLeft = 43
    mouthSmileRight = 44
    mouthStretchLeft = 45
    mouthStretchRight = 46
    mouthUpperUpLeft = 47
    mouthUpperUpRight = 48
    noseSneerLeft = 49
    noseSneerRight = 50
    tongueOut = 51


ARKIT_BLENDSHAPES: tuple[str, ...] = tuple(b.name for b in Blendshape)

ARKIT_INDEX: dict[str, int] = {name: i for i, name in enumerate(ARKIT_BLENDSHAPES)}

assert len(ARKIT_BLENDSHAPES) == 52


def both_sides(stem: str, value: float) -> dict[str, float]:
    """``{stemLeft: value, stemRight: value}``: one value for a left/right pair of shapes."""
    return {f"{stem}Left": value, f"{stem}Right": value}


# Largest eye rotation the eyeLook* blendshapes stand for, in degrees (ARKit's range is ~30/25).
GAZE_YAW_RANGE_DEG = 30.0
GAZE_PITCH_RANGE_DEG = 25.0


def gaze_from_blendshapes(bs: Mapping[str, float]) -> tuple[float, float]:
    """Both eyes' gaze (yaw, pitch) in degrees from the eyeLook* blendshapes.

    For the left eye "out" points to the subject's left (+yaw) and "in" to the nose; the right eye
    is mirrored. Up/down are averaged over both eyes.
    """
    left = bs["eyeLookOutLeft"] - bs["eyeLookInLeft"]
    right = bs["eyeLookInRight"] - bs["eyeLookOutRight"]
    up = (bs["eyeLookUpLeft"] + bs["eyeLookUpRight"]) / 2
    down = (bs["eyeLookDownLeft"] + bs["eyeLookDownRight"]) / 2
    return ((left + right) / 2 * GAZE_YAW_RANGE_DEG, (up - down) * GAZE_PITCH_RANGE_DEG)
