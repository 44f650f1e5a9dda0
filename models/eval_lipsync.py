"""Measure the learned lip-sync against tracked mouths, loudness and the DSP formula; print tables.

Runs the run-time class (``LearnedLipSync``, gate included) hop by hop, as the live voice stage would,
on the held-out speakers of the training set and on the two shared test clips (never trained or tuned
on). Needs the cache of ``extract_lipsync_targets.py`` for the tracked jawOpen.

    PYTHONPATH=. nice -n 10 python models/eval_lipsync.py
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from engine.perception.voice.features import HOP, RATE
from engine.perception.voice.learned_lipsync import DEFAULT_MODEL, LearnedLipSync
from engine.perception.voice.lipsync import OFFLINE_OPTIONS, LipSyncOptions, analyse_signal
from models.lipsync_data import (
    CACHE,
    HELD_OUT,
    Clip,
    best_lag_r,
    load_clip,
    load_dataset,
    rms_envelope,
    silence_mask,
)

TEST_CLIPS = ("media__talking_d6.npz", "media__talking_hdtf_katiehill.npz")


def run_model(model: LearnedLipSync, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """(pose times, jawOpen, ms per 10 ms call incl. features) with 160-sample blocks."""
    model.reset()
    times, jaw, ms = [], [], []
    for start in range(0, len(audio) - HOP + 1, HOP):
        t = time.perf_counter()
        poses = model.process(audio[start:start + HOP], start / RATE)
        ms.append((time.perf_counter() - t) * 1000.0)
        times += [p.t for p in poses]
        jaw += [p.jaw_open for p in poses]
    return np.array(times), np.array(jaw), ms


def dsp_jaw(audio: np.ndarray, options: LipSyncOptions) -> tuple[np.ndarray, np.ndarray]:
    frames = analyse_signal(audio, options)
    return np.array([f.t for f in frames]), np.array([f.jaw_open for f in frames])


def measure(model: LearnedLipSync, clip: Clip) -> dict[str, float]:
    tracked = clip.raw[:, 0]
    times, jaw, ms = run_model(model, clip.audio)
    env_t, env = rms_envelope(clip.audio)
    silent = silence_mask(env)
    jaw_env = np.interp(env_t, times, jaw)  # on the envelope's grid by the reported timestamps
    row = {"model": best_lag_r(times, jaw, tracked, clip.frame_t)[0],
           "loudness": best_lag_r(env_t, env, tracked, clip.frame_t)[0],
           "dsp_live": best_lag_r(*dsp_jaw(clip.audio, LipSyncOptions()), tracked, clip.frame_t)[0],
           "dsp_offline": best_lag_r(*dsp_jaw(clip.audio, OFFLINE_OPTIONS), tracked, clip.frame_t)[0],
           "pause_s": float(silent.sum() * HOP / RATE),
           "pause_max_jaw": float(jaw_env[silent].max()) if silent.any() else float("nan"),
           "max_step": float(np.abs(np.diff(jaw)).max()),
           "tracked_max_step": float(np.abs(np.diff(np.interp(env_t, clip.frame_t, np.nan_to_num(tracked)))).max()),
           "jaw_p95": float(np.percentile(jaw, 95)),
           "ms": ms}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--cache", type=Path, default=CACHE)
    args = parser.parse_args()
    model = LearnedLipSync(args.model)

    print("## Held-out speakers (mean over each speaker's clips; jawOpen Pearson r at the best lag within +-40 ms)\n")
    print("| speaker | clips | s | model r | loudness r | DSP live r | DSP offline r | pauses >= 150 ms | max jaw in pauses |")
    print("|---|---|---|---|---|---|---|---|---|")
    held = [c for c in load_dataset(args.cache) if c.speaker in HELD_OUT]
    per_speaker: dict[str, list[dict[str, float]]] = {}
    for clip in held:
        per_speaker.setdefault(clip.speaker, []).append(measure(model, clip) | {"s": clip.seconds})
    means = []
    for speaker, rows in sorted(per_speaker.items()):
        m = {k: float(np.mean([r[k] for r in rows])) for k in ("model", "loudness", "dsp_live", "dsp_offline")}
        means.append(m)
        pause_jaw = max(r["pause_max_jaw"] if r["pause_s"] else 0.0 for r in rows)
        print(f"| {speaker} | {len(rows)} | {sum(r['s'] for r in rows):.0f} | {m['model']:.3f} | {m['loudness']:.3f} "
              f"| {m['dsp_live']:.3f} | {m['dsp_offline']:.3f} | {sum(r['pause_s'] for r in rows):.1f} s "
              f"| {pause_jaw:.3f} |")
    avg = {k: np.mean([m[k] for m in means]) for k in means[0]}
    print(f"| **mean of {len(means)} speakers** | | | **{avg['model']:.3f}** | {avg['loudness']:.3f} "
          f"| {avg['dsp_live']:.3f} | {avg['dsp_offline']:.3f} |")

    print("\n## Shared test clips (not in training)\n")
    print("| clip | model r | loudness r | model - loudness | DSP live r | DSP offline r | pauses >= 150 ms "
          "| max jaw in pauses | max jaw step / 10 ms (tracked) | jaw p95 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    latencies: list[float] = []
    for name in TEST_CLIPS:
        path = args.cache / name
        if not path.exists():
            print(f"| {name} | missing from {args.cache} |")
            continue
        r = measure(model, load_clip(path))
        latencies += r["ms"]
        print(f"| {name.split('__')[1].removesuffix('.npz')} | **{r['model']:.3f}** | {r['loudness']:.3f} "
              f"| {r['model'] - r['loudness']:+.3f} | {r['dsp_live']:.3f} | {r['dsp_offline']:.3f} "
              f"| {r['pause_s']:.1f} s | {r['pause_max_jaw']:.3f} | {r['max_step']:.3f} ({r['tracked_max_step']:.3f}) "
              f"| {r['jaw_p95']:.2f} |")

    rng = np.random.default_rng(0)
    quiet = {"digital silence": np.zeros(5 * RATE, np.float32),
             "white noise -60 dBFS": (1e-3 * rng.standard_normal(5 * RATE)).astype(np.float32),
             "white noise -40 dBFS": (1e-2 * rng.standard_normal(5 * RATE)).astype(np.float32)}
    print("\n## No speech\n\n| input (5 s) | max jawOpen |\n|---|---|")
    for label, audio in quiet.items():
        print(f"| {label} | {run_model(model, audio)[1].max():.3f} |")

    lat = np.array(latencies)
    print(f"\nPer-hop latency (160-sample call, features + ONNX + gate, 1 thread): p50 {np.percentile(lat, 50):.3f} ms, "
          f"p95 {np.percentile(lat, 95):.3f} ms, max {lat.max():.2f} ms over {len(lat)} calls")


if __name__ == "__main__":
    main()
