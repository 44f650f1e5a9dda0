"""glTF/GLB loading: structure, accessors (sparse, normalised), external files and bad input."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import numpy as np
import pygltflib
import pytest
from gltf_builders import (
    HEAD_MAX,
    HEAD_MIN,
    JAW_DROP,
    JOINT_NAMES,
    JOINT_WORLD_Y,
    TORSO_MAX,
    TORSO_MIN,
    GltfBuilder,
    build_test_avatar,
    grid_box,
)

from engine.avatar import Avatar, load_avatar
from engine.avatar.loading import gltf as gltf_loader
from engine.errors import AvatarLoadError


@pytest.fixture
def skinned(tmp_path: Path) -> Avatar:
    return load_avatar(build_test_avatar(tmp_path / "a.glb", with_morphs=("jawOpen", "eyeBlinkLeft")))


def head_primitive(avatar: Avatar):
    return next(p for m in avatar.meshes for p in m.primitives if p.target_count and p.morph_positions.any())


def test_nodes_meshes_and_skin_are_read(skinned: Avatar) -> None:
    names = [n.name for n in skinned.nodes]
    assert names[:4] == list(JOINT_NAMES)
    hips, spine, neck, head = (skinned.find_node(n) for n in JOINT_NAMES)
    assert skinned.nodes[head].parent == neck and skinned.nodes[neck].parent == spine
    assert skinned.nodes[hips].children == (spine,)
    assert skinned.nodes[head].translation == pytest.approx((0.0, JOINT_WORLD_Y[3] - JOINT_WORLD_Y[2], 0.0))
    assert skinned.scene_roots == (hips, names.index("BodyMesh"))

    (skin,) = skinned.skins
    assert skin.joints == (hips, spine, neck, head)
    # inverse bind matrices are the inverse of each joint's rest world matrix
    world = skinned.rest_world_matrices[list(skin.joints)]
    np.testing.assert_allclose(world @ skin.inverse_bind_matrices, np.tile(np.eye(4), (4, 1, 1)), atol=1e-6)

    (mesh,) = skinned.meshes
    assert mesh.target_names == ("jawOpen", "eyeBlinkLeft")
    assert skinned.morph_target_names == ("jawOpen", "eyeBlinkLeft")
    torso, head_prim = mesh.primitives
    assert head_prim.positions.dtype == np.float32 and head_prim.positions.shape[1] == 3
    assert head_prim.indices.dtype == np.uint32
    assert head_prim.morph_positions.shape == (2, head_prim.vertex_count, 3)
    assert np.all(head_prim.morph_normals == 0)  # the file has no NORMAL deltas
    assert set(np.unique(head_prim.joints[:, 0])) == {3} and np.allclose(head_prim.weights[:, 0], 1.0)
    assert skinned.instances[0].skin == 0
    assert skinned.triangle_count == torso.triangle_count + head_prim.triangle_count


def test_morph_deltas_match_the_file(skinned: Avatar) -> None:
    prim = head_primitive(skinned)
    jaw = prim.morph_positions[0]
    moved = np.any(jaw != 0, axis=1)
    assert moved.any()
    np.testing.assert_allclose(jaw[moved], [[0.0, -JAW_DROP, 0.0]] * int(moved.sum()), atol=1e-7)
    # only the lower third of the front face moves
    assert prim.positions[moved, 2].min() == pytest.approx(HEAD_MAX[2])
    assert prim.positions[moved, 1].max() < HEAD_MIN[1] + (HEAD_MAX[1] - HEAD_MIN[1]) / 3 + 1e-5


def test_bounds_and_head_bounds(skinned: Avatar) -> None:
    lo, hi = skinned.bounds()
    np.testing.assert_allclose(lo, (TORSO_MIN[0], TORSO_MIN[1], TORSO_MIN[2]), atol=1e-5)
    np.testing.assert_allclose(hi, (TORSO_MAX[0], HEAD_MAX[1], TORSO_MAX[2]), atol=1e-5)
    head_lo, head_hi = skinned.head_bounds()
    np.testing.assert_allclose(head_lo, HEAD_MIN, atol=1e-5)
    np.testing.assert_allclose(head_hi, HEAD_MAX, atol=1e-5)


def test_rigid_avatar_places_meshes_by_node_hierarchy(tmp_path: Path) -> None:
    avatar = load_avatar(build_test_avatar(tmp_path / "rigid.glb", with_skin=False))
    assert avatar.skins == ()
    head_lo, head_hi = avatar.head_bounds()
    np.testing.assert_allclose(head_lo, HEAD_MIN, atol=1e-5)
    np.testing.assert_allclose(head_hi, HEAD_MAX, atol=1e-5)


def test_head_bounds_fall_back_to_top_quarter(tmp_path: Path) -> None:
    b = GltfBuilder()
    p, n, _, i, _ = grid_box((0, 0, 0), (1, 4, 1), 1)
    b.gltf.meshes.append(pygltflib.Mesh(primitives=[pygltflib.Primitive(
        attributes=pygltflib.Attributes(POSITION=b.accessor(p)), indices=b.accessor(i, component=5125))]))
    avatar = load_avatar(b.save(tmp_path / "pillar.glb", [b.node("Pillar", mesh=0)]))
    assert avatar.head_node is None
    lo, hi = avatar.head_bounds()
    assert lo[1] == pytest.approx(4.0) and hi[1] == pytest.approx(4.0)  # only the top vertices qualify


def test_find_node_is_case_insensitive_and_ordered(skinned: Avatar) -> None:
    assert skinned.find_node("head") == skinned.find_node("HEAD") == 3
    assert skinned.find_node(["missing", "NECK", "head"]) == 2
    assert skinned.find_node("nope") is None


def test_sparse_and_normalized_accessors_give_the_same_avatar(tmp_path: Path) -> None:
    dense = load_avatar(build_test_avatar(tmp_path / "dense.glb", with_texture=True))
    packed = load_avatar(build_test_avatar(tmp_path / "packed.glb", with_texture=True,
                                           sparse_morphs=True, normalized=True))
    for a, b in zip(dense.meshes[0].primitives, packed.meshes[0].primitives):
        np.testing.assert_array_equal(a.morph_positions, b.morph_positions)
        np.testing.assert_allclose(a.uv0, b.uv0, atol=1 / 65535)
        np.testing.assert_allclose(a.weights, b.weights, atol=1 / 255)
        assert b.uv0.dtype == np.float32 and b.weights.dtype == np.float32


def test_smooth_normals_are_computed_when_absent(tmp_path: Path) -> None:
    avatar = load_avatar(build_test_avatar(tmp_path / "nonormals.glb", with_normals=False))
    prim = head_primitive(avatar)
    np.testing.assert_allclose(np.linalg.norm(prim.normals, axis=1), 1.0, atol=1e-5)
    centre = (np.asarray(HEAD_MIN) + np.asarray(HEAD_MAX)) / 2
    # on a closed convex box every smooth normal points outward
    assert np.all(np.einsum("ij,ij->i", prim.normals, prim.positions - centre) > 0)


def test_gltf_with_external_bin_and_texture_file(tmp_path: Path) -> None:
    path = build_test_avatar(tmp_path / "ext.gltf", with_texture=True)
    assert (tmp_path / "ext.bin").exists()
    avatar = load_avatar(path)
    texture = head_primitive(avatar).material.base_color_texture
    assert texture is not None and texture.image.shape == (8, 8, 4) and texture.image.dtype == np.uint8
    np.testing.assert_array_equal(texture.image[0, 0], (230, 40, 40, 255))  # RGB order, not BGR
    np.testing.assert_array_equal(texture.image[0, 1], (40, 40, 230, 255))


def test_data_uri_buffer_and_vrm_suffix(tmp_path: Path) -> None:
    path = build_test_avatar(tmp_path / "uri.gltf")
    doc = json.loads(path.read_text())
    blob = (tmp_path / "uri.bin").read_bytes()
    doc["buffers"][0]["uri"] = "data:application/octet-stream;base64," + base64.b64encode(blob).decode()
    (tmp_path / "uri.bin").unlink()
    path.write_text(json.dumps(doc))
    assert load_avatar(path).morph_target_names == ("jawOpen",)
    vrm = load_avatar(build_test_avatar(tmp_path / "model.vrm"))
    assert vrm.morph_target_names == ("jawOpen",)


def test_non_triangle_primitives_are_skipped_with_a_warning(tmp_path: Path, caplog) -> None:
    b = GltfBuilder()
    p, _, _, i, _ = grid_box((0, 0, 0), (1, 1, 1), 1)
    prims = [pygltflib.Primitive(attributes=pygltflib.Attributes(POSITION=b.accessor(p)), mode=1),
             pygltflib.Primitive(attributes=pygltflib.Attributes(POSITION=b.accessor(p)))]  # no indices
    b.gltf.meshes.append(pygltflib.Mesh(primitives=prims))
    with caplog.at_level(logging.WARNING):
        avatar = load_avatar(b.save(tmp_path / "lines.glb", [b.node("M", mesh=0)]))
    assert "draw mode 1" in caplog.text
    (prim,) = avatar.meshes[0].primitives
    np.testing.assert_array_equal(prim.indices, np.arange(len(p) - len(p) % 3, dtype=np.uint32))
    assert prim.morph_positions.shape == (0, len(p), 3)


def test_target_names_fallback(tmp_path: Path) -> None:
    path = build_test_avatar(tmp_path / "names.gltf", with_morphs=("a", "b"))
    doc = json.loads(path.read_text())
    del doc["meshes"][0]["extras"]
    path.write_text(json.dumps(doc))
    assert load_avatar(path).morph_target_names == ("target0", "target1")
    doc["meshes"][0]["primitives"][1]["extras"] = {"targetNames": ["x", "y"]}
    path.write_text(json.dumps(doc))
    assert load_avatar(path).morph_target_names == ("x", "y")


def test_undecodable_texture_warns_and_renders_white(tmp_path: Path, caplog) -> None:
    path = build_test_avatar(tmp_path / "badtex.gltf", with_texture=True)
    doc = json.loads(path.read_text())
    doc["images"][0] = {"uri": "broken.png"}
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    path.write_text(json.dumps(doc))
    with caplog.at_level(logging.WARNING):
        avatar = load_avatar(path)
    assert "texture image 0 is unusable" in caplog.text
    assert head_primitive(avatar).material.base_color_texture is None


# --- bad input: always AvatarLoadError with a one-line message ---------------------------------


def _assert_clear(error: AvatarLoadError, *fragments: str) -> None:
    text = str(error)
    assert "\n" not in text and error.hint
    for fragment in fragments:
        assert fragment in text


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AvatarLoadError) as info:
        load_avatar(tmp_path / "nope.glb")
    _assert_clear(info.value, "not found")


def test_garbage_bytes(tmp_path: Path) -> None:
    path = tmp_path / "garbage.glb"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(AvatarLoadError) as info:
        load_avatar(path)
    _assert_clear(info.value, "not a glTF or GLB")


def test_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "bad.gltf"
    path.write_text("{ this is not json")
    with pytest.raises(AvatarLoadError) as info:
        load_avatar(path)
    _assert_clear(info.value, "unreadable glTF JSON")


@pytest.mark.parametrize("keep", [0.3, 0.9, 0.999])
def test_truncated_glb(tmp_path: Path, keep: float) -> None:
    data = build_test_avatar(tmp_path / "full.glb").read_bytes()
    path = tmp_path / "cut.glb"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(AvatarLoadError) as info:
        load_avatar(path)
    _assert_clear(info.value, "corrupt or truncated")


def test_missing_external_buffer(tmp_path: Path) -> None:
    path = build_test_avatar(tmp_path / "lonely.gltf")
    (tmp_path / "lonely.bin").unlink()
    with pytest.raises(AvatarLoadError) as info:
        load_avatar(path)
    _assert_clear(info.value, "lonely.bin", "missing")


def test_accessor_out_of_range(tmp_path: Path) -> None:
    path = build_test_avatar(tmp_path / "range.gltf")
    doc = json.loads(path.read_text())
    doc["accessors"][0]["count"] = 10_000_000
    path.write_text(json.dumps(doc))
    with pytest.raises(AvatarLoadError) as info:
        load_avatar(path)
    _assert_clear(info.value, "past the end")


def test_index_out_of_range(tmp_path: Path) -> None:
    b = GltfBuilder()
    prim = pygltflib.Primitive(attributes=pygltflib.Attributes(POSITION=b.accessor(np.eye(3))),
                               indices=b.accessor(np.array([0, 1, 7], np.uint32), component=5125))
    b.gltf.meshes.append(pygltflib.Mesh(primitives=[prim]))
    with pytest.raises(AvatarLoadError) as info:
        load_avatar(b.save(tmp_path / "idx.glb", [b.node("M", mesh=0)]))
    _assert_clear(info.value, "out of range")


def test_file_over_size_limit(tmp_path: Path, monkeypatch) -> None:
    path = build_test_avatar(tmp_path / "big.glb")
    monkeypatch.setattr(gltf_loader, "MAX_FILE_BYTES", path.stat().st_size - 1)
    with pytest.raises(AvatarLoadError) as info:
        load_avatar(path)
    _assert_clear(info.value, "MB avatar limit")

