"""``avatarcam snapshot``: one still of an avatar, posed by ARKit controls or its own morph names."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import AvatarcamError
from engine.output_format import DEFAULT_SIZE
from engine.paths import DEFAULT_AVATAR
from engine.vocabulary.framing import Framing


@dataclass(frozen=True, slots=True)
class SnapshotSpec:
    avatar: Path = DEFAULT_AVATAR
    expressions: dict[str, float] = field(default_factory=dict)  # ARKit names or the avatar's own
    head: tuple[float, float, float] = (0.0, 0.0, 0.0)  # yaw, pitch, roll in degrees
    eyes: tuple[float, float] = (0.0, 0.0)  # gaze yaw, pitch in degrees
    view_yaw: float = 0.0  # camera orbit (three-quarter views)
    size: tuple[int, int] = DEFAULT_SIZE
    background: tuple[float, float, float] | str | None = None  # a colour, "transparent" or the default
    framing: Framing = Framing.HEAD_AND_SHOULDERS


def render_snapshot(spec: SnapshotSpec, out: Path, *, report: Callable[[str], None] | None = None) -> Path:
    """Render ``spec`` to the PNG ``out``; raises ``AvatarcamError`` for unknown names or a bad path
    (see :func:`snapshot_image`)."""
    import cv2

    image = snapshot_image(spec, report=report)
    out.parent.mkdir(parents=True, exist_ok=True)
    bgr = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA) if spec.background == "transparent" else image[:, :, ::-1]
    if not cv2.imwrite(str(out), bgr):
        raise AvatarcamError(f"Could not write '{out}'.", "Check the folder exists and is writable, and the name ends in .png.")
    return out


def snapshot_image(spec: SnapshotSpec, *, report: Callable[[str], None] | None = None) -> np.ndarray:
    """Render ``spec`` to an RGB (RGBA when transparent) uint8 image; ``AvatarcamError`` for unknown names.

    ARKit names are retargeted onto any avatar through the same ``AvatarBinding`` as ``run`` (a VRM
    turns jawOpen into its ``aa``, a viseme rig into ``viseme_aa``...); the avatar's own morph target
    and expression names are set directly. ``report`` gets one line naming the face rig and what the
    avatar cannot show.
    """
    from engine.avatar import load_avatar
    from engine.avatar.retarget import AvatarBinding
    from engine.packets import AvatarFrame, AvatarPose
    from engine.render import AvatarRenderer, RenderOptions
    from engine.vocabulary.arkit import ARKIT_BLENDSHAPES

    avatar = load_avatar(spec.avatar)
    binding = AvatarBinding(avatar)
    if report is not None:
        report(binding.describe())
    own = {*avatar.morph_target_names, *binding.expression_names}
    unknown = sorted(set(spec.expressions) - set(ARKIT_BLENDSHAPES) - own)
    if unknown:
        raise AvatarcamError(f"The avatar has no expression called {', '.join(unknown)}.",
                             f"Use ARKit names (jawOpen, eyeBlinkLeft...) or one of its own: "
                             f"{', '.join(sorted(own)) or 'it has none'}.")
    frame = AvatarFrame(t_capture=0.0, sequence=0, controls=spec.expressions, head=spec.head, eyes=spec.eyes)
    pose = binding.pose(frame)
    pose = AvatarPose(morph_weights=pose.morph_weights, node_rotations=pose.node_rotations, view_yaw_deg=spec.view_yaw,
                      target_weights=pose.target_weights, uv_transforms=pose.uv_transforms)
    transparent = spec.background == "transparent"
    colour = {"background": spec.background} if isinstance(spec.background, tuple) else {}
    options = RenderOptions(width=spec.size[0], height=spec.size[1], transparent=transparent, framing=spec.framing,
                            **colour)
    with AvatarRenderer(avatar, options) as renderer:
        return renderer.render_rgba(pose) if transparent else renderer.render(pose)
