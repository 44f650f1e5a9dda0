"""The avatar data model: what a loaded glTF/GLB/VRM file holds, as read-only numpy-backed values.

Everything here is independent of OpenGL and of the file format. Arrays are made read-only when an
``Avatar`` is built, so one avatar can be shared between threads (a loader thread hands it to the
render thread) without copies.

Conventions:
  * matrices are 4x4 ``float64`` for column vectors (``world = parent @ local``, ``p' = M @ p``);
  * quaternions are ``(x, y, z, w)`` as in glTF;
  * "world space" is the glTF scene space turned so the avatar faces +Z (see ``Avatar.facing``),
    with +Y up, in metres.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from engine.avatar.spring_bone import SpringBones
    from engine.avatar.vrm import VrmInfo

REPEAT = 10497  # GL_REPEAT, the glTF default wrap mode

# Names tried, in order, when looking for the head node (VRM 0.x, Mixamo, Blender/VRoid exports).
HEAD_NODE_CANDIDATES: tuple[str, ...] = ("Head", "J_Bip_C_Head", "mixamorig:Head", "head_bone")
LEFT_EYE_CANDIDATES = ("LeftEye", "J_Adj_L_FaceEye", "Eye_L", "eye.L", "mixamorig:LeftEye", "lefteye_bone")
RIGHT_EYE_CANDIDATES = ("RightEye", "J_Adj_R_FaceEye", "Eye_R", "eye.R", "mixamorig:RightEye", "righteye_bone")
# Meshes, materials and bones that hang from the head but are not the face framing is about: hair
# (VRoid "..._HAIR", Ready Player Me "Wolf3D_Hair"), headwear, and VRoid's secondary (spring) chains.
_NOT_FACE_WORDS: tuple[str, ...] = ("hair", "ponytail", "braid", "bangs", "fringe", "twintail", "ahoge", "headwear",
                                    "j_sec_")


def is_hair_name(name: str) -> bool:
    """True for a mesh, material or bone name that is hair or headwear rather than the face."""
    lowered = name.lower()
    return any(word in lowered for word in _NOT_FACE_WORDS)


# --- transform maths ---------------------------------------------------------------------------


def quat_to_matrix(q: np.ndarray | tuple[float, float, float, float]) -> np.ndarray:
    """3x3 rotation matrix of a unit quaternion ``(x, y, z, w)`` (normalised here)."""
    x, y, z, w = np.asarray(q, dtype=np.float64) / (np.linalg.norm(q) or 1.0)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def quat_multiply(a: np.ndarray | tuple, b: np.ndarray | tuple) -> np.ndarray:
    """Hamilton product ``a * b`` of ``(x, y, z, w)`` quaternions (apply ``b`` first, then ``a``)."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ]
    )


def quat_from_axis_angle(axis: tuple[float, float, float], degrees: float) -> tuple[float, float, float, float]:
    """Quaternion ``(x, y, z, w)`` turning ``degrees`` about ``axis`` (right-handed)."""
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    half = np.radians(degrees) / 2.0
    s = np.sin(half)
    return (float(a[0] * s), float(a[1] * s), float(a[2] * s), float(np.cos(half)))


def trs_matrix(translation, rotation, scale) -> np.ndarray:
    """4x4 matrix ``T @ R @ S`` (the glTF node transform)."""
    m = np.eye(4)
    m[:3, :3] = quat_to_matrix(rotation) * np.asarray(scale, dtype=np.float64)[None, :]
    m[:3, 3] = translation
    return m


