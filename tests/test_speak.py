"""The speak API: another program makes the avatar speak over the authenticated WebSocket, and
``stop`` or the user's own voice (barge-in) silences it within 500 ms."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
from conftest import shared_file
from media_signals import silence, vowel, write_wav
from test_cli import assert_one_clear_line, run_cli
from test_mic import pulse as pulse_daemon  # noqa: F401  (a fixture: a private PulseAudio daemon)
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from engine.capture.audio import AudioFileSource
from engine.capture.decode import read_audio
from engine.commands.say import say
from engine.outputs.messages import load_schema
from engine.outputs.sinks import NullSink
from engine.session import SessionHooks, SessionSpec, build_session

SILENCE_BAR_S = 0.5


class Recorder:
    """Each output frame's jawOpen, and each chunk of speech handed to the output device, with times."""

    def __init__(self) -> None:
        self.jaw: list[tuple[float, float]] = []
        self.played: list[tuple[float, float]] = []  # (time handed over, peak level)
        self.lock = threading.Lock()

    def frame(self, frame) -> None:
        with self.lock:
            self.jaw.append((time.monotonic(), frame.state.controls["jawOpen"]))

    def play(self, samples: np.ndarray) -> None:
        with self.lock:
            self.played.append((time.monotonic(), float(np.abs(samples).max())))

    def last_sound(self) -> float:
        return max(t for t, level in self.played if level > 0.01)


def speak_session(recorder: Recorder, **spec):
    session = build_session(SessionSpec(speak=True, websocket="127.0.0.1:0", speech_output=None, size=(160, 96),
                                        sinks=(NullSink(),), **spec), SessionHooks(on_frame=recorder.frame),
                            microphone=spec.pop("microphone", None) if "microphone" in spec else None)
    session.speaking.queue.play = recorder.play  # what would go to the output device
    return session


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def url_of(session) -> tuple[str, str]:
    ws = session.pipeline.outputs.websocket
    return f"ws://127.0.0.1:{ws.port}/", ws.token


def test_speak_api_refuses_a_missing_or_wrong_token(capsys, tmp_path):
    with speak_session(Recorder()) as session:
        url, token = url_of(session)
        for bad in (url, url + "?token=wrong"):
            with pytest.raises(InvalidStatus) as refused:
                connect(bad, open_timeout=5)
            assert refused.value.response.status_code == 401
        wav = write_wav(tmp_path / "v.wav", vowel(0.3))
        code, _, err = run_cli(capsys, "say", "--ws", url, "--token", "wrong", str(wav))
        assert_one_clear_line(code, err, "refused", "token")
        assert session.speaking.state == "idle" and not session.speaking.queue.speaking


def test_speaks_a_wav_and_reports_events(tmp_path):
    recorder = Recorder()
    wav = write_wav(tmp_path / "u.wav", np.concatenate([vowel(0.6), silence(0.2), vowel(0.6)]))
    validate = _validator()
    with speak_session(recorder) as session:
        url, token = url_of(session)
        raw: list[dict] = []
        with connect(f"{url}?token={token}") as ws:  # an observer sees the same events
            events = [e for e in say(url, token, wav, emotion="happy", timeout=30)]
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not any(m["payload"]["event"] == "speech_finished" for m in raw):
                message = json.loads(ws.recv(timeout=5))
                if message["type"] == "speech_event":
                    raw.append(message)
        finished = time.monotonic()
        assert wait_until(lambda: recorder.jaw[-1][1] < 0.05 and recorder.jaw[-1][0] > finished, 2.0), \
            "the mouth rests once the speech is said"
        assert session.stats().speech_state == "idle"
    kinds = [e["event"] for e in events]
    assert kinds[0] in ("state", "speech_started") and "speech_started" in kinds and kinds[-1] == "speech_finished"
    assert {"event": "state", "state": "speaking", "utterance_id": "", "reason": ""} in events
    for message in raw:
        validate(message)
    seen = [(m["payload"]["event"], m["payload"]["state"]) for m in raw]
    assert ("speech_started", "speaking") in seen and ("speech_finished", "idle") in seen, seen
    jaw = np.array([j for _, j in recorder.jaw])
    assert jaw.max() > 0.3, "the avatar lip-syncs the speech"
    duration = sum(1 for _, level in recorder.played if level > 0.01) * 0.01
    assert duration == pytest.approx(1.2, abs=0.1), "all of the speech went to the output device"


