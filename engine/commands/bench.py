"""``avatarcam bench``: the live pipeline on a paced source, measured, against MediaPipe alone.

The pipeline runs exactly as live (paced source, all threads, real renderer) for a warm-up second
that is not counted, then for ``--seconds``. Afterwards, with nothing else running, the same
source's frames go through the bare MediaPipe landmarker: ``raw_tracker_ms_p50`` is the baseline
for the tracking stage's overhead ratio.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.errors import AvatarcamError
from engine.packets import AvatarFrame
from engine.perception.face_emotion.classifier import FER_MODEL

if TYPE_CHECKING:
    from engine.runtime.stats import Stats
    from engine.session import SessionSpec
from engine.runtime.telemetry import percentile

WARMUP_S = 1.0
SOAK_SAMPLE_S = 5.0  # the soak's sampling interval (the status line's)
SOAK_SETTLE_S = 60.0  # memory grows while caches fill; the slope is fitted after this


def _raw_frames(spec: SessionSpec, count: int):
    """The first ``count`` frames of the benchmark's source, decoded as fast as possible."""
    from engine.capture.video import ImageSource, VideoFileSource
    from engine.session import SourceKind

    source = (VideoFileSource(spec.path, paced=False, loop=True) if spec.source is SourceKind.VIDEO
              else ImageSource(spec.path, paced=False))
    source.open()
    try:
        for frame in itertools.islice(iter(source.read, None), count):
            yield frame.image
    finally:
        source.close()


