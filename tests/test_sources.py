"""Video sources: files, images and cameras, their pacing, errors and thread-safe close."""

from __future__ import annotations

import sys
import threading
import time
import wave
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from engine.capture import video as sources
from engine.capture.video import CameraSource, FramePacer, ImageSource, VideoFileSource, list_cameras
from engine.errors import SourceError
from engine.paths import SHARED_DIR

COLOURS = [(220, 20, 20), (20, 220, 20), (20, 20, 220), (230, 230, 30)]  # RGB: red, green, blue, yellow


def write_video(path: Path, colours, size=(64, 48), fps=25, pix_fmt="yuv420p") -> Path:
    """Write one solid-colour frame per entry of ``colours`` (RGB) as H.264 MP4."""
    width, height = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.options = {"crf": "10"}
        for index, colour in enumerate(colours):
            frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), colour, np.uint8), format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def read_all(source) -> list:
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    return frames


def assert_close_unblocks_read(source) -> None:
    """A read() blocked waiting for a far-off frame returns None within 50 ms of close()."""
    source.read()  # the first frame is due at once; the next one is far away
    entered, result = threading.Event(), {}

    def reader() -> None:
        entered.set()
        result["frame"] = source.read()
        result["t"] = time.monotonic()

    thread = threading.Thread(target=reader)
    thread.start()
    entered.wait(5)
    t_close = time.monotonic()
    source.close()
    thread.join(5)
    assert not thread.is_alive()
    assert result["frame"] is None
    assert result["t"] - t_close < 0.05


# ---- video files --------------------------------------------------------------------------


def test_video_file_frames_sizes_and_rgb_order(tmp_path):
    path = write_video(tmp_path / "colours.mp4", COLOURS * 2)
    with VideoFileSource(path, paced=False) as source:
        assert (source.info.width, source.info.height, source.info.fps) == (64, 48, 25.0)
        assert source.info.frame_count == 8 and not source.info.live
        frames = read_all(source)
    assert [f.index for f in frames] == list(range(8))
    for frame, colour in zip(frames, COLOURS * 2):
        assert frame.image.shape == (48, 64, 3) and frame.image.dtype == np.uint8
        assert frame.image.flags.c_contiguous
        centre = frame.image[24, 32].astype(int)
        assert np.abs(centre - colour).max() < 12, (centre, colour)


def test_odd_size_video_is_delivered_as_is(tmp_path):
    path = write_video(tmp_path / "odd.mp4", COLOURS, size=(33, 17), pix_fmt="yuv444p")
    with VideoFileSource(path, paced=False) as source:
        frames = read_all(source)
    assert len(frames) == 4
    assert all(f.image.shape == (17, 33, 3) for f in frames)
    assert frames[0].size == (33, 17)


def test_loop_restarts_and_counts_on(tmp_path):
    path = write_video(tmp_path / "loop.mp4", COLOURS)
    with VideoFileSource(path, paced=False, loop=True) as source:
        frames = [source.read() for _ in range(10)]
    assert [f.index for f in frames] == list(range(10))
    assert np.abs(frames[4].image[0, 0].astype(int) - COLOURS[0]).max() < 12  # back to red


def test_unpaced_timestamps_increase(tmp_path):
    path = write_video(tmp_path / "fast.mp4", COLOURS * 5)
    with VideoFileSource(path, paced=False) as source:
        stamps = [f.t_capture for f in read_all(source)]
    assert len(stamps) == 20 and np.all(np.diff(stamps) >= 0)
    # Unpaced is not tied to the file's 25 fps: 20 frames take far less than 0.8 s to come out.
    assert stamps[-1] - stamps[0] < 0.4


def test_paced_file_releases_frames_at_its_own_rate():
    path = SHARED_DIR / "media" / "expressions_d0.mp4"
    if not path.is_file():
        pytest.skip(f"shared test media not found: {path}")
    with VideoFileSource(path, paced=True) as source:
        frames = [source.read() for _ in range(26)]
        skipped = source.frames_skipped
    stamps = np.array([f.t_capture for f in frames])
    gaps = np.diff(stamps)
    assert skipped == 0 and [f.index for f in frames] == list(range(26))
    assert np.median(gaps) == pytest.approx(0.040, abs=0.004)
    # Deadlines are absolute (start + pts), so small wake-up delays do not add up.
    assert stamps[-1] - stamps[0] == pytest.approx(25 * 0.040, abs=0.02)


