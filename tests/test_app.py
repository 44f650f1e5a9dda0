"""The desktop app with real widgets: demo, consent, recording indicator, one-click stop, overlay,
avatar picker, settings. Devices are fakes (a camera-like face source, a fake virtual camera backend)."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
import pyvirtualcam
from conftest import needs_gl, shared_file
from fakes import FakeBackend, FakeCameraFaces
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QDialogButtonBox

from app.engine_bridge import EngineBridge
from app.main_window import MainWindow
from app.outputs import HoldingVirtualCamera, paused_card
from app.settings import CONSENT_KEYS, AppSettings
from engine.errors import SourceError
from engine.packets import FaceFrame
from engine.paths import DEFAULT_AVATAR
from engine.profiles import ProfileStore

SIZE = (320, 180)


class TimedCamera(FakeCameraFaces):
    """A fake camera that remembers when it was released."""

    def __init__(self) -> None:
        super().__init__(fps=30.0)
        self.released_at: float | None = None

    def close(self) -> None:
        if self.released_at is None:
            self.released_at = time.monotonic()
        super().close()


class BrokenCamera(FakeCameraFaces):
    """A camera that is busy (fails to open), or that drops out after ``frames`` frames."""

    def __init__(self, fail_open: bool, frames: int = 10) -> None:
        super().__init__()
        self.fail_open, self.frames = fail_open, frames

    def open(self) -> None:
        if self.fail_open:
            raise SourceError("Camera 0 is in use by another application.", "Close the other app, then Start again.")
        super().open()

    def read(self) -> FaceFrame | None:
        if self.index >= self.frames:
            raise SourceError("Camera 0 stopped delivering frames (unplugged?).", "Plug it in and press Start.")
        return super().read()


@pytest.fixture
def app_env(tmp_path, monkeypatch, backends, default_avatar_path):
    monkeypatch.setenv("AVATARCAM_CONFIG_DIR", str(tmp_path / "config"))
    pyvirtualcam.register_backend("fake", FakeBackend)
    return tmp_path


def make_window(qtbot, tmp_path, source=None, **consent) -> MainWindow:
    settings = AppSettings(first_run_done=True, size=SIZE, tray_icon=False)
    settings.consent.update(consent)
    settings.recording_folder = str(tmp_path / "videos")
    factory = (lambda spec: source) if source is not None else None
    bridge = EngineBridge(virtual_camera=HoldingVirtualCamera(backend="fake"),
                          **({"source_factory": factory} if factory else {}))
    window = MainWindow(settings, bridge=bridge, settings_path=tmp_path / "config" / "settings.json",
                        cameras=[(0, "Fake camera")], profiles=ProfileStore(tmp_path / "config" / "profiles"))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


def test_demo_button_starts_the_demo_and_the_preview_updates(qtbot, app_env):
    window = make_window(qtbot, app_env)
    qtbot.mouseClick(window.demo_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.preview.frames_shown >= 3, timeout=15_000)
    first = window.preview.frame
    qtbot.waitUntil(lambda: window.preview.frame is not first
                    and not np.array_equal(window.preview.frame.image, first.image), timeout=10_000)
    assert window.start_button.text() == "Stop"
    assert not window.indicator.is_on, "the demo opens no device"
    assert window.windowTitle() == "avatarcam"
    qtbot.waitUntil(lambda: "Virtual camera: on" in window.output_status.text(), timeout=5_000)
    assert FakeBackend.instances and FakeBackend.instances[-1].frames, "the demo reaches the virtual camera"
    window.close()


def test_camera_stays_off_until_consent(qtbot, app_env):
    camera = TimedCamera()
    window = make_window(qtbot, app_env, source=camera)
    assert window.source_kind == "camera"
    qtbot.mouseClick(window.start_button, Qt.MouseButton.LeftButton)
    assert window.banner.isVisible() and "switched off" in window.banner.text()
    assert window.bridge.session is None and camera.index == 0
    window.close()


def _stop_by_button(qtbot, window):
    qtbot.mouseClick(window.start_button, Qt.MouseButton.LeftButton)


def _stop_by_shortcut(qtbot, window):
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=2_000)
    QTest.keySequence(window, QKeySequence(window.settings.stop_shortcut))


def _stop_by_tray(qtbot, window):
    window.tray.stop_action.trigger()


def _stop_by_system_wide_hotkey(qtbot, window):
    # What the hotkey's thread emits when the combination is pressed in another app (tests of the
    # X11 grab itself: tests/test_global_hotkey.py).
    window.global_stop.triggered.emit()


@pytest.mark.parametrize("stop", [_stop_by_button, _stop_by_shortcut, _stop_by_tray, _stop_by_system_wide_hotkey],
                         ids=["button", "shortcut", "tray", "system-wide hotkey"])
def test_one_action_stops_everything_and_releases_the_camera_within_200_ms(qtbot, app_env, stop):
    camera = TimedCamera()
    window = make_window(qtbot, app_env, source=camera, camera=True)
    qtbot.mouseClick(window.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.indicator.is_on and window.preview.frames_shown >= 3, timeout=15_000)
    assert window.windowTitle().startswith("● REC")
    assert window.tray.recording
    vc = window.bridge.virtual_camera
    assert vc.available and not vc.paused

    pressed = time.monotonic()
    stop(qtbot, window)
    qtbot.waitUntil(lambda: camera.released_at is not None, timeout=2_000)
    assert camera.released_at - pressed <= 0.2, f"camera released after {camera.released_at - pressed:.3f} s"
    qtbot.waitUntil(lambda: not window.indicator.is_on, timeout=1_000)
    assert window.windowTitle() == "avatarcam" and not window.tray.recording
    qtbot.waitUntil(lambda: not window.bridge.running, timeout=5_000)
    assert window.start_button.text() == "Start"
    # The virtual camera stays open and shows the paused card.
    qtbot.waitUntil(lambda: vc.paused, timeout=5_000)
    backend = FakeBackend.instances[-1]
    assert backend.closed == 0
    card = backend.frames[-1].reshape(SIZE[1], SIZE[0], 3)
    live = next(f for f in reversed(backend.frames) if not np.array_equal(f, backend.frames[-1]))  # the card repeats
    live = live.reshape(SIZE[1], SIZE[0], 3)
    assert card.mean() < live.mean(), "the paused card is a dimmed frame"
    qtbot.waitUntil(lambda: "paused" in window.output_status.text().lower(), timeout=2_000)
    window.close()
    assert backend.closed == 1, "quitting closes the virtual camera"


def test_camera_that_fails_to_open_leaves_the_indicator_off(qtbot, app_env):
    window = make_window(qtbot, app_env, source=BrokenCamera(fail_open=True), camera=True)
    seen = []
    window.bridge.deviceChanged.connect(seen.append)
    with qtbot.waitSignal(window.bridge.failed, timeout=10_000) as failed:
        qtbot.mouseClick(window.start_button, Qt.MouseButton.LeftButton)
    assert "in use" in failed.args[0]
    qtbot.waitUntil(lambda: window.banner.isVisible() and "in use" in window.banner.text(), timeout=2_000)
    assert "Traceback" not in window.banner.text()
    assert seen == [] and not window.indicator.is_on and window.windowTitle() == "avatarcam"
    qtbot.waitUntil(lambda: window.start_button.text() == "Start", timeout=2_000)
    window.close()


def test_indicator_goes_off_when_the_camera_drops_out(qtbot, app_env):
    window = make_window(qtbot, app_env, source=BrokenCamera(fail_open=False, frames=15), camera=True)
    seen = []
    window.bridge.deviceChanged.connect(seen.append)
    qtbot.mouseClick(window.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: seen[:1] == [True], timeout=15_000)
    qtbot.waitUntil(lambda: seen == [True, False] and not window.indicator.is_on, timeout=10_000)
    qtbot.waitUntil(lambda: "stopped delivering" in window.banner.text(), timeout=5_000)
    assert window.windowTitle() == "avatarcam"
    window.close()


class LostCamera(BrokenCamera):
    """Drops out after ``frames`` frames and stays away (every later open fails)."""

    def open(self) -> None:
        if self.index:
            raise SourceError("Camera 0 not found.")
        super().open()


def test_a_lost_camera_is_shown_in_the_status_line_while_the_avatar_runs_on(qtbot, app_env):
    from engine.capture.reconnect import ReconnectingSource

    source = ReconnectingSource(LostCamera(fail_open=False, frames=15), retry_s=0.05)
    window = make_window(qtbot, app_env, source=source, camera=True)
    qtbot.mouseClick(window.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "camera lost, waiting" in window.output_status.text(), timeout=15_000)
    frames = window.bridge.stats().frames_out
    qtbot.waitUntil(lambda: window.bridge.stats().frames_out > frames + 10, timeout=5_000)
    assert window.bridge.running and not window.banner.isVisible()
    window.close()


def test_switching_the_camera_off_releases_it_at_once(qtbot, app_env):
    camera = TimedCamera()
    window = make_window(qtbot, app_env, source=camera, camera=True)
    qtbot.mouseClick(window.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.indicator.is_on, timeout=15_000)
    dialog = window.open_consent()
    box = dialog.toggles["camera"]
    assert box.isChecked()
    pressed = time.monotonic()
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=_checkbox_point(box))
    qtbot.waitUntil(lambda: camera.released_at is not None, timeout=2_000)
    assert camera.released_at - pressed <= 0.2
    qtbot.waitUntil(lambda: not window.indicator.is_on, timeout=1_000)
    saved = json.loads((app_env / "config" / "settings.json").read_text())
    assert saved["consent"]["camera"] is False
    dialog.close()
    window.close()


def _checkbox_point(box):
    from PySide6.QtCore import QPoint

    return QPoint(8, box.height() // 2)


def test_switching_recording_off_finishes_the_file_and_the_rest_runs_on(qtbot, app_env):
    window = make_window(qtbot, app_env, recording=True)
    qtbot.mouseClick(window.demo_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.preview.frames_shown >= 10, timeout=15_000)
    path = window.recording_path
    assert path is not None and path.parent == app_env / "videos"
    dialog = window.open_consent()
    qtbot.mouseClick(dialog.toggles["recording"], Qt.MouseButton.LeftButton, pos=_checkbox_point(dialog.toggles["recording"]))
    qtbot.waitUntil(lambda: window.bridge.recording is None, timeout=2_000)
    recording = next(s for s in window.bridge.session.sinks if s.name == "recording")
    qtbot.waitUntil(lambda: recording.closed, timeout=5_000)
    with av.open(str(path)) as container:  # a finished, playable file
        frames = sum(1 for _ in container.decode(video=0))
    assert frames >= 5
    shown = window.preview.frames_shown
    qtbot.waitUntil(lambda: window.preview.frames_shown > shown + 5, timeout=5_000)  # still running
    dialog.close()
    window.close()


def test_consent_starts_all_off_and_every_switch_is_kept(qtbot, app_env):
    window = make_window(qtbot, app_env)
    window.settings.consent = dict.fromkeys(CONSENT_KEYS, False)
    dialog = window.open_consent(first_run=True)
    assert set(dialog.toggles) == {"camera", "microphone", "emotion", "websocket", "speak", "vmc", "recording"}
    assert not any(box.isChecked() for box in dialog.toggles.values())
    texts = " ".join(label.text() for label in dialog.findChildren(type(window.output_status)))
    assert "nothing is sent" in texts and "on this computer" in texts
    for key in ("microphone", "emotion", "websocket", "vmc"):
        qtbot.mouseClick(dialog.toggles[key], Qt.MouseButton.LeftButton, pos=_checkbox_point(dialog.toggles[key]))
    dialog.accept()
    saved = AppSettings.load(app_env / "config" / "settings.json")
    assert saved.first_run_done
    assert [saved.allowed(k) for k in CONSENT_KEYS] == [False, True, True, True, False, True, False]
    window.close()


def test_avatar_that_fails_to_load_shows_a_message_and_keeps_the_previous(qtbot, app_env, default_avatar_path):
    window = make_window(qtbot, app_env)
    good = app_env / "mine.glb"
    good.write_bytes(default_avatar_path.read_bytes())
    with qtbot.waitSignal(window.bridge.avatarChecked, timeout=10_000):
        window.load_avatar(str(good))
    assert window.settings.avatar == str(good) and window.avatar_box.currentData() == str(good)
    assert window.avatar_rig.text() == "Face rig: perfect sync (ARKit 52)"  # the avatar row says how it is driven
    bad = app_env / "broken.vrm"
    bad.write_bytes(b"glTF\x02\x00\x00\x00garbage")
    with qtbot.waitSignal(window.bridge.avatarChecked, timeout=10_000):
        window.load_avatar(str(bad))
    assert window.banner.isVisible() and "could not be used" in window.banner.text()
    assert window.settings.avatar == str(good), "the previous avatar stays"
    assert window.avatar_box.currentData() == str(good)
    assert "ARKit" in window.avatar_rig.text()
    assert str(bad) not in window.settings.recent_avatars
    window.close()


def test_latency_overlay_on_the_preview_and_burned_into_the_output(qtbot, app_env):
    window = make_window(qtbot, app_env)
    qtbot.mouseClick(window.demo_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.preview.frames_shown >= 5, timeout=15_000)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=2_000)
    QTest.keySequence(window, QKeySequence("Ctrl+L"))
    assert window.overlay_box.isChecked()
    qtbot.waitUntil(lambda: bool(window.preview.overlay), timeout=3_000)
    text = "\n".join(window.preview.overlay)
    assert "fps" in text and "e2e p50" in text and "render" in text and "mode demo" in text and "emotion" in text
    assert window.bridge.virtual_camera.burn_in_lines == []
    qtbot.mouseClick(window.burn_in_box, Qt.MouseButton.LeftButton, pos=_checkbox_point(window.burn_in_box))
    qtbot.waitUntil(lambda: bool(window.bridge.virtual_camera.burn_in_lines), timeout=3_000)
    window.close()


def test_settings_dialog_diagnostics_models_and_shortcut(qtbot, app_env):
    window = make_window(qtbot, app_env)
    dialog = window.open_settings("virtual camera")
    assert dialog.tabs.tabText(dialog.tabs.currentIndex()) == "Virtual camera"
    assert "modprobe v4l2loopback" in dialog.vc_help.toPlainText()
    qtbot.waitUntil(lambda: "Checking" not in dialog.vc_status.text(), timeout=5_000)
    assert "face_landmarker" in [row.name for row in dialog.model_rows]
    dialog.shortcut_edit.setKeySequence(QKeySequence("Ctrl+Alt+X"))
    dialog.shortcut_edit.editingFinished.emit()
    assert window.stop_shortcut.key().toString() == "Ctrl+Alt+X"
    assert AppSettings.load(app_env / "config" / "settings.json").stop_shortcut == "Ctrl+Alt+X"
    dialog.close()
    window.close()


def test_driver_missing_links_to_the_instructions(qtbot, app_env):
    window = make_window(qtbot, app_env)
    window.bridge.virtual_camera = HoldingVirtualCamera(backend="none-such")
    qtbot.mouseClick(window.demo_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "driver missing" in window.output_status.text(), timeout=15_000)
    window._link("diagnostics")
    assert window._settings_dialog.tabs.currentIndex() == 1
    window._settings_dialog.close()
    window.close()


def test_paused_card_dims_the_last_frame():
    last = np.full((90, 160, 3), 200, np.uint8)
    card = paused_card(last, 160, 90)
    assert card.shape == last.shape and card.mean() < 120
    assert paused_card(None, 160, 90).shape == (90, 160, 3)


class SlowDownloads:
    """A model manager whose download crawls until cancelled."""

    def ensure(self, name, progress=None, cancel=None):
        from engine.errors import ModelError

        done = 0
        while not cancel.wait(0.01):
            done = min(done + 1000, 90_000)
            progress(done, 100_000)
        raise ModelError("Download of the face model was cancelled.", "Retry when ready.")


def test_model_manager_shows_progress_and_cancels(qtbot, app_env):
    from app.settings_dialog import ModelRow
    from engine.models import ModelStatus

    window = make_window(qtbot, app_env)
    dialog = window.open_settings("models")
    row = ModelRow(SlowDownloads(), ModelStatus("face_landmarker", False, None, 100_000, "Apache-2.0", "face"),
                   dialog.tabs.currentWidget().layout().itemAt(0).layout(), 5, dialog)
    assert row.download.isEnabled() and not row.cancel.isEnabled()
    qtbot.mouseClick(row.download, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: row.bar.value() > 0 and row.cancel.isEnabled(), timeout=5_000)
    qtbot.mouseClick(row.cancel, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: row.state.text() == "cancelled", timeout=5_000)
    assert row.download.isEnabled() and not row.cancel.isEnabled()
    dialog.close()
    window.close()


class FakeMicrophone:
    """A microphone-like audio source: ``read`` blocks until released; remembers when that was."""

    name = "fake microphone"
    status = "ok"

    def __init__(self) -> None:
        self.released = threading.Event()
        self.released_at: float | None = None
        self.opened = 0

    def open(self) -> None:
        self.opened += 1

    def read(self):
        self.released.wait()
        return None

    def close(self) -> None:
        if self.released_at is None:
            self.released_at = time.monotonic()
        self.released.set()


class StubAnalyzer:
    status = "stub"

    def close(self) -> None:
        pass


def mic_window(qtbot, tmp_path, microphone):

    window = make_window(qtbot, tmp_path, microphone=True)
    window.bridge.microphone_factory = lambda spec: microphone
    window.bridge.voice_analyzer_factory = StubAnalyzer
    return window


def test_microphone_lights_the_indicator_and_switching_it_off_releases_it(qtbot, app_env):
    microphone = FakeMicrophone()
    window = mic_window(qtbot, app_env, microphone)
    qtbot.mouseClick(window.demo_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.indicator.is_on, timeout=15_000)
    assert "microphone" in window.indicator.text.text() and window.windowTitle().startswith("● REC")
    dialog = window.open_consent()
    pressed = time.monotonic()
    qtbot.mouseClick(dialog.toggles["microphone"], Qt.MouseButton.LeftButton, pos=_checkbox_point(dialog.toggles["microphone"]))
    qtbot.waitUntil(lambda: microphone.released_at is not None, timeout=2_000)
    assert microphone.released_at - pressed <= 0.2
    qtbot.waitUntil(lambda: not window.indicator.is_on and window.windowTitle() == "avatarcam", timeout=1_000)
    shown = window.preview.frames_shown
    qtbot.waitUntil(lambda: window.preview.frames_shown > shown + 5, timeout=5_000)  # the avatar runs on
    dialog.close()
    window.close()


def test_stop_releases_the_microphone_too(qtbot, app_env):
    microphone = FakeMicrophone()
    window = mic_window(qtbot, app_env, microphone)
    qtbot.mouseClick(window.demo_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.indicator.is_on, timeout=15_000)
    pressed = time.monotonic()
    window.tray.stop_action.trigger()
    qtbot.waitUntil(lambda: microphone.released_at is not None, timeout=2_000)
    assert microphone.released_at - pressed <= 0.2
    qtbot.waitUntil(lambda: not window.indicator.is_on, timeout=1_000)
    window.close()


def test_dropping_an_avatar_file_loads_it(qtbot, app_env, default_avatar_path):
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    window = make_window(qtbot, app_env)
    dropped = app_env / "dropped.glb"
    dropped.write_bytes(default_avatar_path.read_bytes())
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(dropped))])
    event = QDropEvent(QPointF(200, 200), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.bridge.avatarChecked, timeout=10_000):
        window.dropEvent(event)
    assert window.settings.avatar == str(dropped)
    assert window.settings.recent_avatars[0] == str(dropped)
    assert window.avatar_box.currentText() == "dropped.glb"
    window.close()


def test_demo_is_the_default_without_a_camera_and_cameras_are_listed_off_the_ui_thread(qtbot, app_env, monkeypatch):
    import engine.capture.video

    listed = threading.Event()

    def slow_list():
        listed.wait(5)  # probing cameras can take seconds (Windows): the window is up meanwhile
        return [(2, "USB camera")]

    monkeypatch.setattr(engine.capture.video, "list_cameras", slow_list)
    settings = AppSettings(first_run_done=True, size=SIZE, tray_icon=False)
    window = MainWindow(settings, bridge=EngineBridge(virtual_camera=HoldingVirtualCamera(backend="fake")),
                        settings_path=app_env / "settings.json", profiles=ProfileStore(app_env / "profiles"))
    qtbot.addWidget(window)
    window.show()
    assert window.source_kind == "demo" and window.source_box.count() == 1
    listed.set()
    qtbot.waitUntil(lambda: window.source_box.count() == 2, timeout=5_000)
    assert window.source_box.currentData() == ("camera", 2), "a camera, once found, is the default"
    window.close()


def test_paused_card_shows_the_avatar_at_rest(backends):
    from engine.packets import AvatarFrame, RenderedFrame

    pyvirtualcam.register_backend("fake", FakeBackend)
    camera = HoldingVirtualCamera(backend="fake")
    camera.open(160, 90, 30)
    for i, (smile, level) in enumerate([(0.0, 60), (0.9, 200), (0.8, 220)]):  # rest first, then a big smile
        state = AvatarFrame(t_capture=i, sequence=i, controls={"mouthSmileLeft": smile})
        camera.write(RenderedFrame(image=np.full((90, 160, 3), level, np.uint8), t_capture=i, sequence=i,
                                   fresh=True, state=state))
    camera.close()
    card = FakeBackend.instances[-1].frames[-1].reshape(90, 160, 3)
    assert np.array_equal(card, paused_card(np.full((90, 160, 3), 60, np.uint8), 160, 90))
    assert camera.paused and FakeBackend.instances[-1].closed == 0
    camera.release()
    assert FakeBackend.instances[-1].closed == 1


def test_the_paused_card_thread_is_never_joined_before_it_has_started(backends, monkeypatch):
    """The pipeline stopping pauses the virtual camera (close: the card thread starts) while another
    thread starts the next run or quits the app (open/release: the card thread is stopped and
    joined). Here the other thread comes exactly while the card thread is being started: it must
    wait for it, never fail with "cannot join thread before it is started"."""
    pyvirtualcam.register_backend("fake", FakeBackend)
    camera = HoldingVirtualCamera(backend="fake")
    camera.open(160, 90, 30)
    real_thread = threading.Thread
    reached = threading.Event()  # the reopening thread got as far as it can while the card thread starts
    errors: list[BaseException] = []

    def reopen() -> None:
        try:
            camera.open(160, 90, 30)
        except BaseException as exc:
            errors.append(exc)
        finally:
            reached.set()

    reopener = real_thread(target=reopen, name="reopen", daemon=True)

    class ObservedLock:
        """The camera's lock, telling when the reopening thread comes to wait on it."""

        def __init__(self, lock) -> None:
            self.lock = lock

        def __enter__(self):
            if threading.current_thread() is reopener:
                reached.set()
            return self.lock.__enter__()

        def __exit__(self, *exc):
            return self.lock.__exit__(*exc)

    class CardThread(real_thread):
        def start(self) -> None:
            if self.name == "avatarcam-paused-card":
                reopener.start()
                assert reached.wait(5.0)
            super().start()

    camera._lock = ObservedLock(camera._lock)
    monkeypatch.setattr(threading, "Thread", CardThread)
    camera.close()
    reopener.join(5.0)
    assert not reopener.is_alive() and errors == []
    assert not camera.paused, "the new run took the camera back from the card"
    camera.release()


