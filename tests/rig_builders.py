"""Build small humanoid avatars carrying each face-rig convention, for retargeting and framing tests.

``build_rig_avatar`` writes one skinned mesh on a Hips > Spine > Chest > Neck > Head chain (plus an
optional Jaw bone, eye bones, arms and long hair), facing +Z, in metres:

  torso: x in [-0.2, 0.2], y in [1.0, 1.5]         head: x, z in [-0.12, 0.12], y in [1.55, 1.85]
  lips:  a red bar on the face at y ~ 1.62          eyes: green squares on the face at y ~ 1.72

Morph targets are named by the caller and given a *kind* (what they do to the geometry):
``mouth`` drops the lower third of the face and the lips, ``blink``/``blink_left``/``blink_right``
push the eyes into the head (they disappear), ``smile`` widens the lips, ``none`` moves nothing.
``vrm="1.0"`` or ``"0.x"`` adds VRM expressions binding those targets (VRM 0.x files face -Z, so
the geometry is turned to match and the loader turns it back).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pygltflib as g
from gltf_builders import ELEMENT_ARRAY_BUFFER, UBYTE, UINT, GltfBuilder, add_extensions, grid_box

HEAD_MIN, HEAD_MAX = (-0.12, 1.55, -0.12), (0.12, 1.85, 0.12)
LIPS_MIN, LIPS_MAX = (-0.05, 1.61, 0.12), (0.05, 1.635, 0.128)
EYE_Y = 1.72
EYE_MIN = {"left": (0.03, 1.70, 0.12), "right": (-0.07, 1.70, 0.12)}
EYE_MAX = {"left": (0.07, 1.74, 0.128), "right": (-0.03, 1.74, 0.128)}
SHOULDER_Y = 1.45
MOUTH_DROP = 0.04
# arm poses: the upper arm's angle below horizontal (T: 0, A: 45 degrees)
ARM_POSES = {"T": 0.0, "A": 45.0, "relaxed": 85.0}

# (name, parent, world position)
_CHAIN = (("Hips", None, (0.0, 1.0, 0.0)), ("Spine", "Hips", (0.0, 1.25, 0.0)), ("Chest", "Spine", (0.0, 1.4, 0.0)),
          ("Neck", "Chest", (0.0, 1.5, 0.0)), ("Head", "Neck", (0.0, 1.55, 0.0)))
# VRM 0.x preset names for the VRM 1.0 ones the tests use
_VRM0_PRESETS = {"aa": "a", "ih": "i", "ou": "u", "ee": "e", "oh": "o", "blink": "blink", "blinkLeft": "blink_l",
                 "blinkRight": "blink_r", "happy": "joy", "angry": "angry", "sad": "sorrow", "relaxed": "fun",
                 "surprised": "surprised"}


class _Part:
    def __init__(self, lo, hi, material: str, colour, joint: str, n: int = 2) -> None:
        self.positions, self.normals, _, self.indices, self.faces = grid_box(lo, hi, n)
        self.material, self.colour = material, colour
        self.joints = [joint] * len(self.positions)


def _arm_parts(side: str, sign: float, pose: str, bones: list) -> list[_Part]:
    """Upper arm, forearm and hand boxes along a straight arm, and the bones at their roots."""
    angle = np.radians(ARM_POSES[pose])
    c, s = np.cos(angle), np.sin(angle)
    down = np.array([[c, sign * s, 0.0], [-sign * s, c, 0.0], [0.0, 0.0, 1.0]])  # turns +-X toward -Y
    shoulder = np.array([sign * 0.2, SHOULDER_Y, 0.0])
    lengths = (("UpperArm", 0.28), ("LowerArm", 0.25), ("Hand", 0.1))
    along, parent, parts = 0.0, "Chest", []
    for name, length in lengths:
        bone = f"{side.capitalize()}{name}"
        bones.append((bone, parent, tuple(shoulder + down @ np.array([sign * along, 0.0, 0.0]))))
        lo, hi = sorted((sign * along, sign * (along + length)))
        part = _Part((lo, -0.03, -0.03), (hi, 0.03, 0.03), "Sleeve", (0.2, 0.35, 0.8, 1.0), bone)
        part.positions = shoulder + part.positions @ down.T  # built along X at the shoulder, then lowered
        part.normals = part.normals @ down.T
        parts.append(part)
        along, parent = along + length, bone
    return parts


def build_rig_avatar(path: str | Path, morphs: Mapping[str, str] = {}, *, jaw_bone: bool = False,
                     eye_bones: bool = True, arms: str | None = None, hair: str | None = None,
                     vrm: str | None = None, expressions: Mapping[str, Sequence[str]] = {}) -> Path:
    """Write the avatar and return its path.

    ``morphs``: target name -> kind (see the module doc). ``arms``: "T", "A" or "relaxed".
    ``hair``: "named" (a long hair mesh with a Hair material) or "unnamed" (the same shape, in a
    material called "Back", bound to the head bone). ``vrm``: "1.0" or "0.x", with ``expressions``:
    VRM 1.0 preset name -> the target names it binds.
    """
    b = GltfBuilder()
    bones: list[tuple[str, str | None, tuple[float, float, float]]] = list(_CHAIN)
    skin, lips_red, green, blue = (0.95, 0.75, 0.6, 1.0), (0.8, 0.05, 0.05, 1.0), (0.05, 0.6, 0.1, 1.0), (0.2, 0.35, 0.8, 1.0)
    parts = {"torso": _Part((-0.2, 1.0, -0.1), (0.2, 1.5, 0.1), "Shirt", blue, "Chest"),
             "head": _Part(HEAD_MIN, HEAD_MAX, "Skin", skin, "Head", 6),
             "lips": _Part(LIPS_MIN, LIPS_MAX, "Lips", lips_red, "Head"),
             "eye_left": _Part(EYE_MIN["left"], EYE_MAX["left"], "Eye", green, "Head"),
             "eye_right": _Part(EYE_MIN["right"], EYE_MAX["right"], "Eye", green, "Head")}
    if jaw_bone:
        bones.append(("Jaw", "Head", (0.0, 1.66, 0.0)))
        head = parts["head"]
        head.joints = ["Jaw" if p[1] < 1.66 and p[2] > 0.0 else "Head" for p in head.positions]
        parts["lips"].joints = ["Jaw"] * len(parts["lips"].positions)
    if eye_bones:
        bones += [("LeftEye", "Head", (0.05, EYE_Y, 0.1)), ("RightEye", "Head", (-0.05, EYE_Y, 0.1))]
    if hair is not None:
        material = "Hair" if hair == "named" else "Back"
        parts["hair_back"] = _Part((-0.16, 0.9, -0.17), (0.16, 1.9, -0.125), material, (0.3, 0.15, 0.08, 1.0), "Head")
        parts["hair_top"] = _Part((-0.13, 1.85, -0.13), (0.13, 1.9, 0.13), material, (0.3, 0.15, 0.08, 1.0), "Head")
    if arms is not None:
        for side, sign in (("left", 1.0), ("right", -1.0)):
            for i, part in enumerate(_arm_parts(side, sign, arms, bones)):
                parts[f"arm_{side}_{i}"] = part

    names = list(morphs)
    turn = np.array([-1.0, 1.0, -1.0]) if vrm == "0.x" else np.ones(3)  # VRM 0.x faces -Z
    node_of: dict[str, int] = {}
    world = {name: np.asarray(pos) for name, _, pos in bones}
    for name, parent, _ in bones:
        offset = world[name] - (world[parent] if parent else 0.0)
        node_of[name] = b.node(name, parent=node_of[parent] if parent else None, translation=(offset * turn).tolist())
    joint_names = [name for name, _, _ in bones]
    ibm = np.tile(np.eye(4, dtype=np.float32), (len(joint_names), 1, 1))
    for j, name in enumerate(joint_names):
        ibm[j, 3, :3] = -world[name] * turn  # column-major storage: translation in row 3
    materials: dict[str, int] = {}
    primitives = []
    for key, part in parts.items():
        if part.material not in materials:
            materials[part.material] = b.material(part.colour)
            b.gltf.materials[-1].name = part.material
        targets = []
        for name in names:
            targets.append(b.accessor(_delta(morphs[name], key, part) * turn))
        joints = np.zeros((len(part.positions), 4), np.uint8)
        joints[:, 0] = [joint_names.index(j) for j in part.joints]
        weights = np.zeros((len(part.positions), 4), np.float32)
        weights[:, 0] = 1.0
        attrs = g.Attributes(POSITION=b.accessor(part.positions * turn, minmax=True),
                             NORMAL=b.accessor(part.normals * turn), JOINTS_0=b.accessor(joints, component=UBYTE),
                             WEIGHTS_0=b.accessor(weights))
        primitives.append(g.Primitive(attributes=attrs, material=materials[part.material],
                                      indices=b.accessor(part.indices, component=UINT, target=ELEMENT_ARRAY_BUFFER),
                                      targets=[g.Attributes(POSITION=t) for t in targets]))
    b.gltf.meshes.append(g.Mesh(name="Body", primitives=primitives, extras={"targetNames": names} if names else {}))
    b.gltf.skins.append(g.Skin(name="Armature", joints=[node_of[n] for n in joint_names], skeleton=node_of["Hips"],
                               inverseBindMatrices=b.accessor(ibm.reshape(-1, 16), target=None)))
    mesh_node = b.node("BodyMesh", mesh=0, skin=0)
    path = b.save(path, [node_of["Hips"], mesh_node])
    if vrm == "1.0":
        preset = {name: {"morphTargetBinds": [{"node": mesh_node, "index": names.index(t), "weight": 1.0}
                                              for t in targets]} for name, targets in expressions.items()}
        humanoid = {bone: {"node": node_of[node]} for bone, node in _humanoid(joint_names).items()}
        add_extensions(path, {"VRMC_vrm": {"specVersion": "1.0", "meta": {"name": "rig test"},
                                           "humanoid": {"humanBones": humanoid}, "expressions": {"preset": preset}}})
    elif vrm == "0.x":
        groups = [{"name": name, "presetName": _VRM0_PRESETS[name],
                   "binds": [{"mesh": 0, "index": names.index(t), "weight": 100} for t in targets]}
                  for name, targets in expressions.items()]
        humanoid = [{"bone": bone, "node": node_of[node]} for bone, node in _humanoid(joint_names).items()]
        add_extensions(path, {"VRM": {"meta": {"title": "rig test"}, "humanoid": {"humanBones": humanoid},
                                      "blendShapeMaster": {"blendShapeGroups": groups}}})
    return path


def _humanoid(joint_names: list[str]) -> dict[str, str]:
    """VRM humanoid bone name -> node name, for the bones this avatar has."""
    vrm_names = {"Hips": "hips", "Spine": "spine", "Chest": "chest", "Neck": "neck", "Head": "head", "Jaw": "jaw",
                 "LeftEye": "leftEye", "RightEye": "rightEye", "LeftUpperArm": "leftUpperArm",
                 "LeftLowerArm": "leftLowerArm", "LeftHand": "leftHand", "RightUpperArm": "rightUpperArm",
                 "RightLowerArm": "rightLowerArm", "RightHand": "rightHand"}
    return {vrm_names[n]: n for n in joint_names if n in vrm_names}


def _delta(kind: str, key: str, part: _Part) -> np.ndarray:
    """What a target of ``kind`` does to one part's vertices."""
    p = part.positions
    delta = np.zeros_like(p)
    if kind == "mouth":
        if key == "head":
            delta[(part.faces == 4) & (p[:, 1] < 1.66), 1] = -MOUTH_DROP
        elif key == "lips":
            delta[p[:, 1] < 1.62, 1] = -MOUTH_DROP
    elif kind == "smile" and key == "lips":
        delta[:, 0] = np.sign(p[:, 0]) * 0.02
    elif kind in ("blink", "blink_left", "blink_right") and key.startswith("eye_"):
        if kind == "blink" or key == "eye_" + kind.removeprefix("blink_"):
            delta[:, 2] = -0.03
    elif kind not in ("mouth", "smile", "blink", "blink_left", "blink_right", "none"):
        raise ValueError(f"unknown morph kind {kind!r}")
    return delta


__all__ = ["ARM_POSES", "EYE_Y", "HEAD_MAX", "HEAD_MIN", "LIPS_MAX", "LIPS_MIN", "MOUTH_DROP", "SHOULDER_Y", "build_rig_avatar"]
