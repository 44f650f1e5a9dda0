"""The default avatar (assets/default_avatar.glb): structure, rig and what each ARKit shape does.

The file is read with pygltflib and decoded here (dense and sparse accessors), independently of the
engine's loader, so these tests pin the asset itself. Conventions: metres, +Y up, the avatar faces
+Z, the subject's left is +X.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pygltflib as gl
import pytest

from engine.avatar.generator import EYE_SHIFT, IDENTITY_GAIN
from engine.vocabulary.arkit import ARKIT_BLENDSHAPES
from engine.vocabulary.looks import IDENTITY_MORPHS, IdentityMorph

REPO = Path(__file__).resolve().parents[1]
ASSET = REPO / "assets" / "default_avatar.glb"
SCRIPT = REPO / "assets" / "make_default_avatar.py"

_DTYPES = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}

SIDED = {  # shapes that must stay on one side of the face
    "browDown", "browOuterUp", "cheekSquint", "eyeBlink", "eyeLookDown", "eyeLookIn", "eyeLookOut",
    "eyeLookUp", "eyeSquint", "eyeWide", "mouthDimple", "mouthFrown", "mouthLowerDown", "mouthPress",
    "mouthSmile", "mouthStretch", "mouthUpperUp", "noseSneer",
}


def read_accessor(g: gl.GLTF2, blob: bytes, index: int) -> np.ndarray:
    """Accessor ``index`` as a (count, width) float64 array, sparse overrides applied."""
    acc = g.accessors[index]
    width = _WIDTH[acc.type]
    dtype = np.dtype(_DTYPES[acc.componentType])
    if acc.bufferView is None:
        out = np.zeros((acc.count, width))
    else:
        view = g.bufferViews[acc.bufferView]
        assert view.byteStride in (None, 0, dtype.itemsize * width), "strided views are not used here"
        start = (view.byteOffset or 0) + (acc.byteOffset or 0)
        out = np.frombuffer(blob, dtype, acc.count * width, start).reshape(acc.count, width).astype(np.float64)
    if acc.sparse is not None:
        s = acc.sparse
        iv, vv = g.bufferViews[s.indices.bufferView], g.bufferViews[s.values.bufferView]
        where = np.frombuffer(blob, _DTYPES[s.indices.componentType], s.count,
                              (iv.byteOffset or 0) + (s.indices.byteOffset or 0))
        assert where.max() < acc.count
        out[where] = np.frombuffer(blob, dtype, s.count * width,
                                   (vv.byteOffset or 0) + (s.values.byteOffset or 0)).reshape(s.count, width)
    return out


@dataclass
class Prim:
    """One decoded primitive of the morphing Face mesh."""

    part: str
    material: str
    pos: np.ndarray
    normal: np.ndarray
    tris: np.ndarray
    deltas: dict[str, np.ndarray]
    normal_deltas: dict[str, np.ndarray]

    def at(self, weights: dict[str, float]) -> np.ndarray:
        """Positions with the given blendshape weights applied."""
        out = self.pos.copy()
        for name, w in weights.items():
            out += w * self.deltas[name]
        return out


@dataclass
class Avatar:
    gltf: gl.GLTF2
    blob: bytes
    nodes: dict[str, int]
    world: dict[str, np.ndarray]
    face: list[Prim]

    def parts(self, prefix: str) -> list[Prim]:
        return [p for p in self.face if p.part.startswith(prefix)]

    def concat(self, attr: str, prefix: str = "", name: str | None = None) -> np.ndarray:
        prims = self.parts(prefix)
        if attr == "delta":
            return np.concatenate([p.deltas[name] for p in prims])
        return np.concatenate([getattr(p, attr) for p in prims])


def node_world(g: gl.GLTF2) -> dict[str, np.ndarray]:
    """World translation of every named node (the avatar uses translations only)."""
    out: dict[str, np.ndarray] = {}

    def visit(i: int, base: np.ndarray) -> None:
        node = g.nodes[i]
        assert node.rotation in (None, [0, 0, 0, 1]) and node.scale in (None, [1, 1, 1]) and node.matrix is None
        here = base + np.array(node.translation or [0.0, 0.0, 0.0])
        out[node.name] = here
        for c in node.children or []:
            visit(c, here)

    for root in g.scenes[g.scene or 0].nodes:
        visit(root, np.zeros(3))
    return out


@pytest.fixture(scope="module")
def avatar() -> Avatar:
    assert ASSET.is_file(), "run assets/make_default_avatar.py"
    g = gl.GLTF2.load(str(ASSET))
    blob = g.binary_blob()
    nodes = {n.name: i for i, n in enumerate(g.nodes)}
    face_mesh = next(m for m in g.meshes if m.name == "Face")
    names = face_mesh.extras["targetNames"]
    prims = []
    for p in face_mesh.primitives:
        deltas = {n: read_accessor(g, blob, t["POSITION"]) for n, t in zip(names, p.targets)}
        nd = {n: read_accessor(g, blob, t["NORMAL"]) for n, t in zip(names, p.targets)}
        prims.append(Prim((p.extras or {}).get("part", ""), g.materials[p.material].name,
                          read_accessor(g, blob, p.attributes.POSITION),
                          read_accessor(g, blob, p.attributes.NORMAL),
                          read_accessor(g, blob, p.indices).astype(int).reshape(-1, 3), deltas, nd))
    return Avatar(g, blob, nodes, node_world(g), prims)


# ------------------------------------------------------------------------------------------------
# Structure
# ------------------------------------------------------------------------------------------------
def test_file_is_commit_sized_glb() -> None:
    data = ASSET.read_bytes()
    assert data[:4] == b"glTF"
    assert len(data) < 3_500_000


def test_node_hierarchy(avatar: Avatar) -> None:
    g = avatar.gltf
    chain = ["Root", "Hips", "Spine", "Chest", "Neck", "Head"]
    for parent, child in zip(chain, chain[1:]):
        assert avatar.nodes[child] in g.nodes[avatar.nodes[parent]].children, (parent, child)
    for eye in ("LeftEye", "RightEye"):
        assert avatar.nodes[eye] in g.nodes[avatar.nodes["Head"]].children
    assert g.scenes[g.scene].nodes == [avatar.nodes["Root"]]
    assert g.nodes[avatar.nodes["Root"]].extras["avatarcam"] == {"version": 1, "arkit": True}


def test_proportions_and_facing(avatar: Avatar) -> None:
    skin = avatar.concat("pos", "skin")
    assert 1.70 < skin[:, 1].max() < 1.75 and 1.46 < skin[:, 1].min() < 1.50    # ~0.24 m head
    assert 0.13 < np.ptp(skin[:, 0]) < 0.18
    nose = skin[np.argmax(skin[:, 2])]                                           # faces +Z
    assert abs(nose[0]) < 0.002 and 1.54 < nose[1] < 1.59 and nose[2] > 0.09
    w = avatar.world
    assert 1.50 < w["Head"][1] < 1.56 and 1.38 < w["Neck"][1] < 1.47            # pivots on the neck
    assert w["Neck"][1] < w["Head"][1] < skin[:, 1].min() + 0.08


def test_eyes_sit_in_their_nodes(avatar: Avatar) -> None:
    g = avatar.gltf
    left, right = avatar.world["LeftEye"], avatar.world["RightEye"]
    assert left[0] > 0.02 and right[0] < -0.02, "LeftEye is the subject's left (+X)"
    assert np.allclose(left * [-1, 1, 1], right)
    assert 1.58 < left[1] < 1.63
    mesh = g.meshes[g.nodes[avatar.nodes["LeftEye"]].mesh]
    assert g.nodes[avatar.nodes["RightEye"]].mesh is not None
    colours = {}
    radii = []
    for p in mesh.primitives:
        pos = read_accessor(g, avatar.blob, p.attributes.POSITION)
        radii.append(np.linalg.norm(pos, axis=1))
        mat = g.materials[p.material]
        colours[mat.name] = np.array(mat.pbrMetallicRoughness.baseColorFactor[:3])
        if mat.name == "Iris":  # the iris colour is a per-vertex gradient, darkest at the limbal ring
            vc = read_accessor(g, avatar.blob, p.attributes.COLOR_0)[:, :3]
            colours[mat.name] = colours[mat.name] * vc.mean(axis=0)
            order = np.argsort(pos[:, 2])  # z falls from the pupil edge toward the limbus
            assert vc[order[:20]].mean() < 0.6 * vc[order[-20:]].mean()
        if mat.name != "Sclera":
            assert pos[:, 2].min() > 0.0, "iris, pupil and catch-light face forward (+Z)"
    r = np.concatenate(radii)
    assert 0.012 < r.min() and r.max() < 0.019, "the eyeball is centred on its node"
    assert colours["Sclera"].min() > 0.8 and colours["Pupil"].max() < 0.05
    assert 0.05 < colours["Iris"].mean() < 0.6
    assert "CatchLight" in colours and g.materials[[m.name for m in g.materials].index("CatchLight")].emissiveFactor
    # the eyeball's front stands out of the skin, inside the eye opening
    skin = avatar.concat("pos", "skin")
    near = skin[np.hypot(skin[:, 0] - left[0], skin[:, 1] - left[1]) < 0.003]
    assert left[2] + r.min() > near[:, 2].max()


def test_face_mesh_has_the_52_arkit_targets_then_the_identity_targets(avatar: Avatar) -> None:
    face = next(m for m in avatar.gltf.meshes if m.name == "Face")
    names = face.extras["targetNames"]
    assert names == list(ARKIT_BLENDSHAPES) + list(IDENTITY_MORPHS), "VRM binds the ARKit targets by index"
    assert face.weights == [0.0] * len(names)
    for p in face.primitives:
        assert len(p.targets) == len(names)
        assert all(set(t) == {"POSITION", "NORMAL"} for t in p.targets)
    for mesh in avatar.gltf.meshes:
        for p in mesh.primitives:
            if p.targets:
                assert mesh.extras["targetNames"] == names
    parts = {p.part for p in avatar.face}
    assert {"skin", "teeth_upper", "teeth_lower", "tongue", "brow_L", "brow_R", "lid_LU", "lid_LD"} <= parts


def test_materials(avatar: Avatar) -> None:
    mats = {m.name: m for m in avatar.gltf.materials}
    for name in ("Skin", "Lips", "Mouth", "Teeth", "Tongue", "Hair", "Brows", "Shirt", "Sclera", "Iris", "Pupil"):
        pbr = mats[name].pbrMetallicRoughness
        assert pbr.metallicFactor == 0.0 and 0.0 < pbr.roughnessFactor <= 1.0
        assert mats[name].doubleSided is (name == "Mouth"), "closed surfaces are single-sided"
    assert np.mean(mats["Mouth"].pbrMetallicRoughness.baseColorFactor[:3]) < 0.15
    skin = mats["Skin"].pbrMetallicRoughness.baseColorFactor
    assert skin[0] > skin[1] > skin[2], "a warm skin tone"


def test_triangle_budget(avatar: Avatar) -> None:
    g = avatar.gltf
    total = 0
    for node in g.nodes:
        if node.mesh is not None:
            for p in g.meshes[node.mesh].primitives:
                total += g.accessors[p.indices].count // 3
    assert 10_000 < total <= 30_000


def test_normals_are_unit_and_outward(avatar: Avatar) -> None:
    skin = [p for p in avatar.face if p.part == "skin" and p.material == "Skin"][0]
    assert np.allclose(np.linalg.norm(skin.normal, axis=1), 1.0, atol=1e-3)
    front = skin.pos[:, 2] > 0.06
    assert np.mean(skin.normal[front, 2] > 0) > 0.95


# ------------------------------------------------------------------------------------------------
# Skin
# ------------------------------------------------------------------------------------------------
def test_skin_joints_and_inverse_bind_matrices(avatar: Avatar) -> None:
    g = avatar.gltf
    assert len(g.skins) == 1
    skin = g.skins[0]
    joint_names = [g.nodes[j].name for j in skin.joints]
    assert {"Chest", "Neck", "Head"} <= set(joint_names)
    ibm = read_accessor(g, avatar.blob, skin.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)
    for name, m in zip(joint_names, ibm):
        bind = np.eye(4)
        bind[:3, 3] = avatar.world[name]
        assert np.allclose(m @ bind, np.eye(4), atol=1e-5), name
    for node in g.nodes:
        if node.skin is not None:
            assert node.translation is None and node.rotation is None
            for p in g.meshes[node.mesh].primitives:
                w = read_accessor(g, avatar.blob, p.attributes.WEIGHTS_0)
                j = read_accessor(g, avatar.blob, p.attributes.JOINTS_0)
                assert g.accessors[p.attributes.JOINTS_0].componentType in (5121, 5123)
                assert np.allclose(w.sum(axis=1), 1.0, atol=1e-5)
                assert (w >= 0).all() and j.max() < len(skin.joints)


def test_neck_weights_blend_smoothly(avatar: Avatar) -> None:
    g = avatar.gltf
    body = next(m for m in g.meshes if m.name == "Body")
    neck = next(p for p in body.primitives if p.extras["part"] == "neck")
    pos = read_accessor(g, avatar.blob, neck.attributes.POSITION)
    w = read_accessor(g, avatar.blob, neck.attributes.WEIGHTS_0)
    j = read_accessor(g, avatar.blob, neck.attributes.JOINTS_0).astype(int)
    names = [g.nodes[k].name for k in g.skins[0].joints]
    dense = np.zeros((len(pos), len(names)))
    for k in range(4):
        np.add.at(dense, (np.arange(len(pos)), j[:, k]), w[:, k])
    head, chest = dense[:, names.index("Head")], dense[:, names.index("Chest")]
    assert head[pos[:, 1].argmax()] == pytest.approx(1.0) and chest[pos[:, 1].argmin()] == pytest.approx(1.0)
    assert np.sum((head > 0.2) & (head < 0.8)) >= 20, "the Neck-Head blend spans several rows"
    tris = read_accessor(g, avatar.blob, neck.indices).astype(int).reshape(-1, 3)
    for a, b in ((0, 1), (1, 2), (2, 0)):
        assert np.abs(dense[tris[:, a]] - dense[tris[:, b]]).max() < 0.4, "weights jump across an edge"


# ------------------------------------------------------------------------------------------------
# Blendshapes
# ------------------------------------------------------------------------------------------------
def moved(avatar: Avatar, name: str, eps: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """Rest positions and deltas of the vertices that ``name`` moves by more than ``eps``."""
    pos = avatar.concat("pos")
    d = avatar.concat("delta", name=name)
    sel = np.linalg.norm(d, axis=1) > eps
    return pos[sel], d[sel]


@pytest.mark.parametrize("name", ARKIT_BLENDSHAPES)
def test_every_shape_moves_something_plausible(avatar: Avatar, name: str) -> None:
    pos, d = moved(avatar, name)
    size = np.linalg.norm(d, axis=1).max()
    least = 0.001 if name.startswith(("eyeLook", "mouthPress")) else 0.002
    assert least < size < 0.045, f"{name} moves at most {size * 1000:.1f} mm"
    assert pos[:, 1].min() > 1.45 and pos[:, 2].min() > -0.06, f"{name} reaches beyond the face"


@pytest.mark.parametrize("stem", sorted(SIDED))
def test_sided_shapes_stay_on_their_side(avatar: Avatar, stem: str) -> None:
    for side, sign in (("Left", 1.0), ("Right", -1.0)):
        pos, d = moved(avatar, stem + side)
        mag = np.linalg.norm(d, axis=1)
        assert np.all(sign * pos[:, 0] > -0.012), f"{stem}{side} moves the other side"
        assert np.sum(mag * pos[:, 0] * sign) / np.sum(mag) > 0.008
    left, right = avatar.concat("delta", name=stem + "Left"), avatar.concat("delta", name=stem + "Right")
    assert np.abs(left).max() == pytest.approx(np.abs(right).max(), rel=0.05), "left and right mirror"


@pytest.mark.parametrize("stem", ["jaw", "mouth"])
def test_jaw_and_mouth_left_move_toward_plus_x(avatar: Avatar, stem: str) -> None:
    for side, sign in (("Left", 1.0), ("Right", -1.0)):
        _, d = moved(avatar, stem + side)
        assert sign * d[:, 0].mean() > 0.003


def test_eye_shapes_only_touch_their_eye(avatar: Avatar) -> None:
    eye = avatar.world["LeftEye"]
    for stem in ("eyeBlink", "eyeLookDown", "eyeLookIn", "eyeLookOut", "eyeLookUp", "eyeWide", "eyeSquint"):
        pos, d = moved(avatar, stem + "Left")
        assert np.linalg.norm(pos - eye, axis=1).max() < 0.045, stem  # eye radius 17 mm: about 2.6 radii
    for stem in ("eyeLookDown", "eyeLookIn", "eyeLookOut", "eyeLookUp"):
        _, d = moved(avatar, stem + "Left")
        assert np.linalg.norm(d, axis=1).max() < 0.006, f"{stem} should only nudge the lids"


def lid_gap(avatar: Avatar, weights: dict[str, float], side: str = "L") -> float:
    """Vertical opening between the upper and lower lid of one eye, on the line through the pupil."""
    eye = avatar.world["LeftEye" if side == "L" else "RightEye"]
    up = [p for p in avatar.parts(f"lid_{side}U")]
    down = [p for p in avatar.parts(f"lid_{side}D")]
    up_pos = np.concatenate([p.at(weights) for p in up])
    down_pos = np.concatenate([p.at(weights) for p in down])
    up_c = up_pos[np.abs(up_pos[:, 0] - eye[0]) < 0.002]
    down_c = down_pos[np.abs(down_pos[:, 0] - eye[0]) < 0.002]
    front_up = up_c[up_c[:, 2] > eye[2]]
    front_down = down_c[down_c[:, 2] > eye[2]]
    return float(front_up[:, 1].min() - front_down[:, 1].max())


def test_blink_closes_only_its_own_eye(avatar: Avatar) -> None:
    assert lid_gap(avatar, {}) > 0.008, "eyes are open at rest"
    assert lid_gap(avatar, {"eyeBlinkLeft": 1.0}) < 0.0005
    assert lid_gap(avatar, {"eyeBlinkLeft": 1.0}, "R") > 0.008
    assert lid_gap(avatar, {"eyeBlinkRight": 1.0}, "R") < 0.0005
    assert lid_gap(avatar, {"eyeWideLeft": 1.0}) > lid_gap(avatar, {}) + 0.002
    assert lid_gap(avatar, {"eyeSquintLeft": 1.0}) < lid_gap(avatar, {}) - 0.002


def lip_gap(avatar: Avatar, weights: dict[str, float]) -> float:
    """Vertical opening between the lips at the middle of the mouth.

    The lips meet on a slit: pairs of vertices at the same rest position, one on each lip. The one
    that jawOpen carries down is the lower lip's."""
    lips = [p for p in avatar.face if p.part == "skin" and p.material == "Lips"]
    pos = np.concatenate([p.pos for p in lips])
    now = np.concatenate([p.at(weights) for p in lips])
    jaw = np.concatenate([p.deltas["jawOpen"] for p in lips])[:, 1]
    front = np.nonzero((np.abs(pos[:, 0]) < 0.001) & (pos[:, 2] > 0.08))[0]
    keys = np.round(pos[front] * 1e6).astype(np.int64)
    _, first, counts = np.unique(keys, axis=0, return_index=True, return_counts=True)
    pair_key = keys[first[counts >= 2]]
    assert len(pair_key) >= 1, "the lips should meet on a slit of doubled vertices"
    pair = front[(keys == pair_key[0]).all(axis=1)]
    upper, lower = pair[np.argmax(jaw[pair])], pair[np.argmin(jaw[pair])]
    return float(now[upper, 1] - now[lower, 1])


