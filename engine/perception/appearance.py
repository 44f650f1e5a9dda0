"""A person's look from one photo: skin, hair and eye colour, hair length and face proportions,
from MediaPipe's face landmarks (478 points, with the irises).

Colours are medians of small regions the landmarks locate: the cheeks and forehead for skin, the
irises (between pupil and rim) for the eyes, and a band above the hairline for the hair, keeping
only pixels unlike the skin. Hair length comes from segmenting the hair: the pixels of the hair's
colour connected to that band (no segmentation model ships with avatarcam, so hair on a background
of the same colour is misread), and how far below the chin they reach beside the face.

Proportions are measured against an average face (MediaPipe's canonical face, corrected by where
the landmarks fall on real faces: ``DETECTED_VS_CANONICAL``), so an average face gives deviations
near 0: each is a ratio of two distances on the face, divided by the same ratio on the average
face, minus 1. Lengths are relative to the face's own
scale, the geometric mean of the distance between the eyes and the distance from the eyes to the
mouth, so a face stretched sideways reads wider and the photo's size does not matter.

Nothing of the photo is kept: only these numbers leave this module.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from engine.capture.video import ImageSource
from engine.errors import AvatarcamError
from engine.packets import VideoFrame
from engine.perception.face_geometry import canonical_face
from engine.perception.face_tracker import FaceTracker, FaceTrackerOptions
from engine.vocabulary.looks import HairStyle, IdentityMorph

# MediaPipe Face Mesh indices.
_CHEEKS = (50, 280)
_FOREHEAD = 151
_TOP, _CHIN = 10, 152
_FACE_SIDES = (234, 454)
_JAW = (172, 397)
_NOSE_WINGS = (48, 278)
_NASION, _SUBNASALE = 168, 2
_EYE_INNER = (133, 362)
_EYE_OUTER = (33, 263)
_LIPS = (13, 14)
_IRISES = ((468, (469, 470, 471, 472)), (473, (474, 475, 476, 477)))

RGB = tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class Appearance:
    """sRGB colours 0..1, the hair's length, and proportions as deviations from the average face
    (``IdentityMorph`` name -> ratio to the canonical face's - 1: +0.05 is 5 % wider/longer)."""

    skin: RGB
    hair: RGB
    eyes: RGB
    hair_length: HairStyle  # SHORT, SHOULDER or LONG
    proportions: dict[str, float]


def face_ratios(points: np.ndarray) -> dict[str, float]:
    """The face's proportions from landmark positions (N x 2, any scale): lengths over the face's
    scale, and the eye spacing as the inner over the outer corner distance."""
    def dist(a: int, b: int) -> float:
        return float(np.linalg.norm(points[a] - points[b]))

    eyes = [(points[a] + points[b]) / 2 for a, b in zip(_EYE_OUTER, _EYE_INNER)]
    mouth = (points[_LIPS[0]] + points[_LIPS[1]]) / 2
    scale = float(np.sqrt(np.linalg.norm(eyes[0] - eyes[1]) * np.linalg.norm((eyes[0] + eyes[1]) / 2 - mouth)))
    return {IdentityMorph.FACE_WIDTH: dist(*_FACE_SIDES) / scale, IdentityMorph.JAW_WIDTH: dist(*_JAW) / scale,
            IdentityMorph.NOSE_WIDTH: dist(*_NOSE_WINGS) / scale,
            IdentityMorph.NOSE_LENGTH: dist(_NASION, _SUBNASALE) / scale,
            IdentityMorph.EYE_SPACING: dist(*_EYE_INNER) / dist(*_EYE_OUTER)}


# MediaPipe places its landmarks on real faces a little differently from its canonical mesh: the
# median of each ratio over 28 faces (frame 10 of the talking-head clips in shared/media and up to
# six per source in shared/datasets/talking, about 25 people) against the canonical face's. The
# average face is the canonical one moved by these, so it reads ~0. Spread between those faces
# (standard deviation): 0.05, 0.07, 0.07, 0.06, 0.05.
DETECTED_VS_CANONICAL: dict[str, float] = {
    IdentityMorph.FACE_WIDTH: -0.085, IdentityMorph.JAW_WIDTH: -0.065, IdentityMorph.NOSE_WIDTH: 0.123,
    IdentityMorph.NOSE_LENGTH: -0.085, IdentityMorph.EYE_SPACING: -0.075,
}


@functools.cache
def _neutral_ratios(face_model: Path) -> dict[str, float]:
    vertices, _ = canonical_face(face_model)
    return {name: ratio * (1.0 + DETECTED_VS_CANONICAL[name]) for name, ratio in face_ratios(vertices[:, :2]).items()}


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


def measure(image: np.ndarray, landmarks: np.ndarray, neutral: dict[str, float]) -> Appearance:
    """``image``: H x W x 3 RGB uint8; ``landmarks``: MediaPipe's normalised points (N x 3);
    ``neutral``: :func:`face_ratios` of the canonical face."""
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
    length = _hair_length(image, points, (x0, x1, y0, y1), hair, skin, width, height)
    ratios = face_ratios(points)
    deviations = {name: round(ratios[name] / neutral[name] - 1.0, 4) for name in ratios}
    return Appearance(skin=skin, hair=hair, eyes=eye, hair_length=length, proportions=deviations)


# How far below the chin (in face heights) the hair beside the face reaches, for each length.
SHOULDER_BELOW_CHIN, LONG_BELOW_CHIN = 0.25, 1.1


def _hair_length(image: np.ndarray, points: np.ndarray, seed: tuple[int, int, int, int], hair: RGB, skin: RGB,
                 width: float, height: float) -> HairStyle:
    """Segment the hair (pixels of its colour, unlike the skin, connected to the ``seed`` band above
    the hairline) and read its length from its lowest point beside the face."""
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)

    def lab_of(rgb: RGB) -> np.ndarray:
        pixel = np.array([[[round(v * 255) for v in rgb]]], dtype=np.uint8)
        return cv2.cvtColor(pixel, cv2.COLOR_RGB2LAB).astype(np.float32)[0, 0]

    near_hair = np.linalg.norm(lab - lab_of(hair), axis=2)
    near_skin = np.linalg.norm(lab - lab_of(skin), axis=2)
    mask = ((near_hair < 28.0) & (near_hair < near_skin)).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    _, labels = cv2.connectedComponents(mask, connectivity=8)
    x0, x1, y0, y1 = seed
    seeded = np.unique(labels[y0:y1, x0:x1])
    hair_mask = np.isin(labels, seeded[seeded > 0])
    # beside the face: from its edge out to half a face width further
    cx = float(points[[*_FACE_SIDES]][:, 0].mean())
    xs = np.arange(image.shape[1])
    beside = (np.abs(xs - cx) > 0.45 * width) & (np.abs(xs - cx) < 1.0 * width)
    rows = np.nonzero(hair_mask[:, beside].sum(axis=1) >= 3)[0]
    if not len(rows):
        return HairStyle.SHORT
    below_chin = (float(rows.max()) - float(points[_CHIN][1])) / height
    if below_chin >= LONG_BELOW_CHIN:
        return HairStyle.LONG
    return HairStyle.SHOULDER if below_chin >= SHOULDER_BELOW_CHIN else HairStyle.SHORT


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
    return measure(frame.image, face.landmarks, _neutral_ratios(face_model))
