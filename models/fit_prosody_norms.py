"""Fit the prosody norms: what ordinary conversational speech looks like, feature by feature.

The arousal estimate (engine/perception/voice/prosody.py) z-scores each utterance-level feature
against these norms. They come from the project's talking-head clips (../shared/datasets/talking:
~30 people talking in interviews, news and demo footage, no emotion labels), one value per clip,
weighted so that every speaker counts the same (GRID speaker s1 alone is ~80 % of the minutes).

    python models/fit_prosody_norms.py [--data ../shared/datasets/talking] [--out models/prosody_norms.json]

Deterministic (no randomness); about a minute on the 2-core CPU.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from engine.capture.decode import read_audio
from engine.perception.voice.prosody import prosody_features

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "talking")
    parser.add_argument("--out", type=Path, default=ROOT / "models" / "prosody_norms.json")
    args = parser.parse_args()
    started = time.monotonic()
    with (args.data / "SOURCES.tsv").open(encoding="utf-8") as f:
        speakers = {row["file"]: row["speaker_id"] for row in csv.DictReader(f, delimiter="\t")}
    rows: list[dict[str, float]] = []
    speaker_of: list[str] = []
    for name, speaker in sorted(speakers.items()):
        features = prosody_features(read_audio(args.data / name))
        if features is not None:
            rows.append(features.as_dict())
            speaker_of.append(speaker)
    counts = defaultdict(int)
    for speaker in speaker_of:
        counts[speaker] += 1
    weights = np.array([1.0 / counts[s] for s in speaker_of])
    weights /= weights.sum()
    norms = {}
    for name in rows[0]:
        if name == "voiced_s":
            continue
        values = np.array([r[name] for r in rows])
        mean = float(np.sum(weights * values))
        norms[name] = {"mean": round(mean, 4), "std": round(float(np.sqrt(np.sum(weights * (values - mean) ** 2))), 4)}
    args.out.write_text(json.dumps({
        "about": "Utterance-level prosody of ordinary conversational speech, per feature: speaker-weighted mean and std "
                 "over the clips of ../shared/datasets/talking (no emotion labels). Fitted by models/fit_prosody_norms.py.",
        "clips": len(rows), "speakers": len(counts), "features": norms}, indent=2) + "\n", encoding="utf-8")
    print(f"{len(rows)} clips, {len(counts)} speakers, {time.monotonic() - started:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
