"""models/train_fer.py's data handling: the packed file holds the very faces of the folder, so a
machine training from it gets the same held-out split; the development part never touches it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("torch", reason="models/train_fer.py needs PyTorch (pip install avatarcam[train])")
from models import train_fer


@pytest.fixture
def fer_folder(tmp_path: Path) -> Path:
    """A FER-2013-style Training folder: 30 random grey 48x48 JPEGs per class."""
    rng = np.random.default_rng(3)
    root = tmp_path / "train"
    for folder in train_fer.FOLDERS:
        (root / folder).mkdir(parents=True)
        for i in range(30):
            face = cv2.GaussianBlur(rng.integers(0, 256, (48, 48), dtype=np.uint8), (5, 5), 0)
            cv2.imwrite(str(root / folder / f"Training_{i}.jpg"), face)
    return root


def test_packed_file_gives_the_folders_faces_and_split(fer_folder: Path, tmp_path: Path) -> None:
    packed = tmp_path / "faces.npz.xz"
    train_fer.pack_dataset(fer_folder, packed, cache_dir=tmp_path / "cache")
    from_folder = train_fer.load_dataset(fer_folder, cache_dir=tmp_path / "cache")
    from_file = train_fer.load_dataset(packed)
    assert np.array_equal(from_file[0], from_folder[0]) and np.array_equal(from_file[1], from_folder[1])
    assert from_file[2] == from_folder[2]
    split_folder = train_fer.split_indices(from_folder[1], train_fer.near_duplicate_groups(from_folder[0]))
    split_file = train_fer.split_indices(from_file[1], train_fer.near_duplicate_groups(from_file[0]))
    assert all(np.array_equal(a, b) for a, b in zip(split_folder, split_file))


def test_development_faces_come_from_the_training_side_only(fer_folder: Path, tmp_path: Path) -> None:
    images, labels, _ = train_fer.load_dataset(fer_folder, cache_dir=tmp_path / "cache")
    train, held_out = train_fer.split_indices(labels, train_fer.near_duplicate_groups(images))
    fit, dev = train_fer.development_split(images, labels, train)
    assert len(dev) > 0 and len(held_out) > 0
    assert not set(fit) & set(dev) and set(fit) | set(dev) == set(train)
    assert not (set(fit) | set(dev)) & set(held_out)