def test_jaw_open_drops_the_chin_and_shows_teeth(avatar: Avatar) -> None:
    skin = avatar.concat("pos", "skin")
    d = avatar.concat("delta", "skin", "jawOpen")
    chin = np.argmin(skin[:, 1] + 10 * (np.abs(skin[:, 0]) > 0.002) + 10 * (skin[:, 2] < 0.06))
    assert -0.040 < d[chin, 1] < -0.020
    assert np.abs(d[skin[:, 1] > avatar.world["LeftEye"][1] - 0.01]).max() < 1e-6, "eyes and above stay"
    assert 0.020 < lip_gap(avatar, {"jawOpen": 1.0}) < 0.040
    upper = avatar.concat("delta", "teeth_upper", "jawOpen")
    lower = avatar.concat("delta", "teeth_lower", "jawOpen")
    assert np.abs(upper).max() == 0.0 and lower[:, 1].mean() < -0.015


def test_mouth_close_closes_lips_over_an_open_jaw(avatar: Avatar) -> None:
    assert lip_gap(avatar, {"jawOpen": 1.0, "mouthClose": 1.0}) < 0.004


def test_funnel_opens_and_pucker_stays_closed(avatar: Avatar) -> None:
    assert lip_gap(avatar, {"mouthFunnel": 1.0}) > 0.004
    assert lip_gap(avatar, {"mouthPucker": 1.0}) < 0.001
    for name in ("mouthFunnel", "mouthPucker"):
        pos, d = moved(avatar, name, 1e-3)
        assert d[:, 2].mean() > 0.001, f"{name} pushes the lips forward"
        corner = pos[:, 0] > 0.015
        assert d[corner, 0].mean() < 0, f"{name} narrows the mouth"
    _, pucker = moved(avatar, "mouthPucker", 1e-3)
    _, funnel = moved(avatar, "mouthFunnel", 1e-3)
    assert pucker[:, 2].max() > funnel[:, 2].max()


