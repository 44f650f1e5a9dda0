"""Sources wrapped in another source that adds one behaviour and passes everything else through.

``SourceWrapper`` is the pass-through: attributes it does not define are the inner source's (its
``caps``, ``frames_skipped``, a camera's name, a microphone's ``status``), and ``open``/``read``/
``close`` call the inner ones. ``ReportingSource`` (here) reports a device opening and closing;
``ReconnectingSource`` (reconnect.py) survives a camera being unplugged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar


class Capture(Protocol):
    """What every wrapped source does: a video ``Source`` (engine/stages.py) or an ``AudioSource``."""

    def open(self) -> None: ...

    def read(self) -> Any: ...

    def close(self) -> None: ...


C = TypeVar("C", bound=Capture)


class SourceWrapper(Generic[C]):
    """``inner`` unchanged; subclasses override what they add."""

    def __init__(self, inner: C) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def open(self) -> None:
        self.inner.open()

    def read(self) -> Any:
        return self.inner.read()

    def close(self) -> None:
        self.inner.close()


class ReportingSource(SourceWrapper[C]):
    """Reports opening and releasing the device (``on_change(is_open)``, once per change), also
    when it ends or fails."""

    def __init__(self, inner: C, on_change: Callable[[bool], None]) -> None:
        super().__init__(inner)
        self._on_change = on_change
        self._lock = threading.Lock()
        self.is_open = False

    def _report(self, is_open: bool) -> None:
        with self._lock:
            if self.is_open == is_open:
                return
            self.is_open = is_open
        self._on_change(is_open)

    def open(self) -> None:
        super().open()
        self._report(True)

    def read(self) -> Any:
        try:
            item = super().read()
        except BaseException:
            self.close()
            raise
        if item is None:
            self.close()
        return item

    def close(self) -> None:
        super().close()
        self._report(False)
