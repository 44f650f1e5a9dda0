"""Audio sources: an audio file (or a video's audio track) and a microphone, read as 16 kHz mono
``AudioChunk``s stamped with the monotonic capture time of their first sample.

Every source follows the video sources' lifecycle: ``open()`` acquires the file or device (raising
``SourceError`` with a message and a hint); ``read()`` blocks until the next chunk is there and
returns it, or ``None`` at the end or once closed; ``close()`` is idempotent and may be called from
any thread while ``read()`` blocks, making it return promptly.

A file is *paced* like a live microphone: a chunk is released when its last sample is due on the
monotonic clock. Paired with a video file (``avatarcam run --video X --audio X``), both run on one
timeline: ``origin`` returns the monotonic time of media time 0 once the video has started, and the
audio takes that origin instead of its own, so sound and picture stay in sync.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import av
import numpy as np

from engine.capture.decode import audio_error, iter_blocks, open_audio
from engine.capture.resample import RATE, Resampler
from engine.capture.ring import AudioRing
from engine.errors import SourceError

log = logging.getLogger(__name__)

CHUNK_S = 0.01  # a file is released in 10 ms chunks, as a low-latency microphone delivers them
RECONNECT_S = 1.0  # a lost microphone is looked for again this often
STALL_S = 1.0  # no samples for this long from a running microphone: it is lost
FIRST_DATA_S = 5.0  # a just-opened stream may take a while (PulseAudio ~1 s under load) to deliver
ORIGIN_WAIT_S = 2.0  # how long a paired audio file waits for its video to start


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Consecutive 16 kHz mono float32 samples. ``t_capture``: monotonic time of the first sample."""

    samples: np.ndarray
    t_capture: float
    index: int

    @property
    def duration(self) -> float:
        return len(self.samples) / RATE

    @property
    def t_end(self) -> float:
        """Capture time just after the last sample."""
        return self.t_capture + self.duration


class AudioSource(Protocol):
    name: str
    status: str  # a line for the user: "ok", "microphone lost, waiting for it to return", ...

    def open(self) -> None: ...

    def read(self) -> AudioChunk | None: ...

    def close(self) -> None: ...


class AudioFileSource:
    """The audio of a WAV/MP3/FLAC/OGG file or the audio track of a video, paced like a microphone.

    ``paced=False`` delivers chunks as fast as they are read (t_capture = media time). ``origin``:
    see the module docstring. ``loop`` starts again at the end, the timeline running on.
    """

    def __init__(self, path: str | Path, *, paced: bool = True, loop: bool = False,
                 origin: Callable[[], float | None] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path)
        self.name = self.path.name
        self.paced = paced
        self.loop = loop
        self.status = "not started"
        self.rate = 0
        self.channels = 0
        self._origin_of = origin
        self._clock = clock
        self._origin: float | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._container = None
        self._blocks = None
        self._resampler: Resampler | None = None
        self._pending = np.zeros(0, dtype=np.float32)
        self._media_samples = 0  # 16 kHz samples delivered, across loops
        self._index = 0
        self._ended = False

    def open(self) -> None:
        if self._container is not None:
            return
        container, stream = open_audio(self.path)
        self.rate, self.channels = int(stream.rate), int(stream.channels)
        self._container, self._stream = container, stream
        self._blocks = iter_blocks(container, stream)
        self._resampler = Resampler(self.rate)
        self._stop.clear()
        try:
            first = self._decode_more()
        except SourceError:
            self.close()
            raise
        if not first:
            self.close()
            raise audio_error(self.path, "no audio could be decoded")
        self.status = f"ok: {self.name}, {self.rate} Hz, {self.channels} ch"

    def _decode_more(self) -> bool:
        """Decode until at least one chunk is pending; False at the true end."""
        need = int(CHUNK_S * RATE)
        while len(self._pending) < need and not self._ended:
            try:
                item = next(self._blocks, None)  # type: ignore[arg-type]
            except av.FFmpegError as exc:
                raise audio_error(self.path, "decoding failed", exc) from exc
            if item is None:
                tail = self._resampler(np.zeros((0,), dtype=np.float32), last=True) if self._resampler else np.zeros(0)
                self._pending = np.concatenate([self._pending, tail])
                if self.loop and self._container is not None:
                    self._container.seek(0)
                    self._blocks = iter_blocks(self._container, self._stream)
                    self._resampler = Resampler(self.rate)
                    continue
                self._ended = True
                break
            block, rate, _ = item
            self._pending = np.concatenate([self._pending, self._resampler(block)])  # type: ignore[misc]
        return len(self._pending) > 0

    def read(self) -> AudioChunk | None:
        with self._lock:
            if self._stop.is_set() or self._container is None:
                return None
            if not self._decode_more():
                self.status = "ended"
                return None
            need = int(CHUNK_S * RATE)
            samples, self._pending = self._pending[:need], self._pending[need:]
            media_t = self._media_samples / RATE
            self._media_samples += len(samples)
            index = self._index
            self._index += 1
        if not self.paced:
            return AudioChunk(samples, media_t, index)
        if self._origin is None:
            origin = None
            if self._origin_of is not None:  # the paired video fixes the timeline when it starts
                deadline = self._clock() + ORIGIN_WAIT_S
                while (origin := self._origin_of()) is None and self._clock() < deadline:
                    if self._stop.wait(0.005):
                        return None
            self._origin = origin if origin is not None else self._clock() - media_t
        due = self._origin + media_t + len(samples) / RATE  # a microphone has it once the last sample is in
        if self._stop.wait(max(0.0, due - self._clock())):
            return None
        return AudioChunk(samples, self._origin + media_t, index)

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            if self._container is not None:
                self._container.close()
                self._container = None
            self._blocks = None
            # soxr's native object must not outlive the interpreter (a session frozen by gc.freeze()
            # is never collected): nanobind would print its "leaked" report at exit.
            self._resampler = None
        self.status = "closed"


