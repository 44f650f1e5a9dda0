"""Retargeting: ARKit names onto an avatar's morph targets, head/eye turns onto any bone frame."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from engine.avatar import Avatar, Node, quat_from_axis_angle
from engine.avatar.retarget import AvatarBinding, match_arkit_targets
from engine.packets import AvatarFrame
from engine.rotation import euler_to_matrix


def test_arkit_names_match_exactly_case_insensitively_or_behind_a_prefix():
    names = ("JawOpen", "blendShape1.eyeBlinkLeft", "Face_mouthSmileLeft", "mouthLeft", "unrelated")
    matches = match_arkit_targets(names)
    assert matches["jawOpen"] == "JawOpen"
    assert matches["eyeBlinkLeft"] == "blendShape1.eyeBlinkLeft"
    assert matches["mouthSmileLeft"] == "Face_mouthSmileLeft"
    assert matches["mouthLeft"] == "mouthLeft"  # exact beats the suffix of mouthSmileLeft
    assert "jawLeft" not in matches


def rig(head_rest: tuple[float, float, float, float], facing: int = 1) -> Avatar:
    """Hips > Neck > Head > LeftEye with chosen rest rotations (bones need not be axis-aligned)."""
    twisted = quat_from_axis_angle((0, 0, 1), 90.0)
    nodes = (
        Node("Hips", None, (1,), (0.0, 1.0, 0.0)),
        Node("Neck", 0, (2,), (0.0, 0.5, 0.0), rotation=twisted),
        Node("Head", 1, (3,), (0.1, 0.0, 0.0), rotation=head_rest),
        Node("LeftEye", 2, (), (0.03, 0.05, 0.08)),
    )
    return Avatar(nodes=nodes, meshes=(), skins=(), scene_roots=(0,), facing=facing)


@pytest.mark.parametrize("head_rest", [(0.0, 0.0, 0.0, 1.0), quat_from_axis_angle((1, 1, 0), 70.0)])
@pytest.mark.parametrize("facing", [1, -1])
def test_head_turn_is_about_the_avatars_world_axes_whatever_the_bone_frame(head_rest, facing):
    avatar = rig(head_rest, facing)
    binding = AvatarBinding(avatar)
    frame = AvatarFrame(t_capture=0.0, sequence=1, controls={}, head=(25.0, 10.0, -5.0), neck=(8.0, 0.0, 0.0))
    pose = binding.pose(frame)
    index = {n.name: i for i, n in enumerate(avatar.nodes)}
    world = avatar.world_matrices({index[name]: q for name, q in pose.node_rotations.items()})
    rest = avatar.rest_world_matrices
    head = index["Head"]
    turned = world[head][:3, :3] @ np.linalg.inv(rest[head][:3, :3])
    expected = euler_to_matrix(*frame.neck) @ euler_to_matrix(*frame.head)
    assert np.allclose(turned, expected, atol=1e-6)


def test_eyes_follow_gaze_relative_to_the_head():
    avatar = rig((0.0, 0.0, 0.0, 1.0))
    pose = AvatarBinding(avatar).pose(AvatarFrame(t_capture=0.0, sequence=1, controls={}, eyes=(20.0, 0.0)))
    index = {n.name: i for i, n in enumerate(avatar.nodes)}
    world = avatar.world_matrices({index[name]: q for name, q in pose.node_rotations.items()})
    forward = world[index["LeftEye"]][:3, :3] @ np.array([0.0, 0.0, 1.0])
    assert forward[0] == pytest.approx(np.sin(np.radians(20.0)), abs=1e-6)


def test_avatar_without_neck_gives_the_whole_turn_to_the_head():
    avatar = rig((0.0, 0.0, 0.0, 1.0))
    nodes = list(avatar.nodes)
    nodes[1] = replace(nodes[1], name="Chest")
    avatar = replace(avatar, nodes=tuple(nodes))
    pose = AvatarBinding(avatar).pose(AvatarFrame(t_capture=0.0, sequence=1, controls={}, head=(10.0, 0, 0), neck=(5.0, 0, 0)))
    index = {n.name: i for i, n in enumerate(avatar.nodes)}
    assert set(pose.node_rotations) >= {"Chest", "Head"}  # the chest takes a small share...
    world = avatar.world_matrices({index[name]: q for name, q in pose.node_rotations.items()})
    turned = world[2][:3, :3] @ np.linalg.inv(avatar.rest_world_matrices[2][:3, :3])
    assert np.allclose(turned, euler_to_matrix(15.0, 0, 0), atol=1e-6)  # ...and the head still turns exactly
