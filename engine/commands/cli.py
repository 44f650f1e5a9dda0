"""The ``avatarcam`` command line: run, demo, render, say, doctor, snapshot, bench.

Every error a user can cause prints one line (what is wrong, what to do) and exits non-zero;
unexpected failures print one line pointing at a log file that holds the traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from engine.errors import AvatarcamError
from engine.output_format import DEFAULT_FPS, DEFAULT_SIZE
from engine.privacy import keep_everything_local, quiet_native_logs
from engine.vocabulary.framing import Framing

if TYPE_CHECKING:
    from engine.runtime.stats import Stats
    from engine.session import Session, SessionHooks, SessionSpec

WindowOpener = Callable[[argparse.Namespace], int]  # the desktop app's entry, passed in by its launcher

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
# The signals that stop a run cleanly (SIGHUP does not exist on Windows).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
DEMO_FILE_SECONDS = 27.0  # one loop of the demo performance, when it falls back to a file


# --- argument helpers ------------------------------------------------------------------------------

def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a size; write it as WIDTHxHEIGHT, e.g. 1280x720") from None
    if not (16 <= width <= 7680 and 16 <= height <= 4320):
        raise argparse.ArgumentTypeError(f"size {width}x{height} is out of range (16x16 to 7680x4320)")
    return width, height


def parse_fps(text: str) -> float:
    try:
        fps = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a frame rate") from None
    if not 1 <= fps <= 240:
        raise argparse.ArgumentTypeError(f"fps {fps:g} is out of range (1 to 240)")
    return fps


def parse_rates(text: str) -> list[float]:
    """Camera rates for ``bench --rates``, comma-separated."""
    return [parse_fps(part) for part in text.split(",") if part.strip()]


def finite(text: str) -> float:
    """A finite number: NaN and infinity are refused where a number is asked for."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"'{text}' is not a finite number")
    return value


def parse_seconds(text: str) -> float:
    seconds = finite(text)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text} seconds: give a duration above 0")
    return seconds


def parse_expressiveness(text: str) -> float:
    value = finite(text)
    if not 0.0 <= value <= 2.0:
        raise argparse.ArgumentTypeError(f"expressiveness {text} is out of range (0 to 2)")
    return value


def parse_colour(text: str) -> tuple[float, float, float]:
    from engine.render import parse_colour as parse

    try:
        return parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_snapshot_background(text: str) -> tuple[float, float, float] | str:
    """A snapshot background: a colour (see ``parse_colour``) or ``transparent`` (an RGBA PNG)."""
    return "transparent" if text.lower() == "transparent" else parse_colour(text)


def parse_framing(text: str) -> Framing:
    try:
        return Framing(text.lower().replace("-", "_"))
    except ValueError:
        choices = ", ".join(f.value.replace("_", "-") for f in Framing)
        raise argparse.ArgumentTypeError(f"'{text}' is not a framing; choose one of {choices}") from None


def add_framing_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--framing", type=parse_framing, default=Framing.HEAD_AND_SHOULDERS,
                        metavar="close-up|head-and-shoulders|upper-body|full-body",
                        help="how much of the avatar the shot shows (head-and-shoulders)")


def parse_expressions(text: str) -> dict[str, float]:
    result: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        try:
            result[name.strip()] = finite(value) if value else 1.0
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(f"'{item}' is not NAME=VALUE with a finite VALUE (e.g. jawOpen=0.8)") from None
    return result


def resolve_avatar(text: str | None) -> Path:
    from engine.paths import DEFAULT_AVATAR

    return DEFAULT_AVATAR if text in (None, "", "default") else Path(text).expanduser()


def _device(text: str) -> int | str:
    """A camera or microphone given as an index or a name."""
    return int(text) if text.isdigit() else text


def _progress_printer(label: str, done: int, total: int) -> None:
    percent = 100 * done // total if total else 0
    print(f"\rdownloading {label}: {percent:3d}% ({done >> 10} / {total >> 10} KiB)", end="", file=sys.stderr)
    if total and done >= total:
        print(file=sys.stderr)


