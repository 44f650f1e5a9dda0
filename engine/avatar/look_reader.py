"""The look of a generated avatar read back from its GLB: the colours its Skin, Hair and Iris show.

The generator (engine/avatar/generator.py) names its materials (``Skin``, ``Hair``, ``Iris``...);
skin and hair are material colours, the iris is coloured per vertex (a gradient from the pupil to a
darker limbal ring).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from engine.errors import AvatarLoadError

_GLB_MAGIC = 0x46546C67


def linear_to_srgb(rgb) -> np.ndarray:
    c = np.clip(np.asarray(rgb, dtype=np.float64), 0.0, 1.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1 / 2.4) - 0.055)


def read_glb(path: Path) -> tuple[dict, bytearray]:
    data = path.read_bytes()
    if len(data) < 20 or struct.unpack_from("<I", data, 0)[0] != _GLB_MAGIC:
        raise AvatarLoadError(f"'{path}' is not a GLB file.", "Start from the default avatar or another .glb.")
    json_len, json_type = struct.unpack_from("<II", data, 12)
    gltf = json.loads(data[20:20 + json_len])
    offset = 20 + json_len
    binary = bytearray()
    if offset + 8 <= len(data):
        bin_len, _ = struct.unpack_from("<II", data, offset)
        binary = bytearray(data[offset + 8:offset + 8 + bin_len])
    return gltf, binary


def look_of(path: Path) -> dict[str, list[float]]:
    """The sRGB colours the avatar's Skin, Hair and Iris show (the Iris: its median vertex colour)."""
    gltf, binary = read_glb(path)
    out: dict[str, list[float]] = {}
    for index, material in enumerate(gltf.get("materials", [])):
        name = material.get("name")
        if name in ("Skin", "Hair"):
            out[name] = linear_to_srgb(material["pbrMetallicRoughness"]["baseColorFactor"][:3]).tolist()
        if name == "Iris":
            for mesh in gltf["meshes"]:
                for prim in mesh["primitives"]:
                    if prim.get("material") == index and "COLOR_0" in prim["attributes"]:
                        accessor = gltf["accessors"][prim["attributes"]["COLOR_0"]]
                        view = gltf["bufferViews"][accessor["bufferView"]]
                        start = view.get("byteOffset", 0) + accessor.get("byteOffset", 0)
                        colours = np.frombuffer(binary, dtype=np.float32, count=accessor["count"] * 4,
                                                offset=start).reshape(-1, 4)
                        out["Iris"] = linear_to_srgb(np.median(colours[:, :3], axis=0)).tolist()
    return out


__all__ = ["look_of", "read_glb"]
