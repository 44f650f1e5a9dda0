"""The enhancement stage: a model after render changes the picture, keeps the rate, and never stops
a run when the model or the GPU is missing."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper, save

import engine.onnx_session as onnx_session
from engine.errors import ModelError
from engine.packets import RenderedFrame
from engine.render.enhance import Accelerator, open_enhancer
from engine.session import SessionHooks, SessionSpec, SourceKind, build_session

SIZE = (640, 360)


def channel_swap_model(path: Path, *, previous: bool = False, size: tuple[int, int] | None = None) -> Path:
    """A 1x1 convolution from RGBA to BGR (alpha ignored). With ``previous``, the model also takes the
    last output and returns the mean of the swap and it. ``size``: a fixed (width, height)."""
    weights = np.zeros((3, 4, 1, 1), np.float32)
    weights[0, 2] = weights[1, 1] = weights[2, 0] = 1.0
    h, w = ("h", "w") if size is None else (size[1], size[0])
    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 4, h, w])]
    nodes = [helper.make_node("Conv", ["image", "weights"], ["swapped" if previous else "rgb"])]
    initializers = [numpy_helper.from_array(weights, "weights")]
    if previous:
        inputs.append(helper.make_tensor_value_info("previous", TensorProto.FLOAT, [1, 3, h, w]))
        initializers.append(numpy_helper.from_array(np.array(0.5, np.float32), "half"))
        nodes += [helper.make_node("Add", ["swapped", "previous"], ["sum"]),
                  helper.make_node("Mul", ["sum", "half"], ["rgb"])]
    graph = helper.make_graph(nodes, "swap", inputs, [helper.make_tensor_value_info("rgb", TensorProto.FLOAT, [1, 3, h, w])],
                              initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    save(model, str(path))
    return path


def rgba(r: int, g: int, b: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    image = np.empty((size[1], size[0], 4), np.uint8)
    image[...] = (r, g, b, 255)
    return image


def test_a_model_changes_the_frame_as_it_says(tmp_path):
    enhancer = open_enhancer(channel_swap_model(tmp_path / "swap.onnx"), SIZE)
    out = enhancer.run(rgba(200, 100, 10))
    assert out.shape == (SIZE[1], SIZE[0], 3) and out.dtype == np.uint8
    assert tuple(out[0, 0]) == (10, 100, 200)
    assert "CPU" in enhancer.status and not enhancer.on_gpu


def test_a_fixed_size_model_is_resized_to_and_from_the_frame(tmp_path):
    enhancer = open_enhancer(channel_swap_model(tmp_path / "fixed.onnx", size=(128, 72)), SIZE)
    assert enhancer.model_size == (128, 72)
    out = enhancer.run(rgba(200, 100, 10))
    assert out.shape == (SIZE[1], SIZE[0], 3) and tuple(out[100, 100]) == (10, 100, 200)


def test_the_previous_output_is_fed_back(tmp_path):
    enhancer = open_enhancer(channel_swap_model(tmp_path / "temporal.onnx", previous=True), SIZE)
    first = enhancer.run(rgba(200, 0, 0))  # previous = the render itself: (swap + render) / 2
    assert tuple(first[0, 0]) == (100, 0, 100)
    second = enhancer.run(rgba(200, 0, 0))  # previous = the first output
    assert tuple(second[0, 0]) == (50, 0, 150)


def test_asking_for_the_gpu_without_one_runs_on_the_cpu_and_says_so(tmp_path, monkeypatch):
    model = channel_swap_model(tmp_path / "swap.onnx")
    monkeypatch.setattr(onnx_session, "nvidia_gpu_present", lambda: False)
    enhancer = open_enhancer(model, SIZE, Accelerator.GPU)
    assert enhancer.providers == ["CPUExecutionProvider"]
    assert "no NVIDIA GPU" in enhancer.status
    # A driver that claims a GPU while CUDA cannot load (onnxruntime-gpu on this machine): the
    # factory offers CUDA, onnxruntime falls back, and the status tells it apart.
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        monkeypatch.setattr(onnx_session, "nvidia_gpu_present", lambda: True)
        enhancer = open_enhancer(model, SIZE, Accelerator.GPU)
        if not enhancer.on_gpu:
            assert "could not start" in enhancer.status
    assert tuple(enhancer.run(rgba(1, 2, 3))[0, 0]) == (3, 2, 1)


@pytest.mark.parametrize("content", [None, b"not an onnx model", "wrong contract"])
def test_a_missing_or_unusable_model_is_one_error_with_a_way_out(tmp_path, content):
    path = tmp_path / "model.onnx"
    if content == "wrong contract":
        graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "id",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 8
        save(model, str(path))
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelError) as error:
        open_enhancer(path, SIZE)
    assert "\n" not in str(error.value) and error.value.hint


WARMUP_FRAMES = 15  # not counted: the first frames pay for allocations and thread start-up


def _run_demo(spec: SessionSpec, frames: int) -> tuple[list[RenderedFrame], object, list[str]]:
    """Run the demo until ``frames`` frames after a warm-up went out; the frames, stats and notes."""
    seen: list[RenderedFrame] = []
    warm, enough = threading.Event(), threading.Event()

    def keep(frame: RenderedFrame) -> None:
        seen.append(frame)
        if len(seen) >= WARMUP_FRAMES:
            warm.set()
        if len(seen) >= WARMUP_FRAMES + frames:
            enough.set()

    session = build_session(spec, SessionHooks(on_frame=keep))
    with session:
        assert warm.wait(60.0), "the session produced frames"
        session.reset_stats()
        assert enough.wait(60.0), "the session kept producing frames"
        stats = session.stats()
    assert session.error is None
    return seen, stats, session.notes


def test_the_session_enhances_every_frame_and_keeps_the_rate(tmp_path):
    base = SessionSpec(source=SourceKind.DEMO, size=SIZE, fps=30.0, sinks=("null",), background=(0.8, 0.4, 0.1))
    plain, plain_stats, _ = _run_demo(base, 90)
    model = channel_swap_model(tmp_path / "swap.onnx")
    frames, stats, notes = _run_demo(replace(base, enhance=model), 90)
    corner_plain, corner = plain[-1].image[2, 2], frames[-1].image[2, 2]
    assert tuple(corner) == tuple(corner_plain[::-1]), "the background's red and blue are swapped"
    assert frames[-1].image.shape == (SIZE[1], SIZE[0], 3)
    assert stats.enhance_ms_p50 is not None and stats.enhance_status and "swap.onnx" in stats.enhance_status
    assert not notes
    # The rate is measured by `bench --enhance` (docs/PERFORMANCE.md); here only that the stage
    # does not starve the output: few more missed ticks than the same run unenhanced (on a shared
    # machine both miss ticks; the plain run is the yardstick measured under the same load).
    missed = stats.frames_missed / (stats.frames_out + stats.frames_missed)
    plain_missed = plain_stats.frames_missed / (plain_stats.frames_out + plain_stats.frames_missed)
    assert missed <= plain_missed + 0.2, (missed, plain_missed)


def test_a_missing_model_leaves_the_run_going_unenhanced(tmp_path):
    spec = SessionSpec(source=SourceKind.DEMO, size=(320, 180), fps=30.0, sinks=("null",),
                       enhance=tmp_path / "absent.onnx")
    frames, stats, notes = _run_demo(spec, 5)
    assert len(notes) == 1 and "enhancement off" in notes[0] and "absent.onnx" in notes[0]
    assert stats.enhance_status == notes[0] and stats.enhance_ms_p50 is None
    assert frames[-1].image.shape == (180, 320, 3)


def test_a_model_failing_mid_run_is_switched_off_once(tmp_path):
    enhancer = open_enhancer(channel_swap_model(tmp_path / "swap.onnx"), SIZE)
    broken = rgba(1, 2, 3)[..., :2]  # two channels: onnxruntime rejects the shape
    image, ms = enhancer.apply(broken)
    assert enhancer.failed and ms == 0.0 and "enhancement off" in enhancer.status
    image, ms = enhancer.apply(rgba(1, 2, 3))
    assert tuple(image[0, 0]) == (1, 2, 3) and ms == 0.0  # the plain render from now on


def test_bench_models_times_each_model_on_the_provider_in_use(tmp_path):
    from engine.commands.bench import time_models

    result = time_models(channel_swap_model(tmp_path / "swap.onnx"), runs=3, size=(64, 36))
    for name in ("fer", "lipsync", "enhance"):
        assert result[f"model_{name}_provider"] == "CPU"  # no GPU on the test machines
        assert 0 < result[f"model_{name}_ms_p50"] <= result[f"model_{name}_ms_p95"]
