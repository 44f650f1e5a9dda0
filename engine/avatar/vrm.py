"""VRM data shared by the VRM 0.x and 1.0 importers: meta, humanoid, lookAt and expressions.

The importers (``vrm0.py`` for the ``VRM`` extension, ``vrm1.py`` for ``VRMC_vrm``) each turn their
version's JSON into one ``VrmInfo``; nothing after loading needs to know which version it was,
except ``version`` for display. Names follow VRM 1.0 (VRM 0.x preset and bone names are mapped).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from engine.avatar.expressions import ExpressionManager

LOOK_AT_TYPES: tuple[str, ...] = ("bone", "expression")


@dataclass(frozen=True, slots=True)
class RangeMap:
    """Maps a gaze angle (degrees) to an eye-bone angle (degrees) or an expression weight (0..1)."""

    input_max: float = 90.0
    output_scale: float = 1.0

    def map(self, degrees: float) -> float:
        if self.input_max <= 0:
            return 0.0
        return min(abs(degrees), self.input_max) / self.input_max * self.output_scale


@dataclass(frozen=True, slots=True)
class LookAt:
    """How the eyes follow a gaze: turn eye bones (``bone``) or weight look expressions (``expression``)."""

    type: str = "bone"
    offset_from_head: tuple[float, float, float] = (0.0, 0.06, 0.0)
    horizontal_inner: RangeMap = RangeMap(90.0, 10.0)
    horizontal_outer: RangeMap = RangeMap(90.0, 10.0)
    vertical_down: RangeMap = RangeMap(90.0, 10.0)
    vertical_up: RangeMap = RangeMap(90.0, 10.0)

    def __post_init__(self) -> None:
        if self.type not in LOOK_AT_TYPES:
            raise ValueError(f"lookAt type must be one of {LOOK_AT_TYPES}, not {self.type!r}")

    def expression_weights(self, yaw_deg: float, pitch_deg: float) -> dict[str, float]:
        """lookLeft/Right/Up/Down weights for a gaze (yaw > 0: toward the subject's left; pitch > 0: up)."""
        return {
            "lookLeft": self.horizontal_outer.map(yaw_deg) if yaw_deg > 0 else 0.0,
            "lookRight": self.horizontal_outer.map(yaw_deg) if yaw_deg < 0 else 0.0,
            "lookUp": self.vertical_up.map(pitch_deg) if pitch_deg > 0 else 0.0,
            "lookDown": self.vertical_down.map(pitch_deg) if pitch_deg < 0 else 0.0,
        }

    def eye_angles(self, yaw_deg: float, pitch_deg: float, side: str) -> tuple[float, float]:
        """(yaw, pitch) in degrees for the ``left`` or ``right`` eye bone.

        Turning toward the eye's own side (the left eye looking left) uses the outer range, toward
        the nose the inner range.
        """
        outward = (yaw_deg > 0) == (side == "left")
        horizontal = self.horizontal_outer if outward else self.horizontal_inner
        yaw = horizontal.map(yaw_deg) * (1.0 if yaw_deg >= 0 else -1.0)
        vertical = self.vertical_up if pitch_deg > 0 else self.vertical_down
        pitch = vertical.map(pitch_deg) * (1.0 if pitch_deg >= 0 else -1.0)
        return yaw, pitch


@dataclass(frozen=True, slots=True)
class Meta:
    """Who made the avatar and under which terms (shown to the user before use)."""

    title: str = ""
    version: str = ""
    authors: tuple[str, ...] = ()
    licence: str = ""  # licence name or URL
    licence_url: str = ""
    allowed_users: str = ""  # VRM avatarPermission / allowedUserName
    commercial_use: str = ""
    contact: str = ""
    raw: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VrmInfo:
    """Everything VRM adds to a glTF model, version-neutral."""

    version: str  # "0.x" or "1.0"
    meta: Meta
    humanoid: Mapping[str, int]  # VRM 1.0 bone name -> node index
    look_at: LookAt | None
    expressions: ExpressionManager

    def __post_init__(self) -> None:
        object.__setattr__(self, "humanoid", MappingProxyType(dict(self.humanoid)))

    @property
    def expression_names(self) -> tuple[str, ...]:
        return self.expressions.names


__all__ = ["LOOK_AT_TYPES", "LookAt", "Meta", "RangeMap", "VrmInfo"]
