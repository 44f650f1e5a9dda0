"""Build avatarcam's default avatar, ``assets/default_avatar.glb``, and its looks, from numbers alone.

A friendly, stylised head-and-shoulders bust: skinned to a small skeleton, with the 52 ARKit
blendshapes and five identity shapes as glTF morph targets. Nothing here is random, downloaded or
hand-modelled: run it again and the same file comes out (numpy + pygltflib only)::

    python assets/make_default_avatar.py [--out PATH]

How it is built
---------------
* **Head skin**: one latitude/longitude grid (denser on the face) whose rays from the head centre are
  cast onto a smooth union of ellipsoids (cranium, face, jaw, chin, cheeks). Nose, lips, brow ridge
  and eye sockets are smooth displacement fields on top. The grid row through the mouth is split
  into an upper and a lower lip edge (a slit, closed at rest) and a mouth pocket is lofted inwards
  from the slit, so the skin, lips and mouth form one closed, consistently oriented surface.
* **Eyes**: spheres (sclera, iris with a per-vertex radial gradient and limbal ring, pupil, an
  emissive catch-light disc) on the ``LeftEye``/``RightEye`` nodes; eyelids are spherical shells
  just outside the eyeballs, parametrised by (yaw, pitch) so blinks and squints move their edges
  along the eyeball; the upper lids start with a lash row standing out from the lid edge, which
  follows the edge in every shape.
* **Teeth, tongue, brows** are small swept/ellipsoid parts in the same (morphing) mesh; hair, ears,
  neck, the shirt and glasses are in a second skinned mesh without morph targets.
* **Blendshapes** are displacement fields built from a few named regions (lip bands, mouth corners,
  brows, cheeks, jaw), the eyelid edge parametrisation and a jaw rotation about the hinge. Normal
  deltas are the recomputed normals of the displaced surface minus the rest normals. Targets are
  stored as sparse accessors (only the vertices a shape moves).
* **Identity shapes** (``IdentityMorph``: face and jaw width, nose width and length, eye spacing)
  follow the ARKit targets. A :class:`Style` with identity weights bakes them into the rest
  positions (every loader shows that), with the eye nodes moved along for the eye spacing; the
  targets stay in the file at weight 0.
* **Looks** (:class:`Style`): skin, hair and eye colours, a hair style (``HairStyle``) and glasses.
  The face is the same for every look, so it is built once per process (:func:`build_face`).

* **VRM 1.0**: the same document plus ``VRMC_vrm`` (meta/licence, humanoid, bone lookAt and the
  preset expressions of ``VRM_EXPRESSIONS``, each a mix of ARKit targets) is written beside the GLB.

Conventions: metres, +Y up, the avatar faces +Z, the subject's left is +X.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pygltflib as gl

from engine.paths import DEFAULT_AVATAR
from engine.vocabulary.arkit import ARKIT_BLENDSHAPES
from engine.vocabulary.looks import IDENTITY_MORPHS, HairStyle, IdentityMorph

DEFAULT_OUT = DEFAULT_AVATAR

# ----------------------------------------------------------------------------------------------
# Proportions (metres). The head is ~0.24 m tall, centred near y = 1.60.
# ----------------------------------------------------------------------------------------------
HEAD_CENTRE = np.array([0.0, 1.60, 0.0])
EYE_RADIUS = 0.0172
EYE_X, EYE_Y = 0.0345, 1.600
EYE_PROTRUSION = 0.0046          # how far the eyeball's front stands out of the skin
LID_GAP_UPPER, LID_GAP_LOWER = 0.0011, 0.0008   # eyelid shell radius minus eyeball radius
MOUTH_Y = 1.524
JAW_HINGE = np.array([0.0, 1.590, -0.015])
JAW_OPEN_DEG = 15.0
JAW_OPEN_SLIDE = np.array([0.0, -0.003, 0.007])   # the jaw also glides forward as it opens

JOINT_POSITIONS: dict[str, tuple[float, float, float]] = {
    "Root": (0.0, 0.0, 0.0),
    "Hips": (0.0, 0.95, -0.01),
    "Spine": (0.0, 1.12, -0.015),
    "Chest": (0.0, 1.30, -0.02),
    "Neck": (0.0, 1.43, -0.022),
    "Head": (0.0, 1.535, -0.012),
    # the ponytail's spring-bone chain (VRMC_springBone): short, so it stays behind the head and neck
    "Ponytail1": (0.0, 1.63, -0.115),
    "Ponytail2": (0.0, 1.575, -0.14),
    "Ponytail3": (0.0, 1.52, -0.15),
    "PonytailTip": (0.0, 1.465, -0.15),
}
PONYTAIL = ("Ponytail1", "Ponytail2", "Ponytail3", "PonytailTip")
SKIN_JOINTS = ("Chest", "Neck", "Head", *PONYTAIL[:-1])
CHEST, NECK, HEAD = range(3)


RGB = tuple[float, float, float]


def srgb(colour: str | RGB) -> tuple[float, float, float, float]:
    """``#RRGGBB`` or (r, g, b) in 0..1 (sRGB) as a linear RGBA tuple, as glTF's baseColorFactor wants."""
    if isinstance(colour, str):
        c = np.array([int(colour[i:i + 2], 16) / 255.0 for i in (1, 3, 5)])
    else:
        c = np.clip(np.asarray(colour, dtype=np.float64), 0.0, 1.0)
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return (*[round(float(v), 4) for v in lin], 1.0)


# name -> (colour, roughness, double sided)
MATERIALS: dict[str, tuple[str, float, bool]] = {
    "Skin": ("#F3C6A5", 0.6, False),
    "Lips": ("#D97F78", 0.4, False),
    "Lid": ("#E3AE95", 0.7, False),      # a touch darker and rosier than the skin: a closed eye reads as a lid
    "Mouth": ("#5E1F26", 0.8, True),     # the pocket folds when the jaw opens: draw both sides
    "Teeth": ("#F6F3EC", 0.3, False),
    "Tongue": ("#D46F76", 0.5, False),
    "Brows": ("#4A2C1C", 0.8, False),
    "Lashes": ("#1E130E", 0.7, True),     # the lash flap is seen from both sides
    "Hair": ("#4A2A1B", 0.5, False),
    "Shirt": ("#3C7FB0", 0.85, False),
    "Collar": ("#F2EEE6", 0.8, False),
    "Sclera": ("#FAF8F5", 0.25, False),
    "Iris": ("#FFFFFF", 0.15, False),      # coloured per vertex: IRIS_INNER at the pupil, IRIS_OUTER at the limbus
    "Pupil": ("#0B0A0C", 0.15, False),
    "CatchLight": ("#FFFFFF", 0.3, False),
    "Glasses": ("#23201F", 0.35, False),  # only in looks with glasses
}
IRIS_INNER, IRIS_OUTER, LIMBAL_RING = "#B07A3E", "#6A4222", "#2A1A10"   # warm hazel, dark limbal ring
CATCH_LIGHT_EMISSIVE = (0.9, 0.9, 0.9)


@dataclass(frozen=True)
class Style:
    """One look of the generated avatar. Colours are sRGB 0..1; ``None`` keeps the default avatar's.
    ``identity``: ``IdentityMorph`` name -> weight in [-1, 1], baked into the rest shape."""

    skin: RGB | None = None
    hair: RGB | None = None
    eyes: RGB | None = None
    shirt: RGB | None = None
    hair_style: HairStyle = HairStyle.PONYTAIL
    glasses: bool = False
    identity: Mapping[str, float] = field(default_factory=dict)


def material_colours(style: Style) -> dict[str, tuple[float, float, float, float]]:
    """Linear RGBA base colour of every material the look uses. The lids keep their relation to the
    skin (a touch darker and rosier) and the brows follow the hair."""
    colours = {name: srgb(hex_colour) for name, (hex_colour, _, _) in MATERIALS.items()}
    if not style.glasses:
        del colours["Glasses"]

    def scaled(base: tuple, like: str, was: tuple) -> tuple[float, float, float, float]:
        ratio = np.asarray(colours[like][:3]) / np.maximum(np.asarray(was[:3]), 1e-4)
        return (*[round(float(v), 4) for v in np.clip(np.asarray(base[:3]) * ratio, 0.0, 1.0)], 1.0)

    if style.skin is not None:
        skin = srgb(style.skin)
        colours["Lid"] = scaled(skin, "Lid", colours["Skin"])
        colours["Skin"] = skin
    if style.hair is not None:
        hair = srgb(style.hair)
        colours["Brows"] = scaled(hair, "Brows", colours["Hair"])
        colours["Hair"] = hair
    if style.shirt is not None:
        colours["Shirt"] = srgb(style.shirt)
    return colours


def iris_colours(style: Style) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear RGB of the iris at the pupil, at the limbus and of the limbal ring. A look's eye
    colour is the limbus colour; the other two keep the default's relation to it."""
    inner, outer, ring = (np.asarray(srgb(c)[:3]) for c in (IRIS_INNER, IRIS_OUTER, LIMBAL_RING))
    if style.eyes is None:
        return inner, outer, ring
    eye = np.asarray(srgb(style.eyes)[:3])
    return np.clip(eye * inner / outer, 0.0, 1.0), eye, np.clip(eye * ring / outer, 0.0, 1.0)


# ----------------------------------------------------------------------------------------------
# Small numeric helpers
# ----------------------------------------------------------------------------------------------
def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    """Hermite ramp from 0 at ``edge0`` to 1 at ``edge1`` (either order)."""
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def gauss(d: np.ndarray) -> np.ndarray:
    """exp(-d^2/2), cut to exactly zero beyond 3.5 sigma so morph targets stay sparse."""
    return np.where(np.abs(d) < 3.5, np.exp(-0.5 * d * d), 0.0)


def normalize(v: np.ndarray) -> np.ndarray:
    """Unit vectors along the last axis (zero vectors stay zero)."""
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 1e-12, n, 1.0)


