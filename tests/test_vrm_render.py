"""Rendering VRM avatars and the new output modes: the specification's samples, MToon outlines,
transparent and chroma backgrounds, the automatic FXAA-lite path, framing of VRM models."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import needs_gl
from gltf_builders import add_extensions, build_test_avatar

from engine.avatar import load_avatar
from engine.avatar.retarget import AvatarBinding
from engine.packets import AvatarFrame, AvatarPose
from engine.render import AvatarRenderer, RenderOptions
from engine.render.colour import CHROMA_GREEN
from engine.vocabulary.rigs import FaceRig

pytestmark = needs_gl

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "avatars"
SMALL = RenderOptions(width=320, height=240, msaa=0, software_msaa=None, fxaa=False)


def shared(name: str) -> Path:
    path = SHARED / name
    if not path.is_file():
        pytest.skip(f"shared sample {name} is not present at {path}")
    return path


def frame(**controls: float) -> AvatarFrame:
    return AvatarFrame(t_capture=0.0, sequence=0, controls=controls)


def colour_counts(image: np.ndarray) -> tuple[int, int]:
    r, g = image[..., 0].astype(int), image[..., 1].astype(int)
    return int(((g > r + 25) & (g > 40)).sum()), int(((r > g + 40) & (r > 80)).sum())


@pytest.mark.parametrize("sample", ["VRMC_vrm_expressions_isBinary_Overrides.vrm",
                                    "VRMC_vrm_expressions_isBinary_Overridden.vrm"])
def test_spec_samples_render_green(sample: str) -> None:
    avatar = load_avatar(shared(sample))
    binding = AvatarBinding(avatar)
    assert binding.rig == FaceRig.VRM
    with AvatarRenderer(avatar, SMALL) as renderer:
        for happy, blink in ((0.0, 0.0), (0.3, 1.0), (0.7, 0.6), (1.0, 1.0), (0.5, 0.5)):
            image = renderer.render(binding.pose(frame(happy=happy, blink=blink)))
            green, red = colour_counts(image)
            assert green > 500 and red < 20, (happy, blink, green, red)


def test_naive_override_order_would_render_red() -> None:
    """Guards the test above: forcing blink fully on under a blending happy shows red."""
    avatar = load_avatar(shared("VRMC_vrm_expressions_isBinary_Overridden.vrm"))
    manager = avatar.vrm.expressions
    blink = manager.get("blink")
    window = next(b.material for b in blink.texture_binds if b.material == 0)
    uv = dict(manager.evaluate({"happy": 0.3}).uv_transforms)
    uv[window] = (uv[window][0], 0.875, uv[window][2], uv[window][3])
    with AvatarRenderer(avatar, SMALL) as renderer:
        image = renderer.render(AvatarPose(uv_transforms=uv))
    assert colour_counts(image)[1] > 500


def _mtoon_avatar(tmp_path: Path, width: float) -> Path:
    path = build_test_avatar(tmp_path / f"toon{width}.vrm", with_morphs=())
    mtoon = {"specVersion": "1.0", "shadeColorFactor": [0.3, 0.1, 0.1], "shadingToonyFactor": 0.95,
             "outlineWidthMode": "worldCoordinates" if width else "none", "outlineWidthFactor": width,
             "outlineColorFactor": [0.0, 0.0, 0.0], "parametricRimColorFactor": [0.0, 0.0, 0.0]}
    return add_extensions(path, {"VRMC_vrm": {"specVersion": "1.0", "meta": {"name": "toon"}}},
                          material_extensions={0: {"VRMC_materials_mtoon": mtoon},
                                               1: {"VRMC_materials_mtoon": mtoon}})


def test_mtoon_toon_ramp_and_outline(tmp_path: Path) -> None:
    plain = load_avatar(_mtoon_avatar(tmp_path, 0.0))
    outlined = load_avatar(_mtoon_avatar(tmp_path, 0.01))
    assert all(p.material.shading == "mtoon" for m in plain.meshes for p in m.primitives)
    with AvatarRenderer(plain, SMALL) as renderer:
        a = renderer.render(AvatarPose()).astype(int)
    with AvatarRenderer(outlined, SMALL) as renderer:
        b = renderer.render(AvatarPose()).astype(int)
    bg = np.round(np.asarray(SMALL.background) * 255).astype(int)
    dark = lambda im: int((im.sum(axis=2) < 20).sum())  # noqa: E731 - pure black: only the outline
    assert dark(a) == 0 and dark(b) > 300
    grown = (np.abs(b - bg).sum(axis=2) > 10).sum() - (np.abs(a - bg).sum(axis=2) > 10).sum()
    assert grown > 200  # the hull is drawn outside the silhouette
    # toony shading: few distinct tones on the lit torso (a two-tone ramp, not a smooth gradient)
    torso = a[150:230, 100:220].reshape(-1, 3)
    torso = torso[np.abs(torso - bg).sum(axis=1) > 30]
    assert len(np.unique(torso // 8, axis=0)) < 40


def test_transparent_background_gives_rgba(tmp_path: Path) -> None:
    avatar = load_avatar(build_test_avatar(tmp_path / "a.glb"))
    with AvatarRenderer(avatar, dataclasses.replace(SMALL, transparent=True, fxaa=None)) as renderer:
        rgba = renderer.render_rgba(AvatarPose())
        rgb = renderer.render(AvatarPose())
    assert rgba.shape == (240, 320, 4) and rgb.shape == (240, 320, 3)
    assert rgba[0, 0, 3] == 0 and rgba[-1, 160, 3] == 255
    assert 0 < (rgba[..., 3] == 255).mean() < 0.9
    assert np.array_equal(rgba[..., :3], rgb)


def test_chroma_green_background(tmp_path: Path) -> None:
    avatar = load_avatar(build_test_avatar(tmp_path / "a.glb"))
    with AvatarRenderer(avatar, dataclasses.replace(SMALL, background=CHROMA_GREEN)) as renderer:
        image = renderer.render(AvatarPose())
    assert tuple(image[0, 0]) == (0x00, 0xB1, 0x40)


def test_fxaa_lite_runs_automatically_without_msaa(tmp_path: Path) -> None:
    avatar = load_avatar(build_test_avatar(tmp_path / "a.glb", with_skin=False))
    with AvatarRenderer(avatar, RenderOptions(width=320, height=240, msaa=0, software_msaa=None)) as renderer:
        assert renderer.fxaa and renderer.msaa_samples == 0
        soft = renderer.render(AvatarPose())
    with AvatarRenderer(avatar, SMALL) as renderer:
        assert not renderer.fxaa
        hard = renderer.render(AvatarPose())
    changed = np.abs(soft.astype(int) - hard.astype(int)).sum(axis=2) > 6
    assert changed.sum() > 100  # silhouette pixels are blended
    bg = np.round(np.asarray(SMALL.background) * 255).astype(int)
    fg = (np.abs(hard.astype(int) - bg).sum(axis=2) > 6).astype(np.uint8)
    edges = cv2.dilate(fg, np.ones((5, 5), np.uint8)) - cv2.erode(fg, np.ones((5, 5), np.uint8))
    assert not (changed & (edges == 0) & (fg == 0)).any()  # open background is untouched
    assert changed[:20].sum() == 0  # above the head: outside the filtered rectangle


def test_vrm0_sample_is_framed_head_and_shoulders() -> None:
    avatar = load_avatar(shared("cryptovoxels.vrm"))
    with AvatarRenderer(avatar, SMALL) as renderer:
        image = renderer.render(AvatarBinding(avatar).pose(frame()))
        cam = renderer.camera()
    bg = np.round(np.asarray(SMALL.background) * 255).astype(int)
    fg = np.abs(image.astype(int) - bg).sum(axis=2) > 20
    rows = np.flatnonzero(fg.any(axis=1))
    assert 5 <= rows[0] <= 70  # the top of the head sits in the upper part of the frame
    assert fg[-1].any()  # the body runs out of the bottom edge
    cols = np.flatnonzero(fg[rows[0] + 10])
    assert abs(cols.mean() - 160) < 25  # centred
    lo, hi = avatar.head_bounds()
    assert cam.eye[2] > hi[2]  # the camera is in front of the (turned) face


def test_snapshot_cli_transparent_chroma_and_vrm_expression(tmp_path: Path, capsys) -> None:
    from engine.commands.cli import main
    from engine.paths import DEFAULT_AVATAR

    rgba_path, chroma_path, happy_path = tmp_path / "t.png", tmp_path / "c.png", tmp_path / "h.png"
    assert main(["snapshot", "--size", "160x120", "--background", "transparent", "--out", str(rgba_path)]) == 0
    assert main(["snapshot", "--size", "160x120", "--background", "chroma", "--out", str(chroma_path)]) == 0
    assert main(["snapshot", "--size", "160x120", "--avatar", str(DEFAULT_AVATAR.with_suffix(".vrm")),
                 "--expression", "happy=1", "--out", str(happy_path)]) == 0
    rgba = cv2.imread(str(rgba_path), cv2.IMREAD_UNCHANGED)
    assert rgba.shape == (120, 160, 4) and rgba[0, 0, 3] == 0 and rgba[100, 80, 3] == 255
    chroma = cv2.imread(str(chroma_path))
    assert tuple(chroma[0, 0]) == (0x40, 0xB1, 0x00)  # BGR of #00b140
    assert cv2.imread(str(happy_path)).shape == (120, 160, 3)
