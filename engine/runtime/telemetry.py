"""Telemetry: per-stage timings, end-to-end latency, frame counters, CPU and memory.

Stages record milliseconds with ``record(stage, ms)``; the render loop counts output frames.
``snapshot()`` returns plain numbers (p50/p95 per stage, fps, counters, cores used, resident MB)
for the CLI, the benchmark and the GUI's latency overlay. Thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from typing import Any

import numpy as np
import psutil

WINDOW = 4096  # samples kept per stage: percentiles over the recent past, bounded memory


def percentile(values: list[float] | deque, q: float) -> float:
    return float(np.percentile(np.fromiter(values, dtype=np.float64), q)) if values else 0.0


class Telemetry:
    """Collects measurements from all pipeline threads. ``reset`` starts a new measurement window."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process = psutil.Process()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._samples: dict[str, deque] = defaultdict(lambda: deque(maxlen=WINDOW))
            self._counters: dict[str, int] = defaultdict(int)
            self._start_wall = time.monotonic()
            self._start_cpu = self._cpu_seconds()
            self._first_out: float | None = None
            self._last_out: float | None = None
            self._out_times: deque = deque(maxlen=WINDOW)
            self._first_in: float | None = None
            self._last_in: float | None = None

    def _cpu_seconds(self) -> float:
        t = self._process.cpu_times()
        return t.user + t.system

    def record(self, stage: str, ms: float) -> None:
        with self._lock:
            self._samples[stage].append(ms)

    def count(self, counter: str, n: int = 1) -> None:
        with self._lock:
            self._counters[counter] += n

    def input_frame(self, t: float) -> None:
        """The source delivered a frame at monotonic time ``t``."""
        with self._lock:
            if self._first_in is None:
                self._first_in = t
            self._last_in = t
            self._counters["frames_in"] += 1

    def output_frame(self, t: float, fresh: bool, missed: int) -> None:
        """An output frame was handed to the sinks at monotonic time ``t``."""
        with self._lock:
            if self._first_out is None:
                self._first_out = t
            self._last_out = t
            self._out_times.append(t)
            self._counters["frames_out"] += 1
            self._counters["frames_fresh" if fresh else "frames_repeated"] += 1
            self._counters["frames_missed"] += missed

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            wall = max(1e-9, time.monotonic() - self._start_wall)
            out: dict[str, Any] = {}
            for stage, values in sorted(self._samples.items()):
                out[f"{stage}_ms_p50"] = round(percentile(values, 50), 2)
                out[f"{stage}_ms_p95"] = round(percentile(values, 95), 2)
            frames = self._counters.get("frames_out", 0)
            span = (self._last_out - self._first_out) if self._first_out is not None and self._last_out else 0.0
            out["fps_out"] = round((frames - 1) / span, 2) if frames > 1 and span > 0 else 0.0
            # The input's real rate, over its own first and last frame like fps_out (not the
            # measurement's wall time, which also holds the start-up and the stop).
            frames_in = self._counters.get("frames_in", 0)
            span_in = (self._last_in - self._first_in) if self._first_in is not None and self._last_in else 0.0
            if frames_in > 1 and span_in > 0:
                out["source_fps"] = round((frames_in - 1) / span_in, 2)
            recent = list(self._out_times)[-31:]
            out["fps_now"] = round((len(recent) - 1) / (recent[-1] - recent[0]), 1) if len(recent) > 2 and recent[-1] > recent[0] else 0.0
            for name in ("frames_out", "frames_fresh", "frames_repeated", "frames_missed", "frames_dropped", "frames_in"):
                out[name] = self._counters.get(name, 0)
            for name, value in self._counters.items():
                out.setdefault(name, value)
            out["cpu_cores"] = round((self._cpu_seconds() - self._start_cpu) / wall, 2)
            out["rss_mb"] = round(self._process.memory_info().rss / 2**20, 1)
            out["seconds"] = round(wall, 2)
            return out
