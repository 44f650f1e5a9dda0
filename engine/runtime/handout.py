"""Handing rendered frames to the sinks, and keeping the output's cadence through a late render.

The render thread hands each frame out the moment it is drawn, so a consumer of the virtual camera
sees the gaps between hand-outs, not between the output clock's decisions: a render that takes two
or three times its usual time (on two cores the tracker and the rasteriser now and then share them)
leaves the consumer waiting 50-70 ms. A cover thread watches the hand-outs: when ``COVER_AFTER``
periods pass without one while a frame is being drawn, it sends the last frame again (a repeat, as a camera shows when it has
nothing new) and the late frame follows the moment it is ready. While the render loop waits for a
result, the output clock's own schedule decides (its gaps may legitimately reach MAX_GAP).

The output clock is not told of a repeat: it fills a slot the late render lost, and the clock
keeps its grid by sending the late frame and the next ones a little early. Counting the repeat
against the grid instead would make the clock hold (and so drop) fresh results of a camera at the
output rate to pay it back, which lengthens renders' overlap with tracking and so makes more late
renders. Each repeat is thus one frame over the rate (``frames_covered``; a few per minute).

Missed frames are counted here, on the hand-out times the consumer sees (``missed_frames``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace

from engine.errors import SinkError
from engine.packets import RenderedFrame
from engine.runtime.output_clock import missed_frames
from engine.runtime.telemetry import Telemetry
from engine.stages import Sink

# Periods after the last hand-out, while a frame is being drawn, before the last frame goes out again.
# Above the clock's own longest gap between decisions (MAX_GAP, 1.3) plus a render's usual jitter: a
# cover there would be a second frame just before the one the clock planned. Below 1.5 (a miss) by the
# time the woken cover thread needs to run (the late render waits for the rasteriser without the GIL).
COVER_AFTER = 1.4


class FrameHandout:
    """Gives frames to the sinks and to ``on_frame``, from the render thread or, covering a render
    that runs late, from the cover thread (``cover``); thread-safe.

    A sink that fails is closed and dropped, its message appended to ``sink_errors``; the others go on.
    Output frames are numbered here, in the order they go out.
    """

    def __init__(self, fps: float, telemetry: Telemetry, sink_errors: list[str],
                 on_frame: Callable[[RenderedFrame], None] | None = None) -> None:
        self.period = 1.0 / fps
        self.telemetry = telemetry
        self.sink_errors = sink_errors
        self.on_frame = on_frame
        self._out = threading.Condition()
        self._sinks: list[Sink] = []
        self._open = False
        self._last: RenderedFrame | None = None
        self._handed: float | None = None  # when the last frame went out
        self._count = 0
        self._drawing = False  # a frame is being drawn: a late one is covered

    def open(self, sinks: list[Sink]) -> None:
        """Start handing out to ``sinks`` (opened by the caller)."""
        with self._out:
            self._sinks, self._open = list(sinks), True

    def close(self) -> None:
        """Stop handing out (the cover thread ends); the caller may close the sinks after this returns."""
        with self._out:
            self._open = False
            self._out.notify_all()

    def drawing(self) -> None:
        """The render thread starts drawing a frame: until it is given, a late one is covered."""
        with self._out:
            self._drawing = True
            self._out.notify_all()

    def give(self, frame: RenderedFrame) -> None:
        """Hand ``frame`` out now."""
        with self._out:
            self._drawing = False
            self._send(frame)

    def cover(self) -> None:
        """The cover thread: until ``close``, send the last frame again whenever ``COVER_AFTER``
        periods pass without a hand-out while a frame is being drawn."""
        with self._out:
            while self._open:
                if not self._drawing or self._handed is None or self._last is None:
                    self._out.wait()  # nothing to cover, or nothing went out yet to repeat
                    continue
                wait = self._handed + COVER_AFTER * self.period - time.monotonic()
                if wait > 0:
                    self._out.wait(wait)
                    continue
                self._send(replace(self._last, fresh=False))
                self.telemetry.count("frames_covered")

    def _send(self, frame: RenderedFrame) -> None:
        if not self._open:
            return  # closing: the sinks are about to be closed
        handed = time.monotonic()  # under the lock: hand-outs are timed in the order they happen
        self._count += 1
        if frame.sequence != self._count:
            frame = replace(frame, sequence=self._count)
        missed = 0 if self._handed is None else missed_frames(handed - self._handed, self.period)
        start = time.perf_counter()
        for sink in list(self._sinks):
            try:
                sink.write(frame)
            except SinkError as exc:
                self.sink_errors.append(str(exc))
                self._sinks.remove(sink)
                sink.close()
        self.telemetry.record("sink", (time.perf_counter() - start) * 1000.0)
        self.telemetry.output_frame(handed, frame.fresh, missed)
        self._last, self._handed = frame, handed
        self._out.notify_all()
        if self.on_frame is not None:
            self.on_frame(frame)
