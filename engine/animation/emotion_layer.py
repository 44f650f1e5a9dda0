"""The emotion layer: expression offsets for the fused emotion, blended on top of the mirrored face.

``expressiveness`` 0 leaves a pure mirror of the user; 1 adds a clearly stylised version of the
emotion (a happy user smiles a little more and their cheeks lift, a sad one's inner brows rise and
gaze drops). Offsets scale with each emotion's probability, so a mixed state gives a mixed face and
the smoothing of the fuser carries over. While the user speaks, the layer keeps off the shapes
that articulate speech (jaw, lips), so it never fights the visemes; mouth corners keep part of it.
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

import numpy as np

from engine.fusion.fuser import EmotionState
from engine.packets import AvatarFrame
from engine.vocabulary.arkit import ARKIT_BLENDSHAPES, ARKIT_INDEX, both_sides
from engine.vocabulary.emotions import EMOTIONS

# Per emotion at full strength: blendshape offsets, head pitch and gaze pitch offsets (degrees).
OFFSETS: dict[str, tuple[dict[str, float], float, float]] = {
    "neutral": ({}, 0.0, 0.0),
    "happy": ({**both_sides("mouthSmile", 0.55), **both_sides("cheekSquint", 0.4), **both_sides("eyeSquint", 0.15)}, 2.0, 0.0),
    "sad": ({"browInnerUp": 0.6, **both_sides("mouthFrown", 0.5), "mouthShrugLower": 0.2, **both_sides("browDown", 0.1)}, -4.0, -6.0),
    "angry": ({**both_sides("browDown", 0.6), **both_sides("noseSneer", 0.3), **both_sides("mouthPress", 0.3), **both_sides("eyeSquint", 0.3)}, -2.0, 0.0),
    "surprised": ({"browInnerUp": 0.6, **both_sides("browOuterUp", 0.6), **both_sides("eyeWide", 0.5), "jawOpen": 0.2}, 3.0, 2.0),
    "fearful": ({"browInnerUp": 0.5, **both_sides("eyeWide", 0.45), **both_sides("mouthStretch", 0.3)}, -1.0, 0.0),
    "disgusted": ({**both_sides("noseSneer", 0.6), **both_sides("mouthUpperUp", 0.4), **both_sides("browDown", 0.2)}, -1.0, 0.0),
}
_MATRIX = np.array([[OFFSETS[e][0].get(n, 0.0) for n in ARKIT_BLENDSHAPES] for e in EMOTIONS])
_HEAD_PITCH = np.array([OFFSETS[e][1] for e in EMOTIONS])
_GAZE_PITCH = np.array([OFFSETS[e][2] for e in EMOTIONS])

# How much of the layer each shape keeps while the user speaks: the speech articulators keep none.
_SPEECH = ("jawOpen", "jawForward", "jawLeft", "jawRight", "mouthClose", "mouthFunnel", "mouthPucker",
           "mouthLeft", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
           "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight",
           "mouthUpperUpLeft", "mouthUpperUpRight", "mouthStretchLeft", "mouthStretchRight", "tongueOut")
_CORNERS = ("mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft", "mouthDimpleRight")
_KEEP_WHILE_SPEAKING = np.ones(len(ARKIT_BLENDSHAPES))
_KEEP_WHILE_SPEAKING[[ARKIT_INDEX[n] for n in _SPEECH]] = 0.0
_KEEP_WHILE_SPEAKING[[ARKIT_INDEX[n] for n in _CORNERS]] = 0.5


def apply_emotion(frame: AvatarFrame, state: EmotionState, expressiveness: float) -> AvatarFrame:
    """``frame`` with the emotion layer added (clamped to 0..1); unchanged at expressiveness 0."""
    strength = float(np.clip(expressiveness, 0.0, 1.0))
    if strength == 0.0 or state.mode == "none":
        return frame
    weights = np.asarray(state.probabilities, dtype=np.float64) * strength
    speaking = float(np.clip(state.speaking_probability, 0.0, 1.0))
    keep = 1.0 - speaking * (1.0 - _KEEP_WHILE_SPEAKING)
    offsets = (weights @ _MATRIX) * keep
    controls = np.fromiter((frame.controls.get(n, 0.0) for n in ARKIT_BLENDSHAPES), dtype=np.float64, count=len(ARKIT_BLENDSHAPES))
    controls = np.clip(controls + offsets, 0.0, 1.0)
    head_pitch = float(weights @ _HEAD_PITCH)
    gaze_pitch = float(weights @ _GAZE_PITCH)
    return replace(frame,
                   controls=MappingProxyType(dict(zip(ARKIT_BLENDSHAPES, controls.tolist()))),
                   head=(frame.head[0], frame.head[1] + head_pitch, frame.head[2]),
                   eyes=(frame.eyes[0], frame.eyes[1] + gaze_pitch))
