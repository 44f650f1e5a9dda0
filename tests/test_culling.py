"""Off-screen parts of an avatar are skipped, and skipping never changes the picture."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from engine.avatar.loading.gltf import load_avatar
from engine.avatar.model import Avatar, Node, quat_from_axis_angle
from engine.packets import AvatarPose
from engine.render.renderer import AvatarRenderer, RenderOptions
from tests.gltf_builders import build_test_avatar

OPTIONS = RenderOptions(width=320, height=180, msaa=0)


def with_feet(avatar: Avatar) -> Avatar:
    """The avatar plus a copy of its torso mesh 1.2 m lower (far below a head-and-shoulders frame)."""
    hips = avatar.find_node("Hips")
    torso = next(n for n in avatar.nodes if n.name == "TorsoMesh")
    feet = Node(name="FeetMesh", parent=hips, translation=(0.0, -1.2, 0.0), mesh=torso.mesh)
    nodes = list(avatar.nodes)
    nodes[hips] = dataclasses.replace(nodes[hips], children=(*nodes[hips].children, len(nodes)))
    return dataclasses.replace(avatar, nodes=(*nodes, feet))


def test_parts_below_the_frame_are_not_drawn(tmp_path: Path) -> None:
    plain = load_avatar(build_test_avatar(tmp_path / "a.glb", with_skin=False))
    full = with_feet(plain)
    pose = AvatarPose(morph_weights={"jawOpen": 1.0}, node_rotations={"Head": quat_from_axis_angle((0, 1, 0), 20)})
    with AvatarRenderer(plain, OPTIONS) as renderer:
        expected = renderer.render(pose)
        drawn_plain = renderer.drawn
    with AvatarRenderer(full, OPTIONS) as renderer:
        image = renderer.render(pose)
        assert renderer.drawn == drawn_plain == 2  # the feet are skipped
    np.testing.assert_array_equal(image, expected)
    with AvatarRenderer(full, dataclasses.replace(OPTIONS, framing="full_body")) as renderer:
        renderer.render(pose)
        assert renderer.drawn == 3  # in a full-body frame they are drawn


def test_skinned_parts_moved_into_view_are_drawn(tmp_path: Path) -> None:
    # the skinned test avatar: turning the camera right round still draws both parts
    avatar = load_avatar(build_test_avatar(tmp_path / "s.glb"))
    with AvatarRenderer(avatar, OPTIONS) as renderer:
        for yaw in (0.0, 90.0, 180.0):
            image = renderer.render(AvatarPose(view_yaw_deg=yaw))
            assert renderer.drawn == 2
            assert (np.abs(image.astype(int) - image[0, 0]).sum(axis=2) > 30).sum() > 500
