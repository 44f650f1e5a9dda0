"""Model manager: lookup order, verification and downloads, against a local HTTP server only."""

from __future__ import annotations

import functools
import hashlib
import json
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import platformdirs
import pytest

from engine import models
from engine.errors import ModelError
from engine.models import ENV_MODEL_DIR, ModelManager
from engine.paths import SHARED_DIR

PAYLOAD = bytes(range(256)) * 1200  # 300 KiB: several download chunks


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/www; yields its base URL."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "tiny.bin").write_bytes(PAYLOAD)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No env override, no shared folder, a private hash cache, user data under tmp_path."""
    monkeypatch.delenv(ENV_MODEL_DIR, raising=False)
    monkeypatch.setattr(models, "SHARED_DIR", tmp_path / "shared")
    monkeypatch.setattr(models, "_verified", {})
    monkeypatch.setattr(platformdirs, "user_data_dir", lambda app: str(tmp_path / "userdata" / app))


def write_manifest(tmp_path: Path, url: str, payload: bytes = PAYLOAD, sha256: str | None = None) -> Path:
    manifest = tmp_path / "manifest.json"
    entry = {
        "name": "tiny",
        "kind": "test model",
        "filename": "tiny.bin",
        "url": url,
        "sha256": sha256 or hashlib.sha256(payload).hexdigest(),
        "size": len(payload),
        "licence": "CC0-1.0",
        "description": "a test payload",
    }
    manifest.write_text(json.dumps({"version": 1, "models": [entry]}))
    return manifest


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_project_manifest_lists_the_face_model():
    manager = ModelManager()
    face = manager.info("face_landmarker")
    assert face.filename == "face_landmarker.task" and face.size == 3758596
    assert face.sha256 == "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
    assert face.url.startswith("https://storage.googleapis.com/mediapipe-models/face_landmarker/")
    assert face.licence == "Apache-2.0"


def test_shared_face_model_is_found_and_verified(monkeypatch):
    shared = SHARED_DIR / "models" / "face_landmarker.task"
    if not shared.is_file():
        pytest.skip(f"shared model not found: {shared}")
    monkeypatch.setattr(models, "SHARED_DIR", SHARED_DIR)
    manager = ModelManager()
    assert manager.find("face_landmarker") == shared
    status = next(s for s in manager.status() if s.name == "face_landmarker")  # other models follow it
    assert status.present and status.path == shared and status.licence == "Apache-2.0"


def test_default_data_dir_comes_from_platformdirs(tmp_path):
    manager = ModelManager(write_manifest(tmp_path, "http://unused"))
    assert manager.data_dir == tmp_path / "userdata" / "avatarcam" / "models"


def test_resolution_order_env_then_user_data_then_shared(tmp_path, monkeypatch):
    manager = ModelManager(write_manifest(tmp_path, "http://unused"))
    env_dir, user_dir, shared_dir = tmp_path / "env", manager.data_dir, tmp_path / "shared" / "models"
    for folder in (env_dir, user_dir, shared_dir):
        folder.mkdir(parents=True)
    assert manager.find("tiny") is None

    (shared_dir / "tiny.bin").write_bytes(PAYLOAD)
    assert manager.find("tiny") == shared_dir / "tiny.bin"
    (user_dir / "tiny.bin").write_bytes(PAYLOAD)
    assert manager.find("tiny") == user_dir / "tiny.bin"
    monkeypatch.setenv(ENV_MODEL_DIR, str(env_dir))
    assert manager.find("tiny") == user_dir / "tiny.bin"  # env folder is empty: next in line
    (env_dir / "tiny.bin").write_bytes(PAYLOAD)
    assert manager.find("tiny") == env_dir / "tiny.bin"
    assert manager.search_dirs() == [env_dir, user_dir, shared_dir]


