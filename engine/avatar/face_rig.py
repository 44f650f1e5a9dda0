"""Which face rig an avatar carries, and its morph/expression weights for each animation state.

``FaceRigBinding.detect`` looks once at an avatar's morph target names and VRM expressions and binds
every convention it finds, each face *channel* (mouth, blink, brows/emotion) to the best one:

1. ARKit-named targets ("perfect sync"), whatever the spelling (``engine.avatar.rig_names``), drive
   themselves directly;
2. VRM expressions (0.x / 1.0 presets) carry what ARKit targets do not;
3. raw VRoid ``Fcl_*`` targets (only without VRM expressions, which would bind the same morphs);
4. Oculus / Ready Player Me ``viseme_*`` targets for the mouth;
5. ``mouthOpen`` / ``mouthSmile`` and generic blink targets.

``rig`` names the convention that drives the mouth (``FaceRig``); a jaw bone (``JAW_BONE``) is the
retargeter's fallback. ``limits`` says, in the user's words, what the avatar cannot show.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from engine.avatar.model import Avatar
from engine.avatar.rig_names import find_targets
from engine.avatar.rig_table import (
    FCL_FROM_VRM,
    FCL_NAMES,
    SIMPLE_TARGETS,
    fcl_weights,
    oculus_viseme_weights,
    simple_weights,
    vrm_expression_weights,
)
from engine.vocabulary.arkit import ARKIT_BLENDSHAPES
from engine.vocabulary.rigs import FaceRig, OculusViseme
from engine.vocabulary.vrm import BLINK_PRESETS, MOUTH_PRESETS, VrmPreset

_DRIVEN_PRESETS = frozenset(VrmPreset) - {VrmPreset.NEUTRAL} - {VrmPreset.LOOK_UP, VrmPreset.LOOK_DOWN,
                                                              VrmPreset.LOOK_LEFT, VrmPreset.LOOK_RIGHT}
_BLINK_DRIVERS = ("blink", "blinkLeft", "blinkRight")
_MOUTH_OPENERS = frozenset({"jawOpen", VrmPreset.AA, "Fcl_MTH_A", OculusViseme.AA, "mouthOpen"})
_FCL_MOUTH = frozenset(n for n, p in FCL_FROM_VRM.items() if p in MOUTH_PRESETS)
_FCL_BLINK = frozenset(n for n, p in FCL_FROM_VRM.items() if p in BLINK_PRESETS)
_FCL_EMOTION = frozenset(FCL_NAMES) - _FCL_MOUTH - _FCL_BLINK


@dataclass(frozen=True, slots=True)
class FaceRigBinding:
    """The face conventions bound on one avatar (driver name -> the avatar's target name)."""

    rig: FaceRig
    arkit: Mapping[str, str] = field(default_factory=dict)
    vrm: frozenset[str] = frozenset()  # the VRM presets driven from the ARKit table
    fcl: Mapping[str, str] = field(default_factory=dict)
    visemes: Mapping[OculusViseme, str] = field(default_factory=dict)
    simple: Mapping[str, str] = field(default_factory=dict)
    opens_mouth: bool = False  # some target opens the mouth (else a jaw bone may)
    blinks: bool = False

    @classmethod
    def detect(cls, avatar: Avatar, expression_names: frozenset[str]) -> FaceRigBinding:
        """Bind ``avatar``'s conventions; ``expression_names``: its VRM expressions that bind something."""
        names = avatar.morph_target_names
        arkit = find_targets(names, ARKIT_BLENDSHAPES)
        mouth = "jawOpen" in arkit
        blink = "eyeBlinkLeft" in arkit or "eyeBlinkRight" in arkit
        vrm: frozenset[str] = frozenset()
        if not mouth:  # perfect sync carries the emotions itself; VRM presets would double them
            vrm = frozenset(expression_names & _DRIVEN_PRESETS) - (BLINK_PRESETS if blink else frozenset())
        mouth_rig = FaceRig.ARKIT if mouth else None
        if vrm & MOUTH_PRESETS:
            mouth, mouth_rig = True, FaceRig.VRM
        blink = blink or bool(vrm & BLINK_PRESETS)
        fcl: dict[str, str] = {}
        if not expression_names:
            found = find_targets(names, FCL_NAMES)
            keep = _FCL_EMOTION | (frozenset() if mouth else _FCL_MOUTH) | (frozenset() if blink else _FCL_BLINK)
            fcl = {k: v for k, v in found.items() if k in keep}
            if set(fcl) & _FCL_MOUTH:
                mouth, mouth_rig = True, FaceRig.VROID_FCL
            blink = blink or bool(set(fcl) & _FCL_BLINK)
        visemes: dict[OculusViseme, str] = {}
        if not mouth:
            found_visemes = find_targets(names, [v.value for v in OculusViseme])
            visemes = {OculusViseme(k): v for k, v in found_visemes.items()}
            if visemes:
                mouth, mouth_rig = True, FaceRig.OCULUS_VISEMES
        wanted = {driver: spellings for driver, spellings in SIMPLE_TARGETS.items()
                  if not ((mouth and driver.startswith("mouth")) or (blink and driver in _BLINK_DRIVERS))}
        simple: dict[str, str] = {}
        taken = set(arkit.values()) | set(fcl.values()) | set(visemes.values())
        for driver, spellings in wanted.items():
            found_simple = find_targets(names, spellings)
            target = next((found_simple[s] for s in spellings if s in found_simple), None)
            if target is not None and target not in taken:
                simple[driver] = target
        if "mouthOpen" in simple and not mouth:
            mouth, mouth_rig = True, FaceRig.MOUTH_OPEN_SMILE
        blink = blink or any(d in simple for d in _BLINK_DRIVERS)
        rig = mouth_rig or (FaceRig.VRM if vrm else FaceRig.POSE_ONLY)
        opens = bool(_MOUTH_OPENERS & ({*arkit, *vrm, *fcl, *visemes, *simple}))
        return cls(rig=rig, arkit=arkit, vrm=vrm, fcl=fcl, visemes=visemes, simple=simple,
                   opens_mouth=opens, blinks=blink)

    def morph_weights(self, controls: Mapping[str, float], voice_visemes: Mapping[str, float] | None = None,
                      voice_weight: float = 0.0) -> dict[str, float]:
        """Weights by the avatar's morph target name (the VRM presets are ``vrm_weights``)."""
        weights = {target: min(1.0, max(0.0, float(controls.get(arkit, 0.0)))) for arkit, target in self.arkit.items()}
        if self.fcl:
            for name, w in fcl_weights(controls, set(self.fcl)).items():
                weights[self.fcl[name]] = w
        if self.visemes:
            for viseme, w in oculus_viseme_weights(controls, voice_visemes, voice_weight).items():
                if viseme in self.visemes:
                    weights[self.visemes[viseme]] = w
        if self.simple:
            for driver, w in simple_weights(controls, set(self.simple)).items():
                weights[self.simple[driver]] = w
        return weights

    def vrm_weights(self, controls: Mapping[str, float]) -> dict[str, float]:
        return vrm_expression_weights(controls, self.vrm) if self.vrm else {}


__all__ = ["FaceRigBinding"]
