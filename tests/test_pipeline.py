"""The live pipeline end to end: frames reach the outputs, the avatar follows the face, stop is fast."""

from __future__ import annotations

import json
import threading
import time

import av
import numpy as np
import pyvirtualcam
from conftest import shared_file
from fakes import FakeBackend, FakeCameraFaces, JitteryCameraFaces

from engine.avatar import load_avatar
from engine.avatar.retarget import AvatarBinding
from engine.capture.demo import DemoSource
from engine.capture.video import ImageSource, VideoFileSource
from engine.outputs.sinks import NullSink, VideoFileSink, VirtualCameraSink
from engine.packets import AvatarFrame, RenderedFrame
from engine.render import AvatarRenderer, RenderOptions
from engine.runtime.pipeline import Pipeline, PipelineOptions

SIZE = (640, 360)


def run_to_end(pipeline: Pipeline, timeout: float = 60.0) -> dict:
    pipeline.start()
    finished = pipeline.wait(timeout)
    pipeline.stop()
    assert finished, "the pipeline did not finish"
    assert pipeline.error is None, pipeline.error
    return pipeline.stats()


def test_video_run_delivers_frames_to_the_virtual_camera(backends, face_model, default_avatar_path):
    pyvirtualcam.register_backend("fake", FakeBackend)
    clip = shared_file("media/expressions_d0.mp4")  # 78 frames at 25 fps: 3.12 s
    sink = VirtualCameraSink(backend="fake")
    options = PipelineOptions(size=SIZE, fps=30.0, avatar=default_avatar_path, face_model=face_model)
    stats = run_to_end(Pipeline(VideoFileSource(clip, paced=True), [sink], options))

    camera = FakeBackend.instances[0]
    assert (camera.width, camera.height, camera.fmt) == (640, 360, "raw ")  # pyvirtualcam's RGB24 fourcc
    assert camera.closed == 1
    assert len(camera.frames) == stats.frames_out
    assert all(f.size == 360 * 640 * 3 and f.dtype == np.uint8 for f in camera.frames)  # backends get flat RGB
    last = camera.frames[-1].reshape(360, 640, 3)
    assert np.abs(last.astype(int) - last[0, 0]).max(axis=2).mean() > 0.05 * 255 / 10, "the avatar is in the picture"
    # A paced 3.12 s clip at a 30 fps output: at least 94 frames, plus the idle frames sent while
    # the tracker starts (the virtual camera never waits), all at the output rate.
    assert stats.frames_out >= 90, stats
    assert 29.0 <= stats.fps_out <= 31.0, stats
    assert stats.frames_fresh >= 70, "nearly every camera frame is tracked and shown"
    # The clock never skips a tick by itself; on a loaded 2-core machine the OS can still delay
    # one past 1.5 periods. The benchmark holds the strict bar (0 missed) on a quiet machine.
    assert stats.frames_missed <= 2, stats


def test_a_jittery_camera_keeps_the_output_rate(default_avatar_path):
    """Frame times wandering +-8 ms (results 17 to 50 ms apart): the output stays at its rate and
    shows the results (the clock's timing itself is tested exactly in tests/test_output_clock.py)."""
    source = JitteryCameraFaces(fps=30.0, jitter_s=0.008, frames=120, seed=7)
    stats = run_to_end(Pipeline(source, [NullSink()], PipelineOptions(size=(320, 180), avatar=default_avatar_path)))
    assert 29.0 <= stats.fps_out <= 31.0, stats
    assert 28.5 <= stats.source_fps <= 31.5, stats
    assert stats.frames_fresh >= 108, "nearly every camera frame is shown"
    assert stats.frames_missed <= 2, stats  # as above: 0 by the clock; a loaded machine may delay one


def test_file_sink_holds_every_output_frame(tmp_path, default_avatar_path):
    out = tmp_path / "demo.mp4"
    options = PipelineOptions(size=(321, 241), fps=30.0, avatar=default_avatar_path)  # odd size: padded
    sink = VideoFileSink(out)
    stats = run_to_end(Pipeline(DemoSource(fps=30.0, seconds=1.5), [sink], options))
    with av.open(str(out)) as container:
        frames = [f for f in container.decode(video=0)]
    # every output frame, plus the previous one again for each slot a loaded machine missed
    assert len(frames) == stats.frames_out + sink.frames_repeated
    assert stats.frames_out >= 40
    assert (frames[0].width, frames[0].height) == (322, 242)


