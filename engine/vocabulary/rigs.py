"""Face rig conventions an avatar may carry, and the Oculus / Ready Player Me viseme names."""

from __future__ import annotations

from enum import StrEnum


class FaceRig(StrEnum):
    """How an avatar's face is driven, best first; the value is what the user is shown.

    Chosen once per avatar from its morph targets, VRM expressions and bones (``engine.avatar.face_rig``).
    """

    ARKIT = "perfect sync (ARKit 52)"
    FLAME = "FLAME (expression and jaw fitted to the landmarks)"
    VRM = "VRM presets"
    OCULUS_VISEMES = "Oculus visemes"
    VROID_FCL = "VRoid Fcl morphs"
    MOUTH_OPEN_SMILE = "mouth open/smile only"
    JAW_BONE = "jaw bone only"
    POSE_ONLY = "pose only"


class OculusViseme(StrEnum):
    """The 15 Oculus LipSync visemes (Ready Player Me exports them as morph targets ``viseme_*``)."""

    SIL = "viseme_sil"
    PP = "viseme_PP"
    FF = "viseme_FF"
    TH = "viseme_TH"
    DD = "viseme_DD"
    KK = "viseme_kk"
    CH = "viseme_CH"
    SS = "viseme_SS"
    NN = "viseme_nn"
    RR = "viseme_RR"
    AA = "viseme_aa"
    E = "viseme_E"
    I = "viseme_I"  # noqa: E741 - the viseme's own name
    O = "viseme_O"  # noqa: E741
    U = "viseme_U"
