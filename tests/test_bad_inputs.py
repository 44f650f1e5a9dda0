"""Hostile and careless inputs at the command line and the API: each is one clear line and a
non-zero exit, never a traceback, a hang or NaN in a message."""

from __future__ import annotations

import json
import math
import struct
import zlib

import pytest

from engine.commands import cli
from engine.errors import AvatarcamError


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def assert_one_line(code: int, err: str, *needles: str) -> None:
    assert code != 0, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle.lower() in lines[0].lower(), lines[0]


def huge_png(path, width: int = 60000, height: int = 60000):
    """A tiny PNG whose header claims ``width`` x ``height`` pixels."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    data += chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("argv, needle", [
    (["run", "--demo", "--seconds", "nan"], "finite"),
    (["run", "--demo", "--seconds", "inf"], "finite"),
    (["run", "--demo", "--seconds", "-1"], "above 0"),
    (["run", "--demo", "--expressiveness", "nan"], "finite"),
    (["bench", "--demo", "--expressiveness", "3"], "out of range"),
    (["snapshot", "--view-yaw", "inf", "--out", "x.png"], "finite"),
    (["snapshot", "--yaw", "nan", "--out", "x.png"], "finite"),
    (["snapshot", "--expression", "jawOpen=nan", "--out", "x.png"], "finite"),
])
def test_non_finite_and_out_of_range_numbers_are_refused(capsys, argv, needle):
    assert_one_line(*run_cli(capsys, *argv), needle)


def test_record_controls_into_a_missing_folder_or_a_folder(capsys, tmp_path):
    code, err = run_cli(capsys, "run", "--demo", "--sink", "null", "--seconds", "1",
                        "--record-controls", str(tmp_path / "nope" / "c.jsonl"))
    assert_one_line(code, err, "does not exist")
    code, err = run_cli(capsys, "run", "--demo", "--sink", "null", "--seconds", "1", "--record-controls", str(tmp_path))
    assert_one_line(code, err, "is a folder")


@pytest.mark.parametrize("out", ["x.txt", "folder"])
def test_snapshot_out_that_is_not_a_png_file(capsys, tmp_path, out):
    target = tmp_path / out
    if out == "folder":
        target.mkdir()
    assert_one_line(*run_cli(capsys, "snapshot", "--out", str(target)), ".png")


def test_an_image_whose_header_claims_60000x60000_is_refused_before_decoding(capsys, tmp_path):
    code, err = run_cli(capsys, "run", "--image", str(huge_png(tmp_path / "huge.png")), "--sink", "null",
                        "--seconds", "1")
    assert_one_line(code, err, "60000x60000")


def test_an_unreadable_audio_file_is_an_error_before_anything_runs(capsys, tmp_path):
    out = tmp_path / "never.mp4"
    code, err = run_cli(capsys, "run", "--demo", "--audio", str(tmp_path / "missing.wav"), "--sink", f"file:{out}",
                        "--seconds", "5")
    assert_one_line(code, err, "missing.wav")
    assert not out.exists(), "nothing ran"
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF....not audio at all" * 10)
    assert_one_line(*run_cli(capsys, "run", "--demo", "--audio", str(garbage), "--sink", "null"), "garbage.wav")


def test_the_session_api_refuses_non_finite_expressiveness(tmp_path):
    from engine.session import SessionSpec, SourceKind, build_session

    with pytest.raises(AvatarcamError, match="from 0 to 2"):
        build_session(SessionSpec(source=SourceKind.DEMO, sinks=("null",), expressiveness=math.nan))
    session = build_session(SessionSpec(source=SourceKind.DEMO, sinks=("null",)))
    for bad in (math.nan, math.inf, -0.5):
        with pytest.raises(AvatarcamError):
            session.set_expressiveness(bad)


def test_nan_never_reaches_a_message():
    from engine.fusion.fuser import EmotionState
    from engine.outputs.messages import MessageFactory
    from engine.packets import AvatarFrame

    frame = AvatarFrame(t_capture=1.0, sequence=1, controls={"jawOpen": math.nan, "browInnerUp": math.inf},
                        head=(math.nan, 0.0, math.inf), eyes=(math.nan, 1.0))
    factory = MessageFactory()
    text = json.dumps(factory.avatar_frame(frame, "aa", math.nan), allow_nan=False)  # raises on NaN
    assert json.loads(text)["payload"]["blendshapes"]["jawOpen"] == 0.0
    states = [s for s in _emotion_states() if isinstance(s, EmotionState)]
    for state in states[:1]:
        json.dumps(factory.emotion_update(state, frame), allow_nan=False)


def _emotion_states():
    from test_messages import demo_states

    return [state for _frame, state in demo_states(0.2)]
