"""A person's look from one photo: skin, hair and eye colour and face proportions, from MediaPipe's
face landmarks (478 points, with the irises).

Colours are medians of small regions the landmarks locate: the cheeks and forehead for skin, the
irises (between pupil and rim) for the eyes, and a band above the hairline for the hair, keeping
only pixels unlike the skin (no segmentation model ships with avatarcam, so hair on a background of
the same colour is misread). Proportions are ratios to the face width, so they do not depend on the
photo's size. Nothing of the photo is kept: only these numbers leave this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.capture.video import ImageSource
from engine.errors import AvatarcamError
from engine.packets import VideoFrame
from engine.perception.face_tracker import FaceTracker, FaceTrackerOptions

# MediaPipe Face Mesh indices.
_CHEEKS = (50, 280)
_FOREHEAD = 151
_TOP, _CHIN = 10, 152
_FACE_SIDES = (234, 454)
_JAW = (172, 397)
_NOSE_WINGS = (48, 278)
_EYE_INNER = (133, 362)
_IRISES = ((468, (469, 470, 471, 472)), (473, (474, 475, 476, 477)))

RGB = tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class Appearance:
    """sRGB colours 0..1 and proportions relative to the face width."""

    skin: RGB
    hair: RGB
    eyes: RGB
    face_height: float  # forehead-to-chin / face width
    jaw_width: float
    nose_width: float
    eye_spacing: float  # between the inner eye corners


def _disc(image: np.ndarray, centre: np.ndarray, radius: float, inner: float = 0.0) -> np.ndarray:
    h, w = image.shape[:2]
    ys, xs = np.ogrid[:h, :w]
    d = np.hypot(xs - centre[0], ys - centre[1])
    return image[(d <= radius) & (d >= inner)]


def _median(pixels: np.ndarray) -> RGB:
    if not len(pixels):
        raise AvatarcamError("The face in the photo is too small to read its colours.",
                             "Use a photo where the face is at least 150 pixels wide.")
    m = np.median(pixels.reshape(-1, 3).astype(np.float64), axis=0) / 255.0
    return float(m[0]), float(m[1]), float(m[2])


def measure(image: np.ndarray, landmarks: np.ndarray) -> Appearance:
    """``image``: H x W x 3 RGB uint8; ``landmarks``: MediaPipe's normalised points (N x 3)."""
    h, w = image.shape[:2]
    points = np.asarray(landmarks)[:, :2] * (w, h)
    width = float(np.linalg.norm(points[_FACE_SIDES[0]] - points[_FACE_SIDES[1]]))
    height = float(np.linalg.norm(points[_TOP] - points[_CHIN]))
    patch = max(2.0, 0.06 * width)
    skin = _median(np.concatenate([_disc(image, points[i], patch) for i in (*_CHEEKS, _FOREHEAD)]))
    eyes = []
    for centre, rim in _IRISES:
        radius = float(np.mean([np.linalg.norm(points[r] - points[centre]) for r in rim]))
        eyes.append(_disc(image, points[centre], 0.85 * radius, inner=0.35 * radius))
    eye = _median(np.concatenate(eyes))
    # Hair: a band above the hairline, as wide as the forehead, minus anything skin-coloured.
    top = points[_TOP]
    x0, x1 = int(max(0, top[0] - 0.3 * width)), int(min(w, top[0] + 0.3 * width))
    y0, y1 = int(max(0, top[1] - 0.3 * height)), int(max(0, top[1] - 0.05 * height))
    band = image[y0:y1, x0:x1].reshape(-1, 3).astype(np.float64)
    skin_255 = np.array(skin) * 255.0
    hairlike = band[np.linalg.norm(band - skin_255, axis=1) > 60.0] if len(band) else band
    hair = _median(hairlike if len(hairlike) >= 20 else band)

    def ratio(a: int, b: int) -> float:
        return round(float(np.linalg.norm(points[a] - points[b])) / width, 4)

    return Appearance(skin=skin, hair=hair, eyes=eye, face_height=round(height / width, 4),
                      jaw_width=ratio(*_JAW), nose_width=ratio(*_NOSE_WINGS), eye_spacing=ratio(*_EYE_INNER))


def appearance_from_photo(path: Path, face_model: Path) -> Appearance:
    """Read ``path`` and measure its face. Raises ``SourceError`` (unreadable) or ``AvatarcamError`` (no face)."""
    source = ImageSource(path, paced=False)
    source.open()
    try:
        frame = source.read()
    finally:
        source.close()
    assert isinstance(frame, VideoFrame)
    with FaceTracker(FaceTrackerOptions(model_path=face_model, stills=True)) as tracker:
        face = tracker.process(frame)
    if not face.present or face.landmarks is None or len(face.landmarks) < 478:
        raise AvatarcamError(f"No face was found in '{path}'.",
                             "Use a photo of one face looking at the camera, well lit, not too small.")
    return measure(frame.image, face.landmarks)
