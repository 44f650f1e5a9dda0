"""The 52 ARKit blendshape names: the closed vocabulary every stage speaks.

MediaPipe's Face Landmarker reports these names (plus ``_neutral``), "perfect sync" avatars carry
morph targets with the same names, and the VMC protocol sends them. Names are kept exactly as
ARKit spells them; ``Left``/``Right`` are the subject's own left and right.
"""

from __future__ import annotations

ARKIT_BLENDSHAPES: tuple[str, ...] = (
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight",
    "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight",
    "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight",
    "jawForward", "jawLeft", "jawOpen", "jawRight",
    "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight",
    "tongueOut",
)

ARKIT_INDEX: dict[str, int] = {name: i for i, name in enumerate(ARKIT_BLENDSHAPES)}

assert len(ARKIT_BLENDSHAPES) == 52


def both_sides(stem: str, value: float) -> dict[str, float]:
    """``{stemLeft: value, stemRight: value}``: one value for a left/right pair of shapes."""
    return {f"{stem}Left": value, f"{stem}Right": value}
