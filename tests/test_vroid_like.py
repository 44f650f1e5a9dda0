"""The benchmark's VRoid-style avatar is what the performance bar asks for."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from engine.avatar.loading.gltf import load_avatar
from engine.avatar.model import OutlineMode
from engine.paths import ASSETS_DIR


def test_vroid_like_avatar_is_heavy_mtoon_with_outlines_and_springs(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_vroid_like_avatar", ASSETS_DIR / "make_vroid_like_avatar.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    avatar = load_avatar(module.build(tmp_path / "vroid_like.vrm"))
    materials = {p.material for mesh in avatar.meshes for p in mesh.primitives}
    assert avatar.triangle_count >= 40_000
    assert len({m.name for m in materials}) >= 10
    assert all(m.shading == "mtoon" for m in materials)
    assert sum(m.outline_mode is OutlineMode.WORLD for m in materials) >= 4
    assert any(m.shade_texture is not None for m in materials)
    assert avatar.spring_bones is not None and len(avatar.spring_bones.joints) >= 70
