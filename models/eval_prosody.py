"""How well does the prosody estimator rank aroused speech above calm speech?

There is no emotional-speech corpus the project may use (see ../shared/README.md), so this measures
what can be measured honestly, and says what each figure is:

1. **Synthetic, labelled by construction**: espeak-ng speaks the same sentences with five voices in
   three styles (calm: slow, low, soft; neutral; aroused: fast, high, loud, wide pitch range). The
   ROC AUC of ``arousal`` for aroused vs (calm + neutral). A sanity check of the direction and the
   feature pipeline, NOT evidence about real emotional speech.
2. **Ordinary speech, unlabelled**: the arousal of the shared test speech (talking clips, two speech
   WAVs). Ordinary speech should sit near 0.

    python models/eval_prosody.py            # needs espeak-ng (apt install espeak-ng)
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np

from engine.capture.decode import read_audio
from engine.perception.voice.prosody import arousal_valence, load_norms, prosody_features

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "media"
SENTENCES = (
    "I can't believe you did that again after everything we talked about.",
    "The train leaves at seven tomorrow morning from the main station.",
    "We won the whole thing, all of it, right at the very end.",
    "Please put the boxes in the kitchen next to the table.",
    "Get out of here right now and don't ever come back.",
    "There's something moving in the dark behind the door.",
)
VOICES = ("en-us", "en-gb", "en-us+f2", "en-gb+f4", "en-us+m3")
STYLES = {  # espeak-ng: -s words/min, -p pitch 0-99, -a amplitude, SSML pitch range
    "calm": ("-s", "125", "-p", "35", "-a", "60"),
    "neutral": ("-s", "165", "-p", "50", "-a", "100"),
    "aroused": ("-s", "215", "-p", "72", "-a", "180"),
}
RANGE = {"calm": "x-low", "neutral": "medium", "aroused": "x-high"}


def roc_auc(positives: list[float], negatives: list[float]) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    p, n = np.asarray(positives)[:, None], np.asarray(negatives)[None, :]
    return float(((p > n).sum() + 0.5 * (p == n).sum()) / (p.size * n.size))


def main() -> None:
    norms = load_norms()
    scores: dict[str, list[float]] = {style: [] for style in STYLES}
    with tempfile.TemporaryDirectory() as tmp:
        for v, voice in enumerate(VOICES):
            for s, sentence in enumerate(SENTENCES):
                for style, flags in STYLES.items():
                    wav = Path(tmp) / f"{v}_{s}_{style}.wav"
                    ssml = f'<speak><prosody range="{RANGE[style]}">{sentence}</prosody></speak>'
                    subprocess.run(["espeak-ng", "-m", "-v", voice, *flags, "-w", str(wav), ssml], check=True)
                    features = prosody_features(read_audio(wav))
                    if features is not None:
                        scores[style].append(arousal_valence(features, norms)[0])
    auc = roc_auc(scores["aroused"], scores["calm"] + scores["neutral"])
    print("synthetic (espeak-ng), arousal mean per style:",
          ", ".join(f"{k} {np.mean(v):+.2f} (n={len(v)})" for k, v in scores.items()))
    print(f"synthetic ROC AUC aroused vs calm+neutral: {auc:.3f}")
    print(f"synthetic ROC AUC aroused vs neutral only: {roc_auc(scores['aroused'], scores['neutral']):.3f}")
    for name in ("talking_d6.mp4", "talking_hdtf_katiehill.mp4", "speech_radio31.wav", "speech_imagine.wav"):
        path = SHARED / name
        if path.exists():
            features = prosody_features(read_audio(path))
            if features is not None:
                arousal, valence, confidence = arousal_valence(features, norms)
                print(f"ordinary speech {name}: arousal {arousal:+.2f}, valence {valence:+.2f}, confidence {confidence:.2f}")


if __name__ == "__main__":
    main()
