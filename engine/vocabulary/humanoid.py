"""VRM humanoid bone names (VRM 1.0 spelling; VRM 0.x uses the same names for these bones).

Only the bones avatarcam drives or frames with are listed; loaders keep every bone the file maps.
"""

from __future__ import annotations

from enum import StrEnum


class HumanBone(StrEnum):
    HIPS = "hips"
    SPINE = "spine"
    CHEST = "chest"
    UPPER_CHEST = "upperChest"
    NECK = "neck"
    HEAD = "head"
    LEFT_EYE = "leftEye"
    RIGHT_EYE = "rightEye"
    JAW = "jaw"
    LEFT_SHOULDER = "leftShoulder"
    RIGHT_SHOULDER = "rightShoulder"
    LEFT_UPPER_ARM = "leftUpperArm"
    RIGHT_UPPER_ARM = "rightUpperArm"
    LEFT_LOWER_ARM = "leftLowerArm"
    RIGHT_LOWER_ARM = "rightLowerArm"
    LEFT_HAND = "leftHand"
    RIGHT_HAND = "rightHand"