def test_smile_raises_and_pulls_back_its_corner(avatar: Avatar) -> None:
    pos = avatar.concat("pos", "skin")
    d = avatar.concat("delta", "skin", "mouthSmileLeft")
    corner = np.argmax(np.linalg.norm(d, axis=1))
    assert pos[corner, 0] > 0.012
    assert d[corner, 1] > 0.004 and d[corner, 2] < 0 and d[corner, 0] > 0


def test_brows(avatar: Avatar) -> None:
    eye_y = avatar.world["LeftEye"][1]
    pos, d = moved(avatar, "browInnerUp")
    assert pos[:, 1].min() > eye_y + 0.005 and d[:, 1].min() >= 0 and abs(np.average(pos[:, 0], weights=d[:, 1])) < 0.002
    pos, d = moved(avatar, "browDownLeft")
    assert d[:, 1].max() <= 0 and pos[:, 1].min() > eye_y + 0.005
    pos, d = moved(avatar, "browOuterUpLeft")
    assert np.average(pos[:, 0], weights=np.linalg.norm(d, axis=1)) > 0.035


def test_cheek_puff_inflates_both_cheeks(avatar: Avatar) -> None:
    pos, d = moved(avatar, "cheekPuff", 1e-3)
    outward = d[:, 0] * np.sign(pos[:, 0])
    assert (pos[:, 0] > 0.03).any() and (pos[:, 0] < -0.03).any()
    assert outward[np.abs(pos[:, 0]) > 0.03].min() > 0


