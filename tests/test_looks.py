"""The gallery of generated looks: at least six distinct avatars, built once into the user data
folder, each loading and rendering with the default avatar's controls."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pygltflib as gl
from conftest import needs_gl

from engine.avatar import load_avatar
from engine.avatar.look_reader import look_of
from engine.avatar.looks import GALLERY, ensure_gallery, gallery_path, resolve
from engine.commands.snapshot import SnapshotSpec, snapshot_image
from engine.paths import DEFAULT_AVATAR
from engine.vocabulary.looks import HairStyle


def _parts(path) -> set[str]:
    return {(p.extras or {}).get("part") for m in gl.GLTF2.load(str(path)).meshes for p in m.primitives}


@needs_gl
def test_gallery_has_six_distinct_looks_that_load_and_render(tmp_path, monkeypatch):
    monkeypatch.setenv("AVATARCAM_DATA_DIR", str(tmp_path))
    progress: list[tuple[int, int]] = []
    paths = ensure_gallery(lambda done, total: progress.append((done, total)))
    assert len(paths) >= 6 and progress[-1] == (len(GALLERY), len(GALLERY))
    assert all(path.is_relative_to(tmp_path) and path.is_file() for path in paths), "built into the user data folder"
    assert len({look.key for look in GALLERY}) == len(GALLERY)
    styles = {look.style.hair_style for look in GALLERY}
    assert {HairStyle.SHORT, HairStyle.LONG} <= styles and len(styles) >= 3
    assert {look.style.glasses for look in GALLERY} == {True, False}
    default_names = set(load_avatar(DEFAULT_AVATAR).morph_target_names)
    images, colours = [], []
    for look, path in zip(GALLERY, paths):
        assert set(load_avatar(path).morph_target_names) == default_names, look.key
        assert ("glasses" in _parts(path)) is look.style.glasses, look.key
        assert ("hair_hanging" in _parts(path)) is (look.style.hair_style in (HairStyle.SHOULDER, HairStyle.LONG))
        made = look_of(path)
        assert np.allclose(made["Hair"], look.style.hair, atol=0.01) and np.allclose(made["Skin"], look.style.skin, atol=0.01)
        colours.append(np.concatenate([made["Skin"], made["Hair"]]))
        images.append(snapshot_image(SnapshotSpec(avatar=path, size=(160, 120))).astype(np.float64))
    for (a, b), (ia, ib) in zip(itertools.combinations(colours, 2), itertools.combinations(images, 2)):
        assert np.abs(a - b).max() > 0.1, "two looks with the same skin and hair"
        assert np.abs(ia - ib).mean() > 2.0, "two looks render alike"
    # a second call finds them built; a look named like the app's setting resolves to its file
    stamps = [p.stat().st_mtime_ns for p in paths]
    assert ensure_gallery() == paths and [p.stat().st_mtime_ns for p in paths] == stamps
    assert resolve(f"look:{GALLERY[0].key}") == gallery_path(GALLERY[0]) and resolve("default") is None


def test_gallery_command_builds_the_looks_and_lists_them(capsys, tmp_path, monkeypatch):
    from test_cli import run_cli

    import engine.avatar.looks as looks

    monkeypatch.setenv("AVATARCAM_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(looks, "GALLERY", GALLERY[:2])  # two looks are enough to check the command
    code, out, err = run_cli(capsys, "avatar", "gallery")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert [line.split("  ", 1)[1] for line in lines] == [look.title for look in GALLERY[:2]]
    assert all(tmp_path in Path(line.split("  ", 1)[0]).parents for line in lines)
    assert "looks ready: 2/2" in err
