"""VRM 0.x / 1.0 loading: expressions (isBinary, overrides), humanoid, lookAt, meta, bad binds.

The two ``isBinary`` samples of the VRM specification draw a validation window whose texture atlas is
green where the expression state is allowed by the specification and red where it is not; the
texture transform binds of ``happy`` and ``blink`` pick the atlas tile. The tests sample that atlas
at the UV transform our ``ExpressionManager`` produces, over a grid of input weights.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from gltf_builders import add_extensions, build_test_avatar

from engine.avatar import load_avatar
from engine.avatar.expressions import Expression, ExpressionManager, MorphBind
from engine.avatar.vrm import LookAt, RangeMap
from engine.vocabulary.rigs import FaceRig

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "avatars"


def shared(name: str) -> Path:
    path = SHARED / name
    if not path.is_file():
        pytest.skip(f"shared sample {name} is not present at {path}")
    return path


# --- the expression model on its own ---------------------------------------------------------------

def test_is_binary_rounds_at_one_half() -> None:
    e = Expression("x", is_binary=True)
    assert [e.output_weight(w) for w in (0.0, 0.3, 0.5, 0.51, 1.0, 2.0)] == [0, 0, 0, 1, 1, 1]
    assert Expression("y").output_weight(0.3) == pytest.approx(0.3)


@pytest.mark.parametrize("flag, happy, expected_blink", [
    ("none", 0.6, 1.0), ("block", 0.01, 0.0), ("block", 0.0, 1.0), ("blend", 0.25, 0.75), ("blend", 1.0, 0.0),
])
def test_override_blink(flag: str, happy: float, expected_blink: float) -> None:
    manager = ExpressionManager((Expression("happy", override_blink=flag), Expression("blink"),
                                 Expression("blinkLeft")))
    final = manager.final_weights({"happy": happy, "blink": 1.0, "blinkLeft": 1.0})
    assert final["blink"] == pytest.approx(expected_blink)
    assert final["blinkLeft"] == pytest.approx(expected_blink)
    assert final["happy"] == pytest.approx(happy)  # the overriding expression itself is untouched


def test_overrides_add_up_and_each_class_is_separate() -> None:
    manager = ExpressionManager((Expression("happy", override_mouth="blend"), Expression("sad", override_mouth="blend"),
                                 Expression("aa"), Expression("blink"), Expression("lookUp"),
                                 Expression("surprised", override_look_at="block")))
    final = manager.final_weights({"happy": 0.4, "sad": 0.3, "aa": 1.0, "blink": 1.0, "lookUp": 1.0, "surprised": 0.2})
    assert final["aa"] == pytest.approx(0.3)  # 1 - (0.4 + 0.3)
    assert final["blink"] == pytest.approx(1.0)
    assert final["lookUp"] == 0.0
    final = manager.final_weights({"happy": 0.8, "sad": 0.8, "aa": 1.0})
    assert final["aa"] == 0.0  # the multiplier never goes below 0


def test_morph_binds_sum_and_scale() -> None:
    manager = ExpressionManager((Expression("aa", morph_binds=(MorphBind(0, 1, 0.5), MorphBind(0, 2, 1.0))),
                                 Expression("oh", morph_binds=(MorphBind(0, 1, 1.0),))))
    result = manager.evaluate({"aa": 0.8, "oh": 0.1})
    assert result.target_weights[(0, 1)] == pytest.approx(0.8 * 0.5 + 0.1)
    assert result.target_weights[(0, 2)] == pytest.approx(0.8)
    assert manager.evaluate({}).target_weights == {}


def test_look_at_range_maps() -> None:
    look = LookAt(type="expression", horizontal_outer=RangeMap(20.0, 1.0), vertical_up=RangeMap(10.0, 0.5),
                  vertical_down=RangeMap(10.0, 1.0))
    w = look.expression_weights(10.0, 20.0)
    assert w["lookLeft"] == pytest.approx(0.5) and w["lookRight"] == 0.0
    assert w["lookUp"] == pytest.approx(0.5) and w["lookDown"] == 0.0
    bone = LookAt(type="bone", horizontal_inner=RangeMap(90.0, 8.0), horizontal_outer=RangeMap(90.0, 12.0))
    assert bone.eye_angles(45.0, 0.0, "left")[0] == pytest.approx(6.0)  # toward its own side: outer
    assert bone.eye_angles(45.0, 0.0, "right")[0] == pytest.approx(4.0)  # toward the nose: inner


# --- the specification's isBinary samples -----------------------------------------------------------

WEIGHTS = (0.0, 0.2, 0.5, 0.51, 0.7, 1.0)


def _window_colours(avatar, happy: float, blink: float) -> list[str]:
    """Colours of the validation window's atlas tile for these weights: 'green' (allowed) or 'red'."""
    # KHR_texture_transform: uv' = offset + uv * scale; v = 0 is the image's top row
    window = next(p.material for m in avatar.meshes for p in m.primitives if p.material.name == "Validation Window")
    result = avatar.vrm.expressions.evaluate({"happy": happy, "blink": blink})
    ox, oy, sx, sy = result.uv_transforms.get(window.index, (*window.uv_offset, *window.uv_scale))
    image = window.base_color_texture.image
    h, w = image.shape[:2]
    colours = []
    for u in (0.1, 0.5, 0.9):
        for v in (0.1, 0.5, 0.9):
            x, y = ox + u * sx, oy + v * sy
            r, g = image[min(int(y * h), h - 1), min(int(x * w), w - 1), :2].astype(int)
            if abs(int(g) - int(r)) > 40:  # skip the white marks drawn on both colours
                colours.append("green" if g > r else "red")
    return colours


