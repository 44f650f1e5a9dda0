"""The voice stage: ``AudioChunk``s -> ``VoiceFrame``s (lip-sync, voice activity, prosody, emotion).

``VoiceAnalyzer`` is the per-stream analysis (single thread); ``VoiceStage`` runs a source and an
analyser in the pipeline's audio thread and hands the newest ``VoiceFrame`` over through a
newest-wins slot. Nothing here blocks video: a missing VAD model falls back to an energy detector,
a missing or failing SenseVoice to prosody, and a source that fails or ends leaves a status line.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from engine.capture.audio import AudioChunk
from engine.capture.resample import RATE
from engine.errors import AvatarcamError
from engine.packets import VoiceFrame
from engine.perception.voice.lipsync import LipSync, LipSyncOptions, MouthFrame
from engine.perception.voice.prosody import EMOTIONS, ProsodyEstimator
from engine.perception.voice.sensevoice import SenseVoiceWorker
from engine.perception.voice.vad import EnergyVad, SileroVad
from engine.vocabulary.emotions import EmotionEstimate

log = logging.getLogger(__name__)

UTTERANCE_END_S = 0.3  # this much non-speech ends an utterance (for SenseVoice)
UTTERANCE_MIN_S = 0.5
UTTERANCE_MAX_S = 10.0
SENSEVOICE_FRESH_S = 8.0  # a SenseVoice emotion colours the voice this long after its utterance
CLIP_LEVEL = 0.99
CLIP_FRACTION = 0.01  # share of a chunk's samples at full scale that counts as clipping


@dataclass(frozen=True, slots=True)
class VoiceOptions:
    lipsync: LipSyncOptions = field(default_factory=LipSyncOptions)
    use_silero: bool = True
    use_sensevoice: bool = False  # opt in: heavy (torch), and emotion analysis needs consent


class VoiceAnalyzer:
    """Per-stream analysis. ``process(samples, t_first)`` returns the newest ``VoiceFrame``, or None
    when the block completed no 10 ms hop. ``status`` says which engines run and why others do not."""

    def __init__(self, options: VoiceOptions | None = None, *, vad=None, sensevoice: SenseVoiceWorker | None = None) -> None:
        self.options = options = options or VoiceOptions()
        notes = []
        if vad is None and options.use_silero:
            try:
                vad = SileroVad.from_manager()
            except AvatarcamError as exc:
                notes.append(f"voice activity: energy detector ({exc.message})")
        self._vad = vad or EnergyVad()
        self.sensevoice = sensevoice
        if self.sensevoice is None and options.use_sensevoice:
            self.sensevoice = SenseVoiceWorker()
            self.sensevoice.start()
        if self.sensevoice is not None:
            notes.append(self.sensevoice.status)
        else:
            notes.append("emotion: prosody")
        self._notes = notes
        self._lipsync = LipSync(options.lipsync)
        self._prosody = ProsodyEstimator()
        self._mouth: MouthFrame | None = None
        self._utterance: list[np.ndarray] = []
        self._quiet_s = 0.0
        self._clipped = 0.0  # share of recent samples at full scale, smoothed
        self._prosody_estimate = None
        self._prosody_age = 0  # hops since the prosody estimate was computed (it moves slowly)
        self.frames = 0

    @property
    def status(self) -> str:
        notes = list(self._notes)
        if self.sensevoice is not None:
            notes[-1] = self.sensevoice.status
        if self._clipped > 0.01:
            notes.append("input is clipping: lower the microphone gain")
        return "; ".join(notes)

    def process(self, samples: np.ndarray, t_first: float) -> VoiceFrame | None:
        start = time.perf_counter()
        samples = np.nan_to_num(np.asarray(samples, dtype=np.float32).reshape(-1), nan=0.0, posinf=1.0, neginf=-1.0)
        clipped = float(np.mean(np.abs(samples) >= CLIP_LEVEL)) if len(samples) else 0.0
        self._clipped += 0.05 * (clipped - self._clipped)
        mouths = self._lipsync.process(samples, t_first)
        if mouths:
            self._mouth = mouths[-1]
        self._vad.process(samples)
        speaking = float(self._vad.probability)
        self._prosody.process(samples, speaking)
        self._track_utterance(samples, speaking)
        if not mouths:
            return None
        mouth = self._mouth
        assert mouth is not None
        t_capture = t_first + len(samples) / RATE
        emotion, valence, arousal, event, language = self._emotion(t_capture)
        self.frames += 1
        return VoiceFrame(
            t_capture=t_capture, speaking_probability=speaking,
            visemes=mouth.visemes, mouth=mouth.controls, t_mouth=mouth.t_ready,
            energy_db=mouth.energy_db, pitch_hz=float(self._prosody.pitch_hz),
            emotion=emotion, valence=valence, arousal=arousal,
            audio_event=event, language=language, status=self.status, clipping=clipped > CLIP_FRACTION,
            timings=MappingProxyType({"voice": (time.perf_counter() - start) * 1000.0}))

    def _track_utterance(self, samples: np.ndarray, speaking: float) -> None:
        if self.sensevoice is None or not self.sensevoice.available:
            return
        if speaking >= 0.5:
            self._utterance.append(samples)
            self._quiet_s = 0.0
        elif self._utterance:
            self._utterance.append(samples)
            self._quiet_s += len(samples) / RATE
        length = sum(len(s) for s in self._utterance) / RATE
        if self._utterance and (self._quiet_s >= UTTERANCE_END_S or length >= UTTERANCE_MAX_S):
            if length - self._quiet_s >= UTTERANCE_MIN_S:
                self.sensevoice.submit(np.concatenate(self._utterance))
            self._utterance = []
            self._quiet_s = 0.0

    def _emotion(self, t_capture: float) -> tuple[EmotionEstimate, float, float, str, str]:
        """(estimate for the fusion stage, valence, arousal, audio event, language)."""
        sv = self.sensevoice
        if sv is not None and sv.available and sv.latest is not None and sv.latest.emotion and \
                time.monotonic() - sv.latest_time < SENSEVOICE_FRESH_S:
            valence, arousal = sv.latest.valence_arousal
            probabilities = np.array([0.8 if name == sv.latest.emotion else 0.2 / (len(EMOTIONS) - 1)
                                      for name in EMOTIONS])
            return (EmotionEstimate(t_capture, probabilities, 0.8, "sensevoice"), valence, arousal,
                    sv.latest.event, sv.latest.language)
        self._prosody_age += 1
        if self._prosody_estimate is None or self._prosody_age >= 10:
            self._prosody_estimate, self._prosody_age = self._prosody.estimate(), 0
        p = self._prosody_estimate
        probabilities = np.array([p.scores[name] for name in EMOTIONS])
        return EmotionEstimate(t_capture, probabilities, p.confidence, "prosody"), p.valence, p.arousal, "", ""

    def close(self) -> None:
        if self.sensevoice is not None:
            self.sensevoice.close()


class VoiceStage:
    """The pipeline's audio thread body: read the source, analyse, publish the newest frame.

    ``run(stop, publish, on_audio)`` returns when ``stop`` is set or the source ends; a source error
    is kept in ``error`` and ``status`` (the video goes on without voice). ``on_audio(chunk)`` gets
    every chunk as read (a recording's sound track), before its analysis."""

    def __init__(self, source, options: VoiceOptions | None = None, analyzer: VoiceAnalyzer | None = None) -> None:
        self.source = source
        self.options = options or VoiceOptions()
        self.analyzer = analyzer
        self.error: BaseException | None = None
        self.status = "voice: not started"
        self.chunks = 0

    def open(self) -> None:
        """Open the source and build the analyser (raises ``AvatarcamError``)."""
        self.source.open()
        if self.analyzer is None:
            self.analyzer = VoiceAnalyzer(self.options)
        self.status = f"voice: {self.source.status}; {self.analyzer.status}"

    def run(self, stop: threading.Event, publish: Callable[[VoiceFrame], None],
            on_audio: Callable[[AudioChunk], None] | None = None) -> None:
        assert self.analyzer is not None
        try:
            while not stop.is_set():
                chunk = self.source.read()
                if chunk is None:
                    break
                self.chunks += 1
                if on_audio is not None:
                    on_audio(chunk)
                frame = self.analyzer.process(chunk.samples, chunk.t_capture)
                if frame is not None:
                    source_status = getattr(self.source, "status", "")
                    if source_status and not source_status.startswith("ok"):
                        frame = _with_status(frame, f"{source_status}; {frame.status}")
                    publish(frame)
            self.status = f"voice: {getattr(self.source, 'status', 'ended')}; {self.analyzer.status}"
        except AvatarcamError as exc:
            self.error = exc
            self.status = f"voice off: {exc}"
            log.warning(self.status)
        except Exception as exc:
            self.error = exc
            self.status = f"voice off: unexpected error ({exc!r})"
            log.exception("voice stage failed")

    def close(self) -> None:
        self.source.close()
        if self.analyzer is not None:
            self.analyzer.close()


def _with_status(frame: VoiceFrame, status: str) -> VoiceFrame:
    from dataclasses import replace

    return replace(frame, status=status)
