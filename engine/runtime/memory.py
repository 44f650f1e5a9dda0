"""Handing freed memory back to the system while a session runs for hours.

Every frame, several threads allocate and free buffers of a frame's size (2.7 MB at 720p: the
decoded camera image, the rendered picture, their copies). glibc serves them from per-thread arenas
(its mmap threshold rises past their size after the first one is freed) and keeps what is freed
there for reuse: the free space between live blocks stays resident. The process's memory then
wanders over a band of several MB and creeps up as the arenas' high-water marks rise, which a user
(and a soak) cannot tell from a leak. ``malloc_trim`` returns every whole free page to the system:
once a minute, from a background thread, it costs a few milliseconds and keeps the resident size
at what is really in use (measured in docs/PERFORMANCE.md, "Third pass").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
from collections.abc import Callable
from functools import cache

TRIM_EVERY_S = 60.0


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (macOS, Windows, musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_free_memory() -> bool:
    """Return the allocator's free pages to the system; False where that is not possible here."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def release_periodically(stop: threading.Event, every_s: float = TRIM_EVERY_S) -> None:
    """Until ``stop`` is set, release free memory every ``every_s`` seconds (a thread's target)."""
    if _malloc_trim() is None:
        return
    while not stop.wait(every_s):
        release_free_memory()