# --------------------------------------------------------------------------------------------
# Microphones


@dataclass(frozen=True, slots=True)
class MicrophoneInfo:
    index: int
    name: str
    channels: int
    default_rate: float


def list_microphones() -> list[MicrophoneInfo]:
    """Input devices PortAudio knows, in its order; empty when PortAudio or the device list fails."""
    try:
        import sounddevice as sd

        devices = sd.query_devices()
    except Exception as exc:
        log.info("cannot list microphones: %s", exc)
        return []
    return [MicrophoneInfo(i, d["name"], int(d["max_input_channels"]), float(d["default_samplerate"]))
            for i, d in enumerate(devices) if d["max_input_channels"] > 0]


def _describe(mics: list[MicrophoneInfo]) -> str:
    return "; ".join(f"{m.index}: {m.name}" for m in mics) or "none"


class MicrophoneSource:
    """A microphone through sounddevice (PortAudio), at its own rate and channel count, resampled
    to 16 kHz mono in the capture callback and handed over through an ``AudioRing``.

    ``device``: an index, part of a name (case-insensitive), or None for the default input; once
    opened, the device is followed by its name, never its index. A device missing at ``open`` is
    waited for like a lost one (``status`` says so), as the user asked for it.
    Overflows (the OS dropped input) are counted in ``overflows``, never fatal. When the device
    disappears (stream error or no samples for ``STALL_S``), ``status`` says so, ``read()`` keeps
    waiting, and the device is looked for again every ``RECONNECT_S`` (by name) until it returns.
    """

    def __init__(self, device: int | str | None = None, *, block_s: float = 0.01, ring_s: float = 4.0) -> None:
        self.device = device
        self.block_s = block_s
        self.name = str(device) if device is not None else "default microphone"
        self.status = "not started"
        self.rate = 0.0
        self.channels = 0
        self.overflows = 0
        self.reconnects = 0
        self._ring = AudioRing(ring_s)
        self._stream = None
        self._resampler: Resampler | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._last_data = 0.0
        self._opened_at = 0.0
        self._next_retry = 0.0
        self._index = 0
        self._lost = False
        self._identity: str | None = None  # the opened device's name, followed from then on

    @property
    def overrun_samples(self) -> int:
        return self._ring.overrun_samples

    def _resolve(self) -> MicrophoneInfo:
        mics = list_microphones()
        if not mics:
            raise SourceError("No microphone was found.", "Plug one in, or check the sound settings (PortAudio sees no input device).")
        if self._identity is not None:
            # Once opened, the device is followed by its name: after a replug another device may
            # hold its old index.
            found = next((m for m in mics if m.name == self._identity), None)
            if found is None:
                raise SourceError(f"No microphone '{self._identity}'.", f"Microphones: {_describe(mics)}.")
            return found
        if self.device is None:
            try:
                import sounddevice as sd

                default = sd.default.device[0]
            except Exception:
                default = -1
            return next((m for m in mics if m.index == default), mics[0])
        if isinstance(self.device, int) or str(self.device).isdigit():
            wanted = int(self.device)
            found = next((m for m in mics if m.index == wanted), None)
        else:
            text = str(self.device).lower()
            found = next((m for m in mics if m.name.lower() == text), None) or next(
                (m for m in mics if text in m.name.lower()), None)
        if found is None:
            raise SourceError(f"No microphone '{self.device}'.", f"Microphones: {_describe(mics)}.")
        return found

    def open(self) -> None:
        with self._lock:
            if self._stream is not None:
                return
            self._stop.clear()
            self._ring.reopen()
            self._portaudio()
            try:
                self._open_stream()
            except SourceError as exc:
                # Missing or busy at start: looked for every RECONNECT_S from read(), like a lost one.
                self._next_retry = time.monotonic() + RECONNECT_S
                self.status = f"microphone '{self.name}' not available: retrying every second ({exc})"
                log.warning(self.status)

    @staticmethod
    def _portaudio():
        try:
            import sounddevice as sd
        except OSError as exc:  # the PortAudio library itself is missing
            raise SourceError(f"Cannot use microphones: PortAudio is missing ({exc}).",
                              "Install it (Debian/Ubuntu: sudo apt install libportaudio2).") from exc
        return sd

    def _open_stream(self) -> None:
        sd = self._portaudio()
        info = self._resolve()
        self.name = info.name
        # Two channels are plenty (they are averaged); a device that only offers its full count gets it.
        tries = [max(1, min(info.channels, 2))] + ([info.channels] if info.channels > 2 else [])
        try:
            for i, channels in enumerate(tries):
                try:
                    stream = sd.InputStream(device=info.index, channels=channels, samplerate=info.default_rate or None,
                                            dtype="float32",
                                            blocksize=max(1, int(round(self.block_s * (info.default_rate or 48000)))),
                                            latency="low", callback=self._callback, finished_callback=self._finished)
                    break
                except sd.PortAudioError:
                    if i == len(tries) - 1:
                        raise
            self.rate = float(stream.samplerate)
            self.channels = channels
            self._resampler = Resampler(self.rate, quality="MQ")
            self._opened_at = time.monotonic()
            self._last_data = 0.0  # no samples yet
            stream.start()
        except Exception as exc:
            raise SourceError(f"Cannot open the microphone '{info.name}' ({exc}).",
                              "It may be in use by another program, or unplugged; check the sound settings.") from exc
        self._stream = stream
        self._identity = info.name
        self._lost = False
        self.status = f"ok: {info.name}, {self.rate:g} Hz, {channels} ch"

    def _callback(self, indata, frames, time_info, status) -> None:  # PortAudio's thread
        now = time.monotonic()
        if status.input_overflow:
            self.overflows += 1
        block = frames / self.rate
        t_first = now - block  # the block's first sample, if the driver handed it over at once
        try:
            # PortAudio's ADC time includes the driver's buffering; some backends (ALSA's PulseAudio
            # plugin) report nonsense here (half a second early), so it is trusted only when plausible.
            latency = float(time_info.currentTime) - float(time_info.inputBufferAdcTime)
            if block <= latency <= 2 * block + 0.05:
                t_first = now - latency
        except (AttributeError, TypeError, ValueError):
            pass
        samples = self._resampler(indata) if self._resampler else indata[:, 0]
        self._last_data = now
        if len(samples):
            # The resampler's output lags its input by its group delay.
            self._ring.write(samples, t_first - self._resampler.delay_s if self._resampler else t_first)

    def _finished(self) -> None:
        if not self._stop.is_set():
            self._lost = True

    def _check_device(self) -> None:
        """Notice a lost device and try to reopen it (called from ``read``)."""
        now = time.monotonic()
        with self._lock:
            if self._stop.is_set():
                return
            stalled = self._stream is not None and (
                now - self._last_data > STALL_S if self._last_data else now - self._opened_at > FIRST_DATA_S)
            if self._lost or stalled or (self._stream is not None and not self._stream.active):
                if self._stream is not None:
                    why = "no samples for %.1f s" % (now - (self._last_data or self._opened_at)) if stalled \
                        else "the stream stopped"
                    self._close_stream()
                    self.status = f"microphone '{self.name}' lost ({why}): waiting for it to return"
                    log.warning(self.status)
                    self._next_retry = now + RECONNECT_S
            if self._stream is None and now >= self._next_retry:
                self._next_retry = now + RECONNECT_S
                try:
                    self._reinitialise_portaudio()
                    self._open_stream()
                    self.reconnects += 1
                    log.warning("microphone '%s' is back", self.name)
                except SourceError as exc:
                    self.status = f"microphone '{self.name}' lost: waiting for it to return ({exc.message})"

    @staticmethod
    def _reinitialise_portaudio() -> None:
        # PortAudio lists devices once per initialisation: re-initialise to see a replugged one.
        import sounddevice as sd

        try:
            sd._terminate()
            sd._initialize()
        except Exception:
            pass

    def read(self) -> AudioChunk | None:
        while not self._stop.is_set():
            got = self._ring.read(timeout=0.05)
            if got is not None:
                samples, t_first = got
                self._index += 1
                return AudioChunk(samples, t_first, self._index - 1)
            self._check_device()
        return None

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.abort()
                stream.close()
            except Exception:
                pass
        self._resampler = None  # the callback has stopped; see AudioFileSource.close

    def close(self) -> None:
        self._stop.set()
        self._ring.close()
        with self._lock:
            self._close_stream()
        self.status = "closed"
