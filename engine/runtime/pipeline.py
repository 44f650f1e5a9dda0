"""The live pipeline: source -> face tracking -> animation -> render -> sinks, one thread per stage.

Threads (DESIGN.md): a capture thread reads the source; a tracking thread runs MediaPipe on the
newest frame (a frame nobody took in time is dropped and counted, never queued); the render thread
owns the OpenGL context, animates, renders and hands frames to the sinks.

Output clock (engine/runtime/output_clock.py): a fresh perception result is rendered the moment
it exists, whatever the camera's rate (15, 24, 25, 30, 60 fps or jittery), and the gaps between
results are filled on schedule with the newest, still-animating state, so the virtual camera gets
the output rate, never starves and never gets two frames closer than half a period. The clock's
grid is re-phased to the arrivals within a bound that keeps the long-run rate exact. A filler is
drawn only where its render is over before the next camera frame is tracked; otherwise (24/25 fps
cameras) the last frame is sent again, unless a voice frame or a new look waits to be shown. A camera
faster than the output is tracked at the output rate (``TrackingGate``).
``start`` and ``stop`` are idempotent; ``stop`` closes the source first, releasing the camera at
once, then winds the other threads down.
"""

from __future__ import annotations

import gc
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from engine.animation.animator import Animator, AnimatorOptions
from engine.avatar import Avatar, load_avatar
from engine.avatar.retarget import AvatarBinding
from engine.avatar.spring_bone import SpringBoneRig
from engine.calibration import Calibration
from engine.capture.audio import AudioChunk
from engine.capture.resample import RATE
from engine.errors import AvatarcamError, SinkError
from engine.output_format import DEFAULT_FPS, DEFAULT_SIZE
from engine.outputs.hub import DataOutputs
from engine.packets import AvatarFrame, FaceFrame, RenderedFrame, VideoFrame, VoiceFrame
from engine.paths import DEFAULT_AVATAR
from engine.perception.face_tracker import FaceTracker, FaceTrackerOptions
from engine.render import AvatarRenderer, RenderOptions
from engine.render.enhance import Enhancer
from engine.runtime.emotion_worker import EmotionStage
from engine.runtime.frame import animate_and_render
from engine.runtime.memory import release_periodically
from engine.runtime.output_clock import OutputClock, TrackingGate
from engine.runtime.resolution import ResolutionGovernor
from engine.runtime.slots import NewestSlot
from engine.runtime.stats import Stats
from engine.runtime.telemetry import Telemetry
from engine.stages import Sink, SoundSink, Source, SourceCaps
from engine.vocabulary.framing import Framing

log = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0
_RENDER_DEFAULTS = RenderOptions()


@dataclass(frozen=True, slots=True)
class PipelineOptions:
    """Output format, avatar and tuning. ``face_model`` is required for image/video/camera sources."""

    size: tuple[int, int] = DEFAULT_SIZE
    fps: float = DEFAULT_FPS
    avatar: Path = DEFAULT_AVATAR
    background: tuple[float, float, float] = _RENDER_DEFAULTS.background
    msaa: int = _RENDER_DEFAULTS.msaa
    framing: Framing = Framing.HEAD_AND_SHOULDERS
    face_model: Path | None = None
    record_controls: Path | None = None
    animator: AnimatorOptions = field(default_factory=AnimatorOptions)
    emotion: bool = False  # emotion analysis: off until the user consents
    expressiveness: float = 1.0  # the emotion layer's strength (0 = pure mirror)

    def render_options(self, transparent: bool = False) -> RenderOptions:
        """The renderer's options for this output (the live loop's and the offline renderer's)."""
        return RenderOptions(width=self.size[0], height=self.size[1], background=self.background, msaa=self.msaa,
                             framing=self.framing, transparent=transparent)


