"""Speech to say: the audio another program hands the avatar (a TTS voice), as an audio source.

``SpeechQueue`` meets ``AudioSource``: the voice stage reads it like a microphone, so the avatar
lip-syncs what it says through the same analysis as the user's own voice. Chunks are released on
the monotonic clock, 10 ms at a time, and each released chunk is handed to ``play`` at that moment
(the sound goes out as the mouth moves). ``backlog`` (seconds handed to ``play`` that the output
device has not taken yet) holds the release back while the device is behind: the mouth then
follows the sound as it is heard instead of running ahead of a queue that a device which started
late or stalled has built up (a standing 150-200 ms before, measured through PulseAudio). Between utterances it releases silence, so the mouth rests
and the stream never ends until closed. ``stop`` drops everything not yet released: the next chunk
is silence, so speech ends within one chunk (plus the output device's own buffer).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from engine.capture.audio import CHUNK_S, AudioChunk
from engine.capture.resample import RATE

MAX_BACKLOG_S = 0.03  # sound waiting for the output device beyond its own jitter (a few 10 ms blocks)


class SpeechEvent(StrEnum):
    STARTED = "speech_started"
    FINISHED = "speech_finished"
    INTERRUPTED = "interrupted"


@dataclass(slots=True)
class _Utterance:
    id: str
    blocks: deque = field(default_factory=deque)  # 16 kHz mono float32 arrays not yet released
    ended: bool = False  # the sender said all its audio is in
    started: bool = False


class SpeechQueue:
    """Thread-safe. ``on_event(event, utterance_id, reason)`` is called on the reading thread for
    STARTED and FINISHED and on the caller's thread for INTERRUPTED; it must return quickly."""

    name = "speech"

    def __init__(self, *, play: Callable[[np.ndarray], None] | None = None,
                 backlog: Callable[[], float] | None = None,
                 on_event: Callable[[SpeechEvent, str, str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.play = play
        self.backlog = backlog
        self.on_event = on_event
        self.status = "not started"
        self._clock = clock
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._utterances: deque[_Utterance] = deque()
        self._pending = np.zeros(0, dtype=np.float32)  # the current utterance's next samples
        self._origin = 0.0
        self._released = 0  # samples released since open
        self._index = 0

    @property
    def speaking(self) -> bool:
        with self._lock:
            return bool(self._utterances)

    def open(self) -> None:
        self._closed.clear()
        self._origin, self._released = self._clock(), 0
        self.status = "ok: waiting for speech"

    def speak(self, utterance_id: str, samples: np.ndarray, *, end: bool = False) -> None:
        """Add 16 kHz mono samples to utterance ``utterance_id`` (a new id queues a new utterance
        after the current one); ``end``: that was its last audio."""
        block = np.asarray(samples, dtype=np.float32).reshape(-1)
        with self._lock:
            utterance = next((u for u in self._utterances if u.id == utterance_id and not u.ended), None)
            if utterance is None:
                utterance = _Utterance(utterance_id)
                self._utterances.append(utterance)
            if len(block):
                utterance.blocks.append(block)
            utterance.ended = utterance.ended or end

    def end(self, utterance_id: str) -> None:
        """All of ``utterance_id``'s audio is in: it finishes once played."""
        self.speak(utterance_id, np.zeros(0, dtype=np.float32), end=True)

    def stop(self, reason: str = "stop") -> list[str]:
        """Silence now: drop every queued utterance; returns the ids interrupted."""
        with self._lock:
            dropped = [u.id for u in self._utterances]
            self._utterances.clear()
            self._pending = np.zeros(0, dtype=np.float32)
        for utterance_id in dropped:
            self._emit(SpeechEvent.INTERRUPTED, utterance_id, reason)
        return dropped

    def _emit(self, event: SpeechEvent, utterance_id: str, reason: str = "") -> None:
        if self.on_event is not None:
            self.on_event(event, utterance_id, reason)

    def _take(self, count: int) -> tuple[np.ndarray, list[tuple[SpeechEvent, str]]]:
        """The next ``count`` samples to release (silence where there is no speech) and the events
        they cause. Caller holds the lock."""
        out = np.zeros(count, dtype=np.float32)
        events: list[tuple[SpeechEvent, str]] = []
        filled = 0
        while filled < count and self._utterances:
            current = self._utterances[0]
            if not current.started:
                current.started = True
                events.append((SpeechEvent.STARTED, current.id))
            if not len(self._pending) and current.blocks:
                self._pending = current.blocks.popleft()
            if len(self._pending):
                n = min(count - filled, len(self._pending))
                out[filled:filled + n], self._pending = self._pending[:n], self._pending[n:]
                filled += n
            elif current.ended:
                self._utterances.popleft()
                events.append((SpeechEvent.FINISHED, current.id))
            else:
                break  # the sender is slower than real time: a gap of silence, still speaking
        return out, events

    def read(self) -> AudioChunk | None:
        count = int(CHUNK_S * RATE)
        due = self._origin + (self._released + count) / RATE
        if self._closed.wait(max(0.0, due - self._clock())):
            return None
        backlog = self.backlog
        while backlog is not None and backlog() > MAX_BACKLOG_S:
            # The device is behind: wait for it, and let the timeline slip with it (the chunk is
            # stamped when released, as a microphone would deliver it).
            if self._closed.wait(CHUNK_S):
                return None
            self._origin += CHUNK_S
        with self._lock:
            samples, events = self._take(count)
            t_first = self._origin + self._released / RATE
            self._released += count
            index, self._index = self._index, self._index + 1
            speaking = bool(self._utterances) or any(e is SpeechEvent.FINISHED for e, _ in events)
        for event, utterance_id in events:
            if event is SpeechEvent.STARTED:
                self._emit(event, utterance_id)
        if speaking and self.play is not None:
            self.play(samples)
        for event, utterance_id in events:
            if event is SpeechEvent.FINISHED:
                self._emit(event, utterance_id)
        return AudioChunk(samples, t_first, index)

    def close(self) -> None:
        self._closed.set()
        self.status = "closed"
