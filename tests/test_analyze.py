"""``analyze``: the emotion_update stream of a clip, one message per image of a folder."""

from __future__ import annotations

import shutil

import jsonschema
import pytest
from conftest import shared_file

from engine.commands.analyze import analyze_images, analyze_video
from engine.errors import SourceError
from engine.outputs.messages import load_schema


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