class SoakRecorder:
    """Samples memory and frame rate while a soak runs; ``summary`` fits the memory slope."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float, float]] = []  # (seconds, rss MB, fps over the last ~1 s)
        self.missed: list[tuple[float, int]] = []  # (seconds, output frames missed since the last sample)
        self._missed_so_far = 0

    def __call__(self, stats: Stats) -> None:
        self.samples.append((stats.seconds, stats.rss_mb, stats.fps_now))
        if stats.frames_missed > self._missed_so_far:  # when they happen tells a stall from a trend
            self.missed.append((stats.seconds, stats.frames_missed - self._missed_so_far))
            self._missed_so_far = stats.frames_missed

    def summary(self, errors: list[str]) -> dict:
        settle = min(SOAK_SETTLE_S, self.samples[-1][0] / 4) if self.samples else 0.0
        settled = [s for s in self.samples if s[0] >= settle]
        t = np.array([s[0] for s in settled])
        rss = np.array([s[1] for s in settled])
        fps = [s[2] for s in settled]
        slope = float(np.polyfit(t / 60.0, rss, 1)[0]) if len(settled) >= 3 and np.ptp(t) > 0 else None
        return {"soak_samples": len(self.samples), "soak_settle_s": round(settle, 1),
                "rss_slope_mb_per_min": None if slope is None else round(slope, 4),
                "rss_mb_range": [round(float(rss.min()), 1), round(float(rss.max()), 1)] if len(rss) else None,
                "fps_now_range": [round(min(fps), 1), round(max(fps), 1)] if fps else None,
                "missed_at_s": [[round(t, 1), n] for t, n in self.missed],
                "errors": errors}


def run_benchmark(spec: SessionSpec, seconds: float, *, raw_frames: int = 200, still: bool = False,
                  soak: bool = False) -> dict:
    """Measure ``spec`` for ``seconds`` after a warm-up; the result is the ``bench --json`` object.
    ``still``: the source shows a still face (a photo, or a video of someone holding still), so the
    output's frame-to-frame movement is jitter and is reported (always for an image source).
    ``raw_frames=0`` skips the MediaPipe-alone baseline.

    ``soak``: also sample memory and frame rate every few seconds, and report the memory slope
    (a linear fit after the caches settle), the frame-rate range and every error met."""
    from engine.commands.cli import build_cli_session, run_session
    from engine.perception.face_tracker import measure_raw_tracker
    from engine.session import SessionHooks, SourceKind

    states: list[AvatarFrame] = []  # for the jitter of a still source only: a long run would grow it without end
    keep = still or spec.source is SourceKind.IMAGE
    hooks = SessionHooks(on_frame=lambda frame: states.append(frame.state) if keep and frame.fresh else None)
    session = build_cli_session(spec, hooks)
    session.start()
    try:
        time.sleep(WARMUP_S)  # let MediaPipe find the face and the GL driver compile its shaders
        session.reset_stats()
        states.clear()
    except BaseException:
        session.stop()
        raise
    soak_recorder = SoakRecorder() if soak else None
    errors: list[str] = []
    try:
        run_session(session, seconds, report=soak_recorder, report_every=SOAK_SAMPLE_S)
    except AvatarcamError as exc:
        if soak_recorder is None:
            raise
        errors.append(str(exc))  # a soak reports what went wrong with the figures it has
    stats = session.stats()
    sink = spec.sinks[0] if isinstance(spec.sinks[0], str) else spec.sinks[0].name
    result = {"source": str(spec.path or "demo"), "size": f"{spec.size[0]}x{spec.size[1]}",
              "fps": spec.fps, "sink": sink, "gl_renderer": session.gl_renderer, **stats.as_dict()}
    if still or spec.source is SourceKind.IMAGE:
        result.update(jitter(states))
    if soak_recorder is not None:
        if stats.voice_status and stats.voice_status.startswith("voice off"):
            errors.append(stats.voice_status)
        if stats.emotion_status:
            errors.append(stats.emotion_status)
        errors += session.sink_errors
        result.update(soak_recorder.summary(errors))
    result["raw_tracker_ms_p50"] = None
    face_model = session.face_model
    if face_model is not None and spec.path is not None and raw_frames > 0:
        raw = measure_raw_tracker(_raw_frames(spec, raw_frames), face_model, fps=spec.fps)
        result["raw_tracker_ms_p50"] = round(percentile(raw, 50), 2)
        result["raw_tracker_ms_p95"] = round(percentile(raw, 95), 2)
        if result.get("track_ms_p50") and result["raw_tracker_ms_p50"]:
            result["track_overhead_ratio"] = round(result["track_ms_p50"] / result["raw_tracker_ms_p50"], 3)
    return result


def time_models(enhance: Path | None, runs: int = 200, size: tuple[int, int] = (1920, 1080)) -> dict:
    """Each ONNX model alone, on the provider the session factory picks (the GPU where one works):
    the face emotion model, the lip-sync model (one 10 ms hop, its streaming state), the voice
    activity model (when downloaded), and the enhancement model at ``size``. Keys
    ``model_<name>_ms_p50/p95`` and ``model_<name>_provider``. (MediaPipe's tracker is timed by the
    pipeline run itself.)"""
    from engine.models import ModelManager
    from engine.onnx_session import create_session
    from engine.paths import MODELS_DIR
    from engine.render.enhance import open_enhancer

    feeds: dict[str, tuple[Path | None, Callable[[], dict]]] = {
        "fer": (FER_MODEL, lambda: {"face": np.zeros((1, 1, 48, 48), np.float32)}),
        "lipsync": (MODELS_DIR / "lipsync_tcn.onnx", lambda: {"features": np.zeros((1, 1, 40), np.float32),
                                                              "feature_state": np.zeros((1, 2, 40), np.float32),
                                                              "layer_state": np.zeros((1, 126, 64), np.float32)}),
        "vad": (ModelManager().find("silero_vad"), lambda: {"input": np.zeros((1, 576), np.float32),
                                                           "state": np.zeros((2, 1, 128), np.float32),
                                                           "sr": np.array(16000, np.int64)}),
    }
    out: dict = {}
    for name, (path, feed) in feeds.items():
        if path is None:
            continue
        session = create_session(path, what=f"{name} model", gpu=True)
        inputs = feed()
        out.update(_timed(name, session.get_providers()[0], lambda s=session, i=inputs: s.run(None, i), runs))
    if enhance is not None:
        enhancer = open_enhancer(enhance, size)
        frame = np.zeros((size[1], size[0], 4), np.uint8)
        out.update(_timed("enhance", enhancer.providers[0], lambda: enhancer.run(frame), runs))
    return out


def _timed(name: str, provider: str, call: Callable[[], object], runs: int) -> dict:
    for _ in range(10):  # warm-up: allocation, cuDNN autotuning
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000.0)
    return {f"model_{name}_provider": provider.removesuffix("ExecutionProvider"),
            f"model_{name}_ms_p50": round(percentile(times, 50), 3), f"model_{name}_ms_p95": round(percentile(times, 95), 3)}


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
    for stage in ("capture", "track", "hold", "emotion", "voice", "animate", "render", "enhance", "sink", "e2e",
                  "sound_to_mouth"):
        if f"{stage}_ms_p50" in result:
            lines.append(f"  {stage:<10}{result[f'{stage}_ms_p50']:>10.2f}{result[f'{stage}_ms_p95']:>10.2f}")
    if result.get("raw_tracker_ms_p50") is not None:
        lines.append(f"  {'mediapipe':<10}{result['raw_tracker_ms_p50']:>10.2f}{result['raw_tracker_ms_p95']:>10.2f}"
                     f"   (alone; tracking overhead x{result.get('track_overhead_ratio', 0):.2f})")
    lines += ["", f"  output {result['fps_out']:.2f} fps, {result['frames_out']} frames "
                  f"({result['frames_fresh']} fresh, {result['frames_repeated']} repeated), "
                  f"missed {result['frames_missed']}, dropped {result['frames_dropped']}, "
                  f"drawn below full size {result.get('frames_reduced', 0)} "
                  f"({result.get('resolution_changes', 0)} switches)",
              f"  source {result.get('source_fps', 0):.2f} fps measured ({result['frames_in']} frames in)",
              f"  cpu {result['cpu_cores']:.2f} cores, resident {result['rss_mb']:.0f} MB"]
    if result.get("enhance_status"):
        lines.append(f"  {result['enhance_status']}")
    for name in ("fer", "lipsync", "vad", "enhance"):
        if f"model_{name}_ms_p50" in result:
            lines.append(f"  model {name:<8} {result[f'model_{name}_ms_p50']:>8.2f} ms p50 {result[f'model_{name}_ms_p95']:>8.2f} ms p95"
                         f"  on {result[f'model_{name}_provider']}")
    if "soak_samples" in result:
        lines.append(f"  soak: memory slope {result['rss_slope_mb_per_min']} MB/min after {result['soak_settle_s']:.0f} s "
                     f"(resident {result['rss_mb_range']} MB), fps {result['fps_now_range']}, "
                     f"missed at {result['missed_at_s'] or 'no time'} (s, frames), "
                     f"errors {len(result['errors'])}" + "".join(f"\n    {e}" for e in result["errors"]))
    if "jitter_control_std_max" in result:
        lines.append(f"  jitter (still source): controls {result['jitter_control_std_max']:.4f} "
                     f"(worst {result['jitter_control_worst']}), head {result['jitter_head_deg_std_max']:.3f} deg, "
                     f"gaze {result['jitter_gaze_deg_std_max']:.3f} deg")
    return "\n".join(lines)