def test_lip_rolls_and_sneer(avatar: Avatar) -> None:
    _, d = moved(avatar, "mouthRollLower", 1e-3)
    assert d[:, 2].mean() < 0 and d[:, 1].mean() > 0
    _, d = moved(avatar, "mouthRollUpper", 1e-3)
    assert d[:, 2].mean() < 0 and d[:, 1].mean() < 0
    pos, d = moved(avatar, "noseSneerLeft", 1e-3)
    assert d[:, 1].mean() > 0 and pos[:, 0].mean() > 0.005


def test_tongue_out_goes_past_the_lips(avatar: Avatar) -> None:
    lips_front = avatar.concat("pos", "skin")[:, 2].max()   # the nose tip: a generous bound
    tongue = [p for p in avatar.face if p.part == "tongue"][0]
    lip_z = np.concatenate([p.pos for p in avatar.face if p.material == "Lips"])[:, 2].max()
    assert tongue.pos[:, 2].max() < lip_z - 0.005, "the tongue rests inside the mouth"
    assert tongue.at({"tongueOut": 1.0})[:, 2].max() > lip_z + 0.005
    assert lips_front > lip_z


def test_normal_deltas_follow_the_shape(avatar: Avatar) -> None:
    for p in avatar.parts("skin"):
        nd = p.normal_deltas["jawOpen"]
        rest = np.linalg.norm(p.normal_deltas["browInnerUp"], axis=1)
        assert np.isfinite(nd).all()
        if p.material == "Skin":
            assert np.abs(nd).max() > 0.05 and np.abs(rest[p.pos[:, 1] < 1.55]).max() < 1e-6


