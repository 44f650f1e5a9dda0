"""The contracts between stages: what a source delivers and what a sink consumes.

Every video-side source (camera, file, image, demo, the audio-only stand-in) meets ``Source`` and
every output of rendered frames meets ``Sink`` (sound inputs meet ``engine.capture.audio.AudioSource``).
A source *declares* what it
delivers in ``caps`` (libobs' ``output_flags``): the session reads the flags to wire the stages,
instead of probing attributes. Implementations need not inherit from these classes.
"""

from __future__ import annotations

from enum import Flag, auto
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from engine.packets import FaceFrame, RenderedFrame, VideoFrame


class SourceCaps(Flag):
    """What a source delivers and how it behaves."""

    NONE = 0
    VIDEO = auto()  # delivers VideoFrames: the face tracker runs on them
    FACES = auto()  # delivers FaceFrames that are already perceived (the demo performance)
    ENDS_WITH_VOICE = auto()  # audio-only stand-in: the run ends when the voice input ends
    DEVICE = auto()  # a capture device the user must be told about (the recording indicator)


class Source(Protocol):
    """A video-side source.

    ``open()`` raises ``SourceError`` with a message and a hint. ``read()`` blocks until the next
    item is due and returns it; ``None`` means end of stream or closed. ``close()`` is idempotent and
    thread-safe: called while ``read()`` blocks, that ``read()`` returns ``None`` within 50 ms and the
    device is released. ``frames_skipped`` counts frames the source itself dropped (pacing).
    """

    @property
    def caps(self) -> SourceCaps: ...

    @property
    def frames_skipped(self) -> int: ...

    def open(self) -> None: ...

    def read(self) -> VideoFrame | FaceFrame | None: ...

    def close(self) -> None: ...


class Sink(Protocol):
    """An output of rendered frames.

    ``open`` raises ``SinkError``. ``write`` takes a frame of the opened size, never blocks for long
    and raises ``SinkError`` when the output fails. ``close`` is idempotent.
    """

    name: str

    def open(self, width: int, height: int, fps: float) -> None: ...

    def write(self, frame: RenderedFrame) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class SoundSink(Sink, Protocol):
    """A sink that also carries the voice input's sound (a file, a stream).

    ``add_audio(rate)`` before ``open`` gives it a mono sound track at ``rate`` Hz;
    ``write_audio(samples, t_capture)`` (any thread) hands over consecutive samples whose first was
    captured at ``t_capture`` (monotonic seconds, or media time offline); the sink places them
    beside the frames that show them. ``set_audio_origin(t)`` after ``open`` says which capture
    time is the output's time 0 (otherwise the first frame with a voice time fixes it).
    """

    def add_audio(self, rate: int) -> None: ...

    def write_audio(self, samples: np.ndarray, t_capture: float) -> None: ...

    def set_audio_origin(self, t_capture: float) -> None: ...
