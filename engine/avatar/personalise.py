"""A personal look for the default avatar: its skin, hair and eye colours replaced in a copy of its GLB.

The default avatar names its materials (``Skin``, ``Lid``, ``Hair``, ``Brows``, ``Iris``...; see
assets/make_default_avatar.py). Skin and hair are material colours; the iris is coloured per vertex
(a darker rim around a lighter inner ring), so its vertex colours are re-tinted keeping that
gradient. Face proportions ride along in ``asset.extras`` (the default avatar has no identity morphs
to apply them to yet).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import AvatarLoadError

RGB = tuple[float, float, float]
_GLB_MAGIC, _JSON, _BIN = 0x46546C67, 0x4E4F534A, 0x004E4942


@dataclass(frozen=True, slots=True)
class Look:
    """sRGB colours 0..1, and proportions (relative to the face width) kept as metadata."""

    skin: RGB
    hair: RGB
    eyes: RGB
    proportions: dict[str, float]


def srgb_to_linear(rgb: RGB) -> np.ndarray:
    c = np.clip(np.asarray(rgb, dtype=np.float64), 0.0, 1.0)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


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


def write_glb(path: Path, gltf: dict, binary: bytes) -> None:
    text = json.dumps(gltf, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    payload = bytes(binary) + b"\0" * (-len(binary) % 4)
    total = 12 + 8 + len(text) + (8 + len(payload) if payload else 0)
    with open(path, "wb") as out:
        out.write(struct.pack("<III", _GLB_MAGIC, 2, total))
        out.write(struct.pack("<II", len(text), _JSON) + text)
        if payload:
            out.write(struct.pack("<II", len(payload), _BIN) + payload)


def personalise(source: Path, out: Path, look: Look) -> Path:
    """Write ``source`` (the default avatar's GLB) with ``look`` applied to ``out``."""
    gltf, binary = read_glb(source)
    materials = {m.get("name"): m for m in gltf.get("materials", [])}
    missing = {"Skin", "Hair", "Iris"} - set(materials)
    if missing:
        raise AvatarLoadError(f"'{source}' has no {', '.join(sorted(missing))} material.",
                              "Make avatars from a photo with the default avatar (assets/default_avatar.glb).")
    skin, hair = srgb_to_linear(look.skin), srgb_to_linear(look.hair)

    def set_colour(name: str, linear: np.ndarray, relative_to: str | None = None) -> None:
        if name not in materials:
            return
        pbr = materials[name].setdefault("pbrMetallicRoughness", {})
        old = np.asarray(pbr.get("baseColorFactor", [1, 1, 1, 1]), dtype=np.float64)
        colour = linear
        if relative_to is not None:  # keep the default's relation (a lid a touch darker than the skin)
            base = np.asarray(materials[relative_to]["pbrMetallicRoughness"]["baseColorFactor"][:3])
            colour = np.clip(linear * old[:3] / np.maximum(base, 1e-4), 0.0, 1.0)
        pbr["baseColorFactor"] = [round(float(v), 4) for v in colour] + [float(old[3])]

    set_colour("Lid", skin, relative_to="Skin")  # before Skin changes: relative to the default skin
    set_colour("Brows", hair * 0.8)
    set_colour("Skin", skin)
    set_colour("Hair", hair)
    _tint_iris(gltf, binary, list(materials).index("Iris"), srgb_to_linear(look.eyes))
    gltf.setdefault("asset", {})["extras"] = {"avatarcam_look": {
        "skin": [round(v, 4) for v in look.skin], "hair": [round(v, 4) for v in look.hair],
        "eyes": [round(v, 4) for v in look.eyes], "proportions": look.proportions}}
    out.parent.mkdir(parents=True, exist_ok=True)
    write_glb(out, gltf, binary)
    return out


def _tint_iris(gltf: dict, binary: bytearray, material: int, eye: np.ndarray) -> None:
    """Re-tint the iris's float RGBA vertex colours to ``eye`` (linear), keeping their gradient."""
    done = set()
    for mesh in gltf.get("meshes", []):
        for prim in mesh.get("primitives", []):
            index = prim.get("attributes", {}).get("COLOR_0")
            if prim.get("material") != material or index is None or index in done:
                continue
            done.add(index)
            accessor = gltf["accessors"][index]
            if accessor["componentType"] != 5126 or accessor["type"] != "VEC4":
                continue  # only the generator's float colours
            view = gltf["bufferViews"][accessor["bufferView"]]
            start = view.get("byteOffset", 0) + accessor.get("byteOffset", 0)
            stride = view.get("byteStride", 16)
            count = accessor["count"]
            raw = np.frombuffer(binary, dtype=np.uint8, count=count * stride, offset=start).reshape(count, stride)
            colours = raw[:, :16].copy().view(np.float32).reshape(count, 4).astype(np.float64)
            luma = colours[:, :3] @ (0.2126, 0.7152, 0.0722)
            shade = luma / max(float(np.median(luma)), 1e-4)
            colours[:, :3] = np.clip(eye[None, :] * shade[:, None], 0.0, 1.0)
            raw[:, :16] = colours.astype(np.float32).view(np.uint8).reshape(count, 16)
            binary[start:start + count * stride] = raw.tobytes()


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


__all__ = ["Look", "look_of", "personalise"]
