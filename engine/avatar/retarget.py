"""Retargeting: the avatar-neutral ``AvatarFrame`` -> one avatar's morph weights and bone rotations.

``AvatarBinding`` is built once per avatar. Its face rig (``rig``, a ``FaceRig``) is chosen by
``engine.avatar.face_rig`` from the avatar's morph targets and VRM expressions: perfect sync
(ARKit 52), VRM presets, VRoid ``Fcl_*`` targets, Oculus visemes, ``mouthOpen``/``mouthSmile``; a
jaw bone opens the mouth when no target does (``FaceRig.JAW_BONE`` when it is all there is), and
an avatar with none of these follows head pose and gaze only (``FaceRig.POSE_ONLY``). What the
avatar cannot show is listed in ``limits``, never dropped silently: ``describe()`` is the line the
command line prints and the app shows once the avatar is on. Building a binding says nothing (the
app builds one to check an avatar, the render thread another to show it).

A control named after one of the avatar's own VRM expressions (``happy``, ``aa``...) or morph
targets sets it directly (the snapshot command uses this).

Bones come from the VRM humanoid map when there is one, else from common node names. Rotations
are expressed about the avatar's world axes (the avatar faces +Z, see ``engine.rotation``) and
converted into each bone's local frame, so rigs whose bones have arbitrary rest orientations (VRM
0.x, Mixamo) turn the right way; a turn given to a bone carries its children, so the head's world
turn is the neck's turn times its own. The chest takes a small share of the head's turn (taken
back out of the neck, so the head still turns exactly as tracked), and T/A-pose arms hang relaxed
(``engine.avatar.body``). A VRM's bone-type lookAt scales the gaze by its range maps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from engine.avatar.body import body_turn, chest_bone, relaxed_arm_turns
from engine.avatar.face_rig import FaceRigBinding
from engine.avatar.flame_fit import FlameDriver
from engine.avatar.loading.flame import FlameModel
from engine.avatar.model import LEFT_EYE_CANDIDATES, RIGHT_EYE_CANDIDATES, Avatar, decompose_matrix, quat_from_axis_angle
from engine.avatar.rig_names import find_targets
from engine.avatar.rig_table import vrm_expression_weights
from engine.avatar.vrm import LookAt
from engine.models import ModelManager
from engine.packets import AvatarFrame, AvatarPose
from engine.rotation import euler_to_matrix
from engine.vocabulary.arkit import ARKIT_BLENDSHAPES
from engine.vocabulary.humanoid import HumanBone
from engine.vocabulary.rigs import FaceRig
from engine.vocabulary.vrm import LOOK_AT_PRESETS

HEAD_CANDIDATES = ("Head", "J_Bip_C_Head", "mixamorig:Head", "head_bone")
NECK_CANDIDATES = ("Neck", "J_Bip_C_Neck", "mixamorig:Neck", "neck_bone")
JAW_CANDIDATES = ("Jaw", "J_Bip_C_Jaw", "mixamorig:Jaw", "jaw_bone", "JawRoot", "CC_Base_JawRoot", "LowerJaw",
                  "jaw_master", "Jaw_M")
_ROLES = (("head", HumanBone.HEAD, HEAD_CANDIDATES), ("neck", HumanBone.NECK, NECK_CANDIDATES),
          ("left_eye", HumanBone.LEFT_EYE, LEFT_EYE_CANDIDATES), ("right_eye", HumanBone.RIGHT_EYE, RIGHT_EYE_CANDIDATES),
          ("jaw", HumanBone.JAW, JAW_CANDIDATES))
_EMPTY: Mapping = MappingProxyType({})
# How far a jaw bone turns: fully open (jawOpen 1) and fully to one side (jawLeft/jawRight 1).
JAW_OPEN_DEG = 22.0
JAW_SIDE_DEG = 6.0


def match_arkit_targets(target_names: tuple[str, ...]) -> dict[str, str]:
    """ARKit name -> the avatar's morph target name for it, whatever the spelling or prefix."""
    return find_targets(target_names, ARKIT_BLENDSHAPES)


