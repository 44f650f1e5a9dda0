"""One way to open an ONNX model: TensorRT, then CUDA, then CPU, whichever really works here.

onnxruntime-gpu lists the TensorRT and CUDA providers even on machines without an NVIDIA GPU, then
prints load errors and falls back. They are offered only when an NVIDIA device is present, so a
CPU-only machine starts quietly; ``session.get_providers()`` tells what was used.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from engine.errors import ModelError
from engine.privacy import keep_everything_local

log = logging.getLogger(__name__)
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


def nvidia_gpu_present() -> bool:
    """True when the NVIDIA driver exposes a device (Linux: /dev/nvidia0; Windows: nvml.dll)."""
    if sys.platform.startswith("linux"):
        return os.path.exists("/dev/nvidia0") or os.path.exists("/proc/driver/nvidia/version")
    if sys.platform == "win32":
        return os.path.exists(os.path.join(os.environ.get("SystemRoot", r"C:\Windows"), "System32", "nvml.dll"))
    return False


def providers() -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    wanted = [p for p in GPU_PROVIDERS if p in available] if nvidia_gpu_present() else []
    return wanted + ["CPUExecutionProvider"]


def _with_options(names: list[str], fp16: bool) -> list[str | tuple[str, dict[str, str]]]:
    """Provider options: TensorRT builds FP16 engines when ``fp16`` (image models lose nothing
    visible) and caches them, so only the first run on a machine pays the build (minutes)."""
    if not fp16 or "TensorrtExecutionProvider" not in names:
        return list(names)
    import platformdirs

    cache = Path(platformdirs.user_cache_dir("avatarcam")) / "tensorrt"
    cache.mkdir(parents=True, exist_ok=True)
    trt = {"trt_fp16_enable": "True", "trt_engine_cache_enable": "True", "trt_engine_cache_path": str(cache)}
    return [(n, trt) if n == "TensorrtExecutionProvider" else n for n in names]


def create_session(model_path: Path, *, threads: int = 1, what: str = "model", gpu: bool = True, fp16: bool = False):
    """An InferenceSession on the best working provider (the CPU only with ``gpu=False``: tiny
    streaming models cost more in transfers than they gain). ``fp16``: TensorRT may compute in
    half precision. Raises ``ModelError`` for a bad file."""
    keep_everything_local()  # before onnxruntime initialises: its telemetry switch is read only then
    import onnxruntime as ort

    if not Path(model_path).is_file():
        raise ModelError(f"The {what} '{model_path}' is missing.", "Reinstall avatarcam, or let it download the model again.")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads  # small models: threads cost more than they save
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: ORT's warnings are not the user's business
    try:
        session = ort.InferenceSession(str(model_path), options,
                                       providers=_with_options(providers(), fp16) if gpu else ["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelError(f"The {what} '{model_path}' could not be loaded ({exc}).",
                         "Delete it and let avatarcam download it again, or reinstall.") from exc
    log.info("%s runs on %s", Path(model_path).name, ", ".join(session.get_providers()))
    return session
