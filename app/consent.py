"""Consent: what avatarcam processes, and one switch per device and outward stream.

Shown on first run and from the Privacy button at any time. Everything starts off. Each switch
takes effect the moment it is flipped (``changed(key, allowed)``): the main window releases the
camera, finishes a recording, and so on; nothing waits for the dialog to close.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QCheckBox, QDialog, QDialogButtonBox, QFrame, QLabel, QVBoxLayout, QWidget

from .settings import CONSENTS, AppSettings

INTRO = (
    "<h2>Your camera, your choice</h2>"
    "<p>avatarcam turns your face (and, if you allow it, your voice) into an animated avatar that "
    "video-call apps see as a webcam. <b>Everything is processed on this computer; nothing is sent "
    "anywhere</b> unless you switch on an output below that sends it.</p>"
    "<p>Your camera picture and microphone audio are only held in memory while they are processed and "
    "are never saved. A calibration profile stores numbers only. Each switch can be changed at any "
    "time and takes effect at once.</p>"
)


class ConsentDialog(QDialog):
    """The consent switches; ``changed(key, allowed)`` fires on every flip (already saved)."""

    changed = Signal(str, bool)

    def __init__(self, settings: AppSettings, save, parent: QWidget | None = None, *, first_run: bool = False) -> None:
        super().__init__(parent)
        self.settings = settings
        self._save = save
        self.setWindowTitle("Welcome to avatarcam" if first_run else "Privacy and consent")
        self.setMinimumWidth(560)
        layout = QVBoxLayout(self)
        intro = QLabel(INTRO)
        intro.setWordWrap(True)
        intro.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(intro)
        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        layout.addWidget(line)
        self.toggles: dict[str, QCheckBox] = {}
        for key, label, description in CONSENTS:
            box = QCheckBox(label)
            box.setObjectName(f"consent_{key}")
            box.setChecked(settings.allowed(key))
            box.setStyleSheet("font-weight: 600;")
            box.toggled.connect(lambda checked, key=key: self._flip(key, checked))
            detail = QLabel(description)
            detail.setWordWrap(True)
            detail.setStyleSheet("color: #8a939d; margin-left: 26px; margin-bottom: 6px;")
            layout.addWidget(box)
            layout.addWidget(detail)
            self.toggles[key] = box
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.button(QDialogButtonBox.StandardButton.Close).setIcon(QIcon())
        if first_run:
            buttons.button(QDialogButtonBox.StandardButton.Close).setText("Continue")
        buttons.rejected.connect(self.accept)
        buttons.accepted.connect(self.accept)
        layout.addWidget(buttons)

    def _flip(self, key: str, allowed: bool) -> None:
        self.settings.consent[key] = allowed
        self._save()
        self.changed.emit(key, allowed)
