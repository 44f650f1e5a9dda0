"""Head-pose maths shared by perception and rendering: Euler angles <-> rotation matrices.

Frames: the camera looks along -Z, +Y is up, and a subject facing the camera has its own left on
+X and its face pointing to +Z (MediaPipe's canonical face space, and glTF/VRM 1.0 avatar space).
A pose ``(yaw, pitch, roll)`` in degrees follows ``engine.types``: yaw > 0 turns to the subject's
left, pitch > 0 lifts the chin, roll > 0 tilts toward the subject's left shoulder. As matrices,
``R = Ry(yaw) @ Rx(-pitch) @ Rz(-roll)``.
"""

from __future__ import annotations

import math

import numpy as np


def _rx(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _ry(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rz(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def euler_to_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """3x3 rotation for a head pose in degrees."""
    return _ry(math.radians(yaw)) @ _rx(-math.radians(pitch)) @ _rz(-math.radians(roll))


def matrix_to_euler(rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from a 3x3 rotation; inverse of ``euler_to_matrix``."""
    r = np.asarray(rotation, dtype=np.float64)
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, r[1, 2]))))
    yaw = math.degrees(math.atan2(r[0, 2], r[2, 2]))
    roll = -math.degrees(math.atan2(r[1, 0], r[1, 1]))
    return yaw, pitch, roll


def euler_to_quaternion(yaw: float, pitch: float, roll: float) -> tuple[float, float, float, float]:
    """Unit quaternion (x, y, z, w), glTF order, for a head pose in degrees (same R as above).

    Closed form of q = qy(yaw) * qx(-pitch) * qz(-roll): no matrices on the per-frame path.
    """
    hy, hp, hr = math.radians(yaw) / 2, -math.radians(pitch) / 2, -math.radians(roll) / 2
    cy, sy, cp, sp, cr, sr = math.cos(hy), math.sin(hy), math.cos(hp), math.sin(hp), math.cos(hr), math.sin(hr)
    return (cy * sp * cr + sy * cp * sr,
            sy * cp * cr - cy * sp * sr,
            cy * cp * sr - sy * sp * cr,
            cy * cp * cr + sy * sp * sr)
