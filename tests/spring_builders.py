"""Test avatars with spring bones: the test avatar (``gltf_builders.build_test_avatar``) plus a hair
chain hanging behind its head, as VRM 1.0 (``VRMC_springBone``) or VRM 0.x (``secondaryAnimation``).

The chain: ``Hair1`` on the head's back top at (0, 1.80, -0.17), then ``Hair2``, ``Hair3`` and
``HairTip`` each 0.1 m lower (world space, the avatar facing +Z). A sphere collider may be placed
in front of the chain's lower half so that the rest pose is inside it.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from tests.gltf_builders import JOINT_WORLD_Y, add_extensions, build_test_avatar

HAIR = ("Hair1", "Hair2", "Hair3", "HairTip")
ROOT = (0.0, 1.80, -0.17)
SEGMENT = 0.1
# a sphere just in front of the chain's lower joints: their rest positions are inside it
SPHERE_CENTRE, SPHERE_RADIUS = (0.0, 1.55, -0.12), 0.08


def _add_chain(path: Path) -> dict[str, int]:
    """Append the hair nodes under ``Head`` in the GLB's JSON; returns node indices by name."""
    data = path.read_bytes()
    json_length = struct.unpack_from("<I", data, 12)[0]
    doc = json.loads(data[20:20 + json_length])
    rest = data[20 + json_length:]
    head = next(i for i, n in enumerate(doc["nodes"]) if n.get("name") == "Head")
    index = {"Head": head}
    parent = head
    for k, name in enumerate(HAIR):
        local = [ROOT[0], ROOT[1] - JOINT_WORLD_Y[3], ROOT[2]] if k == 0 else [0.0, -SEGMENT, 0.0]
        doc["nodes"].append({"name": name, "translation": local})
        index[name] = len(doc["nodes"]) - 1
        doc["nodes"][parent].setdefault("children", []).append(index[name])
        parent = index[name]
    payload = json.dumps(doc).encode()
    payload += b" " * (-len(payload) % 4)
    body = struct.pack("<II", len(payload), 0x4E4F534A) + payload + rest
    path.write_bytes(struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body)
    return index


def build_spring_avatar(path: str | Path, *, collider: bool = False, gravity: float = 0.0,
                        stiffness: float = 1.0, drag: float = 0.4, vrm0: bool = False) -> Path:
    """The test avatar with the hair chain as spring bones (VRM 1.0, or VRM 0.x with ``vrm0``)."""
    path = build_test_avatar(path)
    index = _add_chain(path)
    offset = [SPHERE_CENTRE[0], SPHERE_CENTRE[1] - JOINT_WORLD_Y[3], SPHERE_CENTRE[2]]  # in Head space
    if vrm0:  # VRM 0.x: the root bone's whole subtree; collider offsets with z flipped (Unity axes)
        secondary = {
            "boneGroups": [{"bones": [index["Hair1"]], "stiffiness": stiffness, "dragForce": drag,
                            "gravityPower": gravity, "gravityDir": {"x": 0, "y": -1, "z": 0}, "hitRadius": 0.0,
                            "colliderGroups": [0] if collider else []}],
            "colliderGroups": [{"node": index["Head"], "colliders": [
                {"offset": {"x": offset[0], "y": offset[1], "z": -offset[2]}, "radius": SPHERE_RADIUS}]}],
        }
        return add_extensions(path, {"VRM": {"secondaryAnimation": secondary}})
    joints = [{"node": index[n], "stiffness": stiffness, "dragForce": drag, "gravityPower": gravity,
               "hitRadius": 0.0} for n in HAIR]
    spring = {"name": "Hair", "joints": joints, "colliderGroups": [0] if collider else []}
    ext = {"specVersion": "1.0",
           "colliders": [{"node": index["Head"], "shape": {"sphere": {"offset": offset, "radius": SPHERE_RADIUS}}}],
           "colliderGroups": [{"colliders": [0]}], "springs": [spring]}
    return add_extensions(path, {"VRMC_springBone": ext})
