"""Measure ``models/fer_cnn.onnx`` on the validation split of ``train_fer.py`` and fit the FER crop.

Subcommands (from the repository root, with the ``train`` extra installed)::

    PYTHONPATH=. python models/eval_fer.py geometry   # writes models/fer_crop.json
    PYTHONPATH=. python models/eval_fer.py evaluate   # accuracy, confusion, speed, crop paths
    PYTHONPATH=. python models/eval_fer.py crops      # aligned crops of shared media -> /tmp/fer_crops

``geometry`` runs the MediaPipe Face Landmarker (IMAGE mode) on training images of the split,
upscaled to 192 px (with a border), and stores the median 48x48-frame position of the landmarks that
``engine.perception.face_emotion.alignment.fer_face_crop`` fits. ``evaluate`` classifies every validation face three ways:
(a) the 48x48 image as it is; (b) landmarks -> ``fer_face_crop`` (falls back to (a) when no face is
found), and compares with the mini-Xception the engine used before.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from engine.perception.face_emotion.alignment import CROP_GEOMETRY, CropGeometry, fer_face_crop
from models.train_fer import DEFAULT_ONNX, EMOTIONS, REPO, SEED, dataset_split

SHARED = REPO.parent / "shared"
DATA = SHARED / "datasets" / "fer2013" / "train"
LANDMARKER = SHARED / "models" / "face_landmarker.task"
OLD_MODEL = REPO / "models" / "fer_mini_xception.onnx"
OLD_CLASSES = ("angry", "disgusted", "fearful", "happy", "sad", "surprised", "neutral")
UPSCALE = 192
PAD = 48
# Landmarks the crop is fitted to: eye corners, nose bridge and tip, upper lip. They barely move
# with expression, so a smile or an open mouth does not change the framing.
FIT_INDICES = (33, 133, 362, 263, 168, 1, 0)
REPORTED = {"right_eye_centre": (33, 133), "left_eye_centre": (362, 263), "mouth_centre": (13, 14)}


def create_landmarker():
    """MediaPipe Face Landmarker in IMAGE mode (one face)."""
    from mediapipe.tasks.python import BaseOptions, vision

    return vision.FaceLandmarker.create_from_options(vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(LANDMARKER)), running_mode=vision.RunningMode.IMAGE, num_faces=1))


def upscaled_rgb(face: np.ndarray) -> np.ndarray:
    """A 48x48 grey face as the RGB image the landmarker sees: 192x192, with a PAD border of
    repeated edge pixels (on a 150-face sample the detector found 81 % with it, 77 % without)."""
    big = cv2.resize(face, (UPSCALE, UPSCALE), interpolation=cv2.INTER_CUBIC)
    big = cv2.copyMakeBorder(big, PAD, PAD, PAD, PAD, cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(np.repeat(big[:, :, None], 3, axis=2))


def in_face_frame(landmarks: np.ndarray) -> np.ndarray:
    """Landmarks normalised to ``upscaled_rgb``'s image -> x, y pixels of the 48x48 face [478, 2]."""
    side = UPSCALE + 2 * PAD
    return (landmarks[:, :2] * side - PAD) * (48 / UPSCALE)


def detect(landmarker, rgb: np.ndarray) -> np.ndarray | None:
    """Normalised [478, 3] landmarks of the face in ``rgb``, or None."""
    import mediapipe as mp

    result = landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
    if not result.face_landmarks:
        return None
    return np.array([(p.x, p.y, p.z) for p in result.face_landmarks[0]], dtype=np.float64)


