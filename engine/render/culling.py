"""Which primitives can be on screen this frame (conservative frustum culling).

A head-and-shoulders camera sees a fraction of a full-body VRoid avatar: legs, skirt and shoes are
below the frame, but a CPU rasteriser still transforms and clips every one of their vertices (on
one thread). Each primitive gets a box in its own space (bind space when skinned) that also holds
every morph target's reach and an outline margin; each frame the box's corners go through every
joint that moves the primitive (or its node's matrix), and the primitive is skipped when all of
those points lie outside one side of the view frustum. The test never hides something visible:
a skinned vertex is a weighted mix of its joints' transforms of a point in the box, so it lies in
the convex hull of the tested points.
"""

from __future__ import annotations

import numpy as np

from engine.avatar.model import Primitive

_MARGIN = 0.02  # metres around every box: outlines, normal smoothing, float error


def local_box(prim: Primitive, margin: float = _MARGIN) -> np.ndarray:
    """``8 x 4`` homogeneous corners of the primitive's box, morph targets included."""
    lo = prim.positions.min(axis=0).astype(np.float64) - margin
    hi = prim.positions.max(axis=0).astype(np.float64) + margin
    if prim.target_count:
        lo += np.minimum(prim.morph_positions.min(axis=1), 0.0).sum(axis=0)
        hi += np.maximum(prim.morph_positions.max(axis=1), 0.0).sum(axis=0)
    corners = np.array([[x, y, z, 1.0] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    return corners


def used_joints(prim: Primitive) -> np.ndarray:
    """Indices (into the skin's joint list) of the joints that carry weight in this primitive."""
    if prim.joints is None or prim.weights is None or not prim.vertex_count:
        return np.zeros(0, dtype=np.int64)
    return np.unique(prim.joints[prim.weights > 0]).astype(np.int64)


def on_screen_distance(corners: np.ndarray, transforms: np.ndarray, view_projection: np.ndarray) -> float | None:
    """``None`` when every corner under every transform (``J x 4 x 4``) is beyond one clip plane (off
    screen); else the points' mean distance in front of the camera (clip w), the order in which to
    draw opaque parts: nearest first, so that a CPU rasteriser's early depth test rejects what they
    hide before it is shaded."""
    clip = np.einsum("ij,njk,mk->nmi", view_projection, transforms, corners).reshape(-1, 4)
    x, y, z, w = clip.T
    if ((x < -w).all() or (x > w).all() or (y < -w).all() or (y > w).all()
            or (z < -w).all() or (z > w).all()):
        return None
    return float(w.mean())


__all__ = ["local_box", "on_screen_distance", "used_joints"]
