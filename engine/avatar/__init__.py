"""Avatar loading and the avatar data model (format-independent, OpenGL-free)."""

from engine.avatar.expressions import Expression, ExpressionManager, ExpressionResult, MorphBind, TextureTransformBind
from engine.avatar.loading.gltf import SUPPORTED_SUFFIXES, load_avatar, smooth_normals
from engine.avatar.model import (
    HEAD_NODE_CANDIDATES,
    Avatar,
    Material,
    Mesh,
    MeshInstance,
    Node,
    Primitive,
    Skin,
    Texture,
    decompose_matrix,
    quat_from_axis_angle,
    quat_multiply,
    quat_to_matrix,
    trs_matrix,
)
from engine.avatar.vrm import LookAt, Meta, RangeMap, VrmInfo

__all__ = [
    "Expression", "ExpressionManager", "ExpressionResult", "LookAt", "Meta", "MorphBind", "RangeMap",
    "TextureTransformBind", "VrmInfo",
    "Avatar", "HEAD_NODE_CANDIDATES", "Material", "Mesh", "MeshInstance", "Node",
    "Primitive", "SUPPORTED_SUFFIXES", "Skin", "Texture", "decompose_matrix", "load_avatar",
    "quat_from_axis_angle", "quat_multiply", "quat_to_matrix", "smooth_normals", "trs_matrix",
]
