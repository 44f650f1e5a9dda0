"""Turn a plain test GLB into a web-optimised one, as gltfpack would: ``EXT_meshopt_compression``
buffer views, ``KHR_mesh_quantization`` attributes and ``EXT_texture_webp`` images.

Positions become int16 (dequantised by the mesh node's scale, so only for rigid meshes; morph
target deltas are scaled to match), normals
normalised int8 in 4-byte rows, texture coordinates normalised uint16, indices the meshopt
triangle codec; every other accessor is stored as it is, meshopt-compressed. The meshopt encoder is
the ``almeshopt`` package (a meshoptimizer binding, a test-only dependency).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import cv2
import numpy as np

POSITION_SCALE = 1.0 / 4096.0  # int16 positions: 0.24 mm steps, +-8 m
_BYTE, _SHORT, _USHORT, _UINT, _FLOAT = 5120, 5122, 5123, 5125, 5126
_DTYPES = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


def _read_glb(path: Path) -> tuple[dict, bytes]:
    data = path.read_bytes()
    json_length = struct.unpack_from("<I", data, 12)[0]
    doc = json.loads(data[20:20 + json_length])
    bin_start = 20 + json_length + 8
    return doc, data[bin_start:bin_start + struct.unpack_from("<I", data, 20 + json_length)[0]]


def _write_glb(path: Path, doc: dict, blob: bytes) -> Path:
    payload = json.dumps(doc).encode()
    payload += b" " * (-len(payload) % 4)
    blob += b"\0" * (-len(blob) % 4)
    body = struct.pack("<II", len(payload), 0x4E4F534A) + payload + struct.pack("<II", len(blob), 0x004E4942) + blob
    path.write_bytes(struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body)
    return path


def _accessor_array(doc: dict, blob: bytes, index: int) -> np.ndarray:
    acc = doc["accessors"][index]
    view = doc["bufferViews"][acc["bufferView"]]
    width = _WIDTH[acc["type"]]
    dtype = np.dtype(_DTYPES[acc["componentType"]])
    start = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
    return np.frombuffer(blob, dtype=dtype, count=acc["count"] * width, offset=start).reshape(acc["count"], width)


def compress_glb(src: Path, dst: Path) -> Path:
    """Write the web-optimised version of ``src`` (a GLB without sparse accessors) to ``dst``."""
    import almeshopt

    almeshopt.set_vertex_encoder_version(0)  # the version EXT_meshopt_compression specifies
    almeshopt.set_index_encoder_version(1)
    doc, blob = _read_glb(src)
    roles: dict[int, str] = {}
    for mesh in doc["meshes"]:
        for prim in mesh["primitives"]:
            for name, index in prim["attributes"].items():
                roles[index] = name
            for target in prim.get("targets", []):
                roles[target["POSITION"]] = "TARGET_POSITION"
            if "indices" in prim:
                roles[prim["indices"]] = "INDICES"
    for node in doc["nodes"]:
        if "mesh" in node:
            assert "skin" not in node, "quantised positions need a rigid mesh (the node scale dequantises them)"
            node["scale"] = [POSITION_SCALE] * 3
    out = bytearray()
    views: list[dict] = []

    def add_view(encoded: bytes, count: int, stride: int, mode: str, filt: str | None = None) -> int:
        out.extend(b"\0" * (-len(out) % 4))
        ext = {"buffer": 0, "byteOffset": len(out), "byteLength": len(encoded), "byteStride": stride,
               "count": count, "mode": mode}
        if filt:
            ext["filter"] = filt
        out.extend(encoded)
        view = {"buffer": 1, "byteLength": count * stride, "extensions": {"EXT_meshopt_compression": ext}}
        if mode == "ATTRIBUTES":
            view["byteStride"] = stride
        views.append(view)
        return len(views) - 1

    for index, acc in enumerate(doc["accessors"]):
        values = _accessor_array(doc, blob, index)
        role = roles.get(index, "")
        acc.pop("byteOffset", None)
        if role == "INDICES":
            indices = np.ascontiguousarray(values.reshape(-1), dtype=np.uint32)
            encoded = almeshopt.encode_index_buffer(indices, int(indices.max()) + 1)
            acc["bufferView"] = add_view(encoded, len(indices), 4, "TRIANGLES")
            acc["componentType"] = _UINT
            continue
        if role == "POSITION":
            rows = np.zeros((len(values), 4), np.int16)  # padded to 8 bytes: meshopt rows are multiples of 4
            rows[:, :3] = np.round(values / POSITION_SCALE)
            acc.update(componentType=_SHORT, min=rows[:, :3].min(axis=0).tolist(), max=rows[:, :3].max(axis=0).tolist())
        elif role == "TARGET_POSITION":  # deltas live in the same quantised space as the positions
            rows = (values / POSITION_SCALE).astype(np.float32)
        elif role == "NORMAL":
            rows = np.zeros((len(values), 4), np.int8)
            rows[:, :3] = np.round(values * 127)
            acc.update(componentType=_BYTE, normalized=True)
        elif role == "TEXCOORD_0":
            rows = np.round(np.clip(values, 0, 1) * 65535).astype(np.uint16)
            acc.update(componentType=_USHORT, normalized=True)
        else:
            rows = np.ascontiguousarray(values)
        rows = np.ascontiguousarray(rows)
        stride = rows.dtype.itemsize * rows.shape[1]
        encoded = almeshopt.encode_vertex_buffer(rows.view(np.uint8).reshape(len(rows), stride))
        acc["bufferView"] = add_view(encoded, len(rows), stride, "ATTRIBUTES")

    for image in doc.get("images", []):  # PNG -> lossless WebP, stored after the geometry
        view = doc["bufferViews"][image["bufferView"]]
        png = np.frombuffer(blob, np.uint8, view["byteLength"], view.get("byteOffset", 0))
        ok, webp = cv2.imencode(".webp", cv2.imdecode(png, cv2.IMREAD_UNCHANGED), [cv2.IMWRITE_WEBP_QUALITY, 101])
        assert ok
        out.extend(b"\0" * (-len(out) % 4))
        views.append({"buffer": 0, "byteOffset": len(out), "byteLength": len(webp)})
        out.extend(webp.tobytes())
        image.update(bufferView=len(views) - 1, mimeType="image/webp")
    for texture in doc.get("textures", []):
        texture.setdefault("extensions", {})["EXT_texture_webp"] = {"source": texture.pop("source")}

    doc["bufferViews"] = views
    doc["buffers"] = [{"byteLength": len(out) + (-len(out) % 4)},
                      {"byteLength": sum(v["byteLength"] for v in views),
                       "extensions": {"EXT_meshopt_compression": {"fallback": True}}}]
    required = ["EXT_meshopt_compression", "KHR_mesh_quantization"] + (["EXT_texture_webp"] if doc.get("images") else [])
    doc["extensionsRequired"] = required
    doc["extensionsUsed"] = sorted(set(doc.get("extensionsUsed", [])) | set(required))
    return _write_glb(dst, doc, bytes(out))


def require_extension(src: Path, dst: Path, name: str) -> Path:
    """A copy of ``src`` that lists ``name`` in ``extensionsRequired``."""
    doc, blob = _read_glb(src)
    doc["extensionsRequired"] = [*doc.get("extensionsRequired", []), name]
    doc["extensionsUsed"] = sorted(set(doc.get("extensionsUsed", [])) | {name})
    return _write_glb(dst, doc, blob)


def draco_glb(src: Path, dst: Path) -> Path:
    """Write ``src`` with every primitive's positions, normals, UVs and indices Draco-compressed
    (``KHR_draco_mesh_compression``, DracoPy's encoder; primitives without morph targets only)."""
    import DracoPy

    doc, blob = _read_glb(src)
    out = bytearray(blob)
    types = {"POSITION": 0, "NORMAL": 1, "TEXCOORD_0": 3}  # Draco attribute types
    for mesh in doc["meshes"]:
        for prim in mesh["primitives"]:
            assert not prim.get("targets"), "Draco primitives here carry no morph targets"
            attrs = prim["attributes"]
            values = {name: _accessor_array(doc, blob, attrs[name]).astype(np.float64) for name in types if name in attrs}
            faces = _accessor_array(doc, blob, prim["indices"]).reshape(-1, 3)
            encoded = DracoPy.encode(values["POSITION"], faces, quantization_bits=16, preserve_order=True,
                                     normals=values.get("NORMAL"), tex_coord=values.get("TEXCOORD_0"))
            decoded = DracoPy.decode(encoded)
            ids = {a["attribute_type"]: a["unique_id"] for a in decoded.attributes}
            ids.setdefault(0, 0)  # the position attribute
            out.extend(b"\0" * (-len(out) % 4))
            doc["bufferViews"].append({"buffer": 0, "byteOffset": len(out), "byteLength": len(encoded)})
            out.extend(encoded)
            prim["extensions"] = {"KHR_draco_mesh_compression": {
                "bufferView": len(doc["bufferViews"]) - 1,
                "attributes": {name: int(ids[types[name]]) for name in values}}}
            for name in values:  # the data now lives in the Draco stream
                doc["accessors"][attrs[name]].pop("bufferView", None)
                doc["accessors"][attrs[name]]["count"] = len(decoded.points)
            doc["accessors"][prim["indices"]].pop("bufferView", None)
            doc["accessors"][prim["indices"]]["count"] = int(decoded.faces.size)
    doc["buffers"] = [{"byteLength": len(out) + (-len(out) % 4)}]
    doc["extensionsRequired"] = sorted(set(doc.get("extensionsRequired", [])) | {"KHR_draco_mesh_compression"})
    doc["extensionsUsed"] = sorted(set(doc.get("extensionsUsed", [])) | {"KHR_draco_mesh_compression"})
    return _write_glb(dst, doc, bytes(out))
