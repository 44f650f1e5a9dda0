"""Build a heavy VRoid-style VRM 1.0 avatar for benchmarks (generated when needed, never committed).

It is the default avatar (``default_avatar.vrm``) made to cost what a VRoid Studio export costs:

* **hair strands on spring bones**: ``--strands`` tapered, textured locks around the back and sides
  of the head, each a chain of three bones in ``VRMC_springBone`` (with the head sphere and the
  back capsule as colliders), about 420 triangles each: ~40k triangles in all with the default 24;
* **MToon everywhere** (``VRMC_materials_mtoon``): a white shade colour with a shade texture on the
  strands (as VRoid exports), a darker shade colour elsewhere, rim light, and world-space outlines
  on skin, hair, shirt and strands;
* **more materials**: three strand materials with 256x256 base and shade textures on top of the
  default avatar's twelve.

Usage: ``python assets/make_vroid_like_avatar.py --out /tmp/vroid_like.vrm``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import pygltflib as gl

from engine.avatar.generator import FLOAT, UINT, USHORT, GlbWriter

ASSETS = Path(__file__).resolve().parent
SOURCE = ASSETS / "default_avatar.vrm"
HEAD_CENTRE = np.array([0.0, 1.60, 0.0])
BONES = 3  # per strand (plus a tip node)
ROWS, RING = 22, 10  # strand tube resolution: 2 * (ROWS - 1) * RING triangles


class _Appender(GlbWriter):
    """Adds buffer views, accessors and images to a loaded GLB's binary chunk."""

    def texture(self, rgb: np.ndarray) -> int:
        ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        assert ok
        self.gltf.images.append(gl.Image(bufferView=self.view(png.tobytes()), mimeType="image/png"))
        self.gltf.samplers.append(gl.Sampler(magFilter=9729, minFilter=9987))
        self.gltf.textures.append(gl.Texture(source=len(self.gltf.images) - 1, sampler=len(self.gltf.samplers) - 1))
        return len(self.gltf.textures) - 1

    def finish(self, path: Path) -> None:
        self.gltf.buffers = [gl.Buffer(byteLength=len(self.blob))]
        self.gltf.set_binary_blob(bytes(self.blob))
        self.gltf.save_binary(str(path))


def _world_translation(g: gl.GLTF2, node: int) -> np.ndarray:
    """World position of a node whose ancestors only translate (true of the default avatar's joints)."""
    parents = {c: i for i, n in enumerate(g.nodes) for c in (n.children or [])}
    position = np.zeros(3)
    while node is not None:
        position += np.asarray(g.nodes[node].translation or (0.0, 0.0, 0.0))
        node = parents.get(node)
    return position


