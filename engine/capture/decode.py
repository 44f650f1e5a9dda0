"""Decoding audio files and the audio tracks of video files with PyAV (FFmpeg).

WAV, MP3, FLAC, OGG, M4A and the audio stream of MP4/MKV/MOV files all decode the same way. Every
failure is a ``SourceError`` with a message a user can act on.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from engine.capture.resample import RATE, to_mono_16k
from engine.errors import SourceError


def audio_error(path: Path, what: str, exc: BaseException | None = None) -> SourceError:
    reason = f" ({exc})" if exc else ""
    return SourceError(f"Cannot read audio from '{path}': {what}{reason}.",
                       hint="Use a WAV, MP3 or FLAC file, or a video with an audio track.")


def open_audio(path: str | Path) -> tuple[av.container.InputContainer, av.audio.stream.AudioStream]:
    """Open ``path`` and return its container and first audio stream. Raises ``SourceError``."""
    path = Path(path)
    if not path.is_file():
        raise audio_error(path, "it is a folder" if path.is_dir() else "no such file")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise audio_error(path, "not an audio or video file, or it is damaged", exc) from exc
    if not container.streams.audio:
        container.close()
        raise audio_error(path, "the file has no audio track")
    stream = container.streams.audio[0]
    if not stream.rate or not stream.channels:
        container.close()
        raise audio_error(path, "the audio track has no sample rate or channels")
    return container, stream


def iter_blocks(container, stream) -> Iterator[tuple[np.ndarray, int, float | None]]:
    """(frames x channels float32 block, sample rate, media time of its first sample or None)."""
    for frame in container.decode(stream):
        data = frame.to_ndarray()
        if frame.format.is_planar:
            data = data.T  # channels x frames -> frames x channels
        else:
            data = data.reshape(-1, len(frame.layout.channels))
        if data.dtype.kind in "iu":
            info = np.iinfo(data.dtype)
            data = data.astype(np.float32) / float(max(-info.min, info.max + 1))
        yield data.astype(np.float32, copy=False), frame.sample_rate, frame.time


def read_audio(path: str | Path, max_seconds: float | None = None) -> np.ndarray:
    """The whole audio track of ``path`` as 16 kHz mono float32 (from the track's start)."""
    path = Path(path)
    container, stream = open_audio(path)
    blocks: list[np.ndarray] = []
    rate = stream.rate
    total = 0
    try:
        for block, rate, _ in iter_blocks(container, stream):
            blocks.append(block)
            total += len(block)
            if max_seconds is not None and total >= max_seconds * rate:
                break
    except av.FFmpegError as exc:
        raise audio_error(path, "decoding failed", exc) from exc
    finally:
        container.close()
    if not blocks:
        raise audio_error(path, "no audio could be decoded")
    return to_mono_16k(np.concatenate(blocks), rate)


__all__ = ["RATE", "audio_error", "iter_blocks", "open_audio", "read_audio"]
