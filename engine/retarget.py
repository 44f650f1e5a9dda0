"""Retargeting: the avatar-neutral ``AvatarFrame`` -> one avatar's morph weights and bone rotations.

``AvatarBinding`` is built once per avatar. It finds the avatar's ARKit morph targets ("perfect
sync": exact names, or the same names behind an exporter prefix such as ``blendShape1.jawOpen``)
and its head, neck and eye nodes. Rotations are expressed about the avatar's world axes (the avatar
faces +Z, see ``engine.rotation``) and converted into each bone's local frame, so rigs whose bones
have arbitrary rest orientations (VRM 0.x, Mixamo) turn the right way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from .arkit import ARKIT_BLENDSHAPES
from .avatar import Avatar, decompose_matrix
from .render import AvatarPose
from .rotation import euler_to_matrix
from .types import AvatarFrame

HEAD_CANDIDATES = ("Head", "J_Bip_C_Head", "mixamorig:Head", "head_bone")
NECK_CANDIDATES = ("Neck", "J_Bip_C_Neck", "mixamorig:Neck", "neck_bone")
LEFT_EYE_CANDIDATES = ("LeftEye", "J_Adj_L_FaceEye", "Eye_L", "eye.L", "mixamorig:LeftEye", "lefteye_bone")
RIGHT_EYE_CANDIDATES = ("RightEye", "J_Adj_R_FaceEye", "Eye_R", "eye.R", "mixamorig:RightEye", "righteye_bone")


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
        world = avatar.rest_world_matrices
        self.bones: dict[str, _BoneBinding] = {}
        for role, candidates in (("head", HEAD_CANDIDATES), ("neck", NECK_CANDIDATES),
                                 ("left_eye", LEFT_EYE_CANDIDATES), ("right_eye", RIGHT_EYE_CANDIDATES)):
            index = avatar.find_node(candidates)
            if index is None:
                continue
            rotation = world[index][:3, :3]
            rotation = rotation / np.linalg.norm(rotation, axis=0, keepdims=True)
            self.bones[role] = _BoneBinding(avatar.nodes[index].name, rotation, rotation.T)

    @property
    def has_face_controls(self) -> bool:
        return bool(self.arkit_targets)

    def pose(self, frame: AvatarFrame) -> AvatarPose:
        weights = {target: min(1.0, max(0.0, frame.controls.get(arkit, 0.0)))
                   for arkit, target in self.arkit_targets.items()}
        rotations: dict[str, tuple[float, float, float, float]] = {}
        turns = {"neck": euler_to_matrix(*frame.neck), "head": euler_to_matrix(*frame.head)}
        eyes = euler_to_matrix(frame.eyes[0], frame.eyes[1], 0.0)
        turns["left_eye"] = turns["right_eye"] = eyes
        if "neck" not in self.bones:  # the head alone takes the whole turn
            turns["head"] = turns["neck"] @ turns["head"]
        for role, bone in self.bones.items():
            rotations[bone.name] = bone.local_quaternion(turns[role])
        return AvatarPose(morph_weights=MappingProxyType(weights), node_rotations=MappingProxyType(rotations))
