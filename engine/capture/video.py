"""Video sources: a webcam, a video file or a still image, read one RGB ``VideoFrame`` at a time.

Every source follows one lifecycle (see ``VideoSource``): ``open()`` acquires the device or file and
fills ``info``; ``read()`` blocks until the next frame is due and returns it, or ``None`` at the end
of the stream or once closed; ``close()`` is idempotent, may be called from any thread while
``read()`` blocks, makes that ``read()`` return ``None`` promptly and releases the device. Sources
are context managers: ``with VideoFileSource(path) as source:`` opens and closes.

Files and images can stand in for a camera: *paced* they release frames on their own timeline like a
live device (``FramePacer``), dropping stale frames instead of building a backlog; *unpaced* they
deliver frames as fast as the consumer reads them (batch processing, benchmarks).
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from engine.capture.image_header import read_image_size
from engine.errors import SourceError
from engine.packets import VideoFrame
from engine.stages import SourceCaps

log = logging.getLogger(__name__)

# Linux lists video devices here; a module constant so tests can point it at a fake tree.
_V4L2_SYSFS = Path("/sys/class/video4linux")
# How long a camera may take to deliver its first frame before we call it busy.
_FIRST_FRAME_TIMEOUT_S = 5.0
MAX_IMAGE_PIXELS = 64_000_000  # an --image larger than 8000x8000 is refused before decoding
# Indices probed where the OS cannot list cameras by name.
_PROBE_INDICES = range(5)


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What an opened source delivers. ``frame_count`` is ``None`` when unknown or endless."""

    name: str
    width: int
    height: int
    fps: float
    live: bool  # a device that runs on its own clock (a camera), not a file or image
    frame_count: int | None