def rot_x(deg: float) -> np.ndarray:
    """Rotation matrix about +X (positive angles move +Z points down)."""
    a = np.radians(deg)
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def vertex_normals(pos: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Area-weighted smooth vertex normals."""
    fn = np.cross(pos[tris[:, 1]] - pos[tris[:, 0]], pos[tris[:, 2]] - pos[tris[:, 0]])
    acc = np.zeros_like(pos)
    for k in range(3):
        np.add.at(acc, tris[:, k], fn)
    return normalize(acc)


def grid_triangles(rows: int, cols: int, wrap: bool) -> np.ndarray:
    """Triangles of a rows x cols vertex grid (row-major), outward when rows run down and columns
    run toward +X on the front. ``wrap`` joins the last column to the first."""
    i, j = np.meshgrid(np.arange(rows - 1), np.arange(cols if wrap else cols - 1), indexing="ij")
    a = i * cols + j
    b = (i + 1) * cols + j
    c = i * cols + (j + 1) % cols
    d = (i + 1) * cols + (j + 1) % cols
    return np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3),
                           np.stack([c, b, d], -1).reshape(-1, 3)])


def orient_outward(pos: np.ndarray, tris: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Flip the winding of a roughly star-shaped part if most faces point toward ``centre``."""
    fn = np.cross(pos[tris[:, 1]] - pos[tris[:, 0]], pos[tris[:, 2]] - pos[tris[:, 0]])
    outward = np.einsum("ij,ij->i", fn, pos[tris].mean(axis=1) - centre)
    return tris if np.sum(outward) >= 0 else tris[:, ::-1].copy()


def ellipsoid_grid(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit sphere as a (rows x cols) grid plus two pole vertices; returns (points, triangles)."""
    phi = np.linspace(0, np.pi, rows + 2)[1:-1]
    theta = np.linspace(-np.pi, np.pi, cols, endpoint=False)
    ph, th = np.meshgrid(phi, theta, indexing="ij")
    pts = np.stack([np.sin(ph) * np.sin(th), np.cos(ph), np.sin(ph) * np.cos(th)], -1).reshape(-1, 3)
    tris = [grid_triangles(rows, cols, wrap=True)]
    top, bottom = rows * cols, rows * cols + 1
    j = np.arange(cols)
    tris.append(np.stack([np.full(cols, top), j, (j + 1) % cols], -1))
    last = (rows - 1) * cols
    tris.append(np.stack([np.full(cols, bottom), last + (j + 1) % cols, last + j], -1))
    pts = np.concatenate([pts, [[0, 1, 0], [0, -1, 0]]])
    return pts, np.concatenate(tris)


# ----------------------------------------------------------------------------------------------
# Head shape: smooth union of ellipsoids, ray-cast from the head centre, plus feature fields
# ----------------------------------------------------------------------------------------------
HEAD_BLOBS: tuple[tuple[tuple[float, float, float], tuple[float, float, float]], ...] = (
    ((0.0, 1.632, -0.010), (0.078, 0.094, 0.098)),    # cranium
    ((0.0, 1.580, 0.020), (0.071, 0.071, 0.073)),     # face mass
    ((0.0, 1.534, 0.020), (0.058, 0.042, 0.062)),     # jaw
    ((0.0, 1.536, 0.045), (0.033, 0.026, 0.050)),     # muzzle
    ((0.0, 1.503, 0.055), (0.023, 0.015, 0.023)),     # chin
    ((0.037, 1.562, 0.045), (0.033, 0.031, 0.037)),   # cheeks
    ((-0.037, 1.562, 0.045), (0.033, 0.031, 0.037)),
)
HEAD_BLEND = 0.016


def sdf_ellipsoid(p: np.ndarray, centre: tuple, radii: tuple) -> np.ndarray:
    """Approximate signed distance to an ellipsoid (exact on its surface)."""
    q = (p - np.asarray(centre)) / np.asarray(radii)
    k0 = np.linalg.norm(q, axis=-1)
    k1 = np.linalg.norm(q / np.asarray(radii), axis=-1)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-9)


def head_sdf(p: np.ndarray) -> np.ndarray:
    """Signed distance (approx.) to the undisplaced head: a smooth union of ``HEAD_BLOBS``."""
    d = sdf_ellipsoid(p, *HEAD_BLOBS[0])
    for centre, radii in HEAD_BLOBS[1:]:
        e = sdf_ellipsoid(p, centre, radii)
        h = np.clip(0.5 + 0.5 * (e - d) / HEAD_BLEND, 0.0, 1.0)
        d = e * (1 - h) + d * h - HEAD_BLEND * h * (1 - h)
    return d


def ray_cast_head(dirs: np.ndarray, r_max: float = 0.2, steps: int = 120) -> np.ndarray:
    """Distance from HEAD_CENTRE along each unit direction to the outermost head surface."""
    t = np.linspace(r_max, 0.0, steps)
    d = head_sdf(HEAD_CENTRE + dirs[:, None, :] * t[None, :, None])
    first_inside = np.argmax(d < 0, axis=1)
    hi = t[np.maximum(first_inside - 1, 0)]
    lo = t[first_inside]
    for _ in range(30):
        mid = 0.5 * (hi + lo)
        inside = head_sdf(HEAD_CENTRE + dirs * mid[:, None]) < 0
        lo = np.where(inside, mid, lo)
        hi = np.where(inside, hi, mid)
    return 0.5 * (hi + lo)


def lip_profile(u: np.ndarray, upper: bool) -> np.ndarray:
    """Lip height (m) from the lip line to the lip's outer border, across the mouth (u in [-1, 1])."""
    a = np.clip(1.0 - np.abs(u) ** 2.0, 0.0, 1.0)
    if upper:  # cupid's bow: two peaks beside a small central dip
        h = 0.0078 * a ** 0.55 + 0.0012 * gauss((np.abs(u) - 0.28) / 0.12) - 0.0010 * gauss(u / 0.09)
    else:
        h = 0.0095 * a ** 0.6
    return np.maximum(h, 0.0012)


def face_features(p: np.ndarray) -> np.ndarray:
    """Displacement (m) of head points by nose, lips, brow ridge, eye sockets and mouth corners."""
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    front = smoothstep(0.01, 0.05, z)
    ax = np.abs(x)
    dz = np.zeros_like(x)
    # nose: bridge, tip ball and wings
    bridge = smoothstep(1.612, 1.596, y) * smoothstep(1.552, 1.566, y)
    dz += (0.0025 + 0.0060 * smoothstep(1.60, 1.565, y)) * bridge * gauss(x / 0.0058)
    dz += 0.0100 * gauss(np.hypot(x / 0.0088, (y - 1.5625) / 0.0066))
    dz += 0.0048 * gauss(np.hypot((ax - 0.0112) / 0.0045, (y - 1.5575) / 0.0040))
    # brow ridge and eye sockets
    dz += 0.0035 * gauss((y - 1.629) / 0.006) * smoothstep(0.06, 0.03, ax)
    dz -= 0.0055 * gauss(np.hypot((ax - EYE_X) / 0.013, (y - EYE_Y) / 0.0105))
    # lips: fullness over the lip band, a crease on the lip line, dimples at the corners
    u = x / 0.0265
    span = np.clip(1.0 - u ** 2, 0.0, 1.0) ** 0.5
    dy = y - MOUTH_Y
    dz += 0.0042 * span * gauss((dy - 0.0042) / 0.0034)
    dz += 0.0050 * span * gauss((dy + 0.0050) / 0.0040)
    dz -= 0.0012 * span * gauss(dy / 0.0010)
    dz -= 0.0022 * gauss(np.hypot((ax - 0.0275) / 0.004, dy / 0.004))
    # philtrum groove and chin ball
    dz -= 0.0008 * gauss(x / 0.0035) * gauss((dy - 0.0135) / 0.004)
    dz += 0.0030 * gauss(np.hypot(x / 0.012, (y - 1.487) / 0.008))
    out = np.zeros_like(p)
    out[:, 2] = dz * front
    return out


def head_points(dirs: np.ndarray) -> np.ndarray:
    """Head skin points (with facial features) along unit directions from HEAD_CENTRE."""
    base = HEAD_CENTRE + dirs * ray_cast_head(dirs)[:, None]
    return base + face_features(base)


def sphere_dirs(theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Unit directions for azimuth ``theta`` (0 = +Z, positive toward +X) and polar ``phi`` (0 = +Y)."""
    return np.stack([np.sin(phi) * np.sin(theta), np.cos(phi), np.sin(phi) * np.cos(theta)], -1)


def conform_to_eyes(pts: np.ndarray, eyes: dict[str, np.ndarray]) -> np.ndarray:
    """Pull the skin around each eye onto a sphere just inside the eyelid shells, so the lids grow
    smoothly out of the face; inside the eye opening (plus room for eyeWide) the skin goes behind
    the eyeball instead."""
    out = pts.copy()
    for side, key in ((1.0, "left"), (-1.0, "right")):
        rel = out - eyes[key]
        r = np.linalg.norm(rel, axis=1)
        d = rel / r[:, None]
        tau = np.degrees(np.arctan2(d[:, 0] * side, d[:, 2]))
        pitch = np.degrees(np.arcsin(np.clip(d[:, 1], -1, 1)))
        eu, el = lid_edges(tau)
        corner = smoothstep(60.0, 52.0, np.abs(tau))
        opening = corner * smoothstep(el - 9.0, el - 5.0, pitch) * smoothstep(eu + 16.0, eu + 12.0, pitch)
        target = EYE_RADIUS + 0.0004 - 0.0026 * opening
        pull = (1.0 - smoothstep(EYE_RADIUS + 0.002, EYE_RADIUS + 0.010, r)) * (d[:, 2] > -0.2)
        new_r = np.where(r > target, r + (target - r) * pull, r)
        out = eyes[key] + d * new_r[:, None]
    return out


def points_toward(xy: np.ndarray) -> np.ndarray:
    """The skin points whose x, y (N x 2) are (about) the given ones on the front of the face."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    target = np.column_stack([xy, np.full(len(xy), 0.09)])
    for _ in range(4):
        hit = head_points(normalize(target - HEAD_CENTRE))
        target = np.column_stack([xy, hit[:, 2]])
    return hit


# ----------------------------------------------------------------------------------------------
# Parts
# ----------------------------------------------------------------------------------------------
@dataclass
class Part:
    """A piece of geometry with per-triangle materials and per-vertex tags for the rig."""

    name: str
    pos: np.ndarray
    tris: np.ndarray
    materials: list[str]               # per triangle
    tags: dict[str, np.ndarray] = field(default_factory=dict)
    normals: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.pos = np.asarray(self.pos, dtype=np.float64)
        self.tris = np.asarray(self.tris, dtype=np.int64)
        if self.normals is None:
            self.normals = vertex_normals(self.pos, self.tris)

    def tag(self, name: str) -> np.ndarray:
        """Per-vertex tag, zeros where the part does not set it."""
        return self.tags.get(name, np.zeros(len(self.pos)))


N_COLS = 96
N_ROWS = 84
LIP_ROWS, LIP_TRANSITION = 3, 3


def column_angles() -> np.ndarray:
    """Azimuths of the head grid columns: symmetric about 0, about 2.2x denser on the face."""
    s = -1.0 + 2.0 * np.arange(N_COLS) / N_COLS
    return np.pi * (0.45 * s + 0.55 * s ** 3)


def row_angles() -> np.ndarray:
    """Polar angles of the head grid rows, from the crown (0) to under the neck (pi), denser on the face."""
    phi = np.linspace(0.0, np.pi, 4001)
    density = 1.0 + 2.0 * smoothstep(1.0, 1.25, phi) * smoothstep(2.7, 2.45, phi)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(phi))])
    return np.interp(np.linspace(0.0, cdf[-1], N_ROWS), cdf, phi)


def mouth_polar_angle() -> float:
    """Polar angle of the ray that meets the front of the face at MOUTH_Y."""
    phi = np.linspace(1.9, 2.6, 400)
    pts = head_points(sphere_dirs(np.zeros_like(phi), phi))
    return float(np.interp(-MOUTH_Y, -pts[:, 1], phi))


@dataclass
class HeadGrid:
    """Where the lip slit and mouth pocket sit in the head grid."""

    mouth_row: int
    corner_cols: tuple[int, int]
    theta: np.ndarray
    phi: np.ndarray      # (rows, cols) polar angles after the lip warp


def build_head_grid() -> HeadGrid:
    """Row/column angles with the rows around the mouth bent to follow the lip outline."""
    theta = column_angles()
    base = row_angles()
    phi_m = mouth_polar_angle()
    im = int(np.argmin(np.abs(base - phi_m)))
    centre_col = N_COLS // 2
    x_front = 0.10 * np.sin(theta)          # x of each column on the front, at the mouth (r ~ 0.10 m)
    m = int(np.argmax(x_front[centre_col:] >= 0.0255))
    corners = (centre_col - m, centre_col + m)
    u = theta / theta[corners[1]]
    r_mouth = 0.12                          # distance from the head centre to the lips: m -> radians
    phi = np.tile(base[:, None], (1, N_COLS))
    for sign, upper in ((-1, True), (1, False)):
        regular = abs(base[im + sign * LIP_ROWS] - base[im])
        h = lip_profile(u, upper) / r_mouth
        h += (regular - h) * smoothstep(1.0, 2.2, np.abs(u))   # back to even rows beyond the corners
        border = phi_m + sign * h
        far_row = im + sign * (LIP_ROWS + LIP_TRANSITION)
        for k in range(LIP_ROWS + 1):
            phi[im + sign * k] = phi_m + sign * h * k / LIP_ROWS
        for k in range(1, LIP_TRANSITION):
            f = k / LIP_TRANSITION
            phi[im + sign * (LIP_ROWS + k)] = (1 - f) * border + f * base[far_row]
    assert np.all(np.diff(phi, axis=0) > 0), "lip rows fold over"
    return HeadGrid(im, corners, theta, phi)


MOUTH_RINGS = (  # inner rings of the mouth pocket: (width scale, half height, depth behind the lips)
    (0.97, 0.0016, 0.0045),
    (1.02, 0.0100, 0.0100),
    (1.08, 0.0160, 0.0180),
    (0.95, 0.0150, 0.0270),
    (0.65, 0.0100, 0.0330),
)
MOUTH_BACK_DEPTH = 0.037


