"""The composition root: a frozen ``SessionSpec`` says what to run; ``build_session`` wires it.

This is the only place that chooses and connects stages. The CLI, ``bench``, ``analyze``,
``snapshot`` and the desktop app each fill a spec (every choice has its default here, once) and
talk to the resulting ``Session``, never to its parts: start and stop it, read ``stats()``, and
change what may change while it runs (expressiveness, calibration, consent to emotion analysis or a
data stream, the microphone, the avatar and the background) without reopening the camera.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from engine.animation.animator import AnimatorOptions
from engine.avatar import Avatar, load_avatar
from engine.avatar.retarget import AvatarBinding
from engine.calibration import Calibration
from engine.capture.audio import AudioFileSource, AudioSource, MicrophoneSource
from engine.capture.demo import DemoSource
from engine.capture.reconnect import ReconnectingSource
from engine.capture.speech import SpeechQueue
from engine.capture.video import CameraSource, ImageSource, NoVideoSource, VideoFileSource, list_cameras
from engine.capture.wrapper import ReportingSource
from engine.errors import AvatarcamError
from engine.models import ModelManager
from engine.output_format import DEFAULT_FPS, DEFAULT_SIZE
from engine.outputs.hub import DataOutputs, DataStream
from engine.outputs.playback import AudioPlayer
from engine.outputs.sinks import open_sink
from engine.outputs.speak import SpeakServer
from engine.packets import FaceFrame, RenderedFrame, VideoFrame
from engine.paths import DEFAULT_AVATAR
from engine.perception.voice.vad import EnergyVad, SileroVad
from engine.perception.voice.voice import VoiceAnalyzer, VoiceOptions, VoiceStage
from engine.render import RenderOptions
from engine.render.enhance import Enhancer, open_enhancer
from engine.runtime.emotion_worker import EmotionStage
from engine.runtime.offline import OfflineRender
from engine.runtime.pipeline import Pipeline, PipelineOptions
from engine.runtime.speaking import Speaking
from engine.runtime.stats import Stats
from engine.stages import Sink, Source, SourceCaps
from engine.vocabulary.emotions import Emotion
from engine.vocabulary.framing import Framing

log = logging.getLogger(__name__)
_RENDER_DEFAULTS = RenderOptions()


class SourceKind(StrEnum):
    """Where the face comes from."""

    AUTO = "auto"  # the first camera; audio-only with a voice input and no camera; else the demo
    CAMERA = "camera"
    VIDEO = "video"  # a file, paced like a camera
    IMAGE = "image"  # a still, repeated as a stream
    DEMO = "demo"  # the built-in scripted performance (no devices, no models)
    NONE = "none"  # audio-only: the voice drives the avatar alone


class Device(StrEnum):
    """Capture devices the user is told about (the recording indicator)."""

    CAMERA = "camera"
    MICROPHONE = "microphone"


@dataclass(frozen=True, slots=True)
class SessionSpec:
    """Every choice of a session, with its default. Adding an option is adding a field here."""

    source: SourceKind = SourceKind.AUTO
    camera: int | str = 0  # index, /dev/videoN or name
    path: Path | None = None  # the video or image file
    loop: bool = False  # loop the video file (and its audio)
    size: tuple[int, int] = DEFAULT_SIZE
    fps: float = DEFAULT_FPS
    avatar: Path = DEFAULT_AVATAR
    background: tuple[float, float, float] = _RENDER_DEFAULTS.background
    msaa: int = _RENDER_DEFAULTS.msaa
    framing: Framing = Framing.HEAD_AND_SHOULDERS  # how much of the avatar the shot shows
    sinks: tuple[str | Sink, ...] = ("virtualcam",)  # specs for ``open_sink``, or sink objects
    microphone: int | str | None = None  # None: no microphone; "" the default one; index or name
    audio: Path | None = None  # an audio file, or a video's own sound track
    sensevoice: bool = False  # speech emotion with SenseVoice (optional extra) instead of prosody
    emotion: bool = False  # emotion analysis: off until the user consents
    expressiveness: float = 1.0  # the emotion layer's strength, 0..2
    emotion_hint: Emotion | None = None  # an emotion to show, given rather than read (no consent needed)
    speak: bool = False  # the speak API on the WebSocket: another program's audio drives the avatar
    speech_output: int | str | None = ""  # where spoken audio plays: "" the default device, None nowhere
    websocket: str | None = None  # [HOST:]PORT of the JSON stream
    vmc: str | None = None  # HOST:PORT of the VMC receiver
    record_controls: Path | None = None  # every animation state as JSON lines
    calibration: Calibration | None = None
    face_model: Path | None = None  # None: the model manager finds (or downloads) it when needed
    animator: AnimatorOptions = field(default_factory=AnimatorOptions)
    enhance: Path | None = None  # an enhancement model (docs/ENHANCE.md) run on every rendered frame

    @property
    def has_voice(self) -> bool:
        return self.microphone is not None or self.audio is not None


@dataclass(frozen=True, slots=True)
class SessionHooks:
    """Callbacks from the engine's threads; each must return quickly.

    ``on_frame``: every output frame (render thread). ``on_face``: every raw perception result.
    ``on_video``: every captured picture. ``on_device(device, is_open)``: a capture device was
    opened or released (also when it failed or ended). ``on_progress(label, done, total)``: a model
    download on first use; ``cancel`` aborts that download.
    """

    on_frame: Callable[[RenderedFrame], None] | None = None
    on_face: Callable[[FaceFrame], None] | None = None
    on_video: Callable[[VideoFrame], None] | None = None
    on_device: Callable[[Device, bool], None] | None = None
    on_progress: Callable[[str, int, int], None] | None = None
    cancel: threading.Event | None = None


class Session:
    """A built, runnable session. ``start``/``stop`` are idempotent; ``stop`` releases the camera and
    microphone at once. Control methods are thread-safe and act from the next output frame on."""

    def __init__(self, spec: SessionSpec, pipeline: Pipeline, notes: list[str],
                 microphone: ReportingSource[AudioSource] | None, speaking: Speaking | None = None) -> None:
        self.spec = spec
        self.pipeline = pipeline
        self.notes = notes  # lines for the user about choices made for them ("no camera: demo")
        self._microphone = microphone
        self.speaking = speaking  # the speak API, when on

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self.pipeline.start()
        if self.speaking is not None:
            self.speaking.start()

    def stop(self) -> None:
        if self.speaking is not None:
            self.speaking.close()
        self.pipeline.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the source has ended and been rendered, or an error; True if finished."""
        return self.pipeline.wait(timeout)

    def __enter__(self) -> Session:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.pipeline.running

    @property
    def error(self) -> BaseException | None:
        return self.pipeline.error

    @property
    def sink_errors(self) -> list[str]:
        return self.pipeline.sink_errors

    @property
    def gl_renderer(self) -> str:
        return self.pipeline.gl_renderer

    @property
    def source_open(self) -> bool:
        return self.pipeline.source_open

    @property
    def sinks(self) -> list[Sink]:
        return self.pipeline.sinks

    @property
    def face_model(self) -> Path | None:
        """The face model the tracker runs (None when the source needs no tracking)."""
        return self.pipeline.options.face_model

    def stream_endpoints(self) -> list[str]:
        """Where the data streams send, for the user (the WebSocket URL carries its token); the
        WebSocket's port and token exist once the session has started."""
        outputs = self.pipeline.outputs
        lines = []
        if outputs is not None and outputs.websocket is not None:
            lines.append(f"WebSocket: {outputs.websocket.url}")
            if self.speaking is not None:
                ws = outputs.websocket
                lines.append(f"Speak API on: avatarcam say --ws ws://{ws.host}:{ws.port}/ --token {ws.token} speech.wav"
                             + (f" ({self.speaking.status})" if self.speaking.status else ""))
        if outputs is not None and outputs.vmc is not None:
            lines.append(f"VMC: sending to {outputs.vmc.host}:{outputs.vmc.port}")
        return lines

    @property
    def avatar_binding(self) -> AvatarBinding | None:
        """The shown avatar's retargeting (``rig``, ``limits``, ``describe()``); None before ``start``."""
        return self.pipeline.binding

    def stats(self) -> Stats:
        stats = self.pipeline.stats()
        if self.speaking is not None:
            stats = replace(stats, speech_state=self.speaking.state.value)
        return stats

    def reset_stats(self) -> None:
        """Start a new measurement window (benchmarks skip their warm-up)."""
        self.pipeline.telemetry.reset()

    # --- control -------------------------------------------------------------------------------

    def set_expressiveness(self, value: float) -> None:
        """0 (pure mirror) to 2; anything else (NaN included) raises ``AvatarcamError``."""
        check_expressiveness(value)
        self.pipeline.emotion.set_expressiveness(value)

    def set_emotion_enabled(self, enabled: bool) -> None:
        """Consent to emotion analysis given or withdrawn; withdrawn forgets what was read."""
        self.pipeline.emotion.set_enabled(enabled)

    def set_calibration(self, calibration: Calibration) -> None:
        """The user's calibration, for the animation and the emotion classifier."""
        self.pipeline.set_calibration(calibration)

    def close_stream(self, stream: DataStream) -> None:
        """Close one data stream (consent withdrawn); the avatar keeps running."""
        if self.pipeline.outputs is not None:
            self.pipeline.outputs.close_stream(stream)

    def stop_speaking(self) -> None:
        """Switch the speak API off (consent withdrawn): the avatar falls silent now, the speech
        output and the barge-in microphone are released, and later speak requests are ignored;
        the data stream stays."""
        speaking, self.speaking = self.speaking, None
        if speaking is None:
            return
        outputs = self.pipeline.outputs
        if outputs is not None and isinstance(outputs.websocket, SpeakServer):
            outputs.websocket.control = None
        speaking.stop("speak API switched off")
        speaking.close()

    def stop_microphone(self) -> None:
        """Release the microphone now (consent withdrawn); the video keeps running."""
        microphone, self._microphone = self._microphone, None
        if microphone is not None:
            microphone.close()

    def set_avatar(self, path: Path) -> Avatar:
        """Load ``path`` (here, on the caller's thread) and show it from the next frame on, without
        closing the camera. Raises ``AvatarLoadError``; the current avatar then stays."""
        avatar = load_avatar(path)
        self.pipeline.set_avatar(avatar)
        return avatar

    def set_background(self, rgb: tuple[float, float, float]) -> None:
        self.pipeline.set_background(rgb)


