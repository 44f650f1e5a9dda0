"""FLAME parameters from MediaPipe landmarks: a landmark embedding, per-frame fits, identity fits.

**The landmark embedding** ties each of MediaPipe's 468 mesh landmarks to a point on the FLAME
surface (a triangle and barycentric weights). It is computed for the user's own model file, since
no embedding may be shipped with a model that is not shipped (``compute_embedding``):
1. MediaPipe's canonical face (``engine.perception.face_geometry``, metres, +Y up, facing +Z: the
   same axes as FLAME's) is aligned to the FLAME mean shape by three anchors, each eye (the mean of
   its two corners, landmarks 33/133 and 263/362, against FLAME's eye joints, moved forward to the
   eyeball's front) and the nose tip (landmark 1, against the mean shape's front-most vertex):
   a scale and a translation;
2. the alignment is refined by iterative closest points (a similarity transform, 20 rounds, each
   canonical point against its nearest mean-shape vertex);
3. each aligned canonical point is projected to the closest point of the FLAME surface, which
   gives its triangle and barycentric weights.
The irises (landmarks 468..477) are not embedded: the gaze comes from the tracker's own reading.

**Per-frame fit** (``FlameFitter.fit``): the observed landmarks (any similarity frame: MediaPipe's
normalised image coordinates will do, see ``landmark_points``) are explained by a similarity
transform (the head's pose and scale), the expression coefficients and the jaw's opening angle.
Alternating: (1) the similarity from the current model points (Umeyama); (2) the expression by
linear least squares with a Gaussian prior (for a fixed jaw angle the skinned landmarks are linear
in the expression); (3) a Gauss-Newton step on the jaw angle. Warm-started from the previous frame.

**Identity** (``fit_identity``): the shape coefficients, fitted once per user from a few frames by
the same alternation with a least-squares step on the shape (prior ``shape_sigma``).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.avatar.loading.flame import JAW, LEFT_EYE, RIGHT_EYE, FlameModel, expression_weights
from engine.errors import ModelError
from engine.perception.face_geometry import MESH_LANDMARKS, canonical_face

log = logging.getLogger(__name__)

# MediaPipe mesh landmark numbers of the anchors (the subject's own left and right).
LEFT_EYE_CORNERS = (263, 362)
RIGHT_EYE_CORNERS = (33, 133)
NOSE_TIP = 1
EYEBALL_RADIUS_M = 0.012  # FLAME's eye joints sit at the eyeball's centre; the corners lie on its front
ICP_ROUNDS = 20


@dataclass(frozen=True, eq=False)
class LandmarkEmbedding:
    """MediaPipe landmark ``landmarks[i]`` is the point ``barycentric[i]`` of triangle ``faces[i]``."""

    landmarks: np.ndarray  # L MediaPipe landmark numbers
    faces: np.ndarray  # L triangle indices into the model's faces
    barycentric: np.ndarray  # L x 3

    def points(self, model: FlameModel, vertices: np.ndarray) -> np.ndarray:
        """L x 3 landmark positions on a mesh of the model."""
        corners = vertices[model.faces[self.faces]]  # L x 3 x 3
        return np.einsum("lk,lkd->ld", self.barycentric, corners)


def similarity(source: np.ndarray, target: np.ndarray, *, scale: bool = True) -> tuple[float, np.ndarray, np.ndarray]:
    """``(s, R, t)`` minimising ``|s R source + t - target|`` (Umeyama), points as rows."""
    mu_s, mu_t = source.mean(axis=0), target.mean(axis=0)
    a, b = source - mu_s, target - mu_t
    u, sigma, vt = np.linalg.svd(b.T @ a / len(source))
    d = np.eye(3)
    d[2, 2] = np.sign(np.linalg.det(u @ vt)) or 1.0
    rotation = u @ d @ vt
    s = float(np.trace(np.diag(sigma) @ d) / (a**2).sum(axis=1).mean()) if scale else 1.0
    return s, rotation, mu_t - s * rotation @ mu_s


def closest_points_on_triangles(point: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For one point and T x 3 x 3 triangles: the closest point on each (T x 3) and its barycentric
    weights (T x 3). Ericson, *Real-Time Collision Detection*, 5.1.5, vectorised over triangles."""
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    ab, ac, ap = b - a, c - a, point - a
    d1, d2 = (ab * ap).sum(1), (ac * ap).sum(1)
    bp, cp = point - b, point - c
    d3, d4 = (ab * bp).sum(1), (ac * bp).sum(1)
    d5, d6 = (ab * cp).sum(1), (ac * cp).sum(1)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = va + vb + vc
        v, w = vb / denom, vc / denom  # inside the face
        bary = np.stack([1 - v - w, v, w], axis=1)
        edge_ab = d1 / (d1 - d3)
        edge_ac = d2 / (d2 - d6)
        edge_bc = (d4 - d3) / ((d4 - d3) + (d5 - d6))
    cases = [  # later cases are more specific: applied last, they win
        ((vc <= 0) & (d1 >= 0) & (d3 <= 0), lambda: np.stack([1 - edge_ab, edge_ab, 0 * edge_ab], 1)),
        ((vb <= 0) & (d2 >= 0) & (d6 <= 0), lambda: np.stack([1 - edge_ac, 0 * edge_ac, edge_ac], 1)),
        ((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0), lambda: np.stack([0 * edge_bc, 1 - edge_bc, edge_bc], 1)),
        ((d1 <= 0) & (d2 <= 0), lambda: np.tile([1.0, 0.0, 0.0], (len(a), 1))),
        ((d3 >= 0) & (d4 <= d3), lambda: np.tile([0.0, 1.0, 0.0], (len(a), 1))),
        ((d6 >= 0) & (d5 <= d6), lambda: np.tile([0.0, 0.0, 1.0], (len(a), 1))),
    ]
    for mask, weights in cases:
        if mask.any():
            bary[mask] = weights()[mask]
    bary = np.nan_to_num(bary, nan=1.0 / 3.0)
    return np.einsum("tk,tkd->td", bary, triangles), bary