def face_model_path() -> Path:
    """The verified face model, downloaded with progress on first use."""
    from engine.models import ModelManager

    return ModelManager().ensure("face_landmarker", progress=lambda d, t: _progress_printer("face model", d, t))


def add_source_arguments(parser: argparse.ArgumentParser, *, camera: bool) -> None:
    group = parser.add_mutually_exclusive_group(required=not camera)
    if camera:
        group.add_argument("--camera", metavar="N|NAME", help="webcam index or name (default: first camera, or the demo)")
    group.add_argument("--video", metavar="PATH", type=Path, help="a video file, paced like a live camera")
    group.add_argument("--image", metavar="PATH", type=Path, help="a still image, repeated as a stream")
    group.add_argument("--demo", action="store_true", help="the built-in demo performance (no devices)")


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", type=parse_size, default=DEFAULT_SIZE, metavar="WxH", help="output size (1280x720)")
    parser.add_argument("--fps", type=parse_fps, default=DEFAULT_FPS, help="output frame rate (30)")
    parser.add_argument("--seconds", type=parse_seconds, default=None, help="stop after this long")
    parser.add_argument("--avatar", default="default", metavar="PATH", help="GLB/glTF/VRM avatar (default avatar)")
    parser.add_argument("--background", type=parse_colour, default=None, metavar="#RRGGBB", help="background colour")
    add_framing_argument(parser)


def add_enhance_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--enhance", type=Path, default=None, metavar="MODEL.onnx",
                        help="run an enhancement model on every rendered frame (docs/ENHANCE.md); off by default")


def add_voice_arguments(parser: argparse.ArgumentParser) -> None:
    voice = parser.add_mutually_exclusive_group()
    voice.add_argument("--mic", metavar="N|NAME", help="microphone index or name: the voice drives the mouth")
    voice.add_argument("--audio", metavar="PATH", type=Path,
                       help="an audio file, or a video's own audio track (pass the same file as --video)")
    parser.add_argument("--sensevoice", action="store_true",
                        help="speech emotion with SenseVoice (pip install avatarcam[voice]); prosody otherwise")


def spec_from_args(args: argparse.Namespace, **overrides) -> SessionSpec:
    """The session the command line asks for; argparse stops here."""
    from engine.session import SessionSpec, SourceKind

    get = vars(args).get
    if get("demo"):
        source, path = SourceKind.DEMO, None
    elif get("video"):
        source, path = SourceKind.VIDEO, args.video
    elif get("image"):
        source, path = SourceKind.IMAGE, args.image
    elif get("camera") is not None:
        source, path = SourceKind.CAMERA, None
    else:
        source, path = SourceKind.AUTO, None
    fields = dict(source=source, camera=_device(get("camera") or "0"), path=path, loop=bool(get("loop")),
                  size=args.size, fps=args.fps, avatar=resolve_avatar(get("avatar")),
                  microphone=None if get("mic") is None else _device(args.mic), audio=get("audio"),
                  sensevoice=bool(get("sensevoice")), emotion=bool(get("emotion")),
                  expressiveness=get("expressiveness") or 1.0, websocket=get("ws"), vmc=get("vmc"),
                  record_controls=get("record_controls"), framing=get("framing") or Framing.HEAD_AND_SHOULDERS,
                  enhance=get("enhance"), speak=bool(get("speak")))
    if get("speech_output") is not None:
        fields["speech_output"] = None if args.speech_output == "none" else _device(args.speech_output)
    if get("background") is not None:
        fields["background"] = args.background
    if isinstance(get("sink"), list):
        fields["sinks"] = tuple(args.sink or ["virtualcam"])
    elif isinstance(get("sink"), str):
        fields["sinks"] = (args.sink,)
    fields.update(overrides)
    return SessionSpec(**fields)


def build_cli_session(spec: SessionSpec, hooks: SessionHooks | None = None) -> Session:
    """Build ``spec`` with the terminal's download progress and print the notes."""
    from dataclasses import replace

    from engine.session import SessionHooks, build_session

    session = build_session(spec, replace(hooks or SessionHooks(), on_progress=_progress_printer))
    for note in session.notes:
        print(note, file=sys.stderr)
    return session


