"""The app's handle on the engine: a QObject that runs a ``Session`` without ever blocking the UI.

Slow work (model download, avatar check, opening the camera, starting the renderer) runs on one
worker thread, in order; ``stop()`` returns at once and releases the camera on a thread of its own,
so a click on Stop frees the device within a frame even while a start is still in progress.

Signals arrive on the UI thread (Qt queues them across threads):
- ``frameReady``: a new frame is waiting; ``take_frame()`` returns the newest (newest wins: at most
  one notification is pending, so a slow UI skips frames instead of queuing them);
- ``deviceChanged(bool)``: a capture device (camera or microphone) is open / all are released (the
  recording indicator's truth; ``open_devices`` says which);
- ``runningChanged(bool)``, ``failed(str)`` (a readable message, never a traceback),
  ``progress(str, int, int)`` (model download: label, done, total), ``avatarChecked(str, str, str)``
  (path, "" or the reason it cannot be used, how its face is driven: rig and limits).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from engine.calibration import Calibration
from engine.errors import AvatarcamError
from engine.packets import FaceFrame, RenderedFrame, VideoFrame
from engine.perception.voice.voice import VoiceAnalyzer
from engine.runtime.stats import Stats
from engine.session import Device, Session, SessionHooks, SessionSpec, build_session
from engine.stages import Source

from .outputs import HoldingVirtualCamera, SwitchableRecording

log = logging.getLogger(__name__)


def _default_source(spec: SessionSpec) -> None:
    """No replacement: the session builds the source its spec names."""
    return None


def _default_microphone(spec: SessionSpec) -> None:
    return None


class EngineBridge(QObject):
    frameReady = Signal()
    deviceChanged = Signal(bool)
    devicesChanged = Signal()  # which devices are open changed, not whether any is
    runningChanged = Signal(bool)
    failed = Signal(str)
    progress = Signal(str, int, int)
    avatarChecked = Signal(str, str, str)

    def __init__(self, parent: QObject | None = None, *, virtual_camera: HoldingVirtualCamera | None = None,
                 source_factory: Callable[[SessionSpec], Source | None] = _default_source,
                 microphone_factory: Callable[[SessionSpec], object | None] = _default_microphone,
                 voice_analyzer_factory: Callable[[], VoiceAnalyzer | None] = lambda: None) -> None:
        super().__init__(parent)
        self.virtual_camera = virtual_camera or HoldingVirtualCamera()
        # Replacements for the spec's own source / microphone (tests, embeddings); None: the spec's.
        self.source_factory = source_factory
        self.microphone_factory = microphone_factory
        self.voice_analyzer_factory = voice_analyzer_factory
        self.open_devices: set[str] = set()
        self.session: Session | None = None
        self.spec: SessionSpec | None = None
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

    def start(self, spec: SessionSpec, record_to: Path | None = None) -> None:
        """Stop what runs, then run ``spec`` into the virtual camera (and a recording to
        ``record_to``). Returns at once; the outcome comes as signals."""
        self.stop()
        self._cancel = cancel = threading.Event()
        self._jobs.put(lambda: self._start(spec, record_to, cancel))

    def stop(self) -> None:
        """Stop everything now: the camera is released within a frame, the virtual camera pauses."""
        self._cancel.set()
        self.running = False
        self.latest_face = None
        self.latest_video = None
        session, self.session = self.session, None
        if session is not None:
            stopper = threading.Thread(target=self._stop_session, args=(session,), name="avatarcam-stop", daemon=True)
            self._stoppers.append(stopper)
            stopper.start()
        else:
            self.runningChanged.emit(False)

    def stop_microphone(self) -> None:
        """Release the microphone now (consent withdrawn); the video keeps running."""
        session = self.session
        if session is not None:
            threading.Thread(target=session.stop_microphone, daemon=True).start()

    def stop_recording(self) -> None:
        """Finish the recording file now (consent withdrawn); the rest keeps running."""
        recording, self.recording = self.recording, None
        if recording is not None:
            threading.Thread(target=recording.switch_off, daemon=True).start()

    def set_calibration(self, calibration: Calibration) -> None:
        self.calibration = calibration
        if self.session is not None:
            self.session.set_calibration(calibration)

    def check_avatar(self, path: str) -> None:
        """Load ``path`` off the UI thread; ``avatarChecked(path, reason, rig)`` tells the result."""
        def check() -> None:
            from engine.avatar import load_avatar
            from engine.avatar.looks import resolve
            from engine.avatar.retarget import AvatarBinding
            from engine.paths import DEFAULT_AVATAR

            try:  # a gallery look is built here on first use (seconds), off the UI thread
                file = DEFAULT_AVATAR if path in ("", "default") else resolve(path) or Path(path)
                avatar = load_avatar(file)
                self.avatarChecked.emit(path, "", AvatarBinding(avatar).describe())
            except AvatarcamError as exc:
                self.avatarChecked.emit(path, str(exc), "")
            except Exception as exc:
                log.exception("avatar check failed")
                self.avatarChecked.emit(path, f"{Path(path).name} could not be loaded ({exc}).", "")

        threading.Thread(target=check, name="avatarcam-avatar-check", daemon=True).start()

    def take_frame(self) -> RenderedFrame | None:
        with self._frame_lock:
            frame, self._latest, self._frame_pending = self._latest, None, False
        return frame

    def stats(self) -> Stats | None:
        session = self.session
        return session.stats() if session is not None else None

    def change_look(self, avatar: Path | None = None, background: tuple[float, float, float] | None = None) -> None:
        """Show another avatar and/or background in the running session without reopening the
        camera (the avatar loads on the worker thread); ``failed`` tells if the avatar cannot load."""
        session = self.session
        if session is None:
            return

        def change() -> None:
            try:
                if avatar is not None:
                    session.set_avatar(avatar)
                if background is not None:
                    session.set_background(background)
            except AvatarcamError as exc:
                self.failed.emit(str(exc))

        self._jobs.put(change)

    def shutdown(self) -> None:
        """Stop, release the virtual camera and end the worker (the app quits)."""
        session, self.session = self.session, None
        self._cancel.set()
        if session is not None:
            session.stop()
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
            except Exception:
                log.exception("worker job failed")

    def _start(self, spec: SessionSpec, record_to: Path | None, cancel: threading.Event) -> None:
        while self._stoppers:  # the previous run must have let go of the outputs first
            self._stoppers.pop(0).join()
        if cancel.is_set():
            return
        try:
            recording = SwitchableRecording(record_to) if record_to else None
            sinks = (self.virtual_camera, recording) if recording is not None else (self.virtual_camera,)
            spec = replace(spec, sinks=sinks, calibration=self.calibration)
            hooks = SessionHooks(on_frame=self._on_frame, on_face=self._on_face, on_video=self._on_video,
                                 on_device=self._on_device, cancel=cancel,
                                 on_progress=lambda label, done, total: self.progress.emit(label, done, total))
            self.latest_video = None
            session = build_session(spec, hooks, source=self.source_factory(spec),
                                    microphone=self.microphone_factory(spec) if spec.microphone is not None else None,
                                    voice_analyzer=self.voice_analyzer_factory())
            self.session, self.spec, self.recording = session, spec, recording
            if cancel.is_set():
                self.session = None
                return
            session.start()
        except AvatarcamError as exc:
            if not cancel.is_set():
                self._failed(str(exc))
            return
        except Exception as exc:
            if not cancel.is_set():
                log.exception("start failed")
                self._failed(f"avatarcam could not start ({exc}).")
            return
        if cancel.is_set():  # Stop was pressed while starting
            session.stop()
            return
        self.running = True
        self.runningChanged.emit(True)
        threading.Thread(target=self._watch, args=(session,), name="avatarcam-watch", daemon=True).start()

    def _failed(self, message: str) -> None:
        session, self.session = self.session, None
        if session is not None:
            session.stop()
        self._on_device(Device.CAMERA, False)
        self._on_device(Device.MICROPHONE, False)
        self.failed.emit(message)
        self.running = False
        self.runningChanged.emit(False)

    def _watch(self, session: Session) -> None:
        """Tell the UI when the session ends by itself (a device failed, a file ended)."""
        session.wait()
        if self.session is session:
            self.session = None
            session.stop()
            if session.error is not None:
                self.failed.emit(str(session.error))
            self.running = False
            self.runningChanged.emit(False)

    def _stop_session(self, session: Session) -> None:
        session.stop()
        if self.session is None:
            self.runningChanged.emit(False)

    # --- engine threads ------------------------------------------------------------------------

    def _on_device(self, device: Device, is_open: bool) -> None:
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


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll ``predicate`` (no Qt); used by scripts."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()
