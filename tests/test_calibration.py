"""Calibration: the guided capture's numbers, profiles on disk, and live application by the pipeline."""

from __future__ import annotations

import threading

import pytest
from fakes import FakeCameraFaces

from engine.calibration import CALIBRATION_STEPS, DEFAULT_GAINS, NEUTRAL_STEP, Calibration, CalibrationSession
from engine.errors import AvatarcamError
from engine.packets import FaceFrame
from engine.profiles import ProfileStore
from engine.runtime.pipeline import Pipeline, PipelineOptions


def face(i: int, head=(0.0, 0.0, 0.0), **blendshapes) -> FaceFrame:
    return FaceFrame(t_capture=i / 30, index=i, present=True, confidence=1.0, blendshapes=blendshapes,
                     head_rotation=head)


def test_session_neutral_is_the_median_resting_face_and_maxima_set_the_gain():
    session = CalibrationSession()
    session.begin(NEUTRAL_STEP.name)
    for i, smile in enumerate([0.10, 0.12, 0.11, 0.50, 0.11]):  # one outlier frame
        session.add(face(i, head=(2.0 + i * 0.01, -3.0, 0.5), mouthSmileLeft=smile, mouthSmileRight=0.12, jawOpen=0.05))
    session.add(FaceFrame(t_capture=1.0, index=9, present=False))  # no face: ignored
    assert session.end() == 5
    session.begin("smile")
    for i in range(20):
        session.add(face(i, mouthSmileLeft=0.1 + 0.6 * i / 19, mouthSmileRight=0.12))
    session.end()
    cal = session.result()
    assert cal.neutral["mouthSmileLeft"] == pytest.approx(0.11)
    assert cal.neutral["jawOpen"] == pytest.approx(0.05)
    assert cal.head_neutral == pytest.approx((2.02, -3.0, 0.5))
    top = cal.maximum["mouthSmileLeft"]
    assert 0.66 < top <= 0.7
    assert cal.gain["mouthSmileLeft"] == pytest.approx((1 - 0.11) / (top - 0.11), abs=1e-3)
    # The calibrated maximum reaches 1; the resting face reads 0.
    assert cal.apply({"mouthSmileLeft": top})["mouthSmileLeft"] == pytest.approx(1.0, abs=1e-3)
    assert cal.apply({"mouthSmileLeft": 0.11})["mouthSmileLeft"] == 0.0
    # Right smile never moved away from neutral (0 range): its gain is not touched.
    assert cal.gain.get("mouthSmileRight", 1.0) == 1.0
    # Steps not done keep the defaults.
    assert cal.gain["eyeBlinkLeft"] == DEFAULT_GAINS["eyeBlinkLeft"]


def test_every_guided_step_names_real_controls():
    from engine.vocabulary.arkit import ARKIT_INDEX

    names = [step.name for step in CALIBRATION_STEPS]
    assert names == ["smile", "brows_up", "jaw_open", "left_eye", "right_eye", "pucker", "frown"]
    assert all(c in ARKIT_INDEX for step in CALIBRATION_STEPS for c in step.controls)
    assert NEUTRAL_STEP.seconds == 3.0


def test_profiles_save_list_rename_delete(tmp_path):
    store = ProfileStore(tmp_path / "profiles")
    assert store.names() == []
    cal = Calibration(neutral={"jawOpen": 0.07}, gain={"jawOpen": 1.5}, head_neutral=(1.0, 2.0, 3.0),
                      maximum={"jawOpen": 0.7})
    store.save("Me", cal)
    store.save("office light", Calibration())
    assert store.names() == ["Me", "office light"]
    loaded = store.load("Me")
    assert (loaded.neutral, loaded.gain, loaded.head_neutral, loaded.maximum) == (
        cal.neutral, cal.gain, cal.head_neutral, cal.maximum)
    store.rename("Me", "Me at home")
    assert store.names() == ["Me at home", "office light"]
    with pytest.raises(AvatarcamError, match="already exists"):
        store.rename("Me at home", "office light")
    for bad in ("", "a/b", "..", "x" * 61):
        with pytest.raises(AvatarcamError, match="cannot be a profile name"):
            store.save(bad, cal)
    store.delete("office light")
    assert store.names() == ["Me at home"]
    assert "images" not in (tmp_path / "profiles" / "Me at home.json").read_text()


def test_pipeline_applies_a_new_calibration_while_running(default_avatar_path):
    jaw: list[float] = []
    lock = threading.Condition()

    def on_frame(frame):
        if frame.fresh and frame.state.face_present:
            with lock:
                jaw.append(frame.state.controls["jawOpen"])
                lock.notify_all()

    def wait_for(n: int) -> None:
        with lock:
            assert lock.wait_for(lambda: len(jaw) >= n, timeout=15.0)

    source = FakeCameraFaces()  # jawOpen 0.3 on every frame
    opened = []
    pipeline = Pipeline(source, [], PipelineOptions(size=(160, 90), avatar=default_avatar_path), on_frame=on_frame,
                        on_source=opened.append)
    with pipeline:
        wait_for(40)
        before = jaw[-1]
        pipeline.set_calibration(Calibration(neutral={"jawOpen": 0.3}))
        start = len(jaw)
        wait_for(start + 40)
        after = jaw[-1]
    assert opened == [True, False]
    assert before == pytest.approx(0.3, abs=0.02)
    assert after < 0.02, "the resting jaw reads as closed once calibrated"
