"""UI responsiveness and preview cost, measured (not a unit test: timings need a quiet machine).

    python -m app.perf_check --mode gui --video ../shared/media/talking_d6.mp4 --seconds 20
    python -m app.perf_check --mode headless --video ../shared/media/talking_d6.mp4 --seconds 20

``gui`` opens the main window (needs a display; ``xvfb-run`` works) and runs the video at 1280x720@30
through the app; a QTimer heartbeat every 5 ms records how late the event loop serves it (the
longest and the 99th-percentile block). ``headless`` runs the same pipeline without any window.
Both print one JSON line with CPU cores used (process CPU time / wall time after a 2 s warm-up), CPU
per output frame, the pipeline's fps and e2e latency; ``gui`` adds the UI thread's own CPU time
(preview conversion, painting, Qt events: what the window costs) as ``ui_thread_cores``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

from engine.runtime.stats import Stats

HEARTBEAT_MS = 5
WARM_UP_S = 2.0


def _cpu() -> float:
    times = psutil.Process().cpu_times()
    return times.user + times.system


def run_headless(video: Path, seconds: float, size: tuple[int, int]) -> dict:
    from engine.session import SessionSpec, SourceKind, build_session

    spec = SessionSpec(source=SourceKind.VIDEO, path=video, loop=True, size=size, sinks=("null",))
    with build_session(spec) as session:
        time.sleep(WARM_UP_S)
        cpu0, wall0, out0 = _cpu(), time.monotonic(), session.stats().frames_out
        time.sleep(seconds)
        cpu1, wall1 = _cpu(), time.monotonic()
        stats = session.stats()
    return {"mode": "headless", "cpu_cores": round((cpu1 - cpu0) / (wall1 - wall0), 3),
            "cpu_ms_per_frame": round(1000 * (cpu1 - cpu0) / max(1, stats.frames_out - out0), 2), **_pick(stats)}


def run_gui(video: Path, seconds: float, size: tuple[int, int], overlay: bool) -> dict:
    os.environ["AVATARCAM_CONFIG_DIR"] = tempfile.mkdtemp(prefix="avatarcam-perf-")
    from PySide6.QtCore import QElapsedTimer, QTimer

    from . import qt_application
    from .main_window import MainWindow
    from .settings import AppSettings

    app = qt_application()
    settings = AppSettings(first_run_done=True, size=size, fps=30.0, overlay=overlay)
    window = MainWindow(settings, cameras=[])
    window.show()
    window.add_file_source("video", video)
    window.start()
    clock = QElapsedTimer()
    clock.start()
    beats: list[float] = []
    marks: dict[str, float] = {}

    def beat() -> None:
        now = clock.nsecsElapsed() / 1e6
        if "t0" in marks:
            beats.append(now)

    def begin() -> None:
        marks["t0"] = clock.nsecsElapsed() / 1e6
        marks["cpu0"], marks["wall0"], marks["ui0"] = _cpu(), time.monotonic(), time.thread_time()
        marks["frames0"] = window.preview.frames_shown
        marks["out0"] = window.bridge.stats().frames_out
        QTimer.singleShot(int(seconds * 1000), finish)

    def finish() -> None:
        marks["cpu1"], marks["wall1"], marks["ui1"] = _cpu(), time.monotonic(), time.thread_time()
        marks["frames1"] = window.preview.frames_shown
        marks["stats"] = window.bridge.stats()
        window.quit()
        app.quit()

    heartbeat = QTimer(interval=HEARTBEAT_MS, timeout=beat)
    heartbeat.start()

    def when_running() -> None:
        if window.bridge.running and window.preview.frames_shown > 0:
            QTimer.singleShot(int(WARM_UP_S * 1000), begin)
        else:
            QTimer.singleShot(100, when_running)

    QTimer.singleShot(100, when_running)
    app.exec()
    gaps = np.diff(np.array(beats)) - HEARTBEAT_MS if len(beats) > 2 else np.zeros(1)
    wall = marks["wall1"] - marks["wall0"]
    out = max(1, marks["stats"].frames_out - marks["out0"])
    return {"mode": "gui", "overlay": overlay, "cpu_cores": round((marks["cpu1"] - marks["cpu0"]) / wall, 3),
            "cpu_ms_per_frame": round(1000 * (marks["cpu1"] - marks["cpu0"]) / out, 2),
            "ui_thread_cores": round((marks["ui1"] - marks["ui0"]) / wall, 3),
            "blocked_ms_max": round(float(gaps.max()), 1), "blocked_ms_p99": round(float(np.percentile(gaps, 99)), 1),
            "preview_fps": round((marks["frames1"] - marks["frames0"]) / wall, 1), **_pick(marks["stats"])}


def _pick(stats: Stats) -> dict:
    keys = ("fps_now", "e2e_ms_p50", "e2e_ms_p95", "track_ms_p50", "render_ms_p50", "frames_missed", "frames_dropped")
    return {k: getattr(stats, k) for k in keys}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("gui", "headless"), required=True)
    parser.add_argument("--video", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--overlay", action="store_true", help="latency overlay on (gui)")
    args = parser.parse_args(argv)
    size = (1280, 720)
    result = run_headless(args.video, args.seconds, size) if args.mode == "headless" else run_gui(
        args.video, args.seconds, size, args.overlay)
    print(json.dumps({**result, "load_avg_1m": round(os.getloadavg()[0], 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
