"""``avatarcam train-enhancer`` end to end on a short shared clip, with a tiny budget: tracked,
rendered, trained, exported under the enhancement contract, scored on the held-out end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import shared_file

from engine.errors import AvatarcamError
from engine.paths import DEFAULT_AVATAR

torch = pytest.importorskip("torch", reason="train-enhancer needs PyTorch (pip install avatarcam[train])")


def test_train_enhancer_runs_end_to_end(tmp_path, face_model):
    from engine.commands.train_enhancer import run
    from engine.render.enhance import open_enhancer

    clip = shared_file("media/expressions_d0.mp4")  # 3.1 s
    out, report = tmp_path / "me.onnx", tmp_path / "report"
    result = run(clip, out, face_model=face_model, avatar=DEFAULT_AVATAR, minutes=0.03, size=(64, 40),
                 train_seconds=None, test_seconds=1.0, width=4, threads=1, report=report)
    assert result["frames"] > 60 and result["test_frames"] >= 20 and result["train_until_s"] <= result["test_from_s"]
    for key in ("psnr_enhanced", "psnr_render", "ssim_enhanced", "ssim_render", "flicker_enhanced", "flicker_render"):
        assert np.isfinite(result[key]), key
    assert json.loads((report / "enhancer_eval.json").read_text())["psnr_enhanced"] == result["psnr_enhanced"]
    assert len(list(report.glob("enhancer_test_*.png"))) == 3
    # The export meets the contract: it opens in the enhancement stage, fixed size, temporal input.
    enhancer = open_enhancer(out, (320, 180))
    assert enhancer.model_size == (64, 40)
    frame = np.zeros((180, 320, 4), np.uint8)
    first, second = enhancer.run(frame), enhancer.run(frame)
    assert first.shape == (180, 320, 3) and second.shape == first.shape


def test_a_clip_without_a_face_is_one_clear_error(tmp_path, face_model):
    import cv2

    from engine.commands.train_enhancer import prepare_clip

    video = tmp_path / "empty.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 25, (64, 64))
    for _ in range(30):
        writer.write(np.full((64, 64, 3), 90, np.uint8))
    writer.release()
    with pytest.raises(AvatarcamError) as error:
        prepare_clip(video, face_model, DEFAULT_AVATAR, (64, 40))
    assert "face" in str(error.value) and error.value.hint
