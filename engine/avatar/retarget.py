"""Retargeting: the avatar-neutral ``AvatarFrame`` -> one avatar's morph weights and bone rotations.

``AvatarBinding`` is built once per avatar and picks how to drive its face (``mode``):

* ``"arkit"`` ("perfect sync"): the avatar has ARKit-named morph targets (exact names, or the same
  names behind an exporter prefix such as ``blendShape1.jawOpen``); controls drive them directly;
* ``"vrm"``: a VRM without ARKit targets; the ARKit controls are mapped to VRM expressions by
  ``vrm_expression_weights`` (blinks, visemes, emotions, and lookUp/Down/Left/Right when its lookAt
  is expression-type) and applied by its ``ExpressionManager`` (override and isBinary rules);
* ``"none"``: no face controls; the avatar still follows head pose and gaze.

In every mode a control named after one of the avatar's VRM expressions (``happy``, ``aa``...) sets
that expression directly (the snapshot command uses this).

Bones come from the VRM humanoid map when there is one (head, neck, leftEye, rightEye), else from
common node names. Rotations are expressed about the avatar's world axes (the avatar faces +Z, see
``engine.rotation``) and converted into each bone's local frame, so rigs whose bones have arbitrary
rest orientations (VRM 0.x, Mixamo) turn the right way. A VRM's bone-type lookAt scales the gaze by
its range maps.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from engine.avatar import Avatar, decompose_matrix
from engine.avatar.vrm import LookAt
from engine.packets import AvatarFrame, AvatarPose
from engine.rotation import euler_to_matrix
from engine.vocabulary.arkit import ARKIT_BLENDSHAPES

HEAD_CANDIDATES = ("Head", "J_Bip_C_Head", "mixamorig:Head", "head_bone")
NECK_CANDIDATES = ("Neck", "J_Bip_C_Neck", "mixamorig:Neck", "neck_bone")
LEFT_EYE_CANDIDATES = ("LeftEye", "J_Adj_L_FaceEye", "Eye_L", "eye.L", "mixamorig:LeftEye", "lefteye_bone")
RIGHT_EYE_CANDIDATES = ("RightEye", "J_Adj_R_FaceEye", "Eye_R", "eye.R", "mixamorig:RightEye", "righteye_bone")
_ROLES = (("head", "head", HEAD_CANDIDATES), ("neck", "neck", NECK_CANDIDATES),
          ("left_eye", "leftEye", LEFT_EYE_CANDIDATES), ("right_eye", "rightEye", RIGHT_EYE_CANDIDATES))
_EMPTY: Mapping = MappingProxyType({})


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def match_arkit_targets(target_names: tuple[str, ...]) -> dict[str, str]:
    """ARKit name -> the avatar's morph target name for it (exact, case-insensitive, or prefixed)."""
    by_key = {_key(name): name for name in target_names}
    matches: dict[str, str] = {}
    for arkit in ARKIT_BLENDSHAPES:
        key = _key(arkit)
        if key in by_key:
            matches[arkit] = by_key[key]
            continue
        prefixed = [name for k, name in by_key.items() if k.endswith(key)]
        if len(prefixed) == 1:
            matches[arkit] = prefixed[0]
    return matches


def _clamp(x: float) -> float:
    return min(1.0, max(0.0, x))


def vrm_expression_weights(c: Mapping[str, float], available: frozenset[str] | set[str]) -> dict[str, float]:
    """ARKit controls -> VRM expression weights (the one table mapping MediaPipe to VRM presets).

    Blinks: ``blinkLeft``/``blinkRight`` from ``eyeBlinkLeft``/``Right``; with ``blink`` too, the
    common part goes to ``blink`` and the rest to the sides (no lid closes twice); with ``blink``
    alone, it gets the mean. Visemes from the mouth: ``aa`` an open jaw, ``oh`` a funnel, ``ou`` a
    pucker, ``ee`` a stretched/smiling mouth, ``ih`` a slightly open wide mouth. Emotions from
    FACS-like combinations: happy (smile + cheek squint), angry (brows down + sneer), sad (frown +
    inner brows up), surprised (eyes wide + brows up + jaw), relaxed (a soft smile with relaxed lids).
    """
    g = lambda name: _clamp(float(c.get(name, 0.0)))  # noqa: E731
    left, right = g("eyeBlinkLeft"), g("eyeBlinkRight")
    out: dict[str, float] = {}
    sides = "blinkLeft" in available and "blinkRight" in available
    if "blink" in available and sides:
        both = min(left, right)
        out.update(blink=both, blinkLeft=left - both, blinkRight=right - both)
    elif sides:
        out.update(blinkLeft=left, blinkRight=right)
    elif "blink" in available:
        out["blink"] = (left + right) / 2.0
    jaw = g("jawOpen")
    funnel, pucker = g("mouthFunnel"), g("mouthPucker")
    smile = (g("mouthSmileLeft") + g("mouthSmileRight")) / 2.0
    stretch = (g("mouthStretchLeft") + g("mouthStretchRight")) / 2.0
    wide = _clamp(stretch + 0.5 * smile)
    rounded = max(funnel, pucker)
    out["aa"] = _clamp(jaw * (1.0 - rounded) * (1.0 - 0.6 * wide) * 1.3)
    out["oh"] = _clamp(funnel * (0.4 + jaw) * 1.2)
    out["ou"] = _clamp(pucker * (1.0 - 0.5 * jaw))
    out["ee"] = _clamp(wide * (0.4 + jaw) * (1.0 - rounded))
    out["ih"] = _clamp(wide * jaw * 1.5 * (1.0 - rounded)) if jaw < 0.35 else 0.0
    squint = (g("cheekSquintLeft") + g("cheekSquintRight")) / 2.0
    brow_down = (g("browDownLeft") + g("browDownRight")) / 2.0
    sneer = (g("noseSneerLeft") + g("noseSneerRight")) / 2.0
    frown = (g("mouthFrownLeft") + g("mouthFrownRight")) / 2.0
    wide_eyes = (g("eyeWideLeft") + g("eyeWideRight")) / 2.0
    brows_up = max(g("browInnerUp"), (g("browOuterUpLeft") + g("browOuterUpRight")) / 2.0)
    out["happy"] = _clamp(0.75 * smile + 0.5 * squint)
    out["angry"] = _clamp((0.8 * brow_down + 0.5 * sneer) * (1.0 - smile))
    out["sad"] = _clamp((0.7 * frown + 0.5 * g("browInnerUp")) * (1.0 - smile) * (1.0 - wide_eyes))
    out["surprised"] = _clamp((0.6 * wide_eyes + 0.4 * brows_up) * (0.5 + jaw))
    lids = (left + right) / 2.0
    out["relaxed"] = _clamp(smile * 0.6 * lids * 2.0) if lids < 0.6 else 0.0
    return {name: w for name, w in out.items() if name in available}


