"""Spring bones: VRM secondary motion (hair, ears, skirts, accessories) that follows the head.

The data (``SpringBones``) comes from ``VRMC_springBone`` (VRM 1.0, ``loading/vrm1.py``) or
``secondaryAnimation`` (VRM 0.x, ``loading/vrm0.py``). ``SpringBoneRig`` simulates it the way
UniVRM and three-vrm do: each joint keeps its tail point (where its child sits) and moves it by
Verlet integration: the previous motion damped by ``drag``, a pull back toward the rest direction
under the current parent (``stiffness``) and ``gravity``; the tail is then kept at the bone's
length, pushed out of sphere and capsule colliders, and the joint turned to point at it. Tails live
in the joint's ``center`` node space when it has one (so walking does not drag the hair), else in
world space.

The rig steps at a fixed 60 Hz with as many sub-steps as the output frame spans (two at 30 fps,
one at 60), so the motion is the same at either rate and a long frame cannot make it explode
(at most ``MAX_STEPS`` per frame). Joints are processed level by level (all chain roots, then
their children...), vectorised over every chain at once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from engine.avatar.model import Avatar
from engine.packets import AvatarPose

STEP_S = 1.0 / 60.0
MAX_STEPS = 4  # per frame: a stall is not replayed in full
VRM0_TAIL_LENGTH = 0.07  # metres: VRM 0.x chains end in a virtual tail this far along the last bone


@dataclass(frozen=True, slots=True)
class SpringCollider:
    """A sphere (``tail`` None) or capsule from ``offset`` to ``tail``, in ``node``'s space."""

    node: int
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    radius: float = 0.0
    tail: tuple[float, float, float] | None = None


@dataclass(frozen=True, slots=True)
class SpringJoint:
    """One simulated bone: ``node`` turns so that its tail (``child``'s origin) swings freely."""

    node: int
    child: int | None  # None: a virtual tail VRM0_TAIL_LENGTH along the bone (VRM 0.x chain ends)
    stiffness: float = 1.0
    drag: float = 0.4
    gravity_power: float = 0.0
    gravity_dir: tuple[float, float, float] = (0.0, -1.0, 0.0)
    hit_radius: float = 0.0
    colliders: tuple[int, ...] = ()  # indices into SpringBones.colliders
    center: int | None = None


@dataclass(frozen=True, slots=True)
class SpringBones:
    joints: tuple[SpringJoint, ...]
    colliders: tuple[SpringCollider, ...] = ()


def _norm(v: np.ndarray) -> np.ndarray:
    """Lengths along the last axis (einsum: cheaper than np.linalg.norm on small arrays)."""
    return np.sqrt(np.einsum("...i,...i->...", v, v))


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross products along the last axis (np.cross costs ~10x more on small arrays)."""
    return np.stack([a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1], a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
                     a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]], axis=-1)


def _normalised(v: np.ndarray) -> np.ndarray:
    length = _norm(v)[..., None]
    return v / np.where(length > 1e-12, length, 1.0)


def _quat_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``N x 4`` (xyzw) rotations taking unit vectors ``a`` to ``b``."""
    dot = np.einsum("ni,ni->n", a, b)
    q = np.concatenate([_cross(a, b), (1.0 + dot)[:, None]], axis=1)
    opposite = dot < -0.999999
    if opposite.any():  # half turn about any axis perpendicular to a
        axis = np.cross(a[opposite], [1.0, 0.0, 0.0])
        small = _norm(axis) < 1e-6
        axis[small] = np.cross(a[opposite][small], [0.0, 1.0, 0.0])
        q[opposite] = np.concatenate([_normalised(axis), np.zeros((len(axis), 1))], axis=1)
    return _normalised(q)


def _quat_matrices(q: np.ndarray) -> np.ndarray:
    """``N x 4 x 4`` rotation matrices of ``N x 4`` unit quaternions."""
    x, y, z, w = q.T
    m = np.zeros((len(q), 4, 4))
    m[:, :3, :3] = np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
                             2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
                             2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], axis=1).reshape(-1, 3, 3)
    m[:, 3, 3] = 1.0
    return m