def decompose_matrix(m: np.ndarray) -> tuple[tuple, tuple, tuple]:
    """Split a TRS 4x4 matrix (no shear, as glTF requires) into translation, quaternion, scale."""
    m = np.asarray(m, dtype=np.float64)
    t = m[:3, 3]
    basis = m[:3, :3]
    s = np.linalg.norm(basis, axis=0)
    if np.linalg.det(basis) < 0:
        s[0] = -s[0]
    r = basis / np.where(s == 0, 1.0, s)[None, :]
    trace = r[0, 0] + r[1, 1] + r[2, 2]
    if trace > 0:
        k = 0.5 / np.sqrt(trace + 1.0)
        q = ((r[2, 1] - r[1, 2]) * k, (r[0, 2] - r[2, 0]) * k, (r[1, 0] - r[0, 1]) * k, 0.25 / k)
    elif r[0, 0] > r[1, 1] and r[0, 0] > r[2, 2]:
        k = 2.0 * np.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2])
        q = (0.25 * k, (r[0, 1] + r[1, 0]) / k, (r[0, 2] + r[2, 0]) / k, (r[2, 1] - r[1, 2]) / k)
    elif r[1, 1] > r[2, 2]:
        k = 2.0 * np.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2])
        q = ((r[0, 1] + r[1, 0]) / k, 0.25 * k, (r[1, 2] + r[2, 1]) / k, (r[0, 2] - r[2, 0]) / k)
    else:
        k = 2.0 * np.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1])
        q = ((r[0, 2] + r[2, 0]) / k, (r[1, 2] + r[2, 1]) / k, 0.25 * k, (r[1, 0] - r[0, 1]) / k)
    return tuple(map(float, t)), tuple(map(float, q)), tuple(map(float, s))


def _frozen(array: np.ndarray | None) -> np.ndarray | None:
    if array is not None:
        array.flags.writeable = False
    return array


# --- data model ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Texture:
    """A decoded base-colour image and how to sample it."""

    image: np.ndarray  # H x W x 4 uint8 RGBA, sRGB-encoded, top row first
    wrap_s: int = REPEAT  # GL wrap enum as stored in the glTF sampler
    wrap_t: int = REPEAT
    texcoord: int = 0  # which TEXCOORD_n set it reads (only 0 is rendered)

    def __post_init__(self) -> None:
        _frozen(self.image)


class OutlineMode(StrEnum):
    """How an MToon outline's width is measured (VRM 1.0 ``outlineWidthMode``)."""

    NONE = "none"
    WORLD = "worldCoordinates"  # metres, pushed out along the normal
    SCREEN = "screenCoordinates"  # a fraction of the frame height, constant on screen


@dataclass(frozen=True, slots=True, eq=False)
class Material:
    """The metallic-roughness material subset the renderer uses. Defaults are glTF's."""

    name: str = ""
    base_color_factor: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)  # linear RGBA
    base_color_texture: Texture | None = None  # None: white
    metallic: float = 1.0
    roughness: float = 1.0
    alpha_mode: str = "OPAQUE"  # OPAQUE, MASK or BLEND
    alpha_cutoff: float = 0.5
    double_sided: bool = False
    emissive: tuple[float, float, float] = (0.0, 0.0, 0.0)  # linear RGB factor (x emissive_strength)
    emissive_texture: Texture | None = None  # glTF: emitted = emissive factor x this texture
    index: int = -1  # position in the file's material list (VRM binds refer to it); -1: default material
    uv_offset: tuple[float, float] = (0.0, 0.0)  # KHR_texture_transform of the base colour texture
    uv_scale: tuple[float, float] = (1.0, 1.0)
    # Shading model: "pbr" (metallic-roughness), "unlit" (KHR_materials_unlit) or "mtoon" (VRM toon).
    shading: str = "pbr"
    # MToon parameters (VRMC_materials_mtoon names; VRM 0.x values are converted on import).
    shade_color: tuple[float, float, float] = (0.0, 0.0, 0.0)  # linear RGB of the shaded side
    shade_texture: Texture | None = None  # multiplied into shade_color (VRM 1.0 shadeMultiplyTexture, 0.x _ShadeTexture)
    shading_toony: float = 0.9  # 0: smooth Lambert, 1: hard two-tone step
    shading_shift: float = 0.0  # moves the light/shade border (-1..1)
    rim_color: tuple[float, float, float] = (0.0, 0.0, 0.0)  # parametric rim, linear RGB
    rim_fresnel_power: float = 5.0
    rim_lift: float = 0.0
    rim_lighting_mix: float = 1.0  # 0: the rim ignores the lighting, 1: it is lit like the surface
    matcap_texture: Texture | None = None  # added to the rim, looked up by the view-space normal
    matcap_factor: tuple[float, float, float] = (1.0, 1.0, 1.0)
    outline_mode: OutlineMode = OutlineMode.NONE
    outline_width: float = 0.0  # metres (WORLD) or fraction of the frame height (SCREEN); 0: no outline
    outline_color: tuple[float, float, float] = (0.0, 0.0, 0.0)  # linear RGB


