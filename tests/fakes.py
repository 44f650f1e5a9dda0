"""Test doubles shared by several test modules."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
from pyvirtualcam.util import decode_fourcc

from engine.packets import FaceFrame
from engine.stages import SourceCaps


class FakeBackend:
    """A pyvirtualcam backend that records what it receives (see pyvirtualcam.camera.Backend)."""

    instances: list[FakeBackend] = []

    def __init__(self, *, width, height, fps, fourcc, device, **kw):
        self.width, self.height, self.fps = width, height, fps
        self.fmt = decode_fourcc(fourcc)
        self._device = device or "/dev/fake0"
        self.frames: list[np.ndarray] = []
        self.closed = 0
        FakeBackend.instances.append(self)

    def send(self, frame):
        self.frames.append(frame.copy())

    def close(self):
        self.closed += 1

    def device(self):
        return self._device

    def native_fourcc(self):
        return None


class FakeCameraFaces:
    """A camera-like face source: ``read`` blocks on the device until the next frame or ``close``.

    Records when ``close`` released the device, to check how fast a stop releases the camera.
    """

    caps = SourceCaps.FACES | SourceCaps.DEVICE
    frames_skipped = 0

    def __init__(self, fps: float = 30.0) -> None:
        self.period = 1.0 / fps
        self.released = threading.Event()
        self.index = 0

    def open(self) -> None:
        self.released.clear()

    def read(self) -> FaceFrame | None:
        import time

        if self.released.wait(self.period):  # the device's frame interval; close() interrupts it
            return None
        self.index += 1
        return FaceFrame(t_capture=time.monotonic(), index=self.index, present=True, confidence=1.0,
                         blendshapes={"jawOpen": 0.3})

    def close(self) -> None:
        self.released.set()


class JitteryCameraFaces:
    """A camera-like face source whose frame times wander up to +-``jitter_s`` around a steady
    ``fps`` (seeded), ``frames`` frames long, counted from the first ``read``; ``read`` blocks like a
    device until each is due."""

    caps = SourceCaps.FACES | SourceCaps.DEVICE
    frames_skipped = 0

    def __init__(self, fps: float = 30.0, jitter_s: float = 0.008, frames: int = 120, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.offsets = np.sort(np.arange(frames) / fps + rng.uniform(-jitter_s, jitter_s, frames))
        self.released = threading.Event()
        self.index = 0
        self._start: float | None = None

    def open(self) -> None:
        self.released.clear()

    def read(self) -> FaceFrame | None:
        import time

        if self.index >= len(self.offsets):
            return None
        if self._start is None:
            self._start = time.monotonic() - float(self.offsets[0])
        due = self._start + float(self.offsets[self.index])
        if self.released.wait(max(0.0, due - time.monotonic())):
            return None
        self.index += 1
        return FaceFrame(t_capture=time.monotonic(), index=self.index, present=True, confidence=1.0,
                         blendshapes={"jawOpen": 0.3 + 0.2 * (self.index % 2)})

    def close(self) -> None:
        self.released.set()


class StubCapture:
    """cv2.VideoCapture's stand-in: a 30 fps camera filming the shared portrait. Subclasses decide
    whether the device is there (``delivering``)."""

    def __init__(self, *_args) -> None:
        from conftest import shared_file

        self.frame = cv2.resize(cv2.imread(str(shared_file("media/portrait_s0.jpg"))), (640, 480))
        self.released = False
        self.next_due = time.monotonic()

    def delivering(self) -> bool:
        return not self.released

    def isOpened(self) -> bool:
        return self.delivering()

    def set(self, *_args) -> bool:
        return True

    def get(self, _prop) -> float:
        return 30.0

    def grab(self) -> bool:
        self.next_due += 1 / 30  # the sensor's frame interval
        time.sleep(max(0.0, self.next_due - time.monotonic()))
        return self.delivering()

    def retrieve(self):
        return True, self.frame.copy()

    def read(self):
        return self.grab(), self.frame.copy()

    def release(self) -> None:
        self.released = True