@pytest.mark.parametrize("sample", ["VRMC_vrm_expressions_isBinary_Overrides.vrm",
                                    "VRMC_vrm_expressions_isBinary_Overridden.vrm"])
def test_spec_samples_show_green_for_every_weight(sample: str) -> None:
    avatar = load_avatar(shared(sample))
    assert avatar.vrm is not None and avatar.vrm.version == "1.0"
    assert set(avatar.vrm.expression_names) == {"happy", "blink"}
    bad = [(h, b) for h in WEIGHTS for b in WEIGHTS if set(_window_colours(avatar, h, b)) != {"green"}]
    assert not bad, f"states the specification forbids: {bad}"


def test_overridden_sample_needs_binary_after_override() -> None:
    """The naive order (round first, then multiply) would leave blink at 0.7 here: red."""
    avatar = load_avatar(shared("VRMC_vrm_expressions_isBinary_Overridden.vrm"))
    final = avatar.vrm.expressions.final_weights({"happy": 0.3, "blink": 1.0})
    assert final["blink"] == 0.0 and final["happy"] == pytest.approx(0.3)
    overrides = load_avatar(shared("VRMC_vrm_expressions_isBinary_Overrides.vrm"))
    assert overrides.vrm.expressions.final_weights({"happy": 0.3, "blink": 0.6}) == {"happy": 0.0, "blink": 0.6}
    assert overrides.vrm.expressions.final_weights({"happy": 0.6, "blink": 0.6}) == {"happy": 1.0, "blink": 0.0}


def test_vrm1_sample_meta_humanoid_look_at() -> None:
    avatar = load_avatar(shared("VRMC_vrm_expressions_isBinary_Overrides.vrm"))
    vrm = avatar.vrm
    assert vrm.meta.title == "isBinary overrides" and vrm.meta.authors == ("pixiv Inc.",)
    assert vrm.meta.licence_url == "https://vrm.dev/licenses/1.0/"
    assert vrm.humanoid["head"] == 0 and vrm.humanoid["hips"] == 21
    assert vrm.look_at.type == "expression"
    assert avatar.facing == 1 and avatar.head_node == 0


def test_mtoon_sample_materials() -> None:
    avatar = load_avatar(shared("VRMC_materials_mtoon_UV_Animation_Test.vrm"))
    materials = {p.material.name: p.material for m in avatar.meshes for p in m.primitives}
    assert set(materials) == {"ScrollX", "ScrollY", "ScrollRot"}
    assert all(m.shading == "mtoon" for m in materials.values())
    assert avatar.vrm.humanoid["leftEye"] == 0


