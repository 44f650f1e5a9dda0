"""A one-item, newest-wins hand-over between threads (DESIGN.md: video queues hold one item).

``put`` replaces an item nobody took (counted in ``dropped``); ``take`` returns the newest item
or None; ``wait`` blocks until an item is there, the deadline passes or the slot is closed.
"""

from __future__ import annotations

import threading
import time
from typing import Generic, TypeVar

T = TypeVar("T")


class NewestSlot(Generic[T]):
    """Thread-safe single-item mailbox where a newer item overwrites an older, untaken one."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._closed = False
        self.dropped = 0
        self.put_time = 0.0  # time.monotonic() when the waiting item arrived

    def put(self, item: T) -> None:
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self.put_time = time.monotonic()
            self._cond.notify_all()

    def take(self) -> T | None:
        """The newest item, removing it; None when empty."""
        with self._cond:
            item, self._item = self._item, None
            return item

    def take_timed(self) -> tuple[T | None, float, int]:
        """``take`` with, read under the same lock, when the item arrived and ``dropped`` so far."""
        with self._cond:
            item, self._item = self._item, None
            return item, self.put_time, self.dropped

    def wait(self, timeout: float | None = None) -> bool:
        """Block until an item is waiting (True), or timeout/closed (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._item is None and not self._closed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return self._item is not None

    def get(self, timeout: float | None = None) -> T | None:
        """Wait for an item and take it; None on timeout or when closed and empty."""
        return self.take() if self.wait(timeout) else None

    def close(self) -> None:
        """Wake every waiter; later waits return at once."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def waiting(self) -> bool:
        """Whether an item is there to take."""
        return self._item is not None

    @property
    def closed(self) -> bool:
        return self._closed
