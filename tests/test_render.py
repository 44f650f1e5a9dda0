"""``avatarcam render``: a talking head from audio alone, offline, into an mp4 with the sound."""

from __future__ import annotations

import av
import numpy as np
import pytest
from conftest import shared_file
from media_signals import silence, vowel, write_wav
from test_cli import assert_one_clear_line, run_cli

from engine.session import SessionSpec, build_render

SIZE = (320, 180)
FPS = 15.0


def durations(path) -> tuple[float, float]:
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert audio.codec_context.name == "aac" and video.codec_context.name == "h264"
        return float(video.duration * video.time_base), float(audio.duration * audio.time_base)


def mouth_change(path) -> tuple[np.ndarray, np.ndarray]:
    """(frame times, mean change of the mouth region against the first frame, in grey levels)."""
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24").astype(np.int16) for f in container.decode(video=0)]
    h, w = frames[0].shape[:2]
    box = (slice(int(0.38 * h), int(0.49 * h)), slice(int(0.45 * w), int(0.55 * w)))  # the default framing's mouth
    reference = frames[0][box]
    change = np.array([np.abs(f[box] - reference).mean() for f in frames])
    return np.arange(len(frames)) / FPS, change


def test_render_speech_has_sound_and_picture_of_the_same_length(tmp_path):
    out = tmp_path / "talk.mp4"
    spec = SessionSpec(audio=shared_file("media/speech_radio31.wav"), size=SIZE, fps=FPS, sinks=(f"file:{out}",))
    progress = []
    result = build_render(spec).run(lambda done, total: progress.append((done, total)))
    video_s, audio_s = durations(out)
    assert abs(video_s - audio_s) <= 0.1
    assert abs(audio_s - result.media_seconds) <= 0.05
    assert progress[-1] == (result.frames, result.frames) and len(progress) == result.frames
    _, change = mouth_change(out)
    assert change.max() > 8.0  # the mouth moved with the speech


def test_mouth_moves_during_sound_and_rests_in_silence(tmp_path):
    wav = write_wav(tmp_path / "st.wav", np.concatenate([silence(1.0), vowel(1.0), silence(1.0)]))
    out = tmp_path / "st.mp4"
    build_render(SessionSpec(audio=wav, size=SIZE, fps=FPS, sinks=(f"file:{out}",))).run()
    times, change = mouth_change(out)
    before = change[times < 0.95]
    during = change[(times > 1.1) & (times < 1.95)]
    after = change[times > 2.6]  # the jaw has closed again (release ~40 ms, plus the voice's hand-over)
    # Silence: only the slow idle drift of the head moves the region; speech opens the mouth.
    assert during.min() > 2.0 * max(before.max(), after.max()), (before, during, after)


def test_render_with_an_emotion_hint_changes_the_face(tmp_path):
    wav = write_wav(tmp_path / "s.wav", silence(0.5))
    images = {}
    for name, hint in (("plain", None), ("happy", "happy")):
        out = tmp_path / f"{name}.mp4"
        from engine.vocabulary.emotions import Emotion

        build_render(SessionSpec(audio=wav, size=SIZE, fps=FPS, sinks=(f"file:{out}",),
                                 emotion_hint=Emotion(hint) if hint else None)).run()
        with av.open(str(out)) as container:
            images[name] = [f.to_ndarray(format="rgb24").astype(np.int16) for f in container.decode(video=0)][-1]
    assert np.abs(images["plain"] - images["happy"]).mean() > 0.2  # a smile and squinted eyes


def test_render_cli_reports_the_realtime_factor(capsys, tmp_path):
    wav = write_wav(tmp_path / "v.wav", vowel(0.5))
    out = tmp_path / "v.mp4"
    code, _, err = run_cli(capsys, "render", "--audio", str(wav), "--out", str(out), "--size", "160x96", "--fps", "10")
    assert code == 0, err
    assert "real-time factor" in err and "100%" in err
    video_s, audio_s = durations(out)
    assert abs(video_s - audio_s) <= 0.1


@pytest.mark.parametrize("content", [None, b"this is not audio", b"RIFF\x00\x00\x00\x00WAVEfmt garbage"])
def test_render_unreadable_audio_is_one_clear_line(capsys, tmp_path, content):
    path = tmp_path / "speech.wav"
    if content is not None:
        path.write_bytes(content)
    code, _, err = run_cli(capsys, "render", "--audio", str(path), "--out", str(tmp_path / "o.mp4"), "--size", "160x96")
    assert_one_clear_line(code, err, "speech.wav")
    assert not (tmp_path / "o.mp4").exists() or (tmp_path / "o.mp4").stat().st_size == 0
