"""Headless OpenGL rendering of avatars (moderngl) and the camera maths that frames them."""

from engine.render.camera import FRAMINGS, Camera, frame_avatar
from engine.render.renderer import (
    CHROMA_GREEN,
    AvatarPose,
    AvatarRenderer,
    RenderOptions,
    benchmark_render,
    create_context,
)

__all__ = ["AvatarPose", "AvatarRenderer", "CHROMA_GREEN", "Camera", "FRAMINGS", "RenderOptions", "benchmark_render",
           "create_context", "frame_avatar"]
