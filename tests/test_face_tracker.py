"""Face perception on the shared clips: blendshapes, head pose, no face, several faces, loss and return."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest
from conftest import shared_file

from engine.errors import ModelError
from engine.packets import VideoFrame
from engine.perception.face_tracker import FaceTracker, FaceTrackerOptions
from engine.vocabulary.arkit import ARKIT_BLENDSHAPES


def frames_of(path, limit=None):
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if limit is not None and i >= limit:
                return
            yield frame.to_ndarray(format="rgb24")


def video_frame(image: np.ndarray, i: int) -> VideoFrame:
    return VideoFrame(image=np.ascontiguousarray(image), t_capture=i / 30.0, index=i)


@pytest.fixture
def tracker(face_model):
    with FaceTracker(FaceTrackerOptions(model_path=face_model)) as t:
        yield t


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(shared_file("media/portrait_s0.jpg"))), cv2.COLOR_BGR2RGB)


def test_jaw_open_follows_the_mouth_in_the_expressions_clip(tracker):
    faces = [tracker.process(video_frame(img, i)) for i, img in enumerate(frames_of(shared_file("media/expressions_d10.mp4"), 140))]
    assert all(f.present for f in faces)
    jaw = np.array([f.blendshapes["jawOpen"] for f in faces])
    # The clip opens the mouth wide (around frame 95-100) from a closed rest at the start.
    assert jaw[:4].max() < 0.1
    assert jaw[90:105].max() > 0.7
    assert set(faces[0].blendshapes) == set(ARKIT_BLENDSHAPES)
    assert faces[0].timings["track"] > 0


def test_portrait_is_found_facing_the_camera(tracker, portrait):
    face = tracker.process(video_frame(portrait, 0))
    assert face.present and face.confidence > 0.5
    yaw, pitch, roll = face.head_rotation
    assert abs(yaw) < 20 and abs(pitch) < 20 and abs(roll) < 15
    assert face.landmarks is not None and face.landmarks.shape == (478, 3)


def test_mirrored_portrait_mirrors_yaw_and_roll(face_model, portrait):
    with FaceTracker(FaceTrackerOptions(model_path=face_model)) as a, FaceTracker(FaceTrackerOptions(model_path=face_model)) as b:
        original = a.process(video_frame(portrait, 0)).head_rotation
        mirrored = b.process(video_frame(portrait[:, ::-1], 0)).head_rotation
    assert abs(original[0] + mirrored[0]) < 2.0 and abs(original[2] + mirrored[2]) < 2.0
    assert abs(original[1] - mirrored[1]) < 2.0


def test_no_face_is_an_empty_result_not_an_error(tracker):
    face = tracker.process(video_frame(np.full((360, 480, 3), 90, np.uint8), 0))
    assert not face.present and face.blendshapes == {}


def test_face_leaving_and_coming_back(tracker, portrait):
    blank = np.zeros_like(portrait)
    sequence = [portrait] * 3 + [blank] * 3 + [portrait] * 3
    present = [tracker.process(video_frame(img, i)).present for i, img in enumerate(sequence)]
    assert present == [True] * 3 + [False] * 3 + [True] * 3


def test_several_faces_the_largest_is_followed(face_model, portrait):
    h, w, _ = portrait.shape
    small = cv2.resize(portrait, (w // 2, h // 2))
    canvas = np.full((h, w + w // 2, 3), 128, np.uint8)
    canvas[:, :w] = portrait
    canvas[h // 4:h // 4 + h // 2, w:] = small
    with FaceTracker(FaceTrackerOptions(model_path=face_model, max_faces=2)) as tracker:
        faces = [tracker.process(video_frame(canvas, i)) for i in range(3)]
    centre_x = float(np.mean(faces[-1].landmarks[:, 0])) * canvas.shape[1]
    assert centre_x < w, "the large face on the left is the one tracked"


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        FaceTracker(FaceTrackerOptions(model_path=tmp_path / "face_landmarker.task"))


def test_corrupt_model_is_a_clear_error(tmp_path):
    bad = tmp_path / "face_landmarker.task"
    bad.write_bytes(b"not a model" * 100)
    with pytest.raises(ModelError, match="could not be loaded"):
        FaceTracker(FaceTrackerOptions(model_path=bad))


@pytest.mark.parametrize("width", [360, 642, 1080])
def test_videos_whose_width_is_not_a_multiple_of_16_still_find_the_face(tracker, portrait, tmp_path, width):
    """PyAV hands over row-padded frames for such widths; the tracker must read them as pictures.
    The shared portrait, padded to a portrait-format frame of each width."""
    from engine.capture.video import VideoFileSource

    height = width * 4 // 3 // 2 * 2  # portrait, as phones film
    scale = min(width / portrait.shape[1], height / portrait.shape[0])
    face = cv2.resize(portrait, (int(portrait.shape[1] * scale) // 2 * 2, int(portrait.shape[0] * scale) // 2 * 2))
    canvas = np.full((height, width, 3), 90, np.uint8)
    top, left = (height - face.shape[0]) // 2, (width - face.shape[1]) // 2
    canvas[top:top + face.shape[0], left:left + face.shape[1]] = face
    path = tmp_path / f"w{width}.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for _ in range(10):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")))
        container.mux(stream.encode())
    source = VideoFileSource(path, paced=False)
    source.open()
    try:
        found = [tracker.process(frame).present for frame in iter(source.read, None)]
    finally:
        source.close()
    assert len(found) == 10 and sum(found) >= 9, f"a face in {sum(found)} of {len(found)} frames at width {width}"
