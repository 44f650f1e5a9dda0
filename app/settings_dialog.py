"""Settings: devices (camera, microphone, output with size and fps), virtual-camera diagnostics with
the exact steps for this platform, the model manager (progress and cancel), tray and shortcut.

Device lists, the driver check and downloads run off the UI thread; results come back as signals.
"""

from __future__ import annotations

import sys
import threading

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QIcon, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QKeySequenceEdit,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

SIZES = ((640, 360), (960, 540), (1280, 720), (1920, 1080))
FPS_CHOICES = (15.0, 24.0, 30.0, 60.0)


def driver_instructions(platform: str = sys.platform) -> str:
    """Exact steps to install a virtual camera driver on ``platform`` (HTML)."""
    if platform.startswith("linux"):
        return (
            "<p><b>Linux: install and load v4l2loopback</b></p>"
            "<p style='font-family: monospace; white-space: pre-wrap; background: #111318;'>sudo apt install v4l2loopback-dkms\n"
            "sudo modprobe v4l2loopback devices=1 video_nr=10 card_label=\"avatarcam\" exclusive_caps=1</p>"
            "<p><code>exclusive_caps=1</code> is what makes Chrome, Zoom and Teams list the camera. To load it "
            "at every boot:</p>"
            "<p style='font-family: monospace; white-space: pre-wrap; background: #111318;'>echo v4l2loopback | sudo tee /etc/modules-load.d/v4l2loopback.conf\n"
            "echo 'options v4l2loopback devices=1 video_nr=10 card_label=\"avatarcam\" exclusive_caps=1' "
            "| sudo tee /etc/modprobe.d/v4l2loopback.conf</p>"
            "<p>With Secure Boot on, the module must be signed (the DKMS package asks to enrol a key). "
            "Then choose <b>avatarcam</b> as the camera in Zoom, Teams or Meet.</p>")
    if platform == "darwin":
        return (
            "<p><b>macOS: install OBS Studio 28 or newer</b> (obsproject.com), open it once, click "
            "<i>Start Virtual Camera</i> and allow the system extension in System Settings → Privacy &amp; "
            "Security, then <i>Stop Virtual Camera</i> and quit OBS. Choose <b>OBS Virtual Camera</b> in Zoom or "
            "Teams (restart them after installing).</p>")
    return (
        "<p><b>Windows: install OBS Studio 28 or newer</b> (obsproject.com), open it once, click "
        "<i>Start Virtual Camera</i>, then <i>Stop Virtual Camera</i> and close OBS. Choose <b>OBS Virtual "
        "Camera</b> in Zoom or Teams (restart them after installing).</p>")


class _Worker(QObject):
    """Runs a function on a thread and reports back on the UI thread."""

    done = Signal(object)
    progress = Signal(int, int)

    def run(self, function) -> None:
        threading.Thread(target=lambda: self.done.emit(function()), daemon=True).start()


