"""The one table from the tracked face (ARKit / MediaPipe controls) to every other face rig.

Each function takes ARKit controls (0..1, missing = 0) and returns weights in one rig's own
vocabulary; ``engine.avatar.face_rig`` decides which of them an avatar needs and binds the names.

* VRM presets (``vrm_expression_weights``): blinks, the five mouth visemes, five emotions;
* VRoid ``Fcl_*`` raw morph targets (``fcl_weights``): the same presets under VRoid's names
  (``FCL_FROM_VRM``), plus brows, which VRoid keeps apart (``Fcl_BRW_*``);
* Oculus / Ready Player Me visemes (``oculus_viseme_weights``): read from the mouth's shape, and
  while the user speaks blended toward the voice's own visemes (``VOICE_TO_OCULUS``), which know the
  consonants a camera cannot see;
* Ready Player Me ``mouthOpen`` / ``mouthSmile`` and generic blink targets (``simple_weights``).
"""

from __future__ import annotations

from collections.abc import Mapping

from engine.vocabulary.rigs import OculusViseme as V
from engine.vocabulary.vrm import BLINK_PRESETS
from engine.vocabulary.vrm import VrmPreset as P


def _clamp(x: float) -> float:
    return min(1.0, max(0.0, x))


class _Face:
    """Named readings of the ARKit controls that several rigs share (all 0..1)."""

    def __init__(self, c: Mapping[str, float]) -> None:
        g = lambda name: _clamp(float(c.get(name, 0.0)))  # noqa: E731
        pair = lambda stem: (g(stem + "Left") + g(stem + "Right")) / 2.0  # noqa: E731
        self.blink_left, self.blink_right = g("eyeBlinkLeft"), g("eyeBlinkRight")
        self.jaw = g("jawOpen")
        self.funnel, self.pucker = g("mouthFunnel"), g("mouthPucker")
        self.close = g("mouthClose")
        self.smile, self.stretch = pair("mouthSmile"), pair("mouthStretch")
        self.press = pair("mouthPress")
        self.roll_lower, self.roll_upper = g("mouthRollLower"), g("mouthRollUpper")
        self.upper_up, self.lower_down = pair("mouthUpperUp"), pair("mouthLowerDown")
        self.tongue = g("tongueOut")
        self.squint = pair("cheekSquint")
        self.brow_down, self.brow_inner_up = pair("browDown"), g("browInnerUp")
        self.brow_outer_up = pair("browOuterUp")
        self.sneer, self.frown = pair("noseSneer"), pair("mouthFrown")
        self.wide_eyes = pair("eyeWide")
        self.wide = _clamp(self.stretch + 0.5 * self.smile)
        self.rounded = max(self.funnel, self.pucker)
        self.brows_up = max(self.brow_inner_up, self.brow_outer_up)


def vrm_expression_weights(c: Mapping[str, float], available: frozenset[str] | set[str]) -> dict[str, float]:
    """ARKit controls -> VRM expression weights, for the presets in ``available``.

    Blinks: ``blinkLeft``/``blinkRight`` from ``eyeBlinkLeft``/``Right``; with ``blink`` too, the
    common part goes to ``blink`` and the rest to the sides (no lid closes twice); with ``blink``
    alone, it gets the mean. Visemes from the mouth: ``aa`` an open jaw, ``oh`` a funnel, ``ou`` a
    pucker, ``ee`` a stretched/smiling mouth, ``ih`` a slightly open wide mouth. Emotions from
    FACS-like combinations: happy (smile + cheek squint), angry (brows down + sneer), sad (frown +
    inner brows up), surprised (eyes wide + brows up + jaw), relaxed (a soft smile with relaxed lids).
    Every weight is continuous in the controls, so a slowly moving face never pops an expression.
    """
    f = _Face(c)
    left, right = f.blink_left, f.blink_right
    out: dict[str, float] = {}
    sides = P.BLINK_LEFT in available and P.BLINK_RIGHT in available
    if P.BLINK in available and sides:
        both = min(left, right)
        out.update({P.BLINK: both, P.BLINK_LEFT: left - both, P.BLINK_RIGHT: right - both})
    elif sides:
        out.update({P.BLINK_LEFT: left, P.BLINK_RIGHT: right})
    elif P.BLINK in available:
        out[P.BLINK] = (left + right) / 2.0
    jaw, wide, rounded = f.jaw, f.wide, f.rounded
    out[P.AA] = _clamp(jaw * (1.0 - rounded) * (1.0 - 0.6 * wide) * 1.3)
    out[P.OH] = _clamp(f.funnel * (0.4 + jaw) * 1.2)
    out[P.OU] = _clamp(f.pucker * (1.0 - 0.5 * jaw))
    out[P.EE] = _clamp(wide * (0.4 + jaw) * (1.0 - rounded))
    # ih is a barely open wide mouth: it fades out as the jaw opens past 0.3 (no pop at a threshold)
    out[P.IH] = _clamp(wide * jaw * 1.5 * (1.0 - rounded)) * _clamp((0.5 - jaw) / 0.2)
    smile = f.smile
    out[P.HAPPY] = _clamp(0.75 * smile + 0.5 * f.squint)
    out[P.ANGRY] = _clamp((0.8 * f.brow_down + 0.5 * f.sneer) * (1.0 - smile))
    out[P.SAD] = _clamp((0.7 * f.frown + 0.5 * f.brow_inner_up) * (1.0 - smile) * (1.0 - f.wide_eyes))
    out[P.SURPRISED] = _clamp((0.6 * f.wide_eyes + 0.4 * f.brows_up) * (0.5 + jaw))
    lids = (left + right) / 2.0  # relaxed: lowered lids with a smile; fades out as the eyes close
    out[P.RELAXED] = _clamp(smile * 1.2 * lids) * _clamp((0.8 - lids) / 0.25)
    return {str(name): w for name, w in out.items() if name in available}


