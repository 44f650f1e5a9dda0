"""``analyze``: the emotion_update stream of a clip, one message per image of a folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import jsonschema
import pytest
from conftest import shared_file

from engine.commands.analyze import analyze_images, analyze_video
from engine.errors import SourceError
from engine.outputs.messages import load_schema
from engine.paths import SHARED_DIR


def test_video_stream_follows_the_clip(face_model):
    validator = jsonschema.Draft202012Validator(load_schema("emotion_update"))
    messages = list(analyze_video(shared_file("media/expressions_d10.mp4"), face_model))
    for message in messages:
        validator.validate(message)
    by_frame = {int(m["payload"]["source"].split("#")[1]): m["payload"]["emotion"] for m in messages}
    assert by_frame[0] == "neutral"
    assert by_frame[100] == "surprised"  # a few frames after the wide-open surprise peaks (96)
    assert by_frame[220] == "happy"
    assert len({m["payload"]["emotion"] for m in messages}) >= 3


def test_a_folder_of_images_gives_one_message_per_image_naming_it(face_model, tmp_path):
    portrait = shared_file("media/portrait_s0.jpg")
    for name in ("a.jpg", "b.jpg"):
        shutil.copy(portrait, tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    messages = list(analyze_images([tmp_path], face_model))
    assert [m["payload"]["source"] for m in messages] == [str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")]
    assert all(m["payload"]["emotion"] == "neutral" for m in messages), "a calm portrait, not a smile"


def test_an_empty_folder_is_a_clear_error(face_model, tmp_path):
    with pytest.raises(SourceError, match="No images"):
        list(analyze_images([tmp_path], face_model))


def _voice_wav(path, f0: float, amplitude: float, syllables_hz: float, intonation: float, seconds: float = 3.0):
    """A voice-like harmonic tone with syllable-rate loudness and an intonation swing, as a WAV."""
    import wave

    import numpy as np

    t = np.arange(int(seconds * 16000)) / 16000
    phase = 2 * np.pi * np.cumsum(f0 * (1 + intonation * np.sin(2 * np.pi * 0.7 * t))) / 16000
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * syllables_hz * t)
    # Voiced speech carries energy well above 1 kHz: twenty harmonics rolling off at 1/k.
    samples = amplitude * envelope * sum(np.sin(k * phase) / k for k in range(1, 21))
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def test_audio_files_in_nested_folders_get_one_independent_message_each(tmp_path):
    from engine.commands.analyze import analyze_audio
    from engine.perception.voice.vad import EnergyVad

    _voice_wav(tmp_path / "calm" / "a.wav", 110, 0.03, 3.0, 0.03)
    _voice_wav(tmp_path / "excited" / "deeper" / "b.wav", 200, 0.3, 6.5, 0.15)
    (tmp_path / "notes.txt").write_text("not audio")
    validator = jsonschema.Draft202012Validator(load_schema("emotion_update"))
    messages = list(analyze_audio([tmp_path], vad=EnergyVad()))  # tones are not speech to Silero
    for message in messages:
        validator.validate(message)
    payloads = {m["payload"]["source"]: m["payload"] for m in messages}
    assert set(payloads) == {str(tmp_path / "calm" / "a.wav"), str(tmp_path / "excited" / "deeper" / "b.wav")}
    calm, excited = payloads[str(tmp_path / "calm" / "a.wav")], payloads[str(tmp_path / "excited" / "deeper" / "b.wav")]
    assert excited["arousal"] > calm["arousal"] + 0.3, "loud, high, fast, lively speech is the aroused one"
    assert calm["mode"] == "audio_only" and "voice" in calm["estimates"]
    again = list(analyze_audio([tmp_path / "calm" / "a.wav"], vad=EnergyVad()))[0]["payload"]
    assert again["arousal"] == calm["arousal"], "a file's reading does not depend on what was analysed before it"


def test_a_folder_without_audio_is_a_clear_error(tmp_path):
    from engine.commands.analyze import analyze_audio

    with pytest.raises(SourceError, match="No audio files"):
        list(analyze_audio([tmp_path]))


def test_48x48_face_crops_in_class_folders_are_read_one_by_one(face_model, tmp_path):
    """FER-style crops (48x48 grey) in class sub-folders: folders are searched recursively, every
    image gets its own message naming it, and a face's reading does not depend on the one before."""
    fer = SHARED_DIR / "datasets" / "fer2013" / "train"
    if not fer.is_dir():
        pytest.skip(f"shared training faces not found: {fer} (tests read ../shared beside the checkout)")
    for label in ("happy", "surprise"):
        (tmp_path / label).mkdir()
        for source in sorted((fer / label).glob("*.jpg"))[:6]:
            shutil.copy(source, tmp_path / label / source.name)
    validator = jsonschema.Draft202012Validator(load_schema("emotion_update"))
    messages = list(analyze_images([tmp_path], face_model))
    assert len(messages) == 12
    for message in messages:
        validator.validate(message)
        assert set(message["payload"]["estimates"]) >= {"face_classifier"}
    by_file = {m["payload"]["source"]: m["payload"] for m in messages}
    right = sum(p["emotion"] == ("happy" if "/happy/" in f else "surprised") for f, p in by_file.items())
    assert right >= 8, f"{right}/12 read as their folder says"  # chance is 1/7
    last = sorted(by_file)[-1]
    alone = list(analyze_images([Path(last)], face_model))[0]["payload"]
    assert alone["scores"] == by_file[last]["scores"], "no state carried over from the previous images"
