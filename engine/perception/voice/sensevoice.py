"""SenseVoice-Small speech emotion through funasr (optional extra ``avatarcam[voice]``).

SenseVoice writes rich text: ``<|en|><|HAPPY|><|Speech|><|woitn|>the words``: language, emotion
(HAPPY, SAD, ANGRY, NEUTRAL, FEARFUL, DISGUSTED, SURPRISED, EMO_UNKNOWN), audio event (Speech,
Laughter, Cry, Cough, BGM, Applause, Sneeze, Breath) and inverse-text-normalisation flag.
``parse_rich_text`` turns that into a ``SenseVoiceResult``; the transcript is available to the
caller but never stored by avatarcam.

``SenseVoiceWorker`` runs the model in its own thread on whole utterances (VAD-bounded; short chunks
are unreliable): ``submit(samples)`` never blocks (a newer utterance replaces one still waiting),
``latest`` is the newest result. Without funasr or the model the worker does not start; ``status``
says why, and the voice stage uses prosody instead.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

MODEL_ID = "iic/SenseVoiceSmall"
_TAG = re.compile(r"<\|([^|]*)\|>")
EMOTION_TAGS = {"HAPPY": "happy", "SAD": "sad", "ANGRY": "angry", "NEUTRAL": "neutral", "FEARFUL": "fearful",
                "DISGUSTED": "disgusted", "SURPRISED": "surprised", "EMO_UNKNOWN": ""}
EVENT_TAGS = {"Speech": "speech", "Laughter": "laughter", "Cry": "cry", "Cough": "cough", "BGM": "music",
              "Applause": "applause", "Sneeze": "sneeze", "Breath": "breath", "Event_UNK": ""}
LANGUAGES = {"zh", "en", "yue", "ja", "ko", "nospeech", "auto"}


@dataclass(frozen=True, slots=True)
class SenseVoiceResult:
    language: str  # "en", "zh", ... or "" when absent
    emotion: str  # one of the 7 class names, or "" (EMO_UNKNOWN / absent)
    event: str  # "speech", "laughter", "music", ... or ""
    text: str  # transcript (not stored)

    @property
    def valence_arousal(self) -> tuple[float, float]:
        from engine.vocabulary.emotions import CIRCUMPLEX

        return CIRCUMPLEX.get(self.emotion, (0.0, 0.0))


def parse_rich_text(text: str) -> SenseVoiceResult:
    """Parse SenseVoice's output: tags in any order (unknown ones ignored), then the transcript."""
    language = emotion = event = ""
    for tag in _TAG.findall(text):
        if tag in EMOTION_TAGS:
            emotion = EMOTION_TAGS[tag]
        elif tag in EVENT_TAGS:
            event = EVENT_TAGS[tag]
        elif tag in LANGUAGES:
            language = "" if tag == "nospeech" else tag
    return SenseVoiceResult(language, emotion, event, _TAG.sub("", text).strip())


def parse_output(output) -> SenseVoiceResult:
    """funasr's ``generate`` returns ``[{"key": ..., "text": "<|en|>..."}]``; accept that or a string."""
    if isinstance(output, (list, tuple)):
        output = output[0] if output else {}
    if isinstance(output, dict):
        output = output.get("text", "")
    return parse_rich_text(str(output))


class SenseVoiceWorker:
    """SenseVoice-Small in its own thread. ``available`` False -> ``status`` says why."""

    def __init__(self, model: str = MODEL_ID, device: str | None = None) -> None:
        self.model = model
        self.device = device
        self.status = "not started"
        self.available = False
        self.latest: SenseVoiceResult | None = None
        self.latest_time = 0.0
        self._pending: np.ndarray | None = None
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._runner = None

    def start(self) -> bool:
        """Load the model (may download, through funasr) and start the thread; False if not possible."""
        try:
            from funasr import AutoModel
        except Exception as exc:
            self.status = (f"SenseVoice off: funasr is not installed ({exc.__class__.__name__}); "
                           "install avatarcam[voice]. Using prosody.")
            return False
        try:
            device = self.device or _best_device()
            self._runner = AutoModel(model=self.model, device=device, disable_update=True, disable_pbar=True)
        except Exception as exc:
            self.status = f"SenseVoice off: the model '{self.model}' could not be loaded ({exc}). Using prosody."
            return False
        self.available = True
        self.status = f"SenseVoice on ({device})"
        self._thread = threading.Thread(target=self._loop, name="avatarcam-sensevoice", daemon=True)
        self._thread.start()
        return True

    def submit(self, samples: np.ndarray) -> None:
        if not self.available:
            return
        with self._cond:
            self._pending = np.asarray(samples, dtype=np.float32)
            self._cond.notify()

    def _loop(self) -> None:
        import time

        while True:
            with self._cond:
                while self._pending is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                samples, self._pending = self._pending, None
            try:
                output = self._runner.generate(input=samples, cache={}, language="auto", use_itn=False)
                self.latest = parse_output(output)
                self.latest_time = time.monotonic()
            except Exception as exc:
                self.available = False
                self.status = f"SenseVoice failed ({exc}); using prosody."
                log.warning(self.status)
                return

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=2.0)


def _best_device() -> str:
    try:
        import torch

        return "cuda:0" if torch.cuda.is_available() else "cpu"
    except Exception:
        return "cpu"
