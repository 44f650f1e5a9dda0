"""The preview widget paints the engine's frames as they come and shows a paused card when stopped."""

from __future__ import annotations

import threading

from app.main_window import PreviewView
from engine.capture.demo import DemoSource
from engine.runtime.pipeline import Pipeline, PipelineOptions


def test_preview_shows_frames_and_a_paused_card(qtbot, default_avatar_path):
    view = PreviewView()
    qtbot.addWidget(view)
    view.resize(480, 270)
    view.show()
    latest = []
    lock = threading.Lock()

    def on_frame(frame):  # render thread: keep a reference and return
        with lock:
            latest[:] = [frame]

    def show_newest():
        with lock:
            frame = latest.pop() if latest else None
        if frame is not None:
            view.set_frame(frame)
        return view.frames_shown

    options = PipelineOptions(size=(320, 180), avatar=default_avatar_path)
    with Pipeline(DemoSource(fps=30.0), [], options, on_frame=on_frame):
        qtbot.waitUntil(lambda: show_newest() >= 1, timeout=10_000)
        first = view.grab().toImage()
        qtbot.waitUntil(lambda: show_newest() >= 10 and view.grab().toImage() != first, timeout=10_000)  # it moves
    moving = view.grab().toImage()
    view.set_paused(True)
    paused = view.grab().toImage()
    assert paused != moving

    def brightness(image):
        return sum(image.pixelColor(x * image.width() // 20, y * image.height() // 20).lightness()
                   for x in range(20) for y in range(20))

    assert brightness(paused) < brightness(moving), "the paused card dims the last frame"