# --- building ------------------------------------------------------------------------------------


def build_session(spec: SessionSpec, hooks: SessionHooks = SessionHooks(), *, source: Source | None = None,
                  microphone: AudioSource | None = None, voice_analyzer: VoiceAnalyzer | None = None) -> Session:
    """Wire the stages ``spec`` names. ``source``, ``microphone`` (an audio source) and
    ``voice_analyzer`` replace the ones the spec would build: stubs for tests, or an embedding's own.
    Raises ``AvatarcamError`` for anything the user can fix (missing file, model download failed)."""
    notes: list[str] = []
    _check_spec(spec)
    if source is None:
        source = _build_source(spec, notes)
    face_model = spec.face_model
    if source.caps & SourceCaps.VIDEO and face_model is None:
        face_model = _face_model(hooks)
    on_device = hooks.on_device
    camera = isinstance(source, CameraSource)
    if on_device is not None and source.caps & SourceCaps.DEVICE:
        source = ReportingSource(source, lambda is_open: on_device(Device.CAMERA, is_open))
    if camera:
        # An unplugged camera is waited for (the avatar idles) and reopened by its name; the
        # indicator, inside, follows the device itself.
        source = ReconnectingSource(source)
    if spec.speak and not spec.websocket:
        raise AvatarcamError("The speak API runs on the WebSocket, which is off.", "Add --ws PORT (e.g. --ws 8765).")
    speech = SpeechQueue() if spec.speak else None
    voice, reporting_mic = _build_voice(spec, source, microphone, voice_analyzer, on_device, speech)
    outputs = DataOutputs.from_specs(spec.websocket, spec.vmc, speak=spec.speak) if spec.websocket or spec.vmc else None
    if outputs is not None and outputs.websocket is not None and outputs.websocket.warning:
        notes.append(outputs.websocket.warning)
    enhancer, enhance_status = _open_enhancer(spec, notes)
    pipeline = Pipeline(source, _sinks(spec), _pipeline_options(spec, face_model), on_frame=hooks.on_frame,
                        on_face=hooks.on_face, on_video=hooks.on_video, voice=voice, outputs=outputs, enhancer=enhancer,
                        enhance_status=enhance_status)
    if spec.calibration is not None:
        pipeline.set_calibration(spec.calibration)
    pipeline.emotion.set_hint(spec.emotion_hint)
    speaking = None
    if speech is not None and outputs is not None and isinstance(outputs.websocket, SpeakServer):
        # The microphone, if on, listens for the user's voice to interrupt the avatar (barge-in).
        speaking = Speaking(speech, pipeline.emotion, outputs.messages, outputs.websocket.send_event,
                            player=AudioPlayer(spec.speech_output or None) if spec.speech_output is not None else None,
                            microphone=reporting_mic, vad=_barge_in_vad() if reporting_mic is not None else None)
        outputs.websocket.control = speaking
    return Session(spec, pipeline, notes, reporting_mic, speaking)


