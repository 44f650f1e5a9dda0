"""Compressed and optimised glTF: which extensions a file may require, and the meshopt decoder.

Web-optimised exports (gltfpack, gltf-transform, VRoid Hub downloads) use
``EXT_meshopt_compression`` (compressed buffer views), ``KHR_mesh_quantization`` (integer vertex
attributes, read by the accessor code like any normalised integers) and ``EXT_texture_webp``
(OpenCV decodes WebP). ``KHR_draco_mesh_compression`` is decoded with DracoPy when it is
installed (the ``draco`` extra). Basis Universal has no decoder here: a file that *requires* it, or
any other extension this loader does not implement, is refused with one line naming the extension
and how to re-export.

The meshopt decoder follows the bitstream described in the ``EXT_meshopt_compression`` spec (vertex
codec version 0, index codec versions 0 and 1, index sequences, and the octahedral, quaternion and
exponential filters). The byte-group parsing is a short Python loop over 16-byte groups; the
unpacking, delta decoding and filters are numpy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

MESHOPT = "EXT_meshopt_compression"
WEBP = "EXT_texture_webp"
DRACO = "KHR_draco_mesh_compression"


def draco_available() -> bool:
    try:
        import DracoPy  # noqa: F401
    except ImportError:
        return False
    return True

# Extensions the loader implements; a file may list any of these in ``extensionsRequired``.
SUPPORTED_REQUIRED = frozenset({
    "KHR_materials_unlit", "KHR_texture_transform", "KHR_mesh_quantization", "KHR_materials_emissive_strength",
    MESHOPT, WEBP,
})

_HOW_TO_REEXPORT = {
    DRACO: "Draco mesh compression; `pip install DracoPy` lets avatarcam read it",
    "KHR_texture_basisu": "Basis Universal (KTX2) textures",
}


def unsupported_required(required: Iterable[str] | None) -> tuple[str, str] | None:
    """``(message, hint)`` for the first extension in ``extensionsRequired`` that cannot be read."""
    for name in required or ():
        if name in SUPPORTED_REQUIRED or (name == DRACO and draco_available()):
            continue
        if name in _HOW_TO_REEXPORT:
            return (f"needs {name} ({_HOW_TO_REEXPORT[name]}), which avatarcam cannot decode",
                    "Re-export without it, e.g. `gltf-transform meshopt in.glb out.glb` (meshopt geometry) "
                    "and PNG, JPEG or WebP textures.")
        return (f"needs the glTF extension {name}, which avatarcam does not support",
                "Re-export the avatar without that extension (glTF 2.0 / GLB or VRM).")
    return None


def texture_image_source(texture: Any) -> int | None:
    """The image a texture samples: the ``EXT_texture_webp`` source when present, else ``source``."""
    extensions = getattr(texture, "extensions", None) or {}
    webp = extensions.get(WEBP)
    if isinstance(webp, dict) and isinstance(webp.get("source"), int):
        return int(webp["source"])
    return getattr(texture, "source", None)


def meshopt_view(extensions: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The ``EXT_meshopt_compression`` object of a buffer view, or None."""
    ext = (extensions or {}).get(MESHOPT)
    return ext if isinstance(ext, dict) else None