def compute_embedding(model: FlameModel, canonical: np.ndarray) -> LandmarkEmbedding:
    """The embedding of MediaPipe's canonical face (468 x 3, metres) on ``model``'s mean shape, by
    the procedure in the module docstring."""
    mean = model.v_template
    joints = model.joints(mean)
    eye_front = np.array([0.0, 0.0, EYEBALL_RADIUS_M])
    anchors_flame = np.stack([joints[LEFT_EYE] + eye_front, joints[RIGHT_EYE] + eye_front, mean[np.argmax(mean[:, 2])]])
    anchors_mp = np.stack([canonical[list(LEFT_EYE_CORNERS)].mean(0), canonical[list(RIGHT_EYE_CORNERS)].mean(0),
                           canonical[NOSE_TIP]])
    s = np.linalg.norm(anchors_flame[0] - anchors_flame[1]) / np.linalg.norm(anchors_mp[0] - anchors_mp[1])
    points = s * canonical + (anchors_flame - s * anchors_mp).mean(axis=0)
    for _ in range(ICP_ROUNDS):
        nearest = mean[np.argmin(((points[:, None, :] - mean[None, :, :]) ** 2).sum(-1), axis=1)]
        s, r, t = similarity(points, nearest)
        points = s * points @ r.T + t
    triangles = mean[model.faces]
    centres = triangles.mean(axis=1)
    faces, barycentric = np.empty(len(points), np.int64), np.empty((len(points), 3))
    for i, p in enumerate(points):
        # Only triangles near the point can hold its closest point: the 64 nearest by centre.
        near = np.argpartition(((centres - p) ** 2).sum(1), min(64, len(centres) - 1))[:64]
        closest, bary = closest_points_on_triangles(p, triangles[near])
        best = int(np.argmin(((closest - p) ** 2).sum(1)))
        faces[i], barycentric[i] = near[best], bary[best]
    return LandmarkEmbedding(landmarks=np.arange(len(points)), faces=faces, barycentric=barycentric)


def landmark_points(landmarks: np.ndarray, aspect: float) -> np.ndarray:
    """MediaPipe's normalised landmarks (x right, y down, z away from the camera, 0..1 of the
    image width/height; z on the x scale) as 3D points on FLAME's axes (+Y up, +Z toward the
    camera), up to a similarity the fit absorbs. ``aspect``: the image's width / height."""
    lm = np.asarray(landmarks, dtype=np.float64)
    return np.stack([(lm[:, 0] - 0.5) * aspect, 0.5 - lm[:, 1], -lm[:, 2] * aspect], axis=1)


_JAW_STEP = 1e-4  # radians: the jaw's derivative by a finite difference


def _skew(q: np.ndarray) -> np.ndarray:
    """L x 3 x 3 cross-product matrices: ``_skew(q)[i] @ w == q[i] x w``."""
    zero = np.zeros(len(q))
    return np.stack([np.stack([zero, -q[:, 2], q[:, 1]], 1), np.stack([q[:, 2], zero, -q[:, 0]], 1),
                     np.stack([-q[:, 1], q[:, 0], zero], 1)], 1)


