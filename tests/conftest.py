"""Shared test set-up: headless Qt, shared media/models lookup, and the default avatar."""

from __future__ import annotations

import os
from pathlib import Path

import fakes
import pytest
import pyvirtualcam

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from engine.paths import DEFAULT_AVATAR, SHARED_DIR


def shared_file(relative: str) -> Path:
    """A file from ../shared, or skip the test with the reason."""
    path = SHARED_DIR / relative
    if not path.is_file():
        pytest.skip(f"shared test file not found: {path} (tests read ../shared beside the checkout)")
    return path


@pytest.fixture(scope="session")
def face_model() -> Path:
    from engine.models import ModelManager

    path = ModelManager().find("face_landmarker")
    if path is None:
        pytest.skip("face_landmarker.task not found (../shared/models, $AVATARCAM_MODEL_DIR or the user data folder)")
    return path


@pytest.fixture(scope="session")
def default_avatar_path() -> Path:
    assert DEFAULT_AVATAR.is_file(), "assets/default_avatar.glb is missing: run assets/make_default_avatar.py"
    return DEFAULT_AVATAR


@pytest.fixture
def backends(monkeypatch):
    """An isolated pyvirtualcam backend registry, emptied for each test."""
    registry: dict = {}
    monkeypatch.setattr(pyvirtualcam.camera, "BACKENDS", registry)
    fakes.FakeBackend.instances.clear()
    return registry


def _opengl_missing() -> str:
    """Why no OpenGL context can be made here ("" when one can)."""
    from engine.errors import RenderError
    from engine.render import create_context

    try:
        create_context().release()
    except RenderError as error:  # pragma: no cover - machines without any OpenGL
        return str(error)
    return ""


_NO_GL = _opengl_missing()
needs_gl = pytest.mark.skipif(bool(_NO_GL), reason=f"no OpenGL context: {_NO_GL}")


@pytest.fixture
def server():
    """A started WebSocket data stream on a free loopback port (test_models has its own HTTP one)."""
    from engine.outputs.websocket import WebSocketOutput

    output = WebSocketOutput(port=0)
    output.start()
    yield output
    output.close()
