"""Train avatarcam's own facial-emotion classifier on FER-2013 and export it to ``models/fer_cnn.onnx``.

Exact commands that made ``models/fer_cnn.onnx`` (from the repository root). The training ran on a
machine with one NVIDIA H200 GPU (torch 2.11, CUDA), reading the faces from a packed file written
here; the same script runs on the CPU (``--device cpu``), only much more slowly::

    export PYTHONPATH=.
    python models/train_fer.py --data ../shared/datasets/fer2013/train --pack /tmp/fer2013_train.npz.xz
    # on the GPU machine, with that file copied next to the checkout:
    T=(python models/train_fer.py --data /tmp/fer2013_train.npz.xz --device cuda --threads 4 --batch 128)
    # 1. teacher, twice as wide (4.7 M parameters): 92 epochs fitted the 170 s budget, 188 s
    "${T[@]}" --width 2 --epochs 200 --budget 170 --warmup 0.1 --mix 0.5 \
        --checkpoint /tmp/teacher.pt --out /tmp/teacher.onnx
    # 2. the shipped student (width 1), distilled from it: a 77-epoch schedule fitted the 150 s
    #    budget; the budget guard ended it after epoch 76 (learning rate then 5e-4 of its peak), 190 s
    "${T[@]}" --epochs 300 --budget 150 --warmup 0.1 --mix 0.5 --teacher /tmp/teacher.pt \
        --checkpoint /tmp/kd.pt --out /tmp/kd.onnx
    # back here: export the student's checkpoint
    python models/train_fer.py --export-only --checkpoint /tmp/kd.pt

``--budget`` times a few steps and shortens the schedule to what fits; to repeat the run without it,
give the epochs it chose: ``--epochs 92`` for the teacher, ``--epochs 77 --stop-after 76`` for the
student. GPU kernels are not bit-for-bit deterministic, so a rerun gives a close, not identical,
model. Two other recipes trained alongside (same faces, development top-1 in models/README.md)
lost to the distilled student on the development faces, which is how it was chosen.

Only the FER-2013 *Training* folder is read, either as the folder of JPEGs or as a packed file of
its decoded pixels (``--pack``; the same images, so the same split). A stratified 10 % of it is held
out (fixed seed); near-duplicate images are grouped by a perceptual hash and a whole group goes to
one side, so no copy of a held-out face is trained on. Training never looks at the held-out faces:
progress is measured on a *development* part carved out of the training side the same way (5 %,
its own seed), and the model of the last epoch is exported (no checkpoint is picked by accuracy).

The exported ONNX graph takes ``face``: float32 [N, 1, 48, 48], grey, pixel / 255 (so 0..1), the whole
48x48 FER-style crop; it standardises each face itself (zero mean, unit variance) and returns
``probabilities``: softmax [N, 7] in ``EMOTIONS`` order (neutral, happy, sad, angry, surprised,
fearful, disgusted).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import lzma
import math
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# avatarcam's EMOTIONS order (engine/emotion/vocabulary.py), with the FER-2013 folder of each class.
EMOTIONS = ("neutral", "happy", "sad", "angry", "surprised", "fearful", "disgusted")
FOLDERS = ("neutral", "happy", "sad", "angry", "surprise", "fear", "disgust")
SIZE = 48  # FER-2013 image side; the ONNX input side
TRAIN_CROP = 44  # training sees random 44x44 views; the full 48x48 face is classified
SEED = 20131
VAL_FRACTION = 0.10
DEV_SEED = 20141  # the development part carved out of the training side
DEV_FRACTION = 0.05
REPO = Path(__file__).resolve().parents[1]
DEFAULT_ONNX = REPO / "models" / "fer_cnn.onnx"


# ---- data ---------------------------------------------------------------------------------------

def load_dataset(source: Path, cache_dir: Path = Path("/tmp/fer_cache")) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """All images as uint8 [N, 48, 48], labels in EMOTIONS order, and relative file names (sorted),
    from the FER-2013 Training folder or from a file written by ``pack_dataset``."""
    if source.is_file():
        with np.load(io.BytesIO(lzma.decompress(source.read_bytes()))) as data:
            return data["images"], data["labels"], data["names"].tolist()
    names = sorted(str(p.relative_to(source)) for folder in FOLDERS for p in (source / folder).glob("*.jpg"))
    key = hashlib.sha1("\n".join(names).encode()).hexdigest()[:12]
    cache = cache_dir / f"fer2013_train_{key}.npz"
    if cache.is_file():
        data = np.load(cache)
        return data["images"], data["labels"], names
    images = np.stack([_read_grey(source / name) for name in names])
    labels = np.array([FOLDERS.index(name.split("/")[0]) for name in names], dtype=np.int64)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(cache, images=images, labels=labels)
    return images, labels, names


def pack_dataset(root: Path, path: Path, cache_dir: Path = Path("/tmp/fer_cache")) -> None:
    """One xz-compressed file of the decoded images, labels and names: what a machine without the
    JPEGs (or with another JPEG decoder) trains on, pixel for pixel the same faces."""
    images, labels, names = load_dataset(root, cache_dir)
    buffer = io.BytesIO()
    np.savez(buffer, images=images, labels=labels, names=np.array(names))
    path.write_bytes(lzma.compress(buffer.getvalue(), preset=9))
    print(f"packed {len(names)} faces into {path} ({path.stat().st_size} bytes)")


def _read_grey(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image.shape != (SIZE, SIZE):
        image = cv2.resize(image, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    return image


def near_duplicate_groups(images: np.ndarray) -> np.ndarray:
    """A group id per image: images with the same 64-bit difference hash (dHash) share one."""
    small = np.stack([cv2.resize(im, (9, 8), interpolation=cv2.INTER_AREA) for im in images]).astype(np.int16)
    bits = (small[:, :, 1:] > small[:, :, :-1]).reshape(len(images), -1)
    _, groups = np.unique(np.packbits(bits, axis=1), axis=0, return_inverse=True)
    return groups.ravel()


def split_indices(labels: np.ndarray, groups: np.ndarray, seed: int = SEED,
                  fraction: float = VAL_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split by duplicate group (a group follows its first image's label): the indices
    of the kept and of the set-aside ``fraction``."""
    rng = np.random.default_rng(seed)
    first = {}
    for i, g in enumerate(groups):
        first.setdefault(int(g), i)
    val_groups: set[int] = set()
    for c in range(len(EMOTIONS)):
        class_groups = np.array(sorted(g for g, i in first.items() if labels[i] == c))
        rng.shuffle(class_groups)
        val_groups.update(class_groups[: round(len(class_groups) * fraction)].tolist())
    is_val = np.isin(groups, list(val_groups))
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def dataset_split(source: Path) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray, np.ndarray]:
    """images, labels, names, train indices, held-out indices: the one split every script uses."""
    images, labels, names = load_dataset(source)
    train, val = split_indices(labels, near_duplicate_groups(images))
    return images, labels, names, train, val


