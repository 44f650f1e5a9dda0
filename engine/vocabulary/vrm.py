"""VRM expression preset names (VRM 1.0 spelling; the VRM 0.x importer maps its old names onto them)."""

from __future__ import annotations

from enum import StrEnum


class VrmPreset(StrEnum):
    HAPPY = "happy"
    ANGRY = "angry"
    SAD = "sad"
    RELAXED = "relaxed"
    SURPRISED = "surprised"
    AA = "aa"
    IH = "ih"
    OU = "ou"
    EE = "ee"
    OH = "oh"
    BLINK = "blink"
    BLINK_LEFT = "blinkLeft"
    BLINK_RIGHT = "blinkRight"
    LOOK_UP = "lookUp"
    LOOK_DOWN = "lookDown"
    LOOK_LEFT = "lookLeft"
    LOOK_RIGHT = "lookRight"
    NEUTRAL = "neutral"


BLINK_PRESETS: frozenset[str] = frozenset({VrmPreset.BLINK, VrmPreset.BLINK_LEFT, VrmPreset.BLINK_RIGHT})
LOOK_AT_PRESETS: frozenset[str] = frozenset({VrmPreset.LOOK_UP, VrmPreset.LOOK_DOWN, VrmPreset.LOOK_LEFT,
                                             VrmPreset.LOOK_RIGHT})
MOUTH_PRESETS: frozenset[str] = frozenset({VrmPreset.AA, VrmPreset.IH, VrmPreset.OU, VrmPreset.EE, VrmPreset.OH})