class Classifier:
    """One onnxruntime session on one CPU thread; ``probabilities`` returns EMOTIONS order."""

    def __init__(self, path: Path, old: bool = False) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.old = old

    def prepare(self, faces: np.ndarray) -> np.ndarray:
        if self.old:  # mini-Xception: 64x64 in [-1, 1], one face per call (fixed batch of 1)
            big = np.stack([cv2.resize(f, (64, 64), interpolation=cv2.INTER_LINEAR) for f in faces])
            return (big.astype(np.float32) / 127.5 - 1.0)[:, None]
        return (faces.astype(np.float32) / 255.0)[:, None]

    def probabilities(self, faces: np.ndarray) -> np.ndarray:
        x = self.prepare(faces)
        if self.old:
            raw = np.concatenate([self.session.run(None, {"face": x[i : i + 1]})[0] for i in range(len(x))])
            return raw[:, [OLD_CLASSES.index(e) for e in EMOTIONS]]
        return np.concatenate([self.session.run(None, {"face": x[i : i + 256]})[0] for i in range(0, len(x), 256)])


def report(name: str, labels: np.ndarray, predicted: np.ndarray) -> dict:
    """Top-1, per-class accuracy and confusion matrix (rows: true, columns: predicted)."""
    confusion = np.zeros((len(EMOTIONS), len(EMOTIONS)), dtype=int)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = {e: round(float(confusion[i, i] / max(confusion[i].sum(), 1)), 4) for i, e in enumerate(EMOTIONS)}
    top1 = float((labels == predicted).mean())
    print(f"{name}: top-1 {top1:.4f} ({len(labels)} faces); per class {per_class}", flush=True)
    return {"top1": round(top1, 4), "per_class": per_class, "confusion": confusion.tolist()}


def centre(points: np.ndarray, pair: tuple[int, int]) -> np.ndarray:
    """Midpoint of two landmarks, per face: [N, 2]."""
    return points[:, list(pair)].mean(axis=1)


def geometry(args: argparse.Namespace) -> None:
    images, _, _, train, _ = dataset_split(DATA)
    pick = np.random.default_rng(SEED).choice(train, size=args.count, replace=False)
    landmarker = create_landmarker()
    found = [lm for lm in (detect(landmarker, upscaled_rgb(images[i])) for i in pick) if lm is not None]
    points = np.stack([in_face_frame(lm) for lm in found])
    median = np.median(points, axis=0)
    data = {
        "size": 48,
        "about": "Median position (x, y pixels, origin top-left, pixel centres at +0.5) of MediaPipe Face "
                 "Landmarker landmarks in FER-2013 training images; see models/eval_fer.py geometry.",
        "images": len(pick),
        "detected": len(found),
        "detection_rate": round(len(found) / len(pick), 4),
        "fit": {"indices": list(FIT_INDICES), "targets": np.round(median[list(FIT_INDICES)], 3).tolist()},
        **{name: np.round(np.median(centre(points, pair), axis=0), 3).tolist() for name, pair in REPORTED.items()},
        "inter_eye_distance": round(float(np.median(np.linalg.norm(
            centre(points, REPORTED["left_eye_centre"]) - centre(points, REPORTED["right_eye_centre"]), axis=1))), 3),
    }
    CROP_GEOMETRY.write_text(json.dumps(data, indent=2) + "\n")
    print(json.dumps(data, indent=2))


def evaluate(args: argparse.Namespace) -> None:
    images, labels, _, _, val = dataset_split(DATA)
    faces, truth = images[val], labels[val]
    new, old = Classifier(args.model), Classifier(OLD_MODEL, old=True)
    results: dict = {"validation_faces": len(val)}
    results["a_new"] = report("(a) new model, whole 48x48 image", truth, new.probabilities(faces).argmax(1))
    results["a_old"] = report("(a) mini-Xception, whole image", truth, old.probabilities(faces).argmax(1))

    landmarker = create_landmarker()
    marks = cached_landmarks(landmarker, faces, Path(args.results).with_name("val_landmarks.npy"))
    found = ~np.isnan(marks[:, 0, 0])
    aligned = faces.copy()
    for i in np.flatnonzero(found):
        aligned[i] = fer_face_crop(upscaled_rgb(faces[i]), marks[i])
    results["landmark_detection_rate"] = round(float(found.mean()), 4)
    print(f"landmarks found on {found.mean():.4f} of validation faces", flush=True)
    results["b_new"] = report("(b) new model, fer_face_crop (fallback (a))", truth, new.probabilities(aligned).argmax(1))
    results["b_new_detected_only"] = report("(b) on detected faces only", truth[found], new.probabilities(aligned[found]).argmax(1))
    results["a_new_detected_only"] = report("(a) on the same detected faces", truth[found], new.probabilities(faces[found]).argmax(1))
    results["speed_ms"] = speed(new, faces, landmarker)
    Path(args.results).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["speed_ms"]), f"-> {args.results}")