def test_vrm0_sample() -> None:
    avatar = load_avatar(shared("cryptovoxels.vrm"))
    vrm = avatar.vrm
    assert vrm.version == "0.x" and avatar.facing == -1
    assert vrm.meta.title == "cryptovoxels" and vrm.meta.authors == ("jin",) and vrm.meta.licence == "Other"
    assert "hub.vroid.com/license" in vrm.meta.licence_url
    assert avatar.nodes[vrm.humanoid["head"]].name and avatar.head_node == vrm.humanoid["head"]
    assert vrm.look_at.type == "bone"
    lo, hi = avatar.head_bounds()
    assert hi[1] > lo[1] and lo[1] > avatar.bounds()[0][1]


# --- synthetic VRM files: every field, and bad binds ------------------------------------------------

def _vrm1(tmp_path: Path, expressions: dict, **extra) -> Path:
    path = build_test_avatar(tmp_path / "a.vrm", with_morphs=("jawOpen", "eyeBlinkLeft"))
    ext = {"specVersion": "1.0", "meta": {"name": "Box", "authors": ["me"], "licenseUrl": "https://example.org/l"},
           "humanoid": {"humanBones": {"hips": {"node": 0}, "neck": {"node": 2}, "head": {"node": 3}}},
           "expressions": expressions, **extra}
    return add_extensions(path, {"VRMC_vrm": ext})


def test_vrm1_morph_binds_resolve_node_to_mesh(tmp_path: Path) -> None:
    path = _vrm1(tmp_path, {"preset": {
        "aa": {"morphTargetBinds": [{"node": 4, "index": 0, "weight": 0.5}], "overrideBlink": "block"},
        "blink": {"morphTargetBinds": [{"node": 4, "index": 1, "weight": 1.0}]}},
        "custom": {"smirk": {"morphTargetBinds": [{"node": 4, "index": 1, "weight": 0.25}], "isBinary": True}}})
    avatar = load_avatar(path)
    manager = avatar.vrm.expressions
    assert manager.names == ("aa", "blink", "smirk")
    assert manager.get("aa").morph_binds == (MorphBind(0, 0, 0.5),)
    assert manager.get("smirk").is_binary and not manager.get("smirk").preset
    result = manager.evaluate({"aa": 1.0, "blink": 1.0})
    assert result.target_weights == {(0, 0): 0.5}  # blink blocked by aa
    assert avatar.vrm.meta.title == "Box" and avatar.vrm.meta.licence_url == "https://example.org/l"
    assert avatar.vrm.look_at is None


def test_binds_to_missing_nodes_meshes_targets_warn_and_load(tmp_path: Path, caplog) -> None:
    path = _vrm1(tmp_path, {"preset": {
        "aa": {"morphTargetBinds": [{"node": 99, "index": 0, "weight": 1}, {"node": 0, "index": 0, "weight": 1},
                                    {"node": 4, "index": 7, "weight": 1}, {"node": 4, "index": 0, "weight": 1}]},
        "ih": {"overrideMouth": "sometimes"}}})
    with caplog.at_level(logging.WARNING):
        avatar = load_avatar(path)
    assert avatar.vrm.expressions.get("aa").morph_binds == (MorphBind(0, 0, 1.0),)
    assert avatar.vrm.expressions.get("ih").override_mouth == "none"
    text = caplog.text
    assert "node 99" in text and "lacks" in text and "unknown overrideMouth" in text


def test_malformed_vrm_extension_loads_as_gltf(tmp_path: Path, caplog) -> None:
    path = add_extensions(build_test_avatar(tmp_path / "b.vrm"), {"VRMC_vrm": {"expressions": {"preset": 5}}})
    with caplog.at_level(logging.WARNING):
        avatar = load_avatar(path)
    assert avatar.vrm is None and "unreadable" in caplog.text
    assert avatar.meshes


