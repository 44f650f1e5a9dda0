"""Acceptance renders of the default avatar: every ARKit shape changes the expected image region,
and golden images at fixed poses.

Region test: each of the 52 ARKit shapes at 1.0 is rendered through the same path as
``avatarcam snapshot`` (``AvatarBinding`` -> ``AvatarRenderer``) and compared with neutral. The
changed pixels must sit nearest the facial feature the shape is about (anchors projected from the
avatar's own eye nodes, brow, lip and cheek geometry), and a ``...Left`` shape must change the
avatar's left side, which is the image's right (the avatar faces the camera).

Golden images: small PNGs under ``tests/golden/`` are this project's own renders. After an
intended visual change, regenerate them and look at them before committing::

    AVATARCAM_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden_default_avatar.py -q

Tolerance: mean absolute difference <= 1.5 (0..255) and < 1% of pixels off by more than 24,
so another Mesa/driver version or GPU passes while a changed shape, light or framing fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import needs_gl

from engine.avatar import load_avatar
from engine.avatar.retarget import AvatarBinding
from engine.packets import AvatarFrame, AvatarPose
from engine.paths import DEFAULT_AVATAR
from engine.render import AvatarRenderer, RenderOptions
from engine.vocabulary.arkit import ARKIT_BLENDSHAPES
from engine.vocabulary.rigs import FaceRig

pytestmark = needs_gl

GOLDEN = Path(__file__).resolve().parent / "golden"
REGEN = os.environ.get("AVATARCAM_REGEN_GOLDEN") == "1"
REGION_OPTIONS = RenderOptions(width=480, height=360, framing="close_up", msaa=0, software_msaa=None, fxaa=False)


def _frame(controls=None, head=(0.0, 0.0, 0.0), eyes=(0.0, 0.0)) -> AvatarFrame:
    return AvatarFrame(t_capture=0.0, sequence=0, controls=controls or {}, head=head, eyes=eyes)


@pytest.fixture(scope="module")
def shape_renders() -> dict:
    avatar = load_avatar(DEFAULT_AVATAR)
    binding = AvatarBinding(avatar)
    assert binding.rig == FaceRig.ARKIT and len(binding.arkit_targets) == 52
    with AvatarRenderer(avatar, REGION_OPTIONS) as renderer:
        neutral = renderer.render(binding.pose(_frame())).astype(int)
        shapes = {name: renderer.render(binding.pose(_frame({name: 1.0}))).astype(int) for name in ARKIT_BLENDSHAPES}
        anchors = _anchors(avatar, renderer)
    return {"neutral": neutral, "shapes": shapes, "anchors": anchors}


def _anchors(avatar, renderer) -> dict[str, np.ndarray]:
    """Image positions (x, y) of facial features, from the avatar's own geometry."""
    o = renderer.options
    cam = renderer.camera()
    vp = cam.projection_matrix(o.width / o.height) @ cam.view_matrix()

    def project(p) -> np.ndarray:
        clip = vp @ np.r_[p, 1.0]
        ndc = clip[:3] / clip[3]
        return np.array([(ndc[0] + 1) / 2 * o.width, (1 - ndc[1]) / 2 * o.height])

    world = avatar.rest_world_matrices
    eye = {side: world[avatar.find_node(name)][:3, 3] for side, name in (("L", "LeftEye"), ("R", "RightEye"))}
    face = next(m for m in avatar.meshes if m.name == "Face")
    face_node = next(i for i, n in enumerate(avatar.nodes) if n.mesh is not None and avatar.meshes[n.mesh] is face)
    face_world = world[face_node]

    def points(material: str) -> np.ndarray:
        pts = np.concatenate([p.positions for p in face.primitives if p.material.name == material])
        return (np.c_[pts, np.ones(len(pts))] @ face_world.T)[:, :3]

    lips, brows = points("Lips"), points("Brows")
    front_lips = lips[lips[:, 2] > lips[:, 2].max() - 0.01]
    mouth = front_lips.mean(axis=0)
    half_w = np.abs(front_lips[:, 0]).max()
    a = {
        "eye_L": project(eye["L"]), "eye_R": project(eye["R"]),
        "brow_L": project(brows[brows[:, 0] > 0].mean(axis=0)), "brow_R": project(brows[brows[:, 0] < 0].mean(axis=0)),
        "mouth": project(mouth),
        "mouth_L": project(mouth + [half_w, 0, -0.003]), "mouth_R": project(mouth - [half_w, 0, 0.003]),
    }
    a["brow_C"] = (a["brow_L"] + a["brow_R"]) / 2
    eye_mid = (a["eye_L"] + a["eye_R"]) / 2
    a["nose"] = eye_mid + 0.55 * (a["mouth"] - eye_mid)
    a["chin"] = a["mouth"] + 0.55 * (a["mouth"] - a["nose"])
    for s in "LR":
        a[f"cheek_{s}"] = np.array([a[f"eye_{s}"][0] * 0.85 + a["nose"][0] * 0.15,
                                    a["nose"][1] + 0.1 * (a["mouth"][1] - a["nose"][1])])
    return a


