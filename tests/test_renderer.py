"""Offscreen renderer: output format, framing, morphs, node rotations, skinning, MSAA, lifecycle.

Runs on whatever OpenGL the machine has (Mesa llvmpipe through EGL on CI); skipped only when no
OpenGL 3.3 context can be created at all.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import numpy as np
import pygltflib
import pytest
from gltf_builders import HEAD_MAX, HEAD_MIN, TORSO_MAX, GltfBuilder, build_test_avatar, grid_box

from engine.avatar import Avatar, Material, Mesh, MeshInstance, Node, Primitive, Skin, load_avatar
from engine.avatar.model import quat_from_axis_angle
from engine.errors import AvatarLoadError, RenderError
from engine.packets import AvatarPose
from engine.paths import DEFAULT_AVATAR
from engine.render import AvatarRenderer, RenderOptions, create_context, frame_avatar


def _gl_available() -> str:
    try:
        create_context().release()
        return ""
    except RenderError as error:
        return str(error)


_NO_GL = _gl_available()
pytestmark = pytest.mark.skipif(bool(_NO_GL), reason=f"no OpenGL context: {_NO_GL}")

SMALL = RenderOptions(width=320, height=240, msaa=0, software_msaa=None, fxaa=False)
BG = np.round(np.asarray(SMALL.background) * 255).astype(np.uint8)
NEUTRAL = AvatarPose()


@pytest.fixture(scope="module")
def avatars(tmp_path_factory) -> dict[str, Avatar]:
    d = tmp_path_factory.mktemp("avatars")
    return {
        "skinned": load_avatar(build_test_avatar(d / "skinned.glb", with_morphs=("jawOpen", "smile"))),
        "rigid": load_avatar(build_test_avatar(d / "rigid.glb", with_skin=False)),
        "textured": load_avatar(build_test_avatar(d / "tex.glb", with_texture=True)),
    }


def foreground(image: np.ndarray) -> np.ndarray:
    return np.any(np.abs(image.astype(int) - BG.astype(int)) > 6, axis=2)


def project(renderer: AvatarRenderer, point, yaw: float = 0.0) -> tuple[float, float]:
    """Pixel (column, row from the top) where a world point lands, from the renderer's camera."""
    o = renderer.options
    cam = renderer.camera(yaw)
    clip = cam.projection_matrix(o.width / o.height) @ cam.view_matrix() @ np.r_[point, 1.0]
    ndc = clip[:3] / clip[3]
    return (ndc[0] + 1) / 2 * o.width, (1 - ndc[1]) / 2 * o.height


def roll(degrees: float) -> tuple[float, float, float, float]:
    return quat_from_axis_angle((0.0, 0.0, 1.0), degrees)


# --- output format and framing -----------------------------------------------------------------


@pytest.mark.parametrize("size", [(1280, 720), (641, 479)])
def test_output_shape_dtype_and_background(avatars, size) -> None:
    options = RenderOptions(width=size[0], height=size[1], msaa=4, software_msaa=None)
    with AvatarRenderer(avatars["skinned"], options) as renderer:
        image = renderer.render(NEUTRAL)
    assert image.shape == (size[1], size[0], 3) and image.dtype == np.uint8
    assert image.flags["C_CONTIGUOUS"]
    for corner in (image[0, 0], image[0, -1], image[-1, 0], image[-1, -1]):
        np.testing.assert_array_equal(corner, BG)
    assert foreground(image).mean() > 0.1  # the avatar is there


def test_image_is_top_row_first_and_matches_the_camera(avatars) -> None:
    with AvatarRenderer(avatars["rigid"], SMALL) as renderer:
        image = renderer.render(NEUTRAL)
        _, head_top = project(renderer, (0.0, HEAD_MAX[1], HEAD_MAX[2]))
        _, torso_top = project(renderer, (0.0, TORSO_MAX[1], TORSO_MAX[2]))
    rows = np.flatnonzero(foreground(image).any(axis=1))
    assert abs(rows[0] - head_top) <= 2  # head at the top, not upside down
    assert rows[-1] == image.shape[0] - 1  # torso runs off the bottom edge like a webcam shot
    assert head_top < torso_top


