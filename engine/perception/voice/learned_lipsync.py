"""Learned lip-sync at run time: 16 kHz audio -> ARKit mouth controls every 10 ms, causal, CPU.

The model (``models/lipsync_tcn.onnx``, trained by ``models/train_lipsync.py`` on talking-head clips
whose mouths MediaPipe tracked) hears log-mel features (``features.py``) and keeps its state (the recent
history each causal conv layer needs) between calls, so any block size gives the same output as one pass over the whole signal.

Timing: the pose for the hop centred at ``t`` is ready ``delay_s`` = 52.5 ms later: 12.5 ms for the
rest of the 25 ms window plus the model's 40 ms look-ahead (``lookahead_hops``: it hears a little past
the moment it animates, because mouths move before the sound they make).

Silence: the model learnt a closed mouth for pauses, and a simple energy gate makes sure of it: a hop
counts as sound when its level is above ``GATE_FLOOR_DBFS`` and within ``GATE_BELOW_REF_DB`` of the
running voice level; the gate opens at once when any hop the pose can hear is sound and closes with
a ``GATE_RELEASE_S`` time constant (no pop), scaling every control.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from engine.onnx_session import create_session
from engine.paths import MODELS_DIR
from engine.perception.voice.features import FEATURE_DELAY_S, HOP, RATE, WINDOW, LogMelStream

DEFAULT_MODEL = MODELS_DIR / "lipsync_tcn.onnx"
GATE_FLOOR_DBFS = -55.0  # quieter than any voice worth animating (the features' reference floor)
GATE_BELOW_REF_DB = 30.0  # a pause is this far under the running voice level
GATE_RELEASE_S = 0.025


@dataclass(frozen=True, slots=True)
class MouthPose:
    """One 10 ms hop: ``t`` is the capture time of the hop's window centre (the moment the pose shows),
    ``t_ready`` that of the newest sample the pose needed."""

    t: float
    t_ready: float
    controls: Mapping[str, float]  # ARKit name -> 0..1

    @property
    def jaw_open(self) -> float:
        return self.controls["jawOpen"]


class LearnedLipSync:
    """Streaming audio -> ``MouthPose`` per 10 ms hop. Not thread-safe: one instance per stream.

    ``process(samples, t_first)``: ``samples`` is 16 kHz mono float32 of any length, ``t_first`` the
    capture time of its first sample (read after a ``reset``; afterwards the clock follows the samples).
    Raises ``ModelError`` when the model file is missing or broken.
    """

    def __init__(self, model_path: Path = DEFAULT_MODEL, *, gate: bool = True) -> None:
        self._session = create_session(model_path, threads=1, what="lip-sync model", gpu=False)
        meta = self._session.get_modelmeta().custom_metadata_map
        self.control_names: tuple[str, ...] = tuple(json.loads(meta["controls"]))
        self.lookahead_hops = int(meta["lookahead_hops"])
        self.delay_s = FEATURE_DELAY_S + self.lookahead_hops * HOP / RATE
        self._feature_init = float(meta["feature_state_init"])
        shapes = {i.name: i.shape for i in self._session.get_inputs()}
        self._feature_shape, self._layer_shape = tuple(shapes["feature_state"]), tuple(shapes["layer_state"])
        self._gate_enabled = gate
        self._release = math.exp(-HOP / RATE / GATE_RELEASE_S)
        self._features = LogMelStream()
        self.reset()

    def reset(self) -> None:
        """Start a new stream: no audio, no model state, mouth at rest."""
        self._features.reset()
        self._feature_state = np.full(self._feature_shape, self._feature_init, dtype=np.float32)
        self._layer_state = np.zeros(self._layer_shape, dtype=np.float32)
        self._sound = np.zeros(self.lookahead_hops + 1, dtype=bool)  # newest last
        self._gate = 0.0
        self._t0: float | None = None

    def process(self, samples: np.ndarray, t_first: float) -> list[MouthPose]:
        if self._t0 is None:
            self._t0 = t_first
        first_hop = self._features.hops
        features, levels, refs = self._features.process_levels(samples)
        if len(features) == 0:
            return []
        controls, self._feature_state, self._layer_state = self._session.run(
            None, {"features": features[None], "feature_state": self._feature_state, "layer_state": self._layer_state})
        sound = (levels > GATE_FLOOR_DBFS) & (levels > refs - GATE_BELOW_REF_DB)
        hops = first_hop + np.arange(len(features))
        centres = self._t0 + ((hops - self.lookahead_hops) * HOP + WINDOW / 2) / RATE
        poses = []
        for i, k in enumerate(hops):
            self._sound = np.append(self._sound[1:], sound[i])
            # The pose of hop k - L may open on any sound it heard (hops k-L..k), closes smoothly.
            self._gate = 1.0 if self._sound.any() else self._gate * self._release
            if k < self.lookahead_hops:
                continue  # these outputs describe the time before the stream began
            values = controls[0, i] * (self._gate if self._gate_enabled else 1.0)
            poses.append(MouthPose(t=float(centres[i]), t_ready=float(centres[i] + self.delay_s),
                                   controls=MappingProxyType(dict(zip(self.control_names, values.tolist())))))
        return poses