@dataclass(frozen=True, slots=True, eq=False)
class Primitive:
    """One triangle list with its vertex data, material and morph target deltas.

    ``morph_positions``/``morph_normals`` are ``T x N x 3`` (``T`` may be 0); target ``i`` is named
    by the owning ``Mesh.target_names[i]``.
    """

    positions: np.ndarray  # N x 3 float32
    normals: np.ndarray  # N x 3 float32, unit length
    indices: np.ndarray  # 3M uint32, counter-clockwise front faces
    material: Material
    morph_positions: np.ndarray  # T x N x 3 float32
    morph_normals: np.ndarray  # T x N x 3 float32 (zeros where the file has none)
    uv0: np.ndarray | None = None  # N x 2 float32
    colors: np.ndarray | None = None  # N x 4 float32 linear RGBA (COLOR_0)
    joints: np.ndarray | None = None  # N x 4 uint16 indices into the skin's joint list
    weights: np.ndarray | None = None  # N x 4 float32, rows sum to 1

    def __post_init__(self) -> None:
        for name in ("positions", "normals", "indices", "morph_positions", "morph_normals",
                     "uv0", "colors", "joints", "weights"):
            _frozen(getattr(self, name))

    @property
    def vertex_count(self) -> int:
        return int(self.positions.shape[0])

    @property
    def triangle_count(self) -> int:
        return int(self.indices.shape[0] // 3)

    @property
    def target_count(self) -> int:
        return int(self.morph_positions.shape[0])


@dataclass(frozen=True, slots=True, eq=False)
class Mesh:
    name: str
    primitives: tuple[Primitive, ...]
    target_names: tuple[str, ...] = ()  # one per morph target, shared by all primitives
    default_weights: tuple[float, ...] = ()  # mesh.weights from the file (unused targets: 0)


@dataclass(frozen=True, slots=True)
class Node:
    """A scene node with its rest (bind-time) local transform."""

    name: str
    parent: int | None = None
    children: tuple[int, ...] = ()
    translation: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rotation: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)  # xyzw
    scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
    mesh: int | None = None  # index into Avatar.meshes this node instantiates
    skin: int | None = None  # index into Avatar.skins used with that mesh

    def local_matrix(self, extra_rotation: np.ndarray | tuple | None = None) -> np.ndarray:
        """Local 4x4 matrix; ``extra_rotation`` (xyzw) is applied on top of the rest rotation."""
        rotation = self.rotation if extra_rotation is None else quat_multiply(self.rotation, extra_rotation)
        return trs_matrix(self.translation, rotation, self.scale)


@dataclass(frozen=True, slots=True, eq=False)
class Skin:
    name: str
    joints: tuple[int, ...]  # node indices
    inverse_bind_matrices: np.ndarray  # J x 4 x 4 float64 (column-vector convention)

    def __post_init__(self) -> None:
        _frozen(self.inverse_bind_matrices)


@dataclass(frozen=True, slots=True)
class MeshInstance:
    """A node that draws a mesh: the renderer draws one of these per primitive."""

    node: int
    mesh: int
    skin: int | None


