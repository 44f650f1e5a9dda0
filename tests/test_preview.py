"""The preview window shows the engine's frames and stops the pipeline when closed."""

from __future__ import annotations

from engine.demo import DemoSource
from engine.pipeline import Pipeline, PipelineOptions
from app.preview import PreviewWindow


def test_preview_shows_frames_and_close_stops_the_pipeline(qtbot, default_avatar_path):
    options = PipelineOptions(size=(320, 180), avatar=default_avatar_path)
    window = PreviewWindow(lambda on_frame: Pipeline(DemoSource(fps=30.0), [], options, on_frame=on_frame))
    qtbot.addWidget(window)
    window.show()
    window.pipeline.start()
    qtbot.waitUntil(lambda: window.pixmap() is not None and not window.pixmap().isNull(), timeout=10_000)
    first = window.pixmap().toImage()
    qtbot.waitUntil(lambda: window.pixmap().toImage() != first, timeout=10_000)  # the picture moves
    window.close()
    assert not window.pipeline.running
