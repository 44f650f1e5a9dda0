"""Build small, known glTF/GLB avatars in tests (written with pygltflib, read back by the loader).

``build_test_avatar`` makes a two-part avatar: a box torso and a cube head on a Hips > Spine >
Neck > Head node chain, optionally skinned (one mesh bound to those joints) or rigid (the head mesh
hangs on the Head node), with named morph targets on the head's front face and an optional
checker texture. Geometry, in metres, facing +Z:

  torso: x in [-0.4, 0.4], y in [1.0, 1.5], z in [-0.15, 0.15]
  head:  x in [-0.15, 0.15], y in [1.55, 1.85], z in [-0.15, 0.15]   (Head node at y = 1.55)

``build_benchmark_avatar`` makes a heavier skinned head (a UV sphere) with the 52 ARKit targets for
timing the renderer. ``GltfBuilder`` is the small writer both use; tests use it for odd files.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pygltflib as g

FLOAT, UBYTE, USHORT, UINT = 5126, 5121, 5123, 5125
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963
_TYPES = {1: "SCALAR", 2: "VEC2", 3: "VEC3", 4: "VEC4", 16: "MAT4"}
_DTYPES = {FLOAT: np.float32, UBYTE: np.uint8, USHORT: np.uint16, UINT: np.uint32}

TORSO_MIN, TORSO_MAX = (-0.4, 1.0, -0.15), (0.4, 1.5, 0.15)
HEAD_MIN, HEAD_MAX = (-0.15, 1.55, -0.15), (0.15, 1.85, 0.15)
JOINT_NAMES = ("Hips", "Spine", "Neck", "Head")
JOINT_WORLD_Y = (1.0, 1.25, 1.5, 1.55)
JAW_DROP = 0.04  # how far jawOpen moves the lower front of the head down (metres)


class GltfBuilder:
    """Accumulates one binary buffer, accessors and scene objects; saves .glb/.vrm or .gltf + .bin."""

    def __init__(self) -> None:
        self.gltf = g.GLTF2(asset=g.Asset(version="2.0", generator="avatarcam tests"))
        self.data = bytearray()

    def view(self, payload: bytes, target: int | None = None) -> int:
        self.data.extend(b"\0" * (-len(self.data) % 4))
        self.gltf.bufferViews.append(g.BufferView(buffer=0, byteOffset=len(self.data),
                                                  byteLength=len(payload), target=target))
        self.data.extend(payload)
        return len(self.gltf.bufferViews) - 1

    def accessor(self, array: np.ndarray, *, component: int = FLOAT, normalized: bool = False,
                 target: int | None = ARRAY_BUFFER, minmax: bool = False) -> int:
        """Add ``array`` (count x width, or flat for scalars) as a tightly packed accessor."""
        array = np.asarray(array)
        width = 1 if array.ndim == 1 else array.shape[1]
        packed = np.ascontiguousarray(array, dtype=_DTYPES[component])
        acc = g.Accessor(bufferView=self.view(packed.tobytes(), target), componentType=component,
                         count=len(array), type=_TYPES[width], normalized=normalized or None)
        if minmax:
            acc.min = packed.reshape(len(array), -1).min(axis=0).tolist()
            acc.max = packed.reshape(len(array), -1).max(axis=0).tolist()
        self.gltf.accessors.append(acc)
        return len(self.gltf.accessors) - 1

    def sparse_accessor(self, dense: np.ndarray) -> int:
        """Add a float VEC3 accessor with no buffer view: only its non-zero rows, stored sparse."""
        rows = np.flatnonzero(np.any(dense != 0, axis=1)).astype(np.uint32)
        sparse = g.Sparse(
            count=len(rows),
            indices=g.AccessorSparseIndices(bufferView=self.view(rows.tobytes()), componentType=UINT),
            values=g.AccessorSparseValues(bufferView=self.view(np.ascontiguousarray(dense[rows], np.float32).tobytes())),
        )
        self.gltf.accessors.append(g.Accessor(componentType=FLOAT, count=len(dense), type="VEC3", sparse=sparse))
        return len(self.gltf.accessors) - 1

    def image(self, rgb: np.ndarray) -> int:
        """Add an embedded PNG image (RGB uint8, top row first)."""
        ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        assert ok
        self.gltf.images.append(g.Image(bufferView=self.view(png.tobytes()), mimeType="image/png"))
        return len(self.gltf.images) - 1

    def material(self, color: Sequence[float], *, texture_image: int | None = None, **fields) -> int:
        pbr = g.PbrMetallicRoughness(baseColorFactor=list(color), metallicFactor=0.0, roughnessFactor=0.6)
        if texture_image is not None:
            self.gltf.samplers.append(g.Sampler(magFilter=9729, minFilter=9987))
            self.gltf.textures.append(g.Texture(source=texture_image, sampler=len(self.gltf.samplers) - 1))
            pbr.baseColorTexture = g.TextureInfo(index=len(self.gltf.textures) - 1)
        self.gltf.materials.append(g.Material(pbrMetallicRoughness=pbr, **fields))
        return len(self.gltf.materials) - 1

    def node(self, name: str, *, parent: int | None = None, **fields) -> int:
        self.gltf.nodes.append(g.Node(name=name, **fields))
        index = len(self.gltf.nodes) - 1
        if parent is not None:
            self.gltf.nodes[parent].children.append(index)
        return index

    def save(self, path: str | Path, roots: Sequence[int]) -> Path:
        """Write the file; ``.gltf`` writes its buffer to ``<stem>.bin`` beside it."""
        path = Path(path)
        self.gltf.scenes = [g.Scene(nodes=list(roots))]
        self.gltf.scene = 0
        blob = bytes(self.data) + b"\0" * (-len(self.data) % 4)
        if path.suffix.lower() == ".gltf":
            bin_name = path.stem + ".bin"
            (path.parent / bin_name).write_bytes(blob)
            self.gltf.buffers = [g.Buffer(uri=bin_name, byteLength=len(blob))]
            self.gltf.save_json(str(path))
        else:
            self.gltf.buffers = [g.Buffer(byteLength=len(blob))]
            self.gltf.set_binary_blob(blob)
            path.write_bytes(b"".join(self.gltf.save_to_bytes()))
        return path


# --- geometry ----------------------------------------------------------------------------------


def grid_box(lo: Sequence[float], hi: Sequence[float], n: int) -> tuple[np.ndarray, ...]:
    """A box with each face split into ``n x n`` quads (own vertices per face, flat normals).

    Returns positions (V x 3), normals (V x 3), uvs (V x 2), indices (flat, CCW outward) and the
    face id of each vertex (0..5 = +X, -X, +Y, -Y, +Z, -Z).
    """
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    positions, normals, uvs, faces, indices = [], [], [], [], []
    s = np.linspace(0.0, 1.0, n + 1)
    uu, vv = np.meshgrid(s, s)
    uu, vv = uu.ravel(), vv.ravel()
    for face, (axis, sign) in enumerate([(0, 1), (0, -1), (1, 1), (1, -1), (2, 1), (2, -1)]):
        u_axis, v_axis = [a for a in range(3) if a != axis]
        p = np.empty((len(uu), 3))
        p[:, axis] = hi[axis] if sign > 0 else lo[axis]
        p[:, u_axis] = lo[u_axis] + uu * (hi[u_axis] - lo[u_axis])
        p[:, v_axis] = lo[v_axis] + vv * (hi[v_axis] - lo[v_axis])
        base = sum(len(x) for x in positions)
        quads = []
        for j in range(n):
            for i in range(n):
                a = base + j * (n + 1) + i
                quads += [(a, a + 1, a + n + 2), (a, a + n + 2, a + n + 1)]
        quads = np.array(quads)
        # flip winding where the (u, v) basis points inward so every face is CCW from outside
        e_u, e_v = np.eye(3)[u_axis], np.eye(3)[v_axis]
        if np.dot(np.cross(e_u, e_v), np.eye(3)[axis] * sign) < 0:
            quads = quads[:, ::-1]
        normal = np.zeros(3)
        normal[axis] = sign
        positions.append(p)
        normals.append(np.tile(normal, (len(p), 1)))
        uvs.append(np.c_[uu, 1.0 - vv])
        faces.append(np.full(len(p), face))
        indices.append(quads.ravel())
    return (np.concatenate(positions), np.concatenate(normals), np.concatenate(uvs),
            np.concatenate(indices).astype(np.uint32), np.concatenate(faces))


def morph_delta(name: str, positions: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """The displacement a named test target applies to the head box's vertices.

    ``jawOpen`` drops the lower third of the front (+Z) face by ``JAW_DROP``; any other name pushes
    a name-dependent patch of the front face forward.
    """
    delta = np.zeros_like(positions)
    front = faces == 4
    y0, y1 = HEAD_MIN[1], HEAD_MAX[1]
    if name == "jawOpen":
        delta[front & (positions[:, 1] < y0 + (y1 - y0) / 3 + 1e-6), 1] = -JAW_DROP
    else:
        seed = sum(map(ord, name))
        cx = HEAD_MIN[0] + (seed % 7 + 0.5) / 7 * (HEAD_MAX[0] - HEAD_MIN[0])
        cy = y0 + (seed % 5 + 0.5) / 5 * (y1 - y0)
        near = front & (np.hypot(positions[:, 0] - cx, positions[:, 1] - cy) < 0.06)
        delta[near, 2] = 0.03
    return delta


def checker(size: int = 8, a=(230, 40, 40), b=(40, 40, 230)) -> np.ndarray:
    ij = np.add.outer(np.arange(size), np.arange(size)) % 2
    return np.where(ij[..., None] == 0, np.array(a, np.uint8), np.array(b, np.uint8)).astype(np.uint8)


def _add_joint_chain(b: GltfBuilder) -> list[int]:
    """Hips > Spine > Neck > Head, straight up the Y axis at ``JOINT_WORLD_Y``."""
    joints: list[int] = []
    for i, name in enumerate(JOINT_NAMES):
        y = JOINT_WORLD_Y[i] - (JOINT_WORLD_Y[i - 1] if i else 0.0)
        joints.append(b.node(name, parent=joints[-1] if joints else None, translation=[0.0, y, 0.0]))
    return joints


def _add_skin(b: GltfBuilder, joints: list[int]) -> None:
    """A skin over the joint chain, bound in its rest pose (inverse bind = minus joint height)."""
    ibm = np.tile(np.eye(4, dtype=np.float32), (len(joints), 1, 1))
    ibm[:, 3, 1] = -np.asarray(JOINT_WORLD_Y)  # column-major storage: translation is row 3 here
    b.gltf.skins.append(g.Skin(name="Armature", joints=joints, skeleton=joints[0],
                               inverseBindMatrices=b.accessor(ibm.reshape(-1, 16), target=None)))


def _add_primitive(b: GltfBuilder, positions, normals, indices, material, *, uvs=None, joints=None,
                   weights=None, targets: Sequence[np.ndarray] = (), sparse_morphs=False, normalized=False):
    attrs = g.Attributes(POSITION=b.accessor(positions, minmax=True))
    if normals is not None:
        attrs.NORMAL = b.accessor(normals)
    if uvs is not None:
        attrs.TEXCOORD_0 = (b.accessor(np.round(np.clip(uvs, 0, 1) * 65535), component=USHORT, normalized=True)
                            if normalized else b.accessor(uvs))
    if joints is not None:
        attrs.JOINTS_0 = b.accessor(joints, component=UBYTE)
        attrs.WEIGHTS_0 = (b.accessor(np.round(weights * 255), component=UBYTE, normalized=True)
                           if normalized else b.accessor(weights))
    morphs = [g.Attributes(POSITION=b.sparse_accessor(d) if sparse_morphs else b.accessor(d)) for d in targets]
    return g.Primitive(attributes=attrs, indices=b.accessor(indices, component=UINT, target=ELEMENT_ARRAY_BUFFER),
                       material=material, targets=morphs)


def build_test_avatar(path: str | Path, *, with_skin: bool = True, with_morphs: Sequence[str] = ("jawOpen",),
                      with_texture: bool = False, with_normals: bool = True, sparse_morphs: bool = False,
                      normalized: bool = False, subdivisions: int = 6) -> Path:
    """Write the torso-and-head test avatar to ``path`` (.glb, .vrm or .gltf) and return the path.

    ``sparse_morphs`` stores target deltas as sparse accessors; ``normalized`` stores UVs as
    normalised UNSIGNED_SHORT and weights as normalised UNSIGNED_BYTE.
    """
    b = GltfBuilder()
    image = b.image(checker()) if with_texture else None
    torso_mat = b.material((0.2, 0.35, 0.8, 1.0))
    head_mat = b.material((0.95, 0.75, 0.6, 1.0), texture_image=image)

    joints = _add_joint_chain(b)

    tp, tn, tuv, ti, _ = grid_box(TORSO_MIN, TORSO_MAX, 2)
    hp, hn, huv, hi, hf = grid_box(HEAD_MIN, HEAD_MAX, subdivisions)
    deltas = [morph_delta(name, hp, hf) for name in with_morphs]
    extras = {"targetNames": list(with_morphs)} if with_morphs else {}
    roots = [joints[0]]
    if with_skin:
        # one skinned mesh: torso bound to Spine (1), head bound to Head (3)
        n_t = len(tp)
        skin_joints = np.zeros((n_t + len(hp), 4), np.uint8)
        skin_joints[:n_t, 0], skin_joints[n_t:, 0] = 1, 3
        skin_weights = np.zeros((n_t + len(hp), 4), np.float32)
        skin_weights[:, 0] = 1.0
        zeros = np.zeros_like(tp)
        torso = _add_primitive(b, tp, tn if with_normals else None, ti, torso_mat, uvs=tuv,
                               joints=skin_joints[:n_t], weights=skin_weights[:n_t],
                               targets=[zeros] * len(deltas), sparse_morphs=sparse_morphs, normalized=normalized)
        head = _add_primitive(b, hp, hn if with_normals else None, hi, head_mat, uvs=huv,
                              joints=skin_joints[n_t:], weights=skin_weights[n_t:], targets=deltas,
                              sparse_morphs=sparse_morphs, normalized=normalized)
        b.gltf.meshes.append(g.Mesh(name="Body", primitives=[torso, head], extras=extras))
        _add_skin(b, joints)
        roots.append(b.node("BodyMesh", mesh=0, skin=0))
    else:
        offset_t = np.array([0.0, JOINT_WORLD_Y[1], 0.0])
        offset_h = np.array([0.0, JOINT_WORLD_Y[3], 0.0])
        torso = _add_primitive(b, tp - offset_t, tn if with_normals else None, ti, torso_mat, uvs=tuv,
                               normalized=normalized)
        head = _add_primitive(b, hp - offset_h, hn if with_normals else None, hi, head_mat, uvs=huv,
                              targets=deltas, sparse_morphs=sparse_morphs, normalized=normalized)
        b.gltf.meshes.append(g.Mesh(name="Torso", primitives=[torso]))
        b.gltf.meshes.append(g.Mesh(name="Head", primitives=[head], extras=extras))
        b.node("TorsoMesh", parent=joints[1], mesh=0)
        b.node("HeadMesh", parent=joints[3], mesh=1)
    return b.save(path, roots)


def uv_sphere(center: Sequence[float], radius: float, rings: int, segments: int) -> tuple[np.ndarray, ...]:
    """Positions, normals and CCW-outward indices of a UV sphere."""
    theta = np.linspace(0, np.pi, rings + 1)[:, None]
    phi = np.linspace(0, 2 * np.pi, segments + 1)[None, :]
    normals = np.stack([np.sin(theta) * np.sin(phi), np.cos(theta) * np.ones_like(phi),
                        np.sin(theta) * np.cos(phi)], axis=-1).reshape(-1, 3)
    a = (np.arange(rings)[:, None] * (segments + 1) + np.arange(segments)[None, :]).ravel()
    quads = np.stack([a, a + segments + 1, a + segments + 2, a, a + segments + 2, a + 1], axis=1)
    return np.asarray(center) + radius * normals, normals, quads.reshape(-1).astype(np.uint32)


def build_benchmark_avatar(path: str | Path, *, triangles: int = 25_000, target_names: Sequence[str] = ()) -> Path:
    """A skinned sphere head (about ``triangles`` triangles) on the test torso, one target per name.

    Each target moves a different random patch of the face (about 5% of the head's vertices), the
    shape of real ARKit blendshapes.
    """
    b = GltfBuilder()
    rng = np.random.default_rng(7)
    segments = int(np.sqrt(triangles))
    rings = max(4, triangles // (2 * segments))
    hp, hn, hi = uv_sphere((0.0, 1.7, 0.0), 0.15, rings, segments)
    tp, tn, _, ti, _ = grid_box(TORSO_MIN, TORSO_MAX, 4)
    targets = []
    for _ in target_names:
        center = hp[rng.integers(len(hp))]
        d = np.zeros_like(hp)
        near = np.linalg.norm(hp - center, axis=1) < 0.05
        d[near] = hn[near] * 0.01 + rng.normal(0, 0.003, (near.sum(), 3))
        targets.append(d)
    joints = _add_joint_chain(b)
    # every vertex: 80% its own joint (Spine or Head), 20% Neck, so four-influence skinning runs
    weights = np.array([0.8, 0.2, 0.0, 0.0], np.float32)
    torso = _add_primitive(b, tp, tn, ti, b.material((0.2, 0.35, 0.8, 1)),
                           joints=np.tile(np.array([1, 2, 0, 0], np.uint8), (len(tp), 1)),
                           weights=np.tile(weights, (len(tp), 1)), targets=[np.zeros_like(tp)] * len(targets))
    head = _add_primitive(b, hp, hn, hi, b.material((0.95, 0.75, 0.6, 1)),
                          joints=np.tile(np.array([3, 2, 0, 0], np.uint8), (len(hp), 1)),
                          weights=np.tile(weights, (len(hp), 1)), targets=targets)
    b.gltf.meshes.append(g.Mesh(name="Face", primitives=[torso, head],
                                extras={"targetNames": list(target_names)} if target_names else {}))
    _add_skin(b, joints)
    return b.save(path, [joints[0], b.node("FaceMesh", mesh=0, skin=0)])


def add_extensions(path: str | Path, extensions: dict, *, material_extensions: dict | None = None) -> Path:
    """Rewrite the GLB at ``path`` with top-level ``extensions`` (e.g. ``{"VRMC_vrm": {...}}``) added,
    and optionally extensions on materials (``{material index: {name: object}}``)."""
    import json
    import struct

    path = Path(path)
    data = path.read_bytes()
    json_length = struct.unpack_from("<I", data, 12)[0]
    doc = json.loads(data[20:20 + json_length])
    rest = data[20 + json_length:]
    doc.setdefault("extensions", {}).update(extensions)
    for index, ext in (material_extensions or {}).items():
        doc["materials"][index].setdefault("extensions", {}).update(ext)
    used = set(doc.get("extensionsUsed", [])) | set(extensions)
    for ext in (material_extensions or {}).values():
        used |= set(ext)
    doc["extensionsUsed"] = sorted(used)
    payload = json.dumps(doc).encode()
    payload += b" " * (-len(payload) % 4)
    body = struct.pack("<II", len(payload), 0x4E4F534A) + payload + rest
    path.write_bytes(struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body)
    return path
