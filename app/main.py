"""``avatarcam gui``: build the application and the main window, and run it.

``--demo`` starts the demo performance at once; ``--screenshot PATH --quit-after SECONDS`` writes a
PNG of the main window after that long and quits (docs and checks). The first run shows the consent
dialog (not in screenshot mode).
"""

from __future__ import annotations

import signal
from pathlib import Path

from PySide6.QtCore import QTimer

from engine.output_format import DEFAULT_FPS, DEFAULT_SIZE
from engine.render import colour_hex

from .indicator import app_icon
from .main_window import MainWindow
from .settings import AppSettings


def run_app(args) -> int:
    from engine.privacy import keep_everything_local
    keep_everything_local()  # before any library can phone home (native logs stay quiet by default)
    from . import qt_application

    app = qt_application()
    app.setApplicationName("avatarcam")
    app.setWindowIcon(app_icon(False))
    app.setQuitOnLastWindowClosed(True)
    settings = AppSettings.load()
    screenshot = getattr(args, "screenshot", None)
    quit_after = getattr(args, "quit_after", None)
    if getattr(args, "demo", False):
        settings.source = "demo"
    _apply_command_line(settings, args)
    window = MainWindow(settings)
    window.show()
    quit_on_signals(window)
    if getattr(args, "demo", False):
        QTimer.singleShot(0, window.start_demo)
    elif getattr(args, "video", None) or getattr(args, "image", None):
        window.add_file_source("video" if args.video else "image", args.video or args.image)
        QTimer.singleShot(0, window.start)
    elif not settings.first_run_done and screenshot is None:
        QTimer.singleShot(0, lambda: window.open_consent(first_run=True))
    if screenshot is not None or quit_after is not None:
        def finish() -> None:
            if screenshot is not None:
                Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
                window.grab().save(str(screenshot))
                print(screenshot)
            window.quit()

        QTimer.singleShot(int(1000 * (quit_after if quit_after is not None else 5.0)), finish)
    return app.exec()


def quit_on_signals(window: MainWindow) -> QTimer:
    """SIGINT, SIGTERM and SIGHUP (``kill``, a logout) quit like the window's Quit: the session
    stops as with the Stop button, devices released and recordings finalised. Python runs signal
    handlers only between bytecodes, so a timer hands the interpreter a turn while Qt waits."""
    from engine.commands.cli import STOP_SIGNALS

    for number in STOP_SIGNALS:
        signal.signal(number, lambda *_: QTimer.singleShot(0, window.quit))
    wake = QTimer(window, interval=200, timeout=lambda: None)
    wake.start()
    return wake


def _apply_command_line(settings: AppSettings, args) -> None:
    """``--size``, ``--fps``, ``--avatar``, ``--background`` given on the command line win (and are
    remembered like a choice made in the window); their defaults leave the settings alone."""
    size, fps = getattr(args, "size", None), getattr(args, "fps", None)
    if size and tuple(size) != DEFAULT_SIZE:
        settings.size = tuple(size)
    if fps and fps != DEFAULT_FPS:
        settings.fps = float(fps)
    avatar = getattr(args, "avatar", None)
    if avatar and avatar != "default":
        settings.avatar = str(Path(avatar).expanduser())
        settings.add_recent(settings.avatar)
    background = getattr(args, "background", None)
    if background is not None:
        settings.background = colour_hex(background)