def _clamp(x: float) -> float:
    return min(1.0, max(0.0, x))


@dataclass(frozen=True, slots=True)
class _BoneBinding:
    name: str
    rest_world: np.ndarray  # 3x3 world rotation in the rest pose
    rest_world_inv: np.ndarray

    @classmethod
    def of(cls, avatar: Avatar, index: int) -> _BoneBinding:
        rotation = avatar.rest_world_matrices[index][:3, :3]
        rotation = rotation / np.linalg.norm(rotation, axis=0, keepdims=True)
        return cls(avatar.nodes[index].name, rotation, rotation.T)

    def local_quaternion(self, world_rotation: np.ndarray) -> tuple[float, float, float, float]:
        """The local rotation that turns this bone by ``world_rotation`` about the world axes."""
        local = np.eye(4)
        local[:3, :3] = self.rest_world_inv @ world_rotation @ self.rest_world
        return decompose_matrix(local)[1]


class AvatarBinding:
    """Maps ``AvatarFrame``s onto one avatar. Immutable after construction; thread-safe."""

    def __init__(self, avatar: Avatar) -> None:
        vrm = avatar.vrm
        self._manager = vrm.expressions if vrm is not None else None
        self.expression_names: frozenset[str] = frozenset(self._manager.names) if self._manager else frozenset()
        self.look_at: LookAt | None = vrm.look_at if vrm is not None else None
        # An expression that binds nothing (a VRoid export's empty presets) cannot show anything.
        expressions = self._manager.expressions if self._manager else ()
        working = frozenset(e.name for e in expressions if e.morph_binds or e.texture_binds)
        self.face = FaceRigBinding.detect(avatar, working)
        self.arkit_targets: Mapping[str, str] = self.face.arkit
        # The avatar's own morph target names a control may set directly (ARKit names are bound above).
        self._own_targets = frozenset(avatar.morph_target_names) - set(ARKIT_BLENDSHAPES)
        # A FLAME head: expression and jaw fitted to the live landmarks (engine/avatar/flame_fit.py).
        flame = avatar.extras.get("flame")
        self._flame = FlameDriver(flame, ModelManager().find("face_landmarker")) if isinstance(flame, FlameModel) else None
        self.bones: dict[str, _BoneBinding] = {}
        for role, human_bone, candidates in _ROLES:
            index = avatar.human_bone(human_bone)
            if index is None:
                index = avatar.find_node(candidates)
            if index is not None and not (role == "jaw" and self.face.opens_mouth):
                self.bones[role] = _BoneBinding.of(avatar, index)
        chest = chest_bone(avatar)
        if chest is not None and avatar.nodes[chest].name not in {b.name for b in self.bones.values()}:
            self.bones["chest"] = _BoneBinding.of(avatar, chest)
        # Relaxed arms are a constant pose: their local rotations are worked out once.
        self._arms = MappingProxyType({avatar.nodes[i].name: _BoneBinding.of(avatar, i).local_quaternion(turn)
                                       for i, turn in relaxed_arm_turns(avatar).items()})
        rig = FaceRig.FLAME if self._flame is not None else self.face.rig
        if rig == FaceRig.POSE_ONLY and "jaw" in self.bones:
            rig = FaceRig.JAW_BONE
        self.rig: FaceRig = rig
        self.limits: tuple[str, ...] = self._limits(avatar)

    def _limits(self, avatar: Avatar) -> tuple[str, ...]:
        limits = []
        if not self.face.opens_mouth and "jaw" not in self.bones:
            limits.append("no mouth-open target or jaw bone: the mouth stays closed")
        if not self.face.blinks:
            limits.append("no blink target: the eyes stay open")
        looks = self.look_at is not None and self.look_at.type == "expression" and bool(
            self.expression_names & LOOK_AT_PRESETS)
        if not ({"left_eye", "right_eye"} & set(self.bones) or looks
                or any(name.startswith("eyeLook") for name in self.arkit_targets)):
            limits.append("no eye bones or look targets: the eyes do not follow the gaze")
        return tuple(limits)

    @property
    def has_face_controls(self) -> bool:
        return self.rig != FaceRig.POSE_ONLY

    @property
    def arms_relaxed(self) -> bool:
        """True when the rest pose's raised (T/A-pose) arms are lowered."""
        return bool(self._arms)

    def describe(self) -> str:
        """One line for the user: the face rig and what the avatar cannot show."""
        return f"face rig: {self.rig.value}" + "".join(f"; {line}" for line in self.limits)

    def pose(self, frame: AvatarFrame) -> AvatarPose:
        controls = frame.controls
        weights = self.face.morph_weights(controls, frame.visemes, frame.voice_weight)
        for name in self._own_targets.intersection(controls):  # named directly
            weights[name] = _clamp(controls[name])
        expression_weights = self.face.vrm_weights(controls)
        if self.look_at is not None and self.look_at.type == "expression":
            expression_weights.update({k: v for k, v in self.look_at.expression_weights(*frame.eyes).items()
                                       if k in self.expression_names})
        for name in self.expression_names.intersection(controls):  # named directly
            expression_weights[name] = max(expression_weights.get(name, 0.0), _clamp(controls[name]))
        target_weights, uv = _EMPTY, _EMPTY
        if expression_weights and self._manager is not None:
            result = self._manager.evaluate(expression_weights)
            target_weights, uv = result.target_weights, result.uv_transforms
        rotations = self._rotations(frame)
        if self._flame is not None and frame.landmarks is not None:
            # While tracking, the fit drives the face; otherwise (voice, idle) the controls do.
            fitted = self._flame.drive(frame.landmarks, frame.image_size)
            if fitted is not None:
                weights.update(fitted[0])
                rotations["Jaw"] = quat_from_axis_angle((1.0, 0.0, 0.0), float(np.degrees(fitted[1])))
        return AvatarPose(morph_weights=MappingProxyType(weights), node_rotations=MappingProxyType(rotations),
                          target_weights=target_weights, uv_transforms=uv)

    def _rotations(self, frame: AvatarFrame) -> dict[str, tuple[float, float, float, float]]:
        rotations = dict(self._arms)
        neck, head = euler_to_matrix(*frame.neck), euler_to_matrix(*frame.head)
        turns = {"neck": neck, "head": head}
        if "chest" in self.bones:  # the chest's share comes back out of the neck: the head turns as tracked
            body = body_turn(neck @ head)
            turns["chest"], turns["neck"] = body, body.T @ neck
        if "neck" not in self.bones:  # the head alone takes the whole turn
            turns["head"] = turns["neck"] @ head
        if self.look_at is None:
            turns["left_eye"] = turns["right_eye"] = euler_to_matrix(frame.eyes[0], frame.eyes[1], 0.0)
        elif self.look_at.type == "bone":
            for role, side in (("left_eye", "left"), ("right_eye", "right")):
                turns[role] = euler_to_matrix(*self.look_at.eye_angles(frame.eyes[0], frame.eyes[1], side), 0.0)
        if "jaw" in self.bones:
            c = frame.controls
            side = _clamp(c.get("jawLeft", 0.0)) - _clamp(c.get("jawRight", 0.0))
            turns["jaw"] = euler_to_matrix(JAW_SIDE_DEG * side, -JAW_OPEN_DEG * _clamp(c.get("jawOpen", 0.0)), 0.0)
        for role, bone in self.bones.items():
            if role in turns:
                rotations[bone.name] = bone.local_quaternion(turns[role])
        return rotations


__all__ = ["AvatarBinding", "match_arkit_targets", "vrm_expression_weights"]
