"""``avatarcam avatar from-photo``: the default avatar with the colours of the face in a photo."""

from __future__ import annotations

import cv2
import numpy as np
from conftest import shared_file
from test_cli import assert_one_clear_line, run_cli

from engine.avatar import load_avatar
from engine.avatar.personalise import look_of
from engine.paths import DEFAULT_AVATAR

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