def test_speech_state_shows_in_the_overlay():
    from app.overlay import overlay_lines
    from engine.runtime.stats import Stats

    assert "speech speaking" in "\n".join(overlay_lines(Stats(speech_state="speaking"), "audio_only"))
    assert "speech" not in "\n".join(overlay_lines(Stats(), "camera"))


def test_stop_silences_within_500_ms(tmp_path):
    recorder = Recorder()
    wav = write_wav(tmp_path / "long.wav", vowel(5.0))
    with speak_session(recorder) as session:
        url, token = url_of(session)
        sent = {}
        original_stop = session.speaking.stop

        def stop(reason="stop"):
            sent.setdefault("t", time.monotonic())
            original_stop(reason)

        session.speaking.stop = stop  # type: ignore[method-assign]
        events = list(say(url, token, wav, stop_after=0.8, timeout=30))
        stopped = sent["t"]
        assert wait_until(lambda: recorder.jaw[-1][0] > stopped + SILENCE_BAR_S, 5.0)
    assert events[-1]["event"] == "interrupted" and events[-1]["reason"] == "stop"
    to_silence = recorder.last_sound() - stopped
    print(f"stop -> silence {to_silence * 1000:.0f} ms")  # docs/PERFORMANCE.md (pytest -s)
    assert to_silence <= SILENCE_BAR_S, f"sound went on {to_silence:.3f} s after stop"
    closed = [t for t, jaw in recorder.jaw if t > stopped and jaw < 0.05]
    assert closed and closed[0] - stopped <= SILENCE_BAR_S, "the mouth closes within 500 ms"


def test_barge_in_the_users_voice_interrupts_the_avatar(tmp_path):
    """The microphone is a file here (1 s of silence, then speech): the user starts to talk while
    the avatar speaks. The PulseAudio null-sink version of this is test_speak_barge_in_pulse."""
    speech = read_audio(shared_file("media/speech_radio31.wav"))
    onset_in_file = 1.0 + float(np.argmax(np.abs(speech) > 0.05)) / 16000
    mic_wav = write_wav(tmp_path / "user.wav", np.concatenate([silence(1.0), speech[:16000 * 3]]))
    first_chunk: list[float] = []

    class Mic(AudioFileSource):
        def read(self):
            chunk = super().read()
            if chunk is not None and not first_chunk:
                first_chunk.append(chunk.t_capture)
            return chunk

    recorder = Recorder()
    avatar_wav = write_wav(tmp_path / "avatar.wav", vowel(6.0))
    session = build_session(SessionSpec(speak=True, websocket="127.0.0.1:0", speech_output=None, size=(160, 96),
                                        sinks=(NullSink(),)), SessionHooks(on_frame=recorder.frame),
                            microphone=Mic(mic_wav))
    session.speaking.queue.play = recorder.play
    with session:
        url, token = url_of(session)
        # The avatar starts speaking before the user's voice arrives (the mic file starts with 1 s of silence).
        events = list(say(url, token, avatar_wav, timeout=30))
    assert events[-1]["event"] == "interrupted" and events[-1]["reason"] == "barge_in", events
    user_starts = first_chunk[0] + onset_in_file
    to_silence = recorder.last_sound() - user_starts
    print(f"user's voice -> silence {to_silence * 1000:.0f} ms")  # docs/PERFORMANCE.md (pytest -s)
    assert 0.0 < to_silence <= SILENCE_BAR_S, f"the avatar went on {to_silence:.3f} s after the user started"


def test_speech_waits_for_an_output_device_that_falls_behind():
    """A device that takes the sound at 80 % of real time (it stalls, or its clock is slow): the
    speech is released for the mouth only as fast as it is heard, so no backlog builds up between
    the mouth and the sound (before, it grew to the 200 ms the player keeps)."""
    from engine.capture.speech import MAX_BACKLOG_S, SpeechQueue

    written = []
    start = time.monotonic()

    def backlog() -> float:
        return sum(written) / 16000 - 0.8 * (time.monotonic() - start)

    queue = SpeechQueue(play=lambda samples: written.append(len(samples)), backlog=lambda: max(0.0, backlog()))
    queue.open()
    queue.speak("u", vowel(1.0), end=True)
    behind, released = [], []
    while sum(written) < 16000:
        chunk = queue.read()
        assert chunk is not None
        released.append((time.monotonic(), chunk.t_end))
        behind.append(backlog())
    assert max(behind) <= MAX_BACKLOG_S + 0.01 + 0.005, max(behind)  # one chunk over the bar, some jitter
    # Stamped like a microphone's: each chunk's last sample no later than its release.
    assert all(t_end <= t + 1e-3 for t, t_end in released)


