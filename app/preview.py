"""A minimal preview window: the avatar output, live, with Stop on close.

The full desktop app (consent, indicator, settings, calibration) builds on this; frames arrive from
the engine's render thread and are shown by a Qt timer, so neither side ever waits for the other.
"""

from __future__ import annotations

import sys
import threading

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QApplication, QLabel

from engine.pipeline import Pipeline, PipelineOptions
from engine.sinks import VirtualCameraSink, virtual_camera_status
from engine.types import RenderedFrame


class PreviewWindow(QLabel):
    """Shows the newest rendered frame; closing the window stops the pipeline."""

    def __init__(self, pipeline_factory) -> None:
        super().__init__()
        self.setWindowTitle("avatarcam")
        self.setMinimumSize(480, 270)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setStyleSheet("background: #1e2127; color: #ccc;")
        self._latest: RenderedFrame | None = None
        self._lock = threading.Lock()
        self.pipeline: Pipeline = pipeline_factory(self._on_frame)
        self._timer = QTimer(self, interval=15, timeout=self._refresh)
        self._timer.start()

    def _on_frame(self, frame: RenderedFrame) -> None:  # render thread: keep a reference, return
        with self._lock:
            self._latest = frame

    def _refresh(self) -> None:
        with self._lock:
            frame, self._latest = self._latest, None
        if frame is None:
            if not self.pipeline.running:
                self.close()
            return
        h, w, _ = frame.image.shape
        image = QImage(frame.image.data, w, h, 3 * w, QImage.Format.Format_RGB888)
        self.setPixmap(QPixmap.fromImage(image).scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                                       Qt.TransformationMode.SmoothTransformation))

    def closeEvent(self, event) -> None:
        self._timer.stop()
        self.pipeline.stop()
        super().closeEvent(event)


def run_preview_window(source, options: PipelineOptions, seconds: float | None = None) -> int:
    """Open the window on ``source`` (also feeding the virtual camera when its driver exists)."""
    app = QApplication.instance() or QApplication(sys.argv)
    sinks = [VirtualCameraSink()] if virtual_camera_status()[0] else []
    window = PreviewWindow(lambda on_frame: Pipeline(source, sinks, options, on_frame=on_frame))
    window.resize(960, 540)
    window.pipeline.start()
    window.show()
    if seconds is not None:
        QTimer.singleShot(int(seconds * 1000), window.close)
    app.exec()
    window.pipeline.stop()
    if window.pipeline.error is not None:
        raise window.pipeline.error
    return 0