def _barge_in_vad() -> SileroVad | EnergyVad:
    try:
        return SileroVad.from_manager()
    except AvatarcamError:
        return EnergyVad()


def build_render(spec: SessionSpec, *, voice_analyzer: VoiceAnalyzer | None = None) -> OfflineRender:
    """The offline composition (``avatarcam render``): ``spec.audio`` alone drives the avatar on
    media time, as fast as the machine renders, into ``spec.sinks`` (a file gets the sound too).
    The stages and their options are the live session's; only the clock differs."""
    if spec.audio is None:
        raise AvatarcamError("Rendering a talking head needs an audio file.", "Name it with --audio speech.wav.")
    emotion = EmotionStage(spec.emotion, spec.expressiveness)
    emotion.set_hint(spec.emotion_hint)
    sinks = _sinks(spec)  # before the analyser: a bad output spec fails before any model loads
    analyzer = voice_analyzer or VoiceAnalyzer(VoiceOptions(use_sensevoice=spec.sensevoice))
    return OfflineRender(AudioFileSource(spec.audio, paced=False), sinks, _pipeline_options(spec, None),
                         analyzer, emotion)


def _pipeline_options(spec: SessionSpec, face_model: Path | None) -> PipelineOptions:
    return PipelineOptions(size=spec.size, fps=spec.fps, avatar=spec.avatar, background=spec.background,
                           msaa=spec.msaa, framing=spec.framing, face_model=face_model, record_controls=spec.record_controls,
                           animator=spec.animator, emotion=spec.emotion, expressiveness=spec.expressiveness)