def test_stop_releases_the_camera_within_200_ms(default_avatar_path):
    source = FakeCameraFaces(fps=30.0)
    first = threading.Event()
    pipeline = Pipeline(source, [NullSink()], PipelineOptions(size=SIZE, avatar=default_avatar_path),
                        on_frame=lambda frame: first.set())
    pipeline.start()
    assert first.wait(10.0)
    start = time.monotonic()
    pipeline.stop()
    assert source.released.is_set()
    assert time.monotonic() - start < 0.2
    assert not pipeline.running
    pipeline.stop()  # idempotent


def test_stop_closes_a_video_file_and_all_threads(face_model, default_avatar_path):
    source = VideoFileSource(shared_file("media/talking_d6.mp4"), paced=True)
    first = threading.Event()
    pipeline = Pipeline(source, [NullSink()], PipelineOptions(size=SIZE, avatar=default_avatar_path, face_model=face_model),
                        on_frame=lambda frame: first.set())
    pipeline.start()
    assert first.wait(10.0)
    pipeline.stop()
    assert source.read() is None
    assert not any(t.is_alive() for t in threading.enumerate() if t.name.startswith("avatarcam-"))


def test_still_image_gives_a_still_avatar(tmp_path, face_model, default_avatar_path):
    record = tmp_path / "controls.jsonl"
    source = ImageSource(shared_file("media/portrait_s0.jpg"), fps=30.0, seconds=10.0)
    options = PipelineOptions(size=(320, 180), avatar=default_avatar_path, face_model=face_model, record_controls=record)
    run_to_end(Pipeline(source, [NullSink()], options))
    rows = [json.loads(line) for line in record.read_text().splitlines()]
    fresh = [r for r in rows if r["fresh"] and r["t"] - rows[0]["t"] > 1.0]  # after the 0.3 s ease-in
    assert len(fresh) > 200
    controls = np.array([list(r["controls"].values()) for r in fresh])
    head = np.array([np.add(r["head"], r["neck"]) for r in fresh])
    eyes = np.array([r["eyes"] for r in fresh])
    assert np.diff(controls, axis=0).std(axis=0).max() <= 0.005
    assert np.diff(head, axis=0).std(axis=0).max() <= 0.1
    assert np.diff(eyes, axis=0).std(axis=0).max() <= 0.1


def mouth_region(avatar_path) -> tuple[slice, slice]:
    """Where jawOpen changes the default avatar's image at the test size (from two renders)."""
    avatar = load_avatar(avatar_path)
    binding = AvatarBinding(avatar)
    with AvatarRenderer(avatar, RenderOptions(width=SIZE[0], height=SIZE[1])) as renderer:
        closed = renderer.render(binding.pose(AvatarFrame(0.0, 0, {"jawOpen": 0.0})))
        opened = renderer.render(binding.pose(AvatarFrame(0.0, 0, {"jawOpen": 1.0})))
    ys, xs = np.nonzero(np.abs(opened.astype(int) - closed).max(axis=2) > 30)
    assert len(ys) > 200, "jawOpen visibly changes the default avatar"
    return slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1)


def test_opening_mouth_in_the_clip_opens_the_avatars_mouth(face_model, default_avatar_path):
    rows, cols = mouth_region(default_avatar_path)
    crops: list[tuple[float, np.ndarray]] = []

    def keep(frame: RenderedFrame) -> None:
        if frame.fresh:
            crops.append((frame.state.controls["jawOpen"], frame.image[rows, cols].astype(np.int16)))

    source = VideoFileSource(shared_file("media/expressions_d10.mp4"), paced=True)
    options = PipelineOptions(size=SIZE, avatar=default_avatar_path, face_model=face_model)
    pipeline = Pipeline(source, [NullSink()], options, on_frame=keep)
    pipeline.start()
    deadline = time.monotonic() + 30
    while len(crops) < 115 and time.monotonic() < deadline and not pipeline.wait(0.05):
        pass  # collect the first ~4.6 s: closed, half-open and the wide-open mouth around frame 95-100
    pipeline.stop()
    jaw = np.array([j for j, _ in crops])
    assert jaw.min() < 0.1 and jaw.max() > 0.6, "the tracked mouth opens and closes in the clip"
    reference = crops[int(np.argmin(jaw))][1]
    change = np.array([np.abs(c - reference).mean() for _, c in crops])
    assert np.corrcoef(jaw, change)[0, 1] > 0.6, "the avatar's mouth region changes with jawOpen"
