"""The recording indicator (a red dot in the window) and the system tray icon with its menu.

Both follow the device state the engine reports (``EngineBridge.deviceChanged``), never the state of
a button: a camera that fails to open, or drops out, turns them off.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QSize, Qt, Signal
from PySide6.QtGui import QAction, QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMenu, QSystemTrayIcon, QWidget

REC_RED = "#e5484d"


def app_icon(recording: bool) -> QIcon:
    """The avatarcam icon: a face disc, with a red dot at the corner while a device is open."""
    pixmap = QPixmap(QSize(64, 64))
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor("#5b8def"))
    painter.drawEllipse(6, 6, 52, 52)
    painter.setBrush(QColor("#ffffff"))
    painter.drawEllipse(20, 24, 8, 10)
    painter.drawEllipse(36, 24, 8, 10)
    painter.drawRoundedRect(22, 42, 20, 5, 2, 2)
    if recording:
        painter.setBrush(QColor("#ffffff"))
        painter.drawEllipse(36, 0, 28, 28)
        painter.setBrush(QColor(REC_RED))
        painter.drawEllipse(40, 4, 20, 20)
    painter.end()
    return QIcon(pixmap)


class RecordingIndicator(QWidget):
    """A red dot and "Camera on" while a capture device is open; grey "Camera off" otherwise."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.dot = QLabel("●")
        self.text = QLabel()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addWidget(self.dot)
        layout.addWidget(self.text)
        self.set_on(False)

    def set_on(self, on: bool, devices: list[str] | None = None) -> None:
        self.is_on = on
        self.dot.setStyleSheet(f"color: {REC_RED if on else '#6b7280'}; font-size: 16px;")
        what = " and ".join(devices or ["camera"])
        self.text.setText(f"REC  {what} on" if on else "Camera and microphone off")
        self.text.setStyleSheet(f"color: {REC_RED}; font-weight: 600;" if on else "color: #9aa3ad;")
        self.setToolTip("A capture device is open" if on else "No camera or microphone is open")


class TrayController(QObject):
    """The tray icon: recording variant while a device is open; menu Show, Start, Stop everything, Quit."""

    showRequested = Signal()
    startRequested = Signal()
    stopRequested = Signal()
    quitRequested = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.recording = False
        self.icon = QSystemTrayIcon(app_icon(False), parent)
        self.icon.setToolTip("avatarcam")
        self.menu = QMenu()
        self.show_action = QAction("Show avatarcam", self.menu, triggered=lambda: self.showRequested.emit())
        self.start_action = QAction("Start", self.menu, triggered=lambda: self.startRequested.emit())
        self.stop_action = QAction("Stop everything", self.menu, triggered=lambda: self.stopRequested.emit())
        self.quit_action = QAction("Quit", self.menu, triggered=lambda: self.quitRequested.emit())
        for action in (self.show_action, self.start_action, self.stop_action):
            self.menu.addAction(action)
        self.menu.addSeparator()
        self.menu.addAction(self.quit_action)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            self.showRequested.emit()

    def set_visible(self, visible: bool) -> None:
        self.icon.setVisible(visible and QSystemTrayIcon.isSystemTrayAvailable())

    def set_recording(self, recording: bool) -> None:
        self.recording = recording
        self.icon.setIcon(app_icon(recording))
        self.icon.setToolTip("avatarcam — camera on" if recording else "avatarcam")

    def set_running(self, running: bool) -> None:
        self.start_action.setEnabled(not running)
