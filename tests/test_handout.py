"""Hand-out: frames reach the sinks in order, and a render that runs late is covered by a repeat."""

from __future__ import annotations

import threading
import time

import numpy as np

from engine.capture.demo import DemoSource
from engine.errors import SinkError
from engine.packets import RenderedFrame
from engine.render import AvatarRenderer
from engine.runtime.handout import COVER_AFTER, FrameHandout
from engine.runtime.pipeline import Pipeline, PipelineOptions
from engine.runtime.telemetry import Telemetry

FPS = 30.0
PERIOD = 1.0 / FPS


class TimedSink:
    """Keeps every frame with the time it arrived; ``repeated`` is set by the first repeat."""

    def __init__(self) -> None:
        self.got: list[tuple[float, RenderedFrame]] = []
        self.repeated = threading.Event()

    def open(self, width: int, height: int, fps: float) -> None:
        pass

    def write(self, frame: RenderedFrame) -> None:
        self.got.append((time.monotonic(), frame))
        if not frame.fresh:
            self.repeated.set()

    def close(self) -> None:
        pass


class BrokenSink(TimedSink):
    closed = False

    def write(self, frame: RenderedFrame) -> None:
        raise SinkError("The virtual camera went away.")

    def close(self) -> None:
        self.closed = True


def picture(value: int) -> RenderedFrame:
    return RenderedFrame(image=np.full((4, 4, 3), value, np.uint8), t_capture=0.0, sequence=0, fresh=True)


def started(handout: FrameHandout, sinks: list) -> threading.Thread:
    handout.open(sinks)
    cover = threading.Thread(target=handout.cover, daemon=True)
    cover.start()
    return cover


def test_a_render_that_runs_late_is_covered_by_the_last_frame_then_the_late_frame_follows():
    telemetry, sink = Telemetry(), TimedSink()
    handout = FrameHandout(FPS, telemetry, [])
    cover = started(handout, [sink])
    handout.give(picture(1))
    handout.drawing()  # ...and the render takes longer than the output can wait
    assert sink.repeated.wait(5.0), "the last frame went out again"
    handout.give(picture(2))
    handout.close()
    cover.join(5.0)
    assert not cover.is_alive(), "closing ends the cover thread"

    (t1, first), (t_cover, repeat), (_, late) = sink.got[:3]
    assert int(repeat.image[0, 0, 0]) == 1 and not repeat.fresh, "a repeat of the last frame"
    assert int(late.image[0, 0, 0]) == 2 and late.fresh
    assert [frame.sequence for _, frame in sink.got] == [1, 2, 3], "numbered in the order they went out"
    assert t_cover - t1 >= COVER_AFTER * PERIOD, "not before the cover time"
    stats = telemetry.snapshot()
    assert stats["frames_covered"] == 1 and stats["frames_repeated"] == 1


def test_nothing_is_repeated_while_no_frame_is_being_drawn():
    """Between frames the output clock decides (its gaps may reach 1.3 periods): no cover then."""
    sink = TimedSink()
    handout = FrameHandout(FPS, Telemetry(), [])
    cover = started(handout, [sink])
    handout.give(picture(1))
    assert not sink.repeated.wait(4 * COVER_AFTER * PERIOD)
    handout.close()
    cover.join(5.0)
    assert len(sink.got) == 1


def test_gaps_over_one_and_a_half_periods_count_as_missed_frames_where_the_consumer_sees_them():
    telemetry = Telemetry()
    handout = FrameHandout(FPS, telemetry, [])
    handout.open([TimedSink()])  # no cover thread: the gap is left open
    handout.give(picture(1))
    time.sleep(3.2 * PERIOD)  # the render thread busy for 3.2 periods
    handout.give(picture(2))
    assert telemetry.snapshot()["frames_missed"] in (2, 3)  # 3.2 periods (+ scheduling): 2 frames missed


def test_a_failing_sink_is_dropped_and_reported_while_the_others_go_on():
    errors: list[str] = []
    good, broken = TimedSink(), BrokenSink()
    handout = FrameHandout(FPS, Telemetry(), errors)
    handout.open([broken, good])
    handout.give(picture(1))
    handout.give(picture(2))
    assert errors == ["The virtual camera went away."] and broken.closed
    assert len(good.got) == 2


def test_after_close_nothing_reaches_the_sinks():
    sink = TimedSink()
    handout = FrameHandout(FPS, Telemetry(), [])
    handout.open([sink])
    handout.close()
    handout.give(picture(1))
    assert sink.got == []


def test_the_pipeline_covers_a_slow_render_and_keeps_the_rate(monkeypatch, default_avatar_path):
    render = AvatarRenderer.render
    calls = [0]

    def every_tenth_slow(self, pose):
        calls[0] += 1
        if calls[0] > 3 and calls[0] % 10 == 0:
            time.sleep(3 * PERIOD)  # a render three periods long (the machine stalled)
        return render(self, pose)

    monkeypatch.setattr(AvatarRenderer, "render", every_tenth_slow)
    sink = TimedSink()
    pipeline = Pipeline(DemoSource(fps=FPS, seconds=2.0), [sink],
                        PipelineOptions(size=(160, 90), avatar=default_avatar_path))
    pipeline.start()
    try:
        assert pipeline.wait(60)
    finally:
        pipeline.stop()
    assert pipeline.error is None
    stats = pipeline.stats()
    assert stats.frames_covered >= 5, stats  # ~6 slow renders, each covered at least once
    times = np.array([t for t, _ in sink.got])
    # Uncovered, each slow render would leave a gap of over three periods.
    assert np.diff(times).max() < 2 * PERIOD, np.diff(times).max()
    # The clock keeps its own rate; each repeat is one frame over it (handout.py).
    span = times[-1] - times[0]
    assert 29.0 <= (stats.frames_out - stats.frames_covered - 1) / span <= 31.0, (stats, span)