def test_malformed_requests_are_rejected_not_fatal():
    with speak_session(Recorder()) as session:
        url, token = url_of(session)
        with connect(f"{url}?token={token}") as ws:
            ws.send(json.dumps({"type": "speak", "emotion": "smug"}))
            message = next_event(ws)
            assert message["payload"]["event"] == "rejected" and "smug" in message["payload"]["reason"]
            ws.send(json.dumps({"type": "speak"}))
            ws.send(b"\x01\x02\x03")  # not whole PCM16 frames
            assert next_event(ws)["payload"]["event"] == "rejected"
        assert session.running


def test_speak_without_the_websocket_is_one_clear_line(capsys):
    code, _, err = run_cli(capsys, "run", "--speak", "--sink", "null", "--seconds", "1")
    assert_one_clear_line(code, err, "--ws")


def next_event(ws) -> dict:
    """The next speech_event (the data stream's avatar_frame messages come on the same socket)."""
    while (message := json.loads(ws.recv(timeout=5)))["type"] != "speech_event":
        pass
    return message


def _validator():
    import jsonschema

    schema = load_schema("speech_event")
    return lambda message: jsonschema.validate(message, schema)


def test_speak_barge_in_pulse(pulse_daemon, monkeypatch, tmp_path):  # noqa: F811  (the fixture imported above)
    """Through a real sound server: the avatar's speech plays into one PulseAudio null sink (a virtual
    microphone for a meeting), the user's voice is played into another whose monitor is the microphone."""
    import subprocess

    from test_mic import SINK, _pulse_device

    from engine.capture.audio import MicrophoneSource

    subprocess.run(["pactl", "load-module", "module-null-sink", "sink_name=avatar_out"], env=pulse_daemon.env, check=True,
                   capture_output=True)
    monkeypatch.setenv("PULSE_SINK", "avatar_out")  # the ALSA 'pulse' device plays there
    MicrophoneSource._reinitialise_portaudio()
    device = _pulse_device()
    recording = subprocess.Popen(["parecord", "--device=avatar_out.monitor", "--raw", "--format=s16le", "--rate=16000",
                                  "--channels=1", str(tmp_path / "avatar.raw")], env=pulse_daemon.env)
    speech = read_audio(shared_file("media/speech_radio31.wav"))
    user_wav = write_wav(tmp_path / "user.wav", speech[:16000 * 2])
    avatar_wav = write_wav(tmp_path / "avatar.wav", vowel(15.0))  # room for PulseAudio's slow start under load
    recorder = Recorder()
    events: list[dict] = []
    session = build_session(SessionSpec(speak=True, websocket="127.0.0.1:0", speech_output=device, microphone=device,
                                        size=(160, 96), sinks=(NullSink(),)), SessionHooks(on_frame=recorder.frame))
    try:
        with session:
            assert session.speaking.player is not None, session.speaking.status
            play = session.speaking.queue.play
            session.speaking.queue.play = lambda samples: (recorder.play(samples), play(samples))
            url, token = url_of(session)
            client = threading.Thread(target=lambda: events.extend(say(url, token, avatar_wav, timeout=30)))
            client.start()
            player = session.speaking.player
            heard: list[float] = []  # capture times of the microphone's chunks with the user's voice in them
            microphone = session.speaking.microphone
            read = microphone.read

            chunks: list[tuple[float, float]] = []  # every microphone chunk: capture time, duration

            def listen():
                chunk = read()
                if chunk is not None:
                    chunks.append((chunk.t_capture, chunk.duration))
                    if np.abs(chunk.samples).max() > 0.05:
                        heard.append(chunk.t_capture)
                return chunk

            microphone.read = listen
            # PulseAudio may take a few seconds to start a stream on a loaded machine; a sound server
            # that never starts the streams is the machine's trouble, not the speak API's.
            if not wait_until(lambda: player.samples_played >= 8000, 20.0):
                pytest.skip("PulseAudio did not start the output stream within 20 s (machine overloaded)")
            since = time.monotonic()
            subprocess.Popen(["paplay", f"--device={SINK}", str(user_wav)], env=pulse_daemon.env)
            client.join(20.0)
            if not heard and sum(d for t, d in chunks if t >= since) < 0.5 * (time.monotonic() - since):
                pytest.skip("PulseAudio stalled the microphone stream (machine overloaded)")
    finally:
        recording.terminate()
        recording.wait(5)
    assert heard, f"the user's voice never reached the microphone ({session.speaking.status})"
    assert events and events[-1]["event"] == "interrupted" and events[-1]["reason"] == "barge_in", events
    to_silence = recorder.last_sound() - heard[0]  # from the user's voice reaching the microphone
    print(f"user's voice (PulseAudio microphone) -> silence {to_silence * 1000:.0f} ms")  # docs/PERFORMANCE.md (pytest -s)
    assert to_silence <= SILENCE_BAR_S
    played = np.frombuffer((tmp_path / "avatar.raw").read_bytes(), dtype="<i2").astype(np.float32) / 32768
    blocks = np.abs(played[:len(played) // 160 * 160]).reshape(-1, 160).max(axis=1)
    sounding = (blocks > 0.05).sum() / 100  # seconds of 10 ms blocks with sound in them
    print(f"the output device got {sounding:.2f} s of speech")
    assert 0.3 < sounding < 14.0, "the speech (15 s) reached the output device, and stopped early"


def test_speak_mouth_follows_the_played_sound_pulse(pulse_daemon, monkeypatch, tmp_path):  # noqa: F811
    """Mouth vs sound as a meeting would get them: the speech plays into a PulseAudio null sink and is
    captured back from its monitor (when the sound server really played it), and each output frame's
    jawOpen is stamped when the frame is handed to the outputs; both on the monotonic clock. Six
    vowel bursts after silence: the mouth opens within 50 ms of each burst being heard."""
    import subprocess

    from media_signals import bursts, onsets
    from test_mic import _pulse_device

    from engine.capture.audio import MicrophoneSource

    subprocess.run(["pactl", "load-module", "module-null-sink", "sink_name=avatar_out"], env=pulse_daemon.env, check=True,
                   capture_output=True)
    monkeypatch.setenv("PULSE_SINK", "avatar_out")  # the ALSA 'pulse' device plays there...
    monkeypatch.setenv("PULSE_SOURCE", "avatar_out.monitor")  # ...and records what it played
    MicrophoneSource._reinitialise_portaudio()
    device = _pulse_device()
    monitor = MicrophoneSource(device)
    heard: list[tuple[float, np.ndarray]] = []
    stop = threading.Event()

    def listen():
        while not stop.is_set() and (chunk := monitor.read()) is not None:
            heard.append((chunk.t_capture, chunk.samples))

    wav = write_wav(tmp_path / "bursts.wav", np.concatenate([silence(1.0), bursts(6)]))
    recorder = Recorder()
    session = build_session(SessionSpec(speak=True, websocket="127.0.0.1:0", speech_output=device, size=(160, 96),
                                        sinks=(NullSink(),)), SessionHooks(on_frame=recorder.frame))
    monitor.open()
    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    try:
        with session:
            assert session.speaking.player is not None, session.speaking.status
            if not wait_until(lambda: len(heard) >= 50, 20.0):
                pytest.skip("PulseAudio did not start the monitor stream within 20 s (machine overloaded)")
            url, token = url_of(session)
            events = list(say(url, token, wav, timeout=30))
            assert events[-1]["event"] == "speech_finished", events
            spoken = time.monotonic()
            assert wait_until(lambda: heard and heard[-1][0] > spoken + 0.3, 5.0)
    finally:
        stop.set()
        monitor.close()
        listener.join(5.0)
    # The sound as heard: a 5 ms envelope on the capture times of the monitor's chunks.
    times = np.concatenate([t + np.arange(len(s)) / 16000 for t, s in heard])
    samples = np.concatenate([s for _, s in heard])
    hop = 80
    envelope = np.abs(samples[:len(samples) // hop * hop]).reshape(-1, hop).max(axis=1)
    sound = onsets(envelope, times[::hop][:len(envelope)], 0.5 * envelope.max())
    jaw_t = np.array([t for t, _ in recorder.jaw])
    jaw = np.array([j for _, j in recorder.jaw])
    offsets = []
    for onset in sound:
        near = (jaw_t >= onset - 0.25) & (jaw_t <= onset + 0.35)
        if near.sum() < 5:
            continue
        rise = jaw[near] - jaw[near].min()
        mouth = onsets(rise, jaw_t[near], 0.5 * rise.max())
        if mouth:
            offsets.append(mouth[0] - onset)
    print("mouth - played sound (ms):", [round(o * 1000) for o in offsets])  # docs/PERFORMANCE.md (pytest -s)
    assert len(offsets) >= 5, f"{len(sound)} bursts heard, {len(jaw)} frames (jawOpen up to {jaw.max():.2f}): {offsets}"
    assert abs(float(np.median(offsets))) <= 0.05, offsets