class Pipeline:
    """Runs one source through tracking, animation and rendering into sinks.

    ``on_frame(RenderedFrame)`` is called on the render thread for every output frame and must
    return quickly (the GUI preview copies a reference and returns). Errors that stop the pipeline
    are kept in ``error``; a sink that fails while running is dropped and its message kept in
    ``sink_errors`` while the other outputs go on.

    ``on_face(FaceFrame)`` is called (tracking or capture thread) for every perception result, raw,
    before calibration (the GUI's calibration wizard collects them). ``on_source(is_open)`` is
    called whenever the source (the camera) is opened or released, also when it fails or ends;
    ``source_open`` says the same at any time (the GUI's recording indicator follows it).
    ``set_calibration`` applies a new calibration to the running animation stage. ``on_video``
    gets each captured ``VideoFrame`` (capture thread; the GUI's camera self-view keeps the newest).
    """

    def __init__(self, source: Source, sinks: list[Sink], options: PipelineOptions | None = None, *,
                 telemetry: Telemetry | None = None,
                 on_frame: Callable[[RenderedFrame], None] | None = None,
                 on_face: Callable[[FaceFrame], None] | None = None,
                 on_source: Callable[[bool], None] | None = None,
                 on_video: Callable[[VideoFrame], None] | None = None,
                 voice=None, outputs: DataOutputs | None = None, enhancer: Enhancer | None = None,
                 enhance_status: str | None = None) -> None:
        self.source = source
        # The enhancement model after render (engine/render/enhance.py), or None; its status line
        # (or why it is off) is reported in ``stats().enhance_status``.
        self.enhancer = enhancer
        self.enhance_status = enhance_status
        # Data streams (WebSocket, VMC) get every animation state and the fused emotion.
        self.outputs = outputs
        # Voice (engine/perception/voice): a VoiceStage run in its own thread; its newest VoiceFrame reaches
        # the animator each output frame. Failing to open it is reported, never fatal to the video.
        self.voice = voice
        self.voice_error: str | None = None
        self._voices: NewestSlot = NewestSlot()
        self.sinks = list(sinks)
        self.options = options or PipelineOptions()
        self.telemetry = telemetry or Telemetry()
        self.emotion = EmotionStage(self.options.emotion, self.options.expressiveness,
                                    on_timing=lambda ms: self.telemetry.record("emotion", ms))
        self.on_frame = on_frame
        self.on_face = on_face
        self.on_source = on_source
        self.on_video = on_video
        self.source_open = False
        self._source_lock = threading.Lock()
        self._calibration: Calibration | None = None  # handed to the render thread's animator
        self._new_look: dict[str, object] = {}  # avatar / background the render thread swaps in
        self._binding: AvatarBinding | None = None  # the render thread's retargeting to the avatar
        self._springs: SpringBoneRig | None = None  # the avatar's hair and accessories, stepped per frame
        self.error: BaseException | None = None
        self.sink_errors: list[str] = []
        self.gl_renderer = ""
        self._faces_direct = not (source.caps & SourceCaps.VIDEO)  # faces come ready, or nothing to track
        self._video: NewestSlot[VideoFrame] = NewestSlot()
        self._faces: NewestSlot[FaceFrame] = NewestSlot()
        self._gate = TrackingGate(self.options.fps)  # a camera faster than the output: track what is shown
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._finished = threading.Event()
        self._threads: list[threading.Thread] = []
        self._tracker: FaceTracker | None = None
        self._lock = threading.Lock()
        self._started = False
        self._stopped = False

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Open everything and start the threads; raises ``AvatarcamError`` if anything fails to open."""
        with self._lock:
            if self._started:
                return
            self._started = True
        try:
            if self.outputs is not None:
                self.outputs.start()
            self.source.open()
            self._source_state(True)
            if not self._faces_direct:
                if self.options.face_model is None:
                    raise AvatarcamError("No face model was given to the pipeline.",
                                         "Resolve it with engine.models.ModelManager().ensure('face_landmarker').")
                self._tracker = FaceTracker(FaceTrackerOptions(model_path=self.options.face_model))
            self._spawn("render", self._render_loop)
            if not self._ready.wait(START_TIMEOUT_S):
                raise AvatarcamError("The renderer did not start in time.", "Run 'avatarcam doctor' to check OpenGL.")
            if self.error is not None:
                raise self.error
            # A full garbage collection walks every live object (tens of ms with a big app loaded)
            # and would stall the render thread; park the long-lived objects (models, avatar, UI)
            # where later collections skip them. Collect first only on the main thread: a GUI may
            # start pipelines from a worker, and garbage holding Qt objects must die on its own thread.
            if threading.current_thread() is threading.main_thread():
                gc.collect()
            gc.freeze()
            self._spawn("memory", lambda: release_periodically(self._stop))  # a steady footprint for hours
            self._spawn("capture", self._capture_loop)
            if not self._faces_direct:
                self._spawn("track", self._track_loop)
            if self.voice is not None:
                self._start_voice()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop and release everything. Idempotent; safe from any thread but the pipeline's own."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._stop.set()
        self.source.close()  # first: the camera is released before anything else winds down
        self._source_state(False)
        if self.outputs is not None:
            self.outputs.close()
        self.emotion.close()
        if self.voice is not None:
            self.voice.close()  # the microphone is released with the camera
        self._video.close()
        self._faces.close()
        self._voices.close()
        current = threading.current_thread()
        for thread in self._threads:
            if thread is not current:
                thread.join(timeout=5.0)
        if self._tracker is not None:
            self._tracker.close()
        self._finished.set()

    @property
    def binding(self) -> AvatarBinding | None:
        """How the avatar on screen is driven (its face rig, what it cannot show); set once started."""
        return self._binding

    def set_avatar(self, avatar: Avatar) -> None:
        """Show ``avatar`` from the next output frame on; the source and the sinks stay open.
        Thread-safe (the render thread swaps it in)."""
        with self._source_lock:
            self._new_look = {**self._new_look, "avatar": avatar}

    def set_background(self, rgb: tuple[float, float, float]) -> None:
        """Change the background colour from the next output frame on. Thread-safe."""
        with self._source_lock:
            self._new_look = {**self._new_look, "background": rgb}

    def _apply_look(self, renderer: AvatarRenderer) -> None:
        with self._source_lock:
            look, self._new_look = self._new_look, {}
        if "avatar" in look:
            renderer.set_avatar(look["avatar"])
            self._binding = AvatarBinding(look["avatar"])
            self._springs = SpringBoneRig(look["avatar"])  # a new avatar starts at rest
        if "background" in look:
            renderer.set_background(look["background"])

    def set_calibration(self, calibration: Calibration) -> None:
        """Apply ``calibration`` from the next output frame on. Thread-safe; works before start too."""
        with self._source_lock:
            self._calibration = calibration
        self.emotion.set_calibration(calibration)

    def _source_state(self, is_open: bool) -> None:
        with self._source_lock:
            if self.source_open == is_open or (is_open and self._stopped):
                return
            self.source_open = is_open
        if self.on_source is not None:
            self.on_source(is_open)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the source has ended and been fully rendered, or an error; True if finished."""
        return self._finished.wait(timeout)

    @property
    def running(self) -> bool:
        return self._started and not self._finished.is_set()

    def stats(self) -> Stats:
        snapshot = self.telemetry.snapshot()
        snapshot["frames_dropped"] = (self._video.dropped + self._faces.dropped + self.source.frames_skipped
                                      + self._gate.skipped)
        snapshot["source_status"] = getattr(self.source, "status", None)
        if self.voice is not None:
            snapshot["voice_status"] = self.voice_error or self.voice.status
        if self.enhancer is not None or self.enhance_status:
            snapshot["enhance_status"] = self.enhancer.status if self.enhancer is not None else self.enhance_status
        emotion = self.emotion.latest
        if self.emotion.error:
            snapshot["emotion_status"] = self.emotion.error
        if emotion is not None:
            snapshot.update(emotion=emotion.emotion, mode=emotion.mode, valence=round(emotion.valence, 3),
                            arousal=round(emotion.arousal, 3), anomaly=emotion.anomaly)
        return Stats.from_readings(snapshot)

    def _start_voice(self) -> None:
        try:
            self.voice.open()
        except AvatarcamError as exc:
            if self.source.caps & SourceCaps.ENDS_WITH_VOICE:
                raise  # audio-only: the voice is the only input asked for
            self.voice_error = f"voice off: {exc}"
            log.warning(self.voice_error)
            return

        def publish(frame) -> None:
            self.telemetry.record("voice", frame.timings.get("voice", 0.0))
            self._voices.put(frame)

        def run() -> None:
            self.voice.run(self._stop, publish, self._sound if self._sound_sinks else None)
            if self.source.caps & SourceCaps.ENDS_WITH_VOICE:
                self.source.close()  # audio-only: the performance ends with the audio

        self._spawn("audio", run)

    @property
    def _sound_sinks(self) -> list[SoundSink]:
        return [sink for sink in self.sinks if isinstance(sink, SoundSink)]

    def _sound(self, chunk: AudioChunk) -> None:
        """The voice input's sound to the outputs that record it (the user consented to the voice)."""
        for sink in self._sound_sinks:
            sink.write_audio(chunk.samples, chunk.t_capture)

    def __enter__(self) -> Pipeline:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- threads -------------------------------------------------------------------------------

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        def run() -> None:
            try:
                target()
            except BaseException as exc:
                if not isinstance(exc, AvatarcamError):
                    log.exception("pipeline thread %s failed", name)
                self.error = self.error or exc
                self._ready.set()
                self._stop.set()
                self._video.close()
                self._faces.close()
                self._finished.set()

        thread = threading.Thread(target=run, name=f"avatarcam-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _capture_loop(self) -> None:
        slot = self._faces if self._faces_direct else self._video
        try:
            while not self._stop.is_set():
                item = self.source.read()
                if item is None:
                    break
                self.telemetry.input_frame(time.monotonic())
                if "capture" in item.timings:
                    self.telemetry.record("capture", item.timings["capture"])
                if self.on_video is not None and not self._faces_direct:
                    self.on_video(item)
                if self._faces_direct:
                    self.emotion.add_face(item)
                    if self.on_face is not None:
                        self.on_face(item)
                slot.put(item)
        finally:
            self.source.close()  # ended or failed: release the device now, not at stop()
            self._source_state(False)
        slot.close()  # end of stream: downstream drains what is left, then finishes

    def _track_loop(self) -> None:
        assert self._tracker is not None
        while not self._stop.is_set():
            frame = self._video.get()
            if frame is None:
                if self._video.closed:
                    break
                continue
            if not self._gate.admit(frame.t_capture):
                continue
            face = self._tracker.process(frame)
            self.telemetry.record("track", face.timings.get("track", 0.0))
            self.emotion.submit(face, frame.image)
            if face.present:
                self.telemetry.count("faces_found")
            if self.on_face is not None:
                self.on_face(face)
            self._faces.put(face)
        self._faces.close()

    def _render_loop(self) -> None:
        options = self.options
        avatar = load_avatar(options.avatar)
        width, height = options.size
        # alpha for the enhancer: the model's mask
        renderer = AvatarRenderer(avatar, options.render_options(transparent=self.enhancer is not None))
        opened: list[Sink] = []
        record = None
        try:
            self.gl_renderer = renderer.gl_renderer
            self._binding = AvatarBinding(avatar)
            self._springs = SpringBoneRig(avatar)
            animator = Animator(options.animator)
            # The first draw compiles shaders (~100 ms on a CPU rasteriser): do it before the clock
            # starts, so it neither shows as a missed frame nor hides a render failure until later.
            renderer.render(self._binding.pose(animator.update(None, time.monotonic())))
            for sink in self.sinks:
                if self.voice is not None and isinstance(sink, SoundSink):
                    sink.add_audio(RATE)  # a voice input is on: a recording gets its sound too
                sink.open(width, height, options.fps)
                opened.append(sink)
            if options.record_controls is not None:
                record = open(options.record_controls, "w", encoding="utf-8")
            self._ready.set()
            self._output_loop(renderer, animator, opened, record)
        finally:
            for sink in opened:
                sink.close()
            if record is not None:
                record.close()
            renderer.close()
            self._finished.set()

    def _output_loop(self, renderer: AvatarRenderer, animator: Animator, sinks: list[Sink], record) -> None:
        clock = OutputClock(self.options.fps, time.monotonic())
        governor = ResolutionGovernor(self.options.fps)
        replaced = self._faces.dropped  # results replaced by newer ones, up to the last one taken
        sequence = 0
        last: RenderedFrame | None = None
        while not self._stop.is_set():
            fresh = self._faces.wait(max(0.0, clock.filler_time() - time.monotonic()))
            if self._stop.is_set():
                break
            arrived: float | None = None
            captured: float | None = None
            if fresh:
                release = clock.release(self._faces.put_time)
                if time.monotonic() < release and self._stop.wait(release - time.monotonic()):
                    break  # too early for the output rate: wait (a newer result may replace it)
                face, arrived, dropped = self._faces.take_timed()
                self.telemetry.record("hold", (time.monotonic() - arrived) * 1000.0)
                skipped, replaced = dropped - replaced, dropped
                captured = face.t_capture if face is not None else None
            elif self._faces.closed:
                break  # the source ended and its last result has been shown
            else:
                face, skipped = None, 0
            now = time.monotonic()
            # A filler with nothing new to show (no voice frame, no new look) and no room to draw
            # before the next camera frame is tracked: the last frame again (output_clock.py).
            draw = (face is not None or last is None or self._voices.waiting or bool(self._new_look)
                    or self._calibration is not None or clock.filler_renders(now))
            missed = clock.sent(now, arrived, skipped, captured)
            sequence += 1
            if draw:
                last = self._emit(renderer, animator, sinks, record, face, sequence, missed)
                clock.rendered(time.monotonic() - now)
                self._follow_load(governor, renderer, last.timings["render"])
            else:
                self._hand_out(sinks, replace(last, sequence=sequence, fresh=False), time.monotonic(), missed)
                self.telemetry.count("frames_reused")

    def _follow_load(self, governor: ResolutionGovernor, renderer: AvatarRenderer, render_ms: float) -> None:
        """Draw fewer pixels while renders come close to the frame period (resolution.py)."""
        if renderer.resolution_scale < 1.0:
            self.telemetry.count("frames_reduced")
        scale = governor.rendered(render_ms / 1000.0, time.monotonic())
        if scale is not None:
            renderer.set_resolution_scale(scale)
            self.telemetry.count("resolution_changes")
            log.info("render resolution %.0f %% of the output size (render p95 against the frame period)", scale * 100)

    def _emit(self, renderer: AvatarRenderer, animator: Animator, sinks: list[Sink],
              record, face: FaceFrame | None, sequence: int, missed: int) -> RenderedFrame:
        if self._calibration is not None:
            with self._source_lock:
                calibration, self._calibration = self._calibration, None
            animator.set_calibration(calibration)
        if self._new_look:
            self._apply_look(renderer)
        voice = self._voices.take()
        assert self._binding is not None and self._springs is not None
        frame, emotion, enhance_ms = animate_and_render(animator, self.emotion, self._binding, renderer, face, voice,
                                                        time.monotonic(), sequence, self._springs, self.enhancer)
        if enhance_ms:  # 0: no enhancer, or switched off after a failure: nothing ran
            self.telemetry.record("enhance", enhance_ms)
        state, fresh, render_ms = frame.state, frame.fresh, frame.timings["render"]
        assert state is not None
        handed = time.monotonic()
        if fresh:
            self.telemetry.record("e2e", (handed - state.t_capture) * 1000.0)
        if voice is not None and state.t_voice:
            self.telemetry.record("sound_to_mouth", (handed - state.t_voice) * 1000.0)
        self.telemetry.record("animate", state.timings.get("animate", 0.0))
        self.telemetry.record("render", render_ms)
        self._hand_out(sinks, frame, handed, missed)
        if record is not None:
            record.write(json.dumps(controls_record(state, fresh)) + "\n")
        if self.outputs is not None:
            self.outputs.publish(state, emotion, *_top_viseme(voice))
        return frame

    def _hand_out(self, sinks: list[Sink], frame: RenderedFrame, handed: float, missed: int) -> None:
        """Give ``frame`` to every sink (a failing sink is closed and reported) and to ``on_frame``."""
        start = time.perf_counter()
        for sink in list(sinks):
            try:
                sink.write(frame)
            except SinkError as exc:
                self.sink_errors.append(str(exc))
                sinks.remove(sink)
                sink.close()
        self.telemetry.record("sink", (time.perf_counter() - start) * 1000.0)
        self.telemetry.output_frame(handed, frame.fresh, missed)
        if self.on_frame is not None:
            self.on_frame(frame)


def _top_viseme(voice: VoiceFrame | None) -> tuple[str, float]:
    if voice is None or not voice.visemes:
        return "sil", 0.0
    name = max(voice.visemes, key=voice.visemes.get)
    return name, float(voice.visemes[name])


def controls_record(state: AvatarFrame, fresh: bool) -> dict:
    """One line of ``--record-controls``: time, sequence and the controls handed to the renderer."""
    return {"t": round(state.t_capture, 4), "sequence": state.sequence, "fresh": fresh,
            "face_present": state.face_present, "controls": {k: round(v, 4) for k, v in state.controls.items()},
            "head": [round(v, 3) for v in state.head], "neck": [round(v, 3) for v in state.neck],
            "eyes": [round(v, 3) for v in state.eyes]}
