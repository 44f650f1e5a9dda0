"""The enhancement stage: an ONNX image-to-image model run on every rendered frame.

The model contract is in docs/ENHANCE.md. In short: input ``image`` is the render as
``1 x 4 x H x W`` float (RGB + alpha, 0..1; the alpha is the avatar's coverage); an optional input
``previous`` (``1 x 3 x H x W``) receives the stage's previous output, for temporally stable models;
the first output is ``1 x 3 x H' x W'`` RGB, 0..1. Sizes may be fixed or dynamic: a fixed-size model
gets the frame resized to its size and its output is resized back to the frame's.

The session comes from the shared factory (TensorRT, then CUDA, then the CPU). On a GPU the frame
goes in and out through onnxruntime's I/O binding (device buffers allocated once), and TensorRT
builds FP16 engines; a model saved in FP16 is fed FP16 on any provider.

Enhancement is optional and never fatal: ``open_enhancer`` raises ``ModelError`` with one line for a
missing or unusable model (the session then runs unenhanced and says why), and a model that fails
while running is switched off for the rest of the run, its reason kept in ``status``.
"""

from __future__ import annotations

import logging
import time
from enum import StrEnum
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from engine.errors import ModelError
from engine.onnx_session import GPU_PROVIDERS, create_session, providers

log = logging.getLogger(__name__)

IMAGE_INPUT = "image"
PREVIOUS_INPUT = "previous"
_FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


class Accelerator(StrEnum):
    """Where the enhancement model should run."""

    AUTO = "auto"  # the GPU when one works, else the CPU
    GPU = "gpu"  # asked for the GPU: falling back to the CPU is reported in the status
    CPU = "cpu"


