"""User-facing errors: one clear line saying what is wrong, plus what to do about it.

Every error a user can cause or meet is raised as an ``AvatarcamError`` subclass. The CLI prints
``str(error)`` (message and hint) and exits non-zero; the GUI shows the same text in a banner.
"""

from __future__ import annotations


class AvatarcamError(Exception):
    """Base class: ``message`` says what is wrong, ``hint`` says what to do."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip() if self.hint else self.message


class SourceError(AvatarcamError):
    """A camera, video, image or audio source could not be opened or read."""


class SinkError(AvatarcamError):
    """An output (virtual camera, file, stream) could not be opened or written."""


class ModelError(AvatarcamError):
    """A model is missing, corrupt or could not be downloaded."""


class AvatarLoadError(AvatarcamError):
    """An avatar file could not be loaded."""


class RenderError(AvatarcamError):
    """The OpenGL renderer could not start or draw."""
