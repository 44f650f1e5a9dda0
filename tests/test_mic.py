"""The microphone source through a real sound server: a PulseAudio null sink whose ``.monitor``
source records what ``paplay`` plays into it. The test starts and stops its own daemon, and skips
when PulseAudio is not installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time

import numpy as np
import pytest
from conftest import shared_file

from engine.capture.audio import MicrophoneSource
from engine.perception.voice.vad import EnergyVad
from engine.perception.voice.voice import VoiceAnalyzer, VoiceOptions

SINK = "avatarcam_test"


class PulseDaemon:
    def __init__(self, runtime) -> None:
        self.runtime = runtime
        self.env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "PULSE_RUNTIME_PATH": str(runtime / "pulse"),
                    "PULSE_SERVER": f"unix:{runtime}/pulse/native"}
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["pulseaudio", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit", "-n",
             "--load=module-native-protocol-unix", f"--load=module-null-sink sink_name={SINK}", "--log-target=stderr"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:  # poll for readiness (a real condition, not a fixed sleep)
            if subprocess.run(["pactl", "info"], env=self.env, capture_output=True).returncode == 0:
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        pytest.skip("PulseAudio did not start here")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5.0)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5.0)
        self.process = None


@pytest.fixture
def pulse(tmp_path, monkeypatch):
    for tool in ("pulseaudio", "pactl", "paplay"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (apt-get install pulseaudio pulseaudio-utils)")
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    daemon = PulseDaemon(runtime)
    daemon.start()
    for key in ("XDG_RUNTIME_DIR", "PULSE_RUNTIME_PATH", "PULSE_SERVER"):
        monkeypatch.setenv(key, daemon.env[key])
    monkeypatch.setenv("PULSE_SOURCE", f"{SINK}.monitor")  # the ALSA 'pulse' device records the monitor
    # PortAudio lists devices when it initialises; an earlier test may have done so with no server.
    MicrophoneSource._reinitialise_portaudio()
    yield daemon
    daemon.stop()
    MicrophoneSource._reinitialise_portaudio()


def _pulse_device() -> str:
    from engine.capture.audio import list_microphones

    names = [m.name for m in list_microphones()]
    if "pulse" not in names:
        pytest.skip(f"PortAudio has no ALSA 'pulse' device (libasound2-plugins); inputs: {names}")
    return "pulse"


def test_microphone_records_speech_and_the_mouth_moves_only_while_it_plays(pulse):
    wav = shared_file("media/speech_radio31.wav")
    mic = MicrophoneSource(_pulse_device())
    mic.open()
    assert mic.status.startswith("ok") and mic.rate > 0
    analyzer = VoiceAnalyzer(VoiceOptions(use_silero=False), vad=EnergyVad())
    frames = []
    stop = threading.Event()

    def capture():
        while not stop.is_set():
            chunk = mic.read()
            if chunk is None:
                return
            frame = analyzer.process(chunk.samples, chunk.t_capture)
            if frame is not None:
                frames.append((time.monotonic(), frame))

    reader = threading.Thread(target=capture)
    reader.start()
    try:
        deadline = time.monotonic() + 5.0
        while len(frames) < 100 and time.monotonic() < deadline:  # ~1 s of the silent monitor first
            time.sleep(0.02)
        play_start = time.monotonic()
        subprocess.run(["paplay", f"--device={SINK}", str(wav)], env=pulse.env, check=True, timeout=30)
        play_end = time.monotonic()
        deadline = time.monotonic() + 5.0
        while (not frames or frames[-1][0] < play_end + 1.0) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        mic.close()
        reader.join(2.0)
    assert not reader.is_alive(), "close() must wake a blocked read()"
    jaw = np.array([f.mouth["jawOpen"] for _, f in frames])
    t_cap = np.array([f.t_mouth for _, f in frames])
    before = jaw[t_cap < play_start - 0.05]
    during = jaw[(t_cap > play_start + 0.3) & (t_cap < play_end - 0.3)]
    after = jaw[t_cap > play_end + 0.5]
    print(f"play {play_start:.3f}..{play_end:.3f}; first open mouth at "
          f"{t_cap[np.argmax(jaw > 0.05)]:.3f}, last at {t_cap[len(jaw) - 1 - np.argmax(jaw[::-1] > 0.05)]:.3f}")
    # One VoiceFrame per chunk the device delivers (PulseAudio: ~20-40 ms).
    assert len(before) > 10 and len(during) > 100 and len(after) > 5
    assert before.max() <= 0.05, "the mouth rests before the speech"
    assert during.max() > 0.3 and during.std() > 0.05, "the mouth moves with the speech"
    assert after.max() <= 0.05, "the mouth rests after the speech"
    assert np.all(np.diff(t_cap) > 0), "capture times only increase"


def test_lost_microphone_is_reported_and_capture_resumes_when_it_returns(pulse):
    mic = MicrophoneSource(_pulse_device())
    mic.open()
    chunks = []
    stop = threading.Event()

    def capture():
        while not stop.is_set():
            chunk = mic.read()
            if chunk is None:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=capture)
    reader.start()
    try:
        pulse.stop()  # the device disappears
        deadline = time.monotonic() + 5.0
        while "lost" not in mic.status and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "lost" in mic.status
        count = len(chunks)
        pulse.start()  # ...and comes back
        deadline = time.monotonic() + 10.0
        while (mic.reconnects == 0 or len(chunks) <= count + 10) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert mic.reconnects >= 1 and mic.status.startswith("ok")
        assert len(chunks) > count + 10, "capture resumed"
    finally:
        stop.set()
        mic.close()
        reader.join(2.0)


class FakeInputStream:
    """sounddevice.InputStream stand-in: delivers 10 ms blocks of a tone from its own thread."""

    opened: list[int] = []  # device indices, in order
    last: FakeInputStream | None = None

    def __init__(self, *, device, channels, samplerate, callback, **_) -> None:
        FakeInputStream.opened.append(device)
        FakeInputStream.last = self
        self.samplerate, self.channels, self._callback = samplerate, channels, callback
        self.active = False
        self._done = threading.Event()

    def start(self) -> None:
        self.active = True
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        frames = int(self.samplerate // 100)
        block = np.full((frames, self.channels), 0.1, dtype=np.float32)
        status = type("Status", (), {"input_overflow": False})()
        while not self._done.wait(0.01):
            self._callback(block, frames, None, status)

    def abort(self) -> None:
        self._done.set()
        self.active = False

    close = abort


@pytest.fixture
def fake_devices(monkeypatch):
    """A device list the test edits, and fake streams on it."""
    import sounddevice as sd

    from engine.capture import audio as sources

    devices: list = []
    monkeypatch.setattr(sources, "list_microphones", lambda: list(devices))
    monkeypatch.setattr(sd, "InputStream", FakeInputStream)
    monkeypatch.setattr(MicrophoneSource, "_reinitialise_portaudio", staticmethod(lambda: None))
    FakeInputStream.opened = []
    return devices


class Reader:
    """Reads ``mic`` on its own thread (a read waits while the device is away)."""

    def __init__(self, mic: MicrophoneSource) -> None:
        self.chunks: list = []
        self._thread = threading.Thread(target=self._run, args=(mic,), daemon=True)
        self._thread.start()

    def _run(self, mic: MicrophoneSource) -> None:
        while (chunk := mic.read()) is not None:
            self.chunks.append(chunk)

    def join(self) -> None:
        self._thread.join(2.0)


def _wait_for(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)  # polling a condition with a deadline
    assert condition()


def test_unknown_microphone_is_waited_for_and_the_status_names_the_ones_there_are(fake_devices):
    from engine.capture.audio import MicrophoneInfo

    fake_devices.append(MicrophoneInfo(3, "USB Mic", 1, 48000.0))
    mic = MicrophoneSource("nope")
    mic.open()  # asked for, so not given up on: waited for instead
    reader = Reader(mic)
    try:
        assert "retrying every second" in mic.status and "No microphone 'nope'" in mic.status
        assert "3: USB Mic" in mic.status
        fake_devices.clear()
        _wait_for(lambda: "No microphone was found" in mic.status, 3.0)
        assert "retrying every second" in mic.status or "waiting for it" in mic.status
    finally:
        mic.close()
        reader.join()


def test_a_microphone_missing_at_start_is_opened_when_it_appears(fake_devices):
    from engine.capture.audio import MicrophoneInfo

    mic = MicrophoneSource("Headset")
    mic.open()
    reader = Reader(mic)
    try:
        assert "not available: retrying every second" in mic.status
        fake_devices.append(MicrophoneInfo(4, "USB Headset", 2, 48000.0))
        _wait_for(lambda: len(reader.chunks) > 3)
        assert mic.status.startswith("ok: USB Headset")
    finally:
        mic.close()
        reader.join()


def test_a_replugged_microphone_is_followed_by_name_not_index(fake_devices):
    from engine.capture.audio import MicrophoneInfo

    fake_devices[:] = [MicrophoneInfo(1, "Built-in", 2, 48000.0), MicrophoneInfo(2, "USB Headset", 2, 48000.0)]
    mic = MicrophoneSource(2)  # asked for by index
    mic.open()
    reader = Reader(mic)
    try:
        assert mic.status.startswith("ok: USB Headset") and FakeInputStream.opened == [2]
        # Unplugged: another device takes index 2 while the headset is away...
        fake_devices[:] = [MicrophoneInfo(1, "Built-in", 2, 48000.0), MicrophoneInfo(2, "HDMI Audio", 2, 48000.0)]
        FakeInputStream.last.abort()  # the device stops delivering...
        mic._lost = True  # ...and PortAudio's finished callback reports it
        _wait_for(lambda: "No microphone 'USB Headset'" in mic.status, 4.0)
        assert FakeInputStream.opened == [2], "the device now at index 2 is not the one asked for"
        # ...and it returns at index 5.
        fake_devices.append(MicrophoneInfo(5, "USB Headset", 2, 48000.0))
        _wait_for(lambda: mic.reconnects == 1, 3.0)
        assert FakeInputStream.opened == [2, 5] and mic.status.startswith("ok: USB Headset")
    finally:
        mic.close()
        reader.join()


def test_a_busy_or_broken_microphone_is_reported_and_retried_not_a_crash(monkeypatch):
    import sounddevice as sd

    from engine.capture import audio as sources

    monkeypatch.setattr(sources, "list_microphones", lambda: [sources.MicrophoneInfo(0, "Busy Mic", 2, 48000.0)])

    def busy(*args, **kwargs):
        raise sd.PortAudioError("Device unavailable [PaErrorCode -9985]")

    monkeypatch.setattr(sd, "InputStream", busy)
    mic = MicrophoneSource("Busy")
    mic.open()
    assert "Cannot open the microphone 'Busy Mic'" in mic.status and "in use by another program" in mic.status
    assert "retrying every second" in mic.status
    mic.close()
