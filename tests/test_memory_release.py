"""Memory a long session freed goes back to the system, so its footprint neither wanders nor creeps."""

from __future__ import annotations

import threading

import psutil
import pytest

from engine.runtime import memory

pytestmark = pytest.mark.skipif(memory._malloc_trim() is None, reason="needs glibc's malloc_trim (Linux)")


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def test_freed_blocks_between_live_ones_stop_counting_once_released():
    # 1 kB blocks come from malloc (not Python's small-object pools); keeping one in a hundred alive
    # leaves ~100 kB holes the allocator keeps resident, as frame buffers freed out of order do.
    blocks = [bytes(1000) for _ in range(100_000)]
    survivors = blocks[::100]
    del blocks
    before = _rss_mb()
    assert memory.release_free_memory()
    after = _rss_mb()
    assert before - after > 40, f"RSS {before:.0f} -> {after:.0f} MB: the ~95 MB of holes were not handed back"
    assert len(survivors) == 1000


def test_the_releaser_runs_until_stopped(monkeypatch):
    calls = threading.Semaphore(0)

    def counted_release() -> bool:
        calls.release()
        return True

    monkeypatch.setattr(memory, "release_free_memory", counted_release)
    stop = threading.Event()
    thread = threading.Thread(target=memory.release_periodically, args=(stop, 0.001))
    thread.start()
    try:
        assert calls.acquire(timeout=5) and calls.acquire(timeout=5), "released at least twice"
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