def run_session(session: Session, seconds: float | None, *, report: Callable[[Stats], None] | None = None,
                on_start: Callable[[], object] | None = None, report_every: float = 5.0) -> None:
    """Start, wait for the end (source end, ``seconds`` or Ctrl+C), stop; raise the session's error.
    Once started, says how the avatar is driven (its face rig and what it cannot show)."""
    interrupted = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        # Ctrl+C, `kill`, a logout or a service manager: all stop like the Stop button, so the
        # devices are released and the recordings finalised.
        for number in STOP_SIGNALS:
            previous[number] = signal.signal(number, lambda *_: interrupted.set())
    try:
        session.start()
        if session.avatar_binding is not None:
            print(f"avatar {session.spec.avatar.name}: {session.avatar_binding.describe()}", file=sys.stderr)
        if on_start is not None:
            on_start()
        deadline = None if seconds is None else time.monotonic() + seconds
        last_report = time.monotonic()
        while not session.wait(0.2) and not interrupted.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            if report is not None and time.monotonic() - last_report >= report_every:
                report(session.stats())
                last_report = time.monotonic()
    finally:
        session.stop()
        for number, handler in previous.items():
            signal.signal(number, handler)
    if session.error is not None:
        raise session.error
    if session.sink_errors:
        raise AvatarcamError(session.sink_errors[0])
    if interrupted.is_set():
        raise KeyboardInterrupt


def _status_line(stats: Stats) -> None:
    track = f"track {stats.track_ms_p50:4.1f} ms | " if stats.track_ms_p50 is not None else ""
    if stats.sound_to_mouth_ms_p95 is not None:
        track += f"sound->mouth p95 {stats.sound_to_mouth_ms_p95:5.1f} ms | "
    if stats.speech_state is not None:
        track += f"speech {stats.speech_state} | "
    print(f"fps {stats.fps_now:5.1f} | e2e p50 {stats.e2e_ms_p50 or 0:5.1f} ms p95 "
          f"{stats.e2e_ms_p95 or 0:5.1f} ms | {track}render {stats.render_ms_p50 or 0:4.1f} ms | "
          f"dropped {stats.frames_dropped} | cpu {stats.cpu_cores:.2f} cores | {stats.rss_mb:.0f} MB", file=sys.stderr)


# --- commands --------------------------------------------------------------------------------------

def cmd_run(args: argparse.Namespace) -> int:
    session = build_cli_session(spec_from_args(args))
    described = ", ".join(getattr(s, "device", None) or s.name for s in session.sinks)
    run_session(session, args.seconds, report=None if args.quiet else _status_line,
                on_start=lambda: [print(line, file=sys.stderr) for line in session.stream_endpoints()])
    stats = session.stats()
    print(f"done: {stats.frames_out} frames to {described}", file=sys.stderr)
    for status in (stats.voice_status, stats.enhance_status):
        if status:
            print(status, file=sys.stderr)
    if (args.video or args.image) and stats.frames_in and not stats.faces_found:
        raise AvatarcamError(f"No face was found in '{args.video or args.image}'; the avatar stayed idle.",
                             "Use footage where one face looks toward the camera, well lit and not too small.")
    return 0


def cmd_demo(args: argparse.Namespace, open_window: WindowOpener | None = None) -> int:
    """The demo to the virtual camera; to a preview window or a file when there is no driver."""
    from engine.outputs.sinks import virtual_camera_status
    from engine.session import SourceKind

    ok, message = virtual_camera_status()
    seconds, sinks = args.seconds, ("virtualcam",)
    if not ok:
        print(message, file=sys.stderr)
        if _has_display() and open_window is not None:
            args.demo, args.quit_after = True, args.seconds
            return open_window(args)
        out = Path(args.out or "avatarcam-demo.mp4")
        print(f"No display either: recording one loop of the demo to {out}.", file=sys.stderr)
        sinks, seconds = (f"file:{out}",), seconds or DEMO_FILE_SECONDS
    session = build_cli_session(spec_from_args(args, source=SourceKind.DEMO, sinks=sinks))
    run_session(session, seconds, report=_status_line)
    print(f"done: {session.stats().frames_out} frames", file=sys.stderr)
    return 0


