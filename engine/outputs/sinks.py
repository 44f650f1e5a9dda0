"""Outputs for rendered frames: the virtual camera, a video file, a null sink, and a registry.

Every sink follows one lifecycle (see ``FrameSink``): ``open(width, height, fps)`` acquires the
output or raises ``SinkError``; ``write(frame)`` hands over one ``RenderedFrame`` (H x W x 3 uint8
RGB, the size given to ``open``) and never blocks for long; ``close()`` is idempotent. Sinks do not
pace themselves: the render loop calls ``write`` at the output rate. Sinks are context managers
(``with sink:`` closes on exit; open them explicitly, since they need the frame size).

Outputs are named in CLI specs (``virtualcam``, ``virtualcam:/dev/video10``, ``null``,
``file:out.mp4``) and built by ``open_sink(spec)``; new kinds plug in with ``register_sink``.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import av
import numpy as np
import pyvirtualcam

from engine.errors import SinkError
from engine.packets import RenderedFrame

log = logging.getLogger(__name__)


class FrameSink(Protocol):
    """The contract every output meets.

    ``open`` raises ``SinkError``. ``write`` takes an H x W x 3 uint8 RGB frame of the opened size,
    never blocks for long and raises ``SinkError`` when the output fails. ``close`` is idempotent.
    """

    name: str

    def open(self, width: int, height: int, fps: float) -> None: ...

    def write(self, frame: RenderedFrame) -> None: ...

    def close(self) -> None: ...


class _SinkBase(ABC):
    """Shared plumbing: context manager protocol and the frame check done once at the boundary."""

    name: str = "sink"
    _shape: tuple[int, int, int] | None = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @abstractmethod
    def open(self, width: int, height: int, fps: float) -> None: ...

    @abstractmethod
    def write(self, frame: RenderedFrame) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    def _checked(self, frame: RenderedFrame) -> np.ndarray:
        """The frame's image, after checking the sink is open and the image fits it."""
        if self._shape is None:
            raise SinkError(f"The {self.name} output is not open.", hint="Open it before writing.")
        image = frame.image
        if image.shape != self._shape or image.dtype != np.uint8:
            raise SinkError(
                f"The {self.name} output was opened for {self._shape[1]}x{self._shape[0]} RGB "
                f"frames but got an array of shape {image.shape} and type {image.dtype}.",
                hint="Render at the size the output was opened with.",
            )
        return image


# --------------------------------------------------------------------------------------------
# Virtual camera


def _driver_hint() -> str:
    """How to install the virtual camera driver on this OS."""
    if sys.platform.startswith("linux"):
        return (
            "Install the v4l2loopback driver: `sudo apt install v4l2loopback-dkms`, then load it: "
            '`sudo modprobe v4l2loopback devices=1 video_nr=10 card_label="avatarcam" '
            "exclusive_caps=1` (exclusive_caps=1 lets Chrome, Zoom and Teams see it)."
        )
    return (
        "Install OBS Studio (version 28 or later), start its Virtual Camera once "
        "(Start Virtual Camera, then stop it), then retry."
    )


class VirtualCameraSink(_SinkBase):
    """Frames to a virtual webcam through pyvirtualcam (v4l2loopback on Linux, OBS Virtual Camera
    on Windows and macOS) that Zoom, Teams, Meet or OBS can select.

    ``device`` picks a device (``/dev/video10``, ``OBS Virtual Camera``) and ``backend`` a
    pyvirtualcam backend; ``None`` takes the first that works. After ``open``, ``device`` holds the
    name apps see. When no virtual camera can be opened, ``open`` raises ``SinkError`` saying how to
    install the driver; pyvirtualcam's combined per-backend reasons stay in ``detail``. The sink
    does not pace itself. ``close`` is idempotent.
    """

    name = "virtual camera"

    def __init__(self, device: str | None = None, backend: str | None = None) -> None:
        self.device = device
        self.backend = backend
        self.detail = ""
        self._camera: pyvirtualcam.Camera | None = None

    def open(self, width: int, height: int, fps: float) -> None:
        """Open the virtual camera for ``width`` x ``height`` RGB at ``fps``. Raises ``SinkError``."""
        if self._camera is not None:
            return
        known = sorted(pyvirtualcam.camera.BACKENDS)
        if self.backend is not None and self.backend not in known:
            raise SinkError(
                f"Unknown virtual camera backend '{self.backend}'.",
                hint=f"Use one of: {', '.join(known) or 'none on this system'}.",
            )
        try:
            camera = pyvirtualcam.Camera(
                width,
                height,
                fps,
                fmt=pyvirtualcam.PixelFormat.RGB,
                device=self.device,
                backend=self.backend,
                print_fps=False,
            )
        except Exception as exc:  # pyvirtualcam raises RuntimeError, backends anything
            self.detail = str(exc) or "no virtual camera backend exists for this system"
            where = f" '{self.device}'" if self.device else ""
            raise SinkError(
                f"No virtual camera{where} could be opened ({self.detail.splitlines()[0]}).",
                hint=_driver_hint(),
            ) from exc
        self._camera = camera
        self.device = camera.device
        self._shape = (height, width, 3)
        log.info("virtual camera %s (%s) open at %dx%d@%g", self.device, camera.backend, width, height, fps)

    def write(self, frame: RenderedFrame) -> None:
        """Send one frame to the virtual camera. Raises ``SinkError`` if the device fails."""
        image = self._checked(frame)
        try:
            self._camera.send(image)  # type: ignore[union-attr]  # _checked ensures it is open
        except Exception as exc:
            raise SinkError(
                f"The virtual camera '{self.device}' stopped accepting frames ({exc}).",
                hint="Check that the virtual camera driver is still loaded, then start again.",
            ) from exc

    def close(self) -> None:
        """Close the virtual camera. Idempotent."""
        camera, self._camera, self._shape = self._camera, None, None
        if camera is not None:
            camera.close()