def _rodrigues(w: np.ndarray) -> np.ndarray:
    angle = float(np.linalg.norm(w))
    if angle < 1e-12:
        return np.eye(3)
    k = _skew((w / angle)[None])[0]
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def _rotation_x(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


@dataclass
class FlameFit:
    """One frame's parameters: expression (standard deviations), jaw opening (radians, about the
    jaw joint's x axis; > 0 opens), and the similarity from model to observed points."""

    expression: np.ndarray
    jaw: float = 0.0
    scale: float = 1.0
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    translation: np.ndarray = field(default_factory=lambda: np.zeros(3))
    rms: float = 0.0  # residual, model-space metres


class FlameFitter:
    """Fits one model's parameters to landmark sets; keeps the last fit to warm-start the next.

    ``expression_sigma`` and ``shape_sigma``: the landmark noise (metres, model space) the priors
    weigh against (a Gaussian prior of unit variance on every coefficient, i.e. Tikhonov with
    lambda = sigma**2). ``jaw_sigma``: the prior on the jaw angle (radians).
    """

    def __init__(self, model: FlameModel, embedding: LandmarkEmbedding, betas: np.ndarray | None = None, *,
                 expression_sigma: float = 0.002, shape_sigma: float = 0.002, jaw_sigma: float = 0.35,
                 iterations: int = 10) -> None:
        self.model = model
        self.embedding = embedding
        self.expression_sigma, self.shape_sigma, self.jaw_sigma = expression_sigma, shape_sigma, jaw_sigma
        self.iterations = iterations
        corners = model.faces[embedding.faces]  # L x 3 vertex numbers
        self._corners = corners
        self._jaw_weight = model.weights[corners, JAW]  # L x 3
        self.betas = np.zeros(model.shape_count)
        self._set_betas(betas)
        self.last: FlameFit | None = None

    def _set_betas(self, betas: np.ndarray | None) -> None:
        if betas is not None:
            self.betas[: len(betas)] = np.asarray(betas, dtype=np.float64)[: self.model.shape_count]
        neutral = self.model.shaped(self.betas)
        self._rest = neutral[self._corners]  # L x 3 x 3
        self._jaw_centre = self.model.joints(neutral)[JAW]

    def _linear(self, jaw: float, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Landmarks as ``offset + A @ coefficients`` for a fixed jaw angle, where ``directions``
        (N x 3 x K) are the blendshapes the coefficients weigh: (L*3, ) and (L*3 x K)."""
        turn = _rotation_x(jaw) - np.eye(3)  # skinned = v + w_jaw (R - I)(v - centre)
        b = self.embedding.barycentric
        moved = self._rest + self._jaw_weight[..., None] * ((self._rest - self._jaw_centre) @ turn.T)
        offset = np.einsum("lk,lkd->ld", b, moved)
        dirs = directions[self._corners]  # L x 3 x 3 x K
        dirs = dirs + self._jaw_weight[..., None, None] * np.einsum("de,lcek->lcdk", turn, dirs) if jaw else dirs
        matrix = np.einsum("lk,lkdc->ldc", b, dirs)
        return offset.reshape(-1), matrix.reshape(-1, directions.shape[2])

    def points(self, expression: np.ndarray, jaw: float) -> np.ndarray:
        offset, matrix = self._linear(jaw, self.model.exprdirs)
        return (offset + matrix @ expression).reshape(-1, 3)

    def fit(self, observed: np.ndarray) -> FlameFit:
        """Fit one frame's landmarks (L x 3, in the embedding's landmark order)."""
        observed = np.asarray(observed, dtype=np.float64)
        previous = self.last
        expression = previous.expression.copy() if previous is not None else np.zeros(self.model.expression_count)
        jaw = previous.jaw if previous is not None else 0.0
        s, r, t = similarity(self.points(expression, jaw), observed)
        count = self.model.expression_count
        for _ in range(self.iterations):
            offset, matrix = self._linear(jaw, self.model.exprdirs)
            points = (offset + matrix @ expression).reshape(-1, 3)
            opened = (self.points(expression, jaw + _JAW_STEP) - points) / _JAW_STEP
            q = s * points @ r.T
            residual = (q + t - observed).reshape(-1)
            jacobian = np.zeros((residual.size, 7 + count + 1))
            jacobian[:, 0:3] = -_skew(q).reshape(-1, 3)  # a small turn w of the whole: dq = w x q
            jacobian[:, 3] = q.reshape(-1)  # log-scale
            jacobian[:, 4:7] = np.tile(np.eye(3), (len(q), 1))
            jacobian[:, 7:7 + count] = s * np.einsum("de,lek->ldk", r, matrix.reshape(len(q), 3, count)).reshape(-1, count)
            jacobian[:, -1] = (s * opened @ r.T).reshape(-1)
            # Priors in observed units: a coefficient of 1 costs as much as ``expression_sigma`` of residual.
            noise = (s * self.expression_sigma) ** 2
            prior = np.r_[np.zeros(7), np.full(count, noise), noise / self.jaw_sigma**2]
            current = np.r_[np.zeros(7), expression, jaw]
            step = -np.linalg.solve(jacobian.T @ jacobian + np.diag(prior) + 1e-12 * np.eye(len(prior)),
                                    jacobian.T @ residual + prior * current)
            r = _rodrigues(step[0:3]) @ r
            s *= float(np.exp(step[3]))
            t = t + step[4:7]
            expression = expression + step[7:7 + count]
            jaw += float(step[-1])
            if np.abs(step).max() < 1e-7:
                break
        target = (observed - t) @ r / s
        rms = float(np.sqrt(((self.points(expression, jaw) - target) ** 2).sum(1).mean()))
        self.last = FlameFit(expression=expression, jaw=float(jaw), scale=s, rotation=r, translation=t, rms=rms)
        return self.last

    def fit_identity(self, frames: list[np.ndarray], rounds: int = 10) -> np.ndarray:
        """Shape coefficients explaining ``frames`` (landmark sets of one person); sets and returns them."""
        lam = self.shape_sigma**2
        for _ in range(rounds):
            rows, rhs = [], []
            for observed in frames:
                self.last = None
                fit = self.fit(observed)
                target = ((np.asarray(observed) - fit.translation) @ fit.rotation / fit.scale).reshape(-1)
                shape_matrix = self._linear(fit.jaw, self.model.shapedirs)[1]
                # The landmarks with the current shape removed: linear in the shape again.
                base = self.points(fit.expression, fit.jaw).reshape(-1) - shape_matrix @ self.betas
                rows.append(shape_matrix)
                rhs.append(target - base)
            a, b = np.concatenate(rows), np.concatenate(rhs)
            betas = np.linalg.solve(a.T @ a + lam * np.eye(a.shape[1]), a.T @ b)
            self.betas[:] = 0.0
            self._set_betas(betas)
        self.last = None
        return self.betas.copy()


class FlameDriver:
    """Drives a FLAME avatar from live landmarks (the render thread calls ``drive`` each frame).

    The embedding needs MediaPipe's canonical face and a second or two of work, so it is computed
    on a background thread; until it is ready (or when the face model is missing) ``drive`` returns
    None and the avatar follows the head pose alone. The identity is fitted once from the first
    ``IDENTITY_FRAMES`` tracked frames, also in the background, and used by the per-frame fits.
    """

    IDENTITY_FRAMES = 20

    def __init__(self, model: FlameModel, face_model: Path | None) -> None:
        self.model = model
        self.fitter: FlameFitter | None = None
        self._frames: list[np.ndarray] = []
        self._identity_started = False
        self.ready = threading.Event()  # set when the embedding is ready, or has failed
        if face_model is None:
            log.warning("FLAME expressions are off: the face model (its canonical face) was not found")
            self.ready.set()
            return
        threading.Thread(target=self._prepare, args=(face_model,), name="avatarcam-flame", daemon=True).start()

    def _prepare(self, face_model: Path) -> None:
        try:
            canonical, _ = canonical_face(face_model)
            self.fitter = FlameFitter(self.model, compute_embedding(self.model, canonical), iterations=4)
        except ModelError as exc:
            log.warning("FLAME expressions are off: %s", exc)
        finally:
            self.ready.set()

    def _fit_identity(self, frames: list[np.ndarray]) -> None:
        assert self.fitter is not None
        helper = FlameFitter(self.model, self.fitter.embedding)
        betas = helper.fit_identity(frames, rounds=3)
        self.fitter = FlameFitter(self.model, self.fitter.embedding, betas, iterations=4)

    def drive(self, landmarks: np.ndarray, image_size: tuple[int, int]) -> tuple[dict[str, float], float] | None:
        """Expression morph weights and the jaw angle (radians) for one frame, or None if not ready."""
        fitter = self.fitter
        if fitter is None or len(landmarks) < MESH_LANDMARKS:
            return None
        width, height = image_size
        points = landmark_points(landmarks, width / height if width and height else 1.0)[fitter.embedding.landmarks]
        if not self._identity_started:
            self._frames.append(points)
            if len(self._frames) >= self.IDENTITY_FRAMES:
                self._identity_started = True
                threading.Thread(target=self._fit_identity, args=(self._frames,), name="avatarcam-flame-id",
                                 daemon=True).start()
        fit = fitter.fit(points)
        return expression_weights(fit.expression), fit.jaw