def test_head_and_shoulders_framing_puts_head_in_upper_middle(avatars) -> None:
    with AvatarRenderer(avatars["skinned"], SMALL) as renderer:
        centre = (np.asarray(HEAD_MIN) + np.asarray(HEAD_MAX)) / 2
        x, y = project(renderer, centre)
        _, top = project(renderer, (0.0, HEAD_MAX[1], 0.0))
        _, bottom = project(renderer, (0.0, HEAD_MIN[1], 0.0))
    h = SMALL.height
    assert abs(x - SMALL.width / 2) < 1
    assert 0.3 * h < y < 0.5 * h
    assert 0.25 * h < bottom - top < 0.5 * h


@pytest.mark.parametrize("scale", [0.01, 1.0, 100.0])
def test_framing_is_independent_of_avatar_size(scale: float) -> None:
    body = (np.array([-0.4, 1.0, -0.15]) * scale, np.array([0.4, 1.85, 0.15]) * scale)
    head = (np.asarray(HEAD_MIN) * scale, np.asarray(HEAD_MAX) * scale)
    cam = frame_avatar(body, head, aspect=16 / 9, fov_y_deg=25.0)
    ref = frame_avatar((body[0] / scale, body[1] / scale), (head[0] / scale, head[1] / scale),
                       aspect=16 / 9, fov_y_deg=25.0)
    np.testing.assert_allclose(np.asarray(cam.eye) / scale, ref.eye, rtol=1e-9)
    assert cam.near > 0 and cam.far > np.linalg.norm(np.subtract(cam.eye, cam.target))


def test_background_can_change(avatars) -> None:
    with AvatarRenderer(avatars["skinned"], SMALL) as renderer:
        renderer.set_background((0.0, 1.0, 0.0))
        image = renderer.render(NEUTRAL)
    np.testing.assert_array_equal(image[0, 0], (0, 255, 0))


# --- animation ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["skinned", "rigid"])
def test_morph_changes_only_the_region_it_moves(avatars, kind) -> None:
    with AvatarRenderer(avatars[kind], SMALL) as renderer:
        before = renderer.render(NEUTRAL)
        after = renderer.render(AvatarPose(morph_weights={"jawOpen": 1.0}))
        again = renderer.render(NEUTRAL)
        _, jaw_top = project(renderer, (0.0, HEAD_MIN[1] + (HEAD_MAX[1] - HEAD_MIN[1]) / 3, HEAD_MAX[2]))
        _, chin = project(renderer, (0.0, HEAD_MIN[1] - 0.04, HEAD_MAX[2]))
    changed = np.any(before != after, axis=2)
    rows = np.flatnonzero(changed.any(axis=1))
    assert changed.sum() > 20
    assert rows.min() >= jaw_top - 2 and rows.max() <= chin + 2  # nothing above the jaw, nothing below the chin
    np.testing.assert_array_equal(before, again)  # weights back at zero restore the neutral face


def test_unknown_names_are_ignored(avatars) -> None:
    with AvatarRenderer(avatars["skinned"], SMALL) as renderer:
        before = renderer.render(NEUTRAL)
        after = renderer.render(AvatarPose(morph_weights={"nope": 1.0}, node_rotations={"Tail": roll(40)}))
    np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("kind", ["skinned", "rigid"])
def test_head_rotation_turns_the_head(avatars, kind) -> None:
    """Rolling the Head node toward the avatar's left moves the head's pixels toward image left."""
    with AvatarRenderer(avatars[kind], SMALL) as renderer:
        _, torso_top = project(renderer, (0.0, TORSO_MAX[1], TORSO_MAX[2]))
        limit = int(torso_top) - 2  # rows above the torso show only the head

        def head_centroid(pose: AvatarPose) -> float:
            mask = foreground(renderer.render(pose))[:limit]
            return float(np.argwhere(mask)[:, 1].mean())

        neutral = head_centroid(NEUTRAL)
        left = head_centroid(AvatarPose(node_rotations={"Head": roll(30)}))
        right = head_centroid(AvatarPose(node_rotations={"head": roll(-30)}))
    assert left < neutral - 5 and right > neutral + 5