def virtual_camera_status() -> tuple[bool, str]:
    """Whether a virtual camera can be opened now, and a message for ``avatarcam doctor``.

    Opens a tiny camera and closes it at once. A device already used by a running avatarcam may
    report as unavailable.
    """
    sink = VirtualCameraSink()
    try:
        sink.open(64, 48, 30)
    except SinkError as exc:
        return False, str(exc)
    device = sink.device
    sink.close()
    return True, f"Virtual camera available: {device}."


# --------------------------------------------------------------------------------------------
# Video file


_STOP = object()  # queue sentinel: flush and end the encoder thread


class VideoFileSink(_SinkBase):
    """Frames to an MP4 file: H.264 (libx264 by default), yuv420p, constant frame rate.

    The file runs in real time: each written frame takes the output slot of its arrival time
    (``round((t - t_first) * fps)``, never earlier than the slot after the previous frame), and the
    slots a slow machine missed repeat the previous frame, so a 14 s session records 14 s even when
    only 20 of 30 frames a second were rendered (with audio alongside, nothing drifts). ``clock``
    is the time source (``time.monotonic``; tests pass their own). yuv420p needs even sizes: an odd
    width or height is padded by one pixel, repeating the last column or row.

    Encoding runs on one worker thread (FFmpeg releases the GIL while encoding). ``write`` converts
    the image into an FFmpeg frame (a copy, so the caller may reuse its buffer) and queues it; the
    queue holds 8 frames and ``write`` blocks while it is full: no frame is ever dropped from a
    file, so a machine too slow to encode in real time slows the caller down rather than losing
    frames. ``close`` flushes the encoder and finishes the file; it is idempotent. Errors (folder
    not writable, disk full) raise ``SinkError`` from ``open``, or from the ``write`` or ``close``
    after the worker met them.
    """

    name = "video file"
    QUEUE_FRAMES = 8

    def __init__(
        self, path: str | Path, *, codec: str = "libx264", crf: int = 20, preset: str = "veryfast",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.clock = clock
        self.frames_repeated = 0  # output slots filled with the previous frame
        self._fps = 30.0
        self._t_first: float | None = None
        self._previous: av.VideoFrame | None = None
        self.codec = codec
        self.crf = crf
        self.preset = preset
        self.frames_written = 0
        self._queue: queue.Queue[object] = queue.Queue(maxsize=self.QUEUE_FRAMES)
        self._worker: threading.Thread | None = None
        self._error: SinkError | None = None
        self._error_reported = False  # raised once, from write() or close(), not twice
        self._pad = (0, 0)
        self._lock = threading.Lock()  # makes close() safe from several threads
        self._queued = 0

    def _fail(self, what: str, exc: BaseException) -> SinkError:
        return SinkError(
            f"Cannot write video file '{self.path}': {what} ({exc}).",
            hint="Choose a folder you can write to, with free disk space.",
        )

    def open(self, width: int, height: int, fps: float) -> None:
        """Create the file and start the encoder. Raises ``SinkError``."""
        if self._worker is not None:
            return
        if not self.path.parent.is_dir():
            raise self._fail("the folder does not exist", FileNotFoundError(str(self.path.parent)))
        try:
            self.path.open("wb").close()  # FFmpeg only opens the file at the first frame: check now
            container = av.open(str(self.path), mode="w", format="mp4")
        except (av.FFmpegError, OSError) as exc:
            raise self._fail("cannot create the file", exc) from exc
        try:
            stream = container.add_stream(self.codec, rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height = width + width % 2, height + height % 2
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(self.crf), "preset": self.preset}
            stream.codec_context.open()  # surfaces bad codec options here, not in the worker
        except (av.FFmpegError, ValueError) as exc:
            container.close()
            self.path.unlink(missing_ok=True)
            raise self._fail(f"codec '{self.codec}' cannot be used", exc) from exc
        self._pad = (height % 2, width % 2)
        self._shape = (height, width, 3)
        self._error, self._error_reported = None, False
        self._queued = self.frames_written = self.frames_repeated = 0
        self._fps, self._t_first, self._previous = float(fps), None, None
        self._worker = threading.Thread(
            target=self._encode_loop, args=(container, stream), name="video-file-sink", daemon=True
        )
        self._worker.start()

    def _encode_loop(self, container: av.container.OutputContainer, stream: av.VideoStream) -> None:
        """Worker: encode queued frames in order, then flush and close the file. After a failure
        it keeps draining the queue (so ``write`` never blocks forever) and records the error."""
        for item in iter(self._queue.get, _STOP):
            self._step("writing failed", lambda item=item: self._encode(container, stream, item))
        self._step("finishing the file failed", lambda: container.mux(stream.encode(None)))
        try:
            container.close()
        except (av.FFmpegError, OSError) as exc:
            self._error = self._error or self._fail("finishing the file failed", exc)

    def _step(self, what: str, action: Callable[[], object]) -> None:
        """Run one encoder step unless an earlier one failed; remember the first failure."""
        if self._error is None:
            try:
                action()
            except (av.FFmpegError, OSError) as exc:
                self._error = self._fail(what, exc)

    def _encode(self, container: av.container.OutputContainer, stream: av.VideoStream,
                item: tuple[av.VideoFrame, int]) -> None:
        frame, frame.pts = item  # a repeated frame is queued again with its new slot
        container.mux(stream.encode(frame))
        self.frames_written += 1

    def write(self, frame: RenderedFrame) -> None:
        """Queue one frame for encoding; blocks only while 8 frames are already waiting."""
        image = self._checked(frame)
        if self._error is not None:
            self._error_reported = True
            raise self._error
        if any(self._pad):
            image = np.pad(image, ((0, self._pad[0]), (0, self._pad[1]), (0, 0)), mode="edge")
        video_frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        now = self.clock()
        if self._t_first is None:
            self._t_first = now
        slot = max(self._queued, round((now - self._t_first) * self._fps))
        if self._previous is not None:
            for missed in range(self._queued, slot):  # frames the output missed: hold the last image
                self._queue.put((self._previous, missed))
                self.frames_repeated += 1
        self._queue.put((video_frame, slot))
        self._previous, self._queued = video_frame, slot + 1

    def close(self) -> None:
        """Flush the encoder and finish the file. Idempotent, thread-safe. Raises ``SinkError``
        if writing failed and no ``write`` has reported it yet (the file is then incomplete)."""
        with self._lock:
            worker, self._worker, self._shape = self._worker, None, None
            if worker is None:
                return
            self._queue.put(_STOP)
            worker.join()
        if self._error is not None and not self._error_reported:
            self._error_reported = True
            raise self._error


# --------------------------------------------------------------------------------------------
# Null


class NullSink(_SinkBase):
    """Discards frames, counting them and keeping the last frame's shape (benchmarks, tests)."""

    name = "null"

    def __init__(self) -> None:
        self.frames = 0
        self.last_shape: tuple[int, ...] | None = None

    def open(self, width: int, height: int, fps: float) -> None:
        """Accept frames of ``width`` x ``height``. Never fails."""
        self._shape = (height, width, 3)

    def write(self, frame: RenderedFrame) -> None:
        """Count the frame."""
        self.last_shape = self._checked(frame).shape
        self.frames += 1

    def close(self) -> None:
        """Stop accepting frames. Idempotent."""
        self._shape = None


# --------------------------------------------------------------------------------------------
# Registry and CLI specs

SinkFactory = Callable[[str | None], FrameSink]
"""Builds a sink from the argument after ``name:`` in a spec (``None`` when there is none)."""

_SINKS: dict[str, SinkFactory] = {}


def register_sink(name: str, factory: SinkFactory) -> None:
    """Make ``name`` usable in output specs; a sink already registered under it is replaced."""
    _SINKS[name] = factory


def open_sink(spec: str) -> FrameSink:
    """Build the (unopened) sink a CLI spec names: ``NAME`` or ``NAME:ARGUMENT``.

    Built in: ``virtualcam``, ``virtualcam:DEVICE``, ``null``, ``file:PATH.mp4``.
    Raises ``SinkError`` for an unknown name or a missing or unexpected argument.
    """
    name, colon, argument = spec.partition(":")
    factory = _SINKS.get(name.strip().lower())
    if factory is None:
        raise SinkError(
            f"Unknown output '{spec}'.",
            hint=f"Use one of: {', '.join(sorted(_SINKS))} (e.g. file:out.mp4, virtualcam:/dev/video10).",
        )
    return factory(argument if colon else None)


def _file_sink(path: str | None) -> VideoFileSink:
    if not path:
        raise SinkError("The file output needs a path.", hint="Write it as file:PATH.mp4.")
    return VideoFileSink(os.path.expanduser(path))


def _null_sink(argument: str | None) -> NullSink:
    if argument is not None:
        raise SinkError(f"The null output takes no argument (got '{argument}').", hint="Write it as null.")
    return NullSink()


register_sink("virtualcam", lambda device: VirtualCameraSink(device=device or None))
register_sink("file", _file_sink)
register_sink("null", _null_sink)