def test_vrm0_blend_shapes_and_facing(tmp_path: Path, caplog) -> None:
    path = build_test_avatar(tmp_path / "c.vrm", with_morphs=("jawOpen", "eyeBlinkLeft"))
    ext = {"meta": {"title": "Old", "author": "a", "licenseName": "CC0"},
           "humanoid": {"humanBones": [{"bone": "head", "node": 3}, {"bone": "neck", "node": 2}]},
           "firstPerson": {"lookAtTypeName": "BlendShape",
                           "lookAtHorizontalOuter": {"xRange": 30, "yRange": 1.0}},
           "blendShapeMaster": {"blendShapeGroups": [
               {"name": "A", "presetName": "a", "binds": [{"mesh": 0, "index": 0, "weight": 100}]},
               {"name": "Joy", "presetName": "joy", "binds": [{"mesh": 0, "index": 1, "weight": 50},
                                                              {"mesh": 5, "index": 0, "weight": 100}]},
               {"name": "Blink_L", "presetName": "blink_l", "isBinary": True, "binds": []},
               {"name": "Wink", "presetName": "unknown", "binds": [{"mesh": 0, "index": 9, "weight": 100}]}]},
           "materialProperties": [{"name": "material0", "shader": "VRM/MToon",
                                   "floatProperties": {"_ShadeToony": 0.8, "_OutlineWidthMode": 1, "_OutlineWidth": 0.2},
                                   "vectorProperties": {"_ShadeColor": [0.5, 0.4, 0.4, 1]}}]}
    add_extensions(path, {"VRM": ext})
    with caplog.at_level(logging.WARNING):
        avatar = load_avatar(path)
    vrm = avatar.vrm
    assert avatar.facing == -1 and vrm.version == "0.x"
    assert vrm.expression_names == ("aa", "happy", "blinkLeft", "Wink")
    assert vrm.expressions.get("aa").morph_binds == (MorphBind(0, 0, 1.0),)
    assert vrm.expressions.get("happy").morph_binds == (MorphBind(0, 1, 0.5),)
    assert vrm.expressions.get("blinkLeft").is_binary
    assert vrm.expressions.get("Wink").morph_binds == ()
    assert "missing mesh 5" in caplog.text
    assert vrm.look_at.type == "expression" and vrm.look_at.horizontal_outer == RangeMap(30.0, 1.0)
    assert vrm.humanoid == {"head": 3, "neck": 2} and vrm.meta.licence == "CC0"
    material = avatar.meshes[0].primitives[0].material
    assert material.shading == "mtoon" and material.shading_toony == pytest.approx(0.8)
    assert material.outline_width == pytest.approx(0.002)
    assert material.shade_color[0] == pytest.approx(0.214, abs=1e-3)  # sRGB 0.5 -> linear


def test_oversized_vrm_is_refused(tmp_path: Path, monkeypatch) -> None:
    from engine.avatar.loading import gltf as gltf_loader
    from engine.errors import AvatarLoadError

    path = _vrm1(tmp_path, {})
    monkeypatch.setattr(gltf_loader, "MAX_FILE_BYTES", 1000)
    with pytest.raises(AvatarLoadError, match="limit"):
        load_avatar(path)


def test_corrupt_vrm_is_a_load_error(tmp_path: Path) -> None:
    from engine.errors import AvatarLoadError

    path = _vrm1(tmp_path, {})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AvatarLoadError):
        load_avatar(path)


# --- the default avatar's VRM 1.0 export -------------------------------------------------------------

def test_default_vrm_loads_with_expressions_on_the_arkit_targets() -> None:
    from engine.avatar.retarget import AvatarBinding
    from engine.packets import AvatarFrame
    from engine.paths import DEFAULT_AVATAR

    vrm_path = DEFAULT_AVATAR.with_suffix(".vrm")
    avatar, glb = load_avatar(vrm_path), load_avatar(DEFAULT_AVATAR)
    vrm = avatar.vrm
    assert vrm.version == "1.0" and avatar.facing == 1 and glb.vrm is None
    assert vrm.meta.title and vrm.meta.authors and vrm.meta.licence_url.startswith("https://")
    for bone in ("hips", "spine", "chest", "neck", "head", "leftEye", "rightEye"):
        assert bone in vrm.humanoid
    assert avatar.nodes[vrm.humanoid["leftEye"]].name == "LeftEye"
    assert vrm.look_at.type == "bone"
    required = {"aa", "ih", "ou", "ee", "oh", "happy", "angry", "sad", "relaxed", "surprised", "blink",
                "blinkLeft", "blinkRight"}
    assert required <= set(vrm.expression_names)
    face = next(i for i, m in enumerate(avatar.meshes) if m.name == "Face")
    names = avatar.meshes[face].target_names
    for name in required:
        binds = vrm.expressions.get(name).morph_binds
        assert binds and all(b.mesh == face for b in binds), name
    bound = lambda name: {names[b.target]: b.weight for b in vrm.expressions.get(name).morph_binds}  # noqa: E731
    assert bound("blinkLeft") == {"eyeBlinkLeft": 1.0}
    assert bound("blink") == {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0}
    assert bound("aa")["jawOpen"] > 0.5 and bound("ou")["mouthPucker"] > 0.5 and bound("oh")["mouthFunnel"] > 0.5
    assert bound("happy")["mouthSmileLeft"] == 1.0 and bound("sad")["browInnerUp"] == 1.0
    # the same geometry as the GLB
    assert avatar.triangle_count == glb.triangle_count and avatar.morph_target_names == glb.morph_target_names
    # driven through the binding: perfect sync for ARKit names, VRM expressions by name
    binding = AvatarBinding(avatar)
    assert binding.rig == FaceRig.ARKIT
    pose = binding.pose(AvatarFrame(t_capture=0.0, sequence=0, controls={"happy": 1.0, "jawOpen": 0.5}))
    assert pose.morph_weights["jawOpen"] == 0.5
    smile = names.index("mouthSmileLeft")
    assert pose.target_weights[(face, smile)] == pytest.approx(1.0)


