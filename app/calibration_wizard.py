"""The calibration wizard: a 3 s neutral capture, then guided maximum expressions (smile, brows up,
jaw open, each eye closed, pucker, frown); afterwards live per-control meters with gain sliders, and
named profiles (save, rename, delete) applied by the engine's animation stage at once.

The wizard reads raw perception results from the running pipeline (``EngineBridge.face_listeners``);
``engine.calibration.CalibrationSession`` turns them into numbers. No image is kept.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from engine.calibration import CALIBRATION_STEPS, NEUTRAL_STEP, Calibration, CalibrationSession, CalibrationStep
from engine.errors import AvatarcamError
from engine.profiles import ProfileStore
from engine.session import SourceKind

METER_CONTROLS: tuple[str, ...] = tuple(dict.fromkeys(c for step in CALIBRATION_STEPS for c in step.controls))
GAIN_SCALE = 100  # slider units per 1.0 of gain


class CalibrationWizard(QDialog):
    profileSaved = Signal(str)
    profilesChanged = Signal()
    finishedCapture = Signal()

    def __init__(self, bridge, profiles: ProfileStore, parent: QWidget | None = None, *,
                 time_scale: float = 1.0) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.profiles = profiles
        self.time_scale = time_scale
        self.steps: list[CalibrationStep] = [NEUTRAL_STEP, *CALIBRATION_STEPS]
        self.session: CalibrationSession | None = None
        self.calibration: Calibration = bridge.calibration
        self._index = -1
        self._step_end = 0.0
        self.setWindowTitle("Calibrate your face")
        self.setMinimumSize(640, 640)
        layout = QVBoxLayout(self)
        self.prompt = QLabel()
        self.prompt.setWordWrap(True)
        self.prompt.setStyleSheet("font-size: 18px; font-weight: 600; padding: 6px 0;")
        layout.addWidget(self.prompt)
        self.detail = QLabel()
        self.detail.setWordWrap(True)
        self.detail.setStyleSheet("color: #8a939d;")
        layout.addWidget(self.detail)
        self.countdown = QProgressBar()
        self.countdown.setRange(0, 1000)
        self.countdown.setTextVisible(False)
        layout.addWidget(self.countdown)
        row = QHBoxLayout()
        self.start_button = QPushButton("Start calibration")
        self.start_button.clicked.connect(self.begin)
        self.skip_button = QPushButton("Skip this expression")
        self.skip_button.clicked.connect(self.skip)
        self.skip_button.setEnabled(False)
        row.addWidget(self.start_button)
        row.addWidget(self.skip_button)
        row.addStretch(1)
        layout.addLayout(row)

        grid_host = QWidget()
        grid = QGridLayout(grid_host)
        grid.setColumnStretch(1, 1)
        grid.addWidget(QLabel("<b>control</b>"), 0, 0)
        grid.addWidget(QLabel("<b>live (calibrated)</b>"), 0, 1)
        grid.addWidget(QLabel("<b>gain</b>"), 0, 2)
        grid.addWidget(QLabel("<b>neutral · max</b>"), 0, 3)
        self.meters: dict[str, QProgressBar] = {}
        self.gains: dict[str, QSlider] = {}
        self.numbers: dict[str, QLabel] = {}
        for row_index, name in enumerate(METER_CONTROLS, start=1):
            grid.addWidget(QLabel(name), row_index, 0)
            meter = QProgressBar()
            meter.setRange(0, 100)
            meter.setTextVisible(False)
            meter.setMaximumHeight(12)
            grid.addWidget(meter, row_index, 1)
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setRange(50, 400)
            slider.setFixedWidth(140)
            slider.valueChanged.connect(lambda value, name=name: self._gain_changed(name, value))
            grid.addWidget(slider, row_index, 2)
            numbers = QLabel()
            numbers.setStyleSheet("color: #8a939d; font-family: monospace;")
            grid.addWidget(numbers, row_index, 3)
            self.meters[name], self.gains[name], self.numbers[name] = meter, slider, numbers
        grid.setRowStretch(len(METER_CONTROLS) + 1, 1)
        scroll = QScrollArea()
        scroll.setWidget(grid_host)
        scroll.setWidgetResizable(True)
        layout.addWidget(scroll, 1)

        row = QHBoxLayout()
        row.addWidget(QLabel("Profile"))
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("e.g. Me, office light")
        row.addWidget(self.name_edit, 1)
        self.save_button = QPushButton("Save profile")
        self.save_button.clicked.connect(lambda: self.save_profile(self.name_edit.text()))
        row.addWidget(self.save_button)
        layout.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(QLabel("Saved"))
        self.profile_box = QComboBox()
        row.addWidget(self.profile_box, 1)
        self.load_button = QPushButton("Use")
        self.load_button.clicked.connect(self._use_selected)
        self.rename_button = QPushButton("Rename…")
        self.rename_button.clicked.connect(self._rename_selected)
        self.delete_button = QPushButton("Delete")
        self.delete_button.clicked.connect(self._delete_selected)
        for button in (self.load_button, self.rename_button, self.delete_button):
            row.addWidget(button)
        layout.addLayout(row)
        self.fill_profiles()
        self._show_calibration()

        self._tick = QTimer(self, interval=50, timeout=self._on_tick)
        self._meter_timer = QTimer(self, interval=66, timeout=self._update_meters)
        self._meter_timer.start()
        self._idle_prompt()

    # --- capture --------------------------------------------------------------------------------

    def _has_face_source(self) -> bool:
        spec = self.bridge.spec
        return bool(self.bridge.running and spec is not None and spec.source is not SourceKind.DEMO)

    def _idle_prompt(self) -> None:
        if self._has_face_source():
            self.prompt.setText("Sit as you normally do, facing the camera.")
            self.detail.setText("First 3 seconds of your relaxed face, then a few expressions, each held for 2 "
                                "seconds as far as is comfortable. Only numbers are kept, never pictures.")
        else:
            self.prompt.setText("Start the camera first.")
            self.detail.setText("Close this window, choose your camera and press Start; the demo performance "
                                "cannot be calibrated.")
        self.start_button.setEnabled(self._has_face_source())

    def begin(self) -> None:
        if not self._has_face_source():
            self._idle_prompt()
            return
        self.session = CalibrationSession(base=self.calibration)
        self.bridge.face_listeners.append(self.session.add)
        self.start_button.setEnabled(False)
        self.skip_button.setEnabled(True)
        self._index = -1
        self._next_step()
        self._tick.start()

    def _next_step(self) -> None:
        assert self.session is not None
        if self._index >= 0:
            self.session.end()
        self._index += 1
        if self._index >= len(self.steps):
            self._finish()
            return
        step = self.steps[self._index]
        self.session.begin(step.name)
        self._step_started = time.monotonic()
        self._step_end = self._step_started + step.seconds * self.time_scale
        self.prompt.setText(f"{self._index + 1}/{len(self.steps)} — {step.prompt}")
        self.detail.setText("Hold it…" if step.controls else "Keep still and relaxed.")
        self.skip_button.setEnabled(bool(step.controls))

    def skip(self) -> None:
        if self.session is not None and self._index >= 0:
            self.session.begin(self.steps[self._index].name)  # forget what this step collected
            self._next_step()

    def _on_tick(self) -> None:
        if self.session is None or self._index < 0:
            return
        span = max(1e-6, self._step_end - self._step_started)
        self.countdown.setValue(int(1000 * min(1.0, (time.monotonic() - self._step_started) / span)))
        if time.monotonic() >= self._step_end:
            if self.steps[self._index] is NEUTRAL_STEP and self.session.count(NEUTRAL_STEP.name) == 0:
                self.detail.setText("No face seen yet — look at the camera.")
                self._step_end = time.monotonic() + 0.5 * self.time_scale
                return
            self._next_step()

    def _finish(self) -> None:
        self._tick.stop()
        session, self.session = self.session, None
        if session is not None and session.add in self.bridge.face_listeners:
            self.bridge.face_listeners.remove(session.add)
        self.calibration = session.result() if session is not None else self.calibration
        self.bridge.set_calibration(self.calibration)
        self.countdown.setValue(1000)
        self.prompt.setText("Done. Check the meters, adjust gains, then save a profile.")
        self.detail.setText("Each meter shows the control as the avatar gets it; a gain above 1 makes a small "
                            "movement reach the full expression.")
        self.skip_button.setEnabled(False)
        self.start_button.setText("Calibrate again")
        self.start_button.setEnabled(True)
        self._show_calibration()
        self.finishedCapture.emit()

    # --- meters and gains -----------------------------------------------------------------------

    def _show_calibration(self) -> None:
        cal = self.calibration
        for name in METER_CONTROLS:
            slider = self.gains[name]
            slider.blockSignals(True)
            slider.setValue(round(cal.gain.get(name, 1.0) * GAIN_SCALE))
            slider.blockSignals(False)
            self._show_numbers(name)

    def _show_numbers(self, name: str) -> None:
        cal = self.calibration
        maximum = cal.maximum.get(name)
        self.numbers[name].setText(f"×{cal.gain.get(name, 1.0):.2f}  {cal.neutral.get(name, 0.0):.2f} · "
                                   f"{'—' if maximum is None else f'{maximum:.2f}'}")

    def _gain_changed(self, name: str, value: int) -> None:
        self.calibration.gain[name] = value / GAIN_SCALE
        self.bridge.set_calibration(self.calibration)
        self._show_numbers(name)

    def _update_meters(self) -> None:
        face = self.bridge.latest_face
        if face is None or not face.present:
            return
        values = self.calibration.apply(face.blendshapes)
        for name, meter in self.meters.items():
            meter.setValue(round(100 * values[name]))

    # --- profiles -------------------------------------------------------------------------------

    def fill_profiles(self, select: str | None = None) -> None:
        self.profile_box.clear()
        for name in self.profiles.names():
            self.profile_box.addItem(name)
        if select:
            self.profile_box.setCurrentText(select)
        has = self.profile_box.count() > 0
        for button in (self.load_button, self.rename_button, self.delete_button):
            button.setEnabled(has)

    def _error(self, exc: AvatarcamError) -> None:
        QMessageBox.warning(self, "Calibration profile", str(exc))

    def save_profile(self, name: str) -> bool:
        try:
            name = self.profiles.check_name(name)
            self.profiles.save(name, self.calibration)
        except AvatarcamError as exc:
            self._error(exc)
            return False
        self.fill_profiles(select=name)
        self.profileSaved.emit(name)
        return True

    def _use_selected(self) -> None:
        name = self.profile_box.currentText()
        try:
            self.calibration = self.profiles.load(name)
        except AvatarcamError as exc:
            self._error(exc)
            return
        self._show_calibration()
        self.profileSaved.emit(name)

    def _rename_selected(self) -> None:
        old = self.profile_box.currentText()
        new, ok = QInputDialog.getText(self, "Rename profile", "New name", text=old)
        if ok:
            self.rename_profile(old, new)

    def rename_profile(self, old: str, new: str) -> bool:
        try:
            self.profiles.rename(old, new)
        except AvatarcamError as exc:
            self._error(exc)
            return False
        self.fill_profiles(select=new.strip())
        self.profilesChanged.emit()
        return True

    def _delete_selected(self) -> None:
        name = self.profile_box.currentText()
        answer = QMessageBox.question(self, "Delete profile", f"Delete the calibration profile '{name}'?")
        if answer == QMessageBox.StandardButton.Yes:
            self.profiles.delete(name)
            self.fill_profiles()
            self.profilesChanged.emit()

    def done(self, result: int) -> None:
        self._tick.stop()
        self._meter_timer.stop()
        if self.session is not None and self.session.add in self.bridge.face_listeners:
            self.bridge.face_listeners.remove(self.session.add)
        super().done(result)
