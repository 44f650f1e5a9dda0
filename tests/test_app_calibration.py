"""The calibration wizard on a real video source: the saved profile's neutral offsets are the resting
face's blendshapes, and the profile is applied to the engine and listed in the main window."""

from __future__ import annotations

import numpy as np
import pytest
import pyvirtualcam
from conftest import shared_file
from fakes import FakeBackend
from PySide6.QtCore import QPoint, Qt
from test_app import make_window

from app.calibration_wizard import CalibrationWizard
from engine.capture.video import ImageSource
from engine.perception.face_tracker import FaceTracker, FaceTrackerOptions
from engine.profiles import ProfileStore


def resting_face_blendshapes(path, face_model) -> dict[str, float]:
    """What MediaPipe reads on the still portrait, outside the app."""
    with ImageSource(path, paced=False, seconds=0.2, fps=30) as source:
        tracker = FaceTracker(FaceTrackerOptions(model_path=face_model))
        try:
            faces = [tracker.process(frame) for frame in iter(source.read, None)]
        finally:
            tracker.close()
    assert all(f.present for f in faces)
    return {name: float(np.median([f.blendshapes[name] for f in faces])) for name in faces[0].blendshapes}


def test_wizard_on_a_resting_face_saves_its_neutral_offsets(qtbot, tmp_path, monkeypatch, backends, face_model):
    portrait = shared_file("media/portrait_s0.jpg")
    monkeypatch.setenv("AVATARCAM_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("AVATARCAM_MODEL_DIR", str(face_model.parent))
    pyvirtualcam.register_backend("fake", FakeBackend)
    window = make_window(qtbot, tmp_path)
    window.calibration_time_scale = 0.15  # 0.45 s of resting face, 0.3 s per expression
    window.add_file_source("image", portrait)
    qtbot.mouseClick(window.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.bridge.running and window.bridge.latest_face is not None, timeout=30_000)

    wizard: CalibrationWizard = window.open_calibration()
    assert wizard.start_button.isEnabled()
    with qtbot.waitSignal(wizard.finishedCapture, timeout=30_000):
        qtbot.mouseClick(wizard.start_button, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(wizard.name_edit, "Portrait")
    qtbot.mouseClick(wizard.save_button, Qt.MouseButton.LeftButton)

    store = ProfileStore(tmp_path / "config" / "profiles")
    assert store.names() == ["Portrait"]
    profile = store.load("Portrait")
    expected = resting_face_blendshapes(portrait, face_model)
    worst = max(abs(profile.neutral[name] - value) for name, value in expected.items())
    assert worst < 0.01, f"neutral offsets differ from the resting face by up to {worst:.4f}"
    assert max(expected.values()) > 0.1, "the portrait's resting face is not all zeros: the check means something"
    # A still face cannot show a maximum: gains stay as they were.
    assert profile.gain["eyeBlinkLeft"] == pytest.approx(1.4)
    # Applied to the engine and chosen in the main window.
    assert window.bridge.calibration.neutral == profile.neutral
    assert window.profile_box.currentData() == "Portrait" and window.settings.profile == "Portrait"

    # Live meters show the calibrated (resting = 0) values; the gain slider changes the engine's gain.
    qtbot.waitUntil(lambda: max(m.value() for m in wizard.meters.values()) <= 2, timeout=5_000)
    wizard.gains["jawOpen"].setValue(250)
    assert window.bridge.calibration.gain["jawOpen"] == 2.5

    assert wizard.rename_profile("Portrait", "Portrait 2")
    assert store.names() == ["Portrait 2"]
    wizard.close()

    # The optional camera self-view shows the source's picture in a corner of the preview.
    assert window.preview.self_view is None
    qtbot.mouseClick(window.self_view_box, Qt.MouseButton.LeftButton, pos=QPoint(8, window.self_view_box.height() // 2))
    qtbot.waitUntil(lambda: window.preview.self_view is not None, timeout=5_000)
    assert window.preview.self_view.width() >= 120
    window.close()