def _has_display() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def cmd_snapshot(args: argparse.Namespace) -> int:
    from engine.commands.snapshot import SnapshotSpec, render_snapshot

    if args.out.suffix.lower() != ".png" or args.out.is_dir():
        raise AvatarcamError(f"'{args.out}' is not a PNG file name.", "Give a file name ending in .png, e.g. --out avatar.png.")

    spec = SnapshotSpec(avatar=resolve_avatar(args.avatar), expressions=args.expression or {},
                        head=(args.yaw, args.pitch, args.roll), eyes=(args.gaze_yaw, args.gaze_pitch),
                        view_yaw=args.view_yaw, size=args.size, background=args.background, framing=args.framing)
    print(render_snapshot(spec, args.out, report=lambda line: print(line, file=sys.stderr)))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from engine.commands.bench import format_table, run_benchmark

    spec = spec_from_args(args)
    if args.rates:
        from engine.commands.bench_rates import format_rates, run_rates

        if not args.video:
            raise AvatarcamError("--rates re-encodes a video clip at each rate.", "Add --video PATH.")
        rates = run_rates(spec, args.rates, args.seconds)
        print(json.dumps(rates) if args.json else format_rates(rates))
        return 0
    result = run_benchmark(spec, args.seconds, raw_frames=args.raw_frames, still=args.still, soak=args.soak)
    if args.models:
        from engine.commands.bench import time_models

        result.update(time_models(spec.enhance, size=spec.size))
    print(json.dumps(result) if args.json else format_table(result))
    return 0


class ProgressBar:
    """A one-line progress bar on stderr, redrawn at most every ``interval`` seconds and at the end."""

    WIDTH = 30

    def __init__(self, label: str, interval: float = 0.25) -> None:
        self.label = label
        self.interval = interval
        self._last = -float("inf")

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last < self.interval:
            return
        self._last = now
        filled = self.WIDTH * done // max(total, 1)
        print(f"\r{self.label} [{'#' * filled}{'-' * (self.WIDTH - filled)}] {100 * done // max(total, 1):3d}% "
              f"{done}/{total} frames", end="" if done < total else "\n", file=sys.stderr, flush=True)


def cmd_render(args: argparse.Namespace) -> int:
    """A talking head from audio alone, rendered offline into an mp4 with the sound."""
    from engine.session import build_render
    from engine.vocabulary.emotions import Emotion

    choice = args.emotion_name
    spec = spec_from_args(args, sinks=(f"file:{args.out}",), emotion=choice == "auto",
                          emotion_hint=None if choice in (None, "auto") else Emotion(choice))
    result = build_render(spec).run(None if args.quiet else ProgressBar("rendering"))
    print(f"done: {args.out}: {result.frames} frames, {result.media_seconds:.2f} s of audio in "
          f"{result.wall_seconds:.2f} s (real-time factor {result.realtime_factor:.2f})", file=sys.stderr)
    return 0


def cmd_say(args: argparse.Namespace) -> int:
    """The speak API's reference client: send a WAV, print the events until it is said or stopped."""
    from engine.commands.say import say

    for event in say(args.ws, args.token, args.wav, emotion=args.emotion_name, stop_after=args.stop_after,
                     timeout=args.timeout):
        print(json.dumps(event) if args.json else f"{event['event']:<16} {event['state']:<10} "
              f"{event['utterance_id']} {event['reason']}".rstrip())
    return 0


def cmd_avatar_from_photo(args: argparse.Namespace) -> int:
    """The generated avatar with the colours, hair length and face proportions of the face in a photo."""
    from engine.avatar.looks import avatar_from_photo, identity_weights

    found = avatar_from_photo(args.photo, args.out, face_model_path())

    def hex_of(rgb: tuple[float, float, float]) -> str:
        return "#" + "".join(f"{round(v * 255):02x}" for v in rgb)

    shape = ", ".join(f"{name} {weight:+.2f}" for name, weight in identity_weights(found.proportions).items())
    print(f"{args.out}: skin {hex_of(found.skin)}, hair {hex_of(found.hair)} ({found.hair_length}), "
          f"eyes {hex_of(found.eyes)}; {shape} (use it with --avatar {args.out})", file=sys.stderr)
    return 0


