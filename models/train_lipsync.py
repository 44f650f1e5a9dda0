"""Train the learned lip-sync (audio -> 16 ARKit mouth controls, causal, 10 ms hop) and export ONNX.

Needs the cache written by ``extract_lipsync_targets.py`` and the ``train`` extra (torch, onnx).
Validation is on held-out *speakers* (``lipsync_data.HELD_OUT``), never on the shared test clips.

    PYTHONPATH=. nice -n 10 python models/train_lipsync.py --out models/lipsync_tcn.onnx

Model: a causal temporal conv net (3-hop input conv, six dilated residual layers, 64 channels, 1.3 s of
context; a GRU was tried first but its backward pass is ~10x slower on the 2-core CPU), trained on
per-speaker normalised motion (0 = the speaker's rest, 1 = their 95th percentile) delayed by
``LOOKAHEAD`` hops: the output of hop k
describes the mouth at hop k - LOOKAHEAD, so the model hears 40 ms past the moment it animates.
The exported graph scales motion to the avatar's 0..1 controls (``gains``) and clamps.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from engine.perception.voice.features import (
    FEATURE_DIM,
    HOP,
    RATE,
    SILENCE_VALUE,
    hop_times,
    log_mel_features,
)
from models.lipsync_data import (
    CACHE,
    CONTROLS,
    HELD_OUT,
    Clip,
    best_lag_r,
    load_dataset,
    rms_envelope,
    speaker_stats,
)

LOOKAHEAD = 4  # hops (40 ms)
KERNEL = 3
CHANNELS = 64
DILATIONS = (1, 2, 4, 8, 16, 32)  # receptive field 1 + 2 * (1 + 63) = 129 hops, 1.3 s of the past
LAYER_STATE = sum((KERNEL - 1) * d for d in DILATIONS)
JAW_GAIN = 0.65  # a speaker's 95th-percentile jaw (wide vowels) -> 0.65 on the avatar
CONTROL_WEIGHTS = np.array([3.0] + [1.0] * (len(CONTROLS) - 1))  # jawOpen matters most
VELOCITY_WEIGHT, SMOOTH_WEIGHT = 1.0, 2.0
CROP, BATCH, WARMUP = 256, 24, 20
TARGET_CLIP = (-0.5, 2.0)


class LipSyncNet(nn.Module):
    """Causal temporal conv net (dilated residual layers) whose history is explicit input/output state,
    so one call can be one hop and the result equals a pass over the whole sequence.

    ``feature_state`` holds the last KERNEL-1 feature rows; ``layer_state`` the last (KERNEL-1)*d inputs
    of each dilated layer, concatenated along time.
    """

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Conv1d(FEATURE_DIM, CHANNELS, KERNEL)
        self.layers = nn.ModuleList(nn.Conv1d(CHANNELS, CHANNELS, KERNEL, dilation=d) for d in DILATIONS)
        self.head = nn.Conv1d(CHANNELS, len(CONTROLS), 1)

    def forward(self, features: torch.Tensor, feature_state: torch.Tensor, layer_state: torch.Tensor):
        x = torch.cat([feature_state, features], dim=1).transpose(1, 2)  # (B, F, history + T)
        feature_out = x[:, :, x.shape[2] - (KERNEL - 1):].transpose(1, 2)
        h = torch.relu(self.inp(x))
        states, offset = [], 0
        for d, layer in zip(DILATIONS, self.layers, strict=True):
            size = (KERNEL - 1) * d
            padded = torch.cat([layer_state[:, offset:offset + size].transpose(1, 2), h], dim=2)
            states.append(padded[:, :, padded.shape[2] - size:])
            h = h + torch.relu(layer(padded))  # residual: each layer refines, none has to relearn the input
            offset += size
        return self.head(h).transpose(1, 2), feature_out, torch.cat(states, dim=2).transpose(1, 2)

    @staticmethod
    def initial_state(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        # The feature history starts as digital silence, as the feature stream does.
        return torch.full((batch, KERNEL - 1, FEATURE_DIM), SILENCE_VALUE), torch.zeros(batch, LAYER_STATE, CHANNELS)


class Controls(nn.Module):
    """What is exported: normalised motion -> the avatar's 0..1 control scale."""

    def __init__(self, net: LipSyncNet, gains: np.ndarray) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("gains", torch.tensor(gains, dtype=torch.float32))

    def forward(self, features: torch.Tensor, feature_state: torch.Tensor, layer_state: torch.Tensor):
        motion, feature_out, layer_out = self.net(features, feature_state, layer_state)
        return torch.clamp(motion * self.gains, 0.0, 1.0), feature_out, layer_out


