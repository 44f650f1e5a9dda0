"""The main window: live preview, Start/Stop, output status, avatar, background, expressiveness,
calibration profile, latency overlay, and the way to the privacy switches and settings.

The preview paints the newest frame the engine rendered (``EngineBridge.frameReady``; a frame that
arrives while one is pending replaces it). The recording indicator, the "● REC" title and the tray
icon follow ``deviceChanged``: the camera's real state, not the Start button's.
"""

from __future__ import annotations

import html
import logging
import sys
import time
import weakref
from pathlib import Path

import platformdirs
from PySide6.QtCore import QCoreApplication, QObject, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QKeySequence, QPainter, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from engine.avatar.looks import GALLERY, LOOK_PREFIX
from engine.calibration import Calibration
from engine.errors import AvatarcamError
from engine.outputs.hub import DataStream
from engine.packets import RenderedFrame
from engine.paths import DEFAULT_AVATAR
from engine.profiles import ProfileStore
from engine.render import DEFAULT_BACKGROUND, parse_colour
from engine.session import SessionSpec, SourceKind

from .consent import ConsentDialog
from .engine_bridge import EngineBridge
from .gc_policy import collect_on_ui_thread
from .global_hotkey import GlobalHotkey
from .indicator import RecordingIndicator, TrayController, app_icon
from .overlay import overlay_lines, paint_overlay
from .photo_avatar import PHOTO_FILTER, PhotoAvatarDialog
from .settings import BACKGROUNDS, AppSettings

log = logging.getLogger(__name__)
AVATAR_SUFFIXES = (".glb", ".gltf", ".vrm")
TITLE = "avatarcam"
FROM_PHOTO, FROM_PHOTO_ENTRY = "from-photo", "Make an avatar from a photo…"

STYLE = """
QMainWindow, QDialog { background: #16181d; }
QWidget { color: #e6e8eb; font-size: 13px; }
QLabel#section { color: #8a939d; font-size: 11px; font-weight: 600; text-transform: uppercase; margin-top: 8px; }
QPushButton { background: #262a32; border: 1px solid #343a44; border-radius: 6px; padding: 6px 12px; }
QPushButton:hover { background: #2e333d; }
QPushButton:disabled { color: #6b7280; }
QPushButton#start { background: #2f6fe4; border: none; font-size: 15px; font-weight: 600; padding: 10px; }
QPushButton#start:hover { background: #3a7bf0; }
QPushButton#stop { background: #c8373c; border: none; font-size: 15px; font-weight: 600; padding: 10px; }
QComboBox, QKeySequenceEdit, QLineEdit, QSpinBox { background: #20242b; border: 1px solid #343a44;
    border-radius: 5px; padding: 4px 6px; }
QFrame#sidebar { background: #1c1f25; border-left: 1px solid #262a32; }
QLabel#banner { border-radius: 6px; padding: 8px 12px; }
QTabWidget::pane { border: 1px solid #2a2f37; }
QProgressBar { background: #20242b; border: 1px solid #343a44; border-radius: 4px; text-align: center; height: 14px; }
QProgressBar::chunk { background: #3a7bf0; border-radius: 3px; }
QTabBar::tab { background: #20242b; color: #aeb5bf; padding: 6px 14px; border: 1px solid #2a2f37;
    border-bottom: none; border-top-left-radius: 5px; border-top-right-radius: 5px; }
QTabBar::tab:selected { background: #2a2f37; color: #ffffff; }
QScrollArea { border: 1px solid #2a2f37; }
QScrollArea > QWidget > QWidget { background: #16181d; }
QTextBrowser { background: #1c1f25; border: 1px solid #2a2f37; }
"""


def frame_to_qimage(frame: RenderedFrame) -> QImage:
    """A QImage over the frame's RGB pixels (no copy; the frame must outlive it)."""
    image = frame.image
    height, width, _ = image.shape
    return QImage(image.data, width, height, 3 * width, QImage.Format.Format_RGB888)