def test_vrm_binding_maps_arkit_controls_to_expressions(tmp_path: Path) -> None:
    """An avatar with VRM expressions but no ARKit targets: blinks, visemes, emotions, lookAt."""
    from engine.avatar.retarget import AvatarBinding, vrm_expression_weights
    from engine.packets import AvatarFrame

    path = build_test_avatar(tmp_path / "v.vrm", with_morphs=("A", "B", "C"))
    bind = lambda i: {"morphTargetBinds": [{"node": 4, "index": i, "weight": 1.0}]}  # noqa: E731
    ext = {"specVersion": "1.0", "meta": {"name": "x"},
           "humanoid": {"humanBones": {"head": {"node": 3}, "neck": {"node": 2}}},
           "lookAt": {"type": "expression", "rangeMapHorizontalOuter": {"inputMaxValue": 20, "outputScale": 1}},
           "expressions": {"preset": {"aa": bind(0), "blink": bind(1), "blinkLeft": bind(1), "blinkRight": bind(1),
                                      "happy": bind(2), "lookLeft": bind(2)}}}
    avatar = load_avatar(add_extensions(path, {"VRMC_vrm": ext}))
    binding = AvatarBinding(avatar)
    assert binding.rig == FaceRig.VRM and binding.has_face_controls
    w = vrm_expression_weights({"eyeBlinkLeft": 1.0, "eyeBlinkRight": 0.4, "jawOpen": 0.8},
                               set(binding.expression_names))
    assert w["blink"] == pytest.approx(0.4) and w["blinkLeft"] == pytest.approx(0.6) and w["blinkRight"] == 0.0
    assert w["aa"] > 0.8
    smile = vrm_expression_weights({"mouthSmileLeft": 1.0, "mouthSmileRight": 1.0}, {"happy", "sad"})
    assert smile["happy"] > 0.7 and smile["sad"] == 0.0
    pose = binding.pose(AvatarFrame(t_capture=0.0, sequence=0, controls={"jawOpen": 1.0}, eyes=(10.0, 0.0)))
    assert pose.target_weights[(0, 0)] > 0.9  # aa
    assert pose.target_weights[(0, 2)] == pytest.approx(0.5)  # lookLeft: 10 of 20 degrees
    assert not pose.morph_weights  # no ARKit targets to drive directly
    assert "Head" in pose.node_rotations


def test_avatar_without_face_controls_still_follows_head_and_gaze(tmp_path: Path) -> None:
    from engine.avatar.retarget import AvatarBinding
    from engine.packets import AvatarFrame

    avatar = load_avatar(build_test_avatar(tmp_path / "plain.glb", with_morphs=()))
    binding = AvatarBinding(avatar)
    assert binding.rig == FaceRig.POSE_ONLY and not binding.has_face_controls
    pose = binding.pose(AvatarFrame(t_capture=0.0, sequence=0, controls={"jawOpen": 1.0}, head=(20.0, 0.0, 0.0)))
    assert not pose.morph_weights and not pose.target_weights
    assert set(pose.node_rotations) >= {"Head", "Neck"}
    assert abs(pose.node_rotations["Head"][1]) > 0.1  # turned about the vertical axis
