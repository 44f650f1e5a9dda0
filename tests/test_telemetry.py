"""Telemetry's rates: measured from the frames' own times, not from the measurement's wall time."""

from __future__ import annotations

import pytest

from engine.runtime.telemetry import Telemetry


def test_source_rate_is_the_rate_frames_arrived_at():
    telemetry = Telemetry()
    start = 1000.0  # the source opens late (model loading): the rate must not count that time
    for k in range(101):
        telemetry.input_frame(start + k * 0.04)  # a paced 25 fps clip
        telemetry.output_frame(start + k * 0.04, fresh=True, missed=0)
    snapshot = telemetry.snapshot()
    assert snapshot["frames_in"] == 101
    assert snapshot["source_fps"] == pytest.approx(25.0)
    assert snapshot["fps_out"] == pytest.approx(25.0)


def test_no_source_rate_before_two_frames():
    telemetry = Telemetry()
    telemetry.input_frame(5.0)
    assert "source_fps" not in telemetry.snapshot()
