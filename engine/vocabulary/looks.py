"""The generated avatar's looks: hair styles and identity morph targets."""

from __future__ import annotations

from enum import StrEnum


class HairStyle(StrEnum):
    SHORT = "short"  # a close cap, ending at the nape
    PONYTAIL = "ponytail"  # the cap and a swinging ponytail (the default avatar)
    SHOULDER = "shoulder"  # hanging to the shoulders
    LONG = "long"  # hanging down the back, past the shoulders


class IdentityMorph(StrEnum):
    """Morph targets of the default avatar's Face mesh that change who it is, not what it expresses.
    Each is a relative change of one proportion at weight 1 (see ``engine.avatar.generator.IDENTITY_GAIN``)."""

    FACE_WIDTH = "idFaceWidth"
    JAW_WIDTH = "idJawWidth"
    NOSE_WIDTH = "idNoseWidth"
    NOSE_LENGTH = "idNoseLength"
    EYE_SPACING = "idEyeSpacing"


IDENTITY_MORPHS: tuple[str, ...] = tuple(m.value for m in IdentityMorph)
