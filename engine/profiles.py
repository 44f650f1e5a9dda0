"""Calibration profiles: several named ``Calibration``s per user, in the platform's config folder.

Each profile is one JSON file of numbers (``<config>/profiles/<name>.json``, never images). The
config folder is ``platformdirs.user_config_dir("avatarcam")``, or ``$AVATARCAM_CONFIG_DIR`` when set
(tests, portable installs). Names are what the user typed; characters a file name cannot hold are
refused with a readable message.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from engine.calibration import Calibration
from engine.errors import AvatarcamError

ENV_CONFIG_DIR = "AVATARCAM_CONFIG_DIR"
_FORBIDDEN = set('/\\:*?"<>|')


def config_dir() -> Path:
    """The folder for settings and profiles (created on first write, not here)."""
    env = os.environ.get(ENV_CONFIG_DIR)
    return Path(env) if env else Path(platformdirs.user_config_dir("avatarcam"))


class ProfileStore:
    """Named calibration profiles in one folder: list, load, save, rename, delete."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else config_dir() / "profiles"

    @staticmethod
    def check_name(name: str) -> str:
        """The name stripped, or ``AvatarcamError`` saying what is wrong with it."""
        name = name.strip()
        if not name or len(name) > 60 or name.startswith(".") or _FORBIDDEN & set(name):
            raise AvatarcamError(f"'{name}' cannot be a profile name.",
                                 "Use 1 to 60 letters, digits, spaces or dashes (no / \\ : * ? \" < > |).")
        return name

    def _path(self, name: str) -> Path:
        return self.folder / f"{self.check_name(name)}.json"

    def names(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted((p.stem for p in self.folder.glob("*.json")), key=str.lower)

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def load(self, name: str) -> Calibration:
        path = self._path(name)
        if not path.is_file():
            raise AvatarcamError(f"There is no profile called '{name}'.", "Pick another or run the calibration.")
        return Calibration.load(path)

    def save(self, name: str, calibration: Calibration) -> None:
        calibration.save(self._path(name))

    def rename(self, old: str, new: str) -> None:
        source, target = self._path(old), self._path(new)
        if source == target:
            return
        if target.exists():
            raise AvatarcamError(f"A profile called '{new}' already exists.", "Choose another name.")
        if not source.is_file():
            raise AvatarcamError(f"There is no profile called '{old}'.")
        source.replace(target)

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)