class FramePacer:
    """Releases frames stamped with media time on the monotonic clock, like a live device.

    The first frame asked about fixes the timeline's origin (it is due at once); a frame at media
    time ``t`` is due at ``origin + t``. ``wait(t)`` sleeps until then on an ``Event`` so ``stop()``
    (from any thread) interrupts it at once. ``should_skip(t)`` tells a producer to drop a frame
    that is more than one period late, as a camera drops frames nobody read in time; when skipping
    stops catching up (the producer itself is slower than real time) the timeline slides instead,
    so frames keep coming rather than all being skipped. Skipped frames are counted in
    ``frames_skipped``. One pacer serves one reading thread; only ``stop()`` is thread-safe.
    """

    def __init__(self, fps: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.period = 1.0 / fps
        self._clock = clock
        self.frames_skipped = 0
        self._stop = threading.Event()
        self._origin: float | None = None
        self._last_lateness = math.inf

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @property
    def origin(self) -> float | None:
        """The clock time of media time 0, fixed by the first frame (None before it)."""
        return self._origin

    def stop(self) -> None:
        """Interrupt a ``wait()`` in progress and make every later ``wait()`` return ``None``."""
        self._stop.set()

    def _lateness(self, t_media: float) -> float:
        now = self._clock()
        if self._origin is None:
            self._origin = now - t_media
        return now - (self._origin + t_media)

    def should_skip(self, t_media: float) -> bool:
        """True when the frame at ``t_media`` is stale and skipping it is catching up."""
        lateness = self._lateness(t_media)
        if lateness <= self.period:
            self._last_lateness = math.inf
            return False
        if lateness < self._last_lateness:
            self._last_lateness = lateness
            self.frames_skipped += 1
            return True
        # Skipping did not reduce the lag: the producer is slower than real time. Slide the
        # timeline so this frame is due now instead of skipping every frame from here on.
        self._origin += lateness  # type: ignore[operator]  # set by _lateness
        self._last_lateness = math.inf
        return False

    def wait(self, t_media: float) -> float | None:
        """Sleep until ``t_media`` is due (at once if late); return the release time, or ``None``
        if ``stop()`` was called before or during the wait."""
        delay = -self._lateness(t_media)
        if self._stop.wait(max(0.0, delay)):
            return None
        return self._clock()


class _SourceBase(ABC):
    """Context manager protocol shared by the sources (``engine.stages.Source``): ``with`` opens,
    and closes on exit."""

    caps = SourceCaps.VIDEO
    frames_skipped = 0
    info: SourceInfo

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @abstractmethod
    def open(self) -> None: ...

    @abstractmethod
    def read(self) -> VideoFrame | None: ...

    @abstractmethod
    def close(self) -> None: ...


class _PacedSource(_SourceBase):
    """What the file and image sources share: an optional pacer and an interruptible release."""

    def __init__(self) -> None:
        self._pacer: FramePacer | None = None
        self._closed = threading.Event()

    @property
    def frames_skipped(self) -> int:  # type: ignore[override]
        """Frames dropped because they were more than one period late (paced mode only)."""
        return self._pacer.frames_skipped if self._pacer else 0

    @property
    def media_origin(self) -> float | None:
        """The monotonic time of media time 0 (paced, once the first frame is out), else None:
        an audio track paced against it shares the picture's timeline."""
        return self._pacer.origin if self._pacer else None

    def _deliver(self, image: np.ndarray, t_media: float, index: int, capture_ms: float = 0.0) -> VideoFrame | None:
        """The frame, once due (paced) or at once; None if ``close()`` interrupted the wait.

        ``capture_ms`` is what producing the frame cost (decoding, conversion), kept in its timings.
        """
        t_capture = self._pacer.wait(t_media) if self._pacer else time.monotonic()
        if t_capture is None:
            return None
        return VideoFrame(image=image, t_capture=t_capture, index=index, timings={"capture": capture_ms})

    def _interrupt(self) -> None:
        """Mark closed and wake a ``read()`` waiting for its frame's time."""
        self._closed.set()
        if self._pacer:
            self._pacer.stop()


# --------------------------------------------------------------------------------------------
# Video files


class VideoFileSource(_PacedSource):
    """Frames of a video file, decoded by PyAV (FFmpeg, threaded decoding) and converted to RGB.

    ``paced=True`` releases each frame when its presentation time is due, counted from the first
    ``read()``, so the file behaves like a camera; ``t_capture`` is the release time. A consumer that
    falls behind by more than one frame does not get a backlog: stale frames are decoded and dropped
    (``frames_skipped``), and ``VideoFrame.index`` keeps the file's frame number, so gaps show.
    ``paced=False`` delivers frames as fast as they are read; ``t_capture`` is the decode time.
    ``loop=True`` starts again at the end, with the timeline and the index running on.

    ``open()`` decodes the first frame, so a corrupt file fails there with ``SourceError``.
    Odd widths and heights are delivered as they are.
    """

    def __init__(self, path: str | Path, *, paced: bool = True, loop: bool = False) -> None:
        super().__init__()
        self.path = Path(path)
        self.paced = paced
        self.loop = loop
        self.info = SourceInfo(self.path.name, 0, 0, 0.0, live=False, frame_count=None)
        self._lock = threading.Lock()  # guards the container against close() during decode
        self._container: av.container.InputContainer | None = None
        self._frames: Iterator[av.VideoFrame] | None = None
        self._pending: av.VideoFrame | None = None  # decoded by open(), delivered by first read()
        self._period = 1.0 / 30.0  # seconds per frame, from the stream's rate once open
        self._start_position()

    def _start_position(self) -> None:
        """Reset the decoding position to the start of the file (used by ``open``)."""
        self._t0: float | None = None  # media time of the first frame in the file
        self._loop_offset = 0.0  # media time added per completed loop
        self._last_t = 0.0  # media time of the last decoded frame, loop offset included
        self._index = -1  # file frame number of the last decoded frame, counting across loops
        self._loop_frames = 0  # frames decoded since the last (re)start

    def _error(self, what: str, exc: BaseException | None = None) -> SourceError:
        reason = f" ({exc})" if exc else ""
        return SourceError(
            f"Cannot read video file '{self.path}': {what}{reason}.",
            hint="Check the path, and use a video FFmpeg can decode (e.g. MP4 with H.264).",
        )

    def open(self) -> None:
        """Open the file, find its video stream and decode the first frame. Raises ``SourceError``."""
        if self._container is not None:
            return
        if not self.path.is_file():
            what = "it is a folder" if self.path.is_dir() else "no such file"
            raise self._error(what)
        try:
            container = av.open(str(self.path))
        except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
            raise self._error("not a video file, or it is damaged", exc) from exc
        if not container.streams.video:
            container.close()
            raise self._error("the file has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or Fraction(30)
        self._period = 1.0 / float(rate)
        self._container = container
        self._closed.clear()
        self._start_position()
        self._frames = self._decode()
        try:
            self._pending = self._next_frame()
        except SourceError:
            self._release()
            raise
        if self._pending is None:
            self._release()
            raise self._error("no video frame could be decoded")
        self.info = SourceInfo(
            name=self.path.name,
            width=self._pending.width,
            height=self._pending.height,
            fps=float(rate),
            live=False,
            frame_count=stream.frames or None,
        )
        self._pacer = FramePacer(self.info.fps) if self.paced else None

    def _decode(self) -> Iterator[av.VideoFrame]:
        assert self._container is not None
        return self._container.decode(self._container.streams.video[0])

    def _next_frame(self) -> av.VideoFrame | None:
        """Decode the next frame, restarting at the end when looping. Caller holds the lock."""
        try:
            frame = next(self._frames, None)  # type: ignore[arg-type]
            if frame is None and self.loop and self._loop_frames > 0:
                self._loop_offset = self._last_t + self._period
                self._loop_frames = 0
                self._container.seek(0)  # type: ignore[union-attr]
                self._frames = self._decode()
                frame = next(self._frames, None)
        except av.FFmpegError as exc:
            raise self._error("decoding failed", exc) from exc
        if frame is not None:
            t = frame.time if frame.time is not None else (self._index + 1) * self._period
            if self._t0 is None:
                self._t0 = t
            self._last_t = self._loop_offset + t - self._t0
            self._index += 1
            self._loop_frames += 1
        return frame

    def read(self) -> VideoFrame | None:
        """Return the next frame (blocking until it is due when paced), or ``None`` at the end or
        once closed. Raises ``SourceError`` if the file turns out damaged part-way."""
        start = time.perf_counter()
        with self._lock:
            if self._closed.is_set() or self._container is None:
                return None
            frame = self._pending if self._pending is not None else self._next_frame()
            self._pending = None
            while frame is not None and self._pacer and self._pacer.should_skip(self._last_t):
                if self._closed.is_set():
                    return None
                frame = self._next_frame()
            if frame is None:
                return None
            image = frame.to_ndarray(format="rgb24")
            t_media, index = self._last_t, self._index
        return self._deliver(image, t_media, index, (time.perf_counter() - start) * 1000.0)

    def close(self) -> None:
        """Stop a blocked ``read()`` at once and close the file. Idempotent, thread-safe."""
        self._interrupt()
        with self._lock:  # waits at most for one frame's decode
            self._release()

    def _release(self) -> None:
        self._pending = None
        self._frames = None
        if self._container is not None:
            self._container.close()
            self._container = None


# --------------------------------------------------------------------------------------------
# Still images


def _load_image_rgb(path: Path) -> np.ndarray | None:
    """Decode an image file to H x W x 3 uint8 RGB; ``None`` when it cannot be decoded.

    Reads the bytes with numpy so non-ASCII paths work on Windows. Grey images are expanded,
    16-bit images reduced to 8 bits, and an alpha channel is composited over black.
    """
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        return None
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        alpha = image[:, :, 3:4].astype(np.uint16)
        image = (image[:, :, :3] * alpha // 255).astype(np.uint8)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class ImageSource(_PacedSource):
    """A still image (JPEG, PNG with or without alpha, ...) delivered as a stream of frames at ``fps``.

    Every frame shares one read-only image array (never copied per frame). Paced, frames are due
    every ``1/fps`` seconds from the first ``read()``, with the same skip rule as a video file;
    unpaced they come as fast as they are read. ``seconds`` ends the stream after that long
    (``round(seconds * fps)`` frames); ``None`` streams until closed.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        fps: float = 30.0,
        paced: bool = True,
        seconds: float | None = None,
    ) -> None:
        super().__init__()
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.path = Path(path)
        self.fps = float(fps)
        self.paced = paced
        self.seconds = seconds
        self.info = SourceInfo(self.path.name, 0, 0, self.fps, live=False, frame_count=None)
        self._image: np.ndarray | None = None
        self._next_index = 0

    def open(self) -> None:
        """Decode the image. Raises ``SourceError`` if it is missing or cannot be decoded."""
        if self._image is not None:
            return
        hint = "Check the path, and use a JPEG or PNG image."
        if not self.path.is_file():
            raise SourceError(f"Cannot read image '{self.path}': no such file.", hint=hint)
        try:
            claimed = read_image_size(self.path)
            if claimed is not None and claimed[0] * claimed[1] > MAX_IMAGE_PIXELS:
                raise SourceError(f"Image '{self.path}' claims {claimed[0]}x{claimed[1]} pixels, more than this "
                                  f"program decodes ({MAX_IMAGE_PIXELS // 1_000_000} megapixels).",
                                  hint="Use a smaller image.")
            image = _load_image_rgb(self.path)
        except OSError as exc:
            raise SourceError(f"Cannot read image '{self.path}' ({exc}).", hint=hint) from exc
        if image is None:
            raise SourceError(
                f"Cannot read image '{self.path}': not an image, or it is damaged.", hint=hint
            )
        image.flags.writeable = False  # shared by every frame
        self._image = image
        self._closed.clear()
        self._next_index = 0
        count = None if self.seconds is None else max(1, round(self.seconds * self.fps))
        height, width = image.shape[:2]
        self.info = SourceInfo(self.path.name, width, height, self.fps, live=False, frame_count=count)
        self._pacer = FramePacer(self.fps) if self.paced else None

    def read(self) -> VideoFrame | None:
        """Return the next frame (blocking until due when paced), or ``None`` at the end or closed."""
        image, pacer = self._image, self._pacer
        if image is None or self._closed.is_set():
            return None
        index = self._next_index
        while pacer and pacer.should_skip(index / self.fps):
            index += 1
        count = self.info.frame_count
        if count is not None and index >= count:
            return None
        self._next_index = index + 1
        return self._deliver(image, index / self.fps, index)

    def close(self) -> None:
        """Stop a blocked ``read()`` at once and drop the image. Idempotent, thread-safe."""
        self._interrupt()
        self._image = None


# --------------------------------------------------------------------------------------------
# Cameras


def list_cameras() -> list[tuple[int, str]]:
    """The cameras present, as ``(index, name)`` pairs, sorted by index.

    Linux reads ``/sys/class/video4linux`` (no device is opened; metadata nodes are left out);
    other systems probe indices 0-4 with OpenCV and name them ``Camera N``.
    """
    if sys.platform.startswith("linux"):
        cameras = []
        for node in _V4L2_SYSFS.glob("video*"):
            number = node.name.removeprefix("video")
            if not number.isdigit():
                continue
            # A UVC camera also creates a metadata node; only index 0 of a device captures video.
            index_file = node / "index"
            if index_file.is_file() and index_file.read_text().strip() not in ("", "0"):
                continue
            name_file = node / "name"
            name = name_file.read_text().strip() if name_file.is_file() else node.name
            cameras.append((int(number), name))
        return sorted(cameras)
    found = []
    for index in _PROBE_INDICES:
        capture = cv2.VideoCapture(index, _capture_apis()[0])
        if capture.isOpened():
            found.append((index, f"Camera {index}"))
        capture.release()
    return found


def _capture_apis() -> list[int]:
    """OpenCV capture backends to try, in order, for this OS."""
    if sys.platform.startswith("linux"):
        return [cv2.CAP_V4L2]
    if sys.platform == "win32":
        return [cv2.CAP_DSHOW, cv2.CAP_MSMF]
    if sys.platform == "darwin":
        return [cv2.CAP_AVFOUNDATION]
    return [cv2.CAP_ANY]


def _describe_cameras(cameras: list[tuple[int, str]]) -> str:
    if not cameras:
        return "No camera was found on this computer."
    return "Cameras found: " + ", ".join(f"{index}: {name}" for index, name in cameras) + "."


class CameraSource(_SourceBase):
    """A webcam through OpenCV (V4L2 on Linux, DirectShow/Media Foundation on Windows,
    AVFoundation on macOS), delivering RGB frames with ``t_capture`` taken right after the grab.

    ``device`` is an index, a ``/dev/videoN`` path (Linux) or a camera name as listed by
    ``list_cameras()`` (names on Linux only). The camera is asked for ``size`` and ``fps`` (MJPG on
    Linux, which USB cameras need for 720p30); if it delivers another size, ``open()`` continues at
    the real size, puts it in ``info`` and explains in ``warning``. ``read()`` blocks until the
    camera's next frame; ``close()`` waits at most for the grab in progress (one frame period) and
    releases the camera.
    """

    caps = SourceCaps.VIDEO | SourceCaps.DEVICE

    def __init__(
        self, device: int | str = 0, size: tuple[int, int] = (1280, 720), fps: float = 30.0
    ) -> None:
        self.device = device
        self.size = size
        self.fps = float(fps)
        self.warning: str | None = None
        self.info = SourceInfo(str(device), 0, 0, self.fps, live=True, frame_count=None)
        self._lock = threading.Lock()  # guards the capture against close() during a grab
        self._capture: cv2.VideoCapture | None = None
        self._closed = threading.Event()
        self._pending: np.ndarray | None = None  # the BGR frame grabbed by open()
        self._index = 0
        self._identity: str | None = None  # the opened camera's name (Linux): how it is found again

    def _resolve(self) -> tuple[int | str, str]:
        """Map ``device`` to what OpenCV opens and a display name. Raises ``SourceError``."""
        device = self.device
        is_linux = sys.platform.startswith("linux")
        if self._identity is not None and is_linux:
            # Reopened after a loss: the same camera by name, whatever index it came back at.
            cameras = list_cameras()
            found = [i for i, name in cameras if name == self._identity]
            if not found:
                raise SourceError(f"Camera '{self._identity}' not found. {_describe_cameras(cameras)}",
                                  "Plug the camera in again.")
            return found[0], self._identity
        if isinstance(device, str) and device.strip().isdigit():
            device = int(device)
        if isinstance(device, str) and is_linux and device.startswith("/dev/video"):
            return device, device
        cameras = list_cameras() if is_linux else []
        names = dict(cameras)
        hint = "Pick one of the cameras listed, or plug the camera in."
        if isinstance(device, int):
            if is_linux and device not in names:
                raise SourceError(f"Camera {device} not found. {_describe_cameras(cameras)}", hint)
            return device, names.get(device, f"Camera {device}")
        if not is_linux:
            raise SourceError(
                f"Cannot select camera '{device}' by name on this system.",
                hint="Give the camera's index instead (0 is the first camera).",
            )
        wanted = device.casefold()
        matches = [i for i, name in cameras if name.casefold() == wanted] or [
            i for i, name in cameras if wanted in name.casefold()
        ]
        if not matches:
            raise SourceError(f"Camera '{device}' not found. {_describe_cameras(cameras)}", hint)
        return matches[0], names[matches[0]]

    def open(self) -> None:
        """Open the camera and wait for its first frame. Raises ``SourceError`` when the camera
        does not exist, cannot be opened, or is busy (opens but sends nothing in 5 s)."""
        if self._capture is not None:
            return
        target, name = self._resolve()
        capture = None
        for api in _capture_apis():
            capture = cv2.VideoCapture(target, api)
            if capture.isOpened():
                break
            capture.release()
            capture = None
        if capture is None:
            cameras = list_cameras() if sys.platform.startswith("linux") else []
            raise SourceError(
                f"Cannot open camera '{name}'. {_describe_cameras(cameras)}",
                hint="Close other apps that may be using it, or pick another camera.",
            )
        width, height = self.size
        if sys.platform.startswith("linux"):
            capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        capture.set(cv2.CAP_PROP_FPS, self.fps)
        first = _first_frame(capture, _FIRST_FRAME_TIMEOUT_S)
        if first is None:
            raise SourceError(
                f"Camera '{name}' opened but sent no picture within {_FIRST_FRAME_TIMEOUT_S:.0f} s.",
                hint="It is probably in use by another app (Zoom, Teams, a browser tab): close it and retry.",
            )
        real_h, real_w = first.shape[:2]
        if (real_w, real_h) != (width, height):
            self.warning = (
                f"Camera '{name}' does not support {width}x{height}; using {real_w}x{real_h}."
            )
            log.warning(self.warning)
        fps = capture.get(cv2.CAP_PROP_FPS) or self.fps
        self.info = SourceInfo(name, real_w, real_h, float(fps), live=True, frame_count=None)
        self._capture = capture
        self._pending = first
        if sys.platform.startswith("linux") and not str(target).startswith("/dev/video"):
            self._identity = name
        self._closed.clear()
        self._index = 0

    def read(self) -> VideoFrame | None:
        """Return the camera's next frame, or ``None`` once closed. Raises ``SourceError`` if the
        camera stops delivering (unplugged)."""
        with self._lock:
            if self._closed.is_set() or self._capture is None:
                return None
            if self._pending is not None:
                bgr, self._pending = self._pending, None
                t_capture = time.monotonic()
            else:
                grabbed = self._capture.grab()
                t_capture = time.monotonic()
                if self._closed.is_set():
                    return None
                ok, bgr = self._capture.retrieve() if grabbed else (False, None)
                if not ok:
                    raise SourceError(
                        f"Camera '{self.info.name}' stopped sending frames.",
                        hint="Check that it is still plugged in, then start again.",
                    )
        index, self._index = self._index, self._index + 1
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        # Decoding (MJPG) and conversion happen after the grab: part of the end-to-end latency.
        capture_ms = (time.monotonic() - t_capture) * 1000.0
        return VideoFrame(image=rgb, t_capture=t_capture, index=index, timings={"capture": capture_ms})

    def close(self) -> None:
        """Release the camera. Idempotent, thread-safe; waits at most for the grab in progress."""
        self._closed.set()
        with self._lock:
            self._pending = None
            if self._capture is not None:
                self._capture.release()
                self._capture = None


def _first_frame(capture: cv2.VideoCapture, timeout: float) -> np.ndarray | None:
    """Read one BGR frame with a deadline (a busy camera can block a read indefinitely).

    Returns the frame, and the caller keeps the capture; or ``None``, and then the capture is
    released, by the helper thread once its read returns if the deadline passed first.
    """
    lock = threading.Lock()
    done = threading.Event()
    state: dict[str, object] = {"frame": None, "abandoned": False}

    def grab() -> None:
        ok, frame = capture.read()
        with lock:
            state["frame"] = frame if ok else None
            done.set()
            release = state["abandoned"] or state["frame"] is None
        if release:
            capture.release()

    threading.Thread(target=grab, name="camera-first-frame", daemon=True).start()
    done.wait(timeout)
    with lock:
        if done.is_set():
            return state["frame"]  # type: ignore[return-value]
        state["abandoned"] = True
    return None


class NoVideoSource:
    """The video side of audio-only mode (no camera): delivers no frames, so the avatar runs on idle
    life and the voice. Ends when closed; the pipeline closes it when the audio ends
    (``SourceCaps.ENDS_WITH_VOICE``)."""

    caps = SourceCaps.ENDS_WITH_VOICE  # delivers nothing to track
    frames_skipped = 0

    def __init__(self) -> None:
        self._closed = threading.Event()

    def open(self) -> None:
        self._closed.clear()

    def read(self):
        self._closed.wait()
        return None

    def close(self) -> None:
        self._closed.set()
