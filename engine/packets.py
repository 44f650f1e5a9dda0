"""Frozen packets passed between stages.

Every packet carries ``t_capture``: the ``time.monotonic()`` second at which the source captured
the frame it descends from, so end-to-end latency is measured, never guessed. ``timings`` holds
per-stage durations in milliseconds, added to as the packet moves down the pipeline.

Head pose convention (degrees, subject's own frame, as seen by a camera facing them):
  yaw   > 0: the subject turns to their own left,
  pitch > 0: the subject lifts the chin (looks up),
  roll  > 0: the subject tilts the head toward their own left shoulder.
Gaze (degrees): yaw > 0 looks to the subject's own left, pitch > 0 looks up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the emotion vocabulary is its own package; packets only refer to it
    from engine.vocabulary.emotions import EmotionEstimate


_EMPTY: Mapping[Any, Any] = MappingProxyType({})  # one shared, immutable empty mapping


@dataclass(frozen=True, slots=True)
class VideoFrame:
    """One RGB image from a camera, file, image or generator."""

    image: np.ndarray  # H x W x 3, uint8, RGB, C-contiguous
    t_capture: float  # time.monotonic() seconds
    index: int  # 0-based frame number from this source
    timings: Mapping[str, float] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        return int(self.image.shape[1]), int(self.image.shape[0])


@dataclass(frozen=True, slots=True)
class FaceFrame:
    """What face perception read from one VideoFrame. ``present=False`` is a valid, empty result."""

    t_capture: float
    index: int
    present: bool
    confidence: float = 0.0
    blendshapes: Mapping[str, float] = field(default_factory=dict)  # ARKit name -> 0..1
    head_rotation: tuple[float, float, float] = (0.0, 0.0, 0.0)  # yaw, pitch, roll degrees
    head_translation: tuple[float, float, float] = (0.0, 0.0, 0.0)  # cm, camera frame
    gaze: tuple[float, float] = (0.0, 0.0)  # yaw, pitch degrees, both eyes averaged
    blink: tuple[float, float] = (0.0, 0.0)  # left, right eye closure 0..1
    landmarks: np.ndarray | None = None  # N x 3 normalised image coordinates, when available
    timings: Mapping[str, float] = field(default_factory=dict)
    image_size: tuple[int, int] = (0, 0)  # width, height the landmarks are normalised to (0: unknown)


@dataclass(frozen=True, slots=True)
class VoiceFrame:
    """What voice perception read from the microphone or an audio file, newest first.

    ``t_capture``: capture time of the newest sample analysed; ``t_mouth``: capture time of the
    newest sample in the window the ``mouth``/``visemes`` come from (sound-to-mouth latency is
    measured from it). ``mouth`` holds ARKit mouth/jaw controls (jawOpen, mouthFunnel, ...), 0..1.
    ``emotion`` is the voice's reading for the fusion stage (``engine.vocabulary.emotions``; source
    "prosody" or "sensevoice"), with its valence and arousal (-1..1) alongside.
    """

    t_capture: float
    speaking_probability: float = 0.0
    visemes: Mapping[str, float] = field(default_factory=dict)
    mouth: Mapping[str, float] = field(default_factory=dict)
    t_mouth: float = 0.0
    energy_db: float = -100.0
    pitch_hz: float = 0.0  # 0 when unvoiced
    emotion: EmotionEstimate | None = None
    valence: float = 0.0
    arousal: float = 0.0
    audio_event: str = ""  # "speech", "laughter", "music", ... (SenseVoice), "" when unknown
    language: str = ""
    status: str = ""  # a line for the user: which emotion engine runs, a lost microphone...
    clipping: bool = False  # the newest chunk hit full scale (the fusion flags it as an anomaly)
    timings: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AvatarFrame:
    """An animation state in the avatar-neutral vocabulary, handed to the renderer.

    ``controls`` are ARKit names (0..1); ``head``/``neck`` are yaw, pitch, roll degrees;
    ``eyes`` is gaze yaw, pitch degrees. The renderer's binding maps them onto one avatar.
    """

    t_capture: float
    sequence: int
    controls: Mapping[str, float]
    head: tuple[float, float, float] = (0.0, 0.0, 0.0)
    neck: tuple[float, float, float] = (0.0, 0.0, 0.0)
    eyes: tuple[float, float] = (0.0, 0.0)
    face_present: bool = True
    timings: Mapping[str, float] = field(default_factory=dict)
    # Voice: how much the voice owns the mouth (0..1) and the capture time of the newest sample
    # behind the mouth shown (0 when no voice), for sound-to-mouth latency.
    voice_weight: float = 0.0
    t_voice: float = 0.0
    # The voice's visemes (engine.perception.voice.lipsync.VISEMES -> 0..1) behind that mouth, for
    # avatars whose mouth is a viseme rig; empty when no voice owns the mouth.
    visemes: Mapping[str, float] = field(default_factory=lambda: _EMPTY)
    # The newest tracked landmarks while tracking (raw, unfiltered; None otherwise) and the size of
    # the image they are normalised to: avatars fitted to landmarks (FLAME) read them.
    landmarks: np.ndarray | None = None
    image_size: tuple[int, int] = (0, 0)


@dataclass(frozen=True, slots=True)
class RenderedFrame:
    """A rendered output image (RGB uint8), ready for sinks."""

    image: np.ndarray
    t_capture: float  # capture time of the input the state came from
    sequence: int  # output frame number
    fresh: bool  # True when rendered for a new animation state, False when re-rendered to keep the rate
    timings: Mapping[str, float] = field(default_factory=dict)
    state: AvatarFrame | None = None  # the animation state this image shows


def with_timing(timings: Mapping[str, float], **stage_ms: float) -> Mapping[str, float]:
    """Return a new read-only timings map with the given stage durations added."""
    merged = dict(timings)
    merged.update(stage_ms)
    return MappingProxyType(merged)


@dataclass(frozen=True, slots=True)
class AvatarPose:
    """What to show: morph weights by target name (0..1, missing = 0) and extra node rotations by
    node name (quaternion xyzw applied on top of the rest rotation: ``local = rest * q``).
    Names the avatar does not have are ignored.
    """

    morph_weights: Mapping[str, float] = field(default_factory=lambda: _EMPTY)
    node_rotations: Mapping[str, tuple[float, float, float, float]] = field(default_factory=dict)
    view_yaw_deg: float = 0.0  # camera orbit for snapshots (three-quarter views)
    # VRM expression output: weights by (mesh index, target index), added to ``morph_weights``
    # (the sum is clamped to 0..1), and base-colour UV transforms by material index
    # ((offset x, offset y, scale x, scale y), replacing the material's own).
    target_weights: Mapping[tuple[int, int], float] = field(default_factory=lambda: _EMPTY)
    uv_transforms: Mapping[int, tuple[float, float, float, float]] = field(default_factory=lambda: _EMPTY)
