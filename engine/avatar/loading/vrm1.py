"""VRM 1.0 importer: the ``VRMC_vrm`` extension (and ``VRMC_materials_mtoon``) into ``VrmInfo``.

A bind that refers to a node without a mesh, a missing mesh or a missing morph target is skipped
with a warning; the rest of the avatar still loads (a broken expression must not cost the user
their avatar).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from engine.avatar.expressions import OVERRIDE_TYPES, PRESETS, Expression, ExpressionManager, MorphBind, TextureTransformBind
from engine.avatar.loading import limits
from engine.avatar.loading.vrm0 import TextureLookup, no_texture
from engine.avatar.model import Avatar, OutlineMode
from engine.avatar.spring_bone import SpringBones, SpringCollider, SpringJoint
from engine.avatar.vrm import LookAt, Meta, RangeMap, VrmInfo

log = logging.getLogger(__name__)

EXTENSION = "VRMC_vrm"
MTOON_EXTENSION = "VRMC_materials_mtoon"
SPRING_EXTENSION = "VRMC_springBone"


_float = limits.finite_or  # NaN and infinity fall back to the default like a missing value


def _range(raw: Any, default: RangeMap) -> RangeMap:
    if not isinstance(raw, dict):
        return default
    return RangeMap(_float(raw.get("inputMaxValue"), default.input_max), _float(raw.get("outputScale"), default.output_scale))


def read_look_at(raw: Any) -> LookAt | None:
    if not isinstance(raw, dict):
        return None
    kind = raw.get("type", "bone")
    kind = kind if kind in ("bone", "expression") else "bone"
    default = RangeMap(90.0, 10.0) if kind == "bone" else RangeMap(90.0, 1.0)
    offset = raw.get("offsetFromHeadBone") or (0.0, 0.06, 0.0)
    return LookAt(type=kind, offset_from_head=tuple(_float(v, 0.0) for v in list(offset)[:3]),
                  horizontal_inner=_range(raw.get("rangeMapHorizontalInner"), default),
                  horizontal_outer=_range(raw.get("rangeMapHorizontalOuter"), default),
                  vertical_down=_range(raw.get("rangeMapVerticalDown"), default),
                  vertical_up=_range(raw.get("rangeMapVerticalUp"), default))


def read_meta(raw: Any) -> Meta:
    raw = raw if isinstance(raw, dict) else {}
    authors = raw.get("authors") or []
    return Meta(title=str(raw.get("name", "")), version=str(raw.get("version", "")),
                authors=tuple(str(a) for a in authors if a), licence=str(raw.get("licenseUrl", "")),
                licence_url=str(raw.get("licenseUrl", "")), allowed_users=str(raw.get("avatarPermission", "")),
                commercial_use=str(raw.get("commercialUsage", "")), contact=str(raw.get("contactInformation", "")),
                raw=dict(raw))


def _override(value: Any, name: str, field: str, where: str) -> str:
    if value is None:
        return "none"
    if value not in OVERRIDE_TYPES:
        log.warning("%s: expression %r has an unknown %s %r; treated as none.", where, name, field, value)
        return "none"
    return value


def read_expression(name: str, raw: dict, avatar: Avatar, where: str, preset: bool) -> Expression:
    binds: list[MorphBind] = []
    for bind in raw.get("morphTargetBinds") or []:
        node, index = bind.get("node"), bind.get("index")
        if not isinstance(node, int) or not 0 <= node < len(avatar.nodes) or avatar.nodes[node].mesh is None:
            log.warning("%s: expression %r binds node %r, which has no mesh; bind skipped.", where, name, node)
            continue
        mesh = avatar.nodes[node].mesh
        if not isinstance(index, int) or not 0 <= index < len(avatar.meshes[mesh].target_names):
            log.warning("%s: expression %r binds morph target %r that mesh %r lacks; bind skipped.",
                        where, name, index, avatar.meshes[mesh].name)
            continue
        binds.append(MorphBind(mesh, index, min(max(_float(bind.get("weight"), 1.0), 0.0), 1.0)))
    textures: list[TextureTransformBind] = []
    for bind in raw.get("textureTransformBinds") or []:
        material = bind.get("material")
        if not isinstance(material, int) or material < 0:
            log.warning("%s: expression %r binds a missing material %r; bind skipped.", where, name, material)
            continue
        offset = list(bind.get("offset") or (0.0, 0.0))[:2]
        scale = list(bind.get("scale") or (1.0, 1.0))[:2]
        textures.append(TextureTransformBind(material, (_float(offset[0], 0), _float(offset[1], 0)),
                                             (_float(scale[0], 1), _float(scale[1], 1))))
    return Expression(name=name, morph_binds=tuple(binds), texture_binds=tuple(textures),
                      is_binary=bool(raw.get("isBinary", False)),
                      override_blink=_override(raw.get("overrideBlink"), name, "overrideBlink", where),
                      override_look_at=_override(raw.get("overrideLookAt"), name, "overrideLookAt", where),
                      override_mouth=_override(raw.get("overrideMouth"), name, "overrideMouth", where),
                      preset=preset)


def import_vrm1(ext: Mapping[str, Any], avatar: Avatar,
                rest_uv: Mapping[int, tuple[float, float, float, float]] | None = None) -> VrmInfo:
    """``VrmInfo`` of a ``VRMC_vrm`` extension object for an avatar loaded from the same file."""
    where = avatar.source.name if avatar.source is not None else "avatar"
    humanoid: dict[str, int] = {}
    bones = ((ext.get("humanoid") or {}).get("humanBones") or {})
    for bone, value in (bones.items() if isinstance(bones, dict) else ()):
        node = value.get("node") if isinstance(value, dict) else None
        if isinstance(node, int) and 0 <= node < len(avatar.nodes):
            humanoid[bone] = node
        else:
            log.warning("%s: humanoid bone %r refers to missing node %r; ignored.", where, bone, node)
    expressions: dict[str, Expression] = {}
    groups = ext.get("expressions") or {}
    for kind in ("preset", "custom"):
        for name, raw in (groups.get(kind) or {}).items():
            if not isinstance(raw, dict):
                continue
            if kind == "preset" and name not in PRESETS:
                log.warning("%s: unknown preset expression %r kept as a custom one.", where, name)
            expressions[name] = read_expression(name, raw, avatar, where, kind == "preset" and name in PRESETS)
    return VrmInfo(version="1.0", meta=read_meta(ext.get("meta")), humanoid=humanoid,
                   look_at=read_look_at(ext.get("lookAt")),
                   expressions=ExpressionManager(tuple(expressions.values()), dict(rest_uv or {})))


def read_spring_bones(ext: Mapping[str, Any], avatar: Avatar) -> SpringBones:
    """``VRMC_springBone``: springs are joint lists (each joint turns toward the next one), with
    collider groups of spheres and capsules, and an optional center node."""
    count = len(avatar.nodes)

    def vec(value: Any, default: tuple[float, float, float]) -> tuple[float, float, float]:
        if isinstance(value, (list, tuple)) and len(value) >= 3:
            return (_float(value[0], default[0]), _float(value[1], default[1]), _float(value[2], default[2]))
        return default

    colliders: list[SpringCollider] = []
    collider_index: dict[int, int] = {}
    for i, raw in enumerate(ext.get("colliders") or []):
        node, shape = raw.get("node"), raw.get("shape") or {}
        if not isinstance(node, int) or not 0 <= node < count:
            continue
        if isinstance(shape.get("capsule"), dict):
            c = shape["capsule"]
            collider = SpringCollider(node, vec(c.get("offset"), (0.0, 0.0, 0.0)), _float(c.get("radius"), 0.0),
                                      vec(c.get("tail"), (0.0, 0.0, 0.0)))
        elif isinstance(shape.get("sphere"), dict):
            c = shape["sphere"]
            collider = SpringCollider(node, vec(c.get("offset"), (0.0, 0.0, 0.0)), _float(c.get("radius"), 0.0))
        else:
            continue
        collider_index[i] = len(colliders)
        colliders.append(collider)
    groups = [tuple(collider_index[c] for c in (g.get("colliders") or []) if c in collider_index)
              for g in (ext.get("colliderGroups") or [])]
    joints: list[SpringJoint] = []
    taken: set[int] = set()
    for spring in ext.get("springs") or []:
        members = [j for j in (spring.get("joints") or [])
                   if isinstance(j, dict) and isinstance(j.get("node"), int) and 0 <= j["node"] < count]
        touching = tuple(sorted({c for g in (spring.get("colliderGroups") or [])
                                 if isinstance(g, int) and 0 <= g < len(groups) for c in groups[g]}))
        center = spring.get("center")
        center = center if isinstance(center, int) and 0 <= center < count else None
        for joint, child in zip(members, members[1:]):
            if joint["node"] in taken or avatar.nodes[child["node"]].parent != joint["node"]:
                continue  # each node is simulated once; a joint's tail must be its child
            taken.add(joint["node"])
            joints.append(SpringJoint(
                node=joint["node"], child=child["node"], stiffness=_float(joint.get("stiffness"), 1.0),
                drag=_float(joint.get("dragForce"), 0.5), gravity_power=_float(joint.get("gravityPower"), 0.0),
                gravity_dir=vec(joint.get("gravityDir"), (0.0, -1.0, 0.0)),
                hit_radius=_float(joint.get("hitRadius"), 0.0), colliders=touching, center=center))
    return SpringBones(joints=tuple(joints), colliders=tuple(colliders))


def mtoon_material_fields(ext: Mapping[str, Any], texture: TextureLookup = no_texture) -> dict:
    """Material fields of a ``VRMC_materials_mtoon`` object (colours are linear in VRM 1.0).

    ``texture`` resolves texture references (``{"index": i}``): the shade multiply and matcap textures.
    """

    def colour(key: str, default: tuple) -> tuple[float, float, float]:
        value = ext.get(key)
        if isinstance(value, (list, tuple)) and len(value) >= 3:
            return tuple(_float(v, d) for v, d in zip(value[:3], default))
        return default

    try:
        mode = OutlineMode(ext.get("outlineWidthMode", "none"))
    except ValueError:
        mode = OutlineMode.NONE
    width = max(_float(ext.get("outlineWidthFactor"), 0.0), 0.0) if mode is not OutlineMode.NONE else 0.0
    return {
        "shading": "mtoon",
        "shade_color": colour("shadeColorFactor", (0.0, 0.0, 0.0)),
        "shade_texture": texture(ext.get("shadeMultiplyTexture")),
        "shading_toony": min(max(_float(ext.get("shadingToonyFactor"), 0.9), 0.0), 1.0),
        "shading_shift": min(max(_float(ext.get("shadingShiftFactor"), 0.0), -1.0), 1.0),
        "rim_color": colour("parametricRimColorFactor", (0.0, 0.0, 0.0)),
        "rim_fresnel_power": max(_float(ext.get("parametricRimFresnelPowerFactor"), 5.0), 0.0),
        "rim_lift": _float(ext.get("parametricRimLiftFactor"), 0.0),
        "rim_lighting_mix": min(max(_float(ext.get("rimLightingMixFactor"), 1.0), 0.0), 1.0),
        "matcap_texture": texture(ext.get("matcapTexture")),
        "matcap_factor": colour("matcapFactor", (1.0, 1.0, 1.0)),
        "outline_mode": mode if width > 0 else OutlineMode.NONE,
        "outline_width": width,
        "outline_color": colour("outlineColorFactor", (0.0, 0.0, 0.0)),
    }


__all__ = ["EXTENSION", "MTOON_EXTENSION", "SPRING_EXTENSION", "read_spring_bones", "import_vrm1", "mtoon_material_fields", "read_look_at", "read_meta"]
