"""MediaPipe's canonical face: the mean 3D face its 468 mesh landmarks are defined on.

The face landmarker bundle (``face_landmarker.task``, a zip) carries it in
``geometry_pipeline_metadata_landmarks.binarypb``: a ``GeometryPipelineMetadata`` protobuf whose
``canonical_mesh`` (a ``Mesh3d``) holds ``vertex_buffer`` (x, y, z, u, v per vertex, centimetres,
+Y up, the face toward +Z) and ``index_buffer`` (triangles). The message is read here with a
minimal wire-format reader, so no protobuf schema or package is needed. Landmarks 468..477 (the
irises) are not part of the mesh.
"""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from engine.errors import ModelError

METADATA_NAME = "geometry_pipeline_metadata_landmarks.binarypb"
MESH_LANDMARKS = 468
_CANONICAL_MESH, _VERTEX_BUFFER, _INDEX_BUFFER = 1, 3, 4  # field numbers in the .proto files
_VERTEX_SIZE = 5  # VERTEX_PT: position (3) + texture coordinate (2)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of one protobuf message; values of length-delimited fields
    are the raw bytes, of fixed32 fields the 4 raw bytes."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def _packed_varints(data: bytes) -> list[int]:
    out, pos = [], 0
    while pos < len(data):
        value, pos = _varint(data, pos)
        out.append(value)
    return out


def parse_canonical_mesh(metadata: bytes) -> tuple[np.ndarray, np.ndarray]:
    """``(vertices 468 x 3 in metres, triangles T x 3)`` from the geometry pipeline metadata."""
    mesh = next((v for n, w, v in _fields(metadata) if n == _CANONICAL_MESH and w == 2), None)
    if not isinstance(mesh, bytes):
        raise ValueError("no canonical mesh in the geometry metadata")
    floats: list[float] = []
    indices: list[int] = []
    for number, wire, value in _fields(mesh):
        if number == _VERTEX_BUFFER:
            assert isinstance(value, bytes)
            floats.extend(struct.unpack(f"<{len(value) // 4}f", value))  # packed, or one fixed32
        elif number == _INDEX_BUFFER:
            indices.extend(_packed_varints(value) if wire == 2 else [value])  # type: ignore[list-item]
    vertices = np.asarray(floats, dtype=np.float64).reshape(-1, _VERTEX_SIZE)[:, :3] / 100.0
    if len(vertices) != MESH_LANDMARKS:
        raise ValueError(f"the canonical mesh has {len(vertices)} vertices, not {MESH_LANDMARKS}")
    return vertices, np.asarray(indices, dtype=np.int64).reshape(-1, 3)


def canonical_face(face_model: Path) -> tuple[np.ndarray, np.ndarray]:
    """The canonical face of the face landmarker bundle at ``face_model``; ``ModelError`` if it has none."""
    try:
        with zipfile.ZipFile(face_model) as bundle:
            return parse_canonical_mesh(bundle.read(METADATA_NAME))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, struct.error, IndexError) as exc:
        raise ModelError(f"The face model '{face_model}' has no readable canonical face ({exc}).",
                         "Let avatarcam download the face model again.") from exc
