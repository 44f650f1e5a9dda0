"""``bench --soak``: the memory slope is fitted after the warm-up, with the fps range and errors."""

from __future__ import annotations

import pytest

from engine.commands import cli
from engine.commands.bench import SoakRecorder
from engine.runtime.stats import Stats


def test_the_memory_slope_is_fitted_after_the_caches_settle():
    recorder = SoakRecorder()
    for t in range(0, 600, 5):
        # 40 MB of warm-up growth in the first minute, then 0.5 MB a minute.
        rss = 400 + min(t, 60) * (40 / 60) + max(0, t - 60) / 60 * 0.5
        recorder(Stats(seconds=float(t), rss_mb=rss, fps_now=29.0 + (t % 2)))
    summary = recorder.summary(["sink failed"])
    assert summary["rss_slope_mb_per_min"] == pytest.approx(0.5, abs=0.01)
    assert summary["fps_now_range"] == [29.0, 30.0] and summary["errors"] == ["sink failed"]
    assert summary["soak_settle_s"] == 60.0 and summary["soak_samples"] == 120


def test_the_soak_says_when_output_frames_were_missed():
    recorder = SoakRecorder()
    for t, missed in ((5, 0), (10, 0), (15, 2), (20, 2), (25, 3)):
        recorder(Stats(seconds=float(t), rss_mb=400.0, fps_now=30.0, frames_missed=missed))
    assert recorder.summary([])["missed_at_s"] == [[15.0, 2], [25.0, 1]]


def test_bench_takes_soak_and_loop():
    args = cli.build_parser().parse_args(["bench", "--demo", "--soak", "--loop", "--seconds", "3600"])
    assert args.soak and args.loop and args.seconds == 3600
    assert cli.spec_from_args(args).loop
