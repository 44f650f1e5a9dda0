"""A deterministic simulation of the render loop around ``OutputClock``: synthetic camera, tracker
and renderer times in, output times out. No threads, no sleeping: time is a number."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.runtime.output_clock import OutputClock, TrackingGate


def camera_times(fps: float, seconds: float, *, jitter_s: float = 0.0, seed: int = 0) -> np.ndarray:
    """Capture times of a camera at ``fps`` whose frame times wander up to +-``jitter_s``."""
    rng = np.random.default_rng(seed)
    times = np.arange(0.0, seconds, 1.0 / fps)
    return np.sort(times + rng.uniform(-jitter_s, jitter_s, len(times)))


REPEAT_S = 0.0003  # handing the last frame to the sinks again


@dataclass(frozen=True)
class SimResult:
    out_times: np.ndarray  # when each output frame was decided
    fresh: np.ndarray  # bool per output frame
    hold: np.ndarray  # per fresh frame: decided - arrived (s)
    e2e: np.ndarray  # per fresh frame: handed to the sinks - captured (s)
    missed: int
    drawn: np.ndarray  # bool per output frame: rendered anew (False: the last frame sent again)
    overlap: float  # seconds during which a filler was being drawn while the tracker ran
    tracked: int  # camera frames tracked

    @property
    def fps(self) -> float:
        return (len(self.out_times) - 1) / (self.out_times[-1] - self.out_times[0])

    @property
    def min_gap(self) -> float:
        return float(np.diff(self.out_times).min())

    @property
    def max_gap(self) -> float:
        return float(np.diff(self.out_times).max())


def simulate(captures: np.ndarray, *, fps: float = 30.0, track_s: float = 0.011, track_jitter_s: float = 0.002,
             render_s: float = 0.016, render_jitter_s: float = 0.004, start: float = 0.0, seed: int = 1) -> SimResult:
    """Run the render loop of ``engine.runtime.pipeline`` with the clock on synthetic times.

    Each captured frame is tracked for ``track_s`` (+-jitter) on one tracker thread that takes the
    newest frame when it is free; a result waits in a newest-wins slot. The render thread waits for
    a result until the clock's filler time, holds it until its release time (a newer result replaces
    it meanwhile), decides, then renders for ``render_s`` (+-jitter) before it looks again.
    """
    rng = np.random.default_rng(seed)
    arrivals: list[tuple[float, float]] = []  # (arrived, captured), tracker output
    tracking: list[tuple[float, float]] = []  # when the tracker was busy
    free = -np.inf
    gate = TrackingGate(fps)
    for i, captured in enumerate(captures):
        if i + 1 < len(captures) and captures[i + 1] <= max(free, captured):
            continue  # a newer frame is waiting when the tracker gets free: this one is dropped
        if not gate.admit(captured):
            continue  # a camera faster than the output: not worth tracking
        begin = max(free, captured)
        free = begin + track_s + rng.uniform(-track_jitter_s, track_jitter_s)
        arrivals.append((free, captured))
        tracking.append((begin, free))
    clock = OutputClock(fps, start)
    out, fresh, hold, e2e, drawn = [], [], [], [], []
    missed = 0
    overlap = 0.0
    now = start
    k = 0  # first arrival not yet taken
    end = arrivals[-1][0] + 0.1
    while now < end:
        # newest result already waiting, else the first to arrive before the filler time
        filler = clock.filler_time()
        waiting = [j for j in range(k, len(arrivals)) if arrivals[j][0] <= max(now, filler)]
        if waiting and arrivals[waiting[0]][0] <= max(now, filler):
            first = max(now, arrivals[waiting[0]][0])
            ready = [j for j in waiting if arrivals[j][0] <= first]
            release = clock.release(arrivals[ready[-1]][0])
            decided = max(first, release)
            j = max(j for j in range(k, len(arrivals)) if arrivals[j][0] <= decided)  # newest by then
            arrived, captured = arrivals[j]
            missed += clock.sent(decided, arrived, replaced=j - k, captured=captured)
            k = j + 1
            hold.append(decided - arrived)
            fresh.append(True)
            draw = True
        else:
            decided = max(now, filler)
            draw = clock.filler_renders(decided)
            missed += clock.sent(decided, None)
            fresh.append(False)
            captured = None
        out.append(decided)
        drawn.append(draw)
        busy = render_s + rng.uniform(-render_jitter_s, render_jitter_s) if draw else REPEAT_S
        if draw:
            clock.rendered(busy)
            if captured is None:
                overlap += sum(max(0.0, min(end, decided + busy) - max(begin, decided)) for begin, end in tracking)
        now = decided + busy
        if captured is not None:
            e2e.append(now - captured)
    return SimResult(np.array(out), np.array(fresh), np.array(hold), np.array(e2e), missed, np.array(drawn), overlap, len(tracking))
