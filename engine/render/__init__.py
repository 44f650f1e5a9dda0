"""Headless OpenGL rendering of avatars (moderngl) and the camera maths that frames them."""

from engine.render.camera import FRAMINGS, Camera, Framing, frame_avatar
from engine.render.colour import CHROMA_GREEN, DEFAULT_BACKGROUND, colour_hex, parse_colour
from engine.render.renderer import AvatarRenderer, RenderOptions, create_context

__all__ = ["AvatarRenderer", "CHROMA_GREEN", "DEFAULT_BACKGROUND", "Camera", "FRAMINGS", "Framing", "RenderOptions",
           "colour_hex", "create_context", "frame_avatar", "parse_colour"]