class Enhancer:
    """One opened enhancement model. Not thread-safe: the render thread owns it."""

    def __init__(self, session: Any, path: Path, status: str) -> None:
        self.path = path
        self.status = status
        self.failed = False
        self._session = session
        inputs = {i.name: i for i in session.get_inputs()}
        self._image = inputs[IMAGE_INPUT]
        self._dtype = _FLOAT_TYPES[self._image.type]
        self._previous = inputs.get(PREVIOUS_INPUT)
        self._output = session.get_outputs()[0].name
        shape = self._image.shape
        # Fixed spatial size: ints in the model's shape; dynamic axes come as names or None.
        self.model_size = (shape[3], shape[2]) if isinstance(shape[2], int) and isinstance(shape[3], int) else None
        self.providers: list[str] = list(session.get_providers())
        self._device = "cuda" if self.providers[0] in GPU_PROVIDERS else "cpu"
        self._binding = session.io_binding()
        self._buffers: dict[str, Any] = {}
        self._last: np.ndarray | None = None  # the previous output, model layout

    @property
    def on_gpu(self) -> bool:
        return self._device == "cuda"

    def _bind(self, name: str, array: np.ndarray) -> None:
        """Bind ``array`` as input ``name``. On a GPU the device buffer is allocated once and updated
        in place each frame; on the CPU onnxruntime reads the numpy array directly."""
        if self._device == "cpu":
            self._binding.bind_cpu_input(name, array)
            return
        import onnxruntime as ort

        buffer = self._buffers.get(name)
        if buffer is None or tuple(buffer.shape()) != array.shape:
            buffer = self._buffers[name] = ort.OrtValue.ortvalue_from_numpy(array, "cuda", 0)
            self._binding.bind_ortvalue_input(name, buffer)
        else:
            buffer.update_inplace(array)

    def run(self, rgba: np.ndarray) -> np.ndarray:
        """Enhance one ``H x W x 4`` uint8 RGBA frame into an ``H x W x 3`` uint8 RGB frame.
        Raises whatever onnxruntime raises; ``apply`` is the never-failing form."""
        height, width = rgba.shape[:2]
        frame = rgba if self.model_size is None else cv2.resize(rgba, self.model_size, interpolation=cv2.INTER_AREA)
        tensor = np.empty((1, 4, *frame.shape[:2]), dtype=self._dtype)
        np.multiply(frame.transpose(2, 0, 1), np.float32(1.0 / 255.0), out=tensor[0], casting="unsafe")
        self._bind(IMAGE_INPUT, tensor)
        if self._previous is not None:
            if self._last is None or self._last.shape[2:] != tensor.shape[2:]:
                self._last = np.ascontiguousarray(tensor[:, :3])  # first frame: the render itself
            self._bind(PREVIOUS_INPUT, self._last)
        self._binding.bind_output(self._output, self._device)
        self._session.run_with_iobinding(self._binding)
        out = self._binding.copy_outputs_to_cpu()[0]
        if self._previous is not None:
            self._last = np.ascontiguousarray(out.astype(self._dtype))
        rgb = out[0].transpose(1, 2, 0).astype(np.float32) * np.float32(255.0)
        image = np.clip(rgb, 0.0, 255.0, out=rgb).round(out=rgb).astype(np.uint8)
        if image.shape[:2] != (height, width):
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
        return np.ascontiguousarray(image)

    def apply(self, rgba: np.ndarray) -> tuple[np.ndarray, float]:
        """``run``, timed (ms); after a failure the plain render (RGB) is returned for the rest of the
        run and ``status`` says why. Never raises for a model error."""
        if not self.failed:
            start = time.perf_counter()
            try:
                return self.run(rgba), (time.perf_counter() - start) * 1000.0
            except Exception as exc:  # onnxruntime raises its own exception types per provider
                self.failed = True
                self.status = f"enhancement off: the model failed while running ({_first_line(exc)})"
                log.warning(self.status)
        return np.ascontiguousarray(rgba[..., :3]), 0.0


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def open_enhancer(path: Path, size: tuple[int, int], accelerator: Accelerator = Accelerator.AUTO) -> Enhancer:
    """Open the model at ``path`` for frames of ``size`` (width, height) and run it once (the first
    run allocates and, with TensorRT, builds the engine: not a missed frame later).

    Raises ``ModelError`` (one line with a way out) when the file is missing, is not an ONNX model,
    or does not meet the contract."""
    path = Path(path)
    gpu = accelerator is not Accelerator.CPU
    hint = "See docs/ENHANCE.md for the model contract, or run without --enhance."
    if not path.is_file():
        raise ModelError(f"The enhancement model '{path}' does not exist.", "Check the path, or run without --enhance.")
    try:
        session = create_session(path, threads=1, what="enhancement model", gpu=gpu, fp16=True)
    except ModelError as exc:  # the factory's hint is about downloaded models; this one is the user's
        raise ModelError(f"The enhancement model '{path.name}' is not a usable ONNX file "
                         f"({_first_line(exc.__cause__ or exc)}).", hint) from exc
    inputs = {i.name: i for i in session.get_inputs()}
    image = inputs.get(IMAGE_INPUT)
    if image is None or image.type not in _FLOAT_TYPES or len(image.shape) != 4 or image.shape[1] not in (4, "C", None):
        raise ModelError(f"The enhancement model '{path.name}' has no input 'image' of shape 1x4xHxW (float).", hint)
    used = session.get_providers()
    status = f"enhancement: {path.name} on {used[0].removesuffix('ExecutionProvider')}"
    if gpu and used[0] not in GPU_PROVIDERS:
        offered = [p for p in providers() if p in GPU_PROVIDERS]
        reason = "CUDA/TensorRT could not start" if offered else "no NVIDIA GPU with CUDA found"
        status += f" ({reason})" if accelerator is Accelerator.GPU else ""
    enhancer = Enhancer(session, path, status)
    try:
        warm = np.zeros((size[1], size[0], 4), dtype=np.uint8)
        out = enhancer.run(warm)
    except Exception as exc:
        raise ModelError(f"The enhancement model '{path.name}' does not run on a {size[0]}x{size[1]} frame "
                         f"({_first_line(exc)}).", hint) from exc
    if out.ndim != 3 or out.shape[2] != 3:
        raise ModelError(f"The enhancement model '{path.name}' does not output RGB (1x3xHxW).", hint)
    enhancer._last = None  # the warm-up frame is not part of the video
    log.info("%s (output %s)", status, out.shape)
    return enhancer