def _sinks(spec: SessionSpec) -> list[Sink]:
    return [open_sink(s) if isinstance(s, str) else s for s in spec.sinks]


def _open_enhancer(spec: SessionSpec, notes: list[str]) -> tuple[Enhancer | None, str | None]:
    """The enhancement model, or None with one line saying why: the run goes on unenhanced."""
    if spec.enhance is None:
        return None, None
    try:
        enhancer = open_enhancer(spec.enhance, spec.size)
    except AvatarcamError as exc:
        status = f"enhancement off: {exc}"
        notes.append(status)
        log.warning(status)
        return None, status
    return enhancer, enhancer.status


def _check_spec(spec: SessionSpec) -> None:
    """Refuse what would fail later, once devices are open: non-finite numbers, and an output file
    that cannot be written."""
    if not (math.isfinite(spec.fps) and spec.fps > 0):
        raise AvatarcamError(f"Frame rate {spec.fps} is not a positive number.", "Use e.g. 30.")
    check_expressiveness(spec.expressiveness)
    path = spec.record_controls
    if path is not None:
        if path.is_dir():
            raise AvatarcamError(f"Cannot record the controls to '{path}': it is a folder.",
                                 "Give a file name, e.g. --record-controls controls.jsonl.")
        if not path.parent.is_dir():
            raise AvatarcamError(f"Cannot record the controls to '{path}': the folder '{path.parent}' does not exist.",
                                 "Create it, or record into an existing folder.")


