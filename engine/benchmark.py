"""``avatarcam bench``: the live pipeline on a paced source, measured, against MediaPipe alone.

The pipeline runs exactly as live (paced source, all threads, real renderer) for a warm-up second
that is not counted, then for ``--seconds``. Afterwards, with nothing else running, the same
source's frames go through the bare MediaPipe landmarker: ``raw_tracker_ms_p50`` is the baseline
for the tracking stage's overhead ratio.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

from .telemetry import percentile
from .types import AvatarFrame

WARMUP_S = 1.0


def _raw_frames(args: argparse.Namespace, count: int):
    """The first ``count`` frames of the benchmark's source, decoded as fast as possible."""
    from .sources import ImageSource, VideoFileSource

    source = VideoFileSource(args.video, paced=False, loop=True) if args.video else ImageSource(args.image, paced=False)
    source.open()
    try:
        for frame in itertools.islice(iter(source.read, None), count):
            yield frame.image
    finally:
        source.close()


def run_benchmark(args: argparse.Namespace) -> dict:
    from .cli import build_source, build_voice, pipeline_options, run_pipeline
    from .face_tracker import measure_raw_tracker
    from .pipeline import Pipeline
    from .sinks import open_sink

    source = build_source(args, args.fps)
    options = pipeline_options(args, source)
    states: list[AvatarFrame] = []
    pipeline = Pipeline(source, [open_sink(args.sink)], options,
                        on_frame=lambda frame: states.append(frame.state) if frame.fresh else None,
                        voice=build_voice(args, source))  # --audio/--mic: sound_to_mouth_ms_p50/p95

    pipeline.start()
    try:
        time.sleep(WARMUP_S)  # let MediaPipe find the face and the GL driver compile its shaders
        pipeline.telemetry.reset()
        states.clear()
    except BaseException:
        pipeline.stop()
        raise
    run_pipeline(pipeline, args.seconds)
    stats = pipeline.stats()
    result = {"source": str(args.video or args.image or "demo"), "size": f"{args.size[0]}x{args.size[1]}",
              "fps": args.fps, "sink": args.sink, "gl_renderer": pipeline.gl_renderer, **stats}
    if args.image:
        result.update(jitter(states))
    result["raw_tracker_ms_p50"] = None
    if options.face_model is not None:
        raw = measure_raw_tracker(_raw_frames(args, args.raw_frames), options.face_model, fps=args.fps)
        result["raw_tracker_ms_p50"] = round(percentile(raw, 50), 2)
        result["raw_tracker_ms_p95"] = round(percentile(raw, 95), 2)
        if result.get("track_ms_p50") and result["raw_tracker_ms_p50"]:
            result["track_overhead_ratio"] = round(result["track_ms_p50"] / result["raw_tracker_ms_p50"], 3)
    return result


def jitter(states: list[AvatarFrame]) -> dict:
    """Frame-to-frame standard deviation of every output channel, worst channel reported.

    Meaningful on a still source (an image): a steady avatar scores ~0.
    """
    if len(states) < 3:
        return {}
    controls = np.array([list(s.controls.values()) for s in states])
    head = np.array([np.add(s.head, s.neck) for s in states])
    eyes = np.array([s.eyes for s in states])
    worst = int(np.argmax(np.diff(controls, axis=0).std(axis=0)))
    return {"jitter_control_std_max": round(float(np.diff(controls, axis=0).std(axis=0).max()), 5),
            "jitter_control_worst": list(states[0].controls)[worst],
            "jitter_head_deg_std_max": round(float(np.diff(head, axis=0).std(axis=0).max()), 4),
            "jitter_gaze_deg_std_max": round(float(np.diff(eyes, axis=0).std(axis=0).max()), 4)}


def format_table(result: dict) -> str:
    lines = [f"avatarcam bench: {result['source']} at {result['size']}@{result['fps']:g} -> {result['sink']}",
             f"  renderer {result.get('gl_renderer', '?')}", "",
             f"  {'stage':<10}{'p50 ms':>10}{'p95 ms':>10}"]
    for stage in ("capture", "track", "voice", "animate", "render", "sink", "e2e", "sound_to_mouth"):
        if f"{stage}_ms_p50" in result:
            lines.append(f"  {stage:<10}{result[f'{stage}_ms_p50']:>10.2f}{result[f'{stage}_ms_p95']:>10.2f}")
    if result.get("raw_tracker_ms_p50") is not None:
        lines.append(f"  {'mediapipe':<10}{result['raw_tracker_ms_p50']:>10.2f}{result['raw_tracker_ms_p95']:>10.2f}"
                     f"   (alone; tracking overhead x{result.get('track_overhead_ratio', 0):.2f})")
    lines += ["", f"  output {result['fps_out']:.2f} fps, {result['frames_out']} frames "
                  f"({result['frames_fresh']} fresh, {result['frames_repeated']} repeated), "
                  f"missed {result['frames_missed']}, dropped {result['frames_dropped']}",
              f"  cpu {result['cpu_cores']:.2f} cores, resident {result['rss_mb']:.0f} MB"]
    if "jitter_control_std_max" in result:
        lines.append(f"  jitter (still source): controls {result['jitter_control_std_max']:.4f} "
                     f"(worst {result['jitter_control_worst']}), head {result['jitter_head_deg_std_max']:.3f} deg, "
                     f"gaze {result['jitter_gaze_deg_std_max']:.3f} deg")
    return "\n".join(lines)
