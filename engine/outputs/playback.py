"""Playing the avatar's speech to an output device the user picks (sounddevice / PortAudio).

Meeting apps take the sound from a microphone, so the usual device is a virtual one: a PulseAudio
null sink on Linux (its monitor is the microphone), VB-Cable on Windows, BlackHole on macOS (see
docs/TALKING.md). ``write`` queues samples; ``clear`` drops what is queued, so a stop is heard
within one device block.
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from engine.capture.resample import RATE
from engine.errors import SinkError

log = logging.getLogger(__name__)

BLOCK = 160  # 10 ms at 16 kHz: what ``clear`` can still let through
MAX_QUEUED_S = 0.2  # sound older than this (a device slow to start or stalled) is dropped: the mouth has moved on


def _device_hint() -> str:
    return ("List output devices with `python -m sounddevice`; for a virtual microphone create a PulseAudio null sink "
            "(`pactl load-module module-null-sink sink_name=avatarcam`) on Linux, or install VB-Cable (Windows) "
            "or BlackHole (macOS).")


class AudioPlayer:
    """16 kHz mono float32 to an output device (``None``: the default one). ``open`` raises ``SinkError``."""

    name = "speech output"

    def __init__(self, device: int | str | None = None) -> None:
        self.device = device
        self.samples_played = 0  # speech samples handed to the device (silence between utterances not counted)
        self.blocks_dropped = 0  # blocks dropped because the device fell behind
        self._lock = threading.Lock()
        self._queue: list[np.ndarray] = []
        self._stream = None

    def open(self) -> None:
        try:
            import sounddevice as sd

            self._stream = sd.OutputStream(samplerate=RATE, channels=1, dtype="float32", blocksize=BLOCK,
                                           device=self.device, callback=self._callback, latency="low")
            self._stream.start()
        except Exception as exc:  # PortAudio raises its own errors, or OSError without a library
            self._stream = None
            where = f" '{self.device}'" if self.device is not None else ""
            raise SinkError(f"The speech output device{where} could not be opened ({exc}).", hint=_device_hint()) from exc

    def write(self, samples: np.ndarray) -> None:
        """Queue samples to play; beyond ``MAX_QUEUED_S`` waiting, the oldest are dropped so the
        sound never falls behind the mouth that shows it."""
        with self._lock:
            self._queue.append(np.asarray(samples, dtype=np.float32).reshape(-1))
            excess = sum(len(b) for b in self._queue) - int(MAX_QUEUED_S * RATE)
            while excess > 0 and len(self._queue) > 1:
                excess -= len(self._queue.pop(0))
                self.blocks_dropped += 1

    @property
    def backlog_s(self) -> float:
        """Seconds of sound written and not yet taken by the device."""
        with self._lock:
            return sum(len(b) for b in self._queue) / RATE

    def clear(self) -> None:
        """Silence now: drop everything not yet handed to the device."""
        with self._lock:
            self._queue.clear()

    def _callback(self, outdata, frames, _time, _status) -> None:
        out = outdata[:, 0]
        filled = 0
        with self._lock:
            while filled < frames and self._queue:
                block = self._queue[0]
                n = min(frames - filled, len(block))
                out[filled:filled + n] = block[:n]
                filled += n
                if n == len(block):
                    self._queue.pop(0)
                else:
                    self._queue[0] = block[n:]
        out[filled:] = 0.0
        self.samples_played += filled

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.stop()
            stream.close()
