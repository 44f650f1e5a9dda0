"""Animation stage: calibration, filtering, face loss and return, idle life, head split."""

from __future__ import annotations

import numpy as np

from engine.animation.animator import Animator, AnimatorOptions
from engine.calibration import Calibration
from engine.packets import FaceFrame

FPS = 30.0


def face(i: int, present: bool = True, **blendshapes: float) -> FaceFrame:
    return FaceFrame(t_capture=i / FPS, index=i, present=present, confidence=1.0,
                     blendshapes=blendshapes, head_rotation=(12.0, -6.0, 3.0) if present else (0.0, 0.0, 0.0))


def run(animator: Animator, frames: list[FaceFrame | None], start: int = 0):
    return [animator.update(f, (start + i) / FPS) for i, f in enumerate(frames)]


def test_tracked_face_drives_controls_and_head_split_over_neck_and_head():
    animator = Animator()
    out = run(animator, [face(i, jawOpen=0.7) for i in range(30)])
    last = out[-1]
    assert abs(last.controls["jawOpen"] - 0.7) < 0.01
    total = np.add(last.head, last.neck)
    assert np.allclose(total, (12.0, -6.0, 3.0), atol=0.05)
    assert 0 < abs(last.neck[0]) < abs(last.head[0])
    assert last.face_present


def test_face_lost_eases_to_a_living_neutral_and_returns_without_a_jump():
    animator = Animator()
    frames = [face(i, jawOpen=0.8, mouthSmileLeft=0.6) for i in range(30)]
    frames += [face(i, present=False) for i in range(30, 30 + 300)]  # 10 s without a face
    frames += [face(i, jawOpen=0.8, mouthSmileLeft=0.6) for i in range(330, 390)]
    out = run(animator, frames)
    jaw = np.array([f.controls["jawOpen"] for f in out])
    blink = np.array([f.controls["eyeBlinkLeft"] for f in out])
    yaw = np.array([f.head[0] + f.neck[0] for f in out])

    lost = slice(30 + 30, 330)  # from 1 s after the loss
    assert jaw[lost].max() < 1e-6, "the mouth rests while the face is gone"
    assert not out[100].face_present
    assert blink[lost].max() > 0.9, "idle life blinks"
    assert np.count_nonzero(np.diff((blink[lost] > 0.5).astype(int)) == 1) >= 2, "more than one blink in 9 s"
    assert np.ptp(yaw[lost]) > 1.0, "the head keeps moving a little"
    assert np.abs(np.diff(jaw)).max() < 0.2, "neither loss nor return jumps"
    assert abs(jaw[-1] - 0.8) < 0.01 and out[-1].face_present


def test_camera_stall_counts_as_lost_after_the_timeout():
    animator = Animator(AnimatorOptions(lost_after_s=0.4))
    run(animator, [face(i, jawOpen=0.5) for i in range(10)])
    # No new perception at all (None) for 2 s: the avatar must not freeze on the last face.
    out = run(animator, [None] * 60, start=10)
    assert out[5].face_present and not out[-1].face_present
    assert out[-1].controls["jawOpen"] < 0.01


def test_calibration_maps_the_resting_face_to_zero_and_keeps_the_range():
    calibration = Calibration(neutral={"jawOpen": 0.2}, gain={"jawOpen": 1.0})
    animator = Animator(AnimatorOptions(calibration=calibration))
    rest = run(animator, [face(i, jawOpen=0.2) for i in range(30)])[-1]
    wide = run(animator, [face(i, jawOpen=1.0) for i in range(30, 60)], start=30)[-1]
    assert rest.controls["jawOpen"] < 0.01
    assert wide.controls["jawOpen"] > 0.98


def test_calibration_round_trips_through_a_file(tmp_path):
    calibration = Calibration(neutral={"jawOpen": 0.1}, gain={"eyeBlinkLeft": 1.7}, head_neutral=(1.0, -2.0, 0.5))
    calibration.save(tmp_path / "profile.json")
    loaded = Calibration.load(tmp_path / "profile.json")
    assert loaded == calibration