@dataclass(frozen=True, eq=False)
class Avatar:
    """A loaded avatar. Immutable and thread-safe to read; derived values are computed once.

    ``facing`` is +1 when the model faces +Z (glTF, VRM 1.0) and -1 when it faces -Z (VRM 0.x):
    world space then turns the model 180 degrees about Y so it always faces the camera on +Z.
    Use ``dataclasses.replace(avatar, facing=-1)`` to change it.
    """

    nodes: tuple[Node, ...]
    meshes: tuple[Mesh, ...]
    skins: tuple[Skin, ...]
    scene_roots: tuple[int, ...]
    source: Path | None = None
    facing: int = 1
    extras: Mapping[str, object] = field(default_factory=dict)  # format-specific data (e.g. VRM)
    vrm: VrmInfo | None = None  # VRM 0.x / 1.0 data (expressions, humanoid, lookAt, meta); None for glTF
    spring_bones: SpringBones | None = None  # VRMC_springBone / VRM 0.x secondaryAnimation; None: none

    # --- lookup ---

    @cached_property
    def morph_target_names(self) -> tuple[str, ...]:
        """All morph target names over all meshes, in first-seen order, without duplicates."""
        return tuple(dict.fromkeys(name for mesh in self.meshes for name in mesh.target_names))

    @cached_property
    def triangle_count(self) -> int:
        return sum(self.meshes[i.mesh].primitives[p].triangle_count
                   for i in self.instances for p in range(len(self.meshes[i.mesh].primitives)))

    def find_node(self, name_or_candidates: str | Iterable[str]) -> int | None:
        """Index of the first node whose name matches (case-insensitive) a candidate, in candidate order."""
        candidates = [name_or_candidates] if isinstance(name_or_candidates, str) else list(name_or_candidates)
        by_name: dict[str, int] = {}
        for index, node in enumerate(self.nodes):
            by_name.setdefault(node.name.lower(), index)
        for candidate in candidates:
            if candidate.lower() in by_name:
                return by_name[candidate.lower()]
        return None

    def human_bone(self, bone: str) -> int | None:
        """Node index of a VRM humanoid bone (``"head"``, ``"leftEye"``...), or None."""
        if self.vrm is None:
            return None
        index = self.vrm.humanoid.get(bone)
        return index if index is not None and 0 <= index < len(self.nodes) else None

    @cached_property
    def head_node(self) -> int | None:
        """The head node: the VRM humanoid head, a known head name, else the shallowest node whose
        name contains 'head'."""
        humanoid = self.human_bone("head")
        if humanoid is not None:
            return humanoid
        found = self.find_node(HEAD_NODE_CANDIDATES)
        if found is not None:
            return found
        named = [i for i, n in enumerate(self.nodes) if "head" in n.name.lower()]
        return min(named, key=lambda i: self._depths[i]) if named else None

    # --- scene structure ---

    @cached_property
    def _depths(self) -> np.ndarray:
        depths = np.zeros(len(self.nodes), dtype=np.int32)
        for index in self.dfs_order:
            parent = self.nodes[index].parent
            depths[index] = 0 if parent is None else depths[parent] + 1
        return depths

    @cached_property
    def dfs_order(self) -> tuple[int, ...]:
        """Nodes of the scene in depth-first order: parents before children, subtrees contiguous."""
        order: list[int] = []
        stack = list(reversed(self.scene_roots))
        seen: set[int] = set()
        while stack:
            index = stack.pop()
            if index in seen:
                continue
            seen.add(index)
            order.append(index)
            stack.extend(reversed(self.nodes[index].children))
        return tuple(order)

    @cached_property
    def _dfs_position(self) -> dict[int, int]:
        return {node: i for i, node in enumerate(self.dfs_order)}

    @cached_property
    def _subtree_end(self) -> dict[int, int]:
        """For each node, the position in ``dfs_order`` one past the end of its subtree."""
        end = {node: i + 1 for i, node in enumerate(self.dfs_order)}
        for node in reversed(self.dfs_order):
            parent = self.nodes[node].parent
            if parent is not None and parent in end:
                end[parent] = max(end[parent], end[node])
        return end

    def _subtree(self, node: int) -> set[int]:
        """``node`` and every node below it."""
        start = self._dfs_position.get(node, len(self.dfs_order))
        return set(self.dfs_order[start:self._subtree_end.get(node, start)])

    @cached_property
    def instances(self) -> tuple[MeshInstance, ...]:
        """Every mesh-drawing node reachable from the scene roots, in depth-first order."""
        return tuple(MeshInstance(i, self.nodes[i].mesh, self.nodes[i].skin)
                     for i in self.dfs_order if self.nodes[i].mesh is not None)

    @cached_property
    def root_matrix(self) -> np.ndarray:
        """The world transform above the scene roots (a 180-degree turn when ``facing`` is -1)."""
        m = np.eye(4)
        if self.facing < 0:
            m[0, 0] = m[2, 2] = -1.0
        return m

    # --- transforms ---

    @cached_property
    def rest_world_matrices(self) -> np.ndarray:
        """``len(nodes) x 4 x 4`` world matrices in the rest pose (unreachable nodes: identity)."""
        return self._compute_world(np.tile(np.eye(4), (len(self.nodes), 1, 1)), {}, self.dfs_order)

    def world_matrices(self, rotations: Mapping[int, np.ndarray | tuple]) -> np.ndarray:
        """World matrices with extra local rotations (node index -> xyzw) on top of the rest pose.

        Only the subtrees under rotated nodes are recomputed; the rest pose is reused.
        """
        world = self.rest_world_matrices.copy()
        if not rotations:
            return world
        end, position = self._subtree_end, self._dfs_position
        dirty = np.zeros(len(self.dfs_order), dtype=bool)
        for node in rotations:
            if node in position:
                dirty[position[node]:end[node]] = True
        order = [self.dfs_order[i] for i in np.flatnonzero(dirty)]
        return self._compute_world(world, rotations, order)

    @cached_property
    def _rest_local(self) -> np.ndarray:
        return np.stack([node.local_matrix() for node in self.nodes]) if self.nodes else np.zeros((0, 4, 4))

    def _compute_world(self, world: np.ndarray, rotations: Mapping[int, object], order: Iterable[int]) -> np.ndarray:
        rest_local = self._rest_local
        for index in order:
            node = self.nodes[index]
            rotation = rotations.get(index)
            local = rest_local[index] if rotation is None else node.local_matrix(rotation)
            parent = self.root_matrix if node.parent is None else world[node.parent]
            world[index] = parent @ local
        return world

    def joint_matrices(self, skin: int, world: np.ndarray) -> np.ndarray:
        """``J x 4 x 4`` skinning matrices (joint world @ inverse bind) for the given world matrices."""
        s = self.skins[skin]
        return world[list(s.joints)] @ s.inverse_bind_matrices

    # --- bounds for framing ---

    def _face_nodes(self) -> set[int]:
        """The head node and the nodes under it, less hair/headwear nodes and everything under those."""
        head = self.head_node
        if head is None:
            return set()
        nodes: set[int] = set()
        stack = [head]
        while stack:
            index = stack.pop()
            if index != head and is_hair_name(self.nodes[index].name):
                continue
            nodes.add(index)
            stack.extend(self.nodes[index].children)
        return nodes

    @cached_property
    def _rest_vertices(self) -> tuple[np.ndarray, np.ndarray]:
        """All drawn vertices in world space (rest pose) and a mask of those belonging to the face:
        bound (weight >= 0.5) to the head bone or a face bone under it, not part of a hair mesh."""
        world = self.rest_world_matrices
        head_nodes = self._face_nodes()
        if self.spring_bones is not None:  # swinging hair and accessories are not the face
            for joint in self.spring_bones.joints:
                head_nodes -= self._subtree(joint.node)
        points, masks = [], []
        for inst in self.instances:
            hair_mesh = is_hair_name(self.meshes[inst.mesh].name) or is_hair_name(self.nodes[inst.node].name)
            for prim in self.meshes[inst.mesh].primitives:
                homogeneous = np.c_[prim.positions.astype(np.float64), np.ones(prim.vertex_count)]
                if inst.skin is not None and prim.joints is not None and prim.weights is not None:
                    skin = self.skins[inst.skin]
                    joint_mats = self.joint_matrices(inst.skin, world)
                    blended = np.einsum("nk,nkij->nij", prim.weights.astype(np.float64), joint_mats[prim.joints])
                    pts = np.einsum("nij,nj->ni", blended, homogeneous)[:, :3]
                    in_head = np.array([j in head_nodes for j in skin.joints])
                    mask = (prim.weights * in_head[prim.joints]).sum(axis=1) >= 0.5
                else:
                    pts = (homogeneous @ world[inst.node].T)[:, :3]
                    mask = np.full(prim.vertex_count, inst.node in head_nodes)
                if hair_mesh or is_hair_name(prim.material.name):
                    mask = np.zeros(prim.vertex_count, dtype=bool)
                points.append(pts)
                masks.append(mask)
        if not points:
            return np.zeros((0, 3)), np.zeros(0, dtype=bool)
        return np.concatenate(points), np.concatenate(masks)

    def eye_height(self) -> float | None:
        """World height of the eyes in the rest pose (the eye bones' mean), when the rig has eye
        bones inside the face box; None otherwise (framing then assumes mid-face)."""
        world = self.rest_world_matrices
        heights = []
        for bone, candidates in (("leftEye", LEFT_EYE_CANDIDATES), ("rightEye", RIGHT_EYE_CANDIDATES)):
            index = self.human_bone(bone)
            index = self.find_node(candidates) if index is None else index
            if index is not None:
                heights.append(float(world[index][1, 3]))
        if not heights:
            return None
        lo, hi = self.head_bounds()
        height = sum(heights) / len(heights)
        return height if lo[1] < height < hi[1] else None

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """World-space axis-aligned box ``(min, max)`` of the whole avatar in the rest pose."""
        points, _ = self._rest_vertices
        if len(points) == 0:
            return np.full(3, -0.5), np.full(3, 0.5)
        return points.min(axis=0), points.max(axis=0)

    def head_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """World-space box of the face, chin to crown, for framing: the vertices bound (weight >= 0.5)
        to the head bone or a face bone under it, without hair meshes, hair bones, spring bones or headwear.

        Hair that is bound to the head bone itself under another name (a ponytail or long hair in
        the head mesh) would still pull the box down to the waist, so: the box keeps only what lies
        within a head's reach of the head bone (a chin is never further below the bone than half
        the crown's height above it), and its bottom is the chin, the lowest point in front of the
        head bone (hair hangs behind). Falls back to the top 25% of the model's height when there
        is no head node or it owns no vertices.
        """
        points, mask = self._rest_vertices
        if mask.any():
            face = points[mask]
            head = self.head_node
            if head is not None:
                pivot = self.rest_world_matrices[head][:3, 3]
                top = float(face[:, 1].max())
                floor = pivot[1] - 0.5 * max(top - float(pivot[1]), 0.0)
                reach = 0.75 * (top - floor)
                near = (face[:, 1] >= floor - 1e-6) & (np.abs(face[:, 0] - pivot[0]) <= reach) & (
                    np.abs(face[:, 2] - pivot[2]) <= reach)
                front = near & (face[:, 2] >= pivot[2])
                if front.any():
                    near &= face[:, 1] >= face[front, 1].min()
                if near.any():
                    face = face[near]
            return face.min(axis=0), face.max(axis=0)
        low, high = self.bounds()
        if len(points) == 0:
            return low, high
        top = points[points[:, 1] >= high[1] - 0.25 * (high[1] - low[1])]
        return top.min(axis=0), top.max(axis=0)