def _expected(name: str) -> set[str]:
    """Which anchors a shape's change may sit nearest."""
    side = "L" if name.endswith("Left") else "R" if name.endswith("Right") else ""
    stem = name[:-4] if side == "L" else name[:-5] if side == "R" else name
    if stem.startswith("eye"):
        return {f"eye_{side}"}
    if stem in ("browDown", "browOuterUp"):
        return {f"brow_{side}"}
    if stem == "browInnerUp":
        return {"brow_C", "brow_L", "brow_R"}
    if stem == "cheekSquint":
        return {f"cheek_{side}", f"eye_{side}"}
    if stem == "cheekPuff":
        return {"mouth", "cheek_L", "cheek_R", "nose", "mouth_L", "mouth_R"}
    if stem == "noseSneer":
        return {"nose", f"cheek_{side}"}
    if stem in ("jawOpen", "jawForward", "jaw", "tongueOut", "mouthClose", "mouthShrugLower", "mouthRollLower"):
        return {"mouth", "chin"} | ({f"mouth_{side}"} if side else set())
    if side and stem.startswith("mouth") and stem not in ("mouth",):
        return {f"mouth_{side}", "mouth", f"cheek_{side}", "chin"}
    return {"mouth", "mouth_L", "mouth_R", "chin"}  # mouth shapes, mouthLeft/Right


@pytest.mark.parametrize("name", ARKIT_BLENDSHAPES)
def test_each_arkit_shape_changes_its_own_region(shape_renders, name: str) -> None:
    diff = np.abs(shape_renders["shapes"][name] - shape_renders["neutral"]).max(axis=2)
    changed = diff > 12
    count = int(changed.sum())
    assert count >= 15, f"{name} changes only {count} pixels"
    ys, xs = np.nonzero(changed)
    weight = diff[changed].astype(float)
    centre = np.array([np.average(xs, weights=weight), np.average(ys, weights=weight)])
    anchors = shape_renders["anchors"]
    nearest = min(anchors, key=lambda k: np.linalg.norm(anchors[k] - centre))
    assert nearest in _expected(name), f"{name}: change centred at {centre.round(1)}, nearest {nearest}"
    face_x = (anchors["eye_L"][0] + anchors["eye_R"][0]) / 2
    on_avatar_left = weight[xs > face_x].sum() / weight.sum()  # the avatar's left is the image's right
    if name.endswith("Left") and name not in ("mouthLeft", "jawLeft"):
        assert on_avatar_left > 0.85, f"{name}: only {on_avatar_left:.0%} of the change is on the avatar's left"
    elif name.endswith("Right") and name not in ("mouthRight", "jawRight"):
        assert on_avatar_left < 0.15, f"{name}: {on_avatar_left:.0%} of the change is on the avatar's left"


def test_jaw_and_mouth_left_move_toward_the_avatars_left(shape_renders) -> None:
    """mouthLeft/jawLeft shift the mouth to the image's right; the Right shapes to the image's left."""
    neutral = shape_renders["neutral"]
    mouth = shape_renders["anchors"]["mouth"]

    def dark_x(image) -> float:  # centre of the red lips near the mouth anchor
        y0, x0 = int(mouth[1]), int(mouth[0])
        crop = image[y0 - 25:y0 + 30, x0 - 60:x0 + 60]
        red = (crop[..., 0] - crop[..., 1] > 65) & (crop[..., 0] - crop[..., 2] > 55)
        assert red.sum() > 20, "no lips found near the mouth anchor"
        return float(np.nonzero(red)[1].mean())

    base = dark_x(neutral)
    for name, sign in (("mouthLeft", 1), ("jawLeft", 1), ("mouthRight", -1), ("jawRight", -1)):
        shift = dark_x(shape_renders["shapes"][name]) - base
        assert sign * shift > 1.0, f"{name} moved the mouth by {shift:+.1f} px"


