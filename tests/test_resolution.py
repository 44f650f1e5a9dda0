"""Dynamic resolution: fewer pixels while renders crowd the frame period, full size once they fit."""

from __future__ import annotations

import numpy as np
import pytest

from engine.avatar import load_avatar
from engine.avatar.retarget import AvatarBinding
from engine.capture.demo import DemoSource
from engine.outputs.sinks import NullSink
from engine.render import AvatarRenderer, RenderOptions
from engine.runtime import resolution
from engine.runtime.pipeline import Pipeline, PipelineOptions
from engine.runtime.resolution import FULL, HOLD_S, RECENT, REDUCED, SETTLED, ResolutionGovernor

FPS = 30.0


def feed(governor: ResolutionGovernor, seconds: float, count: int, start: float) -> tuple[list[float], float]:
    """``count`` renders of ``seconds`` each, one per frame period from ``start``; the changes made."""
    changes = []
    t = start
    for _ in range(count):
        t += 1 / FPS
        change = governor.rendered(seconds, t)
        if change is not None:
            changes.append(change)
    return changes, t


def test_renders_that_crowd_the_period_are_drawn_smaller_at_once_and_full_again_when_the_load_goes():
    governor = ResolutionGovernor(FPS)
    changes, t = feed(governor, 0.024, 3 * SETTLED, 0.0)
    assert changes == [] and governor.scale == FULL, "24 ms of 33: room enough"
    changes, t = feed(governor, 0.031, 3, t)
    assert changes == [REDUCED], "three slow renders in a second: smaller before one costs a frame"
    changes, t = feed(governor, 0.019, 3 * SETTLED, t)
    assert changes == [], "19 ms at 75 % predicts 30 ms at full size: stay reduced"
    changes, t = feed(governor, 0.009, 80, t)
    assert changes == [], "the 3 s window still holds the slow renders"
    changes, t = feed(governor, 0.009, 20, t)
    assert changes == [FULL] and governor.scale == FULL, "9 ms at 75 % predicts 15 ms at full size"


def test_a_restore_waits_for_the_hold_and_twice_as_long_after_one_that_did_not_fit():
    governor = ResolutionGovernor(FPS)
    changes, t = feed(governor, 0.031, RECENT, 0.0)
    assert changes == [REDUCED]
    changes, t = feed(governor, 0.009, int(HOLD_S * FPS) - 5, t)
    assert changes == []
    changes, t = feed(governor, 0.009, 10, t)
    assert changes == [FULL]
    changes, t = feed(governor, 0.031, RECENT, t)
    assert changes == [REDUCED], "full size crowded the period again at once"
    changes, t = feed(governor, 0.009, int(2 * HOLD_S * FPS) - 5, t)
    assert changes == []
    changes, t = feed(governor, 0.009, 10, t)
    assert changes == [FULL]


def test_a_single_slow_render_is_not_a_trend():
    governor = ResolutionGovernor(FPS)
    for i in range(10 * RECENT):
        assert governor.rendered(0.080 if i % RECENT == 7 else 0.020, i / FPS) is None
    assert governor.scale == FULL


@pytest.fixture(scope="module")
def posed(default_avatar_path):
    avatar = load_avatar(default_avatar_path)
    from engine.animation.animator import Animator, AnimatorOptions

    return avatar, AvatarBinding(avatar).pose(Animator(AnimatorOptions()).update(None, 0.0))


def test_a_reduced_render_keeps_the_output_size_and_the_picture(posed):
    avatar, pose = posed
    with AvatarRenderer(avatar, RenderOptions(width=640, height=360)) as renderer:
        full = renderer.render(pose).astype(np.int16)
        renderer.set_resolution_scale(0.75)
        assert renderer.resolution_scale == 0.75
        reduced = renderer.render(pose).astype(np.int16)
        rgba = renderer.render_rgba(pose)
        renderer.set_resolution_scale(1.0)
        again = renderer.render(pose).astype(np.int16)
        with pytest.raises(ValueError):
            renderer.set_resolution_scale(0.1)
    assert reduced.shape == full.shape and rgba.shape == (360, 640, 4)
    assert np.abs(reduced - full).mean() < 3.0, "the same picture, softer"
    assert np.abs(reduced - full).max() > 0, "it was really drawn smaller"
    assert np.array_equal(again, full)


def test_the_pipeline_draws_smaller_under_load_and_says_so(monkeypatch, default_avatar_path):
    monkeypatch.setattr(resolution, "RECENT", 5)
    monkeypatch.setattr(resolution, "REDUCE_AT", 0.0)  # every render "crowds" the period
    frames = []
    pipeline = Pipeline(DemoSource(fps=30.0, seconds=1.0), [NullSink()],
                        PipelineOptions(size=(320, 180), avatar=default_avatar_path), on_frame=frames.append)
    pipeline.start()
    try:
        assert pipeline.wait(60)
    finally:
        pipeline.stop()
    assert pipeline.error is None
    stats = pipeline.stats()
    assert 0 < stats.frames_reduced < stats.frames_out
    assert stats.resolution_changes == 1, "reduced once; a 1 s run cannot fill the 3 s a restore looks at"
    assert all(frame.image.shape == (180, 320, 3) for frame in frames)