class ModelRow(QObject):
    """One model: status, a progress bar, Download and Cancel."""

    def __init__(self, manager, status, grid: QGridLayout, row: int, parent: QObject) -> None:
        super().__init__(parent)
        self.manager, self.name = manager, status.name
        self.label = QLabel(f"<b>{status.name}</b><br><span style='color:#8a939d'>{status.description}<br>"
                            f"{status.size >> 10} KiB, {status.licence}</span>")
        self.label.setWordWrap(True)
        self.state = QLabel()
        self.bar = QProgressBar()
        self.bar.setRange(0, 100)
        self.download = QPushButton("Download")
        self.cancel = QPushButton("Cancel")
        self.cancel.setEnabled(False)
        self.download.clicked.connect(self.start)
        self.cancel.clicked.connect(self.stop)
        grid.addWidget(self.label, row, 0)
        grid.addWidget(self.state, row, 1)
        grid.addWidget(self.bar, row, 2)
        grid.addWidget(self.download, row, 3)
        grid.addWidget(self.cancel, row, 4)
        self.worker = _Worker(self)
        self.worker.progress.connect(self._progress)
        self.worker.done.connect(self._done)
        self._cancel = threading.Event()
        self._show(status.present, str(status.path) if status.path else "not downloaded")

    def _show(self, present: bool, text: str) -> None:
        self.state.setText("✓ ready" if present else text)
        self.state.setToolTip(text)
        self.bar.setValue(100 if present else 0)
        self.download.setEnabled(not present)
        self.cancel.setEnabled(False)

    def start(self) -> None:
        self._cancel = cancel = threading.Event()
        self.download.setEnabled(False)
        self.cancel.setEnabled(True)
        self.state.setText("downloading…")

        def fetch():
            from engine.errors import AvatarcamError

            try:
                return True, str(self.manager.ensure(self.name, progress=self.worker.progress.emit, cancel=cancel))
            except AvatarcamError as exc:
                return False, str(exc)

        self.worker.run(fetch)

    def stop(self) -> None:
        self._cancel.set()

    def _progress(self, done: int, total: int) -> None:
        self.bar.setValue(100 * done // total if total else 0)

    def _done(self, result) -> None:
        ok, text = result
        self._show(ok, text if ok else ("cancelled" if self._cancel.is_set() else "failed"))
        if not ok:
            self.state.setToolTip(text)


class SettingsDialog(QDialog):
    """Tabs: Devices, Virtual camera, Models, Tray & shortcut. Changes are saved as they are made."""

    def __init__(self, window, tab: str | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.settings = window.settings
        self.setWindowTitle("Settings")
        self.setMinimumSize(720, 520)
        layout = QVBoxLayout(self)
        self.tabs = QTabWidget()
        self.tabs.addTab(self._devices_tab(), "Devices")
        self.tabs.addTab(self._virtual_camera_tab(), "Virtual camera")
        self.tabs.addTab(self._models_tab(), "Models")
        self.tabs.addTab(self._general_tab(), "Tray && shortcut")
        layout.addWidget(self.tabs)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.button(QDialogButtonBox.StandardButton.Close).setIcon(QIcon())
        buttons.rejected.connect(self.accept)
        layout.addWidget(buttons)
        names = {"devices": 0, "virtual camera": 1, "models": 2, "general": 3}
        self.tabs.setCurrentIndex(names.get(tab or "", 0))

    def _save(self) -> None:
        self.window._save()

    # --- devices --------------------------------------------------------------------------------

    def _devices_tab(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        self.camera_box = QComboBox()
        for index, name in self.window.cameras:
            self.camera_box.addItem(f"{index}: {name}", index)
        if not self.window.cameras:
            self.camera_box.addItem("No camera found (the demo still works)", -1)
        self.camera_box.setCurrentIndex(max(0, self.camera_box.findData(self.settings.camera)))
        self.camera_box.currentIndexChanged.connect(self._camera_changed)
        form.addRow("Camera", self.camera_box)
        self.size_box = QComboBox()
        for width, height in SIZES:
            self.size_box.addItem(f"{width} × {height}", (width, height))
        self.size_box.setCurrentIndex(max(0, self.size_box.findData(tuple(self.settings.size))))
        self.size_box.currentIndexChanged.connect(self._format_changed)
        form.addRow("Resolution", self.size_box)
        self.fps_box = QComboBox()
        for fps in FPS_CHOICES:
            self.fps_box.addItem(f"{fps:g} fps", fps)
        self.fps_box.setCurrentIndex(max(0, self.fps_box.findData(float(self.settings.fps))))
        self.fps_box.currentIndexChanged.connect(self._format_changed)
        form.addRow("Frame rate", self.fps_box)
        self.microphone_box = QComboBox()
        self.microphone_box.addItem("System default", "")
        for name in _audio_devices("max_input_channels"):
            self.microphone_box.addItem(name, name)
        self.microphone_box.setCurrentIndex(max(0, self.microphone_box.findData(self.settings.microphone)))
        self.microphone_box.currentIndexChanged.connect(self._microphone_changed)
        form.addRow("Microphone", self.microphone_box)
        # Where the speak API's audio plays: a virtual microphone (a PulseAudio null sink, VB-Cable,
        # BlackHole) makes it the meeting's microphone (docs/TALKING.md).
        self.speech_output_box = QComboBox()
        self.speech_output_box.addItem("System default", "")
        for name in _audio_devices("max_output_channels"):
            self.speech_output_box.addItem(name, name)
        self.speech_output_box.addItem("Nowhere (lip-sync only)", "none")
        self.speech_output_box.setCurrentIndex(max(0, self.speech_output_box.findData(self.settings.speech_output)))
        self.speech_output_box.currentIndexChanged.connect(self._speech_output_changed)
        form.addRow("Speech output", self.speech_output_box)
        self.output_edit = QLineEdit(self.settings.virtual_camera_device)
        self.output_edit.setPlaceholderText("automatic (e.g. /dev/video10)")
        self.output_edit.editingFinished.connect(self._output_changed)
        form.addRow("Virtual camera device", self.output_edit)
        note = QLabel("Resolution and frame rate apply to the camera and the virtual camera; "
                      "changes take effect at the next Start.")
        note.setWordWrap(True)
        note.setStyleSheet("color: #8a939d;")
        form.addRow(note)
        return page

    def _camera_changed(self) -> None:
        if self.camera_box.currentData() is not None and self.camera_box.currentData() >= 0:
            self.settings.camera = self.camera_box.currentData()
            self._save()

    def _format_changed(self) -> None:
        self.settings.size = tuple(self.size_box.currentData())
        self.settings.fps = float(self.fps_box.currentData())
        self._save()

    def _microphone_changed(self) -> None:
        self.settings.microphone = self.microphone_box.currentData()
        self._save()

    def _speech_output_changed(self) -> None:
        self.settings.speech_output = self.speech_output_box.currentData()
        self._save()

    def _output_changed(self) -> None:
        self.settings.virtual_camera_device = self.output_edit.text().strip()
        self._save()

    # --- virtual camera -------------------------------------------------------------------------

    def _virtual_camera_tab(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        row = QHBoxLayout()
        self.vc_status = QLabel("Checking…")
        self.vc_status.setWordWrap(True)
        row.addWidget(self.vc_status, 1)
        self.vc_check = QPushButton("Check again")
        self.vc_check.clicked.connect(self.check_virtual_camera)
        row.addWidget(self.vc_check)
        layout.addLayout(row)
        self.vc_help = QTextBrowser()
        self.vc_help.setHtml(driver_instructions())
        layout.addWidget(self.vc_help, 1)
        self._vc_worker = _Worker(self)
        self._vc_worker.done.connect(self._vc_result)
        self.check_virtual_camera()
        return page

    def check_virtual_camera(self) -> None:
        vc = self.window.bridge.virtual_camera
        if vc.available:  # held by this app: opening a second one would fail on v4l2loopback
            self._vc_result((True, f"Virtual camera available: {vc.device} (in use by avatarcam)."))
            return
        self.vc_status.setText("Checking…")
        from engine.outputs.sinks import virtual_camera_status

        self._vc_worker.run(virtual_camera_status)

    def _vc_result(self, result) -> None:
        ok, message = result
        colour = "#3fb950" if ok else "#d29922"
        self.vc_status.setText(f"<span style='color:{colour}'>●</span> {message if ok else message.split(' Install')[0]}")

    # --- models ---------------------------------------------------------------------------------

    def _models_tab(self) -> QWidget:
        from engine.errors import AvatarcamError
        from engine.models import ModelManager

        page = QWidget()
        layout = QVBoxLayout(page)
        grid = QGridLayout()
        grid.setColumnStretch(0, 1)
        self.model_rows: list[ModelRow] = []
        try:
            manager = ModelManager()
            for row, status in enumerate(manager.status()):
                self.model_rows.append(ModelRow(manager, status, grid, row, self))
            where = QLabel(f"Downloads go to {manager.data_dir}; each file is checked against its sha256.")
        except AvatarcamError as exc:
            where = QLabel(str(exc))
        layout.addLayout(grid)
        where.setWordWrap(True)
        where.setStyleSheet("color: #8a939d;")
        layout.addWidget(where)
        layout.addStretch(1)
        return page

    # --- tray and shortcut ----------------------------------------------------------------------

    def _general_tab(self) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        self.tray_box = QCheckBox("Show an icon in the system tray (menu: Show, Start, Stop everything, Quit)")
        self.tray_box.setChecked(self.settings.tray_icon)
        self.tray_box.toggled.connect(self._tray_changed)
        form.addRow(self.tray_box)
        self.close_to_tray_box = QCheckBox("Closing the window keeps avatarcam running in the tray")
        self.close_to_tray_box.setChecked(self.settings.close_to_tray)
        self.close_to_tray_box.toggled.connect(self._close_to_tray_changed)
        form.addRow(self.close_to_tray_box)
        self.shortcut_edit = QKeySequenceEdit(QKeySequence(self.settings.stop_shortcut))
        self.shortcut_edit.setMaximumSequenceLength(1)
        self.shortcut_edit.editingFinished.connect(self._shortcut_changed)
        form.addRow("Stop everything", self.shortcut_edit)
        note = QLabel("The shortcut works whenever an avatarcam window has focus. A shortcut that works while "
                      "another app (Zoom) has focus needs an OS-level hotkey hook; until one ships, use the tray "
                      "menu's Stop everything. See docs/GUI.md.")
        note.setWordWrap(True)
        note.setStyleSheet("color: #8a939d;")
        form.addRow(note)
        return page

    def _tray_changed(self, on: bool) -> None:
        self.settings.tray_icon = on
        self._save()
        self.window.tray.set_visible(on)

    def _close_to_tray_changed(self, on: bool) -> None:
        self.settings.close_to_tray = on
        self._save()

    def _shortcut_changed(self) -> None:
        text = self.shortcut_edit.keySequence().toString(QKeySequence.SequenceFormat.PortableText)
        if text:
            self.window.set_stop_shortcut(text)


def _audio_devices(channels: str) -> list[str]:
    """Names of the sound devices with ``channels`` ("max_input_channels": microphones,
    "max_output_channels": outputs); none when PortAudio is missing."""
    try:
        import sounddevice

        return [d["name"] for d in sounddevice.query_devices() if d[channels] > 0]
    except Exception:
        return []
