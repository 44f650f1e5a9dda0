"""Outputs: virtual camera (through a fake pyvirtualcam backend), video file, null sink, specs."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import av
import numpy as np
import pytest
import pyvirtualcam
from fakes import FakeBackend

from engine.errors import SinkError
from engine.outputs import sinks
from engine.outputs.sinks import NullSink, VideoFileSink, VirtualCameraSink, open_sink, register_sink, virtual_camera_status
from engine.packets import RenderedFrame


def rendered(image: np.ndarray, sequence: int = 0) -> RenderedFrame:
    return RenderedFrame(image=image, t_capture=0.0, sequence=sequence, fresh=True)


def solid(width: int, height: int, rgb) -> np.ndarray:
    return np.full((height, width, 3), rgb, np.uint8)


class MissingDriverBackend:
    """Fails like pyvirtualcam's v4l2loopback backend on a machine without the module."""

    def __init__(self, **kw):
        raise RuntimeError("No v4l2 loopback device found at /dev/video[0-99]. Did you run 'modprobe v4l2loopback'?")


# ---- virtual camera -----------------------------------------------------------------------


def test_virtual_camera_sends_frames_to_the_backend(backends):
    pyvirtualcam.register_backend("fake", FakeBackend)
    sink = VirtualCameraSink(backend="fake")
    sink.open(64, 48, 30)
    assert sink.device == "/dev/fake0"
    for i in range(5):
        sink.write(rendered(solid(64, 48, (i * 40, 10, 200)), sequence=i))
    sink.close()
    sink.close()  # idempotent
    (backend,) = FakeBackend.instances
    assert (backend.width, backend.height, backend.fps, backend.fmt) == (64, 48, 30, "raw ")  # RGB
    assert backend.closed == 1
    assert len(backend.frames) == 5
    assert all(f.size == 64 * 48 * 3 and f.dtype == np.uint8 for f in backend.frames)
    assert tuple(backend.frames[3].reshape(48, 64, 3)[5, 5]) == (120, 10, 200)


def test_virtual_camera_uses_the_named_device(backends):
    pyvirtualcam.register_backend("fake", FakeBackend)
    with open_sink("virtualcam:/dev/video10") as sink:
        sink.open(32, 16, 60)
        assert sink.device == "/dev/video10"
    assert FakeBackend.instances[0].closed == 1


def test_virtual_camera_rejects_frames_of_the_wrong_size(backends):
    pyvirtualcam.register_backend("fake", FakeBackend)
    with VirtualCameraSink() as sink:
        sink.open(64, 48, 30)
        with pytest.raises(SinkError, match="64x48"):
            sink.write(rendered(solid(48, 64, (0, 0, 0))))
    with pytest.raises(SinkError, match="not open"):
        sink.write(rendered(solid(64, 48, (0, 0, 0))))


@pytest.mark.parametrize("registered", [{}, {"v4l2loopback": MissingDriverBackend}], ids=["none", "failing"])
def test_missing_driver_raises_sink_error_with_install_steps(backends, registered, monkeypatch):
    backends.update(registered)
    monkeypatch.setattr(sys, "platform", "linux")
    sink = VirtualCameraSink()
    with pytest.raises(SinkError) as caught:
        sink.open(64, 48, 30)
    text = str(caught.value)
    assert "v4l2loopback" in text and "exclusive_caps=1" in text and "modprobe" in text
    assert sink.detail  # pyvirtualcam's own reasons are kept
    if registered:
        assert "No v4l2 loopback device found" in sink.detail
    ok, message = virtual_camera_status()
    assert not ok and "exclusive_caps=1" in message


def test_missing_driver_on_windows_and_mac_points_to_obs(backends, monkeypatch):
    monkeypatch.setattr(sys, "platform", "win32")
    with pytest.raises(SinkError, match="OBS Studio"):
        VirtualCameraSink().open(64, 48, 30)


def test_virtual_camera_status_ok_with_a_working_backend(backends):
    pyvirtualcam.register_backend("fake", FakeBackend)
    ok, message = virtual_camera_status()
    assert ok and "/dev/fake0" in message
    assert FakeBackend.instances[0].closed == 1


def test_unknown_backend_is_a_sink_error(backends):
    pyvirtualcam.register_backend("fake", FakeBackend)
    with pytest.raises(SinkError, match="fake"):
        VirtualCameraSink(backend="nope").open(64, 48, 30)


def test_real_virtual_camera_without_a_loopback_device():
    if not sys.platform.startswith("linux") or any(Path("/dev").glob("video*")):
        pytest.skip("needs Linux without any /dev/video device")
    with pytest.raises(SinkError, match="exclusive_caps=1"):
        VirtualCameraSink().open(64, 48, 30)


# ---- video file ---------------------------------------------------------------------------


