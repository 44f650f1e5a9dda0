"""The stable, versioned JSON messages avatarcam streams: ``emotion_update``, ``avatar_frame`` and,
with the speak API on, ``speech_event``.

Envelope (every type): ``type``, ``version``, ``session_id``, ``timestamp_ms`` (Unix time in
milliseconds of the capture the message describes), ``sequence`` (per type, +1 per message) and
``payload``. Field names and units are documented in docs/MESSAGES.md; the JSON Schemas in
``engine/outputs/schemas/`` are the contract and the tests validate every emitted message against them.
"""

from __future__ import annotations

import itertools
import json
import math
import time
import uuid
from pathlib import Path
from typing import Any

from engine.fusion.fuser import EmotionState
from engine.packets import AvatarFrame
from engine.rotation import euler_to_quaternion
from engine.vocabulary.arkit import ARKIT_BLENDSHAPES

VERSION = "1.0"
SCHEMA_DIR = Path(__file__).with_name("schemas")


def _quaternion(yaw: float, pitch: float, roll: float) -> list[float]:
    angles = (_finite(float(v)) for v in (yaw, pitch, roll))  # the sine of infinity raises
    return [round(v, 6) for v in euler_to_quaternion(*angles)]


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by 0: JSON has neither, and a receiver must
    never get invalid JSON because a stage upstream produced one."""
    if isinstance(value, float):
        return value if math.isfinite(value) else 0.0
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


class MessageFactory:
    """Builds messages for one session. Thread-safe counters; the clock maps monotonic to Unix time."""

    def __init__(self, session_id: str | None = None) -> None:
        self.session_id = session_id or uuid.uuid4().hex[:12]
        self._sequences = {kind: itertools.count(1) for kind in ("emotion_update", "avatar_frame", "speech_event")}
        self._epoch_offset = time.time() - time.monotonic()

    def _envelope(self, kind: str, t_monotonic: float, payload: dict[str, Any]) -> dict[str, Any]:
        return {"type": kind, "version": VERSION, "session_id": self.session_id,
                "timestamp_ms": int(round((t_monotonic + self._epoch_offset) * 1000)),
                "sequence": next(self._sequences[kind]), "payload": _finite(payload)}

    def emotion_update(self, state: EmotionState, frame: AvatarFrame | None = None) -> dict[str, Any]:
        """The fused emotion plus the face signals it came from (``frame``: the animation state)."""
        controls = frame.controls if frame is not None else {}
        head = [h + n for h, n in zip(frame.head, frame.neck)] if frame is not None else [0.0, 0.0, 0.0]
        payload = {
            "emotion": state.emotion,
            "scores": state.scores(),
            "valence": round(state.valence, 4),
            "arousal": round(state.arousal, 4),
            "blendshapes": {name: round(float(controls.get(name, 0.0)), 4) for name in ARKIT_BLENDSHAPES},
            "head_pose": {"yaw": round(head[0], 3), "pitch": round(head[1], 3), "roll": round(head[2], 3)},
            "gaze": {"yaw": round(frame.eyes[0], 3) if frame else 0.0, "pitch": round(frame.eyes[1], 3) if frame else 0.0},
            "speaking_probability": round(state.speaking_probability, 4),
            "mode": state.mode,
            "anomaly": state.anomaly,
            "anomaly_reasons": list(state.anomaly_reasons),
        }
        return self._envelope("emotion_update", state.t, payload)

    def avatar_frame(self, frame: AvatarFrame, viseme: str = "sil", viseme_conf: float = 0.0) -> dict[str, Any]:
        """The controls handed to the renderer: blendshapes 0..1 and head/neck/eye rotations."""
        eyes = _quaternion(frame.eyes[0], frame.eyes[1], 0.0)
        payload = {
            "blendshapes": {name: round(min(1.0, max(0.0, float(frame.controls.get(name, 0.0)))), 4)
                            for name in ARKIT_BLENDSHAPES},
            "bone_transforms": {
                "neck": {"rotation": _quaternion(*frame.neck), "euler_deg": [round(v, 3) for v in frame.neck]},
                "head": {"rotation": _quaternion(*frame.head), "euler_deg": [round(v, 3) for v in frame.head]},
                "leftEye": {"rotation": eyes, "euler_deg": [round(frame.eyes[0], 3), round(frame.eyes[1], 3), 0.0]},
                "rightEye": {"rotation": eyes, "euler_deg": [round(frame.eyes[0], 3), round(frame.eyes[1], 3), 0.0]},
            },
            "viseme": viseme,
            "viseme_conf": round(float(viseme_conf), 4),
        }
        return self._envelope("avatar_frame", frame.t_capture, payload)


    def speech_event(self, event: str, state: str, utterance_id: str = "", reason: str = "") -> dict[str, Any]:
        """The speak API: an utterance started, finished or was interrupted (``reason``: stop or
        barge_in), or the conversation state changed (``event`` "state"; ``state``: idle, listening
        or speaking), or a request was rejected (``event`` "rejected", ``reason`` says why)."""
        payload = {"event": event, "state": state, "utterance_id": utterance_id, "reason": reason}
        return self._envelope("speech_event", time.monotonic(), payload)


def load_schema(kind: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{kind}.schema.json").read_text(encoding="utf-8"))