# ------------------------------------------------------------------------------------------------
# Identity shapes
# ------------------------------------------------------------------------------------------------
def skin_near(avatar: Avatar, weights: dict[str, float], x: float, y: float, z_min: float = -1.0) -> np.ndarray:
    """The skin point nearest (x, y) on the face side (the outermost one when several are near)."""
    skin = [p for p in avatar.face if p.part == "skin" and p.material == "Skin"][0]
    rest, now = skin.pos, skin.at(weights)
    near = np.nonzero((np.hypot(rest[:, 0] - x, rest[:, 1] - y) < 0.004) & (rest[:, 2] > z_min))[0]
    return now[near[np.argmax(rest[near, 2])]]


def width_at(avatar: Avatar, weights: dict[str, float], x: float, y: float, z_min: float = -1.0) -> float:
    return float(skin_near(avatar, weights, x, y, z_min)[0] - skin_near(avatar, weights, -x, y, z_min)[0])


def test_identity_shapes_change_their_proportion_by_their_gain(avatar: Avatar) -> None:
    """Each identity shape at weight 1 changes the distance the photo measures by about its gain
    (so a face 8 % wider than average gets idFaceWidth 1); at -1 the other way."""
    eye = avatar.world["LeftEye"]
    spots = {  # the avatar's counterparts of the landmarks engine.perception.appearance measures
        IdentityMorph.FACE_WIDTH: lambda w: width_at(avatar, w, 0.072, 1.575, -0.02),
        IdentityMorph.JAW_WIDTH: lambda w: width_at(avatar, w, 0.052, 1.512, 0.0),
        IdentityMorph.NOSE_WIDTH: lambda w: width_at(avatar, w, 0.0112, 1.5575, 0.06),
        IdentityMorph.NOSE_LENGTH: lambda w: float(np.linalg.norm(skin_near(avatar, w, 0.0, 1.600, 0.06)
                                                                  - skin_near(avatar, w, 0.0, 1.553, 0.06))),
        IdentityMorph.EYE_SPACING: lambda w: (width_at(avatar, w, eye[0] - 0.0141, eye[1], 0.04)
                                              / width_at(avatar, w, eye[0] + 0.0141, eye[1], 0.04)),
    }
    for name, measure in spots.items():
        rest, up, down = measure({}), measure({name: 1.0}), measure({name: -1.0})
        change = up / rest - 1.0
        assert IDENTITY_GAIN[name] * 0.75 < change < IDENTITY_GAIN[name] * 1.3, (name, change)
        assert down < rest, name