def build_skin(eyes: dict[str, np.ndarray]) -> tuple[Part, dict[str, np.ndarray]]:
    """Head skin with lips and the mouth pocket as one closed surface; also returns landmarks."""
    g = build_head_grid()
    rows, cols = g.phi.shape
    th = np.tile(g.theta[None, :], (rows, 1))
    pts = head_points(sphere_dirs(th, g.phi).reshape(-1, 3)).reshape(rows, cols, 3)
    pts = conform_to_eyes(pts.reshape(-1, 3), eyes).reshape(rows, cols, 3)
    pts[0] = HEAD_CENTRE + np.array([0, 1, 0]) * ray_cast_head(np.array([[0.0, 1.0, 0.0]]))[0]
    pts[-1] = HEAD_CENTRE + np.array([0, -1, 0]) * ray_cast_head(np.array([[0.0, -1.0, 0.0]]))[0]

    # vertex ids: the poles are single vertices, the lip row gets lower copies between the corners
    ids = np.arange(rows * cols).reshape(rows, cols)
    ids[0] = 0
    ids[-1] = rows * cols - cols
    flat = pts.reshape(-1, 3).copy()
    c0, c1 = g.corner_cols
    im = g.mouth_row
    slit_cols = np.arange(c0 + 1, c1)
    lower_ids = len(flat) + np.arange(len(slit_cols))
    flat = np.concatenate([flat, pts[im, slit_cols]])
    lower_row = ids[im].copy()
    lower_row[slit_cols] = lower_ids
    tri_rows = []
    for i in range(rows - 1):
        top = lower_row if i == im else ids[i]
        bottom = ids[i + 1]
        j = np.arange(cols)
        jn = (j + 1) % cols
        tri_rows.append(np.stack([top[j], bottom[j], top[jn]], -1))
        tri_rows.append(np.stack([top[jn], bottom[j], bottom[jn]], -1))
    tris = np.concatenate(tri_rows)
    tris = tris[(tris[:, 0] != tris[:, 1]) & (tris[:, 1] != tris[:, 2]) & (tris[:, 0] != tris[:, 2])]

    row_of = np.full(len(flat), -1)
    col_of = np.full(len(flat), -1)
    row_of[ids.reshape(-1)] = np.repeat(np.arange(rows), cols)
    col_of[ids.reshape(-1)] = np.tile(np.arange(cols), rows)
    row_of[lower_ids] = im
    col_of[lower_ids] = slit_cols
    # which side of the lip line (by grid row) and how far above it (the line rises to the corners)
    side = np.sign(im - row_of).astype(float)
    side[ids[im, slit_cols]] = 1.0
    side[lower_ids] = -1.0
    dy_line = flat[:, 1] - pts[im, col_of, 1]

    # lip material: quads within the lip bands between the corners
    tri_row = row_of[tris].astype(float).mean(axis=1)
    tri_col = col_of[tris].astype(float).mean(axis=1)
    is_lip = (np.abs(tri_row - im) < LIP_ROWS) & (tri_col > c0) & (tri_col < c1)
    materials = ["Lips" if lip else "Skin" for lip in is_lip]

    # mouth pocket: rings lofted inward from the lip line loop
    upper_loop = ids[im, np.arange(c0, c1 + 1)]
    loop = np.concatenate([upper_loop, lower_ids[::-1]])
    loop_side = side[loop]
    loop_pts = flat[loop]
    half_w = max(abs(flat[ids[im, c0], 0]), abs(flat[ids[im, c1], 0]))
    ring_ids = [loop]
    new_pts, mouth_w, ring_depth = [], [], []
    n_skin = len(flat)
    for k, (ws, hh, depth) in enumerate(MOUTH_RINGS):
        xr = loop_pts[:, 0] * ws
        bow = np.sqrt(np.clip(1 - (loop_pts[:, 0] / half_w) ** 2, 0, 1))
        ring = np.stack([xr, MOUTH_Y + loop_side * hh * bow - 0.002 * (k >= 2), loop_pts[:, 2] - depth], -1)
        ring_ids.append(n_skin + sum(len(r) for r in new_pts) + np.arange(len(loop)))
        new_pts.append(ring)
        mouth_w.append(np.full(len(loop), [1.0, 0.8, 0.45, 0.15, 0.0][k]))
        ring_depth.append(np.full(len(loop), k + 1))
    back = np.array([[0.0, MOUTH_Y - 0.006, float(loop_pts[:, 2].mean()) - MOUTH_BACK_DEPTH]])
    back_id = n_skin + sum(len(r) for r in new_pts)
    flat = np.concatenate([flat, *new_pts, back])
    n = len(loop)
    pocket = []
    for a, b in zip(ring_ids[:-1], ring_ids[1:]):
        j = np.arange(n)
        jn = (j + 1) % n
        pocket.append(np.stack([a[j], b[j], a[jn]], -1))
        pocket.append(np.stack([a[jn], b[j], b[jn]], -1))
    j = np.arange(n)
    pocket.append(np.stack([ring_ids[-1][j], np.full(n, back_id), ring_ids[-1][(j + 1) % n]], -1))
    pocket = np.concatenate(pocket)
    pocket_mat = ["Lips"] * (2 * n) + ["Mouth"] * (len(pocket) - 2 * n)
    tris = np.concatenate([tris, pocket])
    materials += pocket_mat

    # per-vertex tags
    n_all = len(flat)
    side = np.concatenate([side, *[loop_side] * len(MOUTH_RINGS), [0.0]])
    dy_line = np.concatenate([dy_line, *[r[:, 1] - loop_pts[:, 1] for r in new_pts], [0.0]])
    m_w = np.concatenate([np.ones(n_skin), *mouth_w, [0.0]])
    depth_tag = np.concatenate([np.zeros(n_skin), *ring_depth, [len(MOUTH_RINGS) + 1]])
    part = Part("skin", flat, tris, materials, tags={"lip_side": side, "mouth_w": m_w,
                                                      "pocket_ring": depth_tag, "dy_line": dy_line})
    part.tags["jaw_w"] = skin_jaw_weight(part, half_w)
    part.tags["skin"] = np.ones(n_all)
    landmarks = {
        "corner_left": flat[ids[im, c1]],
        "corner_right": flat[ids[im, c0]],
        "lip_centre": flat[ids[im, N_COLS // 2]],
        "mouth_half_width": np.array([half_w]),
    }
    return part, landmarks


def skin_jaw_weight(part: Part, half_w: float) -> np.ndarray:
    """How much each skin/pocket vertex follows the jaw: 1 on the lower lip and chin, 0 above the
    lip line, with a sharp change across the slit and a soft one across the cheeks."""
    x, _, z = part.pos.T
    side = part.tag("lip_side")
    ring = part.tag("pocket_ring")
    soft = 0.0012 + 0.022 * smoothstep(half_w * 0.8, half_w + 0.03, np.abs(x))
    below = -part.tag("dy_line")
    below = np.where((ring == 0) & (np.abs(below) < 1e-6) & (side != 0), -side * 0.003, below)
    w = smoothstep(-soft, soft, below)
    w *= smoothstep(-0.045, 0.03, z)
    pocket = ring > 0
    w[pocket] = np.clip(0.5 - 0.5 * side[pocket], 0, 1) * np.where(ring[pocket] >= 4, 0.6, 1.0)
    return w


def lid_edges(tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rest pitch (deg) of the upper and lower lid edges against temporal yaw ``tau`` (deg)."""
    corner = 55.0
    c = np.clip(1.0 - (tau / corner) ** 2, 0.0, 1.0)
    tilt = 3.0 * np.clip(tau / corner, -1, 1)
    upper = -3.0 + 44.0 * c ** 0.6 + tilt
    lower = -3.0 - 24.0 * c ** 0.8 + tilt
    return upper, lower


LID_COLS = 24
LID_ROWS = 9
LID_TOP = 82.0
LID_SIDE = 80.0


def lid_point(eye: np.ndarray, side: float, yaw: np.ndarray, pitch: np.ndarray, radius: np.ndarray) -> np.ndarray:
    """Point on a sphere around ``eye`` at temporal yaw/pitch in degrees (side +1 = left eye)."""
    lam = np.radians(yaw) * side
    p = np.radians(pitch)
    d = np.stack([np.sin(lam) * np.cos(p), np.sin(p), np.cos(lam) * np.cos(p)], -1)
    return eye + d * radius[..., None]


def build_lid(eye: np.ndarray, side: float, upper: bool) -> Part:
    """One eyelid shell: a fold row hugging the eyeball, the lid edge, then rows up (or down) to
    where the shell disappears under the skin."""
    tau = np.linspace(-LID_SIDE, LID_SIDE, LID_COLS)
    edge_u, edge_l = lid_edges(tau)
    edge = edge_u if upper else edge_l
    end = LID_TOP if upper else -LID_TOP
    gap = LID_GAP_UPPER if upper else LID_GAP_LOWER
    lash = 1 if upper else 0    # upper lids start with a lash row standing out from the lid edge
    fr = np.concatenate([[0.0] * (1 + lash), np.linspace(0.0, 1.0, LID_ROWS)])     # fraction edge -> end
    rows = LID_ROWS + 1 + lash
    fold = np.zeros(rows)
    fold[lash] = 1.0
    frac, tt = np.meshgrid(fr, tau, indexing="ij")
    fold_g = np.repeat(fold[:, None], LID_COLS, axis=1)
    edge_g = np.repeat(edge[None, :], rows, axis=0)
    sgn = 1.0 if upper else -1.0
    pitch = edge_g + frac * (end - edge_g) - sgn * 1.2 * fold_g
    radius = EYE_RADIUS + np.where(fold_g > 0, 0.00035, gap)
    if lash:  # longest in the middle and toward the outer corner, as stylised lashes are
        outer = np.clip(tau / LID_SIDE, -1.0, 1.0)
        length = 0.0012 + 0.0016 * np.clip(1.0 - (tau / 60.0) ** 2, 0.0, 1.0) + 0.0008 * np.clip(outer, 0, 1)
        radius[0] = EYE_RADIUS + gap + length
        pitch[0] = edge + 2.0
    pos = lid_point(eye, side, tt, pitch, radius).reshape(-1, 3)
    tris = grid_triangles(rows, LID_COLS, wrap=False)
    # wind so the shell faces away from the eyeball; the fold strip then faces the lid edge
    shell = np.all(tris >= (2 + lash) * LID_COLS, axis=1)
    if orient_outward(pos, tris[shell], eye)[0, 0] != tris[shell][0, 0]:
        tris = tris[:, ::-1].copy()
    on_fold = np.all(tris < (2 + lash) * LID_COLS, axis=1)
    mats = ["Lashes" if upper and fold_strip else "Lid" for fold_strip in on_fold]
    tags = {
        "lid_eye": np.full(len(pos), side),
        "lid_upper": np.full(len(pos), 1.0 if upper else -1.0),
        "lid_tau": tt.reshape(-1),
        "lid_frac": frac.reshape(-1),
        "lid_fold": fold_g.reshape(-1),
        "lid_radius": radius.reshape(-1),
        "lid_pitch": pitch.reshape(-1),
    }
    return Part(f"lid_{'L' if side > 0 else 'R'}{'U' if upper else 'D'}", pos, tris, mats, tags)


def build_eyeball(iris: tuple[np.ndarray, np.ndarray, np.ndarray]) -> dict[str, tuple[np.ndarray, ...]]:
    """Eyeball in its node's frame (centre at the origin, looking +Z) as sclera, iris, pupil and
    catch-light primitives: {material: (positions, normals, triangles, RGBA vertex colours)}.
    Normals are the sphere's, so the seams between the parts are invisible; the iris colour is a
    per-vertex radial gradient with a dark limbal ring."""
    ring_deg = np.array([0.0, 7.0, 14.0, 18.0, 23.0, 28.0, 32.5, 35.0, 36.5, 45, 60, 80, 100, 125, 150, 180])
    cols = 28
    out: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    bands = {"Pupil": (0.0, 14.0), "Iris": (14.0, 36.5), "Sclera": (36.5, 180.0)}
    for name, (a0, a1) in bands.items():
        alphas = ring_deg[(ring_deg >= a0) & (ring_deg <= a1)]
        al, th = np.meshgrid(np.radians(alphas), np.linspace(0, 2 * np.pi, cols, endpoint=False), indexing="ij")
        d = np.stack([np.sin(al) * np.cos(th), np.sin(al) * np.sin(th), np.cos(al)], -1).reshape(-1, 3)
        # the iris and pupil sit a touch proud of the sclera, like a cornea
        bulge = 1.0 + 0.035 * np.clip(1 - al.reshape(-1) / np.radians(36.5), 0, 1) ** 0.5
        pos = d * EYE_RADIUS * bulge[:, None]
        tris = grid_triangles(len(alphas), cols, wrap=True)
        tris = orient_outward(pos, tris, np.zeros(3))
        tris = tris[np.ptp(pos[tris], axis=1).max(axis=1) > 1e-9]     # drop the pole's slivers
        colours = np.ones((len(pos), 4))
        if name == "Iris":  # radial gradient: light around the pupil, darker outward, dark limbal ring
            t = np.clip((np.degrees(al.reshape(-1)) - a0) / (a1 - a0), 0.0, 1.0)
            inner, outer, ring = iris
            rgb = inner + (outer - inner) * smoothstep(0.0, 0.75, t)[:, None]
            rgb = rgb + (ring - rgb) * smoothstep(0.72, 0.97, t)[:, None]
            rgb *= 1.0 - 0.12 * (np.cos(th.reshape(-1) * 9) * 0.5 + 0.5)[:, None] * (t < 0.8)[:, None]  # fibres
            colours[:, :3] = rgb
        out[name] = (pos, normalize(pos), tris, colours)
    # catch-light: a small bright disc on the cornea, up and toward the key light (upper right in the image)
    n_rim = 12
    ang = np.linspace(0, 2 * np.pi, n_rim, endpoint=False)
    centre_dir = normalize(np.array([-0.16, 0.20, 1.0]))
    u = normalize(np.cross([0.0, 1.0, 0.0], centre_dir))
    v = np.cross(centre_dir, u)
    r = 0.17
    dirs = normalize(centre_dir + r * (np.cos(ang)[:, None] * u + 0.8 * np.sin(ang)[:, None] * v))
    pos = np.concatenate([[centre_dir], dirs]) * EYE_RADIUS * 1.045
    tris = np.stack([np.zeros(n_rim, int), 1 + np.arange(n_rim), 1 + (np.arange(n_rim) + 1) % n_rim], -1)
    tris = orient_outward(pos, tris, np.zeros(3))
    out["CatchLight"] = (pos, np.tile(centre_dir, (len(pos), 1)), tris, np.ones((len(pos), 4)))
    return out


def build_brow(side: float) -> Part:
    """An arched, softly raised eyebrow strip lying on the forehead skin."""
    n_along, n_across = 18, 5
    s = np.linspace(0.0, 1.0, n_along)
    x = 0.013 + 0.038 * s
    y = 1.6285 + 0.0085 * np.sin(np.pi * s ** 0.8) - 0.003 * s
    half = 0.0026 * (1 - 0.55 * s) + 0.0006
    across = np.linspace(-1.0, 1.0, n_across)
    grid_x = np.broadcast_to(side * x, (n_across, n_along))
    grid_y = y[None, :] - across[:, None] * half[None, :]
    pts = points_toward(np.stack([grid_x, grid_y], -1)).reshape(n_across, n_along, 3)
    lift = 0.0003 + 0.0011 * (1 - across ** 2) ** 0.5
    radial = normalize(pts - HEAD_CENTRE)
    pts = pts + radial * lift[:, None, None]
    pos = pts.reshape(-1, 3)
    tris = grid_triangles(n_across, n_along, wrap=False)
    tris = orient_outward(pos, tris, HEAD_CENTRE)
    return Part(f"brow_{'L' if side > 0 else 'R'}", pos, tris, ["Brows"] * len(tris),
                tags={"skin": np.ones(len(pos))})


def sweep(path: np.ndarray, sections: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sweep closed cross-sections (per path point: M x (outward, up) offsets) along a horizontal path."""
    up = np.array([0.0, 1.0, 0.0])
    tangent = normalize(np.gradient(path, axis=0))
    outward = normalize(np.cross(tangent, up))
    pos = path[:, None, :] + outward[:, None, :] * sections[..., 0:1] + up * sections[..., 1:2]
    return pos.reshape(-1, 3), grid_triangles(len(path), sections.shape[1], wrap=True)


def rounded_rect(width: float, bottom: np.ndarray, top: np.ndarray, r: float = 0.0012) -> np.ndarray:
    """Rounded-rectangle cross-sections (outward, up), one per path point, from ``bottom`` to ``top``."""
    ang = np.linspace(0, np.pi / 2, 3)
    quarter = np.stack([np.cos(ang), np.sin(ang)], -1) * r
    unit = np.concatenate([quarter + [width / 2 - r, -r], quarter @ [[0, 1], [-1, 0]] + [-width / 2 + r, -r],
                           -quarter + [-width / 2 + r, r], quarter @ [[0, -1], [1, 0]] + [width / 2 - r, r]])
    top_side = unit[:, 1] < 0           # corners built around y = -r belong to the top edge
    sec = np.repeat(unit[None], len(bottom), axis=0)
    sec[..., 1] = np.where(top_side, top[:, None] + sec[..., 1], bottom[:, None] + sec[..., 1])
    return sec


def build_teeth(lip_z: float, upper: bool) -> Part:
    """A row of teeth: one arch swept behind the lips, its biting edge scalloped into teeth."""
    n = 26
    beta = np.radians(np.linspace(-80, 80, n))
    a, b = (0.0205, 0.020) if upper else (0.0185, 0.019)
    front = lip_z - (0.0100 if upper else 0.0118)
    path = np.stack([a * np.sin(beta), np.zeros(n), front - b * (1 - np.cos(beta))], -1)
    scallop = 0.0007 * np.abs(np.sin(beta * 10 / 2.8))
    if upper:       # from the gum down to the biting edge, just below the lip line
        top, bottom = np.full(n, MOUTH_Y + 0.0073), MOUTH_Y - 0.0012 + scallop
    else:
        top, bottom = MOUTH_Y - 0.0004 - scallop, np.full(n, MOUTH_Y - 0.0079)
    pos, tris = sweep(path, rounded_rect(0.0032, bottom, top))
    centre = np.array([0.0, MOUTH_Y, front - 0.02])
    tris = orient_outward(pos, tris, centre)
    jaw = np.zeros(len(pos)) if upper else np.ones(len(pos))
    return Part("teeth_upper" if upper else "teeth_lower", pos, tris, ["Teeth"] * len(tris),
                tags={"jaw_w": jaw})


def build_tongue(lip_z: float) -> Part:
    """A flattened ellipsoid resting on the floor of the mouth, its tip behind the lower teeth."""
    unit, tris = ellipsoid_grid(12, 20)
    radii = np.array([0.0165, 0.0055, 0.021])
    centre = np.array([0.0, MOUTH_Y - 0.0085, lip_z - 0.0125 - radii[2] - 0.003])
    pos = centre + unit * radii
    tris = orient_outward(pos, tris, centre)
    front = smoothstep(centre[2] - radii[2], centre[2] + radii[2], pos[:, 2])
    return Part("tongue", pos, tris, ["Tongue"] * len(tris),
                tags={"jaw_w": np.ones(len(pos)), "tongue_front": front})


def hairline_angle(theta: np.ndarray) -> np.ndarray:
    """Polar angle (radians) of the cap's edge at azimuth ``theta``: low at the back, a fringe over
    the left brow, a side parting."""
    return np.radians(82.0 - 40.0 * np.cos(theta)
                      + 17.0 * gauss((theta - 0.30) / 0.36)          # fringe over the left brow
                      - 4.0 * gauss((theta + 0.45) / 0.22)           # side parting
                      + 2.0 * np.cos(7 * theta) * smoothstep(1.6, 0.6, np.abs(theta)))


def build_hair() -> Part:
    """A helmet of hair over the cranium with a side-swept fringe and a thick, tucked-in edge."""
    theta = column_angles()
    n_rows = 20
    hairline = hairline_angle(theta)
    f = np.concatenate([np.linspace(0.0, 1.0, n_rows) ** 0.9, [1.0]])
    ph = f[:, None] * hairline[None, :]
    th = np.tile(theta[None, :], (len(f), 1))
    ph[-1] = hairline + np.radians(1.5)
    skin = head_points(sphere_dirs(th, ph).reshape(-1, 3)).reshape(len(f), N_COLS, 3)
    volume = 0.017 + 0.009 * np.cos(ph) ** 2 + 0.004 * (1 - np.cos(th)) * 0.5
    taper = np.clip((1.0 - f[:, None]) / 0.22, 0.0, 1.0) ** 0.5
    thickness = volume * (0.25 + 0.75 * taper)
    thickness[-1] = -0.0015
    radial = normalize(skin - HEAD_CENTRE)
    pts = skin + radial * thickness[..., None]
    pts[0] = pts[0].mean(axis=0)
    pos = pts.reshape(-1, 3)
    tris = grid_triangles(len(f), N_COLS, wrap=True)
    ids = np.arange(len(pos))
    ids[:N_COLS] = 0
    tris = ids[tris]
    tris = tris[(tris[:, 0] != tris[:, 1]) & (tris[:, 1] != tris[:, 2]) & (tris[:, 0] != tris[:, 2])]
    tris = _compact(pos, tris)
    pos, tris = tris
    tris = orient_outward(pos, tris, HEAD_CENTRE)
    return Part("hair", pos, tris, ["Hair"] * len(tris))


def build_ponytail() -> Part:
    """A tapered tube of hair along the ponytail joints, tagged with its position along the chain
    (``chain``: 0 at the root joint, 1 per bone) for its skin weights."""
    joints = np.array([JOINT_POSITIONS[n] for n in PONYTAIL])
    rows, ring = 10, 10  # 190 triangles: the avatar stays within its 30k budget
    u = np.linspace(0.0, len(joints) - 1.0, rows)
    path = np.array([np.interp(u, np.arange(len(joints)), joints[:, k]) for k in range(3)]).T
    radius = 0.026 * (1.0 - 0.8 * u / u[-1]) * np.clip(1.2 * (1.0 - (u / u[-1]) ** 6), 0.0, 1.0) + 0.0015
    tangent = normalize(np.gradient(path, axis=0))
    side = normalize(np.cross(tangent, [1.0, 0.0, 0.0]))
    across = np.cross(tangent, side)
    angle = np.linspace(0.0, 2 * np.pi, ring, endpoint=False)
    pos = (path[:, None, :] + radius[:, None, None] * (np.cos(angle)[None, :, None] * side[:, None, :]
                                                       + np.sin(angle)[None, :, None] * across[:, None, :]))
    pos = np.concatenate([pos.reshape(-1, 3), path[-1:]])
    tris = grid_triangles(rows, ring, wrap=True)
    tip = len(pos) - 1
    last = (rows - 1) * ring + np.arange(ring)
    tris = np.concatenate([tris, np.column_stack([last, np.roll(last, -1), np.full(ring, tip)])])
    tris = orient_outward(pos, tris, path.mean(axis=0))
    chain = np.concatenate([np.repeat(u, ring), u[-1:]])
    return Part("ponytail", pos, tris, ["Hair"] * len(tris), tags={"chain": chain})


# Where hanging hair ends (y, m): at the sides it rests on the shoulders, at the back a long style
# goes on down the back. Front edge: the azimuth (from +Z) where it starts, framing the face.
HANGING_HAIR: dict[HairStyle, tuple[float, float]] = {HairStyle.SHOULDER: (1.455, 1.43),
                                                       HairStyle.LONG: (1.455, 1.24)}
HANGING_FRONT = np.radians(64.0)
HANGING_THICKNESS = 0.006


def build_hanging_hair(style: HairStyle) -> Part:
    """A curtain of hair from under the cap's edge down the sides and the back, flaring out over the
    neck and shoulders: two layers (out and in) so it is solid from every side."""
    side_end, back_end = HANGING_HAIR[style]
    rows, cols = 14, 36
    theta = np.linspace(HANGING_FRONT, 2 * np.pi - HANGING_FRONT, cols)
    theta = np.where(theta > np.pi, theta - 2 * np.pi, theta)
    top = head_points(sphere_dirs(theta, hairline_angle(theta) - np.radians(12.0)))
    radial = normalize(top - HEAD_CENTRE)
    top = top + radial * 0.014                      # inside the cap's thick edge
    back = smoothstep(np.radians(112.0), np.radians(150.0), np.abs(theta))
    end = side_end + (back_end - side_end) * back
    s = np.linspace(0.0, 1.0, rows)[:, None]
    flare = (0.018 + 0.034 * back) * s ** 0.8        # out over the neck, and over the back when long
    out_dir = normalize(np.column_stack([np.sin(theta), np.zeros(cols), np.cos(theta) * 1.15]))
    outer = top[None] + out_dir[None] * flare[..., None]
    outer[..., 1] = top[None, :, 1] + (end - top[:, 1])[None] * s
    inner = outer - out_dir[None] * HANGING_THICKNESS
    tris = grid_triangles(rows, cols, wrap=False)
    pos = np.concatenate([outer.reshape(-1, 3), inner.reshape(-1, 3)])
    centre = np.array([0.0, 1.5, -0.01])
    out_tris = orient_outward(outer.reshape(-1, 3), tris, centre)
    tris = np.concatenate([out_tris, out_tris[:, ::-1] + rows * cols])
    return Part("hair_hanging", pos, tris, ["Hair"] * len(tris))


def tube(path: np.ndarray, radius: float, sides: int = 5, closed: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A thin tube along ``path`` (N x 3): positions and outward triangles."""
    tangent = normalize(np.roll(path, -1, 0) - np.roll(path, 1, 0)) if closed else normalize(np.gradient(path, axis=0))
    ref = np.where(np.abs(tangent[:, 1:2]) > 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
    u = normalize(np.cross(tangent, ref))
    v = np.cross(tangent, u)
    ang = np.linspace(0.0, 2 * np.pi, sides, endpoint=False)
    ring = np.cos(ang)[None, :, None] * u[:, None] + np.sin(ang)[None, :, None] * v[:, None]
    pos = (path[:, None] + radius * ring).reshape(-1, 3)
    n = len(path)
    i, j = np.meshgrid(np.arange(n if closed else n - 1), np.arange(sides), indexing="ij")
    a, b = i * sides + j, ((i + 1) % n) * sides + j
    c, d = i * sides + (j + 1) % sides, ((i + 1) % n) * sides + (j + 1) % sides
    tris = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([c, b, d], -1).reshape(-1, 3)])
    fn = np.cross(pos[tris[:, 1]] - pos[tris[:, 0]], pos[tris[:, 2]] - pos[tris[:, 0]])
    axis_point = np.repeat(path, sides, axis=0)[tris[:, 0]]
    if np.sum(np.einsum("ij,ij->i", fn, pos[tris].mean(axis=1) - axis_point)) < 0:
        tris = tris[:, ::-1].copy()
    return pos, tris


GLASSES_RIM = (0.0215, 0.0150)   # half width and height of a lens
GLASSES_WIRE = 0.0011


def build_glasses(eyes: dict[str, np.ndarray]) -> Part:
    """Round-cornered frames in front of the eyes, a bridge over the nose and temples back to the
    ears, each a thin tube clear of the skin."""
    t = np.linspace(0.0, 2 * np.pi, 28, endpoint=False)
    e = 0.5   # superellipse exponent: a soft rectangle
    loop = np.column_stack([np.sign(np.cos(t)) * np.abs(np.cos(t)) ** e * GLASSES_RIM[0],
                            np.sign(np.sin(t)) * np.abs(np.sin(t)) ** e * GLASSES_RIM[1]])
    pieces = []
    rim_z, rim_y = 0.0, float(eyes["left"][1]) - 0.002
    for key in ("left", "right"):
        xy = loop + [float(eyes[key][0]), rim_y]
        rim_z = max(rim_z, float(points_toward(xy)[:, 2].max()) + 0.004,
                    float(eyes[key][2]) + EYE_RADIUS + 0.007)
    for key, side in (("left", 1.0), ("right", -1.0)):
        centre = np.array([float(eyes[key][0]), rim_y, rim_z])
        pieces.append(tube(np.column_stack([loop + centre[:2], np.full(len(loop), rim_z)]), GLASSES_WIRE, closed=True))
        # temple: from the rim's outer edge back along the side of the head, just off the skin
        az = np.radians(np.linspace(48.0, 100.0, 9))
        skin = head_points(normalize(np.column_stack([side * np.sin(az), np.full(len(az), 0.02), np.cos(az)])))
        off = normalize(skin - HEAD_CENTRE) * 0.004
        start = centre + [side * GLASSES_RIM[0], 0.004, 0.0]
        pieces.append(tube(np.concatenate([[start], (skin + off)[1:]]), GLASSES_WIRE))
    inner = float(eyes["left"][0]) - GLASSES_RIM[0]
    arc = np.linspace(-1.0, 1.0, 9)
    bridge = np.column_stack([arc * inner, rim_y + 0.004 + 0.003 * (1 - arc ** 2), np.full(len(arc), rim_z + 0.001)])
    pieces.append(tube(bridge, GLASSES_WIRE))
    pos, tris, base = [], [], 0
    for piece_pos, piece_tris in pieces:
        pos.append(piece_pos)
        tris.append(piece_tris + base)
        base += len(piece_pos)
    all_tris = np.concatenate(tris)
    return Part("glasses", np.concatenate(pos), all_tris, ["Glasses"] * len(all_tris))


def ponytail_weights(chain: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each vertex between the two bones nearest its place on the chain (bone k spans k..k+1)."""
    bones = len(PONYTAIL) - 1
    at = np.clip(chain - 0.5, 0.0, bones - 1.0)
    first = np.minimum(np.floor(at).astype(int), bones - 2)
    t = at - first
    joints = np.zeros((len(chain), 4), dtype=np.uint8)
    joints[:, 0], joints[:, 1] = HEAD + 1 + first, HEAD + 2 + first
    weights = np.zeros((len(chain), 4))
    weights[:, 0], weights[:, 1] = 1.0 - t, t
    return joints, weights


def _compact(pos: np.ndarray, tris: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop unreferenced vertices."""
    used, inverse = np.unique(tris, return_inverse=True)
    return pos[used], inverse.reshape(tris.shape)


def build_ears() -> list[Part]:
    """Two cupped ears half-sunk into the sides of the head."""
    parts = []
    unit, tris = ellipsoid_grid(12, 16)
    for side in (1.0, -1.0):
        radii = np.array([0.0085, 0.027, 0.016])
        local = unit * radii
        cup = 0.0065 * gauss(np.hypot(unit[:, 1] / 0.55, unit[:, 2] / 0.6)) * (unit[:, 0] > 0)
        local[:, 0] -= cup
        tilt = np.radians(-12.0)
        ry, rz = local[:, 1].copy(), local[:, 2].copy()
        local[:, 1] = ry * np.cos(tilt) - rz * np.sin(tilt)
        local[:, 2] = ry * np.sin(tilt) + rz * np.cos(tilt)
        local[:, 0] *= side
        centre = np.array([side * 0.0735, 1.588, -0.012])
        pos = centre + local
        t = orient_outward(pos, tris, centre)
        parts.append(Part(f"ear_{'L' if side > 0 else 'R'}", pos, t, ["Skin"] * len(t)))
    return parts


def build_neck() -> Part:
    """An open tube from inside the head down into the shirt; it carries the neck's skin weights."""
    cols, rows = 36, 24
    f = np.linspace(0.0, 1.0, rows)
    y_top_front, y_top_back, y_bottom = 1.51, 1.62, 1.38
    th = np.linspace(-np.pi, np.pi, cols, endpoint=False)
    ff, tt = np.meshgrid(f, th, indexing="ij")
    y_top = y_top_back + (y_top_front - y_top_back) * (0.5 + 0.5 * np.cos(tt))
    y = y_top + (y_bottom - y_top) * ff
    rx = 0.057 + 0.007 * ff ** 2
    rz = 0.052 + 0.006 * ff ** 2
    cz = -0.018 - 0.010 * ff
    pos = np.stack([rx * np.sin(tt), y, cz + rz * np.cos(tt)], -1).reshape(-1, 3)
    tris = grid_triangles(rows, cols, wrap=True)
    tris = orient_outward(pos, tris, np.array([0, 1.47, -0.02]))
    return Part("neck", pos, tris, ["Skin"] * len(tris))


TORSO_LIFT = 0.012  # the shirt sits this much higher than the neck's base: a shorter visible neck


def build_torso() -> Part:
    """Shoulders and chest in a crew-neck shirt, closed at the bottom."""
    cols = 56
    th = np.linspace(-np.pi, np.pi, cols, endpoint=False)
    s, c = np.sin(th), np.cos(th)
    e = 2.0 / 2.6   # superellipse exponent: a boxy but soft torso
    body = np.stack([0.195 * np.sign(s) * np.abs(s) ** e,
                     np.where(c > 0, 0.108, 0.082) * np.sign(c) * np.abs(c) ** e], -1)
    body[:, 1] -= 0.02
    collar = np.stack([0.069 * s, -0.024 + 0.064 * c], -1)
    y_edge = 1.395 - 0.05 * s ** 2       # shoulders slope down from the collar
    rings = []
    # collar band (rises a little), then the shoulder dome, then the sides down to the waist
    for y_off, scale in ((0.030, 1.0), (0.012, 1.06), (0.0, 1.14)):
        rings.append(np.column_stack([collar[:, 0] * scale, np.full(cols, 1.425 + y_off), collar[:, 1] * scale + 0.0]))
    start = rings[-1][:, [0, 2]]
    y_start = 1.425
    for a in np.linspace(0.12, 1.0, 9) * np.pi / 2:
        xz = start + (body - start) * np.sin(a)
        y = y_edge + (y_start - y_edge) * np.cos(a) ** 1.3
        rings.append(np.column_stack([xz[:, 0], y, xz[:, 1]]))
    for k, y in enumerate(np.linspace(1.35, 1.05, 8)[1:]):
        bulge = 1.0 + 0.04 * np.sin(np.pi * (k + 1) / 8) * (c > 0)
        rings.append(np.column_stack([body[:, 0] * (1 - 0.02 * k), np.full(cols, y), body[:, 1] * bulge]))
    pts = np.stack(rings) + [0.0, TORSO_LIFT, 0.0]
    pos = np.concatenate([pts.reshape(-1, 3), [[0.0, 1.05 + TORSO_LIFT, -0.02]]])
    tris = grid_triangles(len(rings), cols, wrap=True)
    last = (len(rings) - 1) * cols
    j = np.arange(cols)
    cap = np.stack([np.full(cols, len(pos) - 1), last + (j + 1) % cols, last + j], -1)
    tris = np.concatenate([tris, cap])
    tris = orient_outward(pos, tris, np.array([0.0, 1.25, -0.02]))
    mats = ["Collar" if t.max() < 3 * cols else "Shirt" for t in tris]
    return Part("torso", pos, tris, mats)


# ----------------------------------------------------------------------------------------------
# Rig: stacked vertex arrays of the morphing mesh and the 52 displacement fields
# ----------------------------------------------------------------------------------------------
class Rig:
    """The morphing parts stacked into one vertex array, with the helpers blendshapes are made of."""

    def __init__(self, parts: list[Part], landmarks: dict[str, np.ndarray], eyes: dict[str, np.ndarray]) -> None:
        self.parts = parts
        self.offsets = np.cumsum([0] + [len(p.pos) for p in parts])
        self.pos = np.concatenate([p.pos for p in parts])
        self.normals = np.concatenate([p.normals for p in parts])
        self.lm = landmarks
        self.eyes = eyes
        keys = {k for p in parts for k in p.tags}
        self.tag = {k: np.concatenate([p.tag(k) for p in parts]) for k in keys}
        self.x, self.y, self.z = self.pos.T
        self.skin = self.tag["skin"] * np.concatenate(
            [np.full(len(p.pos), 1.0 if p.name in ("skin",) or p.name.startswith("brow") else 0.0) for p in parts])
        self.skin_front = self.skin * smoothstep(0.0, 0.04, self.z) * (self.tag["pocket_ring"] == 0)
        self.mouth = self.tag["mouth_w"]
        half_w = float(landmarks["mouth_half_width"][0])
        self.half_w = half_w

    # --- regions -------------------------------------------------------------------------------
    def blob(self, x: float, y: float, sx: float, sy: float) -> np.ndarray:
        """Gaussian region on the front of the face around (x, y)."""
        return self.skin_front * gauss(np.hypot((self.x - x) / sx, (self.y - y) / sy))

    def left(self, sign: float = 1.0, soft: float = 0.008) -> np.ndarray:
        """Smooth mask of the subject's left (+X) half (sign -1: the right half)."""
        return smoothstep(-soft, soft, sign * self.x)

    def lip(self, upper: bool, reach: float = 0.0) -> np.ndarray:
        """The upper or lower lip (and the pocket rings right behind it); ``reach`` widens it away
        from the lip line."""
        sgn = 1.0 if upper else -1.0
        dy = self.tag["dy_line"]
        u = self.x / (self.half_w * 1.08)
        span = np.clip(1.0 - u ** 2, 0.0, 1.0) ** 0.6
        on_side = (self.tag["lip_side"] * sgn > 0).astype(float)
        away = np.clip(sgn * dy, 0.0, None)
        band = gauss(np.maximum(away - 0.008, 0.0) / (0.003 + reach))
        in_pocket = self.tag["pocket_ring"] > 0
        on_lip = np.where(in_pocket, 1.0, self.skin * smoothstep(0.03, 0.06, self.z))
        return on_lip * self.mouth * span * on_side * band

    def around_mouth(self, sx: float = 0.026, sy: float = 0.014) -> np.ndarray:
        """The mouth and the skin around it, including the lip edges and front of the pocket."""
        w = gauss(np.hypot(self.x / sx, (self.y - MOUTH_Y) / sy)) * self.mouth
        return w * ((self.skin_front > 0) | (self.tag["pocket_ring"] > 0))

    def corner(self, side: float, sx: float = 0.011, sy: float = 0.010) -> np.ndarray:
        """A mouth corner (side +1: subject's left) and its surroundings."""
        c = self.lm["corner_left"] if side > 0 else self.lm["corner_right"]
        w = gauss(np.hypot((self.x - c[0]) / sx, (self.y - c[1]) / sy)) * self.mouth
        return w * ((self.skin_front > 0) | (self.tag["pocket_ring"] > 0))

    def part_mask(self, name: str) -> np.ndarray:
        """1 on the vertices of the named part."""
        return np.concatenate([np.full(len(p.pos), float(p.name == name)) for p in self.parts])

    def cheeks(self) -> np.ndarray:
        """Both cheeks, between the mouth corners and the jaw (skin only, not the mouth pocket)."""
        d = np.hypot((np.abs(self.x) - 0.044) / 0.016,
                     np.hypot((self.y - 1.535) / 0.018, (self.z - 0.055) / 0.03))
        return gauss(d) * self.part_mask("skin") * (self.tag["pocket_ring"] == 0)

    # --- motions -------------------------------------------------------------------------------
    @staticmethod
    def move(weight: np.ndarray, vector: tuple[float, float, float]) -> np.ndarray:
        """Displacement ``weight * vector`` for every vertex."""
        return weight[:, None] * np.asarray(vector)[None, :]

    def jaw_rotation(self, degrees: float, weight: np.ndarray | None = None) -> np.ndarray:
        """Rotate the jaw about its hinge (positive: open)."""
        w = self.tag["jaw_w"] if weight is None else weight
        rotated = (self.pos - JAW_HINGE) @ rot_x(degrees).T + JAW_HINGE
        return w[:, None] * (rotated - self.pos + JAW_OPEN_SLIDE * degrees / JAW_OPEN_DEG)

    def lids(self, side: float, upper_to: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None,
             lower_to: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None,
             yaw: float = 0.0) -> np.ndarray:
        """Move one eye's lid edges: ``upper_to(tau, upper_edge, lower_edge)`` gives the new upper edge
        pitch (deg), likewise ``lower_to``; ``yaw`` shifts the lids sideways (deg, temporal +).
        Rows between the edge and the buried end of each shell follow proportionally."""
        out = np.zeros_like(self.pos)
        for upper, fn in ((1.0, upper_to), (-1.0, lower_to)):
            sel = (self.tag["lid_eye"] == side) & (self.tag["lid_upper"] == upper)
            if not np.any(sel):
                continue
            tau = self.tag["lid_tau"][sel]
            frac = self.tag["lid_frac"][sel]
            fold = self.tag["lid_fold"][sel]
            radius = self.tag["lid_radius"][sel]
            eu, el = lid_edges(tau)
            edge = eu if upper > 0 else el
            new_edge = fn(tau, eu, el) if fn is not None else edge
            end = LID_TOP * upper
            pitch = self.tag["lid_pitch"][sel]
            new_pitch = new_edge + frac * (end - new_edge) - upper * 1.2 * fold
            new_tau = tau + yaw * (1.0 - frac)
            eye = self.eyes["left" if side > 0 else "right"]
            out[sel] = lid_point(eye, side, new_tau, new_pitch, radius) - lid_point(eye, side, tau, pitch, radius)
        return out


def closed_edge(tau: np.ndarray, eu: np.ndarray, el: np.ndarray) -> np.ndarray:
    """Where the lids meet when closed: a little above the resting lower edge."""
    return el + 0.18 * (eu - el)


def blendshapes(rig: Rig) -> dict[str, np.ndarray]:
    """The 52 ARKit blendshapes as per-vertex displacements of the morphing mesh."""
    r = rig
    shapes: dict[str, np.ndarray] = {}
    above_eye = smoothstep(1.612, 1.622, r.y)

    # jaw and both lips
    jaw_open = r.jaw_rotation(JAW_OPEN_DEG)
    lip_drop = float(-jaw_open[r.lip(False).argmax(), 1])
    shapes["jawOpen"] = jaw_open
    shapes["jawForward"] = r.move(r.tag["jaw_w"], (0.0, -0.001, 0.008))
    shapes["mouthClose"] = (-0.62 * jaw_open * r.lip(False, reach=0.004)[:, None]
                            + r.move(r.lip(True, reach=0.002), (0.0, -0.38 * lip_drop, 0.001)))
    narrow = np.column_stack([-r.x, np.zeros_like(r.x), np.zeros_like(r.x)])
    shapes["mouthFunnel"] = (r.move(r.lip(True, 0.002), (0.0, 0.0035, 0.0045))
                             + r.move(r.lip(False, 0.002), (0.0, -0.0045, 0.0045))
                             + r.around_mouth()[:, None] * (0.28 * narrow + [0.0, 0.0, 0.002]))
    shapes["mouthPucker"] = (r.around_mouth(0.022, 0.013)[:, None] * (0.38 * narrow + [0.0, 0.0, 0.0075])
                             + r.move(r.lip(True, 0.001), (0.0, -0.0012, 0.002))
                             + r.move(r.lip(False, 0.001), (0.0, 0.0012, 0.002)))
    shapes["mouthRollUpper"] = r.move(r.lip(True), (0.0, -0.0030, -0.0045))
    shapes["mouthRollLower"] = r.move(r.lip(False), (0.0, 0.0030, -0.0045))
    shapes["mouthShrugUpper"] = r.move(r.lip(True, 0.003), (0.0, 0.0030, 0.0015))
    shapes["mouthShrugLower"] = (r.move(r.lip(False, 0.004), (0.0, 0.0030, 0.0020))
                                 + r.move(r.blob(0.0, 1.490, 0.018, 0.010), (0.0, 0.0025, 0.0015)))
    tongue, tip = r.part_mask("tongue"), r.tag["tongue_front"]
    shapes["tongueOut"] = (0.35 * jaw_open
                           + r.move(tongue * (0.35 + 0.65 * tip), (0.0, -0.004, 0.035))
                           + r.move(tongue * tip, (0.0, -0.002, 0.0)))
    shapes["cheekPuff"] = (r.cheeks()[:, None] * r.normals * 0.008
                           + r.move(r.lip(True) + r.lip(False), (0.0, 0.0, 0.0015)))
    shapes["browInnerUp"] = r.move(r.blob(0.0, 1.632, 0.021, 0.011) * above_eye, (0.0, 0.0060, 0.0))

    for s, name in ((1.0, "Left"), (-1.0, "Right")):
        half = r.left(s)                       # this side of the face only
        ex = EYE_X * s
        shapes[f"jaw{name}"] = r.move(r.tag["jaw_w"], (0.010 * s, 0.0, -0.001))
        shapes[f"mouth{name}"] = r.move(r.around_mouth(0.028, 0.016), (0.012 * s, 0.0, -0.0015))
        shapes[f"mouthSmile{name}"] = r.move(half * r.corner(s, 0.013, 0.012), (0.0055 * s, 0.0080, -0.0040)) \
            + r.move(half * r.blob(0.040 * s, 1.552, 0.014, 0.013), (0.0015 * s, 0.0025, 0.002))
        shapes[f"mouthFrown{name}"] = r.move(half * r.corner(s, 0.012, 0.012), (0.0015 * s, -0.0055, -0.001))
        shapes[f"mouthDimple{name}"] = r.move(half * r.corner(s, 0.010, 0.010), (0.0035 * s, 0.0, -0.0035))
        shapes[f"mouthStretch{name}"] = r.move(half * r.corner(s, 0.014, 0.012), (0.0065 * s, -0.0025, -0.002))
        shapes[f"mouthPress{name}"] = (r.move(half * r.lip(True), (0.0, -0.0015, -0.0015))
                                       + r.move(half * r.lip(False), (0.0, 0.0015, -0.0015)))
        shapes[f"mouthLowerDown{name}"] = r.move(half * r.lip(False, 0.004), (0.0, -0.0055, 0.001))
        shapes[f"mouthUpperUp{name}"] = r.move(half * r.lip(True, 0.003), (0.0, 0.0050, 0.001))
        shapes[f"noseSneer{name}"] = (r.move(half * r.blob(0.012 * s, 1.558, 0.007, 0.009), (0.0005 * s, 0.003, 0.0005))
                                      + r.move(half * r.blob(0.011 * s, 1.600, 0.008, 0.008) * above_eye, (0.0, -0.0015, 0.0)))
        shapes[f"cheekSquint{name}"] = (r.move(half * r.blob(0.038 * s, 1.574, 0.017, 0.011) * smoothstep(1.592, 1.583, r.y),
                                               (0.0, 0.0045, 0.0030))
                                        + r.lids(s, lower_to=lambda t, eu, el: el + 5.0))
        shapes[f"browDown{name}"] = r.move(half * r.blob(0.030 * s, 1.632, 0.020, 0.010) * above_eye,
                                           (-0.0015 * s, -0.0050, 0.0008))
        shapes[f"browOuterUp{name}"] = r.move(half * r.blob(0.046 * s, 1.634, 0.013, 0.010) * above_eye, (0.0, 0.0060, 0.0))
        # eyes: the lid edges slide over the eyeball (the eyeball itself turns with its node)
        shapes[f"eyeBlink{name}"] = r.lids(s, upper_to=lambda t, eu, el: closed_edge(t, eu, el) + 1.5,
                                           lower_to=closed_edge)
        shapes[f"eyeWide{name}"] = r.lids(s, upper_to=lambda t, eu, el: eu + 11.0, lower_to=lambda t, eu, el: el - 3.0)
        shapes[f"eyeSquint{name}"] = (r.lids(s, upper_to=lambda t, eu, el: eu - 4.0, lower_to=lambda t, eu, el: el + 9.0)
                                      + r.move(half * r.blob(ex, 1.584, 0.009, 0.005) * smoothstep(1.591, 1.584, r.y),
                                               (0.0, 0.002, 0.0005)))
        shapes[f"eyeLookUp{name}"] = r.lids(s, upper_to=lambda t, eu, el: eu + 8.0, lower_to=lambda t, eu, el: el + 4.0)
        shapes[f"eyeLookDown{name}"] = r.lids(s, upper_to=lambda t, eu, el: eu - 12.0, lower_to=lambda t, eu, el: el - 4.0)
        shapes[f"eyeLookIn{name}"] = r.lids(s, yaw=-7.0)
        shapes[f"eyeLookOut{name}"] = r.lids(s, yaw=7.0)
    assert set(shapes) == set(ARKIT_BLENDSHAPES), set(ARKIT_BLENDSHAPES) ^ set(shapes)
    return {name: shapes[name] for name in ARKIT_BLENDSHAPES}


# The proportion each identity shape changes at weight 1, relative (0.08: 8 % wider), measured the
# way engine.perception.appearance measures a photo (tests/test_default_avatar.py checks them).
IDENTITY_GAIN: dict[str, float] = {
    IdentityMorph.FACE_WIDTH: 0.08,
    IdentityMorph.JAW_WIDTH: 0.12,
    IdentityMorph.NOSE_WIDTH: 0.23,
    IdentityMorph.NOSE_LENGTH: 0.12,
    IdentityMorph.EYE_SPACING: 0.055,
}
EYE_SHIFT = 0.003   # how far idEyeSpacing moves each eye (and its node) outward at weight 1, m


def identity_shapes(r: Rig) -> dict[str, np.ndarray]:
    """The identity shapes: displacements of the morphing mesh that change the face's proportions.
    They keep clear of the eyes (except the eye spacing, which carries the eyes' lids and sockets),
    the mouth pocket and the hair, so expressions and hair still fit after baking them in."""
    ax, sgn = np.abs(r.x), np.sign(r.x)
    skin = r.part_mask("skin") * (r.tag["pocket_ring"] == 0)
    front = smoothstep(0.045, 0.075, r.z)

    def sideways(weight: np.ndarray) -> np.ndarray:
        return np.column_stack([sgn * weight, np.zeros_like(weight), np.zeros_like(weight)])

    out: dict[str, np.ndarray] = {}
    # the sides of the face beyond the outer eye corners, below the temples (the cap covers those)
    beyond = smoothstep(0.048, 0.075, ax) * (ax - 0.048)
    out[IdentityMorph.FACE_WIDTH] = sideways(
        0.30 * skin * beyond * smoothstep(-0.035, 0.005, r.z) * smoothstep(1.665, 1.625, r.y) * smoothstep(1.49, 1.53, r.y))
    # the jaw's sides, from the mouth corners out, under the cheeks
    jaw = smoothstep(0.026, 0.055, ax) * (ax - 0.026) * gauss((r.y - 1.512) / 0.022) * smoothstep(-0.04, 0.0, r.z)
    out[IdentityMorph.JAW_WIDTH] = sideways(0.30 * skin * jaw)
    # the nose: wings out (width), the tip and base down and a little forward (length)
    nose = skin * front * gauss(np.hypot(r.x / 0.019, (r.y - 1.561) / 0.012))
    out[IdentityMorph.NOSE_WIDTH] = np.column_stack([0.26 * r.x * nose, np.zeros_like(ax), np.zeros_like(ax)])
    lower_nose = skin * front * gauss(r.x / 0.015) * smoothstep(1.602, 1.565, r.y) * smoothstep(1.533, 1.552, r.y)
    out[IdentityMorph.NOSE_LENGTH] = r.move(lower_nose, (0.0, -0.0058, 0.0015))
    # eye spacing: each eye's lids fully, the skin of its socket and brow fading out
    spacing = np.zeros_like(ax)
    for side, key in ((1.0, "left"), (-1.0, "right")):
        eye = r.eyes[key]
        socket = r.skin * gauss(np.hypot((r.x - eye[0]) / 0.017, (r.y - eye[1]) / 0.017)) * (side * r.x > 0)
        spacing += np.where(r.tag["lid_eye"] == side, 1.0, socket)
    out[IdentityMorph.EYE_SPACING] = sideways(EYE_SHIFT * spacing)
    return {name: out[name] for name in IDENTITY_MORPHS}


# ----------------------------------------------------------------------------------------------
# Skin weights
# ----------------------------------------------------------------------------------------------
def neck_weights(pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Chest -> Neck -> Head blend along the neck (smooth, two influences at a time)."""
    y = pos[:, 1]
    head = smoothstep(1.46, 1.545, y)
    chest = smoothstep(1.44, 1.38, y)
    neck = 1.0 - head - chest
    joints = np.tile(np.array([CHEST, NECK, HEAD, 0], dtype=np.uint8), (len(pos), 1))
    weights = np.column_stack([chest, neck, head, np.zeros(len(pos))])
    return joints, weights


def rigid_weights(n: int, joint: int) -> tuple[np.ndarray, np.ndarray]:
    """Every vertex fully on one joint."""
    joints = np.zeros((n, 4), dtype=np.uint8)
    joints[:, 0] = joint
    weights = np.zeros((n, 4))
    weights[:, 0] = 1.0
    return joints, weights


def part_weights(part: Part) -> tuple[np.ndarray, np.ndarray]:
    """Skin weights of a part (only the neck and the shirt are not on the Head joint)."""
    if part.name in ("neck", "hair_hanging"):   # hanging hair rests on the shoulders: it blends like the neck
        return neck_weights(part.pos)
    if part.name == "torso":
        return rigid_weights(len(part.pos), CHEST)
    if part.name == "ponytail":
        return ponytail_weights(part.tag("chain"))
    return rigid_weights(len(part.pos), HEAD)


# ----------------------------------------------------------------------------------------------
# glTF writer
# ----------------------------------------------------------------------------------------------
FLOAT, UBYTE, USHORT, UINT = 5126, 5121, 5123, 5125
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963


class GlbWriter:
    """Accumulates one binary buffer plus the accessors that point into it; given a loaded
    ``gltf``, appends to its binary chunk instead of starting a new file."""

    def __init__(self, gltf: gl.GLTF2 | None = None) -> None:
        self.gltf = gltf or gl.GLTF2(asset=gl.Asset(version="2.0", generator="avatarcam make_default_avatar.py"))
        self.blob = bytearray(gltf.binary_blob() or b"") if gltf is not None else bytearray()

    def view(self, data: bytes, target: int | None = None) -> int:
        """Append ``data`` as a 4-byte aligned buffer view."""
        self.blob.extend(b"\0" * (-len(self.blob) % 4))
        self.gltf.bufferViews.append(gl.BufferView(buffer=0, byteOffset=len(self.blob), byteLength=len(data), target=target))
        self.blob.extend(data)
        return len(self.gltf.bufferViews) - 1

    def accessor(self, array: np.ndarray, component: int, kind: str, target: int | None = ARRAY_BUFFER,
                 minmax: bool = False) -> int:
        """A tightly packed accessor for ``array`` (count x width)."""
        dtype = {FLOAT: np.float32, UBYTE: np.uint8, USHORT: np.uint16, UINT: np.uint32}[component]
        data = np.ascontiguousarray(array, dtype=dtype)
        acc = gl.Accessor(bufferView=self.view(data.tobytes(), target), componentType=component,
                          count=len(data), type=kind)
        if minmax:
            flat = data.reshape(len(data), -1)
            acc.min = [float(v) for v in flat.min(axis=0)]
            acc.max = [float(v) for v in flat.max(axis=0)]
        self.gltf.accessors.append(acc)
        return len(self.gltf.accessors) - 1

    def sparse_vec3(self, values: np.ndarray, threshold: float) -> int:
        """A VEC3 float accessor of zeros overridden (sparsely) where ``values`` exceed ``threshold``."""
        values = values.astype(np.float32)
        where = np.nonzero(np.abs(values).max(axis=1) > threshold)[0]
        if len(where) == 0:
            where = np.array([0])
        kept = np.ascontiguousarray(values[where])
        index_type = USHORT if len(values) < 65536 else UINT
        idx = self.view(np.ascontiguousarray(where, dtype=np.uint16 if index_type == USHORT else np.uint32).tobytes())
        val = self.view(kept.tobytes())
        lo = np.minimum(kept.min(axis=0), 0.0)
        hi = np.maximum(kept.max(axis=0), 0.0)
        acc = gl.Accessor(componentType=FLOAT, count=len(values), type="VEC3",
                          min=[float(v) for v in lo], max=[float(v) for v in hi],
                          sparse=gl.Sparse(count=len(where),
                                           indices=gl.AccessorSparseIndices(bufferView=idx, componentType=index_type),
                                           values=gl.AccessorSparseValues(bufferView=val)))
        self.gltf.accessors.append(acc)
        return len(self.gltf.accessors) - 1


def split_by_material(part: Part) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(material, vertex ids, local triangles) for each material a part uses."""
    mats = np.array(part.materials)
    out = []
    for name in dict.fromkeys(part.materials):
        tris = part.tris[mats == name]
        used, inverse = np.unique(tris, return_inverse=True)
        out.append((name, used, inverse.reshape(tris.shape)))
    return out


def normals_after(parts: list[Part], offsets: np.ndarray, displaced: np.ndarray) -> np.ndarray:
    """Normals of every part recomputed on displaced positions."""
    return np.concatenate([vertex_normals(displaced[offsets[i]:offsets[i + 1]], p.tris) for i, p in enumerate(parts)])


def write_glb(path: Path, face_parts: list[Part], body_parts: list[Part], rig: Rig,
              shapes: dict[str, np.ndarray], eyeball: dict[str, tuple[np.ndarray, ...]],
              eyes: dict[str, np.ndarray], palette: dict[str, tuple[float, float, float, float]],
              rest: np.ndarray, vrm_path: Path | None = None) -> dict[str, int]:
    """Assemble nodes, skin, materials and both meshes; write the GLB (and the VRM 1.0 file when
    ``vrm_path`` is given); return a few counts. ``palette``: each material's linear RGBA (only
    those listed are written); ``rest``: the morphing mesh's rest positions (``rig.pos`` with any
    identity shapes baked in)."""
    w = GlbWriter()
    g = w.gltf
    mat_index = {}
    for name, (_, rough, double) in MATERIALS.items():
        if name not in palette:
            continue
        mat_index[name] = len(g.materials)
        g.materials.append(gl.Material(name=name, doubleSided=double, pbrMetallicRoughness=gl.PbrMetallicRoughness(
            baseColorFactor=list(palette[name]), metallicFactor=0.0, roughnessFactor=rough),
            emissiveFactor=list(CATCH_LIGHT_EMISSIVE) if name == "CatchLight" else None))

    # nodes
    names = ["Root", "Hips", "Spine", "Chest", "Neck", "Head", "LeftEye", "RightEye", "Face", "Body", *PONYTAIL]
    idx = {n: i for i, n in enumerate(names)}
    world = {k: np.array(v) for k, v in JOINT_POSITIONS.items()}
    world["LeftEye"], world["RightEye"] = eyes["left"], eyes["right"]
    parent = {"Hips": "Root", "Spine": "Hips", "Chest": "Spine", "Neck": "Chest", "Head": "Neck",
              "LeftEye": "Head", "RightEye": "Head", **dict(zip(PONYTAIL, ("Head", *PONYTAIL[:-1])))}
    for n in names:
        node = gl.Node(name=n)
        if n in parent:
            node.translation = [round(float(v), 6) for v in world[n] - world[parent[n]]]
        g.nodes.append(node)
    for child, par in parent.items():
        g.nodes[idx[par]].children.append(idx[child])
    g.nodes[idx["Root"]].children += [idx["Face"], idx["Body"]]
    g.nodes[idx["Root"]].extras = {"avatarcam": {"version": 1, "arkit": True}}
    g.scenes = [gl.Scene(name="Scene", nodes=[idx["Root"]])]
    g.scene = 0

    # skin
    ibm = np.zeros((len(SKIN_JOINTS), 16), dtype=np.float32)
    for k, j in enumerate(SKIN_JOINTS):
        m = np.eye(4)
        m[:3, 3] = -world[j]
        ibm[k] = m.T.reshape(-1)          # column-major
    g.skins.append(gl.Skin(name="Skin", joints=[idx[j] for j in SKIN_JOINTS], skeleton=idx["Hips"],
                           inverseBindMatrices=w.accessor(ibm, FLOAT, "MAT4", target=None)))

    tri_total = 0
    vert_total = 0

    def primitive(pos: np.ndarray, nrm: np.ndarray, tris: np.ndarray, material: str,
                  joints: np.ndarray | None = None, weights: np.ndarray | None = None) -> gl.Primitive:
        nonlocal tri_total, vert_total
        tri_total += len(tris)
        vert_total += len(pos)
        attrs = gl.Attributes(POSITION=w.accessor(pos, FLOAT, "VEC3", minmax=True),
                              NORMAL=w.accessor(nrm, FLOAT, "VEC3"))
        if joints is not None:
            attrs.JOINTS_0 = w.accessor(joints, UBYTE, "VEC4")
            attrs.WEIGHTS_0 = w.accessor(weights, FLOAT, "VEC4")
        ind_type = USHORT if len(pos) < 65536 else UINT
        return gl.Primitive(attributes=attrs, material=mat_index[material], mode=4,
                            indices=w.accessor(tris.reshape(-1), ind_type, "SCALAR", target=ELEMENT_ARRAY_BUFFER))

    # the morphing face mesh: the ARKit targets, then the identity targets
    names52 = list(ARKIT_BLENDSHAPES)
    names = names52 + list(IDENTITY_MORPHS)
    rest_normals = rig.normals if rest is rig.pos else normals_after(face_parts, rig.offsets, rest)
    shape_normals = {n: normals_after(face_parts, rig.offsets, rest + shapes[n]) - rest_normals for n in names}
    face = gl.Mesh(name="Face", weights=[0.0] * len(names), extras={
        "targetNames": names,
        # idEyeSpacing also moves the eye nodes (applied to the rest shape, as avatarcam's looks do)
        "identityNodeOffsets": {IdentityMorph.EYE_SPACING.value: {"LeftEye": [EYE_SHIFT, 0.0, 0.0],
                                                                  "RightEye": [-EYE_SHIFT, 0.0, 0.0]}}})
    for pi, part in enumerate(face_parts):
        joints, weights = part_weights(part)
        base = rig.offsets[pi]
        part_rest, part_normals = rest[base:base + len(part.pos)], rest_normals[base:base + len(part.pos)]
        for material, used, tris in split_by_material(part):
            prim = primitive(part_rest[used], part_normals[used], tris, material, joints[used], weights[used])
            prim.targets = []
            for n in names:
                prim.targets.append({
                    "POSITION": w.sparse_vec3(shapes[n][base + used], 2e-6),
                    "NORMAL": w.sparse_vec3(shape_normals[n][base + used], 2e-3),
                })
            prim.extras = {"part": part.name}
            face.primitives.append(prim)
    g.meshes.append(face)
    g.nodes[idx["Face"]].mesh = 0
    g.nodes[idx["Face"]].skin = 0

    body = gl.Mesh(name="Body")
    for part in body_parts:
        joints, weights = part_weights(part)
        for material, used, tris in split_by_material(part):
            prim = primitive(part.pos[used], part.normals[used], tris, material, joints[used], weights[used])
            prim.extras = {"part": part.name}
            body.primitives.append(prim)
    g.meshes.append(body)
    g.nodes[idx["Body"]].mesh = 1
    g.nodes[idx["Body"]].skin = 0

    eye_mesh = gl.Mesh(name="Eyeball")
    for material, (pos, nrm, tris, colours) in eyeball.items():
        prim = primitive(pos, nrm, tris, material)
        if material == "Iris":
            prim.attributes.COLOR_0 = w.accessor(colours, FLOAT, "VEC4")
        eye_mesh.primitives.append(prim)
    tri_total += sum(len(e[2]) for e in eyeball.values())     # the eyeball is drawn twice
    vert_total += sum(len(e[0]) for e in eyeball.values())
    g.meshes.append(eye_mesh)
    g.nodes[idx["LeftEye"]].mesh = 2
    g.nodes[idx["RightEye"]].mesh = 2

    # the ponytail swings (read by avatarcam from the GLB too; other glTF tools ignore it)
    g.extensions = {"VRMC_springBone": spring_bone_extension(idx)}
    g.extensionsUsed = ["VRMC_springBone"]
    g.buffers = [gl.Buffer(byteLength=len(w.blob))]
    g.set_binary_blob(bytes(w.blob))
    path.parent.mkdir(parents=True, exist_ok=True)
    g.save_binary(str(path))
    stats = {"triangles": tri_total, "vertices": vert_total, "bytes": path.stat().st_size}
    if vrm_path is not None:  # the same model plus the VRMC_vrm extension
        g.extensions = {"VRMC_vrm": vrm_extension(idx, names52, eyes), **g.extensions}
        g.extensionsUsed = ["VRMC_vrm", "VRMC_springBone"]
        g.save_binary(str(vrm_path))
        stats["vrm_bytes"] = vrm_path.stat().st_size
    return stats


# ----------------------------------------------------------------------------------------------
# VRM 1.0
# ----------------------------------------------------------------------------------------------
def _both(name: str, weight: float) -> dict[str, float]:
    return {f"{name}Left": weight, f"{name}Right": weight}


# VRM 1.0 preset expressions as mixes of the ARKit morph targets: {expression: (binds, overrides)}
VRM_EXPRESSIONS: dict[str, tuple[dict[str, float], dict[str, str]]] = {
    "aa": ({"jawOpen": 0.75, **_both("mouthLowerDown", 0.3), "mouthShrugUpper": 0.2}, {}),
    "ih": ({"jawOpen": 0.22, **_both("mouthStretch", 0.55), **_both("mouthSmile", 0.2)}, {}),
    "ou": ({"mouthPucker": 0.95, "jawOpen": 0.12}, {}),
    "ee": ({"jawOpen": 0.15, **_both("mouthStretch", 0.8), **_both("mouthSmile", 0.35)}, {}),
    "oh": ({"mouthFunnel": 0.9, "jawOpen": 0.4}, {}),
    "happy": ({**_both("mouthSmile", 1.0), **_both("cheekSquint", 0.7), **_both("eyeSquint", 0.45),
               "browInnerUp": 0.15}, {"overrideMouth": "blend"}),
    "angry": ({**_both("browDown", 1.0), **_both("noseSneer", 0.45), **_both("mouthFrown", 0.5),
               **_both("mouthPress", 0.4), **_both("eyeSquint", 0.3)}, {"overrideMouth": "blend"}),
    "sad": ({"browInnerUp": 1.0, **_both("mouthFrown", 0.85), "mouthShrugLower": 0.35,
             **_both("eyeLookDown", 0.2)}, {"overrideMouth": "blend"}),
    "relaxed": ({**_both("mouthSmile", 0.45), **_both("eyeBlink", 0.45), "browInnerUp": 0.2},
                {"overrideBlink": "blend"}),
    "surprised": ({**_both("eyeWide", 1.0), "browInnerUp": 0.9, **_both("browOuterUp", 0.9), "jawOpen": 0.35,
                   "mouthFunnel": 0.25}, {"overrideBlink": "block", "overrideMouth": "blend"}),
    "blink": ({**_both("eyeBlink", 1.0)}, {}),
    "blinkLeft": ({"eyeBlinkLeft": 1.0}, {}),
    "blinkRight": ({"eyeBlinkRight": 1.0}, {}),
}
VRM_META = {
    "name": "avatarcam default avatar", "version": "2", "authors": ["avatarcam contributors"],
    "copyrightInformation": "avatarcam contributors, Apache-2.0",
    "licenseUrl": "https://vrm.dev/licenses/1.0/", "otherLicenseUrl": "https://www.apache.org/licenses/LICENSE-2.0",
    "avatarPermission": "everyone", "allowExcessivelyViolentUsage": False, "allowExcessivelySexualUsage": False,
    "commercialUsage": "corporation", "allowPoliticalOrReligiousUsage": True, "allowAntisocialOrHateUsage": False,
    "creditNotation": "unnecessary", "allowRedistribution": True, "modification": "allowModificationRedistribution",
}


def vrm_extension(idx: dict[str, int], names52: list[str], eyes: dict[str, np.ndarray]) -> dict:
    """The ``VRMC_vrm`` object: meta and licence, humanoid bones, bone lookAt, expressions bound
    to the Face mesh's ARKit morph targets."""
    face = idx["Face"]
    target = {n: i for i, n in enumerate(names52)}
    preset = {}
    for name, (binds, overrides) in VRM_EXPRESSIONS.items():
        preset[name] = {"morphTargetBinds": [{"node": face, "index": target[t], "weight": w} for t, w in binds.items()],
                        "isBinary": False, **overrides}
    head = np.array(JOINT_POSITIONS["Head"])
    between_eyes = (eyes["left"] + eyes["right"]) / 2.0 - head
    bones = {"hips": "Hips", "spine": "Spine", "chest": "Chest", "neck": "Neck", "head": "Head",
             "leftEye": "LeftEye", "rightEye": "RightEye"}
    return {
        "specVersion": "1.0",
        "meta": VRM_META,
        "humanoid": {"humanBones": {bone: {"node": idx[node]} for bone, node in bones.items()}},
        "lookAt": {"type": "bone", "offsetFromHeadBone": [round(float(v), 5) for v in between_eyes],
                   "rangeMapHorizontalInner": {"inputMaxValue": 90.0, "outputScale": 90.0},
                   "rangeMapHorizontalOuter": {"inputMaxValue": 90.0, "outputScale": 90.0},
                   "rangeMapVerticalDown": {"inputMaxValue": 90.0, "outputScale": 90.0},
                   "rangeMapVerticalUp": {"inputMaxValue": 90.0, "outputScale": 90.0}},
        "expressions": {"preset": preset},
    }


# ----------------------------------------------------------------------------------------------
# Assembly
# ----------------------------------------------------------------------------------------------
def spring_bone_extension(idx: dict[str, int]) -> dict:
    """``VRMC_springBone``: the ponytail chain, kept off the head (sphere) and the back (capsule)."""
    head, chest = np.array(JOINT_POSITIONS["Head"]), np.array(JOINT_POSITIONS["Chest"])
    head_offset = [round(float(v), 4) for v in HEAD_CENTRE - head]
    return {
        "specVersion": "1.0",
        "colliders": [
            {"node": idx["Head"], "shape": {"sphere": {"offset": head_offset, "radius": 0.095}}},
            {"node": idx["Chest"], "shape": {"capsule": {"offset": [0.0, 0.0, -0.01], "radius": 0.075,
                                                          "tail": [0.0, round(1.47 - float(chest[1]), 4), -0.01]}}},
        ],
        "colliderGroups": [{"name": "Body", "colliders": [0, 1]}],
        "springs": [{
            "name": "Ponytail",
            "joints": [{"node": idx[n], "hitRadius": 0.02, "stiffness": 2.0, "gravityPower": 0.2,
                        "gravityDir": [0.0, -1.0, 0.0], "dragForce": 0.6} for n in PONYTAIL],
            "colliderGroups": [0],
        }],
    }


def eye_centres() -> dict[str, np.ndarray]:
    """Eyeball centres: set back from the (socketed) skin so the front stands out by EYE_PROTRUSION."""
    skin = points_toward(np.array([EYE_X, EYE_Y]))[0]
    z = float(skin[2]) + EYE_PROTRUSION - EYE_RADIUS
    return {"left": np.array([EYE_X, EYE_Y, z]), "right": np.array([-EYE_X, EYE_Y, z])}


@dataclass(frozen=True)
class Face:
    """The morphing face, the same for every look: its parts, rig and every morph target."""

    eyes: dict[str, np.ndarray]
    parts: list[Part]
    rig: Rig
    shapes: dict[str, np.ndarray]


@functools.cache
def build_face() -> Face:
    """Build the face once per process (most of a build's time is here)."""
    eyes = eye_centres()
    skin, landmarks = build_skin(eyes)
    lip_z = float(landmarks["lip_centre"][2])
    face_parts = [skin]
    for side, key in ((1.0, "left"), (-1.0, "right")):
        face_parts += [build_lid(eyes[key], side, True), build_lid(eyes[key], side, False), build_brow(side)]
    face_parts += [build_teeth(lip_z, True), build_teeth(lip_z, False), build_tongue(lip_z)]
    rig = Rig(face_parts, landmarks, eyes)
    return Face(eyes, face_parts, rig, {**blendshapes(rig), **identity_shapes(rig)})


def build_body(style: Style, eyes: dict[str, np.ndarray]) -> list[Part]:
    """Hair of the look's style, ears, neck, shirt and the glasses when the look has them."""
    hair = [build_hair()]
    if style.hair_style is HairStyle.PONYTAIL:
        hair.append(build_ponytail())
    elif style.hair_style in HANGING_HAIR:
        hair.append(build_hanging_hair(style.hair_style))
    return [*hair, *build_ears(), build_neck(), build_torso(), *([build_glasses(eyes)] if style.glasses else [])]


def build(out: Path, vrm_out: Path | None = None, style: Style | None = None) -> dict[str, int]:
    """Write the avatar with ``style`` (the default avatar when None) to ``out`` (and the VRM to
    ``vrm_out``); return its triangle, vertex and byte counts."""
    style = style or Style()
    unknown = set(style.identity) - set(IDENTITY_MORPHS)
    if unknown:
        raise ValueError(f"unknown identity shapes {sorted(unknown)}")
    face = build_face()
    weights = {name: float(np.clip(style.identity.get(name, 0.0), -1.0, 1.0)) for name in IDENTITY_MORPHS}
    rest = face.rig.pos
    if any(weights.values()):
        rest = rest + sum(weight * face.shapes[name] for name, weight in weights.items())
    shift = np.array([EYE_SHIFT * weights[IdentityMorph.EYE_SPACING], 0.0, 0.0])
    eyes = {"left": face.eyes["left"] + shift, "right": face.eyes["right"] - shift}
    return write_glb(out, face.parts, build_body(style, eyes), face.rig, face.shapes,
                     build_eyeball(iris_colours(style)), eyes, material_colours(style), rest, vrm_out)