def check_expressiveness(value: float) -> None:
    if not (math.isfinite(value) and 0.0 <= value <= 2.0):
        raise AvatarcamError(f"Expressiveness {value} is not a number from 0 to 2.", "Use 1 for the default strength.")


def _build_source(spec: SessionSpec, notes: list[str]) -> Source:
    kind = spec.source
    if kind is SourceKind.AUTO:
        if spec.audio is not None or spec.speak:
            kind = SourceKind.NONE
        elif list_cameras():
            kind = SourceKind.CAMERA
        elif spec.microphone is not None:
            notes.append("No camera found: the voice drives the avatar alone.")
            kind = SourceKind.NONE
        else:
            notes.append("No camera found: running the offline demo performance instead.")
            kind = SourceKind.DEMO
    if kind in (SourceKind.VIDEO, SourceKind.IMAGE) and spec.path is None:
        raise AvatarcamError(f"A {kind} source needs a file.", "Name the file to play.")
    path = spec.path or Path()
    match kind:
        case SourceKind.CAMERA:
            return CameraSource(spec.camera, size=spec.size, fps=spec.fps)
        case SourceKind.VIDEO:
            return VideoFileSource(path, paced=True, loop=spec.loop)
        case SourceKind.IMAGE:
            return ImageSource(path, fps=spec.fps)
        case SourceKind.NONE:
            return NoVideoSource()
        case _:
            return DemoSource(fps=spec.fps)


def _build_voice(spec: SessionSpec, source: Source, microphone: AudioSource | None, analyzer: VoiceAnalyzer | None,
                 on_device: Callable[[Device, bool], None] | None,
                 speech: SpeechQueue | None) -> tuple[VoiceStage | None, ReportingSource[AudioSource] | None]:
    """The voice stage and the reported microphone. With the speak API on (``speech``), the speech
    to say drives the mouth and the microphone only listens for barge-in."""
    options = VoiceOptions(use_sensevoice=spec.sensevoice)
    if microphone is None and spec.microphone is not None:
        microphone = MicrophoneSource(spec.microphone if spec.microphone != "" else None)
    reporting = None
    if microphone is not None:
        reporting = ReportingSource(microphone, lambda is_open: on_device and on_device(Device.MICROPHONE, is_open))
    if speech is not None:
        return VoiceStage(speech, options, analyzer), reporting
    if reporting is not None:
        return VoiceStage(reporting, options, analyzer), reporting
    if spec.audio is not None:
        # An asked-for audio file that cannot be read is the user's error, told before anything runs.
        probe = AudioFileSource(spec.audio, paced=False)
        probe.open()
        probe.close()
        # Beside its own video file, the sound shares the picture's timeline.
        origin = (lambda: source.media_origin) if isinstance(source, VideoFileSource) else None
        return VoiceStage(AudioFileSource(spec.audio, paced=True, origin=origin, loop=spec.loop), options, analyzer), None
    return None, None


def _face_model(hooks: SessionHooks) -> Path:
    """The verified face model, downloaded with progress on first use."""
    progress = hooks.on_progress
    return ModelManager().ensure("face_landmarker", progress=(lambda done, total: progress("face model", done, total))
                                 if progress else None, cancel=hooks.cancel)