def _strand_texture(colour: tuple[int, int, int], shade: bool) -> np.ndarray:
    """Streaky hair: darker lines along v; the shade texture is a cooler, darker copy."""
    u = np.linspace(0.0, 1.0, 256)[None, :, None]
    v = np.linspace(0.0, 1.0, 256)[:, None, None]
    streaks = 0.8 + 0.2 * np.sin(u * 70.0 + np.sin(v * 9.0)) * np.cos(u * 23.0)
    rgb = np.asarray(colour, float)[None, None, :] * streaks * (0.9 + 0.1 * v)
    if shade:
        rgb = rgb * np.array([0.55, 0.55, 0.7])
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _strand(root: np.ndarray, direction: np.ndarray, length: float) -> tuple[np.ndarray, ...]:
    """Joint positions, then tube positions, normals, UVs, triangles and chain parameter of one lock."""
    out = np.array([direction[0], 0.0, direction[2]])
    joints = np.array([root + out * 0.03 * k * k + np.array([0.0, -length * k / BONES, 0.0]) for k in range(BONES + 1)])
    u = np.linspace(0.0, float(BONES), ROWS)
    path = np.array([np.interp(u, np.arange(BONES + 1), joints[:, k]) for k in range(3)]).T
    radius = 0.018 * (1.0 - 0.85 * u / BONES) + 0.001
    tangents = np.gradient(path, axis=0)
    tangents /= np.linalg.norm(tangents, axis=1, keepdims=True)
    side = np.cross(tangents, out + [0.0, 0.0, 1e-3])
    side /= np.linalg.norm(side, axis=1, keepdims=True)
    across = np.cross(tangents, side)
    angle = np.linspace(0.0, 2 * np.pi, RING, endpoint=False)
    radial = np.cos(angle)[None, :, None] * side[:, None, :] + np.sin(angle)[None, :, None] * across[:, None, :]
    pos = path[:, None, :] + radius[:, None, None] * radial
    normals = radial.reshape(-1, 3)
    uv = np.stack(np.meshgrid(angle / (2 * np.pi), u / BONES), axis=-1).reshape(-1, 2)
    a = (np.arange(ROWS - 1)[:, None] * RING + np.arange(RING)[None, :]).ravel()
    b = (np.arange(ROWS - 1)[:, None] * RING + (np.arange(RING)[None, :] + 1) % RING).ravel()
    tris = np.stack([a, a + RING, b, b, a + RING, b + RING], axis=1).reshape(-1, 3)
    if np.dot(np.cross(pos.reshape(-1, 3)[tris[0, 1]] - pos.reshape(-1, 3)[tris[0, 0]],
                       pos.reshape(-1, 3)[tris[0, 2]] - pos.reshape(-1, 3)[tris[0, 0]]), normals[tris[0, 0]]) < 0:
        tris = tris[:, ::-1]
    chain = np.repeat(u, RING)
    return joints, pos.reshape(-1, 3), normals, uv, tris, chain