# VRoid Studio's raw morph targets (on the face mesh) and the VRM preset each one is.
FCL_FROM_VRM: dict[str, str] = {
    "Fcl_MTH_A": P.AA, "Fcl_MTH_I": P.IH, "Fcl_MTH_U": P.OU, "Fcl_MTH_E": P.EE, "Fcl_MTH_O": P.OH,
    "Fcl_EYE_Close": P.BLINK, "Fcl_EYE_Close_L": P.BLINK_LEFT, "Fcl_EYE_Close_R": P.BLINK_RIGHT,
    "Fcl_ALL_Joy": P.HAPPY, "Fcl_ALL_Angry": P.ANGRY, "Fcl_ALL_Sorrow": P.SAD, "Fcl_ALL_Fun": P.RELAXED,
    "Fcl_ALL_Surprised": P.SURPRISED,
}
FCL_BROWS: tuple[str, ...] = ("Fcl_BRW_Angry", "Fcl_BRW_Joy", "Fcl_BRW_Sorrow", "Fcl_BRW_Surprised", "Fcl_BRW_Fun")
FCL_NAMES: tuple[str, ...] = (*FCL_FROM_VRM, *FCL_BROWS, "Fcl_EYE_Surprised")


def fcl_weights(c: Mapping[str, float], available: frozenset[str] | set[str]) -> dict[str, float]:
    """ARKit controls -> VRoid ``Fcl_*`` weights, for the names (``FCL_NAMES``) in ``available``.

    The eyes, mouth and whole-face emotions go through the VRM table. ``Fcl_ALL_*`` move the brows
    too, so the brow targets (brows down, raised, knit) carry only what the emotions leave.
    """
    presets = {FCL_FROM_VRM[name] for name in available if name in FCL_FROM_VRM}
    vrm = vrm_expression_weights(c, presets)
    out = {name: vrm[preset] for name, preset in FCL_FROM_VRM.items() if preset in vrm and name in available}
    f = _Face(c)
    brows = {"Fcl_BRW_Angry": f.brow_down, "Fcl_BRW_Surprised": f.brows_up,
             "Fcl_BRW_Sorrow": _clamp(f.brow_inner_up - f.brow_outer_up), "Fcl_BRW_Joy": 0.5 * f.smile * f.brows_up,
             "Fcl_BRW_Fun": 0.0, "Fcl_EYE_Surprised": f.wide_eyes}
    emotion = max((vrm.get(p, 0.0) for p in (P.HAPPY, P.ANGRY, P.SAD, P.RELAXED, P.SURPRISED)), default=0.0)
    for name, brow in brows.items():
        if name in available and brow > 0.0:
            out[name] = _clamp(brow * (1.0 - emotion))
    return out


# The voice's visemes (engine.perception.voice.lipsync.VISEMES) as Oculus visemes.
VOICE_TO_OCULUS: dict[str, V] = {"sil": V.SIL, "PP": V.PP, "FF": V.FF, "SS": V.SS, "aa": V.AA, "ih": V.I,
                                 "ee": V.E, "oh": V.O, "ou": V.U}


