"""Screenshots of the app for the docs: ``python -m app.screenshots docs/images [--image PORTRAIT]``.

The calibration shot uses ``--image`` (a still or a video; a talking clip makes the meters move).
Run under a display (``xvfb-run -a -s "-screen 0 1600x1000x24" ...`` on a headless machine). Uses a
throw-away config folder, so your own settings and profiles are neither used nor changed. Writes
gui-main.png (demo running, latency overlay on), gui-consent.png, gui-settings.png (virtual-camera
diagnostics) and, when a portrait is given, gui-calibration.png (after a capture on the still image).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QWidget


def _pump(seconds: float, until=None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (until and until()):
        QApplication.processEvents()
        time.sleep(0.01)


def _save(widget: QWidget, path: Path, width: int) -> None:
    image = widget.grab().toImage()
    if image.width() > width:
        image = image.scaledToWidth(width, Qt.TransformationMode.SmoothTransformation)
    image.save(str(path))
    print(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--image", type=Path, help="a face image or video to calibrate on (e.g. ../shared/media/talking_d6.mp4)")
    parser.add_argument("--width", type=int, default=960, help="largest width of a saved PNG")
    args = parser.parse_args(argv)
    os.environ["AVATARCAM_CONFIG_DIR"] = tempfile.mkdtemp(prefix="avatarcam-shots-")
    args.folder.mkdir(parents=True, exist_ok=True)

    from . import qt_application
    from .main_window import MainWindow
    from .settings import AppSettings

    qt_application()  # the QApplication lives for the process
    settings = AppSettings(first_run_done=True, overlay=True)
    settings.consent["camera"] = True
    window = MainWindow(settings, cameras=[])
    window.show()
    window.start_demo()
    _pump(6.0)
    _save(window, args.folder / "gui-main.png", args.width)

    consent = window.open_consent(first_run=True)
    _pump(0.5)
    _save(consent, args.folder / "gui-consent.png", args.width)
    consent.close()

    dialog = window.open_settings("virtual camera")
    _pump(2.0, until=lambda: "Checking" not in dialog.vc_status.text())
    _pump(0.3)
    _save(dialog, args.folder / "gui-settings.png", args.width)
    dialog.close()

    if args.image:
        window.calibration_time_scale = 0.3
        kind = "image" if args.image.suffix.lower() in (".jpg", ".jpeg", ".png") else "video"
        window.add_file_source(kind, args.image)
        window.start()
        _pump(60.0, until=lambda: window.bridge.running and window.bridge.spec is not None and window.bridge.spec.source == kind
              and window.bridge.latest_face is not None)
        wizard = window.open_calibration()
        wizard.begin()
        done = []
        wizard.finishedCapture.connect(lambda: done.append(True))
        _pump(30.0, until=lambda: bool(done))
        wizard.name_edit.setText("Me")
        wizard.save_profile("Me")
        _pump(1.5)
        _save(wizard, args.folder / "gui-calibration.png", args.width)
        wizard.close()
    window.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
