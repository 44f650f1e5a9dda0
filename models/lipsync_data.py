"""Data for the learned lip-sync (numpy only): clips, speakers, 100 Hz targets, and the project's metrics.

Shared by ``train_lipsync.py`` and ``eval_lipsync.py``. The metrics repeat the definitions of
``tests/test_lipsync.py`` (issue 4) so the numbers compare with docs/VOICE.md.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.paths import SHARED_DIR
from engine.perception.voice.features import HOP, RATE, WINDOW, hop_times
from engine.perception.voice.lipsync import MOUTH_CONTROLS

DATASET = SHARED_DIR / "datasets" / "talking"
CACHE = Path("/tmp/lipsync_targets")
CONTROLS = MOUTH_CONTROLS  # the avatar's lip-sync controls, jawOpen first
REST_PERCENTILE, HIGH_PERCENTILE = 5.0, 95.0
MIN_RANGE = 0.05  # a control that hardly moves for a speaker is not blown up into noise
# Held-out speakers, never trained on: 55 s, eight people from four sources (none is GRID s1).
HELD_OUT = ("vox_D", "vox_E", "vox_J", "retalk_1", "edtalk_B", "GRID s2", "GRID unknown lbax4n", "GRID unknown sbia1a")
LAGS_S = np.arange(-40, 41, 10) / 1000.0
SILENCE_BELOW_PEAK_DB, SILENCE_MIN_S, SILENCE_TRIM_S = 30.0, 0.15, 0.08


def speaker_key(file: str, speaker_id: str) -> str:
    """One key per person: notes in brackets dropped, known duplicates merged, each unnamed GRID face its own."""
    if speaker_id.startswith("GRID speaker unknown"):
        return f"GRID unknown {Path(file).stem}"
    if speaker_id.startswith("AOC"):
        return "retalk_3"  # the same person as video_retalking_examples/face_3 (SOURCES.tsv)
    return re.sub(r"\s*\(.*\)|\?", "", speaker_id).strip()


def cache_name(video: Path) -> str:
    """A flat, unique cache file name for a clip: its parent folder and stem."""
    return f"{video.parent.name}__{video.stem}.npz"


@dataclass
class Clip:
    name: str
    speaker: str
    audio: np.ndarray  # 16 kHz mono float32
    frame_t: np.ndarray  # video frame times on the audio timeline (s)
    fps: float
    raw: np.ndarray  # frames x CONTROLS, MediaPipe scale, NaN without a face
    hop_raw: np.ndarray  # hops x CONTROLS at the hop centres, NaN where no face/outside the video

    @property
    def seconds(self) -> float:
        return len(self.audio) / RATE


def load_clip(path: Path, speaker: str = "") -> Clip:
    data = np.load(path)
    names = list(data["names"])
    raw = data["blendshapes"][:, [names.index(c) for c in CONTROLS]].astype(np.float64)
    audio = data["audio"].astype(np.float32)
    n_hops = (len(audio) - WINDOW) // HOP + 1
    return Clip(path.stem, speaker, audio, data["frame_t"], float(data["fps"]), raw,
                to_hops(data["frame_t"], raw, n_hops))


def to_hops(frame_t: np.ndarray, raw: np.ndarray, n_hops: int) -> np.ndarray:
    """Frame values linearly interpolated at the 100 Hz hop centres; NaN outside the frames or next to a lost face."""
    t = hop_times(n_hops)
    out = np.full((n_hops, raw.shape[1]), np.nan)
    ok = ~np.isnan(raw[:, 0])
    if ok.sum() < 2:
        return out
    for c in range(raw.shape[1]):
        out[:, c] = np.interp(t, frame_t[ok], raw[ok, c])
    # A hop whose nearest frame had no face, or beyond the video, is unknown, not interpolated.
    nearest = np.clip(np.searchsorted(frame_t, t), 0, len(frame_t) - 1)
    out[~ok[nearest] | (t < frame_t[0]) | (t > frame_t[-1])] = np.nan
    return out


def load_dataset(cache: Path = CACHE) -> list[Clip]:
    """Every training clip listed in SOURCES.tsv that has a cache file."""
    clips = []
    with open(DATASET / "SOURCES.tsv", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            path = cache / cache_name(Path(row["file"]))
            if path.exists():
                clips.append(load_clip(path, speaker_key(row["file"], row["speaker_id"])))
    return clips


def speaker_stats(clips: list[Clip]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per speaker and control: (rest level, motion range) = (p5, max(p95 - p5, MIN_RANGE))."""
    stats = {}
    for speaker in sorted({c.speaker for c in clips}):
        values = np.concatenate([c.hop_raw for c in clips if c.speaker == speaker])
        values = values[~np.isnan(values[:, 0])]
        rest = np.percentile(values, REST_PERCENTILE, axis=0)
        stats[speaker] = (rest, np.maximum(np.percentile(values, HIGH_PERCENTILE, axis=0) - rest, MIN_RANGE))
    return stats


# --- the project's metrics (tests/test_lipsync.py) -------------------------------------------------

def rms_envelope(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(times of window centres, RMS per 25 ms window every 10 ms): the plain loudness envelope."""
    n = (len(samples) - WINDOW) // HOP + 1
    idx = np.arange(WINDOW)[None, :] + HOP * np.arange(n)[:, None]
    return hop_times(n), np.sqrt(np.mean(samples[idx] ** 2, axis=1))


def best_lag_r(pred_t: np.ndarray, pred: np.ndarray, target: np.ndarray, frame_t: np.ndarray) -> tuple[float, float]:
    """Pearson r of ``pred`` (interpolated at the frames' times + lag) vs ``target``, best over lags
    within +-40 ms; (r, lag_s). Frames without a face (NaN) are left out."""
    ok = ~np.isnan(target)
    results = [(float(np.corrcoef(np.interp(frame_t + lag, pred_t, pred)[ok], target[ok])[0, 1]), float(lag))
               for lag in LAGS_S]
    return max(results)


def silence_mask(envelope: np.ndarray, hop_s: float = HOP / RATE) -> np.ndarray:
    """True on hops inside a pause: the 50 ms mean envelope is 30 dB under the clip's 99th percentile
    for >= 150 ms, trimmed by 80 ms at both ends (the mouth may still be closing / already opening)."""
    width = max(1, round(0.05 / hop_s))
    smooth = np.convolve(envelope, np.ones(width) / width, "same")
    quiet = 20 * np.log10(smooth + 1e-9) < 20 * np.log10(np.percentile(smooth, 99)) - SILENCE_BELOW_PEAK_DB
    mask = np.zeros_like(quiet)
    trim, min_len = round(SILENCE_TRIM_S / hop_s), round(SILENCE_MIN_S / hop_s)
    start = None
    for i, q in enumerate(np.append(quiet, False)):
        if q and start is None:
            start = i
        elif not q and start is not None:
            if i - start >= min_len:
                mask[start + trim:i - trim] = True
            start = None
    return mask