def test_paced_file_skips_stale_frames_instead_of_queueing(tmp_path):
    path = write_video(tmp_path / "long.mp4", COLOURS * 25, fps=50)
    with VideoFileSource(path, paced=True) as source:
        first = source.read()
        time.sleep(0.2)  # a consumer stalled for ten frame periods
        after = source.read()
        following = source.read()
        skipped = source.frames_skipped
    assert first.index == 0
    # The next frame delivered is the one due now, not frame 1: about 9 stale frames were dropped.
    assert 8 <= after.index <= 12
    assert skipped == after.index - 1
    assert following.index == after.index + 1
    assert after.t_capture - first.t_capture >= 0.2


def test_close_from_another_thread_unblocks_file_read(tmp_path):
    path = write_video(tmp_path / "slow.mp4", COLOURS, fps=1)  # the next frame is 1 s away
    source = VideoFileSource(path)
    source.open()
    assert_close_unblocks_read(source)
    assert source.read() is None
    source.close()  # idempotent


def test_missing_file_raises_source_error(tmp_path):
    with pytest.raises(SourceError, match="no such file") as caught:
        VideoFileSource(tmp_path / "nope.mp4").open()
    assert "nope.mp4" in str(caught.value) and caught.value.hint


@pytest.mark.parametrize(
    "content",
    [b"this is not a video at all\n" * 50, bytes(range(256)) * 64, b""],
    ids=["text", "binary-noise", "empty"],
)
def test_not_a_video_raises_source_error(tmp_path, content):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(SourceError) as caught:
        VideoFileSource(path).open()
    assert str(path) in caught.value.message


def test_truncated_video_raises_source_error(tmp_path):
    good = write_video(tmp_path / "good.mp4", COLOURS * 10)
    bad = tmp_path / "truncated.mp4"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    with pytest.raises(SourceError):
        VideoFileSource(bad).open()


def test_folder_and_audio_only_file_raise_source_error(tmp_path):
    with pytest.raises(SourceError, match="folder"):
        VideoFileSource(tmp_path).open()
    audio = tmp_path / "tone.wav"
    with wave.open(str(audio), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes((np.sin(np.arange(16000) / 5) * 8000).astype(np.int16).tobytes())
    with pytest.raises(SourceError, match="no video stream"):
        VideoFileSource(audio).open()


# ---- images -------------------------------------------------------------------------------


def test_image_repeats_the_same_frame(tmp_path):
    bgr = np.zeros((21, 31, 3), np.uint8)
    bgr[:, :, 2] = 200  # red in OpenCV's BGR order
    path = tmp_path / "red.png"
    cv2.imwrite(str(path), bgr)
    with ImageSource(path, paced=False, seconds=0.1, fps=50) as source:
        assert (source.info.width, source.info.height, source.info.frame_count) == (31, 21, 5)
        frames = read_all(source)
    assert len(frames) == 5 and [f.index for f in frames] == list(range(5))
    assert all(f.image is frames[0].image for f in frames)  # shared, never copied
    assert tuple(frames[0].image[0, 0]) == (200, 0, 0)  # RGB
    assert not frames[0].image.flags.writeable


def test_png_with_alpha_and_grey_images(tmp_path):
    bgra = np.zeros((8, 8, 4), np.uint8)
    bgra[:, :, 1] = 200
    bgra[:, :4, 3] = 255  # left half opaque green, right half transparent
    cv2.imwrite(str(tmp_path / "alpha.png"), bgra)
    cv2.imwrite(str(tmp_path / "grey.png"), np.full((5, 6), 90, np.uint8))
    with ImageSource(tmp_path / "alpha.png", paced=False) as source:
        image = source.read().image
    assert image.shape == (8, 8, 3)
    assert tuple(image[0, 0]) == (0, 200, 0) and tuple(image[0, 7]) == (0, 0, 0)
    with ImageSource(tmp_path / "grey.png", paced=False) as source:
        assert tuple(source.read().image[2, 2]) == (90, 90, 90)


def test_portrait_image_opens():
    path = SHARED_DIR / "media" / "portrait_s0.jpg"
    if not path.is_file():
        pytest.skip(f"shared test media not found: {path}")
    with ImageSource(path, paced=False) as source:
        frame = source.read()
    assert frame.image.shape == (source.info.height, source.info.width, 3)


def test_paced_image_keeps_its_rate(tmp_path):
    path = tmp_path / "p.png"
    cv2.imwrite(str(path), np.zeros((4, 4, 3), np.uint8))
    with ImageSource(path, fps=50, seconds=0.5) as source:
        stamps = np.array([f.t_capture for f in read_all(source)])
    assert len(stamps) == 25
    assert np.median(np.diff(stamps)) == pytest.approx(0.020, abs=0.003)
    assert stamps[-1] - stamps[0] == pytest.approx(24 * 0.020, abs=0.02)


def test_close_from_another_thread_unblocks_image_read(tmp_path):
    path = tmp_path / "still.png"
    cv2.imwrite(str(path), np.zeros((4, 4, 3), np.uint8))
    source = ImageSource(path, fps=0.5)
    source.open()
    assert_close_unblocks_read(source)


@pytest.mark.parametrize("content", [None, b"", b"GIF89a broken", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40])
def test_bad_images_raise_source_error(tmp_path, content):
    path = tmp_path / "bad.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SourceError) as caught:
        ImageSource(path).open()
    assert str(path) in caught.value.message


# ---- pacer --------------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_pacer_skips_while_catching_up_then_slides_when_it_cannot():
    clock = FakeClock()
    pacer = FramePacer(fps=100, clock=clock)
    assert not pacer.should_skip(0.0)  # fixes the origin: frame 0 is due now
    assert pacer.wait(0.0) == 100.0
    clock.now += 0.5  # the consumer stalls for 50 frame periods
    # A fast producer (decoding takes no time here) skips stale frames until it is on time.
    skipped = 0
    t = 0.01
    while pacer.should_skip(t):
        skipped, t = skipped + 1, t + 0.01
    assert pacer.frames_skipped == skipped and 48 <= skipped <= 50
    # A producer slower than real time: each frame comes 20 ms later than the last, 10 ms apart
    # in media time. Skipping does not close the gap, so the timeline slides instead of
    # skipping every frame from here on.
    delivered = 0
    for _ in range(10):
        clock.now += 0.02
        t += 0.01
        delivered += not pacer.should_skip(t)
    assert delivered >= 5
    pacer.stop()
    assert pacer.wait(t + 10.0) is None  # stopped: returns at once instead of sleeping 10 s


# ---- cameras ------------------------------------------------------------------------------


def fake_sysfs(root: Path, devices: dict[int, tuple[str, int]]) -> Path:
    for number, (name, index) in devices.items():
        node = root / f"video{number}"
        node.mkdir(parents=True)
        (node / "name").write_text(name + "\n")
        (node / "index").write_text(f"{index}\n")
    return root


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="camera names come from Linux sysfs")


