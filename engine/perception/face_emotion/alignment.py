"""Crop a face the way FER-2013 frames it, from MediaPipe Face Landmarker landmarks.

``models/fer_crop.json`` holds where a few rigid landmarks (eye corners, nose bridge and tip, upper
lip: they barely move with expression) fall, on median, inside a 48x48 FER-2013 training face
(measured by ``models/eval_fer.py geometry``). ``fer_face_crop`` maps those landmarks of a face in
any image onto the same places with one similarity transform, so the classifier sees webcam faces
framed, levelled and scaled like the faces it was trained on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from engine.paths import MODELS_DIR

CROP_GEOMETRY = MODELS_DIR / "fer_crop.json"


@dataclass(frozen=True, slots=True)
class CropGeometry:
    """Target positions (pixels in a ``size`` x ``size`` crop) of MediaPipe landmarks ``indices``."""

    size: int
    indices: tuple[int, ...]
    targets: np.ndarray  # [len(indices), 2] x, y

    @classmethod
    def load(cls, path: Path = CROP_GEOMETRY) -> CropGeometry:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        fit = data["fit"]
        return cls(int(data["size"]), tuple(int(i) for i in fit["indices"]), np.array(fit["targets"], dtype=np.float64))


@cache
def default_geometry() -> CropGeometry:
    return CropGeometry.load()


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity (Umeyama, no reflection) taking ``source`` points onto ``target``."""
    src_mean, dst_mean = source.mean(axis=0), target.mean(axis=0)
    src, dst = source - src_mean, target - dst_mean
    u, s, vt = np.linalg.svd(dst.T @ src / len(source))
    d = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ d @ vt
    scale = float(np.trace(np.diag(s) @ d) / max(src.var(axis=0).sum(), 1e-12))
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - matrix[:, :2] @ src_mean
    return matrix


def fer_face_crop(image: np.ndarray, landmarks: np.ndarray, geometry: CropGeometry | None = None) -> np.ndarray:
    """A grey uint8 ``geometry.size`` square crop framed like FER-2013.

    ``image``: RGB [H, W, 3] or grey [H, W] uint8. ``landmarks``: MediaPipe's [478, 2 or 3] landmarks
    normalised to 0..1 of the image width and height (as the Face Landmarker returns them).
    """
    geometry = geometry or default_geometry()
    size = geometry.size
    h, w = image.shape[:2]
    points = np.asarray(landmarks, dtype=np.float64)[list(geometry.indices), :2] * (w, h)
    matrix = similarity_transform(points, geometry.targets)
    # Only the face's region is converted and shrunk: a webcam frame is mostly not face.
    square = np.array([[[0, 0], [size, 0], [0, size], [size, size]]], dtype=np.float64)
    corners = cv2.transform(square, cv2.invertAffineTransform(matrix))[0]
    x0, y0 = np.clip(np.floor(corners.min(axis=0)).astype(int) - 2, 0, (w - 1, h - 1))
    x1, y1 = np.clip(np.ceil(corners.max(axis=0)).astype(int) + 2, (x0 + 1, y0 + 1), (w, h))
    region = image[y0:y1, x0:x1]
    grey = cv2.cvtColor(region, cv2.COLOR_RGB2GRAY) if region.ndim == 3 else region
    points -= (x0, y0)
    # A webcam face is often 200+ px and the crop 48: shrink with an area filter first so the
    # warp does not alias (warpAffine has no area filter), as a resize to FER size would.
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 0.75:
        rh, rw = grey.shape
        grey = cv2.resize(grey, (max(1, round(rw * scale)), max(1, round(rh * scale))), interpolation=cv2.INTER_AREA)
        points *= (grey.shape[1] / rw, grey.shape[0] / rh)
    # Landmarks and targets count from the image's edge; OpenCV counts from the first pixel's centre.
    matrix = similarity_transform(points - 0.5, geometry.targets - 0.5)
    return cv2.warpAffine(grey, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def whole_image_crop(image: np.ndarray, size: int = 48) -> np.ndarray:
    """An image that already is a face crop (no landmarks found), as the classifier's grey square."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    h, w = grey.shape
    side = min(h, w)  # centre square: a face crop is square-ish; more is background
    top, left = (h - side) // 2, (w - side) // 2
    return cv2.resize(grey[top:top + side, left:left + side], (size, size), interpolation=cv2.INTER_AREA)
