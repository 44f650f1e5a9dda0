"""``avatarcam avatar from-photo``: the generated avatar with the colours, hair length and face
proportions of the face in a photo, and nothing of the photo kept."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pygltflib as gl
from conftest import shared_file
from test_cli import assert_one_clear_line, run_cli

from engine.avatar import load_avatar
from engine.avatar.look_reader import look_of
from engine.avatar.looks import avatar_from_photo, identity_weights
from engine.paths import DEFAULT_AVATAR
from engine.vocabulary.looks import HairStyle, IdentityMorph

# Regions of portrait_s0.jpg picked by eye (x0, x1, y0, y1): her hair above the parting, both cheeks.
HAIR_BOX = (300, 340, 30, 50)
CHEEK_BOXES = ((293, 307, 130, 143), (340, 352, 130, 143))
NEAR = 20.0  # Euclidean distance in 0..255 sRGB


def _median(image: np.ndarray, *boxes) -> np.ndarray:
    return np.median(np.concatenate([image[y0:y1, x0:x1].reshape(-1, 3) for x0, x1, y0, y1 in boxes]), axis=0)


def test_avatar_from_photo_has_the_photos_skin_and_hair(capsys, tmp_path, face_model):
    photo = shared_file("media/portrait_s0.jpg")
    out = tmp_path / "me.glb"
    code, _, err = run_cli(capsys, "avatar", "from-photo", str(photo), "--out", str(out))
    assert code == 0, err
    image = cv2.imread(str(photo))[:, :, ::-1].astype(np.float64)
    skin, hair = _median(image, *CHEEK_BOXES), _median(image, HAIR_BOX)
    made = {k: np.array(v) * 255 for k, v in look_of(out).items()}
    default = {k: np.array(v) * 255 for k, v in look_of(DEFAULT_AVATAR).items()}
    assert np.linalg.norm(made["Skin"] - skin) < NEAR, (made["Skin"], skin)
    assert np.linalg.norm(made["Hair"] - hair) < NEAR, (made["Hair"], hair)
    # ...and nearer than the default look was (the test fails on an unchanged avatar).
    assert np.linalg.norm(default["Skin"] - skin) > np.linalg.norm(made["Skin"] - skin)
    assert np.linalg.norm(default["Hair"] - hair) > NEAR
    assert made["Iris"].max() < 120, "her eyes are dark"
    avatar = load_avatar(out)  # the written file is a loadable avatar, with the default's controls
    assert set(load_avatar(DEFAULT_AVATAR).morph_target_names) == set(avatar.morph_target_names)
    assert "portrait" not in out.read_bytes().decode("latin-1"), "nothing of the photo is kept but the look"


def test_from_photo_without_a_face_is_one_clear_line(capsys, tmp_path, face_model):
    wall = tmp_path / "wall.png"
    cv2.imwrite(str(wall), np.full((240, 320, 3), 180, np.uint8))
    code, _, err = run_cli(capsys, "avatar", "from-photo", str(wall), "--out", str(tmp_path / "me.glb"))
    assert_one_clear_line(code, err, "no face", "wall.png")
    code, _, err = run_cli(capsys, "avatar", "from-photo", str(tmp_path / "missing.jpg"), "--out", str(tmp_path / "me.glb"))
    assert_one_clear_line(code, err, "missing.jpg")
    code, _, err = run_cli(capsys, "avatar", "from-photo", str(wall), "--out", str(tmp_path / "me.png"))
    assert_one_clear_line(code, err, ".glb")


def _stretched(tmp_path: Path, sx: float) -> Path:
    image = cv2.imread(str(shared_file("media/portrait_s0.jpg")))
    out = tmp_path / f"stretched-{sx}.png"
    cv2.imwrite(str(out), cv2.resize(image, (round(image.shape[1] * sx), image.shape[0]), interpolation=cv2.INTER_CUBIC))
    return out


def _skin_width(glb: Path) -> float:
    """Width of the avatar's face skin at the cheeks (y 1.56-1.59, in front of the ears)."""
    g = gl.GLTF2.load(str(glb))
    blob = g.binary_blob()
    face = next(m for m in g.meshes if m.name == "Face")
    prim = next(p for p in face.primitives if (p.extras or {}).get("part") == "skin"
                and g.materials[p.material].name == "Skin")
    acc = g.accessors[prim.attributes.POSITION]
    view = g.bufferViews[acc.bufferView]
    pos = np.frombuffer(blob, np.float32, acc.count * 3, (view.byteOffset or 0) + (acc.byteOffset or 0)).reshape(-1, 3)
    band = pos[(pos[:, 1] > 1.56) & (pos[:, 1] < 1.59) & (pos[:, 2] > -0.02)]
    return float(np.ptp(band[:, 0]))


