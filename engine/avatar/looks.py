"""Looks of the generated avatar: the gallery the app's picker offers, and an avatar made from a photo.

Both are built by ``engine.avatar.generator`` (the face once per process, ~2-4 s, then ~1 s a look).
The gallery's files are not in git (about 3.4 MB each, and they follow from the generator's code): each is
built on first use into the user data folder, under a folder named for ``GENERATOR_VERSION``, so a
new generator builds fresh looks instead of showing stale ones.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.avatar.generator import IDENTITY_GAIN, Style, build
from engine.errors import AvatarcamError
from engine.paths import user_data_dir
from engine.vocabulary.looks import IDENTITY_MORPHS, HairStyle

if TYPE_CHECKING:  # the photo's measurement (MediaPipe) is imported only when a photo is read
    from engine.perception.appearance import Appearance

GENERATOR_VERSION = 1  # bump when the generator's output changes: the gallery is then rebuilt


def _rgb(hex_colour: str) -> tuple[float, float, float]:
    return tuple(int(hex_colour[i:i + 2], 16) / 255.0 for i in (1, 3, 5))  # type: ignore[return-value]


@dataclass(frozen=True)
class GalleryLook:
    key: str  # the file's name
    title: str  # what the picker shows
    style: Style


GALLERY: tuple[GalleryLook, ...] = (
    GalleryLook("short-black-glasses", "Short black hair, glasses",
                Style(skin=_rgb("#A86B47"), hair=_rgb("#1B1613"), eyes=_rgb("#3B2518"), shirt=_rgb("#3E7D5A"),
                      hair_style=HairStyle.SHORT, glasses=True)),
    GalleryLook("long-blond", "Long blond hair",
                Style(skin=_rgb("#F4D3BE"), hair=_rgb("#C9A264"), eyes=_rgb("#4F7AA6"), shirt=_rgb("#B04A5A"),
                      hair_style=HairStyle.LONG)),
    GalleryLook("shoulder-auburn-glasses", "Auburn hair to the shoulders, glasses",
                Style(skin=_rgb("#E9B892"), hair=_rgb("#7B3520"), eyes=_rgb("#5C7A45"), shirt=_rgb("#2F4E7A"),
                      hair_style=HairStyle.SHOULDER, glasses=True)),
    GalleryLook("short-grey", "Short grey hair",
                Style(skin=_rgb("#D8A07B"), hair=_rgb("#A29F9B"), eyes=_rgb("#5B4630"), shirt=_rgb("#6B5B8E"),
                      hair_style=HairStyle.SHORT)),
    GalleryLook("long-black", "Long black hair",
                Style(skin=_rgb("#6E4431"), hair=_rgb("#141010"), eyes=_rgb("#2B1B12"), shirt=_rgb("#D9A441"),
                      hair_style=HairStyle.LONG)),
    GalleryLook("ponytail-copper-glasses", "Copper ponytail, glasses",
                Style(skin=_rgb("#F1C7A8"), hair=_rgb("#A4502A"), eyes=_rgb("#6A7F8C"), shirt=_rgb("#444444"),
                      hair_style=HairStyle.PONYTAIL, glasses=True)),
)


def gallery_dir() -> Path:
    return user_data_dir() / "gallery" / f"v{GENERATOR_VERSION}"


def gallery_path(look: GalleryLook) -> Path:
    return gallery_dir() / f"{look.key}.glb"


LOOK_PREFIX = "look:"  # how a gallery look is named where a path could be (the app's avatar setting)


def look_by_key(key: str) -> GalleryLook:
    for look in GALLERY:
        if look.key == key:
            return look
    raise AvatarcamError(f"There is no look called '{key}' in the gallery.",
                         f"Choose one of: {', '.join(look.key for look in GALLERY)}.")


def resolve(choice: str) -> Path | None:
    """The file of a gallery look named ``look:<key>`` (built first when missing); None for anything else."""
    if not choice.startswith(LOOK_PREFIX):
        return None
    return ensure_look(look_by_key(choice[len(LOOK_PREFIX):]))


def made_avatar_path() -> Path:
    """Where the app keeps a new avatar made from a photo (the user data folder's ``avatars``)."""
    import time

    return user_data_dir() / "avatars" / time.strftime("photo-%Y%m%d-%H%M%S.glb")


def _write(out: Path, style: Style) -> Path:
    """Build ``style`` into ``out`` through a temporary file beside it, so a half-written file is never read."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}-", suffix=".glb", dir=out.parent)
    os.close(fd)
    try:
        build(Path(tmp), style=style)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def ensure_look(look: GalleryLook) -> Path:
    """The look's file, built first if it is not there yet."""
    path = gallery_path(look)
    return path if path.is_file() else _write(path, look.style)


def ensure_gallery(progress: Callable[[int, int], None] | None = None) -> list[Path]:
    """Every gallery look's file (building the missing ones); ``progress(done, total)`` after each."""
    paths = []
    for done, look in enumerate(GALLERY, 1):
        paths.append(ensure_look(look))
        if progress is not None:
            progress(done, len(GALLERY))
    return paths


def identity_weights(proportions: dict[str, float]) -> dict[str, float]:
    """Identity morph weights for a face's proportions (deviations from the average face): each
    deviation over what the morph changes at weight 1, clamped to [-1, 1] (beyond that the stylised
    face would stop looking like a face)."""
    return {name: round(float(np.clip(proportions.get(name, 0.0) / IDENTITY_GAIN[name], -1.0, 1.0)), 3)
            for name in IDENTITY_MORPHS}


def style_from_appearance(found: Appearance) -> Style:
    """The generated avatar with a photo's colours, hair length and proportions."""
    return Style(skin=found.skin, hair=found.hair, eyes=found.eyes, hair_style=found.hair_length,
                 identity=identity_weights(found.proportions))


def avatar_from_photo(photo: Path, out: Path, face_model: Path) -> Appearance:
    """Measure the face in ``photo`` and write its avatar to ``out`` (.glb). Only the avatar is
    written: the photo and its landmarks stay in memory and are dropped."""
    from engine.perception.appearance import appearance_from_photo

    if out.suffix.lower() != ".glb":
        raise AvatarcamError(f"'{out}' does not end in .glb.", "Name the avatar to write like me.glb.")
    found = appearance_from_photo(photo, face_model)
    _write(out, style_from_appearance(found))
    return found


__all__ = ["GALLERY", "LOOK_PREFIX", "GalleryLook", "avatar_from_photo", "ensure_gallery", "ensure_look",
           "gallery_path", "identity_weights", "look_by_key", "made_avatar_path", "resolve", "style_from_appearance"]
