"""``bench --rates``: the clip re-encoded at other camera rates, and the acceptance checks."""

from __future__ import annotations

import av
import numpy as np
import pytest
from conftest import shared_file

from engine.commands.bench_rates import acceptance, reencode


@pytest.mark.parametrize("fps", [15.0, 25.0, 60.0])
def test_reencoding_resamples_the_clip_in_time(tmp_path, fps):
    clip = shared_file("media/talking_d6.mp4")  # 30 fps
    out = reencode(clip, fps, tmp_path / "clip.mp4", seconds=2.0)
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="gray") for f in container.decode(stream)]
        assert float(stream.average_rate) == pytest.approx(fps)
    assert len(frames) == int(2.0 * fps)
    with av.open(str(clip)) as container:
        original = [f.to_ndarray(format="gray") for _, f in zip(range(60), container.decode(video=0))]
    # frame k shows the original frame on screen at k / fps (H.264 at crf 18: close, not equal)
    for k in (0, len(frames) // 2, len(frames) - 1):
        source = original[int(k / fps * 30 + 1e-6)]
        assert np.abs(frames[k].astype(int) - source).mean() < 3.0


def run(camera_fps: float, p95: float, missed: int = 0, fps_out: float = 30.0) -> dict:
    return {"camera_fps": camera_fps, "fps": 30.0, "e2e_ms_p95": p95, "frames_missed": missed, "fps_out": fps_out}


def test_acceptance_compares_every_rate_with_the_30_fps_run():
    good = acceptance([run(15, 25.0), run(25, 27.9), run(30, 25.5), run(60, 23.0)])
    assert good == {"p95_spread_ms": 2.5, "p95_within_3_ms": True, "no_missed_frames": True,
                    "output_rate_within_1_percent": True}
    bad = acceptance([run(25, 40.0, missed=1), run(30, 25.0, fps_out=29.6)])
    assert bad == {"p95_spread_ms": 15.0, "p95_within_3_ms": False, "no_missed_frames": False,
                   "output_rate_within_1_percent": False}
