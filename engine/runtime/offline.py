"""Offline rendering: a voice track drives the avatar on media time, as fast as the machine renders.

The same stages as the live pipeline (the voice analysis, the animator with its idle life, the
emotion stage, retargeting and the renderer, through ``frame.animate_and_render``), but no threads
and no wall clock: frame ``n`` shows media time ``n / fps`` and is animated with the voice analysed
up to that time, so the mouth matches the sound exactly as it would have live. Sinks that carry
sound (``SoundSink``) get the track itself, on the same media timeline.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from engine.animation.animator import Animator
from engine.avatar import load_avatar
from engine.avatar.retarget import AvatarBinding
from engine.avatar.spring_bone import SpringBoneRig
from engine.capture.audio import AudioChunk, AudioSource
from engine.capture.resample import RATE
from engine.perception.voice.voice import VoiceAnalyzer
from engine.render import AvatarRenderer
from engine.runtime.emotion_worker import EmotionStage
from engine.runtime.frame import animate_and_render
from engine.runtime.pipeline import PipelineOptions
from engine.stages import Sink, SoundSink


@dataclass(frozen=True, slots=True)
class OfflineResult:
    frames: int
    media_seconds: float
    wall_seconds: float

    @property
    def realtime_factor(self) -> float:
        """Wall time per media second: below 1 is faster than real time."""
        return self.wall_seconds / self.media_seconds if self.media_seconds else 0.0


class OfflineRender:
    """Renders ``audio`` (an unpaced source: its chunk times are media times) into ``sinks``.

    ``run(on_progress)`` opens everything, renders every frame, closes, and returns the counts;
    ``on_progress(done, total)`` is called after each frame. Raises ``SourceError`` for audio that
    cannot be read and ``SinkError`` for an output that fails.
    """

    def __init__(self, audio: AudioSource, sinks: list[Sink], options: PipelineOptions,
                 analyzer: VoiceAnalyzer, emotion: EmotionStage) -> None:
        self.audio = audio
        self.sinks = sinks
        self.options = options
        self.analyzer = analyzer
        self.emotion = emotion

    def _read_all(self) -> list[AudioChunk]:
        self.audio.open()
        try:
            chunks = []
            while (chunk := self.audio.read()) is not None:
                chunks.append(chunk)
            return chunks
        finally:
            self.audio.close()

    def run(self, on_progress: Callable[[int, int], None] | None = None) -> OfflineResult:
        start = time.perf_counter()
        chunks = self._read_all()
        media_seconds = sum(len(c.samples) for c in chunks) / RATE
        fps = self.options.fps
        total = max(1, math.ceil(media_seconds * fps - 1e-9))
        width, height = self.options.size
        avatar = load_avatar(self.options.avatar)
        renderer = AvatarRenderer(avatar, self.options.render_options())
        opened: list[Sink] = []
        try:
            binding = AvatarBinding(avatar)
            springs = SpringBoneRig(avatar)
            animator = Animator(self.options.animator)
            for sink in self.sinks:
                if isinstance(sink, SoundSink):
                    sink.add_audio(RATE)
                sink.open(width, height, fps)
                opened.append(sink)
                if isinstance(sink, SoundSink):
                    sink.set_audio_origin(0.0)  # capture time is media time here
            fed = 0
            for n in range(total):
                now = n / fps
                voice = None
                while fed < len(chunks) and chunks[fed].t_end <= now + 1e-9:
                    chunk = chunks[fed]
                    voice = self.analyzer.process(chunk.samples, chunk.t_capture) or voice
                    self._sound(opened, chunk)
                    fed += 1
                if n == total - 1:  # the last frame: the track's tail goes with it
                    for chunk in chunks[fed:]:
                        self._sound(opened, chunk)
                frame, _, _ = animate_and_render(animator, self.emotion, binding, renderer, None, voice, now, n + 1, springs)
                for sink in opened:
                    sink.write(frame)
                if on_progress is not None:
                    on_progress(n + 1, total)
        finally:
            for sink in opened:
                sink.close()
            renderer.close()
            self.analyzer.close()
            self.emotion.close()
        return OfflineResult(total, media_seconds, time.perf_counter() - start)

    @staticmethod
    def _sound(sinks: list[Sink], chunk: AudioChunk) -> None:
        for sink in sinks:
            if isinstance(sink, SoundSink):
                sink.write_audio(chunk.samples, chunk.t_capture)
