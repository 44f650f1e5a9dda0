"""Materials as users' avatars use them: each feature on a tiny panel scene, checked by pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.avatar.loading.gltf import load_avatar
from engine.avatar.model import OutlineMode
from engine.packets import AvatarPose
from engine.render.renderer import AvatarRenderer, RenderOptions
from tests.material_builders import Panel, build_panels, halves, solid

OPTIONS = RenderOptions(width=320, height=180, msaa=0, fxaa=False, background=(0.0, 0.0, 0.0))
ALL_SHADE = {"shadeColorFactor": [1.0, 1.0, 1.0], "shadingShiftFactor": -1.0, "shadingToonyFactor": 0.9}


def render(path: Path, yaw: float = 0.0) -> np.ndarray:
    with AvatarRenderer(load_avatar(path), OPTIONS) as renderer:
        return renderer.render(AvatarPose(view_yaw_deg=yaw)).astype(int)


def box(image: np.ndarray) -> tuple[slice, slice]:
    """Rows and columns of the drawn (non-background) area."""
    rows, cols = np.nonzero(image.sum(axis=2) > 0)
    assert len(rows), "nothing was drawn"
    return slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1)


def centre(image: np.ndarray) -> np.ndarray:
    """Mean colour of the middle third of the drawn area."""
    rows, cols = box(image)
    h, w = rows.stop - rows.start, cols.stop - cols.start
    return image[rows.start + h // 3: rows.stop - h // 3, cols.start + w // 3: cols.stop - w // 3].reshape(-1, 3).mean(axis=0)


def test_mtoon_shade_texture_colours_the_shadow(tmp_path: Path) -> None:
    # a VRoid export: white shade colour, the real shadow colour in the shade texture
    white = render(build_panels(tmp_path / "flat.glb", [Panel(mtoon=ALL_SHADE)]))
    red = render(build_panels(tmp_path / "tex.glb", [Panel(mtoon={**ALL_SHADE, "shadeMultiplyTexture": solid((255, 0, 0))})]))
    r, g, _ = centre(red)
    assert g < 0.7 * r  # the shadow is red, not the white the flat shade colour would paint
    assert centre(white)[1] > 0.9 * centre(white)[0]


def test_vrm0_shade_texture_colours_the_shadow(tmp_path: Path) -> None:
    mtoon0 = {"shader": "VRM/MToon", "floatProperties": {"_ShadeShift": -1.0, "_ShadeToony": 0.9},
              "vectorProperties": {"_ShadeColor": [1, 1, 1, 1]},
              "textureProperties": {"_ShadeTexture": solid((0, 0, 255))}}
    path = build_panels(tmp_path / "old.vrm", [Panel()], vrm0_materials=[mtoon0])
    material = load_avatar(path).meshes[0].primitives[0].material
    assert material.shading == "mtoon" and material.shade_texture is not None
    r, g, b = centre(render(path))
    assert b > 1.5 * max(r, g)


def test_emissive_is_factor_times_texture(tmp_path: Path) -> None:
    dark = (0.0, 0.0, 0.0, 1.0)
    path = build_panels(tmp_path / "glow.glb", [Panel(color=dark, emissive_factor=(1.0, 0.5, 1.0),
                                                      emissive_image=solid((0, 255, 255)))])
    r, g, b = centre(render(path))
    assert r < 40 and b > 235  # the texture has no red; blue is full
    assert 150 < g < 215  # green halved by the factor (linear 0.5 -> sRGB 188)
    # a factor of 1 with a black texture emits nothing: the factor alone must not make it glow
    black = build_panels(tmp_path / "black.glb", [Panel(color=dark, emissive_factor=(1.0, 1.0, 1.0),
                                                        emissive_image=solid((0, 0, 0)))])
    assert centre(render(black)).max() < 60


def test_alpha_mask_cuts_where_alpha_is_below_the_cutoff(tmp_path: Path) -> None:
    image = halves((255, 255, 255, 0), (255, 255, 255, 255))
    cut = render(build_panels(tmp_path / "mask.glb", [Panel(image=image, material={"alphaMode": "MASK"})]))
    whole = render(build_panels(tmp_path / "opaque.glb", [Panel(image=image)]))
    rows, cols = box(whole)
    mid = (cols.start + cols.stop) // 2
    front = whole[rows, cols]
    assert (front.sum(axis=2) > 0).mean() > 0.95
    assert (cut[rows, cols.start + 3: mid - 3].sum(axis=2) == 0).mean() > 0.95  # left half cut away
    assert (cut[rows, mid + 3: cols.stop - 3].sum(axis=2) > 0).mean() > 0.95


def test_alpha_blend_shows_what_is_behind(tmp_path: Path) -> None:
    behind = Panel(color=(1.0, 0.0, 0.0, 1.0), z=-0.2, half=0.3)
    glass = Panel(color=(0.0, 0.0, 1.0, 0.5), z=0.1, material={"alphaMode": "BLEND"})
    # the blended panel is listed first: sorting, not file order, must draw it after the opaque one
    blended = render(build_panels(tmp_path / "blend.glb", [glass, behind]))
    solid_front = render(build_panels(tmp_path / "solid.glb", [Panel(color=(0.0, 0.0, 1.0, 1.0), z=0.1), behind]))
    mid_r, mid_c = blended.shape[0] // 2, blended.shape[1] // 2
    rows, cols = box(solid_front)
    y, x = (rows.start + rows.stop) // 2, (cols.start + cols.stop) // 2
    assert abs(y - mid_r) < blended.shape[0] and abs(x - mid_c) < blended.shape[1]
    r, _, b = blended[y, x]
    assert r > 60 and b > 60  # red behind shows through the blue glass
    assert r > solid_front[y, x][0] + 40


def test_unlit_ignores_lights(tmp_path: Path) -> None:
    grey = (0.2, 0.2, 0.2, 1.0)
    unlit = build_panels(tmp_path / "unlit.glb", [Panel(color=grey, material={"extensions": {"KHR_materials_unlit": {}}})])
    lit = build_panels(tmp_path / "lit.glb", [Panel(color=grey)])


    def visible(image: np.ndarray) -> np.ndarray:
        pixels = image.reshape(-1, 3)
        return pixels[pixels.sum(axis=1) > 0]

    # seen from 50 degrees aside, two faces show: lit, they differ; unlit, both are the base colour
    assert np.all(np.abs(visible(render(unlit, 50.0)) - 124) <= 2)  # linear 0.2 in sRGB
    assert np.ptp(visible(render(lit, 50.0)).mean(axis=1)) > 10


def test_texture_transform_shifts_the_texture(tmp_path: Path) -> None:
    image = halves((255, 0, 0), (0, 0, 255))
    plain = render(build_panels(tmp_path / "plain.glb", [Panel(image=image, material={"extensions": {"KHR_materials_unlit": {}}})]))
    shifted = render(build_panels(tmp_path / "shift.glb", [Panel(image=image, texture_transform={"offset": [0.5, 0.0]},
                                                                 material={"extensions": {"KHR_materials_unlit": {}}})]))
    rows, cols = box(plain)
    y = (rows.start + rows.stop) // 2
    left, right = cols.start + 4, cols.stop - 5
    assert plain[y, left][0] > 200 and plain[y, right][2] > 200
    assert shifted[y, left][2] > 200 and shifted[y, right][0] > 200  # half a turn: the halves swap


def test_vertex_colours_show(tmp_path: Path) -> None:
    image = render(build_panels(tmp_path / "colours.glb",
                                [Panel(vertex_colors=True, material={"extensions": {"KHR_materials_unlit": {}}})]))
    rows, cols = box(image)
    y = (rows.start + rows.stop) // 2
    left, right = image[y, cols.start + 2], image[y, cols.stop - 3]
    assert left[0] > 200 and left[1] < 60  # red where x < 0 (the avatar's right: image left)
    assert right[1] > 200 and right[0] < 60


def test_matcap_adds_its_colour(tmp_path: Path) -> None:
    black = {"shadeColorFactor": [0, 0, 0], "shadingShiftFactor": -1.0}
    dark = (0.1, 0.1, 0.1, 1.0)
    without = render(build_panels(tmp_path / "plain.glb", [Panel(color=dark, mtoon=black)]))
    matcap = render(build_panels(tmp_path / "matcap.glb",
                                 [Panel(color=dark, mtoon={**black, "matcapTexture": solid((0, 255, 0)),
                                                           "rimLightingMixFactor": 0.0})]))
    assert centre(matcap)[1] > centre(without)[1] + 100
    assert abs(centre(matcap)[0] - centre(without)[0]) < 5  # the matcap is pure green


@pytest.mark.parametrize("mode", ["worldCoordinates", "screenCoordinates"])
def test_outline_width_modes_draw_a_dark_outline(tmp_path: Path, mode: str) -> None:
    width = 0.01 if mode == "worldCoordinates" else 0.01  # 1 cm, or 1% of the frame height
    outlined = build_panels(tmp_path / "o.glb", [Panel(mtoon={"outlineWidthMode": mode, "outlineWidthFactor": width,
                                                               "outlineColorFactor": [1.0, 0.0, 1.0]})])
    material = load_avatar(outlined).meshes[0].primitives[0].material
    assert material.outline_mode == OutlineMode(mode)
    plain = render(build_panels(tmp_path / "p.glb", [Panel(mtoon={"outlineWidthMode": "none", "outlineWidthFactor": width})]))
    image = render(outlined)
    magenta = (image[..., 0] > 60) & (image[..., 2] > 60) & (image[..., 1] < 20)
    assert magenta.sum() > 200 and not ((plain[..., 0] > 60) & (plain[..., 2] > 60) & (plain[..., 1] < 20)).any()
    if mode == "screenCoordinates":  # about 1% of 180 rows on each side
        rows, _ = box(image)
        rows_plain, _ = box(plain)
        grown = (rows.stop - rows.start) - (rows_plain.stop - rows_plain.start)
        assert 2 <= grown <= 8
