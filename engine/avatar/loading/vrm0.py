"""VRM 0.x importer: the ``VRM`` extension (UniVRM 0.x) into the version-neutral ``VrmInfo``.

VRM 0.x models face -Z (the loader sets ``Avatar.facing = -1``). Blend shape groups become
expressions under their VRM 1.0 names (``a`` -> ``aa``, ``joy`` -> ``happy``, ``blink_l`` ->
``blinkLeft``...); bind weights 0..100 become 0..1. VRM 0.x has no override flags. Binds to a
missing mesh or morph target are skipped with a warning. MToon ``materialProperties`` become
material fields (``vrm0_material_fields``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from engine.avatar.expressions import Expression, ExpressionManager, MorphBind
from engine.avatar.loading import limits
from engine.avatar.model import Avatar, OutlineMode, Texture
from engine.avatar.spring_bone import SpringBones, SpringCollider, SpringJoint
from engine.avatar.vrm import LookAt, Meta, RangeMap, VrmInfo

log = logging.getLogger(__name__)

EXTENSION = "VRM"

# VRM 0.x presetName -> VRM 1.0 expression name
PRESET_NAMES: dict[str, str] = {
    "a": "aa", "i": "ih", "u": "ou", "e": "ee", "o": "oh",
    "blink": "blink", "blink_l": "blinkLeft", "blink_r": "blinkRight",
    "joy": "happy", "angry": "angry", "sorrow": "sad", "fun": "relaxed", "surprised": "surprised",
    "lookup": "lookUp", "lookdown": "lookDown", "lookleft": "lookLeft", "lookright": "lookRight",
    "neutral": "neutral",
}


TextureLookup = Callable[[Any], Texture | None]  # a VRM texture reference -> the decoded texture


def no_texture(_ref: Any) -> Texture | None:
    return None


_float = limits.finite_or  # NaN and infinity fall back to the default like a missing value


def _srgb_to_linear(c: float) -> float:
    c = min(max(c, 0.0), 1.0)
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def read_meta(raw: Any) -> Meta:
    raw = raw if isinstance(raw, dict) else {}
    licence = str(raw.get("licenseName", ""))
    url = str(raw.get("otherLicenseUrl", "") or raw.get("otherPermissionUrl", ""))
    author = str(raw.get("author", ""))
    return Meta(title=str(raw.get("title", "")), version=str(raw.get("version", "")),
                authors=(author,) if author else (), licence=licence or url, licence_url=url,
                allowed_users=str(raw.get("allowedUserName", "")),
                commercial_use=str(raw.get("commercialUssageName", "")),
                contact=str(raw.get("contactInformation", "")), raw=dict(raw))


def read_look_at(first_person: Any) -> LookAt | None:
    if not isinstance(first_person, dict):
        return None
    kind = "expression" if first_person.get("lookAtTypeName") == "BlendShape" else "bone"

    def curve(key: str) -> RangeMap:
        raw = first_person.get(key) or {}
        # xRange: input degrees; yRange: output degrees (bone) or weight (blend shape, 0..1)
        default_out = 10.0 if kind == "bone" else 1.0
        return RangeMap(_float(raw.get("xRange"), 90.0), _float(raw.get("yRange"), default_out))

    offset = first_person.get("firstPersonBoneOffset") or {}
    return LookAt(type=kind,
                  offset_from_head=(_float(offset.get("x"), 0.0), _float(offset.get("y"), 0.06),
                                    _float(offset.get("z"), 0.0)),
                  horizontal_inner=curve("lookAtHorizontalInner"), horizontal_outer=curve("lookAtHorizontalOuter"),
                  vertical_down=curve("lookAtVerticalDown"), vertical_up=curve("lookAtVerticalUp"))


def import_vrm0(ext: Mapping[str, Any], avatar: Avatar) -> VrmInfo:
    where = avatar.source.name if avatar.source is not None else "avatar"
    humanoid: dict[str, int] = {}
    for bone in ((ext.get("humanoid") or {}).get("humanBones") or []):
        if not isinstance(bone, dict):
            continue
        name, node = bone.get("bone"), bone.get("node")
        if isinstance(node, int) and 0 <= node < len(avatar.nodes) and isinstance(name, str):
            humanoid[name] = node
        else:
            log.warning("%s: humanoid bone %r refers to missing node %r; ignored.", where, name, node)
    expressions: dict[str, Expression] = {}
    for group in ((ext.get("blendShapeMaster") or {}).get("blendShapeGroups") or []):
        if not isinstance(group, dict):
            continue
        preset = str(group.get("presetName", "unknown")).lower()
        name = PRESET_NAMES.get(preset) or str(group.get("name") or preset)
        binds = []
        for bind in group.get("binds") or []:
            mesh, index = bind.get("mesh"), bind.get("index")
            if not isinstance(mesh, int) or not 0 <= mesh < len(avatar.meshes):
                log.warning("%s: blend shape %r binds missing mesh %r; bind skipped.", where, name, mesh)
                continue
            if not isinstance(index, int) or not 0 <= index < len(avatar.meshes[mesh].target_names):
                log.warning("%s: blend shape %r binds morph target %r that mesh %r lacks; bind skipped.",
                            where, name, index, avatar.meshes[mesh].name)
                continue
            binds.append(MorphBind(mesh, index, min(max(_float(bind.get("weight"), 100.0) / 100.0, 0.0), 1.0)))
        if name in expressions:
            log.warning("%s: blend shape %r is defined twice; the first one is used.", where, name)
            continue
        expressions[name] = Expression(name=name, morph_binds=tuple(binds), is_binary=bool(group.get("isBinary")),
                                       preset=preset in PRESET_NAMES)
    return VrmInfo(version="0.x", meta=read_meta(ext.get("meta")), humanoid=humanoid,
                   look_at=read_look_at(ext.get("firstPerson")),
                   expressions=ExpressionManager(tuple(expressions.values())))


def read_secondary_animation(ext: Mapping[str, Any], avatar: Avatar) -> SpringBones:
    """VRM 0.x ``secondaryAnimation``: every node under a bone group's root bones is a joint
    (its first child is the tail; a chain end gets a virtual 7 cm tail); colliders are spheres
    whose offset's z is flipped (VRM 0.x stores it in Unity's left-handed axes)."""
    secondary = ext.get("secondaryAnimation") or {}
    count = len(avatar.nodes)
    colliders: list[SpringCollider] = []
    groups: list[tuple[int, ...]] = []
    for group in secondary.get("colliderGroups") or []:
        members: list[int] = []
        node = group.get("node")
        if isinstance(node, int) and 0 <= node < count:
            for raw in group.get("colliders") or []:
                offset = raw.get("offset") or {}
                members.append(len(colliders))
                colliders.append(SpringCollider(node, (_float(offset.get("x"), 0.0), _float(offset.get("y"), 0.0),
                                                       -_float(offset.get("z"), 0.0)), _float(raw.get("radius"), 0.0)))
        groups.append(tuple(members))
    joints: list[SpringJoint] = []
    taken: set[int] = set()
    for bone_group in secondary.get("boneGroups") or []:
        gravity = bone_group.get("gravityDir") or {"x": 0.0, "y": -1.0, "z": 0.0}
        center = bone_group.get("center")
        touching = tuple(sorted({c for g in (bone_group.get("colliderGroups") or [])
                                 if isinstance(g, int) and 0 <= g < len(groups) for c in groups[g]}))
        settings = {"stiffness": _float(bone_group.get("stiffiness"), 1.0),  # sic: the 0.x key is misspelt
                    "drag": _float(bone_group.get("dragForce"), 0.4),
                    "gravity_power": _float(bone_group.get("gravityPower"), 0.0),
                    "gravity_dir": (_float(gravity.get("x"), 0.0), _float(gravity.get("y"), -1.0),
                                    _float(gravity.get("z"), 0.0)),
                    "hit_radius": _float(bone_group.get("hitRadius"), 0.02), "colliders": touching,
                    "center": center if isinstance(center, int) and 0 <= center < count else None}
        stack = [b for b in (bone_group.get("bones") or []) if isinstance(b, int) and 0 <= b < count]
        while stack:
            node = stack.pop()
            if node in taken:
                continue
            taken.add(node)
            children = avatar.nodes[node].children
            joints.append(SpringJoint(node=node, child=children[0] if children else None, **settings))
            stack.extend(reversed(children))
    return SpringBones(joints=tuple(joints), colliders=tuple(colliders))


def vrm0_material_fields(props: Mapping[str, Any], texture: TextureLookup = no_texture) -> dict:
    """Material fields of one VRM 0.x ``materialProperties`` entry using the ``VRM/MToon`` shader.

    VRM 0.x stores colours in sRGB and world outline widths in centimetres; shade toony/shift are
    used as they are (an approximation of UniVRM's 0.x -> 1.0 migration). ``texture`` resolves the
    texture indices of ``textureProperties`` (``_ShadeTexture``, ``_SphereAdd``).
    """
    if props.get("shader") != "VRM/MToon":
        return {}
    floats = props.get("floatProperties") or {}
    vectors = props.get("vectorProperties") or {}
    textures = props.get("textureProperties") or {}

    def colour(key: str, default: tuple) -> tuple[float, float, float]:
        value = vectors.get(key)
        if isinstance(value, list) and len(value) >= 3:
            return tuple(_srgb_to_linear(_float(v, 0.0)) for v in value[:3])
        return default

    toony0 = min(max(_float(floats.get("_ShadeToony"), 0.9), 0.0), 1.0)
    shift0 = min(max(_float(floats.get("_ShadeShift"), 0.0), -1.0), 1.0)
    # _OutlineWidthMode 1: world, in centimetres; 2: screen, 0.01 clip units per unit (half a frame height is 1)
    mode = {1: OutlineMode.WORLD, 2: OutlineMode.SCREEN}.get(int(_float(floats.get("_OutlineWidthMode"), 0.0)),
                                                             OutlineMode.NONE)
    width = max(_float(floats.get("_OutlineWidth"), 0.0), 0.0) * (0.01 if mode is OutlineMode.WORLD else 0.005)
    return {
        "shading": "mtoon",
        "shade_color": colour("_ShadeColor", (0.0, 0.0, 0.0)),
        "shade_texture": texture(textures.get("_ShadeTexture")),
        "shading_toony": toony0,
        "shading_shift": shift0,
        "rim_color": colour("_RimColor", (0.0, 0.0, 0.0)),
        "rim_fresnel_power": max(_float(floats.get("_RimFresnelPower"), 1.0), 0.0),
        "rim_lift": _float(floats.get("_RimLift"), 0.0),
        "rim_lighting_mix": min(max(_float(floats.get("_RimLightingMix"), 0.0), 0.0), 1.0),
        "matcap_texture": texture(textures.get("_SphereAdd")),
        "outline_mode": mode if width > 0 else OutlineMode.NONE,
        "outline_width": width if mode is not OutlineMode.NONE else 0.0,
        "outline_color": colour("_OutlineColor", (0.0, 0.0, 0.0)),
    }


__all__ = ["EXTENSION", "PRESET_NAMES", "import_vrm0", "read_secondary_animation", "read_look_at", "read_meta", "vrm0_material_fields"]
