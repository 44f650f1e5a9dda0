"""Body bones: a relaxed rest for T/A-pose arms, and the chest following the head a little.

Both work in world space from the rest pose, like the head and eye turns (``engine.avatar.retarget``):
a rotation here turns a bone about the avatar's world axes (+Y up, facing +Z, its left on +X).
"""

from __future__ import annotations

import numpy as np

from engine.avatar.model import Avatar
from engine.rotation import euler_to_matrix, matrix_to_euler
from engine.vocabulary.humanoid import HumanBone

# Arm bones by role: the VRM humanoid name, then common rig names (Mixamo, VRoid, Blender, Unity).
ARM_BONES: dict[str, tuple[HumanBone, tuple[str, ...]]] = {
    "left_upper_arm": (HumanBone.LEFT_UPPER_ARM, ("LeftArm", "LeftUpperArm", "mixamorig:LeftArm", "J_Bip_L_UpperArm",
                                                   "upper_arm.L", "UpperArm_L", "L_UpperArm", "Left arm")),
    "left_lower_arm": (HumanBone.LEFT_LOWER_ARM, ("LeftForeArm", "LeftLowerArm", "mixamorig:LeftForeArm",
                                                   "J_Bip_L_LowerArm", "forearm.L", "LowerArm_L", "L_LowerArm",
                                                   "Left elbow")),
    "left_hand": (HumanBone.LEFT_HAND, ("LeftHand", "mixamorig:LeftHand", "J_Bip_L_Hand", "hand.L", "Hand_L",
                                          "L_Hand", "Left wrist")),
    "right_upper_arm": (HumanBone.RIGHT_UPPER_ARM, ("RightArm", "RightUpperArm", "mixamorig:RightArm",
                                                     "J_Bip_R_UpperArm", "upper_arm.R", "UpperArm_R", "R_UpperArm",
                                                     "Right arm")),
    "right_lower_arm": (HumanBone.RIGHT_LOWER_ARM, ("RightForeArm", "RightLowerArm", "mixamorig:RightForeArm",
                                                     "J_Bip_R_LowerArm", "forearm.R", "LowerArm_R", "R_LowerArm",
                                                     "Right elbow")),
    "right_hand": (HumanBone.RIGHT_HAND, ("RightHand", "mixamorig:RightHand", "J_Bip_R_Hand", "hand.R", "Hand_R",
                                            "R_Hand", "Right wrist")),
}
# The bone the body's share of a head turn goes to: the highest of the spine that the rig has
# (Ready Player Me and Mixamo without prefix: Spine > Spine1 > Spine2).
CHEST_BONES: tuple[tuple[HumanBone, tuple[str, ...]], ...] = (
    (HumanBone.UPPER_CHEST, ("UpperChest", "J_Bip_C_UpperChest", "mixamorig:Spine2", "Spine2", "spine.003")),
    (HumanBone.CHEST, ("Chest", "J_Bip_C_Chest", "mixamorig:Spine1", "Spine1", "spine.002")),
    (HumanBone.SPINE, ("Spine", "J_Bip_C_Spine", "mixamorig:Spine", "spine.001")),
)

# An arm whose upper part points more than this far above straight down is in a T or A pose.
_RAISED_ABOVE_DEG = 35.0
# The relaxed arm: hanging this far out from the body, the forearm bent this far forward.
_UPPER_OUT_DEG = 10.0
_UPPER_FORWARD_DEG = 4.0
_ELBOW_BEND_DEG = 18.0
# The body's share of the head's turn (yaw, pitch, roll): small, so the shoulders only hint at it.
BODY_SHARE = (0.15, 0.06, 0.12)


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-9 else v


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest 3x3 rotation taking direction ``a`` onto direction ``b``."""
    a, b = _unit(np.asarray(a, float)), _unit(np.asarray(b, float))
    axis = np.cross(a, b)
    s, c = float(np.linalg.norm(axis)), float(np.dot(a, b))
    if s < 1e-9:
        if c > 0:
            return np.eye(3)
        ortho = _unit(np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0]))
        return 2.0 * np.outer(ortho, ortho) - np.eye(3)
    k = axis / s
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + s * kx + (1 - c) * (kx @ kx)


def find_bone(avatar: Avatar, human: HumanBone | str, candidates: tuple[str, ...]) -> int | None:
    index = avatar.human_bone(str(human))
    return index if index is not None else avatar.find_node(candidates)


def relaxed_arm_turns(avatar: Avatar) -> dict[int, np.ndarray]:
    """World-space turns (node index -> 3x3) that lower T/A-pose arms to hang relaxed at the sides.

    Only arms that are raised in the rest pose are turned (an avatar modelled with relaxed arms
    keeps them). The forearm's turn is given relative to its already-turned parent, so composing
    them down the chain (as the retargeter does) puts the forearm where it is asked.
    """
    world = avatar.rest_world_matrices
    found = {role: find_bone(avatar, human, names) for role, (human, names) in ARM_BONES.items()}
    turns: dict[int, np.ndarray] = {}
    for side, sign in (("left", 1.0), ("right", -1.0)):
        upper, lower, hand = found[f"{side}_upper_arm"], found[f"{side}_lower_arm"], found[f"{side}_hand"]
        if upper is None or lower is None:
            continue
        shoulder, elbow = world[upper][:3, 3], world[lower][:3, 3]
        arm = _unit(elbow - shoulder)
        if np.degrees(np.arccos(np.clip(-arm[1], -1.0, 1.0))) < _RAISED_ABOVE_DEG:
            continue  # already hanging
        out, forward = np.radians(_UPPER_OUT_DEG), np.radians(_UPPER_FORWARD_DEG)
        hanging = _unit(np.array([sign * np.sin(out), -np.cos(out), np.sin(forward)]))
        upper_turn = rotation_between(arm, hanging)
        turns[upper] = upper_turn
        if hand is None:
            continue
        forearm = upper_turn @ _unit(world[hand][:3, 3] - elbow)  # where the forearm points now
        bend = np.radians(_ELBOW_BEND_DEG)
        bent = _unit(hanging * np.cos(bend) + np.array([0.0, 0.0, 1.0]) * np.sin(bend))
        # world turn wanted for the forearm = R2 @ upper_turn; its own share, in the parent-turned frame:
        turns[lower] = upper_turn.T @ rotation_between(forearm, bent) @ upper_turn
    return turns


def chest_bone(avatar: Avatar) -> int | None:
    for human, names in CHEST_BONES:
        index = find_bone(avatar, human, names)
        if index is not None:
            return index
    return None


def body_turn(head_turn: np.ndarray) -> np.ndarray:
    """The chest's small share of a head turn (3x3, world axes)."""
    yaw, pitch, roll = matrix_to_euler(head_turn)
    return euler_to_matrix(yaw * BODY_SHARE[0], pitch * BODY_SHARE[1], roll * BODY_SHARE[2])


__all__ = ["ARM_BONES", "BODY_SHARE", "CHEST_BONES", "body_turn", "chest_bone", "find_bone", "relaxed_arm_turns",
           "rotation_between"]