def test_gui_command_writes_a_screenshot_and_quits(tmp_path):
    import os
    import subprocess
    import sys

    from PySide6.QtGui import QImage

    shot = tmp_path / "shot.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "AVATARCAM_CONFIG_DIR": str(tmp_path / "config")}
    result = subprocess.run([sys.executable, "-m", "app.launcher", "gui", "--demo", "--size", "320x180",
                             "--screenshot", str(shot), "--quit-after", "4"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    image = QImage(str(shot))
    assert image.width() >= 800 and image.height() >= 400
    # The demo is on screen: the preview area is not one flat colour.
    colours = {image.pixelColor(x, y).name() for x in range(100, 700, 25) for y in range(100, 400, 25)}
    assert len(colours) > 10


def test_emotion_and_data_streams_follow_their_consent_switches(qtbot, app_env):
    window = make_window(qtbot, app_env, emotion=True, websocket=True, vmc=True)
    window.settings.websocket_port = 0  # any free port
    qtbot.mouseClick(window.demo_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.bridge.session is not None and window.bridge.session.stats().emotion is not None,
                    timeout=15_000)
    pipeline = window.bridge.session.pipeline
    websocket = pipeline.outputs.websocket
    assert websocket is not None and pipeline.outputs.vmc is not None
    window.expressiveness.setValue(30)  # the slider reaches the running emotion layer
    assert pipeline.emotion.expressiveness == pytest.approx(0.3)
    dialog = window.open_consent()
    for key in ("emotion", "websocket", "vmc"):
        qtbot.mouseClick(dialog.toggles[key], Qt.MouseButton.LeftButton, pos=_checkbox_point(dialog.toggles[key]))
    assert not pipeline.emotion.enabled and pipeline.emotion.latest is None
    assert pipeline.outputs.websocket is None and pipeline.outputs.vmc is None
    with pytest.raises(OSError):  # the WebSocket port is closed: nothing listens any more
        import socket
        socket.create_connection(("127.0.0.1", websocket.port), timeout=1).close()
    shown = window.preview.frames_shown
    qtbot.waitUntil(lambda: window.preview.frames_shown > shown + 5, timeout=5_000)  # the avatar runs on
    dialog.close()
    window.close()


def test_changing_avatar_and_background_while_running_never_closes_the_camera(qtbot, app_env):
    camera = TimedCamera()
    window = make_window(qtbot, app_env, source=camera, camera=True)
    qtbot.mouseClick(window.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.indicator.is_on and window.preview.frames_shown >= 3, timeout=15_000)
    session = window.bridge.session

    window.background_box.setCurrentIndex(window.background_box.findData("#000000"))
    qtbot.waitUntil(lambda: window.preview.frame is not None and not window.preview.frame.image[2, 2].any(),
                    timeout=5_000)  # the corner is the new black background
    vrm = str(DEFAULT_AVATAR.with_suffix(".vrm"))
    window.load_avatar(vrm)
    qtbot.waitUntil(lambda: window.settings.avatar == vrm, timeout=10_000)
    shown = window.preview.frames_shown
    qtbot.waitUntil(lambda: window.preview.frames_shown > shown + 5, timeout=5_000)

    assert camera.released_at is None, "the camera was never closed"
    assert window.bridge.session is session and window.indicator.is_on
    window.close()


def test_an_avatar_swap_logs_the_rig_line_once(qtbot, app_env, caplog):
    caplog.set_level(logging.INFO)
    window = make_window(qtbot, app_env)
    qtbot.mouseClick(window.demo_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.preview.frames_shown >= 3, timeout=15_000)
    session = window.bridge.session
    before = session.avatar_binding
    vrm = DEFAULT_AVATAR.with_suffix(".vrm")
    window.load_avatar(str(vrm))
    qtbot.waitUntil(lambda: session.avatar_binding is not before, timeout=10_000)  # on screen
    shown = window.preview.frames_shown
    qtbot.waitUntil(lambda: window.preview.frames_shown > shown + 3, timeout=5_000)
    lines = [r.getMessage() for r in caplog.records if "face rig" in r.getMessage()]
    assert [line for line in lines if vrm.name in line] == [f"avatar {vrm.name}: {session.avatar_binding.describe()}"]
    window.close()


def test_the_enhancement_setting_reaches_the_session_and_is_off_by_default(qtbot, app_env):
    window = make_window(qtbot, app_env)
    assert window.run_spec().enhance is None
    window.settings.enhance = "~/me.onnx"
    assert window.run_spec().enhance == Path("~/me.onnx").expanduser()
    window.settings.save(app_env / "settings.json")
    assert AppSettings.load(app_env / "settings.json").enhance == "~/me.onnx"


def test_the_speak_api_follows_its_consent_switch(qtbot, app_env):
    """Speak API on (with the WebSocket it runs on): another program can make the avatar speak; the
    switch turned off silences it at once and ignores later requests, while the stream goes on."""
    window = make_window(qtbot, app_env, websocket=True, speak=True)
    window.settings.websocket_port = 0  # any free port
    window.settings.speech_output = "none"  # no sound device here: lip-sync only
    qtbot.mouseClick(window.demo_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.bridge.session is not None and window.bridge.session.running, timeout=15_000)
    session = window.bridge.session
    assert session.spec.speak and session.speaking is not None
    assert session.pipeline.outputs.websocket.control is session.speaking
    assert any("Speak API on" in line for line in session.stream_endpoints())
    qtbot.waitUntil(lambda: session.stats().speech_state == "idle", timeout=5_000)
    dialog = window.open_consent()
    qtbot.mouseClick(dialog.toggles["speak"], Qt.MouseButton.LeftButton, pos=_checkbox_point(dialog.toggles["speak"]))
    assert session.speaking is None and session.stats().speech_state is None
    assert session.pipeline.outputs.websocket is not None, "the data stream stays"
    assert session.pipeline.outputs.websocket.control is None, "speak requests are ignored from now on"
    dialog.close()
    window.close()


def test_the_speak_api_needs_the_websocket_stream(qtbot, app_env):
    window = make_window(qtbot, app_env, speak=True)
    assert not window.run_spec().speak
    qtbot.mouseClick(window.demo_button, Qt.MouseButton.LeftButton)
    assert "speak API runs on the WebSocket stream" in window.banner.text()
    window.close()


@needs_gl
def test_avatar_picker_offers_the_gallery_and_makes_an_avatar_from_a_photo(qtbot, app_env, monkeypatch, face_model):
    from app.main_window import FROM_PHOTO
    from engine.avatar.looks import GALLERY

    data = app_env / "data"
    monkeypatch.setenv("AVATARCAM_DATA_DIR", str(data))
    window = make_window(qtbot, app_env)
    box = window.avatar_box
    titles = [box.itemText(i) for i in range(box.count())]
    assert [look.title for look in GALLERY] == titles[1:1 + len(GALLERY)]
    assert "Make an avatar from a photo…" in titles
    # a gallery look: built on first use, then worn
    box.setFocus()
    with qtbot.waitSignal(window.bridge.avatarChecked, timeout=60_000):
        qtbot.keyClick(box, Qt.Key.Key_Down)
    assert window.settings.avatar == f"look:{GALLERY[0].key}" and box.currentData() == window.settings.avatar
    assert (data / "gallery").is_dir() and window.settings.recent_avatars == []
    # from a photo: choose it, see the preview, accept
    photo = shared_file("media/portrait_s0.jpg")
    monkeypatch.setattr("app.main_window.QFileDialog.getOpenFileName", lambda *a, **k: (str(photo), ""))
    box.setCurrentIndex(box.findData(FROM_PHOTO) - 1)
    qtbot.keyClick(box, Qt.Key.Key_Down)
    dialog = window.photo_dialog
    assert box.currentData() == f"look:{GALLERY[0].key}", "the picker keeps the worn avatar meanwhile"
    qtbot.waitUntil(dialog.use_button.isEnabled, timeout=60_000)
    assert not dialog.preview.pixmap().isNull() and dialog.preview.pixmap().width() > 100
    assert "short hair" in dialog.status.text()
    made = list((data / "avatars").glob("*.glb"))
    assert len(made) == 1
    with qtbot.waitSignal(window.bridge.avatarChecked, timeout=30_000):
        qtbot.mouseClick(dialog.use_button, Qt.MouseButton.LeftButton)
    assert window.settings.avatar == str(made[0]) and box.currentData() == str(made[0])
    # a photo without a face: one clear line, nothing kept when cancelled
    wall = app_env / "wall.png"
    wall.write_bytes(_png(np.full((120, 160, 3), 180, np.uint8)))
    window.make_avatar_from_photo(str(wall))
    dialog = window.photo_dialog
    qtbot.waitUntil(lambda: "No face" in dialog.status.text(), timeout=30_000)
    assert "\n" not in dialog.status.text() and not dialog.use_button.isEnabled()
    dialog.reject()
    broken = app_env / "broken.jpg"  # not a picture at all
    broken.write_bytes(b"this is not a JPEG")
    window.make_avatar_from_photo(str(broken))
    dialog = window.photo_dialog
    qtbot.waitUntil(lambda: "broken.jpg" in dialog.status.text(), timeout=30_000)
    assert "\n" not in dialog.status.text() and not dialog.use_button.isEnabled()
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Cancel), Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()
    assert list((data / "avatars").glob("*.glb")) == made, "declined and failed avatars leave nothing behind"
    window.close()


def _png(image: np.ndarray) -> bytes:
    import cv2

    ok, data = cv2.imencode(".png", image)
    assert ok
    return data.tobytes()
