#!/usr/bin/env python3
"""Render the default avatar's review images for ``docs/avatars.md`` into ``docs/images/``.

Six expressions (neutral, smile, surprise, jaw open, wink, sad), each at a front and a
three-quarter view, 480x360, through the same path as ``avatarcam snapshot`` (ARKit controls ->
``AvatarBinding`` -> ``AvatarRenderer`` with the default options), and one sheet of the gallery's
looks (``gallery.png``: each look front and three-quarter, 240x180). Deterministic::

    .venv/bin/python assets/render_docs_images.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from engine.avatar import load_avatar
from engine.avatar.generator import build
from engine.avatar.looks import GALLERY
from engine.avatar.retarget import AvatarBinding
from engine.packets import (
    AvatarFrame,
    AvatarPose,
)
from engine.paths import DEFAULT_AVATAR
from engine.render import AvatarRenderer, RenderOptions

OUT = REPO / "docs" / "images"
EXPRESSIONS: dict[str, dict[str, float]] = {
    "neutral": {},
    "smile": {"mouthSmileLeft": 1.0, "mouthSmileRight": 1.0, "cheekSquintLeft": 0.6, "cheekSquintRight": 0.6,
              "eyeSquintLeft": 0.3, "eyeSquintRight": 0.3},
    "surprise": {"eyeWideLeft": 1.0, "eyeWideRight": 1.0, "browInnerUp": 0.9, "browOuterUpLeft": 0.9,
                 "browOuterUpRight": 0.9, "jawOpen": 0.45, "mouthFunnel": 0.3},
    "jaw_open": {"jawOpen": 1.0},
    "wink": {"eyeBlinkLeft": 1.0, "mouthSmileLeft": 0.7, "cheekSquintLeft": 0.5},
    "sad": {"browInnerUp": 1.0, "mouthFrownLeft": 1.0, "mouthFrownRight": 1.0, "mouthShrugLower": 0.4,
            "eyeLookDownLeft": 0.2, "eyeLookDownRight": 0.2},
}
VIEWS = {"front": 0.0, "three_quarter": 35.0}


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    avatar = load_avatar(DEFAULT_AVATAR)
    binding = AvatarBinding(avatar)
    with AvatarRenderer(avatar, RenderOptions(width=480, height=360)) as renderer:
        for name, controls in EXPRESSIONS.items():
            pose = binding.pose(AvatarFrame(t_capture=0.0, sequence=0, controls=controls,
                                            eyes=(0.0, -8.0) if name == "sad" else (0.0, 0.0)))
            for view, yaw in VIEWS.items():
                image = renderer.render(AvatarPose(pose.morph_weights, pose.node_rotations, view_yaw_deg=yaw))
                path = OUT / f"default_{name}_{view}.png"
                cv2.imwrite(str(path), image[:, :, ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
                print(path.relative_to(REPO))
    render_gallery()
    return 0


def render_gallery() -> None:
    """The gallery's looks side by side: front views on top, three-quarter views below."""
    rows: dict[str, list[np.ndarray]] = {view: [] for view in VIEWS}
    with tempfile.TemporaryDirectory() as folder:
        for look in GALLERY:
            path = Path(folder) / f"{look.key}.glb"
            build(path, style=look.style)
            avatar = load_avatar(path)
            with AvatarRenderer(avatar, RenderOptions(width=240, height=180)) as renderer:
                pose = AvatarBinding(avatar).pose(AvatarFrame(t_capture=0.0, sequence=0, controls={}))
                for view, yaw in VIEWS.items():
                    rows[view].append(renderer.render(AvatarPose(pose.morph_weights, pose.node_rotations,
                                                                 view_yaw_deg=yaw)))
    sheet = np.vstack([np.hstack(images) for images in rows.values()])
    path = OUT / "gallery.png"
    cv2.imwrite(str(path), sheet[:, :, ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(path.relative_to(REPO))


if __name__ == "__main__":
    raise SystemExit(main())