def test_identity_shapes_keep_clear_of_what_they_do_not_change(avatar: Avatar) -> None:
    for name in IDENTITY_MORPHS:
        pos, d = moved(avatar, name)
        assert np.linalg.norm(d, axis=1).max() < 0.01, f"{name} moves too far"
        assert pos[:, 1].max() < 1.67, f"{name} reaches under the hair"
        parts = {p.part for p in avatar.face if np.abs(p.deltas[name]).max() > 1e-6}
        assert not parts & {"teeth_upper", "teeth_lower", "tongue"}, name
        if name != IdentityMorph.EYE_SPACING:
            assert not any(part.startswith("lid_") for part in parts), f"{name} moves the eyelids off the eyes"
    lids = avatar.concat("delta", "lid_L", IdentityMorph.EYE_SPACING)
    assert np.allclose(lids, [EYE_SHIFT, 0.0, 0.0]), "the lids move with the eye node"


def test_script_regenerates_the_asset(tmp_path: Path) -> None:
    out = tmp_path / "avatar.glb"
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], check=True, cwd=REPO,
                   capture_output=True, timeout=120)
    fresh, committed = gl.GLTF2.load(str(out)), gl.GLTF2.load(str(ASSET))
    assert len(fresh.accessors) == len(committed.accessors)
    assert [m.name for m in fresh.materials] == [m.name for m in committed.materials]
    fb, cb = fresh.binary_blob(), committed.binary_blob()
    for i, acc in enumerate(committed.accessors):
        if acc.bufferView is not None and acc.componentType == 5126:
            assert np.allclose(read_accessor(fresh, fb, i), read_accessor(committed, cb, i), atol=1e-5), i
