"""Camera maths: auto-framing an avatar like a webcam shot, and the view/projection matrices.

Pure numpy, no OpenGL. Matrices are 4x4 ``float64`` for column vectors (upload the transpose to
GLSL's column-major ``mat4``). The avatar faces +Z in world space; the camera sits on the +Z side
looking toward -Z, optionally orbited about the vertical axis through the framed point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.vocabulary.framing import FRAMINGS, Framing

# Webcam shots, in head heights (the face box of ``Avatar.head_bounds``, chin to crown, without
# hair): how tall the frame is, where the eye line sits (a fraction of the frame from the top) and
# the least width shown. Eyes sit at about half the head's height. Head-and-shoulders puts them
# inside the upper third, as a webcam shot does; upper body shows the waist and the hanging hands.
_SHOTS: dict[Framing, tuple[float, float, float]] = {
    Framing.CLOSE_UP: (1.6, 0.45, 1.2),
    Framing.HEAD_AND_SHOULDERS: (2.7, 0.31, 2.2),
    Framing.UPPER_BODY: (4.6, 0.22, 3.8),
}
_EYES_IN_HEAD = 0.5  # the eye line, as a fraction of the face box's height above the chin


@dataclass(frozen=True, slots=True)
class Camera:
    """A perspective camera. ``view_matrix``/``projection_matrix`` follow OpenGL conventions."""

    eye: tuple[float, float, float]
    target: tuple[float, float, float]
    fov_y_deg: float
    near: float
    far: float
    up: tuple[float, float, float] = (0.0, 1.0, 0.0)

    def view_matrix(self) -> np.ndarray:
        eye, target, up = (np.asarray(v, dtype=np.float64) for v in (self.eye, self.target, self.up))
        forward = target - eye
        forward /= np.linalg.norm(forward)
        side = np.cross(forward, up)
        side /= np.linalg.norm(side)
        true_up = np.cross(side, forward)
        m = np.eye(4)
        m[0, :3], m[1, :3], m[2, :3] = side, true_up, -forward
        m[:3, 3] = -m[:3, :3] @ eye
        return m

    def projection_matrix(self, aspect: float, *, flip_y: bool = False) -> np.ndarray:
        """Perspective projection; ``flip_y`` renders upside down so GL's bottom-up rows read top-first."""
        f = 1.0 / np.tan(np.radians(self.fov_y_deg) / 2.0)
        n, fa = self.near, self.far
        m = np.zeros((4, 4))
        m[0, 0] = f / aspect
        m[1, 1] = -f if flip_y else f
        m[2, 2] = (fa + n) / (n - fa)
        m[2, 3] = 2.0 * fa * n / (n - fa)
        m[3, 2] = -1.0
        return m


def frame_avatar(bounds: tuple[np.ndarray, np.ndarray], head_bounds: tuple[np.ndarray, np.ndarray], *,
                 aspect: float, fov_y_deg: float, framing: Framing | str = Framing.HEAD_AND_SHOULDERS,
                 yaw_deg: float = 0.0, eye_height: float | None = None) -> Camera:
    """Place a camera so the avatar fills the frame as ``framing`` asks, for any avatar size.

    ``bounds``/``head_bounds`` are world-space ``(min, max)`` boxes (``Avatar.bounds()`` and
    ``Avatar.head_bounds()``, the face without hair). ``yaw_deg`` orbits the camera about the
    vertical axis through the framed point (positive: toward the avatar's left, i.e. camera moves to +X).
    ``eye_height`` (``Avatar.eye_height()``) places the eye line; without it, mid-face.
    """
    if framing not in FRAMINGS:
        raise ValueError(f"unknown framing {framing!r}; choose one of {', '.join(FRAMINGS)}")
    lo, hi = (np.asarray(b, dtype=np.float64) for b in bounds)
    head_lo, head_hi = (np.asarray(b, dtype=np.float64) for b in head_bounds)
    head_centre = (head_lo + head_hi) / 2.0
    head_size = max(head_hi[1] - head_lo[1], 0.8 * max(head_hi[0] - head_lo[0], head_hi[2] - head_lo[2]), 1e-3)
    if framing == Framing.FULL_BODY:
        target = (lo + hi) / 2.0
        height = 1.08 * max(hi[1] - lo[1], 1e-3, (hi[0] - lo[0]) / aspect)
    else:
        heads, eyes_from_top, least_width = _SHOTS[Framing(framing)]
        height = max(heads, least_width / aspect) * head_size  # portrait frames: keep the width in view
        eye_line = eye_height if eye_height is not None else head_lo[1] + _EYES_IN_HEAD * (head_hi[1] - head_lo[1])
        target = np.array([head_centre[0], eye_line - (0.5 - eyes_from_top) * height, head_centre[2]])
    half_fov = np.radians(fov_y_deg) / 2.0
    distance = height / 2.0 / np.tan(half_fov)
    yaw = np.radians(yaw_deg)
    eye = target + distance * np.array([np.sin(yaw), 0.0, np.cos(yaw)])
    radius = float(np.linalg.norm(hi - lo)) / 2.0 + 1e-3
    centre_distance = float(np.linalg.norm(eye - (lo + hi) / 2.0))
    near = max(distance * 0.02, centre_distance - radius * 1.5)
    far = centre_distance + radius * 1.5
    return Camera(eye=tuple(map(float, eye)), target=tuple(map(float, target)), fov_y_deg=fov_y_deg,
                  near=float(near), far=float(far))