def augment(audio: np.ndarray, rng: np.random.Generator, variant: int) -> np.ndarray:
    """0: as recorded; 1: other gain + white noise (20-45 dB SNR); 2: other gain + a tilted, coloured mic."""
    if variant == 0:
        return audio
    x = audio * 10 ** (rng.uniform(-18.0, 6.0) / 20.0)
    rms = float(np.sqrt(np.mean(x ** 2))) + 1e-9
    if variant == 2:
        x = np.convolve(x, [1.0, rng.uniform(-0.9, 0.5)])[:len(x)]  # first-order tilt: bright or dull mic
        snr = 50.0
    else:
        snr = rng.uniform(20.0, 45.0)
    x = x + rng.standard_normal(len(x)) * rms * 10 ** (-snr / 20.0)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def targets(clip: Clip, stats: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(hops x C normalised motion delayed by LOOKAHEAD, valid mask)."""
    rest, spread = stats[clip.speaker]
    y = np.clip((clip.hop_raw - rest) / spread, *TARGET_CLIP)
    y = np.concatenate([np.full((LOOKAHEAD, y.shape[1]), np.nan), y[:len(y) - LOOKAHEAD]])
    mask = ~np.isnan(y[:, 0])
    return np.nan_to_num(y).astype(np.float32), mask


def loss_fn(pred: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted L1 on motion + L1 on its velocity + a small penalty on the prediction's acceleration."""
    m = mask[..., None].float()
    norm = weights.sum()
    motion = ((pred - y).abs() * weights * m).sum() / (m.sum() * norm + 1e-6)
    m2 = m[:, 1:] * m[:, :-1]
    dp, dy = pred[:, 1:] - pred[:, :-1], y[:, 1:] - y[:, :-1]
    velocity = ((dp - dy).abs() * weights * m2).sum() / (m2.sum() * norm + 1e-6)
    m3 = m2[:, 1:] * m2[:, :-1]
    smooth = ((dp[:, 1:] - dp[:, :-1]) ** 2 * weights * m3).sum() / (m3.sum() * norm + 1e-6)
    return motion + VELOCITY_WEIGHT * velocity + SMOOTH_WEIGHT * smooth


def sample_weights(clips: list[Clip]) -> np.ndarray:
    """Each speaker's share grows with the square root of their minutes (GRID s1 is 80 % of the data,
    but ~20 % of the draws), spread over their clips by length."""
    seconds = {s: sum(c.seconds for c in clips if c.speaker == s) for s in {c.speaker for c in clips}}
    w = np.array([np.sqrt(seconds[c.speaker]) * c.seconds / seconds[c.speaker] for c in clips])
    return w / w.sum()


def predict_jaw(net: LipSyncNet, features: np.ndarray, gain: float) -> np.ndarray:
    with torch.no_grad():
        motion, _, _ = net(torch.from_numpy(features)[None], *net.initial_state(1))
    return np.clip(motion[0, :, 0].numpy() * gain, 0.0, 1.0)


def held_out_report(net: LipSyncNet, clips: list[Clip], gain: float) -> dict[str, dict[str, float]]:
    """Per held-out speaker: mean over their clips of jawOpen r (model and loudness) at the best lag."""
    rows: dict[str, list[tuple[float, float]]] = {}
    for clip in clips:
        features = log_mel_features(clip.audio)
        t = hop_times(len(features)) - LOOKAHEAD * HOP / RATE  # output k shows the mouth of hop k - LOOKAHEAD
        r_model, _ = best_lag_r(t, predict_jaw(net, features, gain), clip.raw[:, 0], clip.frame_t)
        env_t, env = rms_envelope(clip.audio)
        r_loud, _ = best_lag_r(env_t, env, clip.raw[:, 0], clip.frame_t)
        rows.setdefault(clip.speaker, []).append((r_model, r_loud))
    return {s: {"model": float(np.mean([a for a, _ in v])), "loudness": float(np.mean([b for _, b in v])),
                "clips": len(v)} for s, v in sorted(rows.items())}


def export(net: LipSyncNet, gains: np.ndarray, path: Path) -> None:
    wrapper = Controls(net, gains).eval()
    feature0, layer0 = net.initial_state(1)
    torch.onnx.export(wrapper, (torch.zeros(1, 1, FEATURE_DIM), feature0, layer0), str(path), dynamo=False,
                      input_names=["features", "feature_state", "layer_state"],
                      output_names=["controls", "feature_state_out", "layer_state_out"],
                      dynamic_axes={"features": {1: "T"}, "controls": {1: "T"}}, opset_version=17)
    model = onnx.load(str(path))
    meta = {"controls": json.dumps(list(CONTROLS)), "lookahead_hops": str(LOOKAHEAD), "hop_s": str(HOP / RATE),
            "feature_state_init": str(SILENCE_VALUE), "features": "engine.perception.voice.features log-mel v1",
            "gains": json.dumps([round(float(g), 4) for g in gains])}
    onnx.helper.set_model_props(model, meta)
    onnx.save(model, str(path))


def check_streaming(net: LipSyncNet, gains: np.ndarray, path: Path, features: np.ndarray) -> float:
    """Max |difference| between torch on the whole sequence and ONNX called hop by hop with its state."""
    import onnxruntime as ort

    with torch.no_grad():
        offline = Controls(net, gains)(torch.from_numpy(features)[None], *net.initial_state(1))[0][0].numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feature_state, layer_state = (s.numpy() for s in net.initial_state(1))
    rows = []
    for k in range(len(features)):
        out, feature_state, layer_state = session.run(None, {"features": features[None, k:k + 1],
                                                             "feature_state": feature_state, "layer_state": layer_state})
        rows.append(out[0, 0])
    return float(np.abs(np.array(rows) - offline).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--out", type=Path, default=Path("models/lipsync_tcn.onnx"))
    parser.add_argument("--steps", type=int, default=700)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()

    clips = load_dataset(args.cache)
    train = [c for c in clips if c.speaker not in HELD_OUT]
    held = [c for c in clips if c.speaker in HELD_OUT]
    stats = speaker_stats(train)
    gains = np.median(np.array([spread for _, spread in stats.values()]), axis=0)
    gains[0] = JAW_GAIN
    print(f"{len(train)} training clips ({sum(c.seconds for c in train) / 60:.1f} min, {len(stats)} speakers), "
          f"{len(held)} held-out clips ({sum(c.seconds for c in held):.0f} s, "
          f"{len({c.speaker for c in held})} speakers)", flush=True)
    data = [([log_mel_features(augment(c.audio, rng, v)) for v in range(3)], *targets(c, stats)) for c in train]
    probs = sample_weights(train)
    print(f"features ready in {time.perf_counter() - start:.0f} s", flush=True)

    net = LipSyncNet()
    print(f"{sum(p.numel() for p in net.parameters())} parameters", flush=True)
    optimiser = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=args.lr, total_steps=args.steps, pct_start=0.1)
    weights = torch.tensor(CONTROL_WEIGHTS, dtype=torch.float32)
    for step in range(1, args.steps + 1):
        x = np.full((BATCH, CROP, FEATURE_DIM), SILENCE_VALUE, dtype=np.float32)
        y = np.zeros((BATCH, CROP, len(CONTROLS)), dtype=np.float32)
        m = np.zeros((BATCH, CROP), dtype=bool)
        for b, i in enumerate(rng.choice(len(train), BATCH, p=probs)):
            variants, yi, mi = data[i]
            fi = variants[rng.integers(3)]
            s = int(rng.integers(0, max(1, len(fi) - CROP + 1)))
            n = min(CROP, len(fi) - s)
            x[b, :n], y[b, :n], m[b, :n] = fi[s:s + n], yi[s:s + n], mi[s:s + n]
            if s > 0:
                m[b, :WARMUP] = False  # the state starts from nothing mid-clip: let it settle first
        net.train()
        pred, _, _ = net(torch.from_numpy(x), *net.initial_state(BATCH))
        loss = loss_fn(pred, torch.from_numpy(y), torch.from_numpy(m), weights)
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        if step % 100 == 0:
            net.eval()
            report = held_out_report(net, held, gains[0])
            mean = np.mean([v["model"] for v in report.values()])
            print(f"step {step} loss {loss.item():.4f} held-out jaw r {mean:.3f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)

    net.eval()
    report = held_out_report(net, held, gains[0])
    for speaker, row in report.items():
        print(f"  {speaker:22s} clips {row['clips']:2d}  model r {row['model']:.3f}  loudness r {row['loudness']:.3f}")
    print(f"held-out speakers: mean model r {np.mean([v['model'] for v in report.values()]):.3f}, "
          f"mean loudness r {np.mean([v['loudness'] for v in report.values()]):.3f}")
    export(net, gains, args.out)
    diff = check_streaming(net, gains, args.out, log_mel_features(held[0].audio))
    print(f"exported {args.out} ({args.out.stat().st_size} bytes); streaming ONNX vs offline torch max diff {diff:.2e}")
    print(f"gains {np.round(gains, 3).tolist()}")
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
