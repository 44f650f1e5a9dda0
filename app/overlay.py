"""The latency overlay: fps, end-to-end p50/p95, per-stage times, modality mode, emotion and, with
the speak API on, the conversation state (idle / listening / speaking).

``overlay_lines`` turns ``Session.stats()`` into a few short lines; ``paint_overlay`` draws them on
the preview (QPainter); ``burn_in`` draws them into an outgoing RGB frame (OpenCV, any thread).
"""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter

from engine.runtime.stats import Stats

STAGES = ("capture", "track", "animate", "render", "enhance", "sink")


def overlay_lines(stats: Stats, mode: str, emotion: str | None = None) -> list[str]:
    """Short lines for the overlay; stages the session did not run are left out."""
    lines = [f"{stats.fps_now:4.1f} fps   e2e p50 {stats.e2e_ms_p50 or 0.0:5.1f} ms"
             f"  p95 {stats.e2e_ms_p95 or 0.0:5.1f} ms"]
    stages = [f"{name} {timing[0]:.1f}" for name in STAGES if (timing := stats.stage_ms(name)) is not None]
    if stages:
        lines.append("  ".join(stages) + " ms (p50)")
    lines.append(f"mode {mode}   emotion {emotion or 'n/a (not analysed)'}"
                 + (f"   speech {stats.speech_state}" if stats.speech_state else ""))
    lines.append(f"dropped {stats.frames_dropped}  missed {stats.frames_missed}  cpu {stats.cpu_cores:.2f} cores"
                 + (f"  drawn smaller {stats.frames_reduced}" if stats.frames_reduced else ""))
    if stats.enhance_status:
        lines.append(stats.enhance_status)
    return lines


def paint_overlay(painter: QPainter, area: QRectF, lines: list[str]) -> None:
    """Draw ``lines`` in a translucent box at the top left of ``area``."""
    if not lines:
        return
    font = QFont("monospace")
    font.setStyleHint(QFont.StyleHint.Monospace)
    font.setPointSizeF(9.0)
    painter.setFont(font)
    metrics = painter.fontMetrics()
    height = metrics.height()
    width = max(metrics.horizontalAdvance(line) for line in lines)
    box = QRectF(area.left() + 8, area.top() + 8, width + 16, height * len(lines) + 10)
    painter.fillRect(box, QColor(0, 0, 0, 150))
    painter.setPen(QColor(235, 240, 245))
    for i, line in enumerate(lines):
        painter.drawText(QRectF(box.left() + 8, box.top() + 5 + i * height, width + 8, height),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, line)


def burn_in(image: np.ndarray, lines: list[str]) -> np.ndarray:
    """A copy of ``image`` (H x W x 3 RGB) with ``lines`` drawn at the top left."""
    out = image.copy()
    scale = max(0.4, image.shape[0] / 1000.0)
    step = int(26 * scale) + 4
    width = max(cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] for line in lines)
    x0, y0 = 8, 8
    box = out[y0:y0 + step * len(lines) + 8, x0:x0 + width + 16]
    box[:] = (box * 0.4).astype(np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(out, line, (x0 + 8, y0 + step * (i + 1) - 4), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (235, 240, 245), 1, cv2.LINE_AA)
    return out
