"""The command line: every bad input gives one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine import models
from engine.commands import cli
from engine.errors import SourceError


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_clear_line(code: int, err: str, *needles: str) -> None:
    assert code != 0
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("avatarcam:")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle.lower() in lines[0].lower(), lines[0]


@pytest.fixture
def gray_video(tmp_path):
    """A 1 s video without a face, odd width."""
    import av

    path = tmp_path / "no_face.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 322, 240, "yuv420p"
        for i in range(25):
            frame = av.VideoFrame.from_ndarray(np.full((240, 322, 3), 100 + i, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def test_missing_video(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "--video", str(tmp_path / "nope.mp4"), "--sink", "null")
    assert_one_clear_line(code, err, "nope.mp4")


def test_corrupt_video(capsys, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    code, _, err = run_cli(capsys, "run", "--video", str(bad), "--sink", "null")
    assert_one_clear_line(code, err, "broken.mp4")


def test_text_file_as_video(capsys, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    code, _, err = run_cli(capsys, "run", "--video", str(notes), "--sink", "null")
    assert_one_clear_line(code, err, "notes.txt")


def test_missing_and_corrupt_image(capsys, tmp_path):
    code, _, err = run_cli(capsys, "run", "--image", str(tmp_path / "me.jpg"), "--sink", "null")
    assert_one_clear_line(code, err, "me.jpg")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    code, _, err = run_cli(capsys, "run", "--image", str(tmp_path / "bad.png"), "--sink", "null")
    assert_one_clear_line(code, err, "bad.png")


def test_corrupt_avatar(capsys, tmp_path):
    bad = tmp_path / "avatar.glb"
    bad.write_bytes(b"glTF" + b"\x02\x00\x00\x00" + b"\xff" * 50)
    code, _, err = run_cli(capsys, "run", "--demo", "--avatar", str(bad), "--sink", "null", "--seconds", "1")
    assert_one_clear_line(code, err, "avatar.glb")


def test_unknown_camera(capsys):
    code, _, err = run_cli(capsys, "run", "--camera", "7", "--sink", "null", "--seconds", "1")
    assert_one_clear_line(code, err, "camera")


def test_busy_camera_message_reaches_the_user(capsys, monkeypatch):
    def busy(self):
        raise SourceError("Camera 0 is in use by another application.", "Close the other app and try again.")

    monkeypatch.setattr("engine.capture.video.CameraSource.open", busy)
    code, _, err = run_cli(capsys, "run", "--camera", "0", "--sink", "null", "--seconds", "1")
    assert_one_clear_line(code, err, "in use", "close the other app")


def test_no_virtual_camera_driver_says_how_to_install_it(capsys, monkeypatch):
    import pyvirtualcam

    monkeypatch.setattr(pyvirtualcam.camera, "BACKENDS", {})
    code, _, err = run_cli(capsys, "run", "--demo", "--sink", "virtualcam", "--seconds", "1")
    assert_one_clear_line(code, err)
    assert "v4l2loopback" in err and "exclusive_caps=1" in err or "OBS" in err


def test_missing_model_offline(capsys, monkeypatch, tmp_path, gray_video):
    import urllib.error

    def offline(*args, **kwargs):
        raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))

    monkeypatch.setattr(models.ModelManager, "search_dirs", lambda self: [tmp_path / "empty"])
    monkeypatch.setattr(models.platformdirs, "user_data_dir", lambda *a, **k: str(tmp_path / "data"))
    monkeypatch.setattr(models.urllib.request, "urlopen", offline)
    code, _, err = run_cli(capsys, "run", "--video", str(gray_video), "--sink", "null")
    assert_one_clear_line(code, err, "face_landmarker.task", "connect to the internet")


def test_clip_without_a_face(capsys, face_model, gray_video):
    code, _, err = run_cli(capsys, "run", "--video", str(gray_video), "--sink", "null", "--size", "320x180", "--quiet")
    assert_one_clear_line(code, err, "no face")


def test_odd_output_size_runs(capsys, tmp_path):
    out = tmp_path / "odd.mp4"
    code, _, err = run_cli(capsys, "run", "--demo", "--size", "641x479", "--sink", f"file:{out}", "--seconds", "1", "--quiet")
    assert code == 0, err
    assert out.stat().st_size > 0


def test_bad_size_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run", "--demo", "--size", "big"])
    assert exit_info.value.code == 2
    assert "WIDTHxHEIGHT" in capsys.readouterr().err


def test_unknown_sink(capsys):
    code, _, err = run_cli(capsys, "run", "--demo", "--sink", "smoke-signals", "--seconds", "1")
    assert_one_clear_line(code, err, "smoke-signals")


def test_snapshot_renders_the_requested_expression(capsys, tmp_path):
    neutral, smile = tmp_path / "neutral.png", tmp_path / "smile.png"
    assert run_cli(capsys, "snapshot", "--size", "320x240", "--out", str(neutral))[0] == 0
    assert run_cli(capsys, "snapshot", "--size", "320x240", "--expression", "jawOpen=1,mouthSmileLeft=1",
                   "--yaw", "10", "--out", str(smile))[0] == 0
    a, b = cv2.imread(str(neutral)), cv2.imread(str(smile))
    assert a.shape == (240, 320, 3)
    assert np.abs(a.astype(int) - b).max() > 50


def test_snapshot_unknown_expression(capsys, tmp_path):
    code, _, err = run_cli(capsys, "snapshot", "--expression", "grin=1", "--out", str(tmp_path / "x.png"))
    assert_one_clear_line(code, err, "grin")


def test_doctor_reports_opengl(capsys):
    code, out, _ = run_cli(capsys, "doctor")
    line = next(line for line in out.splitlines() if "OpenGL" in line)
    assert line.startswith("ok")
    assert "virtual camera" in out and "face_landmarker" in out


def test_doctor_names_the_onnx_provider_in_use_and_where_to_get_flame(capsys):
    import onnxruntime

    _, out, _ = run_cli(capsys, "doctor")
    line = next(line for line in out.splitlines() if "ONNX providers" in line)
    assert line.startswith("ok") and "models run on" in line
    assert all(p.removesuffix("ExecutionProvider") in line for p in onnxruntime.get_available_providers())
    assert "flame.is.tue.mpg.de" in next(line for line in out.splitlines() if "FLAME" in line)