def decode(path: Path) -> tuple[list[np.ndarray], float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        return frames, float(stream.average_rate)


def frozen_clock() -> float:
    """A clock for tests that feed frames faster than real time: every frame arrives at once."""
    return 0.0


def test_file_sink_writes_every_frame(tmp_path):
    path = tmp_path / "out.mp4"
    colours = [(220, 20, 20), (20, 220, 20), (20, 20, 220)] * 4
    with VideoFileSink(path, clock=frozen_clock) as sink:
        sink.open(96, 64, 30)
        for i, colour in enumerate(colours):
            sink.write(rendered(solid(96, 64, colour), sequence=i))
    frames, fps = decode(path)
    assert fps == 30
    assert len(frames) == len(colours) == sink.frames_written
    assert all(f.shape == (64, 96, 3) for f in frames)
    for frame, colour in zip(frames, colours):
        assert np.abs(frame[32, 48].astype(int) - colour).max() < 12


def test_file_sink_pads_odd_sizes_by_repeating_the_edge(tmp_path):
    path = tmp_path / "odd.mp4"
    image = solid(33, 17, (20, 20, 220))
    image[:, -1] = (220, 20, 20)  # last column red: the padding column must repeat it
    with VideoFileSink(path, clock=frozen_clock) as sink:
        sink.open(33, 17, 25)
        for i in range(3):
            sink.write(rendered(image, sequence=i))
    frames, _ = decode(path)
    assert len(frames) == 3 and frames[0].shape == (18, 34, 3)
    assert np.abs(frames[0][8, 33].astype(int) - (220, 20, 20)).max() < 40
    assert np.abs(frames[0][17, 5].astype(int) - (20, 20, 220)).max() < 40


def test_file_sink_never_drops_frames_when_the_queue_fills(tmp_path):
    path = tmp_path / "many.mp4"
    writes = 3 * VideoFileSink.QUEUE_FRAMES
    rng = np.random.default_rng(1)
    noisy = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)  # hard to encode: the queue fills
    with VideoFileSink(path, clock=frozen_clock) as sink:
        sink.open(160, 120, 30)
        for i in range(writes):
            sink.write(rendered(noisy, sequence=i))
    frames, _ = decode(path)
    assert len(frames) == writes


def test_file_sink_records_real_time_when_frames_arrive_late(tmp_path):
    # a slow machine: 14 s at 30 fps, but only about 2 in 3 frames rendered, at jittered times
    path = tmp_path / "slow.mp4"
    rng = np.random.default_rng(5)
    times = np.sort(rng.uniform(0.0, 14.0, 280))
    times[0], times[-1] = 0.0, 14.0 - 1 / 30
    now = iter(times)
    colours = [(220, 20, 20), (20, 20, 220)]
    with VideoFileSink(path, clock=lambda: next(now)) as sink:
        sink.open(64, 48, 30)
        for i in range(len(times)):
            sink.write(rendered(solid(64, 48, colours[i % 2]), sequence=i))
    frames, fps = decode(path)
    assert len(frames) / fps == pytest.approx(14.0, abs=2 / 30)  # not the 9.3 s of 280 frames
    assert sink.frames_repeated == len(frames) - len(times)
    # a missed slot shows the frame before it: the frame at 7 s is the one written last before 7 s
    shown = int(np.searchsorted(times, 7.0 + 0.5 / 30, side="right")) - 1
    assert np.abs(frames[210][24, 32].astype(int) - colours[shown % 2]).max() < 40


def test_file_sink_errors(tmp_path):
    with pytest.raises(SinkError, match="folder does not exist"):
        VideoFileSink(tmp_path / "missing" / "out.mp4").open(64, 48, 30)
    with pytest.raises(SinkError):
        VideoFileSink(tmp_path).open(64, 48, 30)  # a folder, not a file
    with pytest.raises(SinkError, match="codec"):
        VideoFileSink(tmp_path / "x.mp4", codec="no-such-codec").open(64, 48, 30)


def test_file_sink_disk_full_is_a_sink_error():
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full to simulate a full disk")
    sink = VideoFileSink("/dev/full")
    noisy = np.random.default_rng(2).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    with pytest.raises(SinkError, match="No space left"):
        sink.open(160, 120, 30)
        for i in range(200):
            sink.write(rendered(noisy, sequence=i))
        sink.close()
    sink.close()  # idempotent, after a failure too


def test_file_sink_close_is_thread_safe(tmp_path):
    sink = VideoFileSink(tmp_path / "t.mp4")
    sink.open(64, 48, 30)
    sink.write(rendered(solid(64, 48, (1, 2, 3))))
    closers = [threading.Thread(target=sink.close) for _ in range(4)]
    for thread in closers:
        thread.start()
    for thread in closers:
        thread.join(10)
    frames, _ = decode(tmp_path / "t.mp4")
    assert len(frames) == 1


# ---- null sink, specs, registry -----------------------------------------------------------


def test_null_sink_counts_frames():
    sink = NullSink()
    sink.open(40, 30, 30)
    for _ in range(7):
        sink.write(rendered(solid(40, 30, (0, 0, 0))))
    assert sink.frames == 7 and sink.last_shape == (30, 40, 3)
    sink.close()
    sink.close()


def test_open_sink_specs(tmp_path):
    assert isinstance(open_sink("null"), NullSink)
    file_sink = open_sink(f"file:{tmp_path / 'a.mp4'}")
    assert isinstance(file_sink, VideoFileSink) and file_sink.path == tmp_path / "a.mp4"
    camera = open_sink("virtualcam")
    assert isinstance(camera, VirtualCameraSink) and camera.device is None
    assert open_sink("virtualcam:/dev/video10").device == "/dev/video10"


@pytest.mark.parametrize("spec", ["rtmp://x", "webcam", "", "file", "file:", "null:extra"])
def test_bad_specs_raise_sink_error(spec):
    with pytest.raises(SinkError):
        open_sink(spec)


def test_register_sink_plugs_in_a_new_output(monkeypatch):
    monkeypatch.setattr(sinks, "_SINKS", dict(sinks._SINKS))
    made = []

    def factory(argument):
        made.append(argument)
        return NullSink()

    register_sink("vmc", factory)
    assert isinstance(open_sink("vmc:127.0.0.1:39539"), NullSink)
    assert made == ["127.0.0.1:39539"]
    with pytest.raises(SinkError, match="vmc"):
        open_sink("nope")  # the error lists the registered names