@linux_only
def test_list_cameras_reads_sysfs_and_skips_metadata_nodes(tmp_path, monkeypatch):
    root = fake_sysfs(tmp_path / "v4l", {0: ("Integrated Webcam", 0), 1: ("Integrated Webcam", 1), 4: ("Logi C920", 0)})
    monkeypatch.setattr(sources, "_V4L2_SYSFS", root)
    assert list_cameras() == [(0, "Integrated Webcam"), (4, "Logi C920")]


@linux_only
@pytest.mark.parametrize("device", [7, "7", "Nonexistent Cam"])
def test_unknown_camera_raises_source_error_listing_cameras(tmp_path, monkeypatch, device):
    root = fake_sysfs(tmp_path / "v4l", {0: ("Integrated Webcam", 0), 2: ("Logi C920", 0)})
    monkeypatch.setattr(sources, "_V4L2_SYSFS", root)
    with pytest.raises(SourceError) as caught:
        CameraSource(device).open()
    message = str(caught.value)
    assert "not found" in message
    assert "0: Integrated Webcam" in message and "2: Logi C920" in message


@linux_only
def test_camera_name_resolves_to_its_index(tmp_path, monkeypatch):
    root = fake_sysfs(tmp_path / "v4l", {0: ("Integrated Webcam", 0), 2: ("Logi C920 HD Pro", 0)})
    monkeypatch.setattr(sources, "_V4L2_SYSFS", root)
    assert CameraSource("logi c920")._resolve() == (2, "Logi C920 HD Pro")
    assert CameraSource("Integrated Webcam")._resolve() == (0, "Integrated Webcam")


def test_nonexistent_camera_index_on_this_machine_raises_source_error():
    index = max((i for i, _ in list_cameras()), default=-1) + 40
    with pytest.raises(SourceError) as caught:
        CameraSource(index).open()
    assert str(index) in caught.value.message
    camera = CameraSource(index)
    camera.close()  # closing a camera never opened is fine
    assert camera.read() is None
