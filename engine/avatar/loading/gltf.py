"""Read glTF 2.0 (.gltf, .glb) and VRM (.vrm, a GLB) files into the ``Avatar`` model.

VRM data (``VRMC_vrm`` 1.0 or ``VRM`` 0.x) is read by ``vrm1.py`` / ``vrm0.py`` into
``Avatar.vrm``; materials get their ``KHR_texture_transform``, ``KHR_materials_unlit`` and MToon
parameters here.

pygltflib parses the JSON; this module resolves buffers (meshopt-compressed views are decoded by
``compression.py``, which also names unsupported required extensions), reads accessors (strided, sparse,
normalised integers), decodes images with OpenCV and builds the immutable model. Every problem a
user can cause becomes an ``AvatarLoadError`` with one line saying what is wrong and a hint; a
texture that does not decode only logs a warning and renders white.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import logging
import math
import struct
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import cv2
import numpy as np
import pygltflib

from engine.avatar.loading import compression, limits, vrm0, vrm1
from engine.avatar.loading.flame import FLAME_SUFFIXES, load_flame_avatar
from engine.avatar.model import REPEAT, Avatar, Material, Mesh, Node, Primitive, Skin, Texture, decompose_matrix
from engine.avatar.spring_bone import SpringBones
from engine.errors import AvatarLoadError

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 200 * 1024 * 1024  # larger files are refused (tests monkeypatch this)
SUPPORTED_SUFFIXES = (".glb", ".gltf", ".vrm")
TRIANGLES = 4

_GLB_MAGIC = b"glTF"
_CHUNK_JSON = 0x4E4F534A
_CHUNK_BIN = 0x004E4942
_COMPONENT_DTYPES = {
    5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32,
}
_TYPE_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
_HINT_REEXPORT = "Re-export the avatar from your 3D tool (glTF 2.0 / GLB) and try again."


def load_avatar(path: str | Path) -> Avatar:
    """Load a .glb, .gltf or .vrm file. Raises ``AvatarLoadError`` for any unusable file."""
    path = Path(path)
    if path.suffix.lower() in FLAME_SUFFIXES:  # a FLAME head the user supplies (engine/avatar/loading/flame.py)
        return load_flame_avatar(path)
    data = _read_file(path)
    if data[:4] == _GLB_MAGIC:
        document, blob = _split_glb(path, data)
    elif path.suffix.lower() == ".gltf" or data.lstrip()[:1] == b"{":
        document, blob = data, None
    else:
        raise AvatarLoadError(f"{path.name} is not a glTF or GLB file.",
                              "Choose a .glb, .gltf or .vrm avatar.")
    try:
        gltf = _parse_document(document)
    except limits.AvatarLimitError:
        raise
    except Exception as error:
        raise AvatarLoadError(f"{path.name} has an unreadable glTF JSON part ({type(error).__name__}).",
                              _HINT_REEXPORT) from error
    return _GltfReader(path, gltf, blob).read()


def _parse_document(document: bytes) -> pygltflib.GLTF2:
    """The glTF JSON as pygltflib objects.

    pygltflib's generic decoder (dataclasses_json) needs about 1.5 ms per object, and avatars with
    many morph targets hold thousands of accessors and buffer views (2.2 s for the default
    avatar). Those two flat types are built with their dataclass constructors instead (40 ms);
    everything else goes through ``GLTF2.from_dict``.
    """
    doc = json.loads(document)
    if not isinstance(doc, dict):
        raise ValueError("the top level is not a JSON object")
    limits.check_document(doc)
    accessors, views = doc.pop("accessors", []), doc.pop("bufferViews", [])
    with warnings.catch_warnings():  # dataclasses_json warns about valid optional fields (Image.uri)
        warnings.simplefilter("ignore", RuntimeWarning)
        gltf = pygltflib.GLTF2.from_dict(doc)
    gltf.accessors = [_accessor_from_dict(a) for a in accessors]
    gltf.bufferViews = [pygltflib.BufferView(**v) for v in views]
    return gltf


def _accessor_from_dict(fields: dict) -> pygltflib.Accessor:
    fields = dict(fields)
    sparse = fields.pop("sparse", None)
    if sparse is not None:
        sparse = dict(sparse)
        sparse["indices"] = pygltflib.AccessorSparseIndices(**sparse["indices"])
        sparse["values"] = pygltflib.AccessorSparseValues(**sparse["values"])
        fields["sparse"] = pygltflib.Sparse(**sparse)
    return pygltflib.Accessor(**fields)


def _read_file(path: Path) -> bytes:
    if not path.is_file():
        raise AvatarLoadError(f"Avatar file not found: {path}", "Check the path or pick another avatar.")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise AvatarLoadError(
            f"{path.name} is {size / 2**20:.0f} MB, over the {MAX_FILE_BYTES / 2**20:.0f} MB avatar limit.",
            "Reduce texture sizes or polygon count in your 3D tool and export again.",
        )
    return limits.read_regular_file(path, "Avatar file", MAX_FILE_BYTES)


def _split_glb(path: Path, data: bytes) -> tuple[bytes, bytes | None]:
    """Check the GLB container and return its JSON chunk and BIN chunk."""
    corrupt = f"{path.name} is a corrupt or truncated GLB file"
    if len(data) < 20:
        raise AvatarLoadError(f"{corrupt} (only {len(data)} bytes).", _HINT_REEXPORT)
    _, version, length = struct.unpack_from("<4sII", data, 0)
    if version != 2:
        raise AvatarLoadError(f"{path.name} is GLB version {version}; only glTF 2.0 is supported.", _HINT_REEXPORT)
    if length > len(data):
        raise AvatarLoadError(f"{corrupt} (header says {length} bytes, file has {len(data)}).", _HINT_REEXPORT)
    chunks: dict[int, bytes] = {}
    offset = 12
    while offset + 8 <= length:
        chunk_length, chunk_type = struct.unpack_from("<II", data, offset)
        start = offset + 8
        if start + chunk_length > length:
            raise AvatarLoadError(f"{corrupt} (a chunk runs past the end).", _HINT_REEXPORT)
        chunks.setdefault(chunk_type, data[start:start + chunk_length])
        offset = start + chunk_length + (-chunk_length % 4)
    if _CHUNK_JSON not in chunks:
        raise AvatarLoadError(f"{corrupt} (no JSON chunk).", _HINT_REEXPORT)
    return chunks[_CHUNK_JSON], chunks.get(_CHUNK_BIN)


def _get(obj: Any, key: str) -> Any:
    """Attribute of a pygltflib object or key of a plain dict (morph targets come as either)."""
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


class _GltfReader:
    """Turns one parsed glTF document into an ``Avatar``; caches buffers, accessors and images."""

    def __init__(self, path: Path, gltf: pygltflib.GLTF2, blob: bytes | None) -> None:
        self.path = path
        self.gltf = gltf
        self.blob = blob
        self._buffers: dict[int, bytes] = {}
        self._decoded_views: dict[int, memoryview] = {}  # EXT_meshopt_compression views, decoded once
        self._draco: dict[int, np.ndarray] = {}  # accessor index -> values decoded from Draco
        self._images: dict[int, np.ndarray | None] = {}
        self._materials: dict[int | None, Material] = {}
        self._pixels_left = [limits.MAX_TOTAL_IMAGE_PIXELS]  # decoded texture pixels still allowed
        self._geometry = limits.GeometryBudget()
        self._vrm0_materials = self._vrm0_material_properties()

    def _vrm0_material_properties(self) -> dict[int, dict]:
        """VRM 0.x ``materialProperties`` by material index (matched by name, else by position)."""
        ext = (self.gltf.extensions or {}).get(vrm0.EXTENSION)
        props = ext.get("materialProperties") if isinstance(ext, dict) else None
        if not isinstance(props, list):
            return {}
        by_name = {p.get("name"): p for p in props if isinstance(p, dict)}
        out = {}
        for index, material in enumerate(self.gltf.materials or []):
            found = by_name.get(material.name)
            if found is None and index < len(props) and isinstance(props[index], dict):
                found = props[index]
            if found is not None:
                out[index] = found
        return out

    def fail(self, what: str, hint: str = _HINT_REEXPORT) -> AvatarLoadError:
        return AvatarLoadError(f"{self.path.name}: {what}.", hint)

    def read(self) -> Avatar:
        g = self.gltf
        unsupported = compression.unsupported_required(g.extensionsRequired)
        if unsupported is not None:
            raise self.fail(*unsupported)
        try:
            meshes = tuple(self._mesh(i) for i in range(len(g.meshes)))
            skins = tuple(self._skin(i) for i in range(len(g.skins)))
            nodes = self._nodes(len(meshes), len(skins))
            roots = self._scene_roots(nodes)
        except AvatarLoadError:
            raise
        except Exception as error:
            log.debug("glTF structure error", exc_info=True)
            raise self.fail(f"invalid glTF structure ({type(error).__name__}: {error})") from error
        for node in nodes:
            if node.mesh is not None and node.skin is not None:
                bones = len(skins[node.skin].joints)
                if any(p.joints is not None and p.vertex_count and int(p.joints.max()) >= bones
                       for p in meshes[node.mesh].primitives):
                    raise self.fail(f"mesh {meshes[node.mesh].name} is bound to bones its skin does not have")
        if not any(node.mesh is not None for node in nodes):
            raise self.fail("the file contains no meshes to draw", "Export the avatar with its meshes included.")
        avatar = Avatar(nodes=nodes, meshes=meshes, skins=skins, scene_roots=roots, source=self.path,
                        extras={"extensions": dict(g.extensions or {})})
        avatar = self._with_vrm(avatar)
        return dataclasses.replace(avatar, spring_bones=self._spring_bones(avatar))

    def _with_vrm(self, avatar: Avatar) -> Avatar:
        """Add the VRM 1.0 (``VRMC_vrm``) or 0.x (``VRM``) data, if the file has it.

        A VRM extension that cannot be understood costs its expressions, not the avatar: it is
        logged and the model loads as plain glTF (a VRM 0.x model is still turned to face +Z).
        """
        extensions = self.gltf.extensions or {}
        if vrm1.EXTENSION in extensions:
            version, importer = "1.0", lambda ext: vrm1.import_vrm1(ext, avatar, self._rest_uv())
        elif vrm0.EXTENSION in extensions:
            version, importer = "0.x", lambda ext: vrm0.import_vrm0(ext, avatar)
            avatar = dataclasses.replace(avatar, facing=-1)
        else:
            return avatar
        ext = extensions[vrm1.EXTENSION if version == "1.0" else vrm0.EXTENSION]
        try:
            if not isinstance(ext, dict):
                raise TypeError("the extension is not a JSON object")
            info = importer(ext)
        except Exception as error:
            log.warning("%s: its VRM %s data is unreadable (%s: %s); loaded as plain glTF without expressions.",
                        self.path.name, version, type(error).__name__, error)
            return avatar
        return dataclasses.replace(avatar, vrm=info)

    def _spring_bones(self, avatar: Avatar) -> SpringBones | None:
        """``VRMC_springBone`` (any glTF may carry it) or VRM 0.x ``secondaryAnimation``; unreadable
        ones cost the secondary motion, not the avatar."""
        extensions = self.gltf.extensions or {}
        try:
            if isinstance(extensions.get(vrm1.SPRING_EXTENSION), dict):
                return vrm1.read_spring_bones(extensions[vrm1.SPRING_EXTENSION], avatar)
            if isinstance(extensions.get(vrm0.EXTENSION), dict):
                return vrm0.read_secondary_animation(extensions[vrm0.EXTENSION], avatar)
            return None
        except (AttributeError, TypeError, ValueError, KeyError) as error:
            log.warning("%s: its spring bones are unreadable (%s: %s); hair and accessories stay still.",
                        self.path.name, type(error).__name__, error)
            return None

    def _rest_uv(self) -> dict[int, tuple[float, float, float, float]]:
        return {index: (*m.uv_offset, *m.uv_scale) for index, m in self._materials.items()
                if index is not None}

    # --- structure ---

    def _nodes(self, mesh_count: int, skin_count: int) -> tuple[Node, ...]:
        g = self.gltf
        parents: dict[int, int] = {}
        if len(g.nodes) > limits.MAX_NODES:
            limits.check_node_tree({}, len(g.nodes))
        for index, node in enumerate(g.nodes):
            for child in node.children or []:
                if not 0 <= child < len(g.nodes) or child in parents or child == index:
                    raise self.fail(f"node {index} has an invalid child {child}")
                parents[child] = index
        limits.check_node_tree(parents, len(g.nodes))
        nodes = []
        for index, node in enumerate(g.nodes):
            where = f"node {index}"
            if node.matrix is not None and list(node.matrix) != [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]:
                matrix = limits.numbers(node.matrix, 16, f"{where}'s matrix")
                translation, rotation, scale = decompose_matrix(np.array(matrix, dtype=np.float64).reshape(4, 4).T)
            else:
                translation = limits.numbers(node.translation or (0.0, 0.0, 0.0), 3, f"{where}'s translation")
                rotation = limits.numbers(node.rotation or (0.0, 0.0, 0.0, 1.0), 4, f"{where}'s rotation")
                scale = limits.numbers(node.scale or (1.0, 1.0, 1.0), 3, f"{where}'s scale")
            norm = math.sqrt(sum(v * v for v in rotation))
            if not (math.isfinite(norm) and norm > 1e-12) or not all(map(math.isfinite, (*translation, *scale))):
                raise self.fail(f"{where} has a degenerate transform")
            rotation = tuple(v / norm for v in rotation)
            if node.mesh is not None and not 0 <= node.mesh < mesh_count:
                raise self.fail(f"node {index} refers to missing mesh {node.mesh}")
            if node.skin is not None and not 0 <= node.skin < skin_count:
                raise self.fail(f"node {index} refers to missing skin {node.skin}")
            nodes.append(Node(name=node.name or f"node{index}", parent=parents.get(index),
                              children=tuple(node.children or ()), translation=translation,
                              rotation=rotation, scale=scale, mesh=node.mesh, skin=node.skin))
        return tuple(nodes)

    def _scene_roots(self, nodes: tuple[Node, ...]) -> tuple[int, ...]:
        g = self.gltf
        if g.scenes:
            scene = g.scenes[g.scene if g.scene is not None and 0 <= g.scene < len(g.scenes) else 0]
            roots = tuple(scene.nodes or ())
            if any(not 0 <= r < len(nodes) for r in roots):
                raise self.fail("the scene refers to a missing node")
            return roots
        return tuple(i for i, n in enumerate(nodes) if n.parent is None)

    def _skin(self, index: int) -> Skin:
        skin = self.gltf.skins[index]
        joints = tuple(skin.joints or ())
        if not joints or any(not 0 <= j < len(self.gltf.nodes) for j in joints):
            raise self.fail(f"skin {index} has missing joint nodes")
        if skin.inverseBindMatrices is None:
            ibm = np.tile(np.eye(4), (len(joints), 1, 1))
        else:
            raw = self._accessor(skin.inverseBindMatrices)
            if raw.shape != (len(joints), 16):
                raise self.fail(f"skin {index} has {raw.shape[0]} inverse bind matrices for {len(joints)} joints")
            if not np.isfinite(raw).all():
                raise self.fail(f"skin {index} has non-finite inverse bind matrices")
            ibm = raw.astype(np.float64).reshape(-1, 4, 4).transpose(0, 2, 1)  # glTF is column-major
        return Skin(name=skin.name or f"skin{index}", joints=joints, inverse_bind_matrices=np.ascontiguousarray(ibm))

    # --- meshes ---

    def _mesh(self, index: int) -> Mesh:
        mesh = self.gltf.meshes[index]
        primitives = []
        for p_index, prim in enumerate(mesh.primitives):
            mode = TRIANGLES if prim.mode is None else prim.mode
            if mode != TRIANGLES:
                log.warning("%s: mesh %r primitive %d uses draw mode %d; only triangles are drawn, skipped.",
                            self.path.name, mesh.name, p_index, mode)
                continue
            primitives.append(self._primitive(prim))
        target_count = max((p.target_count for p in primitives), default=0)
        if any(p.target_count != target_count for p in primitives):
            raise self.fail(f"mesh {mesh.name or index} has primitives with different morph target counts")
        names = self._target_names(mesh, target_count)
        weights = tuple(limits.finite_or(w, 0.0) for w in (mesh.weights or [])[:target_count])
        weights += (0.0,) * (target_count - len(weights))
        return Mesh(name=mesh.name or f"mesh{index}", primitives=tuple(primitives),
                    target_names=names, default_weights=weights)

    @staticmethod
    def _target_names(mesh: pygltflib.Mesh, count: int) -> tuple[str, ...]:
        sources = [mesh.extras] + [p.extras for p in mesh.primitives]
        for extras in sources:
            names = (extras or {}).get("targetNames") if isinstance(extras, dict) else None
            if isinstance(names, list) and len(names) == count and all(isinstance(n, str) for n in names):
                return tuple(names)
        return tuple(f"target{i}" for i in range(count))

    def _primitive(self, prim: pygltflib.Primitive) -> Primitive:
        attrs = prim.attributes
        draco = (prim.extensions or {}).get(compression.DRACO)
        if isinstance(draco, dict) and compression.draco_available():
            self._decode_draco(prim, draco)
        if _get(attrs, "POSITION") is None:
            raise self.fail("a mesh primitive has no POSITION attribute")
        positions = self._accessor(_get(attrs, "POSITION"), width=3).astype(np.float32)
        n = positions.shape[0]
        if not np.isfinite(positions).all():
            raise self.fail("a mesh has non-finite vertex positions")

        def optional(name: str, width: int) -> np.ndarray | None:
            index = _get(attrs, name)
            if index is None:
                return None
            values = self._accessor(index)
            if values.shape[0] != n or values.shape[1] < width:
                raise self.fail(f"attribute {name} has {values.shape[0]} values for {n} vertices")
            return values

        if prim.indices is not None:
            indices = self._accessor(prim.indices, width=1).reshape(-1).astype(np.uint32)
            if indices.size and int(indices.max()) >= n:
                raise self.fail(f"a triangle index ({int(indices.max())}) is out of range for {n} vertices")
        else:
            indices = np.arange(n, dtype=np.uint32)
        indices = indices[: indices.size - indices.size % 3]
        targets = prim.targets or []
        self._geometry.add(n, indices.size, len(targets))  # before the morph arrays are allocated

        uv0 = optional("TEXCOORD_0", 2)
        colors = optional("COLOR_0", 3)
        if colors is not None and colors.shape[1] == 3:
            colors = np.c_[colors, np.ones(n, dtype=np.float32)]
        joints = optional("JOINTS_0", 4)
        weights = optional("WEIGHTS_0", 4)
        if weights is not None:
            total = weights.sum(axis=1, keepdims=True)
            weights = np.where(total > 0, weights / np.where(total > 0, total, 1), [1.0, 0, 0, 0])
        normals = optional("NORMAL", 3)
        normals = _normalize(normals) if normals is not None else smooth_normals(positions, indices)
        normals = np.nan_to_num(normals, nan=0.0, posinf=0.0, neginf=0.0)
        morph_p = np.zeros((len(targets), n, 3), dtype=np.float32)
        morph_n = np.zeros_like(morph_p)
        for t, target in enumerate(targets):
            for key, out in (("POSITION", morph_p), ("NORMAL", morph_n)):
                index = _get(target, key)
                if index is not None:
                    delta = self._accessor(index, width=3)
                    if delta.shape[0] != n:
                        raise self.fail(f"morph target {t} {key} has {delta.shape[0]} values for {n} vertices")
                    if not np.isfinite(delta).all():
                        raise self.fail(f"morph target {t} {key} has non-finite values")
                    out[t] = delta
        return Primitive(
            positions=np.ascontiguousarray(positions),
            normals=np.ascontiguousarray(normals, dtype=np.float32),
            indices=np.ascontiguousarray(indices),
            material=self._material(prim.material),
            morph_positions=morph_p,
            morph_normals=morph_n,
            uv0=None if uv0 is None else np.ascontiguousarray(uv0[:, :2], dtype=np.float32),
            colors=None if colors is None else np.ascontiguousarray(colors[:, :4], dtype=np.float32),
            joints=None if joints is None else np.ascontiguousarray(joints[:, :4], dtype=np.uint16),
            weights=None if weights is None else np.ascontiguousarray(weights[:, :4], dtype=np.float32),
        )

    # --- materials and images ---

    def _material(self, index: int | None) -> Material:
        if index not in self._materials:
            self._materials[index] = self._read_material(index)
        return self._materials[index]

    def _read_material(self, index: int | None) -> Material:
        if index is None:
            return Material()
        if not 0 <= index < len(self.gltf.materials):
            raise self.fail(f"a primitive refers to missing material {index}")
        m = self.gltf.materials[index]
        pbr = m.pbrMetallicRoughness or pygltflib.PbrMetallicRoughness()
        texture = None
        if pbr.baseColorTexture is not None:
            texture = self._texture(pbr.baseColorTexture.index, pbr.baseColorTexture.texCoord or 0)
        uv_offset, uv_scale = (0.0, 0.0), (1.0, 1.0)
        if pbr.baseColorTexture is not None:
            transform = (pbr.baseColorTexture.extensions or {}).get("KHR_texture_transform")
            if isinstance(transform, dict):
                offset, scale = transform.get("offset") or (0.0, 0.0), transform.get("scale") or (1.0, 1.0)
                uv_offset = limits.numbers(offset, 2, f"material {index}'s texture offset")
                uv_scale = limits.numbers(scale, 2, f"material {index}'s texture scale")
        extensions = m.extensions or {}
        fields: dict[str, Any] = {
            "index": index, "uv_offset": uv_offset, "uv_scale": uv_scale, "name": m.name or f"material{index}",
            "base_color_factor": limits.numbers(pbr.baseColorFactor or (1.0, 1.0, 1.0, 1.0), 4, f"material {index}'s colour"),
            "base_color_texture": texture,
            "metallic": limits.number(1.0 if pbr.metallicFactor is None else pbr.metallicFactor, f"material {index}'s metallic"),
            "roughness": limits.number(1.0 if pbr.roughnessFactor is None else pbr.roughnessFactor,
                                       f"material {index}'s roughness"),
            "alpha_mode": (m.alphaMode or "OPAQUE").upper(),
            "alpha_cutoff": limits.number(0.5 if m.alphaCutoff is None else m.alphaCutoff, f"material {index}'s alpha cutoff"),
            "double_sided": bool(m.doubleSided),
            **self._emission(m, extensions),
        }
        if "KHR_materials_unlit" in extensions:
            fields["shading"] = "unlit"
        if isinstance(extensions.get(vrm1.MTOON_EXTENSION), dict):
            fields.update(vrm1.mtoon_material_fields(extensions[vrm1.MTOON_EXTENSION], self._texture_ref))
        elif self._vrm0_materials.get(index):
            fields.update(vrm0.vrm0_material_fields(self._vrm0_materials[index], self._texture_ref))
        return Material(**fields)

    def _emission(self, m: pygltflib.Material, extensions: dict) -> dict[str, Any]:
        """glTF emission: ``emissiveFactor x emissiveTexture`` (x ``KHR_materials_emissive_strength``)."""
        factor = list(limits.numbers(m.emissiveFactor or (0.0, 0.0, 0.0), 3, f"material {m.name!r}'s emission"))
        strength = extensions.get("KHR_materials_emissive_strength")
        if isinstance(strength, dict):
            gain = limits.number(strength.get("emissiveStrength", 1.0), f"material {m.name!r}'s emissive strength")
            factor = [v * gain for v in factor]
        texture = None
        if m.emissiveTexture is not None and any(factor):
            texture = self._texture(m.emissiveTexture.index, m.emissiveTexture.texCoord or 0)
        return {"emissive": tuple(factor), "emissive_texture": texture}

    def _texture_ref(self, ref: Any) -> Texture | None:
        """A texture from a VRM material's reference: a texture index (0.x) or ``{"index": i}`` (1.0)."""
        if isinstance(ref, dict):
            ref = ref.get("index")
        return self._texture(ref, 0) if isinstance(ref, int) else None

    def _texture(self, index: int, texcoord: int) -> Texture | None:
        g = self.gltf
        if not 0 <= index < len(g.textures):
            log.warning("%s: material refers to missing texture %d; using white.", self.path.name, index)
            return None
        tex = g.textures[index]
        source = compression.texture_image_source(tex)
        image = self._image(source) if source is not None else None
        if image is None:
            return None
        wrap_s = wrap_t = REPEAT
        if tex.sampler is not None and 0 <= tex.sampler < len(g.samplers):
            sampler = g.samplers[tex.sampler]
            wrap_s, wrap_t = sampler.wrapS or REPEAT, sampler.wrapT or REPEAT
        return Texture(image=image, wrap_s=wrap_s, wrap_t=wrap_t, texcoord=texcoord)

    def _image(self, index: int) -> np.ndarray | None:
        if index not in self._images:
            self._images[index] = self._decode_image(index)
        return self._images[index]

    def _decode_image(self, index: int) -> np.ndarray | None:
        g = self.gltf
        try:
            image = g.images[index]
            if image.bufferView is not None:
                encoded = self._buffer_view_bytes(image.bufferView)
            elif image.uri:
                encoded = self._uri_bytes(image.uri, f"image {index}")
            else:
                raise ValueError("image has neither bufferView nor uri")
            limits.check_image(bytes(encoded[:1 << 16]), f"texture image {index}", self._pixels_left)
            decoded = cv2.imdecode(np.frombuffer(encoded, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
            if decoded is None:
                raise ValueError("OpenCV could not decode it")
        except limits.AvatarLimitError:
            raise  # a hostile reference or a size over the limits refuses the avatar
        except (AvatarLoadError, IndexError, ValueError, cv2.error) as error:
            log.warning("%s: texture image %d is unusable (%s); using white.", self.path.name, index, error)
            return None
        return _to_rgba8(decoded)

    # --- buffers and accessors ---

    def _uri_bytes(self, uri: str, what: str) -> bytes:
        if uri.startswith("data:"):
            try:
                header, payload = uri.split(",", 1)
                return base64.b64decode(payload) if header.endswith(";base64") else unquote(payload).encode()
            except (ValueError, binascii.Error) as error:
                raise self.fail(f"{what} has a malformed data URI") from error
        file = limits.resolve_uri(self.path.parent, unquote(uri), f"{self.path.name}: {what}")
        if not file.exists():
            raise self.fail(f"{what} file {unquote(uri)!r} is missing or unreadable",
                            "Keep the .bin and texture files next to the .gltf file.")
        return limits.read_regular_file(file, f"{self.path.name}: {what} file", MAX_FILE_BYTES)

    def _buffer(self, index: int) -> bytes:
        if index in self._buffers:
            return self._buffers[index]
        g = self.gltf
        if not 0 <= index < len(g.buffers):
            raise self.fail(f"a buffer view refers to missing buffer {index}")
        buffer = g.buffers[index]
        if buffer.uri:
            data = self._uri_bytes(buffer.uri, f"buffer {index}")
        elif index == 0 and self.blob is not None:
            data = self.blob
        else:
            raise self.fail(f"buffer {index} has no data (no URI and no GLB binary chunk)")
        if len(data) < (buffer.byteLength or 0):
            raise self.fail(f"buffer {index} is truncated ({len(data)} of {buffer.byteLength} bytes)")
        self._buffers[index] = data
        return data

    def _buffer_view_bytes(self, index: int) -> memoryview:
        g = self.gltf
        if not 0 <= index < len(g.bufferViews):
            raise self.fail(f"an accessor refers to missing buffer view {index}")
        view = g.bufferViews[index]
        meshopt = compression.meshopt_view(view.extensions)
        if meshopt is not None:
            return self._meshopt_view_bytes(index, meshopt)
        data = self._buffer(view.buffer)
        start = view.byteOffset or 0
        if start + view.byteLength > len(data):
            raise self.fail(f"buffer view {index} runs past the end of its buffer")
        return memoryview(data)[start:start + view.byteLength]

    def _meshopt_view_bytes(self, index: int, ext: dict) -> memoryview:
        if index not in self._decoded_views:
            try:
                data = self._buffer(int(ext["buffer"]))
                start = int(ext.get("byteOffset", 0))
                decoded = compression.decode_meshopt(ext, memoryview(data)[start:start + int(ext["byteLength"])])
            except (KeyError, TypeError, ValueError) as error:
                raise self.fail(f"compressed buffer view {index} cannot be decoded ({error})") from error
            self._decoded_views[index] = memoryview(decoded)
        return self._decoded_views[index]

    def _raw(self, view_index: int, byte_offset: int, component: int, width: int, count: int,
             stride: int | None = None) -> np.ndarray:
        """``count x width`` array of one component type from a buffer view (strided or packed)."""
        dtype = np.dtype(_COMPONENT_DTYPES[component]).newbyteorder("<")
        view = self._buffer_view_bytes(view_index)
        element = dtype.itemsize * width
        stride = stride or element
        needed = byte_offset + (count - 1) * stride + element if count else 0
        if needed > len(view):
            raise self.fail(f"an accessor reads past the end of buffer view {view_index} "
                            f"({needed} > {len(view)} bytes)")
        if count == 0:
            return np.zeros((0, width), dtype=dtype)
        return np.ndarray((count, width), dtype=dtype, buffer=view, offset=byte_offset,
                          strides=(stride, dtype.itemsize)).copy()

    def _decode_draco(self, prim: pygltflib.Primitive, ext: dict) -> None:
        """Decode a Draco primitive; its accessors then read the decoded values."""
        try:
            decoded = compression.decode_draco(self._buffer_view_bytes(int(ext["bufferView"])), ext["attributes"])
        except (KeyError, TypeError, ValueError) as error:
            raise self.fail(f"a Draco-compressed mesh cannot be decoded ({error})") from error
        for name, values in decoded.items():
            index = prim.indices if name == "indices" else _get(prim.attributes, name)
            if index is not None:
                self._draco[index] = values

    def _accessor(self, index: int, width: int | None = None) -> np.ndarray:
        """Accessor ``index`` as a ``count x components`` array (float32 when normalised or float)."""
        if index in self._draco:
            values = self._draco[index]
            if width is not None and values.shape[1] != width:
                raise self.fail(f"Draco attribute for accessor {index} has {values.shape[1]} components, expected {width}")
            return values.astype(np.float32) if values.dtype.kind == "f" else values
        g = self.gltf
        if index is None or not 0 <= index < len(g.accessors):
            raise self.fail(f"missing accessor {index}")
        acc = g.accessors[index]
        if acc.componentType not in _COMPONENT_DTYPES or acc.type not in _TYPE_WIDTH:
            raise self.fail(f"accessor {index} has an unknown type {acc.type}/{acc.componentType}")
        components = _TYPE_WIDTH[acc.type]
        if width is not None and components != width:
            raise self.fail(f"accessor {index} is {acc.type}, expected {width} components")
        count = limits.check_accessor_count(acc.count or 0, components, index)
        if acc.bufferView is not None:
            stride = g.bufferViews[acc.bufferView].byteStride if 0 <= acc.bufferView < len(g.bufferViews) else None
            values = self._raw(acc.bufferView, acc.byteOffset or 0, acc.componentType, components, count, stride)
        else:
            values = np.zeros((count, components), dtype=_COMPONENT_DTYPES[acc.componentType])
        if acc.sparse is not None and acc.sparse.count:
            sparse = acc.sparse
            limits.check_accessor_count(sparse.count, components, index)
            where = self._raw(sparse.indices.bufferView, sparse.indices.byteOffset or 0,
                              sparse.indices.componentType, 1, sparse.count).reshape(-1)
            if int(where.max()) >= count:
                raise self.fail(f"sparse accessor {index} writes past its {count} elements")
            values[where] = self._raw(sparse.values.bufferView, sparse.values.byteOffset or 0,
                                      acc.componentType, components, sparse.count)
        if acc.normalized and values.dtype.kind in "iu":
            info = np.iinfo(values.dtype)
            return np.maximum(values.astype(np.float32) / info.max, -1.0)
        if values.dtype.kind == "f":
            return values.astype(np.float32, copy=False)
        return values


def smooth_normals(positions: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Area-weighted per-vertex normals of a triangle list (vertices in no triangle get +Y)."""
    tris = indices.reshape(-1, 3)
    p = positions.astype(np.float64)
    face = np.cross(p[tris[:, 1]] - p[tris[:, 0]], p[tris[:, 2]] - p[tris[:, 0]])
    normals = np.zeros_like(p)
    for corner in range(3):
        np.add.at(normals, tris[:, corner], face)
    length = np.linalg.norm(normals, axis=1)
    normals[length == 0] = (0.0, 1.0, 0.0)
    return _normalize(normals)


def _normalize(vectors: np.ndarray) -> np.ndarray:
    v = vectors[:, :3].astype(np.float32)
    length = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(length > 0, length, 1.0)


def _to_rgba8(image: np.ndarray) -> np.ndarray:
    """OpenCV's decoded BGR/BGRA/grey image (8 or 16 bit) as RGBA uint8."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if image.ndim == 2:
        return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_GRAY2RGBA))
    if image.shape[2] == 4:
        return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA))
    return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGBA))


__all__ = ["load_avatar", "smooth_normals", "MAX_FILE_BYTES", "SUPPORTED_SUFFIXES"]