def _apply(m: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Points ``N x 3`` through matrices ``N x 4 x 4``."""
    return np.einsum("nij,nj->ni", m[:, :3, :3], p) + m[:, :3, 3]


class _Level:
    """The joints at one depth of the spring forest, as arrays."""

    def __init__(self, avatar: Avatar, springs: SpringBones, members: list[int], slot: dict[int, int]) -> None:
        joints = [springs.joints[i] for i in members]
        nodes = avatar.nodes
        self.nodes = np.array([j.node for j in joints])
        self.names = [nodes[j.node].name for j in joints]
        self.parents = np.array([-1 if nodes[j.node].parent is None else nodes[j.node].parent for j in joints])
        # where the parent's updated world matrix is, when the parent is itself a spring joint
        self.parent_slot = np.array([slot.get(int(p), -1) for p in self.parents])
        self.slots = np.array([slot[j.node] for j in joints])
        self.local = np.stack([nodes[j.node].local_matrix() for j in joints])
        tails = []
        for j in joints:
            if j.child is not None:
                tails.append(np.asarray(nodes[j.child].translation, dtype=np.float64))
            else:
                tails.append(_normalised(np.asarray(nodes[j.node].translation, dtype=np.float64)) * VRM0_TAIL_LENGTH)
        self.tail_local = np.array(tails)
        self.axis = _normalised(self.tail_local)
        turn = avatar.root_matrix[:3, :3]  # gravity is given in the model's space
        self.stiffness = np.array([j.stiffness for j in joints])[:, None]
        self.inertia = 1.0 - np.clip([j.drag for j in joints], 0.0, 1.0)[:, None]
        self.gravity = np.array([turn @ np.asarray(j.gravity_dir) * j.gravity_power for j in joints])
        self.hit = np.array([j.hit_radius for j in joints])
        self.centers = np.array([-1 if j.center is None else j.center for j in joints])
        self.touches = np.array([[k in j.colliders for k in range(len(springs.colliders))] for j in joints],
                                dtype=bool).reshape(len(joints), len(springs.colliders))
        self.length = np.zeros(len(joints))
        self.current = np.zeros((len(joints), 3))
        self.previous = np.zeros((len(joints), 3))


class SpringBoneRig:
    """Simulates an avatar's spring bones; ``apply`` adds their rotations to each frame's pose.

    Call from one thread (the render thread). ``reset`` puts every tail back at rest (done on
    construction: build a new rig when the avatar changes).
    """

    def __init__(self, avatar: Avatar, springs: SpringBones | None = None) -> None:
        self.avatar = avatar
        springs = springs if springs is not None else avatar.spring_bones
        self._springs = springs if springs is not None and springs.joints else None
        self._levels: list[_Level] = []
        self._names = {node.name.lower(): i for i, node in reversed(list(enumerate(avatar.nodes)))}
        self._t_last: float | None = None
        self._pending = 0.0
        if self._springs is None:
            return
        springs = self._springs
        index = {j.node: i for i, j in enumerate(springs.joints)}
        depth: dict[int, int] = {}
        for i, joint in enumerate(springs.joints):
            d, parent = 0, avatar.nodes[joint.node].parent
            while parent is not None and parent in index:
                d, parent = d + 1, avatar.nodes[parent].parent
            depth[i] = d
        slot = {j.node: i for i, j in enumerate(springs.joints)}
        for level in range(max(depth.values()) + 1):
            members = [i for i in range(len(springs.joints)) if depth[i] == level]
            self._levels.append(_Level(avatar, springs, members, slot))
        self._collider_nodes = np.array([c.node for c in springs.colliders], dtype=np.int64)
        self._collider_offset = np.array([c.offset for c in springs.colliders], dtype=np.float64).reshape(-1, 3)
        self._collider_tail = np.array([c.tail if c.tail is not None else c.offset for c in springs.colliders],
                                       dtype=np.float64).reshape(-1, 3)
        self._collider_radius = np.array([c.radius for c in springs.colliders], dtype=np.float64)
        self.reset()

    @property
    def active(self) -> bool:
        return self._springs is not None

    def reset(self, rotations: Mapping[int, Sequence[float]] | None = None) -> None:
        """Put every tail where the (posed) skeleton holds it, at rest."""
        if self._springs is None:
            return
        world = self.avatar.world_matrices(rotations or {})
        for level in self._levels:
            joint_world = world[level.nodes]
            to_center = self._to_center(level, world)
            if to_center is not None:
                joint_world = to_center @ joint_world
            position = joint_world[:, :3, 3]
            tail = _apply(joint_world, level.tail_local)
            level.length = _norm(tail - position)
            level.current, level.previous = tail.copy(), tail.copy()
        self._t_last, self._pending = None, 0.0

    def apply(self, pose: AvatarPose, t: float) -> AvatarPose:
        """``pose`` with the spring joints' rotations added, after simulating up to time ``t`` (s)."""
        if self._springs is None:
            return pose
        steps = 0
        if self._t_last is not None:
            self._pending = min(self._pending + max(t - self._t_last, 0.0), MAX_STEPS * STEP_S)
            steps = int(self._pending / STEP_S + 1e-9)
            self._pending -= steps * STEP_S
        self._t_last = t
        rotations = {}
        for name, quat in pose.node_rotations.items():
            node = self._names.get(name.lower())
            if node is not None:
                rotations[node] = quat
        world = self.avatar.world_matrices(rotations)
        for _ in range(steps - 1):
            self._step(world, STEP_S, rotations_by_name=False)
        result = self._step(world, STEP_S if steps else 0.0)  # none due: only re-aim the joints at their tails
        return dataclasses.replace(pose, node_rotations={**pose.node_rotations, **result})

    def _to_center(self, level: _Level, world: np.ndarray) -> np.ndarray | None:
        """World -> center space per joint, or None when no joint of the level has a center."""
        has = level.centers >= 0
        if not has.any():
            return None
        to_center = np.tile(np.eye(4), (len(level.nodes), 1, 1))
        to_center[has] = np.linalg.inv(world[level.centers[has]])
        return to_center

    def _step(self, world: np.ndarray, dt: float,
              rotations_by_name: bool = True) -> dict[str, tuple[float, float, float, float]]:
        """Advance every tail by ``dt`` (0: only recompute the rotations); return the joints'
        rotations by node name (empty when ``rotations_by_name`` is False: an intermediate step)."""
        springs = self._springs
        assert springs is not None
        updated = np.zeros((len(springs.joints), 4, 4))
        colliders = world[self._collider_nodes]
        ends = np.stack([np.einsum("kij,kj->ki", colliders[:, :3, :3], points) + colliders[:, :3, 3]
                         for points in (self._collider_offset, self._collider_tail)], axis=1)
        out: dict[str, tuple[float, float, float, float]] = {}
        for level in self._levels:
            parent_world = np.where((level.parent_slot >= 0)[:, None, None], updated[level.parent_slot],
                                    world[np.maximum(level.parents, 0)])
            no_parent = level.parents < 0
            parent_world[no_parent] = self.avatar.root_matrix
            to_center = self._to_center(level, world)
            parent_c = parent_world if to_center is None else to_center @ parent_world
            initial_c = parent_c @ level.local  # the joint at rest under its current parent
            position = initial_c[:, :3, 3]
            if dt > 0.0:
                rest_dir = _normalised(_apply(initial_c, level.axis) - position)
                moved = (level.current + (level.current - level.previous) * level.inertia
                         + rest_dir * (level.stiffness * dt) + level.gravity * dt)
                moved = position + _normalised(moved - position) * level.length[:, None]
                if len(ends):
                    moved = self._collide(level, moved, position, ends, to_center)
                level.previous, level.current = level.current, moved
            # the tail in the rest joint's axes (direction only: a uniform scale does not matter)
            target = _normalised(np.einsum("nji,nj->ni", initial_c[:, :3, :3], level.current - position))
            q = _quat_between(level.axis, target)
            updated[level.slots] = parent_world @ level.local @ _quat_matrices(q)
            if rotations_by_name:
                out.update({name: tuple(map(float, quat)) for name, quat in zip(level.names, q)})
        return out

    def _collide(self, level: _Level, tail: np.ndarray, position: np.ndarray, ends: np.ndarray,
                 to_center: np.ndarray | None) -> np.ndarray:
        """Push tails out of their colliders (in order, as UniVRM does), keeping the bone length.

        ``ends`` are the colliders' segment ends in world space (``K x 2 x 3``; a sphere's are equal).
        """
        if to_center is None:
            a, b = ends[None, :, 0], ends[None, :, 1]
        else:
            a = np.einsum("nij,kj->nki", to_center[:, :3, :3], ends[:, 0]) + to_center[:, None, :3, 3]
            b = np.einsum("nij,kj->nki", to_center[:, :3, :3], ends[:, 1]) + to_center[:, None, :3, 3]
        reach = self._collider_radius[None, :] + level.hit[:, None]

        def distances(t: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            ab = b - a
            u = np.clip(np.einsum("...i,...i->...", t - a, ab) / np.maximum(np.einsum("...i,...i->...", ab, ab), 1e-12),
                        0.0, 1.0)
            away = t - (a + ab * u[..., None])
            return away, _norm(away)

        _, gap = distances(tail[:, None, :], a, b)
        hits = (gap < reach) & level.touches
        for k in np.flatnonzero(hits.any(axis=0)):  # only colliders something is inside, one after another
            ak, bk = a[:, k] if a.shape[0] > 1 else a[0, k], b[:, k] if b.shape[0] > 1 else b[0, k]
            away, length = distances(tail, ak, bk)
            depth = reach[:, k] - length
            inside = (depth > 0) & level.touches[:, k]
            if inside.any():
                tail[inside] += _normalised(away[inside]) * depth[inside, None]
                origin = position[inside]
                tail[inside] = origin + _normalised(tail[inside] - origin) * level.length[inside, None]
        return tail


__all__ = ["MAX_STEPS", "STEP_S", "SpringBoneRig", "SpringBones", "SpringCollider", "SpringJoint"]
