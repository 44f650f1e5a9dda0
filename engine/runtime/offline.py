"""Offline rendering: a voice track drives the avatar on media time, as fast as the machine renders.

The same stages as the live pipeline (the voice analysis, the animator with its idle life, the
emotion stage, retargeting and the renderer, through ``frame.animate_and_render``), but no wall
clock: frame ``n`` shows media time ``n / fps`` and is animated with the voice analysed up to that
time, so the mouth matches the sound exactly as it would have live. The voice is analysed ahead in
a process of its own (``VoiceTrack``), off the render thread's critical path. Sinks that carry
sound (``SoundSink``) get the track itself, on the same media timeline.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.animation.animator import Animator
from engine.avatar import load_avatar
from engine.avatar.retarget import AvatarBinding
from engine.avatar.spring_bone import SpringBoneRig
from engine.capture.audio import AudioChunk, AudioFileSource
from engine.capture.resample import RATE
from engine.perception.voice.voice import VoiceOptions
from engine.render import AvatarRenderer
from engine.runtime.emotion_worker import EmotionStage
from engine.runtime.frame import animate_and_render
from engine.runtime.pipeline import PipelineOptions
from engine.runtime.voice_track import VoiceTrack
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
    """Renders the audio file ``audio`` (its chunk times are media times) into ``sinks``, with the
    voice analysed by ``VoiceAnalyzer(voice)``.

    ``run(on_progress)`` opens everything, renders every frame, closes, and returns the counts;
    ``on_progress(done, total)`` is called after each frame. Raises ``SourceError`` for audio that
    cannot be read and ``SinkError`` for an output that fails.
    """

    def __init__(self, audio: Path, sinks: list[Sink], options: PipelineOptions,
                 voice: VoiceOptions, emotion: EmotionStage) -> None:
        self.audio = audio
        self.sinks = sinks
        self.options = options
        self.voice = voice
        self.emotion = emotion

    def _read_all(self) -> list[AudioChunk]:
        source = AudioFileSource(self.audio, paced=False)
        source.open()
        try:
            chunks = []
            while (chunk := source.read()) is not None:
                chunks.append(chunk)
            return chunks
        finally:
            source.close()

    def run(self, on_progress: Callable[[int, int], None] | None = None) -> OfflineResult:
        start = time.perf_counter()
        chunks = self._read_all()  # first: unreadable audio fails here, before anything starts
        track = VoiceTrack(self.audio, self.voice)
        media_seconds = sum(len(c.samples) for c in chunks) / RATE
        fps = self.options.fps
        total = max(1, math.ceil(media_seconds * fps - 1e-9))
        width, height = self.options.size
        renderer: AvatarRenderer | None = None
        opened: list[Sink] = []
        try:
            avatar = load_avatar(self.options.avatar)
            renderer = AvatarRenderer(avatar, self.options.render_options())
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
                    voice = track.next() or voice
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
            if renderer is not None:
                renderer.close()
            track.close()
            self.emotion.close()
        return OfflineResult(total, media_seconds, time.perf_counter() - start)

    @staticmethod
    def _sound(sinks: list[Sink], chunk: AudioChunk) -> None:
        for sink in sinks:
            if isinstance(sink, SoundSink):
                sink.write_audio(chunk.samples, chunk.t_capture)