class PreviewView(QWidget):
    """Paints the newest rendered frame, letterboxed, with the overlay and a paused card."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(480, 270)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.frame: RenderedFrame | None = None
        self._image: QImage | None = None
        self.frames_shown = 0
        self.paused = False
        self.placeholder = "Press Start, or try the demo"
        self.overlay: list[str] = []
        self.self_view: QImage | None = None  # a small picture of the camera, bottom right

    def set_frame(self, frame: RenderedFrame) -> None:
        self.frame = frame
        # Qt's native 32-bit format: converting once here and then scaling is ~3x cheaper than
        # scaling the 24-bit image (1 ms instead of 3 ms for 1280x720 on the 2-core reference).
        self._image = frame_to_qimage(frame).convertToFormat(QImage.Format.Format_RGB32)
        self.frames_shown += 1
        self.paused = False
        self.update()

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#0f1115"))
        target = QRectF(self.rect())
        if self._image is not None:
            w, h = self._image.width(), self._image.height()
            scale = min(self.width() / w, self.height() / h)
            target = QRectF((self.width() - w * scale) / 2, (self.height() - h * scale) / 2, w * scale, h * scale)
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(target, self._image)
        if self.paused or self._image is None:
            if self._image is not None:
                painter.fillRect(target, QColor(10, 12, 16, 170))
            painter.setPen(QColor("#c9ced6"))
            font = painter.font()
            font.setPointSizeF(18 if self.paused else 14)
            painter.setFont(font)
            painter.drawText(target, Qt.AlignmentFlag.AlignCenter, "Paused" if self.paused and self._image else self.placeholder)
        if self.overlay and not self.paused:
            paint_overlay(painter, target, self.overlay)
        if self.self_view is not None and not self.paused:
            view = self.self_view
            box = QRectF(target.right() - view.width() - 10, target.bottom() - view.height() - 10,
                         view.width(), view.height())
            painter.drawImage(box, view)
            painter.setPen(QColor(255, 255, 255, 160))
            painter.drawRect(box)
        painter.end()

    def set_self_view(self, frame) -> None:
        """Show ``frame`` (a camera ``VideoFrame``), mirrored as people expect, ~1/5 of the width."""
        if frame is None:
            self.self_view = None
            return
        height, width, _ = frame.image.shape
        image = QImage(frame.image.data, width, height, 3 * width, QImage.Format.Format_RGB888)
        self.self_view = image.scaledToWidth(max(120, self.width() // 5),
                                             Qt.TransformationMode.FastTransformation).flipped(Qt.Orientation.Horizontal)


class MainWindow(QMainWindow):
    def __init__(self, settings: AppSettings, *, bridge: EngineBridge | None = None, settings_path: Path | None = None,
                 cameras: list[tuple[int, str]] | None = None, profiles: ProfileStore | None = None) -> None:
        super().__init__()
        collect_on_ui_thread(QCoreApplication.instance())
        # The Stop combination system-wide, so Stop works while Zoom has the focus (X11, Windows).
        self.global_stop = GlobalHotkey(self)
        self.settings = settings
        self.settings_path = settings_path
        self.bridge = bridge or EngineBridge(self)
        self.profiles = profiles or ProfileStore()
        self.cameras = cameras or []
        self._cameras_listed = cameras is not None
        self.recording_path: Path | None = None
        self._avatar_pending: str | None = None
        self._settings_dialog = None
        self._consent_dialog: ConsentDialog | None = None
        self.calibration_time_scale = 1.0  # tests shorten the guided capture
        self._last_video = None
        self._banner_kind = ""
        self.setWindowTitle(TITLE)
        self.setWindowIcon(app_icon(False))
        self.setStyleSheet(STYLE)
        self.setAcceptDrops(True)
        self.resize(1180, 640)
        self._build()
        self.tray = TrayController(self)
        self.tray.showRequested.connect(self.bring_to_front)
        self.tray.startRequested.connect(self.start)
        self.tray.stopRequested.connect(self.stop_everything)
        self.tray.quitRequested.connect(self.quit)
        self.tray.set_visible(settings.tray_icon)
        self.stop_shortcut = QShortcut(QKeySequence(settings.stop_shortcut), self)
        self.stop_shortcut.setContext(Qt.ShortcutContext.ApplicationShortcut)
        self.stop_shortcut.activated.connect(self.stop_everything)
        # A weak reference: a strong one (window -> hotkey -> window) makes a cycle that only the
        # cyclic GC frees, possibly on a worker thread, where destroying Qt objects crashes.
        window = weakref.ref(self)
        self.global_stop.triggered.connect(lambda: (w := window()) is not None and w.stop_everything())
        self.global_stop.start(settings.stop_shortcut)
        self.overlay_shortcut = QShortcut(QKeySequence("Ctrl+L"), self)
        self.overlay_shortcut.activated.connect(self.overlay_box.toggle)
        b = self.bridge
        b.frameReady.connect(self._show_frame)
        b.deviceChanged.connect(self._device_changed)
        b.devicesChanged.connect(lambda: self._device_changed(self.bridge.device_open))
        b.runningChanged.connect(self._running_changed)
        b.failed.connect(lambda message: self.show_banner(message, "error"))
        b.progress.connect(self._progress)
        b.avatarChecked.connect(self._avatar_checked)
        self._stats_timer = QTimer(self, interval=500, timeout=self._refresh_stats)
        self._stats_timer.start()
        self._running_changed(False)
        self._apply_profile(settings.profile, quiet=True)
        if not self._cameras_listed:
            self._list_cameras()

    def _list_cameras(self) -> None:
        """List the cameras off the UI thread (probing them takes seconds on Windows)."""
        import threading

        from engine.capture.video import list_cameras

        self._camera_lister = _Relay(self)
        self._camera_lister.done.connect(self.set_cameras)
        threading.Thread(target=lambda: self._camera_lister.done.emit(list_cameras()), daemon=True).start()

    def set_cameras(self, cameras: list) -> None:
        """Offer ``cameras`` ((index, name) pairs) as sources, selecting one as the settings say."""
        self.cameras = [tuple(c) for c in cameras]
        self._cameras_listed = True
        current = self.source_box.currentData()
        self.source_box.blockSignals(True)
        for i in reversed(range(self.source_box.count())):
            if self.source_box.itemData(i)[0] == "camera":
                self.source_box.removeItem(i)
        for position, (index, name) in enumerate(self.cameras):
            self.source_box.insertItem(position, f"Camera {index}: {name}", ("camera", index))
        wanted = self.settings.source
        choice = self.source_box.findData(current)
        if self.cameras and wanted in ("auto", "camera") and not self.bridge.running:
            choice = max(0, self.source_box.findData(("camera", self.settings.camera)))
        self.source_box.setCurrentIndex(max(0, choice))
        self.source_box.blockSignals(False)

    # --- layout -------------------------------------------------------------------------------

    def _build(self) -> None:
        central = QWidget()
        outer = QHBoxLayout(central)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        left = QVBoxLayout()
        left.setContentsMargins(14, 14, 14, 10)
        self.banner = QLabel()
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.setOpenExternalLinks(False)
        self.banner.linkActivated.connect(self._link)
        self.banner.hide()
        left.addWidget(self.banner)
        self.preview = PreviewView()
        left.addWidget(self.preview, 1)
        status = QHBoxLayout()
        self.indicator = RecordingIndicator()
        status.addWidget(self.indicator)
        status.addSpacing(18)
        self.output_status = QLabel()
        self.output_status.setTextFormat(Qt.TextFormat.RichText)
        self.output_status.linkActivated.connect(self._link)
        status.addWidget(self.output_status, 1)
        left.addLayout(status)
        outer.addLayout(left, 1)

        side = QFrame()
        side.setObjectName("sidebar")
        side.setFixedWidth(300)
        form = QVBoxLayout(side)
        form.setContentsMargins(16, 16, 16, 16)
        self.start_button = QPushButton("Start")
        self.start_button.setObjectName("start")
        self.start_button.clicked.connect(self._start_stop_clicked)
        form.addWidget(self.start_button)
        self.demo_button = QPushButton("Try the demo (no camera needed)")
        self.demo_button.clicked.connect(self.start_demo)
        form.addWidget(self.demo_button)

        form.addWidget(self._section("Source"))
        self.source_box = QComboBox()
        for index, name in self.cameras:
            self.source_box.addItem(f"Camera {index}: {name}", ("camera", index))
        self.source_box.addItem("Demo performance", ("demo", 0))
        wanted = self.settings.source
        if wanted == "demo" or (wanted == "auto" and not self.cameras):
            self.source_box.setCurrentIndex(self.source_box.count() - 1)
        else:
            for i in range(self.source_box.count() - 1):
                if self.source_box.itemData(i)[1] == self.settings.camera:
                    self.source_box.setCurrentIndex(i)
        self.source_box.currentIndexChanged.connect(self._source_changed)
        form.addWidget(self.source_box)

        form.addWidget(self._section("Avatar"))
        row = QHBoxLayout()
        self.avatar_box = QComboBox()
        self.avatar_box.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.avatar_box.activated.connect(self._avatar_chosen)
        row.addWidget(self.avatar_box, 1)
        self.open_avatar_button = QPushButton("Open…")
        self.open_avatar_button.clicked.connect(self.open_avatar_dialog)
        row.addWidget(self.open_avatar_button)
        form.addLayout(row)
        hint = QLabel("GLB, glTF or VRM — or drop a file on the window")
        hint.setStyleSheet("color: #8a939d; font-size: 11px;")
        form.addWidget(hint)
        self.avatar_rig = QLabel("")  # how the avatar's face is driven, once known
        self.avatar_rig.setWordWrap(True)
        self.avatar_rig.setStyleSheet("color: #8a939d; font-size: 11px;")
        form.addWidget(self.avatar_rig)
        self._fill_avatars()

        form.addWidget(self._section("Background"))
        self.background_box = QComboBox()
        for label, colour in BACKGROUNDS:
            self.background_box.addItem(label, colour)
        if self.background_box.findData(self.settings.background) < 0:  # from the command line
            self.background_box.addItem(f"Custom ({self.settings.background})", self.settings.background)
        self.background_box.setCurrentIndex(max(0, self.background_box.findData(self.settings.background)))
        self.background_box.currentIndexChanged.connect(self._background_changed)
        form.addWidget(self.background_box)

        form.addWidget(self._section("Expressiveness"))
        row = QHBoxLayout()
        self.expressiveness = QSlider(Qt.Orientation.Horizontal)
        self.expressiveness.setRange(0, 200)
        self.expressiveness.setValue(round(self.settings.expressiveness * 100))
        self.expressiveness_label = QLabel()
        self.expressiveness.valueChanged.connect(self._expressiveness_changed)
        row.addWidget(self.expressiveness, 1)
        row.addWidget(self.expressiveness_label)
        form.addLayout(row)
        self._expressiveness_changed(self.expressiveness.value(), save=False)

        form.addWidget(self._section("Calibration"))
        row = QHBoxLayout()
        self.profile_box = QComboBox()
        self.profile_box.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.profile_box.activated.connect(lambda _: self._apply_profile(self.profile_box.currentData()))
        row.addWidget(self.profile_box, 1)
        self.calibrate_button = QPushButton("Calibrate…")
        self.calibrate_button.clicked.connect(self.open_calibration)
        row.addWidget(self.calibrate_button)
        form.addLayout(row)
        self.fill_profiles()

        form.addWidget(self._section("Overlay"))
        self.overlay_box = QCheckBox("Latency overlay (Ctrl+L)")
        self.overlay_box.setChecked(self.settings.overlay)
        self.overlay_box.toggled.connect(self._overlay_toggled)
        form.addWidget(self.overlay_box)
        self.burn_in_box = QCheckBox("Also show it in the outgoing video")
        self.burn_in_box.setChecked(self.settings.burn_in_overlay)
        self.burn_in_box.toggled.connect(self._burn_in_toggled)
        form.addWidget(self.burn_in_box)
        self.self_view_box = QCheckBox("Small camera self-view")
        self.self_view_box.setChecked(self.settings.self_view)
        self.self_view_box.toggled.connect(self._self_view_toggled)
        form.addWidget(self.self_view_box)

        form.addStretch(1)
        row = QHBoxLayout()
        self.privacy_button = QPushButton("Privacy…")
        self.privacy_button.clicked.connect(self.open_consent)
        self.settings_button = QPushButton("Settings…")
        self.settings_button.clicked.connect(lambda: self.open_settings())
        row.addWidget(self.privacy_button)
        row.addWidget(self.settings_button)
        form.addLayout(row)
        self.shortcut_hint = QLabel()
        self.shortcut_hint.setWordWrap(True)
        self.shortcut_hint.setStyleSheet("color: #8a939d; font-size: 11px;")
        form.addWidget(self.shortcut_hint)
        outer.addWidget(side)
        self.setCentralWidget(central)
        self._update_shortcut_hint()

    @staticmethod
    def _section(text: str) -> QLabel:
        label = QLabel(text.upper())
        label.setObjectName("section")
        return label

    def _save(self) -> None:
        self.settings.save(self.settings_path)

    # --- start / stop -------------------------------------------------------------------------

    @property
    def source_kind(self) -> str:
        return self.source_box.currentData()[0]

    def run_spec(self) -> SessionSpec:
        """The session the window's choices and the user's consent ask for."""
        s = self.settings
        kind, value = self.source_box.currentData()
        self.recording_path = None
        if s.allowed("recording"):
            folder = Path(s.recording_folder or platformdirs.user_videos_dir())
            self.recording_path = folder / time.strftime("avatarcam-%Y%m%d-%H%M%S.mp4")
        return SessionSpec(source=SourceKind(kind), camera=value if kind == "camera" else 0,
                           path=Path(value) if kind in ("video", "image") else None, loop=True,
                           size=tuple(s.size), fps=float(s.fps), avatar=self._avatar_path(),
                           emotion=s.allowed("emotion"), expressiveness=s.expressiveness,
                           microphone=s.microphone if s.allowed("microphone") else None,
                           websocket=str(s.websocket_port) if s.allowed("websocket") else None,
                           speak=s.allowed("speak") and s.allowed("websocket"),
                           speech_output=None if s.speech_output == "none" else s.speech_output,
                           vmc=s.vmc_target if s.allowed("vmc") else None,
                           enhance=Path(s.enhance).expanduser() if s.enhance else None,
                           **({"background": parse_colour(s.background)} if s.background else {}))

    def _avatar_path(self) -> Path:
        from engine.avatar.looks import resolve

        if self.settings.avatar in ("", "default"):
            return DEFAULT_AVATAR
        return resolve(self.settings.avatar) or Path(self.settings.avatar)

    def add_file_source(self, kind: str, path: str | Path) -> None:
        """Offer a video file or still image as the source (``gui --video/--image``) and select it."""
        self.source_box.addItem(f"{'Video' if kind == 'video' else 'Image'}: {Path(path).name}", (kind, str(path)))
        self.source_box.setCurrentIndex(self.source_box.count() - 1)

    def start(self) -> None:
        if self.source_kind == "camera" and not self.settings.allowed("camera"):
            self.show_banner("The camera is switched off in <a href='privacy'>Privacy</a>. Switch it on to "
                             "use your face, or <a href='demo'>try the demo</a>.", "info")
            return
        self.hide_banner()
        if self.settings.allowed("speak") and not self.settings.allowed("websocket"):
            self.show_banner("The speak API runs on the WebSocket stream, which is off: switch it on in "
                             "<a href='privacy'>Privacy</a> to let programs make the avatar speak.", "info")
        self.bridge.virtual_camera.set_device(self.settings.virtual_camera_device or None)
        self.bridge.start(self.run_spec(), record_to=self.recording_path)
        self._set_busy(True)

    def start_demo(self) -> None:
        self.source_box.setCurrentIndex(self.source_box.findData(("demo", 0)))
        self.start()

    def stop_everything(self) -> None:
        """One action stops it all: camera (and microphone) released, outputs paused."""
        self.bridge.stop()
        self.preview.set_paused(True)
        self._set_busy(False, running=False)

    def _start_stop_clicked(self) -> None:
        if self.bridge.running or self.start_button.objectName() == "stop":
            self.stop_everything()
        else:
            self.start()

    def _restart_if_running(self) -> None:
        if self.bridge.running:
            self.start()

    def _set_busy(self, busy: bool, running: bool | None = None) -> None:
        stop_mode = busy or bool(running)
        self.start_button.setText("Stop" if stop_mode else "Start")
        self.start_button.setObjectName("stop" if stop_mode else "start")
        self.start_button.style().unpolish(self.start_button)
        self.start_button.style().polish(self.start_button)
        self.tray.set_running(stop_mode)

    def _running_changed(self, running: bool) -> None:
        self._set_busy(False, running=running)
        if self._banner_kind == "progress":
            self.hide_banner()
        if not running and self.preview.frame is not None:
            self.preview.set_paused(True)
        if running and self.recording_path is not None:
            self.show_banner(f"Recording the avatar video to {self.recording_path}", "info")
        session = self.bridge.session
        if running and session is not None and session.avatar_binding is not None:
            self._show_rig(session.spec.avatar, session.avatar_binding.describe())
        self._update_output_status()

    def _device_changed(self, is_open: bool) -> None:
        self.indicator.set_on(is_open, sorted(self.bridge.open_devices))
        self.tray.set_recording(is_open)
        self.setWindowTitle(f"● REC — {TITLE}" if is_open else TITLE)
        self.setWindowIcon(app_icon(is_open))

    def _show_frame(self) -> None:
        frame = self.bridge.take_frame()
        if frame is not None and self.bridge.session is not None:
            video = self.bridge.latest_video
            if self.self_view_box.isChecked() and video is not None and video is not self._last_video \
                    and frame.sequence % 3 == 0:  # ~10 pictures a second is plenty for a self-view
                self._last_video = video
                self.preview.set_self_view(video)
            elif video is None:
                self.preview.set_self_view(None)
            self.preview.set_frame(frame)

    def _progress(self, label: str, done: int, total: int) -> None:
        if total:
            self.show_banner(f"Downloading the {label}: {100 * done // total}% ({done >> 10} of {total >> 10} KiB)", "progress")
        else:
            self.show_banner(f"Preparing the {label}…", "progress")

    # --- status, stats, overlay ----------------------------------------------------------------

    def _update_output_status(self, problem: str | None = None) -> None:
        """The outputs' state; ``problem`` (the camera's, e.g. "camera lost, waiting") is added."""
        vc = self.bridge.virtual_camera
        label = "avatarcam" if sys.platform.startswith("linux") else "OBS Virtual Camera"
        if vc.available and self.bridge.running:
            text = f"<span style='color:#3fb950'>●</span> Virtual camera: on — select '{label}' in Zoom or Teams"
        elif vc.available:
            text = "Virtual camera: paused (showing a 'Paused' card)"
        elif vc.error:
            text = ("<span style='color:#d29922'>●</span> Virtual camera driver missing — "
                    "<a href='diagnostics' style='color:#58a6ff'>how to install</a>")
        else:
            text = "Virtual camera: starts with Start"
        if problem:
            text += f" &nbsp; <span style='color:#d29922'>● {html.escape(problem)}</span>"
        self.output_status.setText(text)

    def mode(self) -> str:
        """The modality mode shown in the overlay (the fusion stage will report its own)."""
        spec = self.bridge.spec
        if not self.bridge.running or spec is None:
            return "none"
        video = "demo" if spec.source is SourceKind.DEMO else "video"
        if "microphone" in self.bridge.open_devices:
            return "both" if video == "video" else "demo+audio"
        return "video_only" if video == "video" else "demo"

    def _refresh_stats(self) -> None:
        stats = self.bridge.stats() if self.bridge.running else None
        lines = overlay_lines(stats, stats.mode or self.mode(), stats.emotion) if stats is not None else []
        self.preview.overlay = lines if self.overlay_box.isChecked() else []
        self.bridge.virtual_camera.burn_in_lines = lines if self.burn_in_box.isChecked() else []
        self._update_output_status(stats.source_status if stats is not None else None)

    def _overlay_toggled(self, on: bool) -> None:
        self.settings.overlay = on
        self._save()
        self._refresh_stats()
        self.preview.update()

    def _self_view_toggled(self, on: bool) -> None:
        self.settings.self_view = on
        self._save()
        if not on:
            self.preview.set_self_view(None)

    def _burn_in_toggled(self, on: bool) -> None:
        self.settings.burn_in_overlay = on
        self._save()
        self._refresh_stats()

    # --- banner --------------------------------------------------------------------------------

    def show_banner(self, html: str, kind: str = "error") -> None:
        colours = {"error": ("#3b1d20", "#f2b8b5"), "info": ("#1c2a3f", "#c6d8f5")}
        background, colour = colours.get(kind, colours["info"])
        self._banner_kind = kind
        self.banner.setStyleSheet(f"background: {background}; color: {colour};")
        self.banner.setText(html.replace("\n", "<br>") + " &nbsp; <a href='dismiss' style='color:#8a939d'>dismiss</a>")
        self.banner.show()

    def hide_banner(self) -> None:
        self.banner.hide()

    def _link(self, target: str) -> None:
        if target == "dismiss":
            self.hide_banner()
        elif target == "privacy":
            self.open_consent()
        elif target == "demo":
            self.start_demo()
        elif target == "diagnostics":
            self.open_settings("virtual camera")

    # --- avatar -------------------------------------------------------------------------------

    def _fill_avatars(self) -> None:
        self.avatar_box.blockSignals(True)
        self.avatar_box.clear()
        self.avatar_box.addItem("Default avatar", "default")
        for look in GALLERY:
            self.avatar_box.addItem(look.title, LOOK_PREFIX + look.key)
        self.avatar_box.addItem(FROM_PHOTO_ENTRY, FROM_PHOTO)
        self.avatar_box.insertSeparator(self.avatar_box.count())
        for path in self.settings.recent_avatars:
            self.avatar_box.addItem(Path(path).name, path)
            self.avatar_box.setItemData(self.avatar_box.count() - 1, path, Qt.ItemDataRole.ToolTipRole)
        current = self.avatar_box.findData(self.settings.avatar or "default")
        self.avatar_box.setCurrentIndex(max(0, current))
        self.avatar_box.blockSignals(False)

    def _avatar_chosen(self, index: int) -> None:
        choice = self.avatar_box.itemData(index)
        if choice == FROM_PHOTO:
            self._fill_avatars()  # the current avatar stays selected until a new one is accepted
            self.make_avatar_from_photo()
        else:
            self.load_avatar(choice)

    def make_avatar_from_photo(self, photo: str | None = None) -> None:
        """Ask for a photo (unless given), then build its avatar with a preview to accept."""
        from engine.avatar.looks import made_avatar_path

        if photo is None:
            photo, _ = QFileDialog.getOpenFileName(self, "Choose a photo of your face", str(Path.home()), PHOTO_FILTER)
        if not photo:
            return
        dialog = PhotoAvatarDialog(Path(photo), made_avatar_path(), self)
        dialog.accepted.connect(lambda: self.load_avatar(str(dialog.avatar_path)))
        self.photo_dialog = dialog
        dialog.open()

    def open_avatar_dialog(self) -> None:
        # FLAME may not be shipped: the filter names where to get it (the file's .pkl or .npz).
        path, _ = QFileDialog.getOpenFileName(self, "Open an avatar", str(Path.home()),
                                              "Avatars (*.glb *.gltf *.vrm *.pkl *.npz);;"
                                              "FLAME head, from flame.is.tue.mpg.de (*.pkl *.npz)")
        if path:
            self.load_avatar(path)

    def _show_rig(self, avatar: Path, rig: str) -> None:
        """The avatar row says how ``avatar`` is driven; the log says it once per avatar put on."""
        self.avatar_rig.setText(rig[:1].upper() + rig[1:])
        log.info("avatar %s: %s", avatar.name, rig)

    def load_avatar(self, path: str) -> None:
        """Check ``path`` off the UI thread; on success use it (restarting if running), else say why."""
        self._avatar_pending = path
        name = self.avatar_box.itemText(self.avatar_box.findData(path)) if path.startswith(LOOK_PREFIX) else Path(path).name
        self.show_banner(f"Loading {name if path != 'default' else 'the default avatar'}…", "info")
        self.bridge.check_avatar(path)

    def _avatar_checked(self, path: str, error: str, rig: str) -> None:
        if path != self._avatar_pending:
            return
        self._avatar_pending = None
        if error:
            self.show_banner(f"That avatar could not be used: {error} The previous avatar stays.", "error")
            self._fill_avatars()  # back to the previous choice
            return
        self.hide_banner()
        self.settings.avatar = path
        self._show_rig(self._avatar_path(), rig)
        if not path.startswith(LOOK_PREFIX):  # the gallery's looks are always listed
            self.settings.add_recent(path)
        self._save()
        self._fill_avatars()
        self.bridge.change_look(avatar=self._avatar_path())  # the camera stays open

    def dragEnterEvent(self, event) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].toLocalFile().lower().endswith(AVATAR_SUFFIXES):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = event.mimeData().urls()
        if urls:
            self.load_avatar(urls[0].toLocalFile())
            event.acceptProposedAction()

    # --- other choices ------------------------------------------------------------------------

    def _source_changed(self) -> None:
        kind, value = self.source_box.currentData()
        if kind in ("video", "image"):
            return  # a file given on the command line is for this session only
        self.settings.source = kind
        if kind == "camera":
            self.settings.camera = value
        self._save()

    def _background_changed(self) -> None:
        self.settings.background = self.background_box.currentData()
        self._save()
        colour = self.settings.background
        self.bridge.change_look(background=parse_colour(colour) if colour else DEFAULT_BACKGROUND)

    def _expressiveness_changed(self, value: int, save: bool = True) -> None:
        self.settings.expressiveness = value / 100.0
        self.expressiveness_label.setText(f"{value}%")
        if self.bridge.session is not None:
            self.bridge.session.set_expressiveness(self.settings.expressiveness)
        if save:
            self._save()

    def fill_profiles(self, select: str | None = None) -> None:
        self.profile_box.clear()
        self.profile_box.addItem("No calibration", "")
        for name in self.profiles.names():
            self.profile_box.addItem(name, name)
        wanted = self.settings.profile if select is None else select
        self.profile_box.setCurrentIndex(max(0, self.profile_box.findData(wanted)))

    def _apply_profile(self, name: str, quiet: bool = False) -> None:
        calibration = Calibration()
        if name:
            try:
                calibration = self.profiles.load(name)
            except AvatarcamError as exc:
                if not quiet:
                    self.show_banner(str(exc), "error")
                name = ""
        self.settings.profile = name
        self._save()
        self.bridge.set_calibration(calibration)

    def _update_shortcut_hint(self) -> None:
        shortcut = QKeySequence(self.settings.stop_shortcut).toString(QKeySequence.SequenceFormat.NativeText)
        where = "anywhere" if self.global_stop.active else "in avatarcam"
        self.shortcut_hint.setText(f"Stop everything: {shortcut} {where} (or the tray menu)")
        self.shortcut_hint.setToolTip("" if self.global_stop.active else f"Not system-wide: {self.global_stop.error}")

    def set_stop_shortcut(self, text: str) -> None:
        self.settings.stop_shortcut = text
        self._save()
        self.stop_shortcut.setKey(QKeySequence(text))
        self.global_stop.start(text)
        self._update_shortcut_hint()

    # --- dialogs ------------------------------------------------------------------------------

    def open_consent(self, first_run: bool = False) -> ConsentDialog:
        dialog = ConsentDialog(self.settings, self._save, self, first_run=first_run)
        dialog.changed.connect(self.consent_changed)
        if first_run:
            dialog.finished.connect(self._first_run_done)
        self._consent_dialog = dialog
        dialog.open()
        return dialog

    def _first_run_done(self) -> None:
        self.settings.first_run_done = True
        self._save()

    def consent_changed(self, key: str, allowed: bool) -> None:
        """A switch flipped: act on it now."""
        session = self.bridge.session
        if key == "emotion" and session is not None:
            session.set_emotion_enabled(allowed)  # on or off, from the next frame
        if allowed:
            return
        if key in ("websocket", "vmc") and session is not None:
            session.close_stream(DataStream(key))  # the stream closes now; the avatar keeps running
        if key in ("websocket", "speak") and session is not None:
            session.stop_speaking()  # silent now; the speak API runs on the WebSocket
        bridge = self.bridge
        uses_camera = bridge.device_open or (bridge.session is not None and bridge.spec is not None
                                             and bridge.spec.source is SourceKind.CAMERA)
        if key == "camera" and uses_camera:
            self.stop_everything()
            self.show_banner("Camera switched off: it has been released.", "info")
        elif key == "recording":
            self.bridge.stop_recording()
        elif key == "microphone":
            self.bridge.stop_microphone()

    def open_settings(self, tab: str | None = None):
        from .settings_dialog import SettingsDialog

        dialog = SettingsDialog(self, tab=tab)
        self._settings_dialog = dialog
        dialog.open()
        return dialog

    def open_calibration(self):
        from .calibration_wizard import CalibrationWizard

        wizard = CalibrationWizard(self.bridge, self.profiles, self, time_scale=self.calibration_time_scale)
        wizard.profileSaved.connect(self._profile_saved)
        wizard.profilesChanged.connect(lambda: self.fill_profiles(
            select=self.settings.profile if self.settings.profile in self.profiles.names() else ""))
        wizard.open()
        return wizard

    def _profile_saved(self, name: str) -> None:
        self.fill_profiles(select=name)
        self._apply_profile(name)

    # --- window -------------------------------------------------------------------------------

    def bring_to_front(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    def quit(self) -> None:
        self._quitting = True
        self.close()

    def closeEvent(self, event) -> None:
        if self.settings.close_to_tray and self.tray.icon.isVisible() and not getattr(self, "_quitting", False):
            self.hide()
            event.ignore()
            return
        self._stats_timer.stop()
        self.global_stop.stop()
        self.bridge.shutdown()
        self.tray.icon.hide()
        super().closeEvent(event)


class _Relay(QObject):
    """Carries a result from a worker thread to the UI thread."""

    done = Signal(list)