def decode_draco(data: bytes | memoryview, attributes: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """A ``KHR_draco_mesh_compression`` primitive: ``{"indices": ..., "POSITION": ..., ...}`` by the
    glTF attribute names of the extension's ``attributes`` map (semantic -> Draco unique id)."""
    import DracoPy

    try:
        mesh = DracoPy.decode(bytes(data))
    except Exception as error:  # DracoPy raises its own types for corrupt data
        raise MeshoptError(f"Draco data is corrupt ({error})") from error
    out = {"indices": np.asarray(mesh.faces, dtype=np.uint32).reshape(-1, 1)}
    for name, unique_id in attributes.items():
        attribute = mesh.get_attribute_by_unique_id(int(unique_id))
        if attribute is None:
            raise MeshoptError(f"Draco data has no attribute {unique_id} for {name}")
        values = np.asarray(attribute["data"])
        out[name] = values.reshape(len(values), -1)
    return out


class MeshoptError(ValueError):
    """The compressed stream is malformed."""


def decode_meshopt(ext: Mapping[str, Any], data: bytes | memoryview) -> bytes:
    """Decode one compressed buffer view (``data`` is its compressed byte range)."""
    count, stride = int(ext["count"]), int(ext["byteStride"])
    mode, filt = ext.get("mode", "ATTRIBUTES"), ext.get("filter", "NONE")
    raw = np.frombuffer(data, dtype=np.uint8)
    if mode == "ATTRIBUTES":
        out = decode_vertex_buffer(raw, count, stride)
    elif mode == "TRIANGLES":
        out = _as_index_bytes(decode_index_buffer(raw, count), stride)
    elif mode == "INDICES":
        out = _as_index_bytes(decode_index_sequence(raw, count), stride)
    else:
        raise MeshoptError(f"unknown meshopt mode {mode!r}")
    if filt != "NONE":
        out = _FILTERS[filt](out, stride) if filt in _FILTERS else _raise(f"unknown meshopt filter {filt!r}")
    return out.tobytes()


def _raise(message: str) -> np.ndarray:
    raise MeshoptError(message)


def _as_index_bytes(indices: np.ndarray, stride: int) -> np.ndarray:
    if stride not in (2, 4):
        raise MeshoptError(f"index stride {stride} is not 2 or 4")
    return indices.astype(np.uint16 if stride == 2 else np.uint32).view(np.uint8)


# --- vertex codec (version 0) ----------------------------------------------------------------

_GROUP = 16
_SENTINEL = {1: 3, 2: 15}  # 2-bit and 4-bit groups: this value means "an explicit byte follows"


def _block_size(stride: int) -> int:
    return min((8192 // stride) & ~(_GROUP - 1), 256)


def _sentinel_counts(bits: int) -> list[int]:
    """For each byte value: how many of its packed ``bits``-wide fields hold the sentinel."""
    fields, sentinel = 8 // bits, (1 << bits) - 1
    return [sum(((b >> (8 - bits * (i + 1))) & sentinel) == sentinel for i in range(fields)) for b in range(256)]


_SENT2, _SENT4 = _sentinel_counts(2), _sentinel_counts(4)


def decode_vertex_buffer(data: np.ndarray, count: int, stride: int) -> np.ndarray:
    """``count x stride`` bytes of a meshopt vertex stream (uint8 array)."""
    if stride <= 0 or stride > 256 or stride % 4:
        raise MeshoptError(f"vertex stride {stride} is invalid")
    tail = max(stride, 32)
    if len(data) < 1 + tail or data[0] & 0xF0 != 0xA0:
        raise MeshoptError("not a meshopt vertex stream")
    if data[0] & 0x0F != 0:
        raise MeshoptError(f"meshopt vertex codec version {data[0] & 0x0F} is not supported")
    buf = data.tobytes()
    block = _block_size(stride)
    # pass 1 (sequential): where each 16-byte group's packed data starts and how it is packed
    kinds: list[int] = []
    starts: list[int] = []
    pos = 1
    end = len(buf) - tail
    for first in range(0, count, block):
        groups = (min(block, count - first) + _GROUP - 1) // _GROUP
        for _channel in range(stride):
            header, pos = pos, pos + (groups + 3) // 4
            for g in range(groups):
                kind = (buf[header + g // 4] >> ((g % 4) * 2)) & 3
                kinds.append(kind)
                starts.append(pos)
                if kind == 1:
                    pos += 4 + sum(_SENT2[b] for b in buf[pos:pos + 4])
                elif kind == 2:
                    pos += 8 + sum(_SENT4[b] for b in buf[pos:pos + 8])
                elif kind == 3:
                    pos += 16
            if pos > end:
                raise MeshoptError("meshopt vertex stream is truncated")
    if pos != end:
        raise MeshoptError("meshopt vertex stream has trailing data")
    # pass 2 (vectorised): unpack every group's 16 values
    padded = np.frombuffer(buf + bytes(32), dtype=np.uint8)
    kind_array, start_array = np.asarray(kinds), np.asarray(starts)
    values = np.zeros((len(kinds), _GROUP), dtype=np.uint8)
    raw = kind_array == 3
    values[raw] = padded[start_array[raw, None] + np.arange(_GROUP)]
    for kind, bits in ((1, 2), (2, 4)):
        sel = np.flatnonzero(kind_array == kind)
        if not len(sel):
            continue
        width = 2 * bits  # bytes of packed data per group (4 or 8)
        packed = padded[start_array[sel, None] + np.arange(width)]
        shifts = np.arange(8 - bits, -1, -bits, dtype=np.uint8)
        unpacked = ((packed[:, :, None] >> shifts) & ((1 << bits) - 1)).reshape(len(sel), _GROUP)
        explicit = unpacked == _SENTINEL[kind]
        rank = np.cumsum(explicit, axis=1) - 1
        source = start_array[sel, None] + width + rank
        unpacked[explicit] = padded[source[explicit]]
        values[sel] = unpacked
    # groups are ordered block -> channel -> group; lay them out as vertex x channel deltas
    deltas = np.empty((count, stride), dtype=np.uint8)
    g = 0
    for first in range(0, count, block):
        n = min(block, count - first)
        groups = (n + _GROUP - 1) // _GROUP
        chunk = values[g:g + groups * stride].reshape(stride, groups * _GROUP)[:, :n]
        deltas[first:first + n] = chunk.T
        g += groups * stride
    decoded = (deltas >> 1) ^ (0 - (deltas & 1)).astype(np.uint8)  # unzigzag
    last = np.frombuffer(buf[len(buf) - stride:], dtype=np.uint8)
    return (np.cumsum(decoded, axis=0, dtype=np.uint8) + last).astype(np.uint8)


# --- index codecs ----------------------------------------------------------------------------


def _vbyte(buf: bytes, pos: int) -> tuple[int, int]:
    lead = buf[pos]
    pos += 1
    if lead < 128:
        return lead, pos
    result, shift = lead & 127, 7
    for _ in range(4):
        group = buf[pos]
        pos += 1
        result |= (group & 127) << shift
        shift += 7
        if group < 128:
            break
    return result, pos


def _unzigzag32(v: int) -> int:
    return (v >> 1) ^ (-(v & 1) & 0xFFFFFFFF)


def decode_index_buffer(data: np.ndarray, count: int) -> np.ndarray:
    """Triangle list indices (``count`` of them) of a meshopt index stream."""
    buf = data.tobytes()
    if count % 3 or len(buf) < 1 + count // 3 + 16 or buf[0] & 0xF0 != 0xE0 or buf[0] & 0x0F > 1:
        raise MeshoptError("not a meshopt index stream")
    fecmax = 13 if buf[0] & 0x0F >= 1 else 15
    edges = [(0xFFFFFFFF, 0xFFFFFFFF)] * 16
    verts = [0xFFFFFFFF] * 16
    eo = vo = 0
    nxt = last = 0
    code, pos, safe_end = 1, 1 + count // 3, len(buf) - 16
    table = buf[safe_end:]
    out = np.empty(count, dtype=np.uint32)
    mask = 0xFFFFFFFF
    for i in range(0, count, 3):
        if pos > safe_end:
            raise MeshoptError("meshopt index stream is truncated")
        codetri = buf[code]
        code += 1
        if codetri < 0xF0:
            a, b = edges[(eo - 1 - (codetri >> 4)) & 15]
            fec = codetri & 15
            if fec < fecmax:
                c = nxt if fec == 0 else verts[(vo - 1 - fec) & 15]
                push_c = fec == 0
                nxt += push_c
            else:
                if fec != 15:
                    c = (last + (fec - (fec ^ 3))) & mask
                else:
                    v, pos = _vbyte(buf, pos)
                    c = (last + _unzigzag32(v)) & mask
                last = c
                push_c = True
            out[i:i + 3] = (a, b, c)
            if push_c:
                verts[vo] = c
                vo = (vo + 1) & 15
            edges[eo] = (c, b)
            edges[(eo + 1) & 15] = (a, c)
            eo = (eo + 2) & 15
            continue
        if codetri < 0xFE:
            aux = table[codetri & 15]
            fea, feb, fec = 0, aux >> 4, aux & 15
        else:
            aux = buf[pos]
            pos += 1
            fea, feb, fec = (0 if codetri == 0xFE else 15), aux >> 4, aux & 15
            if aux == 0:
                nxt = 0
        tri = []
        for fe in (fea, feb, fec):
            if fe == 0:
                tri.append(nxt)
                nxt += 1
            else:
                tri.append(verts[(vo - fe) & 15] if fe != 15 else 0)
        for k, fe in enumerate((fea, feb, fec)):
            if fe == 15:
                v, pos = _vbyte(buf, pos)
                last = tri[k] = (last + _unzigzag32(v)) & mask
        out[i:i + 3] = tri
        for k, fe in enumerate((fea, feb, fec)):
            if k == 0 or fe in (0, 15):
                verts[vo] = tri[k]
                vo = (vo + 1) & 15
        a, b, c = tri
        edges[eo], edges[(eo + 1) & 15], edges[(eo + 2) & 15] = (b, a), (c, b), (a, c)
        eo = (eo + 3) & 15
    if pos != safe_end:
        raise MeshoptError("meshopt index stream has trailing data")
    return out


def decode_index_sequence(data: np.ndarray, count: int) -> np.ndarray:
    """Indices of a meshopt index sequence (``mode: INDICES``)."""
    buf = data.tobytes()
    if not buf or buf[0] & 0xF0 != 0xD0 or buf[0] & 0x0F > 1:
        raise MeshoptError("not a meshopt index sequence")
    last = [0, 0]
    pos = 1
    out = np.empty(count, dtype=np.uint32)
    try:
        for i in range(count):
            v, pos = _vbyte(buf, pos)
            current = v & 1
            last[current] = (last[current] + _unzigzag32(v >> 1)) & 0xFFFFFFFF
            out[i] = last[current]
    except IndexError as error:
        raise MeshoptError("meshopt index sequence is truncated") from error
    return out


# --- filters -----------------------------------------------------------------------------------


def _round(x: np.ndarray) -> np.ndarray:
    return np.trunc(x + np.where(x >= 0, 0.5, -0.5))


def _filter_octahedral(raw: np.ndarray, stride: int) -> np.ndarray:
    dtype = {4: np.int8, 8: np.int16}.get(stride)
    if dtype is None:
        raise MeshoptError(f"octahedral filter needs a 4 or 8 byte stride, not {stride}")
    v = raw.reshape(-1).view(dtype).reshape(-1, 4).copy()
    top = float(np.iinfo(dtype).max)
    x, y = v[:, 0].astype(np.float32), v[:, 1].astype(np.float32)
    z = v[:, 2].astype(np.float32) - np.abs(x) - np.abs(y)
    t = np.minimum(z, 0.0)
    x += np.where(x >= 0, t, -t)
    y += np.where(y >= 0, t, -t)
    s = top / np.sqrt(x * x + y * y + z * z)
    v[:, 0], v[:, 1], v[:, 2] = _round(x * s), _round(y * s), _round(z * s)
    return v.view(np.uint8)


def _filter_quaternion(raw: np.ndarray, stride: int) -> np.ndarray:
    if stride != 8:
        raise MeshoptError(f"quaternion filter needs an 8 byte stride, not {stride}")
    v = raw.reshape(-1).view(np.int16).reshape(-1, 4).copy()
    ss = (1.0 / np.sqrt(2.0)) / (v[:, 3].astype(np.int32) | 3).astype(np.float32)
    xyz = v[:, :3].astype(np.float32) * ss[:, None]
    w = np.sqrt(np.maximum(1.0 - (xyz * xyz).sum(axis=1), 0.0))
    qc = (v[:, 3] & 3).astype(np.int64)
    rows = np.arange(len(v))
    out = np.empty_like(v)
    for k in range(3):
        out[rows, (qc + 1 + k) & 3] = _round(xyz[:, k] * 32767.0)
    out[rows, qc] = np.trunc(w * 32767.0 + 0.5)
    return out.view(np.uint8)


def _filter_exponential(raw: np.ndarray, stride: int) -> np.ndarray:
    if stride % 4:
        raise MeshoptError(f"exponential filter needs a stride that is a multiple of 4, not {stride}")
    v = raw.reshape(-1).view(np.int32)
    mantissa = (v << 8) >> 8
    exponent = v >> 24
    return np.ldexp(mantissa.astype(np.float32), exponent).astype(np.float32).view(np.uint8)


_FILTERS = {"OCTAHEDRAL": _filter_octahedral, "QUATERNION": _filter_quaternion, "EXPONENTIAL": _filter_exponential}


__all__ = ["DRACO", "MESHOPT", "WEBP", "decode_draco", "draco_available", "SUPPORTED_REQUIRED", "MeshoptError", "decode_meshopt", "decode_vertex_buffer",
           "decode_index_buffer", "decode_index_sequence", "meshopt_view", "texture_image_source",
           "unsupported_required"]
