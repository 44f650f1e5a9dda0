"""Mouth-motion targets for the audio-to-mouth model: MediaPipe blendshapes per video frame + 16 kHz audio.

The video is used only here, to read how the real mouth moved; the model itself hears audio only.
For every clip this writes one ``.npz`` to the cache folder (never inside the repository):

* ``audio``: 16 kHz mono float32, from the audio track's first sample;
* ``frame_t``: each video frame's time in seconds on the audio's timeline (track start offsets removed);
* ``blendshapes``: frames x len(MOUTH_BLENDSHAPES) float32, NaN where no face was found;
* ``names``: MOUTH_BLENDSHAPES; ``fps``.

Usage (one worker per core; each worker runs MediaPipe single-stream):
    PYTHONPATH=. python models/extract_lipsync_targets.py --out /tmp/lipsync_targets --workers 2 \
        ../shared/datasets/talking ../shared/media/talking_d6.mp4 ../shared/media/talking_hdtf_katiehill.mp4
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from pathlib import Path

import av
import numpy as np

from engine.capture.decode import read_audio
from engine.paths import SHARED_DIR
from engine.perception.face_tracker import FaceTrackerOptions, create_landmarker
from models.lipsync_data import cache_name

MOUTH_BLENDSHAPES = ("jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthSmileLeft", "mouthSmileRight",
                     "mouthStretchLeft", "mouthStretchRight", "mouthRollLower", "mouthRollUpper",
                     "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight",
                     "mouthPressLeft", "mouthPressRight", "mouthShrugLower", "mouthShrugUpper")
FACE_MODEL = SHARED_DIR / "models" / "face_landmarker.task"


def extract(video: Path, face_model: Path = FACE_MODEL) -> dict[str, np.ndarray]:
    """Blendshapes of every video frame and the clip's 16 kHz audio, on one timeline."""
    import mediapipe

    landmarker = create_landmarker(FaceTrackerOptions(model_path=face_model, max_faces=1))
    rows, times = [], []
    with av.open(str(video)) as container:
        vstream = container.streams.video[0]
        astream = container.streams.audio[0]
        # Both tracks' first timestamps, so frame times can be put on the audio's timeline.
        v0 = float(vstream.start_time * vstream.time_base) if vstream.start_time is not None else 0.0
        a0 = float(astream.start_time * astream.time_base) if astream.start_time is not None else 0.0
        fps = float(vstream.average_rate)
        try:
            for i, frame in enumerate(container.decode(vstream)):
                t = float(frame.time) if frame.time is not None else v0 + i / fps
                # Rows of widths not a multiple of 16 may be padded: make the array contiguous.
                image = np.ascontiguousarray(frame.to_ndarray(format="rgb24"))
                result = landmarker.detect_for_video(
                    mediapipe.Image(image_format=mediapipe.ImageFormat.SRGB, data=image), round((t - v0) * 1000) + i)
                if result.face_blendshapes:
                    scores = {c.category_name: c.score for c in result.face_blendshapes[0]}
                    rows.append([scores.get(name, 0.0) for name in MOUTH_BLENDSHAPES])
                else:
                    rows.append([np.nan] * len(MOUTH_BLENDSHAPES))
                times.append(t - a0)
        finally:
            landmarker.close()
    return {"audio": read_audio(video), "frame_t": np.array(times), "fps": np.float64(fps),
            "blendshapes": np.array(rows, dtype=np.float32), "names": np.array(MOUTH_BLENDSHAPES)}


def _work(job: tuple[Path, Path]) -> tuple[str, int, float]:
    video, out = job
    start = time.perf_counter()
    data = extract(video)
    np.savez_compressed(out, **data)
    return video.name, len(data["frame_t"]), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", type=Path, help="clips or folders searched for *.mp4")
    parser.add_argument("--out", type=Path, default=Path("/tmp/lipsync_targets"))
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    videos = sorted({v for p in args.inputs for v in ([p] if p.is_file() else p.rglob("*.mp4"))})
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = [(v, args.out / cache_name(v)) for v in videos if not (args.out / cache_name(v)).exists()]
    print(f"{len(videos)} clips, {len(jobs)} to extract into {args.out}", flush=True)
    start = time.perf_counter()
    frames = 0
    with mp.get_context("spawn").Pool(args.workers) as pool:
        for k, (name, n, seconds) in enumerate(pool.imap_unordered(_work, jobs), 1):
            frames += n
            print(f"[{k}/{len(jobs)}] {name}: {n} frames in {seconds:.1f} s", flush=True)
    print(f"done: {frames} frames in {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