def cached_landmarks(landmarker, faces: np.ndarray, cache: Path) -> np.ndarray:
    """[N, 478, 3] landmarks of ``upscaled_rgb`` faces (NaN where none found), cached in ``cache``."""
    if cache.is_file():
        marks = np.load(cache)
        if len(marks) == len(faces):
            return marks
    marks = np.full((len(faces), 478, 3), np.nan)
    for i, face in enumerate(faces):
        landmarks = detect(landmarker, upscaled_rgb(face))
        if landmarks is not None:
            marks[i] = landmarks
    np.save(cache, marks)
    return marks


def speed(model: Classifier, faces: np.ndarray, landmarker) -> dict:
    """p50/p95 ms per face on one thread: inference alone, and fer_face_crop + inference with the
    face (320 px) in a 1280x720 RGB webcam-sized frame."""
    geometry = CropGeometry.load()
    frame = np.full((720, 1280), 128, dtype=np.uint8)
    frame[200:520, 480:800] = cv2.resize(faces[0], (320, 320), interpolation=cv2.INTER_CUBIC)
    rgb = np.ascontiguousarray(np.repeat(frame[:, :, None], 3, axis=2))
    landmarks = detect(landmarker, rgb)
    inference, total = [], []
    for face in faces[:300]:
        x = model.prepare(face[None])
        t0 = time.perf_counter()
        model.session.run(None, {"face": x})
        inference.append(time.perf_counter() - t0)
        if landmarks is not None:
            t0 = time.perf_counter()
            crop = fer_face_crop(rgb, landmarks, geometry)
            model.session.run(None, {"face": model.prepare(crop[None])})
            total.append(time.perf_counter() - t0)

    def ms(values: list[float]) -> dict:
        return {"p50": round(float(np.percentile(values, 50)) * 1e3, 3), "p95": round(float(np.percentile(values, 95)) * 1e3, 3)}

    return {"inference": ms(inference), "crop_and_inference": ms(total) if total else None}


def crops(args: argparse.Namespace) -> None:
    """Aligned crops of the shared portrait and of every 40th frame of expressions_d10.mp4, as PNG."""
    model = Classifier(args.model)
    landmarker = create_landmarker()
    out = Path(args.crops_dir)
    out.mkdir(parents=True, exist_ok=True)
    frames = [("portrait_s0", cv2.cvtColor(cv2.imread(str(SHARED / "media" / "portrait_s0.jpg")), cv2.COLOR_BGR2RGB))]
    video = cv2.VideoCapture(str(SHARED / "media" / "expressions_d10.mp4"))
    index = 0
    while True:
        ok, bgr = video.read()
        if not ok:
            break
        if index % 40 == 0:
            frames.append((f"d10_{index:03d}", cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
        index += 1
    for name, rgb in frames:
        landmarks = detect(landmarker, np.ascontiguousarray(rgb))
        if landmarks is None:
            print(f"{name}: no face")
            continue
        crop = fer_face_crop(rgb, landmarks)
        p = model.probabilities(crop[None])[0]
        cv2.imwrite(str(out / f"{name}.png"), crop)
        print(f"{name}: {EMOTIONS[int(p.argmax())]} {p.max():.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("geometry", "evaluate", "crops"))
    parser.add_argument("--model", type=Path, default=DEFAULT_ONNX)
    parser.add_argument("--count", type=int, default=3000, help="training images for `geometry`")
    parser.add_argument("--results", default="/tmp/fer_cache/fer_eval.json")
    parser.add_argument("--crops-dir", default="/tmp/fer_crops")
    args = parser.parse_args()
    {"geometry": geometry, "evaluate": evaluate, "crops": crops}[args.command](args)


if __name__ == "__main__":
    main()