def test_skinning_moves_bound_vertices_and_leaves_others(avatars) -> None:
    """A Neck rotation moves the head (bound to Head, under Neck) but not the torso (bound to Spine)."""
    with AvatarRenderer(avatars["skinned"], SMALL) as renderer:
        before = renderer.render(NEUTRAL)
        after = renderer.render(AvatarPose(node_rotations={"Neck": quat_from_axis_angle((1, 0, 0), 25)}))
        _, torso_top = project(renderer, (0.0, TORSO_MAX[1], TORSO_MAX[2]))
    changed = np.any(before != after, axis=2)
    assert changed[: int(torso_top)].sum() > 100
    assert not changed[int(torso_top) + 15:].any()


def test_view_yaw_orbits_the_camera(avatars) -> None:
    with AvatarRenderer(avatars["rigid"], SMALL) as renderer:
        front = foreground(renderer.render(NEUTRAL))
        side = foreground(renderer.render(AvatarPose(view_yaw_deg=90.0)))
    # from the side the 0.8 m wide torso shows its 0.3 m depth
    assert side[-1].sum() < 0.6 * front[-1].sum()


def test_texture_colours_appear(avatars) -> None:
    with AvatarRenderer(avatars["textured"], SMALL) as renderer:
        image = renderer.render(NEUTRAL).astype(int)
    reddish = (image[..., 0] > image[..., 2] + 60).sum()
    bluish = (image[..., 2] > image[..., 0] + 60) & (image[..., 2] > 150)
    assert reddish > 50 and bluish.sum() > 50


def test_texture_v_runs_down_the_image_as_gltf_says(tmp_path: Path) -> None:
    """glTF UV v = 0 is the image's top row: a red-over-blue image stays red on top."""
    image = np.zeros((8, 8, 3), np.uint8)
    image[:4] = (230, 30, 30)
    image[4:] = (30, 30, 230)
    b = GltfBuilder()
    p, n, uv, i, faces = grid_box((-0.5, 1.0, 0.0), (0.5, 2.0, 0.0), 1)
    keep = np.flatnonzero(faces == 4)  # the +Z face; its UVs have v = 0 at the top (y = 2)
    remap = np.full(len(p), -1)
    remap[keep] = np.arange(len(keep))
    tris = remap[i.reshape(-1, 3)]
    tris = tris[(tris >= 0).all(axis=1)].ravel()
    assert uv[keep][np.argmax(p[keep][:, 1]), 1] == pytest.approx(0.0)
    b.material((1.0, 1.0, 1.0, 1.0), texture_image=b.image(image))
    prim = pygltflib.Primitive(attributes=pygltflib.Attributes(POSITION=b.accessor(p[keep]), NORMAL=b.accessor(n[keep]),
                                                               TEXCOORD_0=b.accessor(uv[keep])),
                               indices=b.accessor(tris, component=5125), material=0)
    b.gltf.meshes.append(pygltflib.Mesh(primitives=[prim]))
    avatar = load_avatar(b.save(tmp_path / "updown.glb", [b.node("Plane", mesh=0)]))
    with AvatarRenderer(avatar, dataclasses.replace(SMALL, framing="full_body")) as renderer:
        image = renderer.render(NEUTRAL).astype(int)
    rows = np.flatnonzero(foreground(image).any(axis=1))
    quarter = (rows[-1] - rows[0]) // 4  # away from the edges, where REPEAT filtering wraps around
    top, bottom = image[rows[0] + quarter, 160], image[rows[-1] - quarter, 160]
    assert top[0] > top[2] + 60 and bottom[2] > bottom[0] + 60


def _plane_avatar(tmp_path: Path, double_sided: bool) -> Avatar:
    b = GltfBuilder()
    p, n, _, i, faces = grid_box((-0.5, 1.0, 0.0), (0.5, 2.0, 0.0), 1)
    keep = np.flatnonzero(faces == 4)  # the +Z face only
    remap = np.full(len(p), -1)
    remap[keep] = np.arange(len(keep))
    tris = remap[i.reshape(-1, 3)]
    tris = tris[(tris >= 0).all(axis=1)].ravel()
    b.material((0.9, 0.9, 0.9, 1.0), doubleSided=double_sided)
    prim = pygltflib.Primitive(attributes=pygltflib.Attributes(POSITION=b.accessor(p[keep]), NORMAL=b.accessor(n[keep])),
                               indices=b.accessor(tris, component=5125), material=0)
    b.gltf.meshes.append(pygltflib.Mesh(primitives=[prim]))
    return load_avatar(b.save(tmp_path / f"plane{double_sided}.glb", [b.node("Plane", mesh=0)]))


