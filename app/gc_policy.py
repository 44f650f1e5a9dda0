"""Garbage collection only on the UI thread.

Python's cyclic garbage collector runs in whichever thread happens to allocate when a threshold
is crossed. If it frees a cycle that holds Qt objects on a worker thread (the engine's render,
tracking, audio or start-up threads), Qt destroys widgets off the UI thread and the app crashes.
So while the app runs, automatic collection is off and a timer on the UI thread collects
instead: young objects often, everything now and then. It also keeps GC pauses out of the render
thread.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QObject, QTimer

YOUNG_EVERY_MS = 500
FULL_EVERY_TICKS = 60  # a full collection every 30 s

_installed: QObject | None = None


def collect_on_ui_thread(app: QCoreApplication) -> None:
    """Turn automatic GC off and collect from a timer owned by ``app``. Idempotent."""
    global _installed
    if _installed is not None:
        return
    gc.disable()
    timer = QTimer(app)
    timer.setInterval(YOUNG_EVERY_MS)
    ticks = [0]

    def collect() -> None:
        ticks[0] += 1
        gc.collect(2 if ticks[0] % FULL_EVERY_TICKS == 0 else 1)

    timer.timeout.connect(collect)
    timer.start()
    _installed = timer
