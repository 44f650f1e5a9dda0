"""Spring bones: hair lags a head turn, settles, stays out of colliders, at 30 and 60 fps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.avatar.loading.gltf import load_avatar
from engine.avatar.model import Avatar, quat_from_axis_angle
from engine.avatar.spring_bone import SpringBoneRig
from engine.packets import AvatarPose
from engine.paths import ASSETS_DIR
from tests.spring_builders import HAIR, SPHERE_CENTRE, SPHERE_RADIUS, build_spring_avatar

TURN = quat_from_axis_angle((0.0, 1.0, 0.0), 45.0)


def positions(avatar: Avatar, pose: AvatarPose, names: tuple[str, ...]) -> np.ndarray:
    """World positions of the named nodes in ``pose``."""
    rotations = {avatar.find_node(name): q for name, q in pose.node_rotations.items()}
    world = avatar.world_matrices(rotations)
    return np.array([world[avatar.find_node(name)][:3, 3] for name in names])


def simulate(avatar: Avatar, fps: int, seconds: float, head: str = "Head") -> tuple[np.ndarray, np.ndarray]:
    """Tip positions in each frame after the head turns 45 degrees just after t = 0, and the rigid target."""
    rig = SpringBoneRig(avatar)
    rig.apply(AvatarPose(), 0.0)
    tip = HAIR[-1] if avatar.find_node(HAIR[-1]) is not None else "PonytailTip"
    tips = []
    for frame in range(1, int(seconds * fps) + 1):
        pose = rig.apply(AvatarPose(node_rotations={head: TURN}), frame / fps)
        tips.append(positions(avatar, pose, (tip,))[0])
    rigid = positions(avatar, AvatarPose(node_rotations={head: TURN}), (tip,))[0]  # turned with the head, at rest
    return np.array(tips), rigid


@pytest.mark.parametrize("vrm0", [False, True], ids=["VRMC_springBone", "VRM0.x"])
@pytest.mark.parametrize("fps", [30, 60])
def test_hair_tip_lags_a_head_turn_and_settles(tmp_path: Path, fps: int, vrm0: bool) -> None:
    avatar = load_avatar(build_spring_avatar(tmp_path / ("a.vrm" if vrm0 else "a.glb"), vrm0=vrm0))
    assert avatar.spring_bones is not None and len(avatar.spring_bones.joints) >= 3
    tips, rigid = simulate(avatar, fps, 4.0)
    assert np.isfinite(tips).all()
    lag = np.linalg.norm(tips[0] - rigid)
    assert lag > 0.05  # one frame after the turn the tip is still far from where the head took it
    assert np.linalg.norm(tips[-1] - rigid) < 0.005  # ... and settles back to its rest shape
    last_second = np.linalg.norm(np.diff(tips[-fps:], axis=0), axis=1)
    assert last_second.max() < 0.0005  # at rest, not jittering
    assert np.linalg.norm(tips - rigid, axis=1).max() < 0.45  # never flung beyond its length


def test_motion_is_the_same_at_30_and_60_fps(tmp_path: Path) -> None:
    avatar = load_avatar(build_spring_avatar(tmp_path / "a.glb", gravity=0.3, drag=0.2))
    at30, _ = simulate(avatar, 30, 1.0)
    at60, _ = simulate(avatar, 60, 1.0)
    np.testing.assert_allclose(at30, at60[1::2], atol=1e-6)  # fixed 60 Hz steps: same instants, same state


def test_colliders_keep_joints_outside_a_sphere(tmp_path: Path) -> None:
    names = HAIR[1:]
    free = load_avatar(build_spring_avatar(tmp_path / "free.glb"))
    assert (np.linalg.norm(positions(free, AvatarPose(), names) - SPHERE_CENTRE, axis=1) < SPHERE_RADIUS).any()
    for vrm0 in (False, True):
        avatar = load_avatar(build_spring_avatar(tmp_path / f"c{vrm0}.vrm", collider=True, vrm0=vrm0))
        rig = SpringBoneRig(avatar)
        for frame in range(60):
            pose = rig.apply(AvatarPose(), frame / 30)
        centre = np.asarray(SPHERE_CENTRE) * ([-1, 1, -1] if vrm0 else 1)  # VRM 0.x is turned to face +Z
        distance = np.linalg.norm(positions(avatar, pose, names) - centre, axis=1)
        assert distance.min() >= SPHERE_RADIUS - 1e-3


def test_reset_puts_the_hair_back_at_rest(tmp_path: Path) -> None:
    avatar = load_avatar(build_spring_avatar(tmp_path / "a.glb"))
    rig = SpringBoneRig(avatar)
    rig.apply(AvatarPose(), 0.0)
    moved = rig.apply(AvatarPose(node_rotations={"Head": TURN}), 1 / 30)
    rig.reset()
    rest = rig.apply(AvatarPose(), 0.0)
    assert positions(avatar, moved, HAIR[-1:])[0][0] != pytest.approx(0.0, abs=1e-3)
    np.testing.assert_allclose(positions(avatar, rest, HAIR), positions(avatar, AvatarPose(), HAIR), atol=1e-6)


def test_no_spring_bones_leaves_the_pose_alone(tmp_path: Path) -> None:
    from tests.gltf_builders import build_test_avatar

    avatar = load_avatar(build_test_avatar(tmp_path / "plain.glb"))
    pose = AvatarPose(node_rotations={"Head": TURN})
    assert SpringBoneRig(avatar).apply(pose, 0.0) is pose


@pytest.mark.parametrize("name", ["default_avatar.glb", "default_avatar.vrm"])
def test_default_avatar_ponytail_swings(name: str) -> None:
    avatar = load_avatar(ASSETS_DIR / name)
    assert avatar.spring_bones is not None and len(avatar.spring_bones.colliders) == 2
    tips, rigid = simulate(avatar, 30, 3.0)
    assert np.isfinite(tips).all()
    assert np.linalg.norm(tips[0] - rigid) > 0.03
    assert np.linalg.norm(np.diff(tips[-30:], axis=0), axis=1).max() < 0.0005