@dataclass(frozen=True, slots=True)
class _BoneBinding:
    name: str
    rest_world: np.ndarray  # 3x3 world rotation in the rest pose
    rest_world_inv: np.ndarray

    def local_quaternion(self, world_rotation: np.ndarray) -> tuple[float, float, float, float]:
        """The local rotation that turns this bone by ``world_rotation`` about the world axes."""
        local = np.eye(4)
        local[:3, :3] = self.rest_world_inv @ world_rotation @ self.rest_world
        return decompose_matrix(local)[1]


class AvatarBinding:
    """Maps ``AvatarFrame``s onto one avatar. Immutable after construction; thread-safe."""

    def __init__(self, avatar: Avatar) -> None:
        self.arkit_targets: dict[str, str] = match_arkit_targets(avatar.morph_target_names)
        vrm = avatar.vrm
        self._manager = vrm.expressions if vrm is not None else None
        self.expression_names: frozenset[str] = frozenset(self._manager.names) if self._manager else frozenset()
        self.look_at: LookAt | None = vrm.look_at if vrm is not None else None
        if self.arkit_targets:
            self.mode = "arkit"
        elif self.expression_names:
            self.mode = "vrm"
        else:
            self.mode = "none"
        world = avatar.rest_world_matrices
        self.bones: dict[str, _BoneBinding] = {}
        for role, human_bone, candidates in _ROLES:
            index = avatar.human_bone(human_bone)
            if index is None:
                index = avatar.find_node(candidates)
            if index is None:
                continue
            rotation = world[index][:3, :3]
            rotation = rotation / np.linalg.norm(rotation, axis=0, keepdims=True)
            self.bones[role] = _BoneBinding(avatar.nodes[index].name, rotation, rotation.T)

    @property
    def has_face_controls(self) -> bool:
        return self.mode != "none"

    def pose(self, frame: AvatarFrame) -> AvatarPose:
        controls = frame.controls
        weights = {target: _clamp(controls.get(arkit, 0.0)) for arkit, target in self.arkit_targets.items()}
        expression_weights: dict[str, float] = {}
        if self.mode == "vrm":
            expression_weights = vrm_expression_weights(controls, self.expression_names)
        if self.look_at is not None and self.look_at.type == "expression":
            expression_weights.update({k: v for k, v in self.look_at.expression_weights(*frame.eyes).items()
                                       if k in self.expression_names})
        for name in self.expression_names.intersection(controls):  # named directly
            expression_weights[name] = max(expression_weights.get(name, 0.0), _clamp(controls[name]))
        target_weights, uv = _EMPTY, _EMPTY
        if expression_weights and self._manager is not None:
            result = self._manager.evaluate(expression_weights)
            target_weights, uv = result.target_weights, result.uv_transforms

        rotations: dict[str, tuple[float, float, float, float]] = {}
        turns = {"neck": euler_to_matrix(*frame.neck), "head": euler_to_matrix(*frame.head)}
        if self.look_at is None:
            turns["left_eye"] = turns["right_eye"] = euler_to_matrix(frame.eyes[0], frame.eyes[1], 0.0)
        elif self.look_at.type == "bone":
            for role, side in (("left_eye", "left"), ("right_eye", "right")):
                turns[role] = euler_to_matrix(*self.look_at.eye_angles(frame.eyes[0], frame.eyes[1], side), 0.0)
        if "neck" not in self.bones:  # the head alone takes the whole turn
            turns["head"] = turns["neck"] @ turns["head"]
        for role, bone in self.bones.items():
            if role in turns:
                rotations[bone.name] = bone.local_quaternion(turns[role])
        return AvatarPose(morph_weights=MappingProxyType(weights), node_rotations=MappingProxyType(rotations),
                          target_weights=target_weights, uv_transforms=uv)
