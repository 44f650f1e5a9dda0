"""A camera that is unplugged and comes back: the output goes on with the idle avatar, the status
says "camera lost, waiting", and the camera is reopened by its name, not its old index."""

from __future__ import annotations

import threading
import time

import cv2
import pytest
from fakes import StubCapture

from engine.capture.reconnect import ReconnectingSource
from engine.errors import SourceError
from engine.session import SessionHooks, SessionSpec, SourceKind, build_session
from engine.stages import SourceCaps

SMALL = dict(size=(320, 180), fps=30.0, sinks=("null",))


def _wait_for(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)  # polling a condition with a deadline
    return condition()


class FlakySource:
    """Delivers ``frames`` items, then fails as an unplugged device does; its next ``failed_opens``
    opens fail, the one after that succeeds."""

    caps = SourceCaps.VIDEO | SourceCaps.DEVICE
    frames_skipped = 0

    def __init__(self, frames: int, failed_opens: int) -> None:
        self.frames, self.failed_opens = frames, failed_opens
        self.opens = 0
        self.open_now = False
        self.delivered = 0

    def open(self) -> None:
        self.opens += 1
        if 1 < self.opens <= 1 + self.failed_opens:
            raise SourceError("Camera 'Stub' not found.")
        self.open_now = True

    def read(self):
        time.sleep(0.005)
        if self.opens == 1 and self.delivered >= self.frames:
            raise SourceError("Camera 'Stub' stopped sending frames.")
        self.delivered += 1
        return self.delivered

    def close(self) -> None:
        self.open_now = False


def test_a_source_that_fails_is_released_waited_for_and_reopened():
    inner = FlakySource(frames=3, failed_opens=2)
    source = ReconnectingSource(inner, retry_s=0.02)
    source.open()
    items: list = []
    statuses: set = set()

    def read() -> None:
        while (item := source.read()) is not None:
            items.append(item)
            statuses.add(source.status)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        assert _wait_for(lambda: source.status == "camera lost, waiting" or source.reconnects)
        assert _wait_for(lambda: source.reconnects == 1 and len(items) > 6)
        assert inner.opens == 4, "two failed tries, then the device was back"
        assert source.status is None and items[:3] == [1, 2, 3]
    finally:
        source.close()
        reader.join(2.0)
    assert not reader.is_alive() and not inner.open_now, "close() ends the read and releases the device"


def test_close_while_waiting_for_a_lost_device_returns_at_once():
    inner = FlakySource(frames=0, failed_opens=10**6)
    source = ReconnectingSource(inner, retry_s=0.02)
    source.open()
    done = threading.Event()
    threading.Thread(target=lambda: (source.read(), done.set()), daemon=True).start()
    assert _wait_for(lambda: inner.opens > 2)
    source.close()
    assert done.wait(2.0) and not inner.open_now


class UnpluggableCapture(StubCapture):
    """A USB camera that can be unplugged: the portrait from whichever index the stub camera is at;
    once unplugged, grab() fails as V4L2 does."""

    plugged = True
    opened: list = []

    def __init__(self, target, *_args) -> None:
        super().__init__()
        UnpluggableCapture.opened.append(target)
        self.ok = UnpluggableCapture.plugged

    def delivering(self) -> bool:
        return self.ok and UnpluggableCapture.plugged and not self.released


@pytest.mark.skipif(not hasattr(cv2, "VideoCapture"), reason="no OpenCV capture")
def test_an_unplugged_camera_leaves_the_output_running_and_is_reopened_by_name(face_model, monkeypatch):
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("cameras are followed by name on Linux only")
    cameras = [(0, "Built-in"), (2, "USB Cam")]
    monkeypatch.setattr("engine.capture.video.cv2.VideoCapture", UnpluggableCapture)
    monkeypatch.setattr("engine.capture.video.list_cameras", lambda: list(cameras))
    monkeypatch.setattr("engine.capture.reconnect.RETRY_S", 0.05)
    UnpluggableCapture.plugged, UnpluggableCapture.opened = True, []
    frames = [0]
    spec = SessionSpec(source=SourceKind.CAMERA, camera="USB Cam", face_model=face_model, **SMALL)
    session = build_session(spec, SessionHooks(on_frame=lambda _f: frames.__setitem__(0, frames[0] + 1)))
    with session:
        assert _wait_for(lambda: session.stats().faces_found > 3), "the camera's face drives the avatar"
        assert UnpluggableCapture.opened == [2]
        # Unplugged: the real OpenCV path (grab fails), and the camera leaves the device list...
        cameras[:] = [(0, "Built-in")]
        UnpluggableCapture.plugged = False
        assert _wait_for(lambda: session.stats().source_status == "camera lost, waiting")
        before = frames[0]
        assert _wait_for(lambda: frames[0] > before + 15), "the output keeps running on the idle avatar"
        assert session.running and session.error is None
        assert UnpluggableCapture.opened == [2], "the built-in camera at index 0 is not taken instead"
        # ...and comes back at another index.
        faces = session.stats().faces_found
        cameras[:] = [(0, "Built-in"), (4, "USB Cam")]
        UnpluggableCapture.plugged = True
        assert _wait_for(lambda: session.stats().faces_found > faces + 3), "tracking resumed"
        assert UnpluggableCapture.opened[-1] == 4 and session.stats().source_status is None
    assert session.error is None