def test_a_wider_face_gives_a_wider_avatar(tmp_path, face_model):
    """Identity morphs follow the photo: the same face stretched sideways reads wider than the photo
    (its weight rises by about the stretch over the morph's gain) and the baked avatar is wider."""
    photo = avatar_from_photo(shared_file("media/portrait_s0.jpg"), tmp_path / "photo.glb", face_model)
    wide = avatar_from_photo(_stretched(tmp_path, 1.15), tmp_path / "wide.glb", face_model)
    narrow = avatar_from_photo(_stretched(tmp_path, 0.87), tmp_path / "narrow.glb", face_model)
    width = IdentityMorph.FACE_WIDTH
    assert narrow.proportions[width] < photo.proportions[width] - 0.04 < wide.proportions[width] - 0.08
    assert identity_weights(wide.proportions)[width] > identity_weights(photo.proportions)[width]
    assert (identity_weights(wide.proportions)[IdentityMorph.NOSE_LENGTH]
            < identity_weights(narrow.proportions)[IdentityMorph.NOSE_LENGTH]), "stretched sideways: relatively shorter"
    widths = {name: _skin_width(tmp_path / f"{name}.glb") for name in ("narrow", "photo", "wide")}
    assert widths["narrow"] < widths["photo"] < widths["wide"], widths
    assert abs(_skin_width(tmp_path / "photo.glb") - _skin_width(DEFAULT_AVATAR)) > 1e-4, "the photo's face is not the default"


def test_hair_length_comes_from_the_hair_in_the_photo(tmp_path, face_model):
    """Her hair is pinned up (short); the same photo with hair painted down past her shoulders in
    her hair's colour reads long, and the avatar gets hanging hair."""
    photo = shared_file("media/portrait_s0.jpg")
    found = avatar_from_photo(photo, tmp_path / "short.glb", face_model)
    assert found.hair_length is HairStyle.SHORT
    image = cv2.imread(str(photo))
    colour = tuple(int(round(v * 255)) for v in found.hair[::-1])  # BGR
    for x0, x1 in ((262, 290), (356, 384)):  # beside her face, from the hair down over the shoulders
        cv2.rectangle(image, (x0, 40), (x1, 330), colour, thickness=-1)
    long_hair = tmp_path / "long.png"
    cv2.imwrite(str(long_hair), image)
    found = avatar_from_photo(long_hair, tmp_path / "long.glb", face_model)
    assert found.hair_length is HairStyle.LONG
    parts = {(p.extras or {}).get("part") for m in gl.GLTF2.load(str(tmp_path / "long.glb")).meshes for p in m.primitives}
    assert "hair_hanging" in parts and "ponytail" not in parts


def _files(*folders: Path) -> set[Path]:
    return {p for folder in folders if folder.exists() for p in folder.rglob("*") if p.is_file()}


def test_nothing_of_the_photo_is_kept_but_the_avatar(capsys, tmp_path, face_model, monkeypatch):
    """No copy of the photo, no landmarks, no cache: the one new file is the avatar, and it holds no
    image, no landmarks and not the photo's name."""
    home, data, temp, work = (tmp_path / n for n in ("home", "data", "temp", "work"))
    for folder in (home, data, temp, work):
        folder.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("AVATARCAM_DATA_DIR", str(data))
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.chdir(work)
    photo = work / "portrait-of-me.jpg"
    photo.write_bytes(shared_file("media/portrait_s0.jpg").read_bytes())
    before = _files(home, data, temp, work)
    code, _, err = run_cli(capsys, "avatar", "from-photo", str(photo), "--out", "me.glb")
    assert code == 0, err
    assert _files(home, data, temp, work) - before == {work / "me.glb"}
    g = gl.GLTF2.load(str(work / "me.glb"))
    assert not g.images and not g.textures, "no picture of the photo in the avatar"
    text = (work / "me.glb").read_bytes()[:20_000].decode("latin-1")
    assert "portrait-of-me" not in text and "landmark" not in text.lower()
    assert os.listdir(temp) == []