def build(out: Path, strands: int = 24) -> Path:
    g = gl.GLTF2.load_binary(str(SOURCE))
    w = _Appender(g)
    names = [n.name for n in g.nodes]
    head, chest = names.index("Head"), names.index("Chest")
    head_world = _world_translation(g, head)

    # materials: MToon on every existing one, then three textured strand materials
    for material in g.materials:
        base = np.asarray(material.pbrMetallicRoughness.baseColorFactor[:3])
        mtoon = {"specVersion": "1.0", "shadeColorFactor": (base * 0.6).tolist(), "shadingToonyFactor": 0.9,
                 "shadingShiftFactor": -0.05, "parametricRimColorFactor": [0.15, 0.15, 0.2],
                 "parametricRimFresnelPowerFactor": 5.0, "rimLightingMixFactor": 1.0}
        if material.name in ("Skin", "Hair", "Shirt"):
            mtoon.update(outlineWidthMode="worldCoordinates", outlineWidthFactor=0.0015,
                         outlineColorFactor=(base * 0.3).tolist())
        material.extensions = {**(material.extensions or {}), "VRMC_materials_mtoon": mtoon}
    strand_materials = []
    for colour in ((74, 42, 27), (92, 55, 35), (60, 34, 22)):
        base_tex, shade_tex = w.texture(_strand_texture(colour, False)), w.texture(_strand_texture(colour, True))
        g.materials.append(gl.Material(
            name=f"HairStrand{len(strand_materials)}",
            pbrMetallicRoughness=gl.PbrMetallicRoughness(baseColorTexture=gl.TextureInfo(index=base_tex),
                                                        metallicFactor=0.0, roughnessFactor=0.6),
            extensions={"VRMC_materials_mtoon": {
                "specVersion": "1.0", "shadeColorFactor": [1.0, 1.0, 1.0], "shadeMultiplyTexture": {"index": shade_tex},
                "shadingToonyFactor": 0.95, "outlineWidthMode": "worldCoordinates", "outlineWidthFactor": 0.001,
                "outlineColorFactor": [0.05, 0.03, 0.02]}}))
        strand_materials.append(len(g.materials) - 1)

    # strands: joints under the head, one skinned mesh, one spring each
    skin_joints, ibm, springs = [head], [np.eye(4)], []
    ibm[0][:3, 3] = -head_world
    primitives: dict[int, list] = {m: [] for m in strand_materials}
    for s in range(strands):
        theta = np.radians(70.0 + 220.0 * s / max(strands - 1, 1))  # around the sides and back
        direction = np.array([np.sin(theta), 0.0, np.cos(theta)])
        root = HEAD_CENTRE + direction * 0.1 + np.array([0.0, 0.06 - 0.02 * (s % 3), 0.0])
        joints, pos, normals, uv, tris, chain = _strand(root, direction, 0.22 + 0.04 * (s % 4))
        chain_nodes, parent, parent_world = [], head, head_world
        for k, joint in enumerate(joints):
            node = gl.Node(name=f"HairStrand{s:02d}_{k}", translation=(joint - parent_world).tolist())
            g.nodes.append(node)
            g.nodes[parent].children.append(len(g.nodes) - 1)
            chain_nodes.append(len(g.nodes) - 1)
            parent, parent_world = len(g.nodes) - 1, joint
            if k < BONES:
                skin_joints.append(chain_nodes[-1])
                m = np.eye(4)
                m[:3, 3] = -joint
                ibm.append(m)
        first = len(skin_joints) - BONES
        at = np.clip(chain - 0.5, 0.0, BONES - 1.0)
        lower = np.minimum(np.floor(at).astype(int), BONES - 2)
        t = at - lower
        joint_ids = np.zeros((len(pos), 4), np.uint16)
        joint_ids[:, 0], joint_ids[:, 1] = first + lower, first + lower + 1
        weights = np.zeros((len(pos), 4), np.float32)
        weights[:, 0], weights[:, 1] = 1.0 - t, t
        attrs = gl.Attributes(POSITION=w.accessor(pos, FLOAT, "VEC3", minmax=True),
                              NORMAL=w.accessor(normals, FLOAT, "VEC3"), TEXCOORD_0=w.accessor(uv, FLOAT, "VEC2"),
                              JOINTS_0=w.accessor(joint_ids, USHORT, "VEC4"), WEIGHTS_0=w.accessor(weights, FLOAT, "VEC4"))
        material = strand_materials[s % len(strand_materials)]
        primitives[material].append(gl.Primitive(
            attributes=attrs, material=material, indices=w.accessor(tris.reshape(-1), UINT, "SCALAR", target=34963)))
        springs.append({"name": f"Strand{s:02d}", "colliderGroups": [0],
                        "joints": [{"node": n, "hitRadius": 0.015, "stiffness": 0.9, "gravityPower": 0.2,
                                    "dragForce": 0.4} for n in chain_nodes]})
    ibm_array = np.stack([m.T.reshape(-1) for m in ibm]).astype(np.float32)
    g.skins.append(gl.Skin(name="Strands", joints=skin_joints,
                           inverseBindMatrices=w.accessor(ibm_array, FLOAT, "MAT4", target=None)))
    g.meshes.append(gl.Mesh(name="HairStrands", primitives=[p for ps in primitives.values() for p in ps]))
    g.nodes.append(gl.Node(name="HairStrands", mesh=len(g.meshes) - 1, skin=len(g.skins) - 1))
    g.scenes[g.scene or 0].nodes.append(len(g.nodes) - 1)

    extension = g.extensions["VRMC_springBone"]
    extension["colliders"] = [
        {"node": head, "shape": {"sphere": {"offset": (HEAD_CENTRE - head_world).tolist(), "radius": 0.08}}},
        {"node": chest, "shape": {"capsule": {"offset": [0.0, 0.0, -0.01], "radius": 0.08, "tail": [0.0, 0.17, -0.01]}}},
    ]
    extension["colliderGroups"] = [{"name": "Body", "colliders": [0, 1]}]
    extension["springs"] = [*extension["springs"], *springs]
    g.extensionsUsed = sorted(set(g.extensionsUsed or []) | {"VRMC_materials_mtoon", "VRMC_springBone"})
    out.parent.mkdir(parents=True, exist_ok=True)
    w.finish(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="where to write the .vrm")
    parser.add_argument("--strands", type=int, default=24, help="hair strands on spring bones (default 24)")
    args = parser.parse_args(argv)
    print(f"wrote {build(args.out, args.strands)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
