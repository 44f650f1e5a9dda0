"""``avatarcam analyze``: the ``emotion_update`` stream of a video, one message per image, or one
message per audio file.

A video is analysed as live would see it, only faster: frames are read as fast as they decode, the
clock is the media time, so the fusion's smoothing and hysteresis behave as they would live. Images
and audio files are independent: each is judged on its own, with fresh state and no smoothing from
one file to the next. Prints one JSON message per line; each names its file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TextIO

import cv2
import numpy as np

from engine.capture.decode import read_audio
from engine.capture.resample import RATE
from engine.capture.video import ImageSource, VideoFileSource
from engine.errors import AvatarcamError, SourceError
from engine.fusion.fuser import EmotionFuser, fuse_once
from engine.outputs.messages import MessageFactory
from engine.packets import AvatarFrame, VideoFrame
from engine.perception.face_emotion.alignment import whole_image_crop
from engine.perception.face_emotion.estimator import FacialEmotion
from engine.perception.face_tracker import FaceTracker, FaceTrackerOptions
from engine.perception.voice.prosody import HOP, YIN_WINDOW
from engine.perception.voice.vad import WINDOW as VAD_WINDOW
from engine.perception.voice.vad import EnergyVad, SileroVad
from engine.vocabulary.emotions import EMOTIONS, EmotionEstimate

DETECTION_MIN_SIDE = 192  # px: below this a face is upscaled before detection (FER crops are 48)
FACE_CROP_MAX_SIDE = 64  # px: an image this small is taken to be a face crop already
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
AUDIO_SUFFIXES = frozenset({".wav", ".mp3", ".flac", ".ogg", ".m4a", ".aac", ".opus", ".mp4", ".mkv", ".mov", ".webm"})


def media_paths(paths: list[Path], suffixes: frozenset[str], what: str) -> list[Path]:
    """The files named, with folders searched recursively for files with ``suffixes`` (sorted)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in suffixes and p.is_file())
        else:
            found.append(path)
    if not found:
        raise SourceError(f"No {what} to analyse.",
                          f"Name {what}, or a folder (searched with its sub-folders) that holds {', '.join(sorted(suffixes))} files.")
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


def detection_ready(image: np.ndarray) -> np.ndarray:
    """``image`` as the face detector needs it. A small image (a 48x48 face crop, a thumbnail) is
    upscaled so its face is not too small to detect, with a border of repeated edge pixels so a
    face filling the picture still has the margin the detector expects."""
    h, w = image.shape[:2]
    if min(h, w) >= DETECTION_MIN_SIDE:
        return image
    scale = DETECTION_MIN_SIDE / min(h, w)
    big = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_CUBIC)
    pad = DETECTION_MIN_SIDE // 4
    return np.ascontiguousarray(cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE))


def analyze_images(paths: list[Path], model: Path) -> Iterator[dict]:
    """One ``emotion_update`` per image, each judged alone: its face found (upscaled when small),
    cropped the way the classifier was trained, read by the classifier and the FACS estimator and
    combined by their reliability; with no face found, the whole image is classified as a face crop
    with reduced confidence (never dropped)."""
    emotion, factory = FacialEmotion(), MessageFactory()
    with FaceTracker(FaceTrackerOptions(model_path=model, stills=True)) as tracker:
        for index, path in enumerate(media_paths(paths, IMAGE_SUFFIXES, "images")):
            source = ImageSource(path, paced=False, seconds=None)
            source.open()
            try:
                frame = source.read()
            finally:
                source.close()
            image = detection_ready(frame.image)
            face = tracker.process(VideoFrame(image, float(index), index))
            # An image at the classifier's own scale already is a face crop: it reads best as it is
            # (models/README.md, deployment paths); the landmarks still give FACS its blendshapes.
            as_is = whole_image_crop(frame.image) if max(frame.image.shape[:2]) <= FACE_CROP_MAX_SIDE else None
            reading = emotion.read(image, face, as_is)
            estimates: dict[str, EmotionEstimate] = {}
            if reading is None:
                combined = estimates["face_classifier"] = emotion.classifier.classify_whole(frame.image, float(index))
            else:
                combined = reading.combined
                estimates["face_classifier"] = reading.classifier
                if reading.facs is not None:
                    estimates["facs"] = reading.facs
            message = factory.emotion_update(fuse_once(float(index), face=combined), _face_frame_state(face))
            message["payload"].update(source=str(path), face_found=reading is not None,
                                      estimates={k: e.scores() for k, e in estimates.items()})
            yield message


def write_messages(messages: Iterator[dict], out: TextIO) -> int:
    count = 0
    for message in messages:
        out.write(json.dumps(message, separators=(",", ":")) + "\n")
        count += 1
    return count


def analyze_audio(paths: list[Path], vad: SileroVad | EnergyVad | None = None) -> Iterator[dict]:
    """One ``emotion_update`` per audio file (or video's sound track): the voice's emotion from
    prosody, with its valence and arousal, and the share of the file that is speech. ``vad``: the
    voice activity detector (default: Silero, or the energy detector when its model is missing)."""
    from engine.perception.voice.prosody import arousal_valence, emotion_scores, load_norms, prosody_features

    norms, factory = load_norms(), MessageFactory()
    if vad is None:
        try:
            vad = SileroVad.from_manager()
        except AvatarcamError:
            vad = EnergyVad()  # the model is missing and could not be fetched: a cruder detector
    for path in media_paths(paths, AUDIO_SUFFIXES, "audio files"):
        samples = read_audio(path)
        vad.reset()
        windows = np.array(vad.process(samples) or [0.0])
        # One speaking probability per 10 ms hop, from the VAD's 32 ms windows.
        hops = np.arange(max(1, (len(samples) - YIN_WINDOW) // HOP + 1))
        speaking = windows[np.minimum(hops * HOP // VAD_WINDOW, len(windows) - 1)]
        features = prosody_features(samples, speaking)
        t = len(samples) / RATE
        if features is None:
            voice = EmotionEstimate(t, np.eye(len(EMOTIONS))[0], 0.0, "prosody")
            valence_arousal = (0.0, 0.0)
        else:
            arousal, valence, confidence = arousal_valence(features, norms)
            scores = emotion_scores(valence, arousal, confidence)
            voice = EmotionEstimate(t, np.array([scores[e] for e in EMOTIONS]), confidence, "prosody")
            valence_arousal = (valence, arousal)
        state = fuse_once(t, voice=voice, voice_valence_arousal=valence_arousal,
                          speaking_probability=float(np.mean(speaking > 0.5)))
        message = factory.emotion_update(state)
        message["payload"]["source"] = str(path)
        message["payload"]["estimates"] = {"voice": voice.scores()}
        yield message
