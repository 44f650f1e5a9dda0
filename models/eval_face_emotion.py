"""How well each face reader, and their combination, names emotions on faces they never saw.

On the held-out validation part of ``models/train_fer.py``'s split of the FER-2013 Training folder,
each face is analysed exactly the way ``avatarcam analyze --image`` does it for a 48x48 face crop
(the crop read as it is by the classifier; upscaled for the detector, whose blendshapes feed FACS;
no face -> the classifier alone, with reduced confidence):

* the classifier alone, the FACS estimator alone (faces where MediaPipe finds one), and
* their combination for several FACS reliability weights, chosen on one half of the held-out faces
  and reported on the other half, so the reported figure is not tuned on the faces it is measured on.

    PYTHONPATH=. python models/eval_face_emotion.py     (needs the train extra: torch, for the split)
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from engine.commands.analyze import detection_ready
from engine.packets import VideoFrame
from engine.perception.face_emotion import classifier as fer
from engine.perception.face_emotion.alignment import whole_image_crop
from engine.perception.face_emotion.estimator import FacialEmotion
from engine.perception.face_tracker import FaceTracker, FaceTrackerOptions
from engine.vocabulary.emotions import EMOTIONS
from models.train_fer import dataset_split

ROOT = Path(__file__).resolve().parents[1]
LANDMARKER = ROOT.parent / "shared" / "models" / "face_landmarker.task"
FACS_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)


def main() -> None:
    started = time.monotonic()
    images, labels, _, _, val = dataset_split(ROOT.parent / "shared" / "datasets" / "fer2013" / "train")
    reader = FacialEmotion()
    rows = []  # (label, classifier probs, facs probs or None, classifier confidence, facs confidence)
    with FaceTracker(FaceTrackerOptions(model_path=LANDMARKER, stills=True)) as tracker:
        for n, i in enumerate(val):
            rgb = np.repeat(images[i][:, :, None], 3, axis=2)
            image = detection_ready(rgb)
            reading = reader.read(image, tracker.process(VideoFrame(image, float(n), n)), whole_image_crop(rgb))
            if reading is None:
                whole = reader.classifier.classify_whole(rgb)
                rows.append((labels[i], whole.probabilities, None, whole.confidence, 0.0))
            else:
                rows.append((labels[i], reading.classifier.probabilities, reading.facs.probabilities,
                             reading.classifier.confidence, reading.facs.confidence))
    y = np.array([r[0] for r in rows])
    cls = np.stack([r[1] for r in rows])
    found = np.array([r[2] is not None for r in rows])
    facs = np.stack([r[2] if r[2] is not None else np.eye(len(EMOTIONS))[0] for r in rows])
    c_conf, f_conf = np.array([r[3] for r in rows]), np.array([r[4] for r in rows])
    half = np.arange(len(rows)) % 2 == 0  # tune on even, report on odd

    def combined(weight: float) -> np.ndarray:
        wc, wf = c_conf * fer.RELIABILITY["fer"], f_conf * weight * found
        return (wc[:, None] * cls + wf[:, None] * facs) / np.maximum(wc + wf, 1e-9)[:, None]

    def accuracy(probs: np.ndarray, mask: np.ndarray) -> float:
        return float((probs[mask].argmax(1) == y[mask]).mean())

    tuned = max(FACS_WEIGHTS, key=lambda w: accuracy(combined(w), half))
    report = {
        "faces": len(rows), "face_found": round(float(found.mean()), 4),
        "classifier_top1": round(accuracy(cls, np.ones(len(rows), bool)), 4),
        "facs_top1_where_found": round(accuracy(facs, found), 4),
        "facs_weight_tuned_on_even_half": tuned,
        "combined_top1_odd_half": round(accuracy(combined(tuned), ~half), 4),
        "classifier_top1_odd_half": round(accuracy(cls, ~half), 4),
        "per_weight_even_half": {str(w): round(accuracy(combined(w), half), 4) for w in FACS_WEIGHTS},
        "seconds": round(time.monotonic() - started, 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
