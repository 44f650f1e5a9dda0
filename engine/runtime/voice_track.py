"""The voice analysis of a whole audio file, in a process of its own, ahead of the offline renderer.

Offline, the render thread would analyse the voice between frames, and on a small CPU that serial
work is on the render's critical path. A thread would take the GIL from the render thread's own
Python (its draw calls hold it); another process runs beside it on the other core. It reads the
same file into the same chunks and runs the same analysis, so its results are the ones the render
thread would have computed, and streams them back in order while the renderer draws.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Mapping
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from types import MappingProxyType

from engine.capture.audio import AudioFileSource
from engine.errors import AvatarcamError
from engine.packets import VoiceFrame
from engine.perception.voice.voice import VoiceAnalyzer, VoiceOptions

BATCH = 10  # chunk results per message (100 ms of audio)


class VoiceTrack:
    """The analysis of each chunk of ``path``'s audio (as ``AudioFileSource(path, paced=False)``
    reads it), by ``VoiceAnalyzer(options)`` in a child process: ``next()`` gives the ``VoiceFrame``
    (or None) of the next chunk, waiting for it. Raises ``AvatarcamError`` when the analysis
    failed. ``close()`` ends the child; idempotent."""

    def __init__(self, path: Path, options: VoiceOptions) -> None:
        context = multiprocessing.get_context("spawn")  # a fork would copy the caller's threads' locks
        self._conn, child = context.Pipe(duplex=False)
        self._process = context.Process(target=_analyse, args=(path, options, child), name="avatarcam-voice",
                                        daemon=True)
        self._process.start()
        child.close()
        self._ready: deque[VoiceFrame | None] = deque()

    def next(self) -> VoiceFrame | None:
        while not self._ready:
            try:
                message = self._conn.recv()
            except EOFError:
                raise AvatarcamError("The voice analysis stopped before the end of the audio.",
                                     "Check that the audio file is complete, then render again.") from None
            if isinstance(message, AvatarcamError):
                raise message
            self._ready.extend(message)
        return self._ready.popleft()

    def close(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()
        self._conn.close()


def _analyse(path: Path, options: VoiceOptions, conn: Connection) -> None:
    """The child: every chunk's result, in order, in batches; an ``AvatarcamError`` instead if one stops it."""
    ForkingPickler.register(MappingProxyType, lambda mapping: (_read_only, (dict(mapping),)))  # frames hold read-only maps
    analyzer = VoiceAnalyzer(options)
    source = AudioFileSource(path, paced=False)
    try:
        source.open()
        batch: list[VoiceFrame | None] = []
        while (chunk := source.read()) is not None:
            batch.append(analyzer.process(chunk.samples, chunk.t_capture))
            if len(batch) == BATCH:
                conn.send(batch)
                batch = []
        conn.send(batch)
    except AvatarcamError as exc:
        conn.send(exc)
    finally:
        source.close()
        analyzer.close()
        conn.close()


def _read_only(mapping: Mapping) -> MappingProxyType:
    return MappingProxyType(dict(mapping))