def cmd_avatar_gallery(args: argparse.Namespace) -> int:
    """Build the gallery's looks (once; later calls list them)."""
    from engine.avatar.looks import GALLERY, ensure_gallery

    def progress(done: int, total: int) -> None:
        print(f"\rlooks ready: {done}/{total}", end="" if done < total else "\n", file=sys.stderr, flush=True)

    paths = ensure_gallery(progress)
    for look, path in zip(GALLERY, paths):
        print(f"{path}  {look.title}")
    return 0


def cmd_lipsync(args: argparse.Namespace) -> int:
    """Lip-sync of an audio file (or a video's audio track): one line per 10 ms hop."""
    from engine.perception.voice.lipsync import lipsync_file

    for frame in lipsync_file(args.audio):
        line = {"t": round(frame.t, 3), "jawOpen": round(frame.jaw_open, 4), "viseme": frame.viseme,
                "visemes": {k: round(v, 4) for k, v in frame.visemes.items()},
                "controls": {k: round(v, 4) for k, v in frame.controls.items()}}
        if args.json:
            print(json.dumps(line))
        else:
            print(f"{line['t']:8.2f}  jawOpen {line['jawOpen']:.3f}  {line['viseme']}")
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from engine.commands.analyze import analyze_audio, analyze_images, analyze_video, write_messages

    if args.audio:
        messages = analyze_audio(args.audio)
    else:
        model = face_model_path()
        messages = analyze_video(args.video, model) if args.video else analyze_images(args.image, model)
    count = write_messages(messages, sys.stdout)
    print(f"analysed: {count} message(s)", file=sys.stderr)
    return 0


def add_emotion_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--emotion", action="store_true", help="analyse emotion (face, and voice when on) and show it on the avatar")
    parser.add_argument("--expressiveness", type=parse_expressiveness, default=1.0, metavar="0..2",
                        help="strength of the emotion layer: 0 = pure mirror, 1 = clearly stylised (1)")


def cmd_train_enhancer(args: argparse.Namespace) -> int:
    from engine.commands.train_enhancer import run

    result = run(args.video, args.out, face_model=face_model_path(), avatar=resolve_avatar(args.avatar),
                 minutes=args.minutes, size=args.size, train_seconds=args.train_seconds, test_seconds=args.test_seconds,
                 width=args.width, batch=args.batch, threads=args.threads, report=args.report)
    print(json.dumps(result))
    print(f"wrote {args.out}: use it with 'avatarcam run --enhance {args.out}'", file=sys.stderr)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from engine.commands.doctor import run_checks

    checks = run_checks(None if args.avatar is None else resolve_avatar(args.avatar))
    width = max(len(c.name) for c in checks)
    for check in checks:
        print(f"{'ok ' if check.ok else 'NO '} {check.name:<{width}}  {check.detail}")
    return 0 if all(c.ok for c in checks if c.required) else 1


def cmd_gui(args: argparse.Namespace, open_window: WindowOpener | None = None) -> int:
    if open_window is None:
        raise AvatarcamError("The desktop app is not part of this installation.",
                             "Use 'avatarcam run', or install avatarcam with its app.")
    if args.seconds is not None and args.quit_after is None:
        args.quit_after = args.seconds
    return open_window(args)


# --- parser ----------------------------------------------------------------------------------------