def development_split(images: np.ndarray, labels: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The training side cut again the same way: indices trained on, and the development faces that
    measure progress (so the held-out faces are never looked at while training)."""
    fit, dev = split_indices(labels[train], near_duplicate_groups(images[train]), DEV_SEED, DEV_FRACTION)
    return train[fit], train[dev]


# ---- model --------------------------------------------------------------------------------------

def _conv(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class FerNet(nn.Module):
    """VGG-style CNN, 1.17 M parameters at width 1: one conv at full resolution, then 2 convs per
    stage at 1/2, 1/4, 1/8 (64, 128, 256 channels), global average pooling, linear. One cheap
    full-resolution layer keeps CPU inference within budget; the later stages carry the capacity.
    ``width`` multiplies every channel count (the teacher for distillation is width 2, 4.7 M)."""

    def __init__(self, classes: int = len(EMOTIONS), dropout: float = 0.25, width: int = 1) -> None:
        super().__init__()
        c = [n * width for n in (32, 64, 128, 256)]
        self.features = nn.Sequential(
            *_conv(1, c[0]), nn.MaxPool2d(2),
            *_conv(c[0], c[1]), *_conv(c[1], c[1]), nn.MaxPool2d(2),
            *_conv(c[1], c[2]), *_conv(c[2], c[2]), nn.MaxPool2d(2),
            *_conv(c[2], c[3]), *_conv(c[3], c[3]),
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(c[3], classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for faces in [0, 1]; each face is standardised first, so global light and
        contrast (webcam exposure) do not matter."""
        mean = x.mean(dim=(2, 3), keepdim=True)
        std = x.std(dim=(2, 3), keepdim=True)
        return self.head(self.features((x - mean) / (std + 1e-3)))


class ExportedFerNet(nn.Module):
    """The shipped graph: softmax of the logits. (Averaging with the mirror image would double the
    ~1.7 ms a face on one CPU thread, past the 3 ms budget for crop + inference.)"""

    def __init__(self, net: FerNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, face: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(face), dim=1)


def load_net(path: Path, width: int = 1, device: str = "cpu") -> FerNet:
    net = FerNet(width=width)
    net.load_state_dict(torch.load(path, map_location=device))
    return net.to(device)


# ---- augmentation -------------------------------------------------------------------------------

def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random TRAIN_CROP views of a [B, 1, 48, 48] batch in [0, 1]: mirror, zoom, rotation, shift
    (one affine warp), gamma, and a random occluding patch (hands, glasses, hair). ``generator``
    lives on the batch's device."""
    n, device = batch.shape[0], batch.device

    def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(shape or (n,), generator=generator, device=device)

    angle = uniform(-10, 10) * math.pi / 180
    scale = uniform(0.9, 1.1) * TRAIN_CROP / SIZE  # output side in input units (1 = whole image)
    flip = torch.where(uniform(0, 1) < 0.5, -1.0, 1.0)
    shift = (SIZE - TRAIN_CROP) / SIZE  # a 44 view may sit anywhere inside the 48 frame
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack([
        torch.stack([cos * flip, -sin, uniform(-shift, shift)], 1),
        torch.stack([sin * flip, cos, uniform(-shift, shift)], 1),
    ], 1)
    grid = F.affine_grid(theta, [n, 1, TRAIN_CROP, TRAIN_CROP], align_corners=False)
    out = F.grid_sample(batch, grid, mode="bilinear", padding_mode="border", align_corners=False)
    out = out.clamp(0, 1) ** torch.exp(uniform(-0.4, 0.4)).view(n, 1, 1, 1)
    # Random erasing: a quarter of the faces get a patch of 2-20 % of the area filled with noise.
    area = uniform(0.02, 0.2) * TRAIN_CROP ** 2
    aspect = torch.exp(uniform(-1.0, 1.0))
    h = (area * aspect).sqrt().clamp(max=TRAIN_CROP).long().view(n, 1, 1)
    w = (area / aspect).sqrt().clamp(max=TRAIN_CROP).long().view(n, 1, 1)
    top = (uniform(0, 1).view(n, 1, 1) * (TRAIN_CROP - h + 1)).long()
    left = (uniform(0, 1).view(n, 1, 1) * (TRAIN_CROP - w + 1)).long()
    rows = torch.arange(TRAIN_CROP, device=device).view(1, -1, 1)
    cols = torch.arange(TRAIN_CROP, device=device).view(1, 1, -1)
    mask = ((rows >= top) & (rows < top + h) & (cols >= left) & (cols < left + w)
            & (uniform(0, 1).view(n, 1, 1) < 0.25)).unsqueeze(1)
    return torch.where(mask, uniform(0, 1, *out.shape), out)


def mix(x: torch.Tensor, partner: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, float]:
    """Mixup (a Beta(0.4, 0.4) blend) or CutMix (a box of the partner face), half and half: the
    mixed batch and the share of each face's own label. One draw per batch, from ``rng`` on the host
    (no device round trip)."""
    if rng.random() < 0.5:
        lam = float(rng.beta(0.4, 0.4))
        return lam * x + (1 - lam) * x[partner], lam
    area, aspect = rng.uniform(0.1, 0.5) * TRAIN_CROP ** 2, math.exp(rng.uniform(-0.5, 0.5))
    h, w = min(TRAIN_CROP, round(math.sqrt(area * aspect))), min(TRAIN_CROP, round(math.sqrt(area / aspect)))
    top, left = int(rng.integers(0, TRAIN_CROP - h + 1)), int(rng.integers(0, TRAIN_CROP - w + 1))
    mixed = x.clone()
    mixed[:, :, top : top + h, left : left + w] = x[partner, :, top : top + h, left : left + w]
    return mixed, 1.0 - h * w / TRAIN_CROP ** 2


# ---- training -----------------------------------------------------------------------------------

def evaluate(net: nn.Module, images: np.ndarray, batch: int = 512) -> np.ndarray:
    """Probabilities [N, 7] of uint8 [N, 48, 48] faces through ``ExportedFerNet`` (float32, on the
    net's device)."""
    model = ExportedFerNet(net).eval()
    device = next(net.parameters()).device
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = torch.from_numpy(images[i : i + batch]).to(device).float().div(255).unsqueeze(1)
            out.append(model(x.contiguous(memory_format=torch.channels_last)).float().cpu().numpy())
    return np.concatenate(out)


class Trainer:
    """One training run: data on the device, optimiser, OneCycle schedule, optional teacher."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args, self.device = args, torch.device(args.device)
        images, labels, _, train_idx, _ = dataset_split(args.data)
        fit, dev = development_split(images, labels, train_idx)
        if args.subset:  # a quick trial of the whole pipeline on a few faces
            fit = np.sort(np.random.default_rng(args.seed).choice(fit, args.subset, replace=False))
        print(f"{len(fit)} training, {len(dev)} development faces (held-out faces not loaded); "
              f"device {self.device}", flush=True)
        self.dev_images, self.dev_labels = images[dev], labels[dev]
        self.x = torch.from_numpy(images[fit]).unsqueeze(1).to(self.device)
        self.y = torch.from_numpy(labels[fit]).to(self.device)
        # Class weights ~ 1/sqrt(frequency): lifts disgust (436 faces) without sacrificing top-1.
        counts = np.bincount(labels[fit], minlength=len(EMOTIONS))
        weights = (counts.max() / counts) ** 0.5
        self.weights = torch.tensor(weights * len(EMOTIONS) / weights.sum(), dtype=torch.float32, device=self.device)
        self.teacher = None
        if args.teacher:
            self.teacher = load_net(args.teacher, args.teacher_width, args.device).eval()
            self.teacher = self.teacher.to(memory_format=torch.channels_last)
            accuracy = self.dev_accuracy(self.teacher)
            print(f"teacher {args.teacher} (width {args.teacher_width}): development top-1 {accuracy:.4f}", flush=True)
        self.steps_per_epoch = len(fit) // args.batch
        self.rng = np.random.default_rng(args.seed)  # per-batch choices (mix or not, how)

    def new_net(self) -> tuple[FerNet, torch.optim.Optimizer]:
        torch.manual_seed(self.args.seed)
        net = load_net(self.args.resume, self.args.width, self.args.device) if self.args.resume else FerNet(width=self.args.width)
        net = net.to(self.device, memory_format=torch.channels_last)
        if self.args.optimizer == "sgd":
            optimiser: torch.optim.Optimizer = torch.optim.SGD(
                net.parameters(), lr=self.args.lr, momentum=0.9, nesterov=True, weight_decay=self.args.weight_decay)
        else:
            optimiser = torch.optim.AdamW(net.parameters(), lr=self.args.lr, weight_decay=self.args.weight_decay)
        return net, optimiser

    def dev_accuracy(self, net: nn.Module) -> float:
        return float((evaluate(net, self.dev_images).argmax(1) == self.dev_labels).mean())

    def step(self, net: FerNet, optimiser: torch.optim.Optimizer, pick: torch.Tensor,
             generator: torch.Generator) -> torch.Tensor:
        """One optimiser step on the faces ``pick``; the loss (a device tensor: no sync per step)."""
        args = self.args
        x = augment(self.x[pick].float().div(255), generator)
        y = self.y[pick]
        lam, y_other = 1.0, y
        if self.rng.random() < args.mix:
            partner = torch.randperm(len(pick), generator=generator, device=self.device)
            x, lam = mix(x, partner, self.rng)
            y_other = y[partner]
        x = x.contiguous(memory_format=torch.channels_last)
        # bfloat16 autocast: ~1.8x faster on a CPU with AVX-512 BF16 and on a GPU, same accuracy.
        with torch.autocast(self.device.type, dtype=torch.bfloat16):
            logits = net(x).float()
            if self.teacher is not None:
                with torch.no_grad():
                    teacher = self.teacher(x).float()

        def hard(target: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(logits, target, weight=self.weights, label_smoothing=0.1)

        loss = hard(y) if lam == 1 else lam * hard(y) + (1 - lam) * hard(y_other)
        if self.teacher is not None:
            t = args.temperature  # distillation: match the teacher's softened view of the same pixels
            soft = F.kl_div(F.log_softmax(logits / t, 1), F.log_softmax(teacher / t, 1), reduction="batchmean",
                            log_target=True) * t * t
            loss = (1 - args.distill) * loss + args.distill * soft
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        return loss.detach()

    def seconds_per_step(self, steps: int = 30) -> float:
        """Time training steps on a throw-away copy (own generator), to size a run to ``--budget``."""
        net, optimiser = self.new_net()
        generator = self._generator(self.args.seed + 1)
        n = len(self.y)
        for i in range(steps + 5):
            if i == 5:
                self._sync()
                start = time.perf_counter()
            self.step(net, optimiser, torch.randint(n, (self.args.batch,), generator=generator, device=self.device),
                      generator)
        self._sync()
        return (time.perf_counter() - start) / steps

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def _generator(self, seed: int) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(seed)

    def run(self) -> FerNet:
        args = self.args
        epochs = args.epochs
        if args.budget:
            per_step = self.seconds_per_step()
            epochs = max(1, min(epochs, int(args.budget / (per_step * self.steps_per_epoch))))
            print(f"{per_step * 1e3:.2f} ms a step: {epochs} epochs fit {args.budget:.0f} s", flush=True)
        net, optimiser = self.new_net()
        self.rng = np.random.default_rng(args.seed)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimiser, max_lr=args.lr, epochs=epochs, steps_per_epoch=self.steps_per_epoch, pct_start=args.warmup)
        generator = self._generator(args.seed)
        start, report_every = time.time(), max(1, epochs // 25)
        for epoch in range(epochs):
            net.train()
            order = torch.randperm(len(self.y), generator=generator, device=self.device)
            total = torch.zeros((), device=self.device)
            for step in range(self.steps_per_epoch):
                total += self.step(net, optimiser, order[step * args.batch : (step + 1) * args.batch], generator)
                schedule.step()
                if args.max_steps and step + 1 >= args.max_steps:
                    print(f"{(time.time() - start) / (step + 1):.3f} s/step", flush=True)
                    return net
            last = epoch + 1 == epochs or epoch + 1 == args.stop_after
            if args.budget and time.time() - start > 1.25 * args.budget:  # the timing was too hopeful
                print(f"stopped after epoch {epoch + 1} of {epochs}: past 1.25 x the budget", flush=True)
                last = True
            if (epoch + 1) % report_every == 0 or last:
                print(f"epoch {epoch + 1}/{epochs} loss {float(total) / self.steps_per_epoch:.3f} development "
                      f"top-1 {self.dev_accuracy(net):.4f} {time.time() - start:.0f} s", flush=True)
                torch.save(net.state_dict(), args.checkpoint)
            if last:
                break
        accuracy = self.dev_accuracy(net)
        print(json.dumps({"checkpoint": str(args.checkpoint), "epochs": epoch + 1, "schedule_epochs": epochs,
                          "development_top1": round(accuracy, 4),
                          "seconds": round(time.time() - start)}), flush=True)
        return net


def export_onnx(net: FerNet, path: Path, sample: np.ndarray) -> None:
    """Write the softmax graph with a dynamic batch axis; check it against torch."""
    import onnxruntime as ort

    model = ExportedFerNet(net.cpu().to(memory_format=torch.contiguous_format)).eval()
    example = torch.from_numpy(sample[:4]).float().div(255).unsqueeze(1)
    torch.onnx.export(
        model, (example,), str(path), input_names=["face"], output_names=["probabilities"],
        dynamic_axes={"face": {0: "batch"}, "probabilities": {0: "batch"}}, opset_version=17, dynamo=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    batch = torch.from_numpy(sample).float().div(255).unsqueeze(1)
    with torch.no_grad():
        expected = model(batch).numpy()
    got = session.run(None, {"face": batch.numpy()})[0]
    error = float(np.abs(got - expected).max())
    assert error < 1e-4, f"onnxruntime differs from torch by {error}"
    print(f"wrote {path} ({path.stat().st_size} bytes); onnxruntime vs torch max diff {error:.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "datasets" / "fer2013" / "train",
                        help="the FER-2013 Training folder, or a file written by --pack")
    parser.add_argument("--pack", type=Path, help="write --data's images to this packed file and stop")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=DEFAULT_ONNX)
    parser.add_argument("--checkpoint", type=Path, default=Path("/tmp/fer_cache/fer_cnn.pt"))
    parser.add_argument("--width", type=int, default=1, help="channel multiplier (1: the shipped size)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--budget", type=float, default=0,
                        help="seconds: time a few steps first and train at most as many epochs as fit")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--optimizer", choices=("adamw", "sgd"), default="adamw")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak of the OneCycle schedule")
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--warmup", type=float, default=0.2, help="OneCycle warm-up fraction")
    parser.add_argument("--mix", type=float, default=0.0, help="share of batches mixed by Mixup or CutMix")
    parser.add_argument("--teacher", type=Path, help="distil from this checkpoint (trained on the same faces)")
    parser.add_argument("--teacher-width", type=int, default=2)
    parser.add_argument("--distill", type=float, default=0.7, help="weight of the teacher's soft targets")
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=SEED, help="initialisation, batches, augmentation (not the split)")
    parser.add_argument("--resume", type=Path, help="start from these weights (a checkpoint of an earlier phase)")
    parser.add_argument("--stop-after", type=int, default=0, help="end after this many epochs of the schedule")
    parser.add_argument("--subset", type=int, default=0, help="train on this many faces only (a quick trial)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=0, help="stop after this many steps and print s/step (sizing)")
    parser.add_argument("--export-only", action="store_true", help="export the saved checkpoint, do not train")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = True
    if args.pack:
        pack_dataset(args.data, args.pack)
        return
    args.checkpoint.parent.mkdir(parents=True, exist_ok=True)
    net = load_net(args.checkpoint, args.width) if args.export_only else Trainer(args).run()
    if args.max_steps:
        return
    images, _, _, _, val_idx = dataset_split(args.data)
    export_onnx(net.eval(), args.out, images[val_idx[:64]])


if __name__ == "__main__":
    main()