# --- golden images -----------------------------------------------------------------------------------

GOLDEN_OPTIONS = RenderOptions(width=320, height=240)  # the defaults: auto-framing, FXAA-lite on CPUs
GOLDEN_POSES = {
    "neutral": ({}, (0.0, 0.0, 0.0), (0.0, 0.0), 0.0),
    "smile_three_quarter": ({"mouthSmileLeft": 1.0, "mouthSmileRight": 1.0, "cheekSquintLeft": 0.5,
                             "cheekSquintRight": 0.5}, (0.0, 0.0, 0.0), (0.0, 0.0), 35.0),
    "jaw_open_head_turn": ({"jawOpen": 0.8}, (20.0, -5.0, 3.0), (0.0, 0.0), 0.0),
    "wink_gaze": ({"eyeBlinkLeft": 1.0, "mouthSmileLeft": 0.6}, (0.0, 0.0, 0.0), (15.0, 5.0), 0.0),
}


def _compare(name: str, image: np.ndarray) -> None:
    path = GOLDEN / f"{name}.png"
    if REGEN:
        GOLDEN.mkdir(exist_ok=True)
        cv2.imwrite(str(path), image[:, :, ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
        return
    if not path.is_file():
        pytest.fail(f"golden image {path.name} is missing; regenerate with AVATARCAM_REGEN_GOLDEN=1 (see module doc)")
    golden = cv2.imread(str(path))[:, :, ::-1].astype(int)
    assert golden.shape == image.shape
    diff = np.abs(golden - image.astype(int)).max(axis=2)
    mean, off = float(diff.mean()), float((diff > 24).mean())
    if mean > 1.5 or off > 0.01:
        out = Path(os.environ.get("PYTEST_GOLDEN_OUT", "/tmp")) / f"golden-actual-{name}.png"
        cv2.imwrite(str(out), image[:, :, ::-1])
        pytest.fail(f"{name}: mean difference {mean:.2f}, {off:.2%} of pixels off by > 24 (actual render: {out})")


@pytest.mark.parametrize("name", list(GOLDEN_POSES))
def test_default_avatar_golden(name: str) -> None:
    controls, head, eyes, view_yaw = GOLDEN_POSES[name]
    avatar = load_avatar(DEFAULT_AVATAR)
    binding = AvatarBinding(avatar)
    pose = binding.pose(_frame(controls, head, eyes))
    pose = AvatarPose(pose.morph_weights, pose.node_rotations, view_yaw_deg=view_yaw)
    with AvatarRenderer(avatar, GOLDEN_OPTIONS) as renderer:
        _compare(name, renderer.render(pose))


def test_default_vrm_golden_happy_expression() -> None:
    """The exported VRM, driven by its own VRM expression ``happy`` (morph target binds)."""
    avatar = load_avatar(DEFAULT_AVATAR.with_suffix(".vrm"))
    pose = AvatarBinding(avatar).pose(_frame({"happy": 1.0}))
    with AvatarRenderer(avatar, GOLDEN_OPTIONS) as renderer:
        _compare("vrm_happy", renderer.render(pose))


def test_golden_check_can_fail(tmp_path: Path, monkeypatch) -> None:
    """A different pose must not pass as the neutral golden image."""
    if REGEN:
        pytest.skip("regenerating")
    avatar = load_avatar(DEFAULT_AVATAR)
    pose = AvatarBinding(avatar).pose(_frame({"jawOpen": 1.0, "eyeBlinkLeft": 1.0}, (15.0, 0.0, 0.0)))
    with AvatarRenderer(avatar, GOLDEN_OPTIONS) as renderer:
        image = renderer.render(pose)
    monkeypatch.setenv("PYTEST_GOLDEN_OUT", str(tmp_path))
    with pytest.raises(pytest.fail.Exception):
        _compare("neutral", image)
