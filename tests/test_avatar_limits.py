"""The avatar loader under limits, case by case: each hostile file is refused with one line (the
fuzz test covers the same ground at random)."""

from __future__ import annotations

import math
import os
import threading

import pytest
from gltf_builders import build_test_avatar
from test_avatar_fuzz import pack_glb, png_header_only, split_glb

from engine.avatar import load_avatar
from engine.errors import AvatarLoadError


@pytest.fixture
def base(tmp_path):
    folder = tmp_path / "avatar"
    folder.mkdir()
    document, blob = split_glb(build_test_avatar(folder / "base.glb", with_texture=True).read_bytes())
    (tmp_path / "private.png").write_bytes(png_header_only(4, 4))
    return folder, document, blob


def write(folder, document, blob, name="case.glb"):
    path = folder / name
    path.write_bytes(pack_glb(document, blob))
    return path


def with_texture_uri(document, uri):
    document["images"] = [{"uri": uri}]
    return document


def refused(path, *needles: str) -> str:
    with pytest.raises(AvatarLoadError) as info:
        load_avatar(path)
    message = str(info.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    return message


@pytest.mark.parametrize("uri", ["/dev/zero", "../private.png", "%2e%2e/private.png", "sub/../../private.png",
                                 "file:///etc/passwd", "C:\\Windows\\win.ini"])
def test_texture_uris_outside_the_folder_are_refused(base, uri):
    folder, document, blob = base
    refused(write(folder, with_texture_uri(document, uri), blob), "outside the avatar's folder")


def test_an_absolute_path_to_a_real_photo_is_refused(base, tmp_path):
    folder, document, blob = base
    refused(write(folder, with_texture_uri(document, str(tmp_path / "private.png")), blob), "outside")


def test_a_symlink_leading_out_of_the_folder_is_refused(base, tmp_path):
    folder, document, blob = base
    (folder / "link.png").symlink_to(tmp_path / "private.png")
    refused(write(folder, with_texture_uri(document, "link.png"), blob), "leads outside")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs")
def test_a_fifo_named_as_a_texture_does_not_hang(base):
    folder, document, blob = base
    os.mkfifo(folder / "fifo.png")
    path = write(folder, with_texture_uri(document, "fifo.png"), blob)
    outcome: list = []
    worker = threading.Thread(target=lambda: outcome.append(pytest.raises(AvatarLoadError, load_avatar, path)),
                              daemon=True)
    worker.start()
    worker.join(10.0)
    assert not worker.is_alive(), "loading hung on the FIFO"
    assert "not a regular file" in str(outcome[0].value)


def test_a_png_claiming_16000x16000_is_refused_before_decoding(base):
    folder, document, blob = base
    (folder / "huge.png").write_bytes(png_header_only(16000, 16000))
    refused(write(folder, with_texture_uri(document, "huge.png"), blob), "16000x16000")


def test_meshes_reusing_accessors_thousands_of_times_are_counted_each_time(base):
    folder, document, blob = base
    mesh = document["meshes"][0]
    mesh["primitives"] = mesh["primitives"] * 4000
    refused(write(folder, document, blob), "at most")


def test_deep_or_looping_node_trees_are_refused(base):
    folder, document, blob = base
    nodes = document["nodes"]
    loop = [dict(n) for n in nodes] + [{"children": [0]}]
    loop[0] = {**loop[0], "children": [*loop[0].get("children", []), len(loop) - 1]}
    refused(write(folder, {**document, "nodes": loop}, blob))
    start = len(nodes)
    chain = nodes + [{"children": [start + i + 1]} for i in range(999)] + [{}]
    refused(write(folder, {**document, "nodes": chain}, blob), "deeper than")


@pytest.mark.parametrize("field, value, needle", [
    ("rotation", [math.inf, 0, 0, 1], "rotation must be 4 finite numbers"),
    ("rotation", [0, 0, 1], "rotation must be 4 numbers"),
    ("scale", [math.inf, 1, 1], "scale must be 3 finite numbers"),
    ("translation", [0.0] * 7, "translation must be 3 numbers"),
    ("matrix", [math.nan] + [0.0] * 15, "matrix must be 16 finite numbers"),
    ("rotation", [0, 0, 0, 0], "degenerate transform"),
])
def test_node_transforms_must_be_finite_and_well_shaped(base, field, value, needle):
    folder, document, blob = base
    document["nodes"][0][field] = value
    refused(write(folder, document, blob), needle)


def test_a_huge_accessor_count_is_refused_before_allocating(base):
    folder, document, blob = base
    accessor = document["accessors"][0]
    accessor.pop("bufferView", None)
    accessor["count"] = 10**9
    refused(write(folder, document, blob), "declares")
