"""How much of the avatar the webcam shot shows."""

from __future__ import annotations

from enum import StrEnum


class Framing(StrEnum):
    CLOSE_UP = "close_up"  # the face fills the frame
    HEAD_AND_SHOULDERS = "head_and_shoulders"  # a typical webcam shot (the default)
    UPPER_BODY = "upper_body"  # down to the waist, hands in view
    FULL_BODY = "full_body"  # the whole avatar


FRAMINGS: tuple[str, ...] = tuple(f.value for f in Framing)