def test_back_face_culling_honours_double_sided(tmp_path: Path) -> None:
    options = dataclasses.replace(SMALL, framing="full_body")
    behind = AvatarPose(view_yaw_deg=180.0)
    with AvatarRenderer(_plane_avatar(tmp_path, double_sided=False), options) as renderer:
        assert foreground(renderer.render(NEUTRAL)).mean() > 0.2
        assert not foreground(renderer.render(behind)).any()
        renderer.set_avatar(_plane_avatar(tmp_path, double_sided=True))
        assert foreground(renderer.render(behind)).mean() > 0.2


# --- antialiasing ---------------------------------------------------------------------------------


def _edge_blend_count(avatar: Avatar, options: RenderOptions) -> int:
    """Pixels on the tilted head's outline whose colour lies between background and head."""
    with AvatarRenderer(avatar, options) as renderer:
        image = renderer.render(AvatarPose(node_rotations={"Head": roll(20)})).astype(int)
        _, torso_top = project(renderer, (0.0, TORSO_MAX[1], TORSO_MAX[2]))
    crop = image[: int(torso_top) - 2]
    distance = np.abs(crop - BG.astype(int)).sum(axis=2)
    inside = np.median(distance[distance > 60])
    return int(((distance > 12) & (distance < 0.75 * inside)).sum())


def test_msaa_antialiases_edges(avatars) -> None:
    hard = _edge_blend_count(avatars["rigid"], SMALL)
    smooth = _edge_blend_count(avatars["rigid"], dataclasses.replace(SMALL, msaa=4))
    assert smooth > 2 * hard + 40


def test_software_msaa_replaces_msaa_on_cpu_rasterisers(avatars) -> None:
    with AvatarRenderer(avatars["rigid"], dataclasses.replace(SMALL, msaa=4, software_msaa=0)) as renderer:
        assert renderer.msaa_samples == (0 if renderer.is_software else 4)
    with AvatarRenderer(avatars["rigid"], dataclasses.replace(SMALL, msaa=4)) as renderer:
        assert renderer.msaa_samples == 4  # software_msaa=None: msaa everywhere (llvmpipe allows 4)


def test_fxaa_antialiases_edges(avatars) -> None:
    hard = _edge_blend_count(avatars["rigid"], SMALL)
    smooth = _edge_blend_count(avatars["rigid"], dataclasses.replace(SMALL, fxaa=True))
    assert smooth > 2 * hard + 40


# --- lifecycle --------------------------------------------------------------------------------------


def _broken_skin_avatar() -> Avatar:
    """Built by hand (the loader refuses such files): vertices bound to joints the skin lacks."""
    p, n, _, i, _ = grid_box((-0.5, 0, -0.5), (0.5, 1, 0.5), 2)
    count = len(p)
    prim = Primitive(positions=p.astype(np.float32), normals=n.astype(np.float32), indices=i, material=Material(),
                     morph_positions=np.zeros((0, count, 3), np.float32),
                     morph_normals=np.zeros((0, count, 3), np.float32),
                     joints=np.tile(np.array([7, 0, 0, 0], np.uint16), (count, 1)),
                     weights=np.tile(np.array([1.0, 0, 0, 0], np.float32), (count, 1)))
    nodes = (Node(name="Root"), Node(name="M", mesh=0, skin=0))
    skin = Skin(name="s", joints=(0,), inverse_bind_matrices=np.eye(4)[None])
    avatar = Avatar(nodes=nodes, meshes=(Mesh("m", (prim,)),), skins=(skin,), scene_roots=(0, 1))
    assert avatar.instances == (MeshInstance(1, 0, 0),)
    return avatar


