"""A capture device that survives being unplugged: ``ReconnectingSource`` wraps a camera source.

When the device stops delivering (``read`` raises ``SourceError``), the wrapper releases it, says
"camera lost, waiting" in ``status`` and tries to open it again every ``RETRY_S`` while ``read``
keeps blocking, so the pipeline goes on rendering the idle avatar instead of ending. The inner
source reopens the device by its identity (``CameraSource`` follows the camera's name), so another
device that took its index is not picked up. Failing to open at start is still the caller's error.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from engine.capture.wrapper import SourceWrapper
from engine.errors import SourceError
from engine.stages import Source

log = logging.getLogger(__name__)

RETRY_S = 1.0  # a lost device is looked for again this often


class ReconnectingSource(SourceWrapper[Source]):
    """``inner`` with device loss survived; everything else passes through."""

    def __init__(self, inner: Source, *, retry_s: float = RETRY_S) -> None:
        super().__init__(inner)
        self.retry_s = retry_s
        self.status: str | None = None  # None while the device delivers; a line for the user when not
        self.reconnects = 0
        self._closed = threading.Event()
        self._lock = threading.Lock()  # an (re)open and close() never overlap: no device left open

    def open(self) -> None:
        with self._lock:
            self._closed.clear()
            self.inner.open()
        self.status = None

    def read(self) -> Any:
        while not self._closed.is_set():
            try:
                return self.inner.read()
            except SourceError as exc:
                self.inner.close()
                self.status = "camera lost, waiting"
                log.warning("%s (%s)", self.status, exc.message)
            self._wait_for_device()
        return None

    def _wait_for_device(self) -> None:
        while not self._closed.wait(self.retry_s):
            with self._lock:
                if self._closed.is_set():
                    return
                try:
                    self.inner.open()
                except SourceError as exc:
                    log.info("camera still away: %s", exc.message)
                    continue
            self.reconnects += 1
            self.status = None
            log.warning("the camera is back")
            return

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            self.inner.close()
