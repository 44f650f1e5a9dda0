"""``avatarcam analyze``: the ``emotion_update`` stream of a video, or one message per image.

Batch, not live: frames are read as fast as they decode, and the clock is the media time, so the
fusion's smoothing and hysteresis behave as they would live. Prints one JSON message per line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from engine.capture.video import ImageSource, VideoFileSource
from engine.errors import SourceError
from engine.fusion.fuser import EmotionFuser
from engine.outputs.messages import MessageFactory
from engine.packets import AvatarFrame
from engine.perception.face_emotion.estimator import FacialEmotion
from engine.perception.face_tracker import FaceTracker, FaceTrackerOptions

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def image_paths(paths: list[Path]) -> list[Path]:
    """The images named, with folders expanded to the images inside them (sorted)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            found.append(path)
    if not found:
        raise SourceError("No images to analyse.", "Name image files, or a folder that holds .jpg/.png files.")
    return found


def _face_frame_state(face) -> AvatarFrame:
    """The raw face as an avatar state, so messages carry its blendshapes and head pose."""
    return AvatarFrame(t_capture=face.t_capture, sequence=face.index, controls=face.blendshapes,
                       head=face.head_rotation, eyes=face.gaze, face_present=face.present)


def analyze_video(path: Path, model: Path) -> Iterator[dict]:
    source = VideoFileSource(path, paced=False)
    source.open()
    emotion, fuser, factory = FacialEmotion(), EmotionFuser(), MessageFactory()
    try:
        with FaceTracker(FaceTrackerOptions(model_path=model)) as tracker:
            t0 = None
            for frame in iter(source.read, None):
                t_media = frame.index / source.info.fps
                t0 = frame.t_capture - t_media if t0 is None else t0
                frame = replace(frame, t_capture=t0 + t_media)  # media time on the monotonic scale
                face = tracker.process(frame)
                estimate = emotion.estimate(frame.image, face)
                if estimate is not None:
                    fuser.add_face(estimate, face.landmarks)
                message = factory.emotion_update(fuser.update(frame.t_capture), _face_frame_state(face))
                message["payload"]["source"] = f"{path.name}#{frame.index}"
                yield message
    finally:
        source.close()


def analyze_images(paths: list[Path], model: Path) -> Iterator[dict]:
    emotion, factory = FacialEmotion(), MessageFactory()
    for path in image_paths(paths):
        source = ImageSource(path, paced=False, seconds=None)
        source.open()
        try:
            frame = source.read()
        finally:
            source.close()
        with FaceTracker(FaceTrackerOptions(model_path=model)) as tracker:  # images are unrelated
            face = tracker.process(frame)
        fuser = EmotionFuser()
        estimate = emotion.estimate(frame.image, face)
        if estimate is not None:
            fuser.add_face(estimate, face.landmarks)
        message = factory.emotion_update(fuser.update(frame.t_capture), _face_frame_state(face))
        message["payload"]["source"] = str(path)
        yield message


def write_messages(messages: Iterator[dict], out: TextIO) -> int:
    count = 0
    for message in messages:
        out.write(json.dumps(message, separators=(",", ":")) + "\n")
        count += 1
    return count
