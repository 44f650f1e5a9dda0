"""Where the project's data folders are, in a source checkout and in a PyInstaller bundle."""

from __future__ import annotations

import sys
from pathlib import Path

# PyInstaller unpacks data next to the executable and exposes the folder as sys._MEIPASS.
PROJECT_ROOT: Path = Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parent.parent))
SHADERS_DIR: Path = PROJECT_ROOT / "shaders"
ASSETS_DIR: Path = PROJECT_ROOT / "assets"
MODELS_DIR: Path = PROJECT_ROOT / "models"
# Read-only test material beside a source checkout (never shipped, never committed).
SHARED_DIR: Path = PROJECT_ROOT.parent / "shared"
DEFAULT_AVATAR: Path = ASSETS_DIR / "default_avatar.glb"


def user_data_dir() -> Path:
    """The user's avatarcam data folder (made avatars, the gallery's looks, downloaded models):
    ``$AVATARCAM_DATA_DIR`` when set, else the platform's user data folder."""
    import os

    import platformdirs

    env = os.environ.get("AVATARCAM_DATA_DIR")
    return Path(env) if env else Path(platformdirs.user_data_dir("avatarcam"))
