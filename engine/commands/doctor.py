"""``avatarcam doctor``: what works on this machine and what to do about what does not."""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = False  # the app cannot run without it


def _opengl() -> Check:
    from engine.render import create_context

    try:
        ctx = create_context()
    except Exception as exc:
        return Check("OpenGL", False, f"{exc}. Install Mesa: sudo apt install libegl1 libgl1-mesa-dri libgbm1", True)
    try:
        return Check("OpenGL", True, f"{ctx.info['GL_RENDERER']} (OpenGL {ctx.version_code / 100:.1f}, "
                                     f"MSAA up to {ctx.max_samples}x)", True)
    finally:
        ctx.release()


def _virtual_camera() -> Check:
    from engine.outputs.sinks import virtual_camera_status

    ok, message = virtual_camera_status()
    return Check("virtual camera", ok, message)


def _cameras() -> Check:
    from engine.capture.video import list_cameras

    cameras = list_cameras()
    if not cameras:
        return Check("cameras", False, "none found (the demo and video files still work)")
    return Check("cameras", True, ", ".join(f"{i}: {name}" for i, name in cameras))


def _microphones() -> Check:
    try:
        import sounddevice
    except OSError as exc:  # PortAudio missing
        return Check("microphones", False, f"PortAudio is missing ({exc}): sudo apt install libportaudio2")
    try:
        inputs = [d["name"] for d in sounddevice.query_devices() if d["max_input_channels"] > 0]
    except Exception as exc:
        return Check("microphones", False, f"cannot list audio devices ({exc})")
    return Check("microphones", bool(inputs), ", ".join(inputs) if inputs else "none found")


def _models() -> list[Check]:
    from engine.models import ModelManager

    manager = ModelManager()
    checks = []
    for status in manager.status():
        detail = str(status.path) if status.present else (
            f"not downloaded yet ({status.size >> 10} KiB, {status.licence}); fetched on first use, "
            f"or place it in {manager.data_dir}")
        checks.append(Check(f"model {status.name}", status.present, detail))
    return checks


def _onnx() -> Check:
    """The providers onnxruntime offers, and the one a model really starts on here (a GPU
    provider can be listed and still fail to load its CUDA libraries)."""
    import onnxruntime

    from engine.errors import ModelError
    from engine.onnx_session import create_session
    from engine.perception.face_emotion.classifier import FER_MODEL

    available = ", ".join(p.removesuffix("ExecutionProvider") for p in onnxruntime.get_available_providers())
    try:
        used = create_session(FER_MODEL, what="emotion model").get_providers()[0]
    except ModelError as exc:
        return Check("ONNX providers", False, f"available {available}; a model did not start: {exc}")
    return Check("ONNX providers", True, f"models run on {used.removesuffix('ExecutionProvider')} "
                                         f"(onnxruntime {onnxruntime.__version__} offers {available})")


def _flame() -> Check:
    from engine.avatar.loading.flame import WHERE_TO_GET

    return Check("FLAME heads", True, f"optional. {WHERE_TO_GET}")


def _avatar(path: Path) -> list[Check]:
    """How an avatar will be driven: its face rig, what it cannot show, whether its arms are lowered."""
    from engine.avatar import load_avatar
    from engine.avatar.retarget import AvatarBinding
    from engine.errors import AvatarcamError
    from engine.vocabulary.rigs import FaceRig

    try:
        avatar = load_avatar(path)
    except AvatarcamError as exc:
        return [Check("avatar", False, str(exc))]
    binding = AvatarBinding(avatar)
    kind = f"VRM {avatar.vrm.version}" if avatar.vrm is not None else "glTF"
    arms = "; T/A-pose arms lowered to rest" if binding.arms_relaxed else ""
    checks = [Check("avatar", True, f"{path.name}: {kind}, {avatar.triangle_count} triangles{arms}"),
              Check("avatar face rig", binding.rig != FaceRig.POSE_ONLY, binding.rig.value)]
    checks += [Check("avatar limit", False, line) for line in binding.limits]
    return checks


def run_checks(avatar: Path | None = None) -> list[Check]:
    """Every check; with ``avatar``, also how that avatar's face and body will be driven."""
    checks = [Check("python", True, f"{sys.version.split()[0]} on {platform.platform()}", True)]
    checks += [_opengl(), _onnx(), _virtual_camera(), _cameras(), _microphones(), *_models(), _flame()]
    if avatar is not None:
        checks += _avatar(avatar)
    return checks
