"""The speak API: on the local authenticated WebSocket, another program makes the avatar speak.

Same server, port and token rules as the data stream (``WebSocketOutput``: loopback unless the user
names a host; ``?token=`` or ``Authorization: Bearer``; a client without the token is refused
before it can send anything). A client sends (docs/MESSAGES.md, "Speak API"):

* ``{"type": "speak", "id": "u1", "emotion": "happy", "rate": 24000, "channels": 1}`` to open an
  utterance (every field optional: id generated, no emotion hint, PCM at 16 kHz mono),
* then binary messages: raw PCM16 little-endian chunks at that rate (streaming TTS), or one whole
  WAV file (any rate/channels; it carries its own header),
* ``{"type": "speak_end"}`` when all its audio is sent (the utterance finishes once played; a WAV
  sent alone after ``speak`` ends its utterance by itself),
* ``{"type": "stop"}`` to silence the avatar now.

Every client receives ``speech_event`` messages: ``speech_started``, ``speech_finished``,
``interrupted`` (reason ``stop`` or ``barge_in``), ``state`` changes (idle/listening/speaking) and
``rejected`` (a malformed request, with the reason).
"""

from __future__ import annotations

import io
import json
import logging
import uuid
import weakref
from dataclasses import dataclass
from typing import Any, Protocol

import av
import numpy as np

from engine.capture.resample import to_mono_16k
from engine.outputs.websocket import WebSocketOutput
from engine.vocabulary.emotions import EMOTIONS

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 32 * 1024 * 1024  # a WAV of a few minutes


class SpeakControl(Protocol):
    """What the speak API drives (``engine.runtime.speaking.Speaking``)."""

    def speak(self, utterance_id: str, samples: np.ndarray, *, end: bool, emotion: str | None) -> None: ...

    def stop(self, reason: str) -> None: ...

    def reject(self, reason: str) -> None: ...


@dataclass(slots=True)
class _Request:
    id: str
    emotion: str | None = None
    rate: int = 16000
    channels: int = 1


def decode_wav(data: bytes) -> np.ndarray:
    """A WAV (or any audio file FFmpeg reads) held in memory -> 16 kHz mono float32. Raises ValueError."""
    from engine.capture.decode import iter_blocks

    try:
        with av.open(io.BytesIO(data)) as container:
            if not container.streams.audio:
                raise ValueError("the file has no audio")
            stream = container.streams.audio[0]
            blocks = [(block, rate) for block, rate, _ in iter_blocks(container, stream)]
    except av.FFmpegError as exc:
        raise ValueError(f"not a readable audio file ({exc})") from None
    if not blocks:
        raise ValueError("no audio could be decoded")
    return to_mono_16k(np.concatenate([b for b, _ in blocks]), blocks[0][1])


def decode_pcm16(data: bytes, rate: int, channels: int) -> np.ndarray:
    if len(data) % (2 * channels):
        raise ValueError(f"a PCM16 chunk of {len(data)} bytes is not whole {channels}-channel frames")
    samples = np.frombuffer(data, dtype="<i2").astype(np.float32).reshape(-1, channels) / 32768.0
    return to_mono_16k(samples, rate)


class SpeakServer(WebSocketOutput):
    """The data stream's server that also takes speak requests; ``control`` is set before ``start``."""

    max_message_bytes = MAX_MESSAGE_BYTES

    def __init__(self, host: str = "127.0.0.1", port: int = 8765, **kwargs: Any) -> None:
        super().__init__(host, port, **kwargs)
        self.control: SpeakControl | None = None
        # Per connection: the utterance being sent (forgotten with the connection).
        self._requests: weakref.WeakKeyDictionary[Any, _Request] = weakref.WeakKeyDictionary()

    def send_event(self, message: dict[str, Any]) -> None:
        """Queue an event for every client, never rate-limited (events are rare and each matters)."""
        if self._loop is None:
            return
        text = json.dumps(message, separators=(",", ":"))
        try:
            self._loop.call_soon_threadsafe(self._enqueue, text)
        except RuntimeError:  # the loop is closing
            pass

    async def on_client_message(self, websocket, message: str | bytes) -> None:
        control = self.control
        if control is None:
            return
        key = websocket
        try:
            if isinstance(message, bytes):
                request = self._requests.get(key) or _Request(uuid.uuid4().hex[:8])
                if message[:4] == b"RIFF":
                    control.speak(request.id, decode_wav(message), end=True, emotion=request.emotion)
                    self._requests.pop(key, None)
                else:
                    self._requests[key] = request
                    control.speak(request.id, decode_pcm16(message, request.rate, request.channels), end=False,
                                  emotion=request.emotion)
                return
            command = json.loads(message)
            kind = command.get("type") if isinstance(command, dict) else None
            if kind == "speak":
                emotion = command.get("emotion")
                if emotion is not None and emotion not in EMOTIONS:
                    raise ValueError(f"unknown emotion '{emotion}' (one of: {', '.join(EMOTIONS)})")
                self._requests[key] = _Request(str(command.get("id") or uuid.uuid4().hex[:8]), emotion,
                                               int(command.get("rate", 16000)), int(command.get("channels", 1)))
                if not 1 <= self._requests[key].channels <= 8 or not 4000 <= self._requests[key].rate <= 192000:
                    self._requests.pop(key)
                    raise ValueError("rate must be 4000..192000 Hz and channels 1..8")
            elif kind == "speak_end":
                request = self._requests.pop(key, None)
                if request is not None:
                    control.speak(request.id, np.zeros(0, np.float32), end=True, emotion=request.emotion)
            elif kind == "stop":
                self._requests.pop(key, None)
                control.stop("stop")
            else:
                raise ValueError(f"unknown request {kind!r} (speak, speak_end or stop)")
        except (ValueError, TypeError, json.JSONDecodeError) as exc:
            control.reject(str(exc))