def test_set_avatar_failure_keeps_the_old_avatar(avatars) -> None:
    with AvatarRenderer(avatars["skinned"], SMALL) as renderer:
        before = renderer.render(NEUTRAL)
        with pytest.raises(AvatarLoadError):
            renderer.set_avatar(_broken_skin_avatar())
        assert renderer.avatar is avatars["skinned"]
        np.testing.assert_array_equal(renderer.render(NEUTRAL), before)
        renderer.set_avatar(avatars["rigid"])
        assert renderer.avatar is avatars["rigid"]


def test_close_is_idempotent_and_final(avatars) -> None:
    renderer = AvatarRenderer(avatars["skinned"], SMALL)
    assert renderer.gl_renderer
    renderer.close()
    renderer.close()
    with pytest.raises(RenderError):
        renderer.render(NEUTRAL)


def test_use_from_another_thread_is_refused(avatars) -> None:
    errors: list[BaseException] = []
    with AvatarRenderer(avatars["skinned"], SMALL) as renderer:
        worker = threading.Thread(target=lambda: errors.append(pytest.raises(RenderError, renderer.render, NEUTRAL)))
        worker.start()
        worker.join()
        assert renderer.render(NEUTRAL).shape == (240, 320, 3)
    assert len(errors) == 1


def test_facing_minus_z_turns_the_model_to_the_camera(tmp_path: Path) -> None:
    plane = _plane_avatar(tmp_path, double_sided=False)
    options = dataclasses.replace(SMALL, framing="full_body")
    with AvatarRenderer(dataclasses.replace(plane, facing=-1), options) as renderer:
        assert not foreground(renderer.render(NEUTRAL)).any()  # its front now faces away (-Z)


@pytest.mark.skipif(not DEFAULT_AVATAR.exists(), reason="assets/default_avatar.glb not generated yet")
def test_default_avatar_loads_and_renders() -> None:
    avatar = load_avatar(DEFAULT_AVATAR)
    with AvatarRenderer(avatar, SMALL) as renderer:
        image = renderer.render(AvatarPose(morph_weights={name: 0.5 for name in avatar.morph_target_names[:10]}))
    mask = foreground(image)
    assert 0.05 < mask.mean() < 0.95
    rows = np.flatnonzero(mask.any(axis=1))
    assert rows[0] < 0.4 * SMALL.height  # the head is in the upper part of the frame


def _two_joint_box(slots: tuple[int, int]) -> Avatar:
    """A box bound half to a root joint and half to a joint turned 90 degrees, the two weights stored
    in ``slots`` of the four (exporters leave zero weights between used slots)."""
    p, n, _, i, _ = grid_box((-0.5, 0, -0.5), (0.5, 1, 0.5), 2)
    count = len(p)
    joints, weights = np.zeros((count, 4), np.uint16), np.zeros((count, 4), np.float32)
    joints[:, slots[1]] = 1
    weights[:, slots[0]] = weights[:, slots[1]] = 0.5
    prim = Primitive(positions=p.astype(np.float32), normals=n.astype(np.float32), indices=i, material=Material(),
                     morph_positions=np.zeros((0, count, 3), np.float32),
                     morph_normals=np.zeros((0, count, 3), np.float32), joints=joints, weights=weights)
    nodes = (Node(name="Root", children=(1,)), Node(name="Turned", parent=0, rotation=roll(90)), Node(name="M", mesh=0, skin=0))
    skin = Skin(name="s", joints=(0, 1), inverse_bind_matrices=np.tile(np.eye(4), (2, 1, 1)))
    return Avatar(nodes=nodes, meshes=(Mesh("m", (prim,)),), skins=(skin,), scene_roots=(0, 2))


def test_skin_weights_count_in_whichever_slots_they_are_stored() -> None:
    """Two influences stored in slots 0 and 3 skin exactly like the same two in slots 0 and 1: the
    two-joint shader variant must not drop the weight in slot 3."""
    images = []
    for slots in ((0, 1), (0, 3)):
        with AvatarRenderer(_two_joint_box(slots), SMALL) as renderer:
            images.append(renderer.render(NEUTRAL))
    np.testing.assert_array_equal(images[0], images[1])
    assert foreground(images[0]).any()
