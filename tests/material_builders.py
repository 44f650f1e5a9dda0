"""Tiny glTF scenes for material tests: flat boxes ("panels") facing the camera, one material each.

A panel is a box on a node named ``Head`` (so the renderer frames it like a face), 0.3 m wide,
centred at y = 1.7, its front face at ``z``. Textures are solid colours or simple patterns built
with numpy, so a test can predict each pixel's colour. Built with ``tests/gltf_builders.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pygltflib as g

from tests.gltf_builders import ELEMENT_ARRAY_BUFFER, UINT, GltfBuilder, grid_box

CENTRE_Y = 1.7


@dataclass
class Panel:
    """One box and its material. Image fields are H x W x 3 (RGB) or x 4 (RGBA) uint8."""

    color: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    z: float = 0.0  # the front face's depth (the camera looks from +Z)
    half: float = 0.15  # half the width and height, metres
    image: np.ndarray | None = None  # base colour texture
    texture_transform: dict | None = None  # KHR_texture_transform on the base colour texture
    emissive_factor: tuple[float, float, float] | None = None
    emissive_image: np.ndarray | None = None
    vertex_colors: bool = False  # COLOR_0: red where x < 0, green where x > 0
    mtoon: dict | None = None  # VRMC_materials_mtoon; "shadeMultiplyTexture"/"matcapTexture" may be images
    material: dict = field(default_factory=dict)  # more pygltflib.Material fields (alphaMode, extensions...)


def solid(rgb: Sequence[int], alpha: int | None = None, size: int = 4) -> np.ndarray:
    """A ``size x size`` image of one colour (RGBA when ``alpha`` is given)."""
    pixel = list(rgb) + ([alpha] if alpha is not None else [])
    return np.tile(np.array(pixel, np.uint8), (size, size, 1))


def halves(left: Sequence[int], right: Sequence[int], size: int = 8) -> np.ndarray:
    """An image whose left half (u < 0.5) is ``left`` and right half ``right`` (RGB or RGBA)."""
    image = np.empty((size, size, len(left)), np.uint8)
    image[:, : size // 2], image[:, size // 2:] = left, right
    return image


def _texture(b: GltfBuilder, image: np.ndarray, extensions: dict | None = None) -> g.TextureInfo:
    """Add ``image`` as an embedded PNG texture (nearest filtering: pixel-exact colours)."""
    import cv2

    code = cv2.COLOR_RGBA2BGRA if image.shape[2] == 4 else cv2.COLOR_RGB2BGR
    ok, png = cv2.imencode(".png", cv2.cvtColor(image, code))
    assert ok
    b.gltf.images.append(g.Image(bufferView=b.view(png.tobytes()), mimeType="image/png"))
    b.gltf.samplers.append(g.Sampler(magFilter=9728, minFilter=9728))
    b.gltf.textures.append(g.Texture(source=len(b.gltf.images) - 1, sampler=len(b.gltf.samplers) - 1))
    return g.TextureInfo(index=len(b.gltf.textures) - 1, extensions=extensions or {})


def _material(b: GltfBuilder, panel: Panel) -> int:
    pbr = g.PbrMetallicRoughness(baseColorFactor=list(panel.color), metallicFactor=0.0, roughnessFactor=0.8)
    if panel.image is not None:
        extensions = {"KHR_texture_transform": panel.texture_transform} if panel.texture_transform else None
        pbr.baseColorTexture = _texture(b, panel.image, extensions)
    fields = dict(panel.material)
    extensions = dict(fields.pop("extensions", {}))
    if panel.emissive_factor is not None:
        fields["emissiveFactor"] = list(panel.emissive_factor)
    if panel.emissive_image is not None:
        fields["emissiveTexture"] = _texture(b, panel.emissive_image)
    if panel.mtoon is not None:
        mtoon = dict(panel.mtoon)
        for key in ("shadeMultiplyTexture", "matcapTexture"):
            if isinstance(mtoon.get(key), np.ndarray):
                mtoon[key] = {"index": _texture(b, mtoon[key]).index}
        extensions["VRMC_materials_mtoon"] = {"specVersion": "1.0", **mtoon}
    b.gltf.materials.append(g.Material(pbrMetallicRoughness=pbr, extensions=extensions, **fields))
    return len(b.gltf.materials) - 1


def build_panels(path: str | Path, panels: Sequence[Panel], *, vrm0_materials: Sequence[dict] = ()) -> Path:
    """Write one rigid box per panel on a ``Head`` node; returns the path.

    ``vrm0_materials`` makes it a VRM 0.x file with these ``materialProperties`` (one per panel;
    ``textureProperties`` values may be images, embedded here). VRM 0.x models face -Z: the loader
    turns them, so the camera then sees the boxes' back faces, which share the material.
    """
    b = GltfBuilder()
    head = b.node("Head", translation=[0.0, CENTRE_Y, 0.0])
    primitives = []
    for panel in panels:
        h = panel.half
        positions, normals, uvs, indices, _ = grid_box((-h, -h, panel.z - 0.05), (h, h, panel.z), 4)
        attrs = g.Attributes(POSITION=b.accessor(positions, minmax=True), NORMAL=b.accessor(normals),
                             TEXCOORD_0=b.accessor(uvs))
        if panel.vertex_colors:
            colors = np.where(positions[:, :1] < 0, [1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 1.0])
            attrs.COLOR_0 = b.accessor(colors)
        primitives.append(g.Primitive(attributes=attrs, material=_material(b, panel),
                                      indices=b.accessor(indices, component=UINT, target=ELEMENT_ARRAY_BUFFER)))
    b.gltf.meshes.append(g.Mesh(name="Panels", primitives=primitives))
    b.node("PanelMesh", parent=head, mesh=0)
    used = {name for m in b.gltf.materials for name in (m.extensions or {})}
    used |= {name for t in b.gltf.materials if t.pbrMetallicRoughness.baseColorTexture
             for name in (t.pbrMetallicRoughness.baseColorTexture.extensions or {})}
    if vrm0_materials:
        props = []
        for index, raw in enumerate(vrm0_materials):
            textures = {key: _texture(b, value).index if isinstance(value, np.ndarray) else value
                        for key, value in (raw.get("textureProperties") or {}).items()}
            props.append({"name": f"material{index}", **raw, "textureProperties": textures})
        b.gltf.extensions = {"VRM": {"materialProperties": props}}
        used.add("VRM")
    b.gltf.extensionsUsed = sorted(used)
    return b.save(path, [head])
