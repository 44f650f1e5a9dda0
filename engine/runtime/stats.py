"""``Stats``: one frozen reading of a running session, field for field the ``bench --json`` keys.

A stage that did not run (no voice, no tracker) leaves its timings ``None``; ``as_dict()`` leaves
them out, so the JSON carries exactly the keys that were measured. Times in milliseconds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

# Stages that record timings, in data-flow order (the overlay and bench tables use this order).
STAGES: tuple[str, ...] = ("capture", "track", "hold", "emotion", "voice", "animate", "render", "enhance", "sink", "e2e",
                           "sound_to_mouth")


@dataclass(frozen=True, slots=True)
class Stats:
    fps_out: float = 0.0  # over the whole measurement
    fps_now: float = 0.0  # over the last ~30 frames
    frames_out: int = 0
    frames_fresh: int = 0  # rendered from a new perception result
    frames_repeated: int = 0  # no new result in time: the living state re-rendered, or the last frame reused
    frames_reused: int = 0  # of those, the last frame sent again (no room to draw before the next result)
    frames_missed: int = 0  # output ticks that never got a frame
    frames_reduced: int = 0  # frames drawn below the output size and scaled up (the machine could not keep up)
    resolution_changes: int = 0  # switches between full and reduced size (dynamic resolution)
    frames_dropped: int = 0  # input frames replaced before anyone took them
    frames_in: int = 0
    faces_found: int = 0
    cpu_cores: float = 0.0
    rss_mb: float = 0.0
    seconds: float = 0.0
    capture_ms_p50: float | None = None
    capture_ms_p95: float | None = None
    track_ms_p50: float | None = None
    track_ms_p95: float | None = None
    hold_ms_p50: float | None = None
    hold_ms_p95: float | None = None
    emotion_ms_p50: float | None = None
    emotion_ms_p95: float | None = None
    voice_ms_p50: float | None = None
    voice_ms_p95: float | None = None
    animate_ms_p50: float | None = None
    animate_ms_p95: float | None = None
    render_ms_p50: float | None = None
    render_ms_p95: float | None = None
    enhance_ms_p50: float | None = None
    enhance_ms_p95: float | None = None
    sink_ms_p50: float | None = None
    sink_ms_p95: float | None = None
    e2e_ms_p50: float | None = None
    e2e_ms_p95: float | None = None
    sound_to_mouth_ms_p50: float | None = None
    sound_to_mouth_ms_p95: float | None = None
    source_fps: float | None = None  # the rate fresh input actually arrived at
    source_status: str | None = None  # the camera's trouble, e.g. "camera lost, waiting"; None when fine
    voice_status: str | None = None
    emotion_status: str | None = None
    enhance_status: str | None = None  # the enhancement model, its provider, or why it is off
    emotion: str | None = None  # the fused emotion, when emotion analysis is on
    mode: str | None = None
    valence: float | None = None
    arousal: float | None = None
    anomaly: bool | None = None
    speech_state: str | None = None  # the speak API's idle / listening / speaking, when it is on

    @classmethod
    def from_readings(cls, readings: dict[str, Any]) -> Stats:
        """Build from telemetry's flat readings; keys that are not fields are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in readings.items() if k in names})

    def as_dict(self) -> dict[str, Any]:
        """The measured values (``None`` left out): the ``bench --json`` object's keys."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    def stage_ms(self, stage: str) -> tuple[float, float] | None:
        """``(p50, p95)`` of one stage in ``STAGES``, or None if it did not run."""
        p50 = getattr(self, f"{stage}_ms_p50")
        return None if p50 is None else (p50, getattr(self, f"{stage}_ms_p95"))
