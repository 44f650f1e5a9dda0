"""Web-optimised glTF (meshopt + quantised attributes + WebP) loads as the plain file does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.avatar.loading import compression
from engine.avatar.loading.gltf import load_avatar
from engine.errors import AvatarLoadError
from engine.packets import AvatarPose
from engine.render.renderer import AvatarRenderer, RenderOptions
from tests.gltf_builders import build_test_avatar

almeshopt = pytest.importorskip("almeshopt")

from tests.compressed_builders import POSITION_SCALE, compress_glb, require_extension  # noqa: E402


def _canonical_triangles(indices: np.ndarray) -> np.ndarray:
    """Triangles rotated to start at their smallest index (the meshopt codec may rotate them)."""
    tris = indices.reshape(-1, 3)
    first = np.argmin(tris, axis=1)
    return np.stack([np.roll(tri, -k) for tri, k in zip(tris, first)])


def test_meshopt_quantised_webp_avatar_loads_like_the_plain_one(tmp_path: Path) -> None:
    plain_path = build_test_avatar(tmp_path / "plain.glb", with_skin=False, with_texture=True,
                                   with_morphs=("jawOpen", "mouthSmileLeft"))
    packed_path = compress_glb(plain_path, tmp_path / "packed.glb")
    plain, packed = load_avatar(plain_path), load_avatar(packed_path)
    assert packed_path.stat().st_size < plain_path.stat().st_size
    for mesh_a, mesh_b in zip(plain.meshes, packed.meshes, strict=True):
        assert mesh_a.target_names == mesh_b.target_names
        for a, b in zip(mesh_a.primitives, mesh_b.primitives, strict=True):
            np.testing.assert_allclose(b.positions * POSITION_SCALE, a.positions, atol=POSITION_SCALE)
            np.testing.assert_allclose(b.normals, a.normals, atol=0.02)
            np.testing.assert_allclose(b.uv0, a.uv0, atol=1e-4)
            np.testing.assert_array_equal(_canonical_triangles(b.indices), _canonical_triangles(a.indices))
            np.testing.assert_allclose(b.morph_positions * POSITION_SCALE, a.morph_positions, atol=1e-6)
            texture_a, texture_b = a.material.base_color_texture, b.material.base_color_texture
            assert (texture_a is None) == (texture_b is None)
            if texture_a is not None:  # lossless WebP: the same pixels, not a white fallback
                np.testing.assert_array_equal(texture_b.image, texture_a.image)
    lo_a, hi_a = plain.bounds()
    lo_b, hi_b = packed.bounds()
    np.testing.assert_allclose(lo_b, lo_a, atol=1e-3)
    np.testing.assert_allclose(hi_b, hi_a, atol=1e-3)
    options = RenderOptions(width=160, height=90, msaa=0, fxaa=False)
    pose = AvatarPose(morph_weights={"jawOpen": 1.0})
    with AvatarRenderer(plain, options) as renderer:
        image_a = renderer.render(pose).astype(int)
    with AvatarRenderer(packed, options) as renderer:
        image_b = renderer.render(pose).astype(int)
    assert np.abs(image_a - image_b).mean() < 1.0


@pytest.mark.parametrize("stride", [4, 8, 12, 16, 64])
def test_meshopt_vertex_codec_round_trips(stride: int) -> None:
    rng = np.random.default_rng(stride)
    # smooth data (small deltas: 2- and 4-bit groups) and noise (raw 8-bit groups), over several blocks
    smooth = np.cumsum(rng.integers(-2, 3, (1500, stride)), axis=0).astype(np.uint8)
    rows = np.concatenate([smooth, rng.integers(0, 256, (500, stride), dtype=np.uint8)])
    encoded = np.frombuffer(almeshopt.encode_vertex_buffer(np.ascontiguousarray(rows)), np.uint8)
    np.testing.assert_array_equal(compression.decode_vertex_buffer(encoded, len(rows), stride), rows)


@pytest.mark.parametrize("version", [0, 1])
def test_meshopt_index_codec_round_trips(version: int) -> None:
    n = 40
    grid = np.array([[a, a + 1, a + n + 2, a, a + n + 2, a + n + 1] for j in range(n) for i in range(n)
                     for a in [j * (n + 1) + i]], np.uint32).reshape(-1)
    for indices in (almeshopt.optimize_vertex_cache(grid, (n + 1) ** 2),
                    np.random.default_rng(3).integers(0, 9000, 900).astype(np.uint32)):
        almeshopt.set_index_encoder_version(version)
        encoded = np.frombuffer(almeshopt.encode_index_buffer(indices, int(indices.max()) + 1), np.uint8)
        decoded = compression.decode_index_buffer(encoded, len(indices))
        np.testing.assert_array_equal(_canonical_triangles(decoded), _canonical_triangles(indices))


def test_meshopt_filters_decode_to_unit_vectors() -> None:
    # octahedral: (x, y) packed with the "one" scale in z; the result is a unit normal
    raw = np.array([[64, -32, 127, 0], [0, 0, 127, 0], [-100, 20, 127, 0]], np.int8)
    out = compression.decode_meshopt({"count": 3, "byteStride": 4, "filter": "OCTAHEDRAL"},
                                     _as_vertex_stream(raw.view(np.uint8)))
    normals = np.frombuffer(out, np.int8).reshape(3, 4)[:, :3] / 127.0
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=0.02)
    np.testing.assert_allclose(normals[1], (0, 0, 1), atol=0.01)
    # exponential: mantissa 3, exponent -2 -> 0.75
    value = np.array([((-2 & 0xFF) << 24) | 3], np.uint32).view(np.uint8).reshape(1, 4)
    out = compression.decode_meshopt({"count": 1, "byteStride": 4, "filter": "EXPONENTIAL"}, _as_vertex_stream(value))
    assert np.frombuffer(out, np.float32)[0] == pytest.approx(0.75)


def _as_vertex_stream(rows: np.ndarray) -> bytes:
    return almeshopt.encode_vertex_buffer(np.ascontiguousarray(rows.reshape(len(rows), -1)))


def test_draco_avatar_loads_like_the_plain_one(tmp_path: Path) -> None:
    pytest.importorskip("DracoPy")
    from tests.compressed_builders import draco_glb

    plain_path = build_test_avatar(tmp_path / "plain.glb", with_skin=False, with_texture=True, with_morphs=())
    plain, packed = load_avatar(plain_path), load_avatar(draco_glb(plain_path, tmp_path / "draco.glb"))
    options = RenderOptions(width=160, height=90, msaa=0, fxaa=False)
    images = []
    for avatar in (plain, packed):
        with AvatarRenderer(avatar, options) as renderer:
            images.append(renderer.render(AvatarPose()).astype(int))
    assert packed.triangle_count == plain.triangle_count
    np.testing.assert_allclose(packed.bounds()[0], plain.bounds()[0], atol=1e-3)
    assert np.abs(images[0] - images[1]).mean() < 1.0


def test_draco_without_its_decoder_is_named(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(compression, "draco_available", lambda: False)
    path = require_extension(build_test_avatar(tmp_path / "a.glb"), tmp_path / "b.glb", "KHR_draco_mesh_compression")
    with pytest.raises(AvatarLoadError, match="KHR_draco_mesh_compression.*cannot decode"):
        load_avatar(path)


@pytest.mark.parametrize("name", ["KHR_texture_basisu", "EXT_made_up"])
def test_unsupported_required_extension_is_named(tmp_path: Path, name: str) -> None:
    path = require_extension(build_test_avatar(tmp_path / "a.glb"), tmp_path / "b.glb", name)
    with pytest.raises(AvatarLoadError) as caught:
        load_avatar(path)
    assert name in str(caught.value) and "\n" not in str(caught.value)
    assert caught.value.hint


def test_corrupt_meshopt_stream_is_a_clear_error(tmp_path: Path) -> None:
    packed = compress_glb(build_test_avatar(tmp_path / "a.glb", with_skin=False), tmp_path / "b.glb")
    data = bytearray(packed.read_bytes())
    data[-40:] = b"\xff" * 40  # damage the end of the compressed buffer
    packed.write_bytes(bytes(data))
    with pytest.raises(AvatarLoadError, match="cannot be decoded"):
        load_avatar(packed)
