"""Outputs for rendered frames: the virtual camera, a video file, a null sink, and a registry.

Every sink follows one lifecycle (see ``FrameSink``): ``open(width, height, fps)`` acquires the
output or raises ``SinkError``; ``write(frame)`` hands over one ``RenderedFrame`` (H x W x 3 uint8
RGB, the size given to ``open``) and never blocks for long; ``close()`` is idempotent. Sinks do not
pace themselves: the render loop calls ``write`` at the output rate. Sinks are context managers
(``with sink:`` closes on exit; open them explicitly, since they need the frame size).

Outputs are named in CLI specs (``virtualcam``, ``virtualcam:/dev/video10``, ``null``,
``file:out.mp4``, ``rtmp://host/app/key``) and built by ``open_sink(spec)``; new kinds plug in with ``register_sink``.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import av
import cv2
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
AUDIO_CODEC = "aac"
AUDIO_BITRATE = 96_000
AUDIO_GAP_S = 0.02  # a hole or overlap in the sound's timestamps smaller than this is jitter, not a gap
AUDIO_PENDING_S = 5.0  # sound kept while the file's timeline is not anchored yet
PLACED_KEPT = 1000  # chunks whose file positions are remembered (10 s of 10 ms chunks)
# x264 for files: superfast at CRF 23 matches veryfast at CRF 20 in PSNR and SSIM on rendered avatar
# frames for ~30 % less encoding time, at about twice the (small) file size (docs/PERFORMANCE.md).
FILE_PRESET = "superfast"
FILE_CRF = 23
MAX_HOLD_S = 2.0  # a live frame is held over at most this many missed slots (a stall, not a gap)


# RGB -> Y'CbCr, BT.601 limited range (what FFmpeg's own conversion produced; the stream says so).
_CHROMA_FROM_RGB = np.array([[-37.797, -74.203, 112.0, 128 * 255.0], [112.0, -93.786, -18.214, 128 * 255.0]],
                            dtype=np.float32) / 255.0
_BT601 = 6  # AVColorSpace SMPTE170M
_LIMITED_RANGE = 1  # AVColorRange MPEG


def rgb_to_i420(image: np.ndarray) -> np.ndarray:
    """An H x W x 3 uint8 RGB image (H and W even) as I420 planes (Y, then Cb, then Cr) in one
    (H * 3 / 2) x W uint8 array: BT.601, limited range, each chroma sample the mean of its 2 x 2
    pixels. OpenCV does this in ~1 ms per 720p frame against ~4.5 ms for FFmpeg's conversion from
    rgb24 (most of the encoder's time at the fast presets), with chroma at least as exact."""
    height, width = image.shape[:2]
    planes = cv2.cvtColor(image, cv2.COLOR_RGB2YUV_I420)  # its luma is exact; its chroma is one pixel of four
    # The mean of the 2 x 2 pixels' chroma is the chroma of their mean colour (the matrix is linear).
    mean = cv2.resize(image, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
    chroma = cv2.transform(mean, _CHROMA_FROM_RGB)
    planes[height:].reshape(2, height // 2, width // 2)[:] = chroma.transpose(2, 0, 1)
    return planes


class AudioTimeline:
    """Places timestamped sound (monotonic capture times) on a file's sample timeline.

    ``origin`` is the capture time shown at file time 0. Chunks are laid end to end; a hole in their
    timestamps longer than ``AUDIO_GAP_S`` (a microphone that stalled) becomes silence and an
    overlap is cut, so the sound never drifts from the picture. Sound before ``origin`` is dropped.

    Within that tolerance the sound lies up to ``AUDIO_GAP_S`` from where its stamps say (their
    jitter, and a device clock that runs apart from the monotonic one until a hole or a cut catches
    up): ``position_of`` says where the sound captured at a given time really lies, so the picture
    that shows it goes there too.
    """

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.origin: float | None = None
        self.next = 0  # file position (samples) of the next sample
        self._pending: list[tuple[np.ndarray, float]] = []  # not placed yet (no origin)
        self._ready: list[tuple[int, np.ndarray]] = []  # placed, not flushed
        self._placed: deque[tuple[float, int]] = deque(maxlen=PLACED_KEPT)  # (capture time, position) per chunk

    def add(self, samples: np.ndarray, t_capture: float) -> None:
        """Place a chunk for the next ``flush`` (keep only the last few seconds until ``origin`` is set)."""
        self._pending.append((np.asarray(samples, dtype=np.float32).reshape(-1), t_capture))
        if self.origin is None:
            while self._pending and t_capture - self._pending[0][1] > AUDIO_PENDING_S:
                self._pending.pop(0)
        else:
            self._place()

    def flush(self) -> list[tuple[int, np.ndarray]]:
        """Blocks ``(file position, samples)`` ready to encode (none until ``origin`` is set)."""
        self._place()
        ready, self._ready = self._ready, []
        return ready

    def position_of(self, t_capture: float) -> float:
        """The file position (samples) of the sound captured at ``t_capture``: where it was laid,
        from the nearest chunk placed at or before that time (its stamp, without one yet)."""
        self._place()
        assert self.origin is not None
        anchor = next((placed for placed in reversed(self._placed) if placed[0] <= t_capture), None)
        if anchor is None:
            anchor = self._placed[0] if self._placed else (self.origin, 0)
        return anchor[1] + (t_capture - anchor[0]) * self.rate

    def _place(self) -> None:
        if self.origin is None:
            return
        pending, self._pending = self._pending, []
        tolerance = int(AUDIO_GAP_S * self.rate)
        for samples, t in pending:
            position = int(round((t - self.origin) * self.rate))
            if position > self.next + tolerance:  # a hole: fill it with silence
                self._ready.append((self.next, np.zeros(position - self.next, dtype=np.float32)))
                self.next = position
            elif position < self.next - tolerance:  # an overlap (or sound before time 0): cut it
                cut = self.next - position
                samples, t = samples[cut:], t + cut / self.rate
            if len(samples):
                self._placed.append((t, self.next))
                self._ready.append((self.next, samples))
                self.next += len(samples)


class _Encoder:
    """One H.264 (+ AAC) encoding into a PyAV container, on the sink's worker thread."""

    def __init__(self, container: av.container.OutputContainer, video: av.VideoStream,
                 audio: av.AudioStream | None, fps: float) -> None:
        self.container, self.video, self.audio, self.fps = container, video, audio, fps
        self._start: int | None = None  # the sink's slot shown at this container's time 0
        self._last: tuple[np.ndarray, av.VideoFrame] | None = None  # the image converted last

    def encode(self, image: np.ndarray | None, slot: int, sound: list[tuple[int, np.ndarray]]) -> None:
        """One RGB image in output slot ``slot`` and the sound that goes with it (``image`` None:
        the sound's tail at the end). A container opened mid-way (a stream that reconnected) starts
        at its own time 0. A held frame comes again (the same array) with a later slot: converted
        once, its pts set here."""
        if image is not None:
            if self._last is None or self._last[0] is not image:
                self._last = image, av.VideoFrame.from_ndarray(rgb_to_i420(image), format="yuv420p")
            frame = self._last[1]
            if self._start is None:
                self._start = slot
            frame.pts = slot - self._start
            self.container.mux(self.video.encode(frame))
        if self.audio is not None and self._start is not None:
            shift = int(round(self._start / self.fps * self.audio.rate))
            for position, samples in sound:
                if position < shift:
                    samples, position = samples[shift - position:], shift
                    if not len(samples):
                        continue
                position -= shift
                block = av.AudioFrame.from_ndarray(samples[np.newaxis, :], format="flt", layout="mono")
                block.sample_rate = self.audio.rate
                block.pts = position
                block.time_base = Fraction(1, self.audio.rate)
                self.container.mux(self.audio.encode(block))

    def finish(self) -> None:
        self.container.mux(self.video.encode(None))
        if self.audio is not None:
            self.container.mux(self.audio.encode(None))

    def close(self) -> None:
        self.container.close()


class VideoFileSink(_SinkBase):
    """Frames to an MP4 file: H.264 (libx264 by default), yuv420p, constant frame rate; with
    ``add_audio(rate)`` before ``open``, also the voice input's sound as AAC, in sync.

    The file runs in real time: each written frame takes the output slot of its arrival time
    (``round((t - t_first) * fps)``, never earlier than the slot after the previous frame), and the
    slots a slow machine missed repeat the previous frame (``frames_repeated``), so a 14 s session
    records 14 s even when only 20 of 30 frames a second were rendered. ``clock`` is the time source
    (``time.monotonic``; tests pass their own). yuv420p needs even sizes: an odd width or height is
    padded by one pixel, repeating the last column or row.

    Sound (``write_audio(samples, t_capture)``, any thread) is placed on the file's timeline by its
    capture time. Offline, ``set_audio_origin`` names the capture time of file time 0 (media time:
    0) and frames keep their positions (frame ``n`` at ``n / fps``). Live with sound, each frame
    takes the slot of the capture time of what it shows (``_live_slot``) instead of its arrival, on
    the same timeline as the sound, so the mouth and its sound play together whatever the delay
    from capture to output; missed slots hold the previous frame; of two frames for one slot the
    newer is written, and a frame for a slot already passed (its input stalled, so it shows nothing
    newer) is dropped; both count in ``frames_skipped``. Each frame is queued once the next one
    shows a later slot (or at ``close``): a live recording or stream runs one frame behind.

    Encoding runs on one worker thread (FFmpeg releases the GIL while encoding). ``write`` copies
    the image (so the caller may reuse its buffer) and queues it, and the worker converts it into the
    encoder's own layout (``rgb_to_i420``); the
    queue holds 8 frames and ``write`` blocks while it is full: no frame is ever dropped from a
    file, so a machine too slow to encode in real time slows the caller down rather than losing
    frames. ``close`` flushes the encoder and finishes the file; it is idempotent. Errors (folder
    not writable, disk full) raise ``SinkError`` from ``open``, or from the ``write`` or ``close``
    after the worker met them.
    """

    name = "video file"
    QUEUE_FRAMES = 8

    def __init__(
        self, path: str | Path, *, codec: str = "libx264", crf: int = FILE_CRF, preset: str = FILE_PRESET,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.codec = codec
        self.crf = crf
        self.preset = preset
        self.clock = clock
        self.frames_written = 0
        self.frames_repeated = 0  # output slots filled with the previous frame
        self.frames_skipped = 0  # live with sound: frames whose moment already had its slot
        self.audio_rate: int | None = None
        self._fps = 0.0
        self._timeline: AudioTimeline | None = None
        self._live = False  # with sound: frames placed by the capture time they show
        self._offline = False  # media time: frames placed by their position
        self._t_first: float | None = None
        self._previous: np.ndarray | None = None  # held over missed slots
        self._waiting: tuple[np.ndarray, int] | None = None  # live with sound: the newest frame and its slot
        self._audio_lock = threading.Lock()
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

    def add_audio(self, rate: int) -> None:
        """Give the file a sound track of mono audio at ``rate`` Hz. Call before ``open``."""
        self.audio_rate = int(rate)

    def set_audio_origin(self, t_capture: float) -> None:
        """The capture time of file time 0 (else the first frame with a voice time sets it)."""
        with self._audio_lock:
            if self._timeline is not None:
                self._timeline.origin = t_capture
                self._live, self._offline = False, True

    def _open_container(self) -> av.container.OutputContainer:
        if not self.path.parent.is_dir():
            raise self._fail("the folder does not exist", FileNotFoundError(str(self.path.parent)))
        try:
            self.path.open("wb").close()  # FFmpeg only opens the file at the first frame: check now
            return av.open(str(self.path), mode="w", format="mp4")
        except (av.FFmpegError, OSError) as exc:
            raise self._fail("cannot create the file", exc) from exc

    def _discard(self) -> None:
        self.path.unlink(missing_ok=True)

    def _start_encoder(self, width: int, height: int, fps: float) -> _Encoder:
        """Open the container and its streams. Raises ``SinkError``."""
        container = self._open_container()
        try:
            stream = container.add_stream(self.codec, rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height = width + width % 2, height + height % 2
            stream.pix_fmt = "yuv420p"
            stream.codec_context.colorspace, stream.codec_context.color_range = _BT601, _LIMITED_RANGE
            stream.options = {"crf": str(self.crf), "preset": self.preset, **self._codec_options()}
            stream.codec_context.open()  # surfaces bad codec options here, not in the worker
            audio = None
            if self.audio_rate:
                audio = container.add_stream(AUDIO_CODEC, rate=self.audio_rate)
                audio.layout = "mono"
                audio.bit_rate = AUDIO_BITRATE
        except (av.FFmpegError, ValueError) as exc:
            container.close()
            self._discard()
            raise self._fail(f"codec '{self.codec}' cannot be used", exc) from exc
        return _Encoder(container, stream, audio, fps)

    def _codec_options(self) -> dict[str, str]:
        return {}

    def open(self, width: int, height: int, fps: float) -> None:
        """Create the file and start the encoder. Raises ``SinkError``."""
        if self._worker is not None:
            return
        self._fps = fps
        encoder = self._start_encoder(width, height, fps)
        self._pad = (height % 2, width % 2)
        self._shape = (height, width, 3)
        self._error, self._error_reported = None, False
        self._queued = self.frames_written = self.frames_repeated = self.frames_skipped = 0
        self._t_first, self._previous, self._waiting = None, None, None
        with self._audio_lock:
            self._timeline = AudioTimeline(self.audio_rate) if self.audio_rate else None
            self._live, self._offline = self._timeline is not None, False
        self._format = (width, height, fps)
        self._worker = threading.Thread(target=self._encode_loop, args=(encoder,), name=f"{self.name}-sink", daemon=True)
        self._worker.start()

    def _encode_loop(self, encoder: _Encoder) -> None:
        """Worker: encode queued frames in order, then flush and close the file. After a failure
        it keeps draining the queue (so ``write`` never blocks forever) and records the error."""
        for item in iter(self._queue.get, _STOP):
            self._step("writing failed", lambda item=item: self._encode(encoder, *item))  # type: ignore[misc]
        self._step("finishing the file failed", encoder.finish)
        try:
            encoder.close()
        except (av.FFmpegError, OSError) as exc:
            self._error = self._error or self._fail("finishing the file failed", exc)

    def _step(self, what: str, action: Callable[[], object]) -> None:
        """Run one encoder step unless an earlier one failed; remember the first failure."""
        if self._error is None:
            try:
                action()
            except (av.FFmpegError, OSError) as exc:
                self._error = self._fail(what, exc)

    def _encode(self, encoder: _Encoder, frame: np.ndarray | None, slot: int,
                sound: list[tuple[int, np.ndarray]]) -> None:
        encoder.encode(frame, slot, sound)
        self.frames_written += frame is not None

    def write_audio(self, samples: np.ndarray, t_capture: float) -> None:
        """Sound from the voice input (mono at ``audio_rate``), its first sample captured at
        ``t_capture``; it goes into the file with the next frame. Thread-safe; ignored without
        ``add_audio`` or before ``open``."""
        with self._audio_lock:
            if self._timeline is not None:
                self._timeline.add(samples, t_capture)

    def _live_slot(self, frame: RenderedFrame) -> int:
        """Live: the file slot of the moment ``frame`` shows. That is the capture time of the sound
        its mouth shows while a voice drives the mouth, else of the face it shows; the first frame
        fixes file time 0 for picture and sound alike, so the delay from capture to output (and
        its jitter) never shifts one against the other. The slot is where that sound was laid in
        the file (``AudioTimeline.position_of``), not where its stamp says: the two differ by the
        stamps' jitter and the device clock's drift, up to ``AUDIO_GAP_S``. The slot is the one on
        screen while that sound plays (rounded down, not to the nearest): a frame shows a moment up
        to one render period after the sound that changed it began, and rounding to the nearest
        slot put a mouth that many ms + half a frame late, rounding down within one frame."""
        state = frame.state
        shown = state.t_voice if state is not None and state.t_voice > 0 else frame.t_capture
        with self._audio_lock:
            timeline = self._timeline
            if timeline is None:
                return self._queued
            if timeline.origin is None:
                timeline.origin = shown
            return math.floor(timeline.position_of(shown) / timeline.rate * self._fps)

    def _sound_for(self) -> list[tuple[int, np.ndarray]]:
        with self._audio_lock:
            timeline = self._timeline
            if timeline is None:
                return []
            return timeline.flush()

    def write(self, frame: RenderedFrame) -> None:
        """Queue one frame for encoding; blocks only while 8 frames are already waiting."""
        image = self._checked(frame)
        if self._error is not None:
            self._error_reported = True
            raise self._error
        # A copy (the caller may reuse its buffer); the encoder thread converts it, off the render thread.
        if any(self._pad):
            video_frame = np.pad(image, ((0, self._pad[0]), (0, self._pad[1]), (0, 0)), mode="edge")
        else:
            video_frame = image.copy()
        if self._live:  # with sound: the slot of the moment the frame shows
            slot, waiting = self._live_slot(frame), self._waiting
            if waiting is not None and slot <= waiting[1]:
                # Its slot is taken: by an older moment, it replaces that (the newest wins, so a
                # mouth that opened within the slot shows in it); by a newer one, placed later it would lag.
                self.frames_skipped += 1
                if slot == waiting[1]:
                    self._waiting = (video_frame, slot)
                return
            if waiting is not None:
                self._place(*waiting)
            self._waiting = (video_frame, slot)  # queued once a later slot's frame (or close) comes
            return
        slot = self._queued
        if not self._offline:  # no sound: the slot of its arrival, so the file runs in real time
            now = self.clock()
            if self._t_first is None:
                self._t_first = now
            slot = round((now - self._t_first) * self._fps)
        self._place(video_frame, slot)

    def _place(self, video_frame: np.ndarray, slot: int) -> None:
        """Queue ``video_frame`` in file slot ``slot`` (the next free one if that is past); the
        slots missed before it hold the previous frame."""
        held = 0 if self._previous is None else min(max(0, slot - self._queued), int(MAX_HOLD_S * self._fps))
        for picture in [self._previous] * held + [video_frame]:
            self._enqueue((picture, self._queued, self._sound_for()))
            self._queued += 1
        self.frames_repeated += held
        self._previous = video_frame

    def _enqueue(self, item: tuple[np.ndarray, int, list[tuple[int, np.ndarray]]]) -> None:
        self._queue.put(item)  # a file never loses a frame: a slow encoder slows the caller

    def close(self) -> None:
        """Flush the encoder and finish the file. Idempotent, thread-safe. Raises ``SinkError``
        if writing failed and no ``write`` has reported it yet (the file is then incomplete)."""
        with self._lock:
            worker, self._worker, self._shape = self._worker, None, None
            if worker is None:
                return
            if self._waiting is not None:
                self._place(*self._waiting)
                self._waiting = None
            with self._audio_lock:
                tail = self._timeline.flush() if self._timeline is not None else []
                self._timeline = None
            if tail:
                self._queue.put((None, self._queued, tail))
            self._queue.put(_STOP)
            worker.join()
        if self._error is not None and not self._error_reported:
            self._error_reported = True
            raise self._error


# --------------------------------------------------------------------------------------------
# Live stream (RTMP, RTSP)

STREAM_SCHEMES = {"rtmp": "flv", "rtmps": "flv", "rtsp": "rtsp"}
STREAM_TIMEOUT_S = 5.0  # connecting, and a write the server does not take
RECONNECT_FIRST_S = 1.0
RECONNECT_MAX_S = 15.0


def parse_stream_url(url: str) -> str:
    """``url`` checked: rtmp[s]://HOST[:PORT]/APP/KEY or rtsp://HOST[:PORT]/PATH. Raises ``SinkError``."""
    from urllib.parse import urlsplit

    hint = "Write it as rtmp://HOST[:PORT]/APP/STREAM-KEY (e.g. rtmp://127.0.0.1:1935/live/test) or rtsp://HOST[:PORT]/PATH."
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise SinkError(f"'{redact(url)}' is not a stream URL ({exc}).", hint=hint) from None
    if parts.scheme not in STREAM_SCHEMES or not parts.hostname:
        raise SinkError(f"'{redact(url)}' is not a stream URL.", hint=hint)
    path = [p for p in parts.path.split("/") if p]
    if len(path) < (2 if parts.scheme.startswith("rtmp") else 1):
        raise SinkError(f"'{redact(url)}' names no {'application and stream key' if parts.scheme.startswith('rtmp') else 'path'}.",
                        hint=hint)
    if port == 0:
        raise SinkError(f"'{redact(url)}' has port 0.", hint=hint)
    return url


def redact(url: str) -> str:
    """``url`` without its last path part (an RTMP stream key is a password) or user info."""
    head, slash, _ = url.rpartition("/")
    if "@" in head:
        scheme, _, rest = head.partition("://")
        head = f"{scheme}://{rest.split('@', 1)[1]}"
    return f"{head}/…" if slash and head.count("/") >= 3 else url


class StreamSink(VideoFileSink):
    """Frames (and the voice input's sound) to a live stream: H.264 + AAC over RTMP (FLV) or RTSP,
    for a streaming server or a meeting bot's ingest. ``url``: see ``parse_stream_url``.

    Like the file, but live: ``write`` never blocks (a frame the encoder has no room for is dropped
    and counted in ``frames_dropped``), H.264 is tuned for latency (no B-frames, a keyframe every
    2 s), and when the server goes away the sink reconnects on its own with back-off (1 s, doubling
    to 15 s), dropping frames meanwhile; ``status`` says which. Only the first connection's failure
    is an error (``open`` raises ``SinkError``). The stream key never appears in messages or logs.
    """

    name = "stream"
    QUEUE_FRAMES = 30

    def __init__(self, url: str, *, crf: int = 23, preset: str = "veryfast") -> None:
        super().__init__(url, crf=crf, preset=preset)
        self.url = parse_stream_url(url)
        self.frames_dropped = 0
        self.reconnects = 0
        self.status = "not started"

    def _fail(self, what: str, exc: BaseException) -> SinkError:
        return SinkError(f"Cannot stream to {redact(self.url)}: {what} ({exc}).",
                         hint="Check the URL and stream key, and that the server is running and reachable.")

    def _open_container(self) -> av.container.OutputContainer:
        scheme = self.url.split(":", 1)[0]
        options = {"rtsp_transport": "tcp"} if scheme == "rtsp" else {}
        try:
            return av.open(self.url, mode="w", format=STREAM_SCHEMES[scheme], options=options,
                           timeout=STREAM_TIMEOUT_S)
        except (av.FFmpegError, OSError) as exc:
            raise self._fail("cannot connect", exc) from exc

    def _discard(self) -> None:
        pass  # nothing was written anywhere

    def _start_encoder(self, width: int, height: int, fps: float) -> _Encoder:
        encoder = super()._start_encoder(width, height, fps)
        try:
            encoder.container.start_encoding()  # connects and sends the header: fail here, not later
        except (av.FFmpegError, OSError) as exc:
            _close_quietly(encoder)
            raise self._fail("cannot connect", exc) from exc
        return encoder

    def _codec_options(self) -> dict[str, str]:
        return {"tune": "zerolatency", "g": str(max(1, int(round(2 * self._fps))))}

    def open(self, width: int, height: int, fps: float) -> None:
        super().open(width, height, fps)
        self.status = "streaming"

    def _enqueue(self, item: tuple[np.ndarray, int, list[tuple[int, np.ndarray]]]) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.frames_dropped += 1  # live: late frames are worth nothing; never stall the renderer

    def _encode_loop(self, encoder: _Encoder) -> None:  # type: ignore[override]
        """Worker: encode while connected; when the server goes away, drop frames and reconnect
        with back-off; at the end flush and close whatever is connected."""
        current: _Encoder | None = encoder
        backoff, retry_at = RECONNECT_FIRST_S, 0.0
        for item in iter(self._queue.get, _STOP):
            if current is None:
                if time.monotonic() < retry_at:
                    continue
                try:
                    current = self._start_encoder(*self._format)
                except SinkError as exc:
                    retry_at, backoff = time.monotonic() + backoff, min(RECONNECT_MAX_S, backoff * 2)
                    self.status = f"server unreachable, retrying in {backoff / 2:.0f} s ({exc.message})"
                    continue
                backoff = RECONNECT_FIRST_S
                self.reconnects += 1
                self.status = "streaming (reconnected)"
                log.info("stream to %s reconnected", redact(self.url))
            try:
                self._encode(current, *item)  # type: ignore[misc]
            except (av.FFmpegError, OSError) as exc:
                self.status = f"server went away ({exc}), reconnecting"
                log.warning("stream to %s lost (%s); reconnecting", redact(self.url), exc)
                _close_quietly(current)
                current, retry_at = None, time.monotonic() + backoff
        if current is not None:
            try:
                current.finish()
            except (av.FFmpegError, OSError):
                pass  # the server went away at the end: nothing to save
            _close_quietly(current)
        self.status = "closed"


def _close_quietly(encoder: _Encoder) -> None:
    try:
        encoder.close()
    except (av.FFmpegError, OSError):
        pass


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

    Built in: ``virtualcam``, ``virtualcam:DEVICE``, ``null``, ``file:PATH.mp4``, and live streams
    ``rtmp://HOST/APP/KEY``, ``rtmps://...``, ``rtsp://HOST/PATH``.
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
for _scheme in STREAM_SCHEMES:
    register_sink(_scheme, lambda rest, scheme=_scheme: StreamSink(f"{scheme}:{rest or ''}"))
