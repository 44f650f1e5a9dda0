"""``avatarcam train-enhancer``: a personal photoreal renderer, trained on a clip of the user.

1. **Track** every frame of the clip (MediaPipe) and **render** the avatar (the default head, or any
   avatar file, FLAME included) in the tracked pose and expression, at the model's small size, with
   the live run's framing (head and shoulders) and an alpha mask, exactly as the enhancement stage
   will feed it.
2. **Crop** the real frame to the same framing: a box around the tracked face (smoothed over a
   second, so the crop does not shake) with the render's aspect ratio.
3. **Train** a compact U-Net (``image`` = render RGBA, ``previous`` = its own previous output: the
   time-stable contract of docs/ENHANCE.md) to produce the real crop, with L1 + SSIM + a temporal
   loss (the output's frame-to-frame change should match the real one). Each step runs two
   consecutive frames: the first conditioned on a degraded real frame, the second on the first's
   output, so the model learns from its own outputs as it will see them live.
4. **Export** ONNX at a fixed size (the stage resizes the output frame to it and back).

With ``--report DIR`` the last ``--test-seconds`` of the clip (never trained on) are enhanced through
the real enhancement stage and scored against the real frames: PSNR, SSIM and flicker, enhanced and
raw render side by side, plus a few comparison pictures.

Torch is needed only here: ``pip install avatarcam[train]``.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from engine.errors import AvatarcamError

DEFAULT_SIZE = (224, 128)  # width x height: 16:9-ish like the live output, divisible by 8 for the U-Net
CROP_FACE_HEIGHTS = 3.2  # the crop is this many forehead-to-chin heights tall (head and shoulders)
CROP_FACE_CENTRE_FROM_TOP = 0.40


@dataclass
class ClipData:
    """Per frame (faces only): the render (RGBA), the real crop (RGB), the media time (s)."""

    renders: np.ndarray  # N x H x W x 4 uint8
    reals: np.ndarray  # N x H x W x 3 uint8
    times: np.ndarray  # N
    duration: float


def _progress(label: str, done: int, total: int, extra: str = "") -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    print(f"\r{label:<10} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {extra}   ", end="", file=sys.stderr)
    if done >= total:
        print(file=sys.stderr)


def _crop_boxes(faces: list, aspect: float, frame_size: tuple[int, int], fps: float) -> np.ndarray:
    """x0, y0, x1, y1 per frame: the head-and-shoulders box around each face, smoothed over ~1 s."""
    width, height = frame_size
    raw = []
    for face in faces:
        lm = face.landmarks
        top, chin = lm[10, :2] * (width, height), lm[152, :2] * (width, height)
        face_h = float(np.linalg.norm(chin - top))
        raw.append([(top[0] + chin[0]) / 2, (top[1] + chin[1]) / 2, face_h])
    values = np.array(raw)
    k = max(1, int(fps)) | 1
    padded = np.pad(values, ((k // 2, k // 2), (0, 0)), mode="edge")
    smooth = np.stack([np.convolve(padded[:, c], np.ones(k) / k, mode="valid") for c in range(3)], 1)
    h = CROP_FACE_HEIGHTS * smooth[:, 2]
    w = h * aspect
    y0 = smooth[:, 1] - CROP_FACE_CENTRE_FROM_TOP * h
    x0 = smooth[:, 0] - w / 2
    return np.stack([x0, y0, x0 + w, y0 + h], 1)


def _crop(image: np.ndarray, box: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The box (may leave the image: edges are repeated) resized to ``size``."""
    x0, y0, x1, y1 = box
    scale = size[0] / (x1 - x0)
    matrix = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], dtype=np.float64)
    return cv2.warpAffine(image, matrix, size, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def prepare_clip(video: Path, face_model: Path, avatar_path: Path, size: tuple[int, int] = DEFAULT_SIZE) -> ClipData:
    """Track the clip, render the avatar per frame and crop the real frames (see the module docstring)."""
    from engine.avatar import load_avatar
    from engine.avatar.retarget import AvatarBinding
    from engine.capture.video import VideoFileSource
    from engine.packets import AvatarFrame
    from engine.perception.face_tracker import FaceTracker, FaceTrackerOptions
    from engine.render import AvatarRenderer, RenderOptions

    def frames():
        source = VideoFileSource(video, paced=False)
        source.open()
        try:
            yield source.info
            yield from iter(source.read, None)
        finally:
            source.close()

    stream = frames()
    info = next(stream)
    total = info.frame_count or 0
    faces, indices = [], []
    with FaceTracker(FaceTrackerOptions(model_path=face_model)) as tracker:
        for frame in stream:
            face = tracker.process(frame)
            if face.present and face.landmarks is not None:
                faces.append(face)
                indices.append(frame.index)
            _progress("tracking", frame.index + 1, max(total, frame.index + 1))
    if len(faces) < 10:
        raise AvatarcamError(f"Only {len(faces)} frames of '{video.name}' show a face.",
                             "Use a clip where your face is visible throughout, well lit and facing the camera.")
    boxes = _crop_boxes(faces, size[0] / size[1], (info.width, info.height), info.fps)
    avatar = load_avatar(avatar_path)
    binding = AvatarBinding(avatar)
    renders = np.empty((len(faces), size[1], size[0], 4), np.uint8)
    reals = np.empty((len(faces), size[1], size[0], 3), np.uint8)
    wanted = dict(zip(indices, range(len(faces))))
    with AvatarRenderer(avatar, RenderOptions(width=size[0], height=size[1], transparent=True)) as renderer:
        stream = frames()
        next(stream)
        for frame in stream:
            i = wanted.get(frame.index)
            if i is None:
                continue
            face = faces[i]
            state = AvatarFrame(t_capture=0.0, sequence=i, controls=face.blendshapes, head=face.head_rotation,
                                eyes=face.gaze)
            renders[i] = renderer.render_rgba(binding.pose(state))
            reals[i] = _crop(frame.image, boxes[i], size)
            _progress("rendering", i + 1, len(faces))
    times = np.asarray(indices, dtype=np.float64) / info.fps
    duration = (total or (indices[-1] + 1)) / info.fps
    return ClipData(renders=renders, reals=reals, times=times, duration=duration)


# --- the model -----------------------------------------------------------------------------------


def build_unet(width: int = 16, plate: np.ndarray | None = None):
    """A compact U-Net: 7 channels in (render RGBA + previous RGB), 3 levels, RGB out (sigmoid).

    ``plate`` (H x W x 3 uint8, the mean real frame): the output is the plate plus what the network
    adds (in logit space), and the last layer starts at zero, so training starts from the scene's
    average (background, light) and spends its steps on the person, not on learning the wall."""
    import torch
    from torch import nn

    def block(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.LeakyReLU(0.1),
                             nn.Conv2d(cout, cout, 3, padding=1), nn.LeakyReLU(0.1))

    class UNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            c = width
            self.enc1, self.enc2, self.enc3 = block(7, c), block(c, 2 * c), block(2 * c, 4 * c)
            self.mid = block(4 * c, 4 * c)
            self.up3, self.dec3 = nn.ConvTranspose2d(4 * c, 4 * c, 2, stride=2), block(8 * c, 2 * c)
            self.up2, self.dec2 = nn.ConvTranspose2d(2 * c, 2 * c, 2, stride=2), block(4 * c, c)
            self.up1, self.dec1 = nn.ConvTranspose2d(c, c, 2, stride=2), block(2 * c, c)
            self.out = nn.Conv2d(c, 3, 1)
            self.pool = nn.AvgPool2d(2)
            logit = torch.zeros(1, 3, 1, 1)
            if plate is not None:
                p = torch.from_numpy(plate).float().permute(2, 0, 1)[None].clamp(2, 253) / 255
                logit = torch.log(p / (1 - p))
                nn.init.zeros_(self.out.weight)
                nn.init.zeros_(self.out.bias)
            self.register_buffer("plate", logit)

        def forward(self, image: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
            e1 = self.enc1(torch.cat([image, previous], 1))
            e2 = self.enc2(self.pool(e1))
            e3 = self.enc3(self.pool(e2))
            m = self.mid(self.pool(e3))
            d3 = self.dec3(torch.cat([self.up3(m), e3], 1))
            d2 = self.dec2(torch.cat([self.up2(d3), e2], 1))
            d1 = self.dec1(torch.cat([self.up1(d2), e1], 1))
            return torch.sigmoid(self.out(d1) + self.plate)

    return UNet()


def _ssim_torch(a, b):
    import torch.nn.functional as F

    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = F.avg_pool2d(a, 7, 1, 3), F.avg_pool2d(b, 7, 1, 3)
    var_a = F.avg_pool2d(a * a, 7, 1, 3) - mu_a**2
    var_b = F.avg_pool2d(b * b, 7, 1, 3) - mu_b**2
    cov = F.avg_pool2d(a * b, 7, 1, 3) - mu_a * mu_b
    return (((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))).mean()


def train(data: ClipData, train_until: float, minutes: float, *, width: int = 16, batch: int = 8,
          threads: int = 0, seed: int = 0):
    """Train on frames before ``train_until`` seconds for ``minutes``; returns the model (eval mode)."""
    import torch
    import torch.nn.functional as F

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    usable = np.flatnonzero(data.times < train_until)
    # Consecutive triples (t-2, t-1, t) that are really consecutive frames of the clip.
    gaps = np.diff(data.times)
    step = float(np.median(gaps)) if len(gaps) else 1.0
    starts = [i for i in usable[2:] if data.times[i] - data.times[i - 2] < 2.5 * step]
    if len(starts) < batch:
        raise AvatarcamError("The training part of the clip is too short.", "Use a clip of at least 10 seconds.")
    renders = torch.from_numpy(data.renders).permute(0, 3, 1, 2)
    reals = torch.from_numpy(data.reals).permute(0, 3, 1, 2)
    plate = data.reals[usable].mean(axis=0).round().astype(np.uint8)
    model = build_unet(width, plate)
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    deadline = time.monotonic() + minutes * 60.0
    begin = time.monotonic()
    iteration, shown = 0, 0.0
    while time.monotonic() < deadline:
        t = torch.from_numpy(rng.choice(starts, batch))
        r1, r2 = (renders[t - 1].float() / 255, renders[t].float() / 255)
        g0, g1, g2 = (reals[t - 2].float() / 255, reals[t - 1].float() / 255, reals[t].float() / 255)
        degraded = F.avg_pool2d(g0, 3, 1, 1) + 0.03 * torch.randn_like(g0)  # not quite the truth
        o1 = model(r1, degraded.clamp(0, 1))
        o2 = model(r2, o1.detach())
        loss = sum(F.l1_loss(o, g) + 0.2 * (1 - _ssim_torch(o, g)) for o, g in ((o1, g1), (o2, g2)))
        loss = loss + 0.5 * F.l1_loss(o2 - o1, g2 - g1)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        iteration += 1
        elapsed = time.monotonic() - begin
        if elapsed - shown > 1.0:
            shown = elapsed
            _progress("training", int(elapsed), int(minutes * 60), f"step {iteration} loss {loss.item():.4f}")
    _progress("training", int(minutes * 60), int(minutes * 60), f"{iteration} steps")
    model.steps = iteration  # reported with the result
    return model.eval()


def export_onnx(model, out: Path, size: tuple[int, int]) -> Path:
    """The model as ONNX under the enhancement contract: inputs ``image`` (1x4xHxW) and ``previous``
    (1x3xHxW), output ``rgb`` (1x3xHxW), fixed size."""
    import torch

    image, previous = torch.zeros(1, 4, size[1], size[0]), torch.zeros(1, 3, size[1], size[0])
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, (image, previous), str(out), input_names=["image", "previous"], output_names=["rgb"],
                      opset_version=18, verbose=False, external_data=False)  # one self-contained file
    return out


# --- measuring -----------------------------------------------------------------------------------


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two RGB uint8 images (Gaussian window, sigma 1.5)."""
    x, y = a.astype(np.float64) / 255, b.astype(np.float64) / 255
    blur = lambda img: cv2.GaussianBlur(img, (11, 11), 1.5)  # noqa: E731
    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    return float((((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))).mean())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0**2 / max(mse, 1e-10))


def flicker(frames: np.ndarray, reals: np.ndarray) -> float:
    """Temporal error: mean |(out_t - out_t-1) - (real_t - real_t-1)| in 0..255 levels; 0 when the
    output changes exactly as the real video does."""
    out, real = np.diff(frames.astype(np.float64), axis=0), np.diff(reals.astype(np.float64), axis=0)
    return float(np.abs(out - real).mean())


def evaluate(model_path: Path, data: ClipData, test_from: float, report: Path | None = None) -> dict:
    """Run the exported model through the enhancement stage over the held-out frames and score it."""
    from engine.render.enhance import open_enhancer

    test = np.flatnonzero(data.times >= test_from)
    size = (data.renders.shape[2], data.renders.shape[1])
    enhancer = open_enhancer(model_path, size)
    enhanced = np.stack([enhancer.run(data.renders[i]) for i in test])
    raw = data.renders[test][..., :3]
    reals = data.reals[test]
    # The trivial baseline a model must beat: the mean real frame before the held-out part.
    average = data.reals[data.times < test_from].mean(axis=0).round().astype(np.uint8)
    result = {"test_frames": len(test), "test_from_s": round(test_from, 2),
              "psnr_enhanced": round(float(np.mean([psnr(e, r) for e, r in zip(enhanced, reals)])), 2),
              "psnr_render": round(float(np.mean([psnr(e, r) for e, r in zip(raw, reals)])), 2),
              "ssim_enhanced": round(float(np.mean([ssim(e, r) for e, r in zip(enhanced, reals)])), 4),
              "ssim_render": round(float(np.mean([ssim(e, r) for e, r in zip(raw, reals)])), 4),
              "psnr_mean_frame": round(float(np.mean([psnr(average, r) for r in reals])), 2),
              "ssim_mean_frame": round(float(np.mean([ssim(average, r) for r in reals])), 4),
              "flicker_enhanced": round(flicker(enhanced, reals), 2), "flicker_render": round(flicker(raw, reals), 2),
              "flicker_real_motion": round(float(np.abs(np.diff(reals.astype(np.float64), axis=0)).mean()), 2)}
    if report is not None:
        report.mkdir(parents=True, exist_ok=True)
        (report / "enhancer_eval.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
        for k, i in enumerate(np.linspace(0, len(test) - 1, 3).astype(int)):
            strip = np.concatenate([raw[i], enhanced[i], reals[i]], axis=1)  # render | enhanced | real
            cv2.imwrite(str(report / f"enhancer_test_{k}.png"), cv2.cvtColor(strip, cv2.COLOR_RGB2BGR))
    return result


def run(video: Path, out: Path, *, face_model: Path, avatar: Path, minutes: float, size: tuple[int, int],
        train_seconds: float | None, test_seconds: float, width: int, threads: int, report: Path | None,
        batch: int = 8) -> dict:
    """The whole command: prepare, train, export, and (with ``report``) evaluate on the held-out tail."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise AvatarcamError("Training needs PyTorch, which is not installed.",
                             "pip install 'avatarcam[train]' (or torch's CPU build first).") from None
    start = time.monotonic()
    data = prepare_clip(video, face_model, avatar, size)
    test_from = max(0.0, data.duration - test_seconds) if report is not None else data.duration
    train_until = min(test_from, train_seconds) if train_seconds else test_from
    model = train(data, train_until, minutes, width=width, batch=batch, threads=threads)
    export_onnx(model, out, size)
    result: dict = {"out": str(out), "frames": len(data.times), "train_until_s": round(train_until, 2),
                    "size": f"{size[0]}x{size[1]}", "minutes": minutes, "width": width, "batch": batch,
                    "steps": model.steps}
    if report is not None:
        result.update(evaluate(out, data, test_from, report))
    result["wall_s"] = round(time.monotonic() - start, 1)
    return result