class OneLineParser(argparse.ArgumentParser):
    """Usage errors in one line, like every other error (the full usage is one --help away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"avatarcam: {message}. See '{self.prog} --help'.\n")


def build_parser() -> argparse.ArgumentParser:
    from engine.vocabulary.emotions import EMOTIONS

    parser = OneLineParser(prog="avatarcam", description="Your face drives a 3D avatar, published as a webcam.")
    parser.add_argument("--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="run the live pipeline (camera, video, image or demo) into outputs")
    add_source_arguments(run, camera=True)
    add_output_arguments(run)
    run.add_argument("--sink", action="append", metavar="SPEC",
                     help="virtualcam[:DEVICE] | null | file:PATH.mp4 | rtmp://HOST/APP/KEY | rtsp://HOST/PATH "
                          "(repeatable; default virtualcam; a file or stream gets the voice input's sound)")
    add_voice_arguments(run)
    run.add_argument("--loop", action="store_true", help="loop the video file")
    add_enhance_argument(run)
    run.add_argument("--record-controls", type=Path, metavar="PATH.jsonl",
                     help="write every animation state handed to the renderer as one JSON line")
    run.add_argument("--quiet", action="store_true", help="no periodic status line")
    add_emotion_arguments(run)
    run.add_argument("--ws", metavar="[HOST:]PORT", help="stream emotion_update/avatar_frame JSON over a local WebSocket "
                                                          "(loopback unless HOST is given; the URL with its token is printed)")
    run.add_argument("--speak", action="store_true",
                     help="the speak API on the WebSocket (--ws): other programs send audio for the avatar to say; "
                          "with --mic, your voice interrupts it")
    run.add_argument("--speech-output", metavar="N|NAME|none",
                     help="output device the spoken audio plays on (default: the default device; e.g. a virtual microphone)")
    run.add_argument("--vmc", metavar="HOST:PORT", help="send blendshapes and head pose over the VMC protocol (e.g. 127.0.0.1:39539)")
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser("demo", help="the offline demo to the virtual camera (or a window/file without a driver)")
    add_output_arguments(demo)
    demo.add_argument("--out", type=Path, help="file to record to when there is neither a driver nor a display")
    demo.set_defaults(func=cmd_demo)

    gui = sub.add_parser("gui", help="open the desktop app")
    add_source_arguments(gui, camera=True)
    add_output_arguments(gui)
    gui.add_argument("--screenshot", type=Path, metavar="PNG", help="write a PNG of the main window, then quit")
    gui.add_argument("--quit-after", type=parse_seconds, metavar="SECONDS", help="quit (taking the screenshot) after this long")
    gui.set_defaults(func=cmd_gui)

    render = sub.add_parser("render", help="a talking head from an audio file, rendered offline to an mp4 with the sound")
    render.add_argument("--audio", type=Path, required=True, metavar="PATH", help="the speech: WAV/MP3/FLAC, or a video's audio")
    render.add_argument("--out", type=Path, required=True, metavar="PATH.mp4", help="the video to write (H.264 + AAC)")
    render.add_argument("--size", type=parse_size, default=DEFAULT_SIZE, metavar="WxH", help="output size (1280x720)")
    render.add_argument("--fps", type=parse_fps, default=DEFAULT_FPS, help="output frame rate (30)")
    render.add_argument("--avatar", default="default", metavar="PATH", help="GLB/glTF/VRM avatar (default avatar)")
    render.add_argument("--background", type=parse_colour, default=None, metavar="#RRGGBB", help="background colour")
    render.add_argument("--emotion", dest="emotion_name", choices=[*EMOTIONS, "auto"], default=None,
                        help="an emotion to show throughout, or auto: read it from the voice's prosody")
    render.add_argument("--quiet", action="store_true", help="no progress bar")
    render.set_defaults(func=cmd_render)

    say_cmd = sub.add_parser("say", help="make a running avatar (run --ws PORT --speak) say a WAV file; prints its events")
    say_cmd.add_argument("wav", type=Path, metavar="SPEECH.wav")
    say_cmd.add_argument("--ws", required=True, metavar="URL", help="the WebSocket URL 'run' printed (ws://127.0.0.1:8765/)")
    say_cmd.add_argument("--token", default=None, help="the session's token (or give it in the URL as ?token=...)")
    say_cmd.add_argument("--emotion", dest="emotion_name", choices=EMOTIONS, default=None, help="show this emotion while speaking")
    say_cmd.add_argument("--stop-after", type=parse_seconds, default=None, metavar="SECONDS", help="send stop this long after speech starts")
    say_cmd.add_argument("--timeout", type=parse_seconds, default=120.0, metavar="SECONDS", help="give up waiting after this long")
    say_cmd.add_argument("--json", action="store_true", help="print each speech_event message as JSON")
    say_cmd.set_defaults(func=cmd_say)

    avatar = sub.add_parser("avatar", help="make avatars")
    avatar_sub = avatar.add_subparsers(dest="avatar_command", required=True)
    from_photo = avatar_sub.add_parser("from-photo", help="an avatar with the colours, hair length and face proportions of a photo's face")
    from_photo.add_argument("photo", type=Path, metavar="PHOTO.jpg")
    from_photo.add_argument("--out", type=Path, required=True, metavar="AVATAR.glb")
    from_photo.set_defaults(func=cmd_avatar_from_photo)
    gallery = avatar_sub.add_parser("gallery", help="build the gallery of ready-made looks (the app's avatar picker offers them)")
    gallery.set_defaults(func=cmd_avatar_gallery)

    lipsync = sub.add_parser("lipsync", help="audio file -> mouth controls and visemes every 10 ms")
    lipsync.add_argument("--audio", type=Path, required=True, metavar="PATH", help="WAV/MP3/FLAC, or a video with audio")
    lipsync.add_argument("--json", action="store_true", help="one JSON object per line: t, jawOpen, visemes, controls")
    lipsync.set_defaults(func=cmd_lipsync)

    train = sub.add_parser("train-enhancer", help="train a personal photoreal enhancement model on a clip of you (needs avatarcam[train])")
    train.add_argument("--video", type=Path, required=True, metavar="PATH", help="a clip of you talking, facing the camera")
    train.add_argument("--out", type=Path, required=True, metavar="MODEL.onnx")
    train.add_argument("--avatar", default="default", metavar="PATH", help="the avatar to render (default head; a FLAME .pkl works too)")
    train.add_argument("--minutes", type=parse_seconds, default=10.0, help="training time (10; more is better on a GPU)")
    train.add_argument("--size", type=parse_size, default=(224, 128), metavar="WxH", help="the model's size (224x128)")
    train.add_argument("--width", type=int, default=16, help="U-Net channels at full size (16; 32+ on a GPU)")
    train.add_argument("--batch", type=int, default=8, help="frame pairs per training step (8)")
    train.add_argument("--threads", type=int, default=0, help="CPU threads for training (0: PyTorch's default)")
    train.add_argument("--train-seconds", type=parse_seconds, default=None, help="train on the clip's first seconds only")
    train.add_argument("--test-seconds", type=parse_seconds, default=8.0, help="held out at the end for --report (8)")
    train.add_argument("--report", type=Path, default=None, metavar="DIR",
                       help="score the held-out end of the clip (PSNR, SSIM, flicker) and write comparison PNGs here")
    train.set_defaults(func=cmd_train_enhancer)

    doctor = sub.add_parser("doctor", help="check OpenGL, the virtual camera driver, cameras, microphones, models")
    doctor.add_argument("--avatar", metavar="default|PATH",
                        help="also check an avatar: its face rig (ARKit, VRM, visemes...) and what it cannot show")
    doctor.set_defaults(func=cmd_doctor)

    snap = sub.add_parser("snapshot", help="render one still of an avatar to a PNG")
    snap.add_argument("--avatar", default="default", metavar="default|PATH")
    snap.add_argument("--expression", type=parse_expressions, metavar="NAME=VALUE,...", help="e.g. jawOpen=1,eyeBlinkLeft=1")
    for angle in ("yaw", "pitch", "roll"):
        snap.add_argument(f"--{angle}", type=finite, default=0.0, metavar="DEG", help=f"head {angle} in degrees")
    snap.add_argument("--gaze-yaw", type=finite, default=0.0, metavar="DEG")
    snap.add_argument("--gaze-pitch", type=finite, default=0.0, metavar="DEG")
    snap.add_argument("--view-yaw", type=finite, default=0.0, metavar="DEG", help="orbit the camera (e.g. 35 for a three-quarter view)")
    snap.add_argument("--size", type=parse_size, default=DEFAULT_SIZE, metavar="WxH")
    snap.add_argument("--background", type=parse_snapshot_background, default=None, metavar="#RRGGBB|chroma|transparent",
                      help="background colour, chroma (#00b140), or transparent (writes an RGBA PNG)")
    add_framing_argument(snap)
    snap.add_argument("--out", type=Path, required=True, metavar="PNG")
    snap.set_defaults(func=cmd_snapshot)

    bench = sub.add_parser("bench", help="measure the live pipeline: latency per stage, fps, CPU, memory")
    add_source_arguments(bench, camera=False)
    add_voice_arguments(bench)
    bench.add_argument("--seconds", type=parse_seconds, default=20.0)
    bench.add_argument("--size", type=parse_size, default=DEFAULT_SIZE, metavar="WxH")
    bench.add_argument("--fps", type=parse_fps, default=DEFAULT_FPS)
    bench.add_argument("--sink", default="null", metavar="SPEC")
    bench.add_argument("--avatar", default="default", metavar="PATH")
    bench.add_argument("--background", type=parse_colour, default=None, metavar="#RRGGBB")
    add_framing_argument(bench)
    add_enhance_argument(bench)
    bench.add_argument("--models", action="store_true",
                       help="also time each ONNX model alone (emotion, lip-sync, voice activity, enhancement) on the provider in use")
    bench.add_argument("--raw-frames", type=int, default=200, help="frames for the MediaPipe-alone baseline")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--still", action="store_true",
                       help="the source shows a still face: report the output's jitter (always for --image)")
    bench.add_argument("--rates", type=parse_rates, default=None, metavar="FPS,FPS,...",
                       help="run the --video clip re-encoded at each camera rate (e.g. 15,24,25,30,60)")
    bench.add_argument("--loop", action="store_true", help="loop the video (and audio) file")
    bench.add_argument("--soak", action="store_true",
                       help="a long run: sample memory and fps every 5 s; report the memory slope (MB/min), "
                            "the fps range and every error")
    add_emotion_arguments(bench)

    analyze = sub.add_parser("analyze", help="print the emotion_update stream of a video, or one message per image or audio file")
    what = analyze.add_mutually_exclusive_group(required=True)
    what.add_argument("--video", type=Path, metavar="PATH")
    what.add_argument("--image", type=Path, nargs="+", metavar="PATH|DIR", help="images, or folders of images (searched recursively)")
    what.add_argument("--audio", type=Path, nargs="+", metavar="PATH|DIR",
                      help="audio files (or videos' sound), or folders of them (searched recursively): the voice's emotion")
    analyze.add_argument("--json", action="store_true", help="one JSON message per line (the only format)")
    analyze.set_defaults(func=cmd_analyze)
    bench.set_defaults(func=cmd_bench)
    return parser


def _log_file() -> Path:
    import platformdirs

    folder = Path(platformdirs.user_log_dir("avatarcam"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "avatarcam.log"


def main(argv: Sequence[str] | None = None, *, open_window: WindowOpener | None = None) -> int:
    """Run one command. ``open_window(args)`` opens the desktop app (the app's launcher passes it:
    the engine never imports the UI); without it, ``gui`` explains that there is no app."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    quiet_native_logs(args.verbose)
    keep_everything_local()  # before any library can phone home
    if args.command is None:
        # The main job: the camera if there is one, else the demo; a window where there is a display.
        args = parser.parse_args(["gui" if _has_display() else "demo", *(argv or [])])
    try:
        if args.func in (cmd_gui, cmd_demo):
            return args.func(args, open_window)
        return args.func(args)
    except AvatarcamError as exc:
        print(f"avatarcam: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("avatarcam: stopped.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:
        log_path = _log_file()
        with log_path.open("a", encoding="utf-8") as log:
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} avatarcam {' '.join(sys.argv[1:])}\n")
            log.write(traceback.format_exc())
        print(f"avatarcam: unexpected error ({sys.exc_info()[1]!r}); details in {log_path}. Please report it.",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
