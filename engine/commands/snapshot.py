"""``avatarcam snapshot``: one still of an avatar, posed by ARKit controls or its own morph names."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import AvatarcamError
from engine.output_format import DEFAULT_SIZE
from engine.paths import DEFAULT_AVATAR


@dataclass(frozen=True, slots=True)
class SnapshotSpec:
    avatar: Path = DEFAULT_AVATAR
    expressions: dict[str, float] = field(default_factory=dict)  # ARKit names or the avatar's own
    head: tuple[float, float, float] = (0.0, 0.0, 0.0)  # yaw, pitch, roll in degrees
    eyes: tuple[float, float] = (0.0, 0.0)  # gaze yaw, pitch in degrees
    view_yaw: float = 0.0  # camera orbit (three-quarter views)
    size: tuple[int, int] = DEFAULT_SIZE
    background: tuple[float, float, float] | str | None = None  # a colour, "transparent" or the default


def render_snapshot(spec: SnapshotSpec, out: Path) -> Path:
    """Render ``spec`` to the PNG ``out``; raises ``AvatarcamError`` for unknown names or a bad path."""
    import cv2

    from engine.avatar import load_avatar
    from engine.avatar.retarget import AvatarBinding
    from engine.packets import AvatarFrame, AvatarPose
    from engine.render import AvatarRenderer, RenderOptions

    avatar = load_avatar(spec.avatar)
    binding = AvatarBinding(avatar)
    expressions = spec.expressions
    frame = AvatarFrame(t_capture=0.0, sequence=0, controls=expressions, head=spec.head, eyes=spec.eyes)
    pose = binding.pose(frame)
    # Names that are not ARKit controls may name the avatar's own morph targets directly.
    direct = {k: v for k, v in expressions.items() if k in avatar.morph_target_names and k not in binding.arkit_targets}
    unknown = sorted(set(expressions) - set(binding.arkit_targets) - set(direct) - binding.expression_names)
    if unknown:
        own = sorted({*avatar.morph_target_names, *binding.expression_names})
        raise AvatarcamError(f"The avatar has no expression called {', '.join(unknown)}.",
                             f"It has: {', '.join(own) or 'no morph targets'}.")
    pose = AvatarPose(morph_weights={**pose.morph_weights, **direct}, node_rotations=pose.node_rotations,
                      view_yaw_deg=spec.view_yaw, target_weights=pose.target_weights, uv_transforms=pose.uv_transforms)
    transparent = spec.background == "transparent"
    colour = {"background": spec.background} if isinstance(spec.background, tuple) else {}
    options = RenderOptions(width=spec.size[0], height=spec.size[1], transparent=transparent, **colour)
    with AvatarRenderer(avatar, options) as renderer:
        image = renderer.render_rgba(pose) if transparent else renderer.render(pose)
    out.parent.mkdir(parents=True, exist_ok=True)
    bgr = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA) if transparent else image[:, :, ::-1]
    if not cv2.imwrite(str(out), bgr):
        raise AvatarcamError(f"Could not write '{out}'.", "Check the folder exists and is writable, and the name ends in .png.")
    return out
