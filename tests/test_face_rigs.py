"""Avatars people already own: every common face rig moves, framing follows the face and not the
hair, T/A-pose arms hang relaxed. Fixtures come from ``rig_builders`` (one per rig convention)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from conftest import needs_gl
from rig_builders import EYE_Y, LIPS_MAX, LIPS_MIN, MOUTH_DROP, SHOULDER_Y, build_rig_avatar

from engine.animation.animator import Animator
from engine.avatar import load_avatar
from engine.avatar.retarget import AvatarBinding
from engine.avatar.rig_names import canonical, find_targets
from engine.avatar.rig_table import oculus_viseme_weights, vrm_expression_weights
from engine.commands import cli
from engine.errors import AvatarcamError
from engine.packets import AvatarFrame, AvatarPose, VoiceFrame
from engine.render import AvatarRenderer, Camera, RenderOptions, frame_avatar
from engine.rotation import matrix_to_euler
from engine.vocabulary.framing import Framing
from engine.vocabulary.rigs import FaceRig, OculusViseme
from engine.vocabulary.vrm import VrmPreset

SMALL = RenderOptions(width=160, height=120, msaa=0, software_msaa=None, fxaa=False, framing=Framing.CLOSE_UP)
VISEMES = [v.value for v in OculusViseme]
BLINKS = {"eyeBlinkLeft": "blink_left", "eyeBlinkRight": "blink_right"}

# rig -> (builder arguments, the rig it must be read as, whether it can blink)
RIGS: dict[str, tuple[dict, FaceRig, bool]] = {
    "arkit": (dict(morphs={"blendShape1.jawOpen": "mouth", "EyeBlink_L": "blink_left", "eyeBlink.R": "blink_right"}),
              FaceRig.ARKIT, True),
    "oculus_visemes": (dict(morphs={**dict.fromkeys(VISEMES, "none"), "viseme_aa": "mouth", "viseme_O": "mouth",
                                    **BLINKS}), FaceRig.OCULUS_VISEMES, True),
    "mouth_open_smile": (dict(morphs={"mouthOpen": "mouth", "mouthSmile": "smile", "eyesClosed": "blink"}),
                         FaceRig.MOUTH_OPEN_SMILE, True),
    "vrm_1.0": (dict(morphs={"A": "mouth", "Blink": "blink"}, vrm="1.0", expressions={"aa": ["A"], "blink": ["Blink"]}),
                FaceRig.VRM, True),
    "vrm_0.x": (dict(morphs={"A": "mouth", "Blink_L": "blink_left", "Blink_R": "blink_right"}, vrm="0.x",
                     expressions={"aa": ["A"], "blinkLeft": ["Blink_L"], "blinkRight": ["Blink_R"]}), FaceRig.VRM, True),
    "vroid_fcl": (dict(morphs={"Fcl_MTH_A": "mouth", "Fcl_EYE_Close_L": "blink_left", "Fcl_EYE_Close_R": "blink_right",
                               "Fcl_ALL_Joy": "smile"}), FaceRig.VROID_FCL, True),
    "jaw_bone": (dict(jaw_bone=True), FaceRig.JAW_BONE, False),
}


def frame(controls: dict | None = None, **fields) -> AvatarFrame:
    return AvatarFrame(t_capture=0.0, sequence=0, controls=controls or {}, **fields)


def project(camera: Camera, options: RenderOptions, point) -> np.ndarray:
    """Pixel (x, y from the top) of a world point."""
    clip = camera.projection_matrix(options.width / options.height) @ camera.view_matrix() @ np.r_[point, 1.0]
    ndc = clip[:3] / clip[3]
    return np.array([(ndc[0] + 1) / 2 * options.width, (1 - ndc[1]) / 2 * options.height])


def region(camera: Camera, options: RenderOptions, lo, hi, margin: int = 4) -> tuple[slice, slice]:
    corners = np.array([project(camera, options, (x, y, hi[2])) for x in (lo[0], hi[0]) for y in (lo[1], hi[1])])
    (x0, y0), (x1, y1) = corners.min(axis=0) - margin, corners.max(axis=0) + margin
    return slice(max(int(y0), 0), int(np.ceil(y1))), slice(max(int(x0), 0), int(np.ceil(x1)))


@pytest.fixture(scope="module")
def rig_paths(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("rigs")
    return {name: build_rig_avatar(folder / f"{name}.{'vrm' if 'vrm' in name else 'glb'}", **kwargs)
            for name, (kwargs, _, _) in RIGS.items()}


# --- every rig moves its mouth (and blinks where it can) ------------------------------------------

@needs_gl
@pytest.mark.parametrize("name", list(RIGS))
def test_jaw_open_moves_the_mouth_on_every_rig(rig_paths, name: str) -> None:
    _, rig, blinks = RIGS[name]
    avatar = load_avatar(rig_paths[name])
    binding = AvatarBinding(avatar)
    assert binding.rig == rig and binding.has_face_controls
    with AvatarRenderer(avatar, SMALL) as renderer:
        camera = renderer.camera()
        neutral = renderer.render(binding.pose(frame())).astype(int)
        jaw = renderer.render(binding.pose(frame({"jawOpen": 1.0}))).astype(int)
        closed = renderer.render(binding.pose(frame({"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0}))).astype(int)
    lips = region(camera, SMALL, LIPS_MIN, LIPS_MAX, margin=6)
    lower_face = region(camera, SMALL, (-0.12, 1.55 - MOUTH_DROP, 0.0), (0.12, 1.665, 0.128))  # lips to chin
    eyes = region(camera, SMALL, (-0.07, EYE_Y - 0.02, 0.0), (0.07, EYE_Y + 0.02, 0.128))
    changed = np.abs(jaw - neutral).max(axis=2) > 30
    assert changed[lips].sum() >= 15, f"{name}: jawOpen changed {changed[lips].sum()} pixels at the lips"
    assert changed.sum() - changed[lower_face].sum() <= 0.1 * changed.sum(), "the change is about the mouth"
    assert not changed[eyes].any()
    blinked = np.abs(closed - neutral).max(axis=2) > 30
    if blinks:
        assert blinked[eyes].sum() >= 8, f"{name}: blinking changed {blinked[eyes].sum()} eye pixels"
    else:
        assert not blinked.any()
        assert any("no blink target" in line for line in binding.limits)


def test_each_convention_binds_its_own_names(rig_paths) -> None:
    arkit = AvatarBinding(load_avatar(rig_paths["arkit"]))
    assert dict(arkit.arkit_targets) == {"jawOpen": "blendShape1.jawOpen", "eyeBlinkLeft": "EyeBlink_L",
                                         "eyeBlinkRight": "eyeBlink.R"}
    visemes = AvatarBinding(load_avatar(rig_paths["oculus_visemes"]))
    assert len(visemes.face.visemes) == 15 and set(visemes.arkit_targets) == set(BLINKS)
    pose = visemes.pose(frame({"jawOpen": 0.9, "mouthPucker": 0.0}))
    assert pose.morph_weights["viseme_aa"] > 0.9 and pose.morph_weights["viseme_sil"] < 0.1
    fcl = AvatarBinding(load_avatar(rig_paths["vroid_fcl"]))
    pose = fcl.pose(frame({"mouthSmileLeft": 1.0, "mouthSmileRight": 1.0, "cheekSquintLeft": 0.6,
                           "cheekSquintRight": 0.6, "eyeBlinkLeft": 1.0}))
    assert pose.morph_weights["Fcl_ALL_Joy"] > 0.9 and pose.morph_weights["Fcl_EYE_Close_L"] == 1.0
    assert pose.morph_weights["Fcl_EYE_Close_R"] == 0.0
    simple = AvatarBinding(load_avatar(rig_paths["mouth_open_smile"]))
    pose = simple.pose(frame({"mouthSmileLeft": 0.8, "mouthSmileRight": 0.6, "eyeBlinkLeft": 1.0, "eyeBlinkRight": 0.5}))
    assert pose.morph_weights["mouthSmile"] == pytest.approx(0.7) and pose.morph_weights["eyesClosed"] == 0.75
    jaw = AvatarBinding(load_avatar(rig_paths["jaw_bone"]))
    assert "Jaw" in jaw.pose(frame({"jawOpen": 1.0})).node_rotations and not jaw.face.opens_mouth


def test_empty_vrm_presets_fall_back_to_the_raw_fcl_morphs(tmp_path: Path) -> None:
    """A VRoid export whose VRM presets bind nothing still moves through its Fcl targets."""
    path = build_rig_avatar(tmp_path / "empty.vrm", {"Fcl_MTH_A": "mouth", "Fcl_EYE_Close": "blink"}, vrm="1.0",
                            expressions={"aa": [], "blink": []})
    binding = AvatarBinding(load_avatar(path))
    assert binding.rig == FaceRig.VROID_FCL and not binding.limits
    assert binding.pose(frame({"jawOpen": 1.0})).morph_weights["Fcl_MTH_A"] == 1.0


def test_exporter_spellings_fold_to_one_name() -> None:
    for spelling in ("eyeBlinkLeft", "EyeBlink_L", "eye_blink.L", "L_eyeBlink", "Eye Blink Left", "eyeblink-l",
                     "EYEBLINKLEFT"):
        assert canonical(spelling) == "eyeblinkleft", spelling
    assert canonical("mouthFunnel") == "mouthfunnel"  # a trailing l is not a side without a separator
    names = ("Viseme_AA", "viseme-PP", "Face.viseme_sil", "Fcl_EYE_Close_L", "mouthOpen")
    found = find_targets(names, ("viseme_aa", "viseme_PP", "viseme_sil", "Fcl_EYE_Close_L", "viseme_kk"))
    assert found == {"viseme_aa": "Viseme_AA", "viseme_PP": "viseme-PP", "viseme_sil": "Face.viseme_sil",
                     "Fcl_EYE_Close_L": "Fcl_EYE_Close_L"}


def test_the_vrm_table_never_pops() -> None:
    """A face moving smoothly moves every preset smoothly (no weight jumps at a threshold)."""
    steps = np.linspace(0.0, 1.0, 201)
    for sweep in ("jawOpen", "eyeBlinkLeft"):
        rows = [vrm_expression_weights({"mouthSmileLeft": 1.0, "mouthSmileRight": 1.0, "mouthStretchLeft": 0.5,
                                        "mouthStretchRight": 0.5, "eyeBlinkRight": 0.5, sweep: x}, set(VrmPreset))
                for x in steps]
        for preset in VrmPreset:
            values = np.array([row.get(preset, 0.0) for row in rows])
            assert np.abs(np.diff(values)).max() < 0.05, (sweep, preset)


def test_oculus_visemes_read_the_mouth_shape_and_follow_the_voice() -> None:
    V = OculusViseme
    rest = oculus_viseme_weights({})
    assert rest[V.SIL] == 1.0 and max(w for v, w in rest.items() if v != V.SIL) == 0.0
    assert max(oculus_viseme_weights({"jawOpen": 0.9}).items(), key=lambda kv: kv[1])[0] == V.AA
    assert max(oculus_viseme_weights({"mouthPucker": 0.9, "jawOpen": 0.1}).items(), key=lambda kv: kv[1])[0] == V.U
    assert max(oculus_viseme_weights({"mouthPressLeft": 1.0, "mouthPressRight": 1.0}).items(),
               key=lambda kv: kv[1])[0] == V.PP
    assert oculus_viseme_weights({"tongueOut": 0.8})[V.TH] == 1.0
    # while speaking, the voice's own visemes take over (consonants the camera cannot see)
    spoken = oculus_viseme_weights({"jawOpen": 0.4}, {"FF": 1.0}, voice_weight=1.0)
    assert spoken[V.FF] == 1.0 and spoken[V.AA] == 0.0
    half = oculus_viseme_weights({"jawOpen": 0.9}, {"FF": 1.0}, voice_weight=0.5)
    assert half[V.FF] == pytest.approx(0.5) and 0.4 < half[V.AA] < 0.6


def test_the_voices_visemes_reach_the_avatar_frame() -> None:
    animator = Animator()
    for i in range(30):
        voice = VoiceFrame(t_capture=i / 30, speaking_probability=1.0, visemes={"ou": 0.8, "sil": 0.2},
                           mouth={"jawOpen": 0.3})
        state = animator.update(None, i / 30, voice=voice)
    assert state.voice_weight > 0.9 and state.visemes["ou"] == 0.8
    assert animator.update(None, 5.0).visemes == {}  # a stale voice no longer owns the mouth


def test_limits_are_listed_and_building_a_binding_says_nothing(rig_paths, caplog) -> None:
    # The app builds one binding to check an avatar and the render thread another to show it: the
    # line is said by whoever shows it (run prints it, the app shows and logs it), once.
    with caplog.at_level(logging.INFO, logger="engine.avatar.retarget"):
        binding = AvatarBinding(load_avatar(rig_paths["jaw_bone"]))
    assert binding.describe() == "face rig: jaw bone only; no blink target: the eyes stay open"
    assert [r.getMessage() for r in caplog.records if "face rig" in r.getMessage()] == []
    plain = AvatarBinding(load_avatar(build_rig_avatar(rig_paths["jaw_bone"].with_name("plain.glb"), eye_bones=False)))
    assert plain.rig == FaceRig.POSE_ONLY and not plain.has_face_controls
    assert [line.split(":")[0] for line in plain.limits] == [
        "no mouth-open target or jaw bone", "no blink target", "no eye bones or look targets"]


# --- snapshot, doctor and run name the rig ------------------------------------------------------------

@needs_gl
def test_snapshot_takes_arkit_names_on_a_vrm(rig_paths, tmp_path: Path) -> None:
    import cv2

    from engine.commands.snapshot import SnapshotSpec, render_snapshot

    path = rig_paths["vrm_1.0"]
    lines: list[str] = []
    neutral = render_snapshot(SnapshotSpec(avatar=path, size=(160, 120)), tmp_path / "n.png")
    jaw = render_snapshot(SnapshotSpec(avatar=path, expressions={"jawOpen": 1.0}, size=(160, 120)),
                          tmp_path / "j.png", report=lines.append)
    assert lines == ["face rig: VRM presets"]
    a, b = (cv2.imread(str(p)).astype(int) for p in (neutral, jaw))
    assert (np.abs(a - b).max(axis=2) > 30).sum() >= 10  # retargeted to the VRM's aa, as run does
    own = render_snapshot(SnapshotSpec(avatar=path, expressions={"aa": 1.0}, size=(160, 120)), tmp_path / "aa.png")
    np.testing.assert_array_equal(cv2.imread(str(own)), cv2.imread(str(jaw)))  # jawOpen 1 is aa 1 here


def test_snapshot_error_lists_names_once_sorted(tmp_path: Path) -> None:
    from engine.commands.snapshot import SnapshotSpec, render_snapshot

    path = build_rig_avatar(tmp_path / "dup.vrm", {"aa": "mouth", "Blink": "blink"}, vrm="1.0",
                            expressions={"aa": ["aa"], "blink": ["Blink"]})
    with pytest.raises(AvatarcamError) as error:
        render_snapshot(SnapshotSpec(avatar=path, expressions={"zeta": 1.0, "alpha": 1.0, "jawOpen": 1.0}),
                        tmp_path / "x.png")
    assert error.value.message == "The avatar has no expression called alpha, zeta."
    assert error.value.hint.endswith("or one of its own: Blink, aa, blink.")


def test_doctor_names_the_avatars_rig_and_limits(rig_paths, capsys) -> None:
    cli.main(["doctor", "--avatar", str(rig_paths["oculus_visemes"])])
    out = capsys.readouterr().out
    assert "avatar face rig" in out and "Oculus visemes" in out
    cli.main(["doctor", "--avatar", str(rig_paths["jaw_bone"])])
    out = capsys.readouterr().out
    assert "jaw bone only" in out and "no blink target: the eyes stay open" in out


@needs_gl
def test_run_says_which_rig_drives_the_avatar(rig_paths, capsys) -> None:
    code = cli.main(["run", "--demo", "--avatar", str(rig_paths["vrm_0.x"]), "--sink", "null", "--seconds", "0.5",
                     "--quiet", "--size", "160x120"])
    assert code == 0
    assert "avatar vrm_0.x.vrm: face rig: VRM presets" in capsys.readouterr().err


# --- framing: the face, not the hair ------------------------------------------------------------------

@needs_gl
@pytest.mark.parametrize("hair", ["named", "unnamed"])
def test_framing_puts_the_eyes_in_the_upper_third_with_long_hair(tmp_path: Path, hair: str) -> None:
    """Long hair down to the hips, as a Hair mesh or hidden in a mesh bound to the head bone."""
    avatar = load_avatar(build_rig_avatar(tmp_path / "hair.glb", {"jawOpen": "mouth"}, hair=hair, eye_bones=False))
    lo, hi = avatar.head_bounds()
    assert lo[1] == pytest.approx(1.55) and hi[1] < 1.95  # chin to crown, not hip to crown
    options = RenderOptions(width=320, height=240, msaa=0, software_msaa=None, fxaa=False)
    with AvatarRenderer(avatar, options) as renderer:
        image = renderer.render(AvatarBinding(avatar).pose(frame())).astype(int)
        camera = renderer.camera()
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    rows = np.flatnonzero(((g > r + 40) & (g > b + 40)).any(axis=1))  # the green eyes
    assert len(rows) and rows.mean() < options.height / 3, "eyes below the upper third"
    assert rows.mean() > options.height / 6, "not cut off at the top"
    assert abs(project(camera, options, (0.0, EYE_Y, 0.12))[1] - rows.mean()) < 3

    def face_height(cam: Camera) -> float:
        return project(cam, options, (0.0, 1.55, 0.12))[1] - project(cam, options, (0.0, 1.85, 0.12))[1]

    assert face_height(camera) > 0.3 * options.height
    # framed from a box that included the hair (hips to crown), the face would come out tiny
    whole_head = (np.array([lo[0], 0.9, lo[2]]), hi)
    hair_framed = frame_avatar(avatar.bounds(), whole_head, aspect=4 / 3, fov_y_deg=options.fov_y_deg)
    assert face_height(hair_framed) < 0.15 * options.height


def test_framings_widen_in_order_and_use_the_eye_bones(tmp_path: Path) -> None:
    avatar = load_avatar(build_rig_avatar(tmp_path / "eyes.glb", hair="named"))
    assert avatar.eye_height() == pytest.approx(EYE_Y)
    options = RenderOptions(width=320, height=180)
    spans = []
    for framing in (Framing.CLOSE_UP, Framing.HEAD_AND_SHOULDERS, Framing.UPPER_BODY):
        camera = frame_avatar(avatar.bounds(), avatar.head_bounds(), aspect=16 / 9, fov_y_deg=options.fov_y_deg,
                              framing=framing, eye_height=avatar.eye_height())
        eyes = project(camera, options, (0.0, EYE_Y, 0.12))
        chin = project(camera, options, (0.0, 1.55, 0.12))
        spans.append(chin[1] - eyes[1])
        assert 0 < eyes[1] < options.height / 2
    assert spans == sorted(spans, reverse=True)
    with pytest.raises(ValueError, match="unknown framing"):
        frame_avatar(avatar.bounds(), avatar.head_bounds(), aspect=1.0, fov_y_deg=25.0, framing="portrait")
    assert cli.parse_framing("upper-body") == Framing.UPPER_BODY
    with pytest.raises(Exception, match="close-up, head-and-shoulders, upper-body, full-body"):
        cli.parse_framing("waist")


# --- relaxed arms and a body that follows the head -----------------------------------------------------

def _hands_and_shoulders(avatar, pose) -> tuple[np.ndarray, np.ndarray]:
    index = {n.name: i for i, n in enumerate(avatar.nodes)}
    world = avatar.world_matrices({index[name]: q for name, q in pose.node_rotations.items()})
    hands = np.array([world[index[n]][:3, 3] for n in ("LeftHand", "RightHand")])
    shoulders = np.array([world[index[n]][:3, 3] for n in ("LeftUpperArm", "RightUpperArm")])
    return hands, shoulders


@pytest.mark.parametrize("arms", ["T", "A"])
def test_t_and_a_pose_arms_hang_relaxed_inside_the_frame(tmp_path: Path, arms: str) -> None:
    avatar = load_avatar(build_rig_avatar(tmp_path / "arms.vrm", {"A": "mouth"}, arms=arms, vrm="1.0",
                                          expressions={"aa": ["A"]}))
    binding = AvatarBinding(avatar)
    assert binding.arms_relaxed
    options = RenderOptions(width=320, height=180)
    for framing in (Framing.HEAD_AND_SHOULDERS, Framing.UPPER_BODY):
        camera = frame_avatar(avatar.bounds(), avatar.head_bounds(), aspect=16 / 9, fov_y_deg=options.fov_y_deg,
                              framing=framing, eye_height=avatar.eye_height())
        rest_hands, _ = _hands_and_shoulders(avatar, AvatarPose())
        if arms == "T" and framing == Framing.HEAD_AND_SHOULDERS:  # guard: at rest the hands are outside it
            assert any(not 0 <= project(camera, options, h)[0] <= options.width for h in rest_hands)
        for head in ((0.0, 0.0, 0.0), (30.0, 10.0, 15.0)):
            hands, shoulders = _hands_and_shoulders(avatar, binding.pose(frame(head=head)))
            assert (hands[:, 1] < shoulders[:, 1] - 0.4).all(), "hands hang well below the shoulders"
            assert hands[0, 0] > 0.1 and hands[1, 0] < -0.1, "each hand at its own side"
            for hand in hands:
                assert 0 <= project(camera, options, hand)[0] <= options.width


def test_arms_modelled_relaxed_are_left_alone(tmp_path: Path) -> None:
    avatar = load_avatar(build_rig_avatar(tmp_path / "relaxed.glb", arms="relaxed"))
    binding = AvatarBinding(avatar)
    assert not binding.arms_relaxed
    hands, shoulders = _hands_and_shoulders(avatar, binding.pose(frame()))
    assert (hands[:, 1] < SHOULDER_Y - 0.5).all()


def test_the_chest_follows_the_head_a_little_and_the_head_turns_as_tracked(tmp_path: Path) -> None:
    avatar = load_avatar(build_rig_avatar(tmp_path / "body.glb", arms="T"))
    pose = AvatarBinding(avatar).pose(frame(head=(24.0, 0.0, 0.0), neck=(6.0, 0.0, 0.0)))
    index = {n.name: i for i, n in enumerate(avatar.nodes)}
    world = avatar.world_matrices({index[name]: q for name, q in pose.node_rotations.items()})
    chest_yaw = matrix_to_euler(world[index["Chest"]][:3, :3])[0]
    head_yaw = matrix_to_euler(world[index["Head"]][:3, :3])[0]
    assert 2.0 < chest_yaw < 8.0  # subtle
    assert head_yaw == pytest.approx(30.0, abs=1e-6)


def test_the_highest_spine_bone_follows_the_head() -> None:
    """Ready Player Me / Mixamo without a prefix: Hips > Spine > Spine1 > Spine2 > Neck > Head."""
    from engine.avatar import Avatar, Node

    names = ("Hips", "Spine", "Spine1", "Spine2", "Neck", "Head")
    nodes = tuple(Node(name, i - 1 if i else None, (i + 1,) if i + 1 < len(names) else (), (0.0, 0.2, 0.0))
                  for i, name in enumerate(names))
    pose = AvatarBinding(Avatar(nodes=nodes, meshes=(), skins=(), scene_roots=(0,))).pose(frame(head=(20.0, 0, 0)))
    assert {"Spine2", "Neck", "Head"} <= set(pose.node_rotations) and "Spine" not in pose.node_rotations