def oculus_viseme_weights(c: Mapping[str, float], voice: Mapping[str, float] | None = None,
                          voice_weight: float = 0.0) -> dict[V, float]:
    """ARKit controls -> the 15 Oculus visemes; ``voice`` (lip-sync visemes) takes over as it speaks.

    From the camera: vowels as the VRM table reads them (aa, E, I, O, U); PP pressed or closed lips;
    FF the lower lip rolled in under the upper teeth; TH the tongue out; CH pushed-forward lips with
    a small jaw; SS a wide, nearly closed mouth; DD/nn/kk a small neutral opening (the camera cannot
    tell them apart: DD takes most, nn and kk a share); RR rounded lips slightly open; sil what the
    others leave. The voice's visemes are blended in by ``voice_weight`` (0..1).
    """
    f = _Face(c)
    vrm = vrm_expression_weights(c, {P.AA, P.IH, P.EE, P.OH, P.OU})
    closed = 1.0 - _clamp(f.jaw * 3.0)
    small = _clamp(f.jaw * 4.0) * _clamp((0.45 - f.jaw) * 4.0) * (1.0 - f.rounded) * (1.0 - f.wide)
    out = {
        V.AA: vrm[P.AA], V.E: vrm[P.EE], V.I: vrm[P.IH], V.O: vrm[P.OH], V.U: vrm[P.OU],
        V.PP: _clamp(max(f.press, f.close, 0.6 * f.roll_upper) * closed),
        V.FF: _clamp((f.roll_lower + 0.3 * f.upper_up) * closed),
        V.TH: _clamp(f.tongue * 1.5),
        V.CH: _clamp(f.funnel * f.pucker * 2.0 * closed),
        V.SS: _clamp(f.stretch * closed * (1.0 - f.rounded)),
        V.DD: 0.6 * small, V.NN: 0.3 * small, V.KK: 0.25 * small,
        V.RR: _clamp(f.pucker * _clamp(f.jaw * 4.0) * 0.6),
    }
    out[V.SIL] = _clamp(1.0 - max(out.values()))
    if voice and voice_weight > 0.0:
        w = _clamp(voice_weight)
        spoken = {VOICE_TO_OCULUS[name]: _clamp(v) for name, v in voice.items() if name in VOICE_TO_OCULUS}
        out = {name: (1.0 - w) * value + w * spoken.get(name, 0.0) for name, value in out.items()}
    return out


# Generic names for the rigs that have no ARKit, VRM or viseme shapes: driver -> names it goes by.
SIMPLE_TARGETS: dict[str, tuple[str, ...]] = {
    "mouthOpen": ("mouthOpen", "mouth_open", "MouthOpen", "jaw_open"),
    "mouthSmile": ("mouthSmile", "mouth_smile", "smile"),
    "blink": ("blink", "eyesClosed", "eyes_closed", "eyeClose", "eyesClose", "blink_both"),
    "blinkLeft": ("blinkLeft", "eyeCloseLeft", "eyeClosedLeft", "winkLeft"),
    "blinkRight": ("blinkRight", "eyeCloseRight", "eyeClosedRight", "winkRight"),
    "eyesLookUp": ("eyesLookUp",),
    "eyesLookDown": ("eyesLookDown",),
}


def simple_weights(c: Mapping[str, float], available: frozenset[str] | set[str]) -> dict[str, float]:
    """ARKit controls -> the generic drivers of ``SIMPLE_TARGETS`` that ``available`` names."""
    f = _Face(c)
    vrm = vrm_expression_weights(c, {name for name in available if name in BLINK_PRESETS})
    g = lambda name: _clamp(float(c.get(name, 0.0)))  # noqa: E731
    out = {
        "mouthOpen": _clamp(f.jaw * 1.1),
        "mouthSmile": f.smile,
        "eyesLookUp": (g("eyeLookUpLeft") + g("eyeLookUpRight")) / 2.0,
        "eyesLookDown": (g("eyeLookDownLeft") + g("eyeLookDownRight")) / 2.0,
        **vrm,
    }
    return {name: w for name, w in out.items() if name in available}


__all__ = ["FCL_BROWS", "FCL_FROM_VRM", "FCL_NAMES", "SIMPLE_TARGETS", "VOICE_TO_OCULUS", "fcl_weights",
           "oculus_viseme_weights", "simple_weights", "vrm_expression_weights"]
