"""Face perception: MediaPipe Face Landmarker (Tasks API, VIDEO mode) -> ``FaceFrame``.

One tracker per video stream; ``process`` must be called with frames in capture order (MediaPipe
requires increasing timestamps, which this class guarantees even for equal capture times).
MediaPipe releases the GIL while it runs, so a tracker thread overlaps with rendering.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType

import numpy as np

from engine.errors import ModelError
from engine.packets import FaceFrame, VideoFrame, with_timing
from engine.rotation import matrix_to_euler
from engine.vocabulary.arkit import ARKIT_BLENDSHAPES, gaze_from_blendshapes

# A face whose box is shorter than this fraction of the image is tracked with reduced confidence.
FULL_CONFIDENCE_FACE_HEIGHT = 0.20


@dataclass(frozen=True, slots=True)
class FaceTrackerOptions:
    """How to run the landmarker. ``max_faces`` > 1 lets the tracker pick the main face."""

    model_path: Path
    max_faces: int = 2
    min_detection_confidence: float = 0.5
    min_presence_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    stills: bool = False  # unrelated images (IMAGE mode): nothing is carried from one to the next


def packed_rgb(image: np.ndarray) -> np.ndarray:
    """``image`` with packed rows. MediaPipe reads pixel rows as packed and ignores strides, so a
    row-padded frame (PyAV pads widths that are not a multiple of 16, e.g. 360, 642, 1080) or a
    cropped view would be read skewed and no face found. A no-op for contiguous frames."""
    return np.ascontiguousarray(image)


def _import_mediapipe():
    # Imported lazily: mediapipe takes ~1 s to import and the CLI's quick commands do not need it.
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    from engine.privacy import keep_everything_local
    keep_everything_local()  # mediapipe is loaded now: mute its usage logger before any task exists
    return mp, BaseOptions, vision


def create_landmarker(options: FaceTrackerOptions):
    """A raw MediaPipe FaceLandmarker, in VIDEO mode (also used alone as the benchmark baseline) or
    IMAGE mode for ``stills``."""
    if not Path(options.model_path).is_file():
        raise ModelError(
            f"The face model '{options.model_path}' does not exist.",
            "Run 'avatarcam doctor' to see where models are looked for, or let the app download it.",
        )
    mp, BaseOptions, vision = _import_mediapipe()
    try:
        return vision.FaceLandmarker.create_from_options(
            vision.FaceLandmarkerOptions(
                base_options=BaseOptions(model_asset_path=str(options.model_path)),
                running_mode=vision.RunningMode.IMAGE if options.stills else vision.RunningMode.VIDEO,
                num_faces=options.max_faces,
                min_face_detection_confidence=options.min_detection_confidence,
                min_face_presence_confidence=options.min_presence_confidence,
                min_tracking_confidence=options.min_tracking_confidence,
                output_face_blendshapes=True,
                output_facial_transformation_matrixes=True,
            )
        )
    except (RuntimeError, ValueError) as exc:  # MediaPipe's messages for a corrupt bundle
        raise ModelError(
            f"The face model '{options.model_path}' could not be loaded ({exc}).",
            "Delete it and let avatarcam download it again.",
        ) from exc


class FaceTracker:
    """Tracks the main face of one video stream. Not thread-safe: use from one thread.

    ``process`` always returns a ``FaceFrame``; with no face it is empty (``present=False``).
    With several faces it keeps the face it followed last, unless another is twice as large.
    ``close`` is idempotent.
    """

    def __init__(self, options: FaceTrackerOptions) -> None:
        self._options = options
        self._landmarker = create_landmarker(options)
        self._mp = _import_mediapipe()[0]
        self._last_ts_ms = -1
        self._last_centre: tuple[float, float] | None = None

    @classmethod
    def create_from_options(cls, options: FaceTrackerOptions) -> FaceTracker:
        return cls(options)

    def process(self, frame: VideoFrame) -> FaceFrame:
        start = time.perf_counter()
        ts_ms = max(int(frame.t_capture * 1000.0), self._last_ts_ms + 1)
        self._last_ts_ms = ts_ms
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=packed_rgb(frame.image))
        if self._options.stills:
            self._last_centre = None  # each image on its own: no face to keep following
            result = self._landmarker.detect(image)
        else:
            result = self._landmarker.detect_for_video(image, ts_ms)
        face = self._to_face_frame(frame, result)
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        return replace(face, timings=with_timing(frame.timings, track=elapsed_ms))

    def _to_face_frame(self, frame: VideoFrame, result) -> FaceFrame:
        if not result.face_landmarks:
            self._last_centre = None
            return FaceFrame(t_capture=frame.t_capture, index=frame.index, present=False)
        landmark_sets = [np.array([(p.x, p.y, p.z) for p in face], dtype=np.float32) for face in result.face_landmarks]
        chosen = self._choose_face(landmark_sets)
        landmarks = landmark_sets[chosen]
        scores = {c.category_name: float(c.score) for c in result.face_blendshapes[chosen]}
        blendshapes = MappingProxyType({name: scores.get(name, 0.0) for name in ARKIT_BLENDSHAPES})
        matrix = np.asarray(result.facial_transformation_matrixes[chosen], dtype=np.float64)
        return FaceFrame(
            t_capture=frame.t_capture,
            index=frame.index,
            present=True,
            confidence=_confidence(landmarks),
            blendshapes=blendshapes,
            head_rotation=matrix_to_euler(matrix[:3, :3]),
            head_translation=(float(matrix[0, 3]), float(matrix[1, 3]), float(matrix[2, 3])),
            gaze=gaze_from_blendshapes(blendshapes),
            blink=(blendshapes["eyeBlinkLeft"], blendshapes["eyeBlinkRight"]),
            landmarks=landmarks,
            image_size=frame.size,
        )

    def _choose_face(self, landmark_sets: list[np.ndarray]) -> int:
        boxes = [(lm[:, 0].min(), lm[:, 1].min(), lm[:, 0].max(), lm[:, 1].max()) for lm in landmark_sets]
        areas = [(x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in boxes]
        centres = [((x0 + x1) / 2, (y0 + y1) / 2) for x0, y0, x1, y1 in boxes]
        largest = int(np.argmax(areas))
        chosen = largest
        if self._last_centre is not None and len(boxes) > 1:
            # Stay with the face we followed unless another one is clearly the main face now.
            nearest = min(range(len(boxes)), key=lambda i: math.dist(centres[i], self._last_centre))
            if areas[largest] < 2.0 * areas[nearest]:
                chosen = nearest
        self._last_centre = centres[chosen]
        return chosen

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _confidence(landmarks: np.ndarray) -> float:
    """Heuristic tracking confidence: small faces and faces cut by the image border score lower.

    The Tasks API reports no per-face score once a face is tracked, so size and visibility stand in.
    """
    height = float(landmarks[:, 1].max() - landmarks[:, 1].min())
    inside = float(np.mean((landmarks[:, 0] >= 0) & (landmarks[:, 0] <= 1) & (landmarks[:, 1] >= 0) & (landmarks[:, 1] <= 1)))
    return round(min(1.0, height / FULL_CONFIDENCE_FACE_HEIGHT) * inside, 3)


def measure_raw_tracker(images: Iterable[np.ndarray], model_path: Path, fps: float = 30.0) -> list[float]:
    """Milliseconds per frame of MediaPipe alone (no conversion, no pipeline) on the given images.

    The benchmark baseline: the same frames through the bare landmarker, in VIDEO mode.
    """
    mp = _import_mediapipe()[0]
    landmarker = create_landmarker(FaceTrackerOptions(model_path=Path(model_path)))
    times: list[float] = []
    try:
        for i, image in enumerate(images):
            start = time.perf_counter()
            landmarker.detect_for_video(mp.Image(image_format=mp.ImageFormat.SRGB, data=packed_rgb(image)), int(i * 1000 / fps))
            times.append((time.perf_counter() - start) * 1000.0)
    finally:
        landmarker.close()
    return times
