"""The app's handle on the engine: a QObject that runs the ``Pipeline`` without ever blocking the UI.

Slow work (model download, avatar check, opening the camera, starting the renderer) runs on one
worker thread, in order; ``stop()`` returns at once and releases the camera on a thread of its own,
so a click on Stop frees the device within a frame even while a start is still in progress.

Signals arrive on the UI thread (Qt queues them across threads):
- ``frameReady``: a new frame is waiting; ``take_frame()`` returns the newest (newest wins: at most
  one notification is pending, so a slow UI skips frames instead of queuing them);
- ``deviceChanged(bool)``: a capture device (camera or microphone) is open / all are released (the
  recording indicator's truth; ``open_devices`` says which);
- ``runningChanged(bool)``, ``failed(str)`` (a readable message, never a traceback),
  ``progress(str, int, int)`` (model download: label, done, total), ``avatarChecked(str, str)``
  (path, "" or the reason it cannot be used).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Signal

from engine.calibration import Calibration
from engine.errors import AvatarcamError
from engine.outputs.hub import DataOutputs
from engine.pipeline import Pipeline, PipelineOptions
from engine.types import FaceFrame, RenderedFrame, VideoFrame

from .outputs import HoldingVirtualCamera, SwitchableRecording

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunRequest:
    """What to run. ``source`` is "camera", "demo", "video" or "image" (``path`` for the last two)."""

    source: str = "demo"
    camera: int = 0
    path: Path | None = None
    options: PipelineOptions = field(default_factory=PipelineOptions)
    record_to: Path | None = None
    microphone: str | None = None  # None: no microphone (no consent); "" the default one, or a name
    websocket: str | None = None  # [HOST:]PORT of the WebSocket stream, None when not consented
    vmc: str | None = None  # HOST:PORT of the VMC stream, None when not consented

    @property
    def is_device(self) -> bool:
        """Whether the source is a capture device the user must be told about (the indicator)."""
        return self.source == "camera"


class ReportingDevice:
    """Wraps a device source (the microphone) so that opening and releasing it is reported, also
    when it ends or fails; everything else is passed through."""

    def __init__(self, inner, on_change: Callable[[bool], None]) -> None:
        self.inner = inner
        self._on_change = on_change
        self._lock = threading.Lock()
        self.is_open = False

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def _report(self, is_open: bool) -> None:
        with self._lock:
            if self.is_open == is_open:
                return
            self.is_open = is_open
        self._on_change(is_open)

    def open(self) -> None:
        self.inner.open()
        self._report(True)

    def read(self):
        try:
            item = self.inner.read()
        except BaseException:
            self.close()
            raise
        if item is None:
            self.close()
        return item

    def close(self) -> None:
        self.inner.close()
        self._report(False)


def _build_microphone(request: RunRequest):
    from engine.audio.sources import MicrophoneSource

    device = request.microphone
    return MicrophoneSource(int(device) if device and device.isdigit() else (device or None))


def _build_voice(request: RunRequest, microphone):
    from engine.audio.voice import VoiceStage

    return VoiceStage(microphone)


def _build_source(request: RunRequest):
    from engine.demo import DemoSource
    from engine.sources import CameraSource, ImageSource, VideoFileSource

    fps = request.options.fps
    if request.source == "camera":
        return CameraSource(request.camera, size=request.options.size, fps=fps)
    if request.source == "video":
        return VideoFileSource(request.path, paced=True, loop=True)
    if request.source == "image":
        return ImageSource(request.path, fps=fps)
    return DemoSource(fps=fps)


class EngineBridge(QObject):
    frameReady = Signal()
    deviceChanged = Signal(bool)
    devicesChanged = Signal()  # which devices are open changed, not whether any is
    runningChanged = Signal(bool)
    failed = Signal(str)
    progress = Signal(str, int, int)
    avatarChecked = Signal(str, str)

    def __init__(self, parent: QObject | None = None, *, virtual_camera: HoldingVirtualCamera | None = None,
                 source_factory: Callable[[RunRequest], object] = _build_source,
                 microphone_factory: Callable[[RunRequest], object] = _build_microphone,
                 voice_factory: Callable[[RunRequest, object], object] = _build_voice,
                 face_model: Callable[[Callable[[int, int], None], threading.Event], Path] | None = None) -> None:
        super().__init__(parent)
        self.virtual_camera = virtual_camera or HoldingVirtualCamera()
        self.source_factory = source_factory
        self.microphone_factory = microphone_factory
        self.voice_factory = voice_factory
        self.microphone: ReportingDevice | None = None
        self.open_devices: set[str] = set()
        self._face_model = face_model or _ensure_face_model
        self.pipeline: Pipeline | None = None
        self.request: RunRequest | None = None
        self.recording: SwitchableRecording | None = None
        self.calibration = Calibration()
        self.face_listeners: list[Callable[[FaceFrame], None]] = []
        self.latest_face: FaceFrame | None = None
        self.latest_video: VideoFrame | None = None  # newest camera picture, for the self-view
        self._frame_lock = threading.Lock()
        self._latest: RenderedFrame | None = None
        self._frame_pending = False
        self._cancel = threading.Event()
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._worker = threading.Thread(target=self._work, name="avatarcam-ui-worker", daemon=True)
        self._worker.start()
        self._stoppers: list[threading.Thread] = []
        self.device_open = False
        self.running = False

    # --- commands (UI thread) ------------------------------------------------------------------

    def start(self, request: RunRequest) -> None:
        """Stop what runs, then run ``request``. Returns at once; the outcome comes as signals."""
        self.stop()
        self._cancel = cancel = threading.Event()
        self._jobs.put(lambda: self._start(request, cancel))

    def stop(self) -> None:
        """Stop everything now: the camera is released within a frame, the virtual camera pauses."""
        self._cancel.set()
        self.running = False
        self.latest_face = None
        self.latest_video = None
        pipeline, self.pipeline = self.pipeline, None
        if pipeline is not None:
            stopper = threading.Thread(target=self._stop_pipeline, args=(pipeline,), name="avatarcam-stop", daemon=True)
            self._stoppers.append(stopper)
            stopper.start()
        else:
            self.runningChanged.emit(False)

    def stop_microphone(self) -> None:
        """Release the microphone now (consent withdrawn); the video keeps running."""
        microphone, self.microphone = self.microphone, None
        if microphone is not None:
            threading.Thread(target=microphone.close, daemon=True).start()

    def stop_recording(self) -> None:
        """Finish the recording file now (consent withdrawn); the rest keeps running."""
        recording, self.recording = self.recording, None
        if recording is not None:
            threading.Thread(target=recording.switch_off, daemon=True).start()

    def set_calibration(self, calibration: Calibration) -> None:
        self.calibration = calibration
        if self.pipeline is not None:
            self.pipeline.set_calibration(calibration)

    def check_avatar(self, path: str) -> None:
        """Load ``path`` off the UI thread; ``avatarChecked(path, reason)`` tells the result."""
        def check() -> None:
            from engine.avatar import load_avatar
            from engine.paths import DEFAULT_AVATAR

            try:
                load_avatar(DEFAULT_AVATAR if path in ("", "default") else Path(path))
                self.avatarChecked.emit(path, "")
            except AvatarcamError as exc:
                self.avatarChecked.emit(path, str(exc))
            except Exception as exc:  # noqa: BLE001 - a broken file must become a message
                log.exception("avatar check failed")
                self.avatarChecked.emit(path, f"{Path(path).name} could not be loaded ({exc}).")

        threading.Thread(target=check, name="avatarcam-avatar-check", daemon=True).start()

    def take_frame(self) -> RenderedFrame | None:
        with self._frame_lock:
            frame, self._latest, self._frame_pending = self._latest, None, False
        return frame

    def stats(self) -> dict:
        pipeline = self.pipeline
        return pipeline.stats() if pipeline is not None else {}

    def shutdown(self) -> None:
        """Stop, release the virtual camera and end the worker (the app quits)."""
        pipeline, self.pipeline = self.pipeline, None
        self._cancel.set()
        if pipeline is not None:
            pipeline.stop()
        if self.recording is not None:
            self.recording.close()
        self._jobs.put(None)
        self._worker.join(timeout=5.0)
        self.virtual_camera.release()

    # --- worker side ---------------------------------------------------------------------------

    def _work(self) -> None:
        for job in iter(self._jobs.get, None):
            try:
                job()
            except Exception:  # noqa: BLE001 - keep the worker alive whatever a job does
                log.exception("worker job failed")

    def _start(self, request: RunRequest, cancel: threading.Event) -> None:
        while self._stoppers:  # the previous run must have let go of the outputs first
            self._stoppers.pop(0).join()
        if cancel.is_set():
            return
        options = request.options
        try:
            source = self.source_factory(request)
            if not getattr(source, "delivers_faces", False) and options.face_model is None:
                self.progress.emit("face model", 0, 0)
                path = self._face_model(lambda done, total: self.progress.emit("face model", done, total), cancel)
                options = replace(options, face_model=path)
            if cancel.is_set():
                return
            sinks: list = [self.virtual_camera]
            recording = SwitchableRecording(request.record_to) if request.record_to else None
            if recording is not None:
                sinks.append(recording)
            is_device = request.is_device
            voice = None
            self.microphone = None
            if request.microphone is not None:
                microphone = ReportingDevice(self.microphone_factory(request),
                                             lambda is_open: self._on_device(is_open, "microphone"))
                voice = self.voice_factory(request, microphone)
                self.microphone = microphone
            self.latest_video = None
            outputs = DataOutputs.from_specs(request.websocket, request.vmc)
            pipeline = Pipeline(source, sinks, options, on_frame=self._on_frame, on_face=self._on_face,
                                on_video=self._on_video, outputs=outputs if outputs.active else None,
                                on_source=(lambda is_open: self._on_device(is_open)) if is_device else None,
                                **({"voice": voice} if voice is not None else {}))
            pipeline.set_calibration(self.calibration)
            self.pipeline, self.request, self.recording = pipeline, request, recording
            if cancel.is_set():
                self.pipeline = None
                return
            pipeline.start()
        except AvatarcamError as exc:
            if not cancel.is_set():
                self._failed(str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - never a traceback in the UI
            if not cancel.is_set():
                log.exception("start failed")
                self._failed(f"avatarcam could not start ({exc}).")
            return
        if cancel.is_set():  # Stop was pressed while starting
            pipeline.stop()
            return
        self.running = True
        self.runningChanged.emit(True)
        threading.Thread(target=self._watch, args=(pipeline,), name="avatarcam-watch", daemon=True).start()

    def _failed(self, message: str) -> None:
        pipeline, self.pipeline = self.pipeline, None
        if pipeline is not None:
            pipeline.stop()
        self._on_device(False)
        self._on_device(False, "microphone")
        self.failed.emit(message)
        self.running = False
        self.runningChanged.emit(False)

    def _watch(self, pipeline: Pipeline) -> None:
        """Tell the UI when the pipeline ends by itself (a device failed, a file ended)."""
        pipeline.wait()
        if self.pipeline is pipeline:
            self.pipeline = None
            pipeline.stop()
            if pipeline.error is not None:
                self.failed.emit(str(pipeline.error))
            self.running = False
            self.runningChanged.emit(False)

    def _stop_pipeline(self, pipeline: Pipeline) -> None:
        pipeline.stop()
        if self.pipeline is None:
            self.runningChanged.emit(False)

    # --- engine threads ------------------------------------------------------------------------

    def _on_device(self, is_open: bool, device: str = "camera") -> None:
        with self._frame_lock:
            (self.open_devices.add if is_open else self.open_devices.discard)(device)
            any_open = bool(self.open_devices)
            changed = any_open != self.device_open
            self.device_open = any_open
        if changed:
            self.deviceChanged.emit(any_open)
        else:
            self.devicesChanged.emit()

    def _on_frame(self, frame: RenderedFrame) -> None:
        with self._frame_lock:
            self._latest = frame
            if self._frame_pending:
                return
            self._frame_pending = True
        self.frameReady.emit()

    def _on_video(self, frame: VideoFrame) -> None:
        self.latest_video = frame

    def _on_face(self, face: FaceFrame) -> None:
        self.latest_face = face
        for listener in list(self.face_listeners):
            listener(face)


def _ensure_face_model(progress: Callable[[int, int], None], cancel: threading.Event) -> Path:
    from engine.models import ModelManager

    return ModelManager().ensure("face_landmarker", progress=progress, cancel=cancel)


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll ``predicate`` (no Qt); used by scripts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()
