"""avatarcam desktop UI (PySide6). Imports the engine; the engine never imports this package."""

from __future__ import annotations

import os
import sys


def qt_application():
    """The QApplication, created once.

    OpenCV's wheels point ``QT_QPA_PLATFORM_PLUGIN_PATH`` at their own Qt plugins when ``cv2`` is
    imported; PySide6 would then load an incompatible xcb plugin and abort. Drop that setting first.
    """
    from PySide6.QtWidgets import QApplication

    path = os.environ.get("QT_QPA_PLATFORM_PLUGIN_PATH", "")
    if "cv2" in path:
        del os.environ["QT_QPA_PLATFORM_PLUGIN_PATH"]
    return QApplication.instance() or QApplication(sys.argv[:1])
