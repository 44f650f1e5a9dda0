"""The speak API's state machine: the avatar says what another program sends, and stops when told
or when the user starts to talk (barge-in).

``Speaking`` owns the ``SpeechQueue`` the voice stage reads (so the avatar lip-syncs the speech like
a voice), the player that sends the same audio to the user's chosen output device, and, when a
microphone is on, a barge-in listener: voice activity on the microphone for ``BARGE_IN_S`` while the
avatar speaks silences it. States: idle, listening (the user speaks), speaking (the avatar does);
every change and every utterance event goes to the clients as a ``speech_event``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from enum import StrEnum

import numpy as np

from engine.capture.audio import AudioSource
from engine.capture.resample import RATE
from engine.capture.speech import SpeechEvent, SpeechQueue
from engine.errors import AvatarcamError
from engine.outputs.messages import MessageFactory
from engine.outputs.playback import AudioPlayer
from engine.runtime.emotion_worker import EmotionStage
from engine.vocabulary.emotions import Emotion

log = logging.getLogger(__name__)

BARGE_IN_S = 0.15  # the user's voice this long (VAD) while the avatar speaks interrupts it
VOICE_ON = 0.5  # VAD probability that counts as the user speaking


class SpeechState(StrEnum):
    IDLE = "idle"
    LISTENING = "listening"
    SPEAKING = "speaking"


class Speaking:
    """Thread-safe. ``publish(message)`` sends an event to the clients (the speak server's
    ``send_event``); ``vad`` (with ``microphone``) is a voice-activity detector with ``process(samples)``
    and ``probability``."""

    def __init__(self, queue: SpeechQueue, emotion: EmotionStage, messages: MessageFactory,
                 publish: Callable[[dict], None], *, player: AudioPlayer | None = None,
                 microphone: AudioSource | None = None, vad=None) -> None:
        self.queue = queue
        self.emotion = emotion
        self.messages = messages
        self.publish = publish
        self.player = player
        self.microphone = microphone
        self.vad = vad
        self.status = ""
        self.state = SpeechState.IDLE
        self._user_speaking = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        queue.on_event = self._on_queue_event
        if player is not None:
            queue.play, queue.backlog = player.write, lambda: player.backlog_s

    # --- the speak API (SpeakControl) ----------------------------------------------------------

    def speak(self, utterance_id: str, samples: np.ndarray, *, end: bool, emotion: str | None) -> None:
        if emotion is not None:
            self.emotion.set_hint(Emotion(emotion))
        self.queue.speak(utterance_id, samples, end=end)

    def stop(self, reason: str = "stop") -> None:
        """Silence the avatar now (the queue and the device's buffer)."""
        if self.player is not None:
            self.player.clear()
        self.queue.stop(reason)

    def reject(self, reason: str) -> None:
        self.publish(self.messages.speech_event("rejected", self.state, reason=reason))

    # --- events and state ----------------------------------------------------------------------

    def _on_queue_event(self, event: SpeechEvent, utterance_id: str, reason: str) -> None:
        self._update_state()  # first: an event carries the state it leads to
        self.publish(self.messages.speech_event(event.value, self.state, utterance_id, reason))

    def _update_state(self) -> None:
        speaking = self.queue.speaking
        with self._lock:
            state = SpeechState.SPEAKING if speaking else SpeechState.LISTENING if self._user_speaking else SpeechState.IDLE
            changed, self.state = state != self.state, state
        if changed:
            if state is not SpeechState.SPEAKING:
                self.emotion.set_hint(None)  # a hint lasts as long as its speech
            self.publish(self.messages.speech_event("state", state))

    # --- lifecycle and barge-in ----------------------------------------------------------------

    def start(self) -> None:
        """Open the output device (a failure is a status line: the avatar still lip-syncs) and the
        barge-in listener."""
        notes = []
        if self.player is not None:
            try:
                self.player.open()
                notes.append(f"speech plays on {self.player.device if self.player.device is not None else 'the default output'}")
            except AvatarcamError as exc:
                self.player = None
                self.queue.play = self.queue.backlog = None
                notes.append(f"speech not played: {exc}")
        if self.microphone is not None and self.vad is not None:
            try:
                self.microphone.open()
            except AvatarcamError as exc:
                notes.append(f"barge-in off: {exc}")
            else:
                self._thread = threading.Thread(target=self._listen, name="avatarcam-barge-in", daemon=True)
                self._thread.start()
                notes.append("barge-in: your voice interrupts the avatar")
        self.status = "; ".join(notes)

    def _listen(self) -> None:
        assert self.microphone is not None
        voiced_s = 0.0
        while not self._stop.is_set():
            chunk = self.microphone.read()
            if chunk is None:
                break
            self.vad.process(chunk.samples)
            voiced_s = voiced_s + len(chunk.samples) / RATE if self.vad.probability >= VOICE_ON else 0.0
            user = voiced_s >= BARGE_IN_S
            if user and self.queue.speaking:
                self.stop("barge_in")
            if user != self._user_speaking:
                self._user_speaking = user
                self._update_state()

    def close(self) -> None:
        self._stop.set()
        if self.microphone is not None:
            self.microphone.close()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self.player is not None:
            self.player.close()