def test_files_of_wrong_size_or_hash_are_passed_over(tmp_path):
    manager = ModelManager(write_manifest(tmp_path, "http://unused"))
    user_dir, shared_dir = manager.data_dir, tmp_path / "shared" / "models"
    user_dir.mkdir(parents=True)
    shared_dir.mkdir(parents=True)
    (user_dir / "tiny.bin").write_bytes(PAYLOAD[:-1])  # wrong size
    assert manager.find("tiny") is None
    (user_dir / "tiny.bin").write_bytes(bytes(len(PAYLOAD)))  # right size, wrong sha256
    (shared_dir / "tiny.bin").write_bytes(PAYLOAD)
    assert manager.find("tiny") == shared_dir / "tiny.bin"
    assert [s.present for s in manager.status()] == [True]


def test_hash_is_computed_once_per_file(tmp_path, monkeypatch):
    manager = ModelManager(write_manifest(tmp_path, "http://unused"))
    manager.data_dir.mkdir(parents=True)
    (manager.data_dir / "tiny.bin").write_bytes(PAYLOAD)
    calls = []
    real = models._sha256
    monkeypatch.setattr(models, "_sha256", lambda path: calls.append(path) or real(path))
    for _ in range(3):
        assert manager.find("tiny") is not None
    assert len(calls) == 1


def test_ensure_downloads_with_progress(tmp_path, server):
    manager = ModelManager(write_manifest(tmp_path, f"{server}/tiny.bin"))
    calls: list[tuple[int, int]] = []
    path = manager.ensure("tiny", progress=lambda done, total: calls.append((done, total)))
    assert path == manager.data_dir / "tiny.bin"
    assert path.read_bytes() == PAYLOAD
    assert not list(manager.data_dir.glob("*.part"))
    assert len(calls) >= 2 and calls[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert manager.find("tiny") == path
    assert manager.ensure("tiny", progress=lambda *a: pytest.fail("downloaded twice")) == path


def test_checksum_mismatch_is_a_model_error_and_leaves_nothing(tmp_path, server):
    manager = ModelManager(write_manifest(tmp_path, f"{server}/tiny.bin", sha256="0" * 64))
    with pytest.raises(ModelError, match="damaged"):
        manager.ensure("tiny")
    assert not manager.data_dir.exists() or not any(manager.data_dir.iterdir())


def test_cancel_stops_the_download_and_cleans_up(tmp_path, server):
    manager = ModelManager(write_manifest(tmp_path, f"{server}/tiny.bin"))
    cancel = threading.Event()
    calls = []

    def progress(done, total):
        calls.append(done)
        cancel.set()  # the user presses Cancel after the first chunk

    with pytest.raises(ModelError, match="cancelled"):
        manager.ensure("tiny", progress=progress, cancel=cancel)
    assert len(calls) == 1 and calls[0] < len(PAYLOAD)
    assert not any(manager.data_dir.iterdir())


@pytest.mark.parametrize("where", ["refused", "not-found"])
def test_offline_is_a_model_error_with_a_hint(tmp_path, server, where):
    url = f"http://127.0.0.1:{closed_port()}/tiny.bin" if where == "refused" else f"{server}/missing.bin"
    manager = ModelManager(write_manifest(tmp_path, url))
    with pytest.raises(ModelError) as caught:
        manager.ensure("tiny")
    error = caught.value
    assert error.message.startswith("Could not download the test model 'tiny.bin' (")
    assert "Connect to the internet and retry" in error.hint
    assert str(manager.data_dir) in error.hint and hashlib.sha256(PAYLOAD).hexdigest() in error.hint
    assert not any(manager.data_dir.iterdir())


def test_unknown_model_and_bad_manifest(tmp_path):
    manager = ModelManager(write_manifest(tmp_path, "http://unused"))
    with pytest.raises(ModelError, match="Known models: tiny"):
        manager.find("nope")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ModelError, match="manifest"):
        ModelManager(broken)
    with pytest.raises(ModelError, match="manifest"):
        ModelManager(tmp_path / "absent.json")
