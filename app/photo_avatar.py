"""'Make an avatar from a photo…': the engine measures the face and builds the avatar off the UI
thread, renders a preview, and the user accepts it or not. Only the avatar is written; a declined
one is deleted."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from engine.errors import AvatarcamError

log = logging.getLogger(__name__)

PREVIEW_SIZE = (360, 270)
PHOTO_FILTER = "Photos (*.jpg *.jpeg *.png *.bmp *.webp)"


class PhotoAvatarDialog(QDialog):
    """Builds the avatar of ``photo`` into ``out`` and shows its preview; ``avatar_path`` once accepted."""

    made = Signal(str, object, str)  # summary, RGB preview (or None), error line

    def __init__(self, photo: Path, out: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("An avatar from a photo")
        self.photo, self.out = photo, out
        self.avatar_path: Path | None = None
        self._done = False
        self._closed = False
        layout = QVBoxLayout(self)
        self.status = QLabel(f"Reading the face in {photo.name} and building its avatar…")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.preview = QLabel()
        self.preview.setFixedSize(*PREVIEW_SIZE)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setStyleSheet("background: #1f242b;")
        layout.addWidget(self.preview)
        layout.addWidget(QLabel("Only the avatar is kept: nothing of the photo is stored."))
        self.buttons = QDialogButtonBox()
        self.use_button = self.buttons.addButton("Use this avatar", QDialogButtonBox.ButtonRole.AcceptRole)
        self.use_button.setEnabled(False)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.made.connect(self._made)
        threading.Thread(target=self._work, name="avatarcam-from-photo", daemon=True).start()

    def _work(self) -> None:
        from engine.avatar.looks import avatar_from_photo
        from engine.commands.snapshot import SnapshotSpec, snapshot_image
        from engine.models import ModelManager

        try:
            found = avatar_from_photo(self.photo, self.out, ModelManager().ensure("face_landmarker"))
            image = snapshot_image(SnapshotSpec(avatar=self.out, size=PREVIEW_SIZE))
            self.made.emit(f"Skin, hair ({found.hair_length} hair) and eye colours and the face's proportions "
                           f"come from {self.photo.name}.", image, "")
        except AvatarcamError as exc:
            self.made.emit("", None, str(exc).splitlines()[0])
        except Exception as exc:
            log.exception("avatar from a photo failed")
            self.made.emit("", None, f"{self.photo.name} could not be made into an avatar ({exc}).")

    def _made(self, summary: str, image: np.ndarray | None, error: str) -> None:
        self._done = True
        if self._closed:  # declined while it was being built
            self.out.unlink(missing_ok=True)
            return
        if error:
            self.status.setText(error)
            self.status.setStyleSheet("color: #f2b8b5;")
            return
        assert image is not None
        rgb = np.ascontiguousarray(image[:, :, :3])
        qimage = QImage(rgb.data, rgb.shape[1], rgb.shape[0], 3 * rgb.shape[1], QImage.Format.Format_RGB888).copy()
        self.preview.setPixmap(QPixmap.fromImage(qimage))
        self.status.setText(summary)
        self.use_button.setEnabled(True)

    def accept(self) -> None:
        self.avatar_path = self.out
        self._closed = True
        super().accept()

    def reject(self) -> None:
        self._closed = True
        if self._done:
            self.out.unlink(missing_ok=True)
        super().reject()
