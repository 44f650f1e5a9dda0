"""The jitter bar on a still face with camera noise: tracker + animation as shipped.

A still image alone is too easy (identical frames give identical tracking), so every frame gets
fresh sensor-like noise (sigma 3 of 255), the way a webcam sees a person holding still.
"""

from __future__ import annotations

import cv2
import numpy as np
from conftest import shared_file

from engine.animation.animator import Animator
from engine.packets import VideoFrame
from engine.perception.face_tracker import FaceTracker, FaceTrackerOptions

FPS = 30.0


def test_still_face_with_camera_noise_gives_a_still_avatar(face_model):
    portrait = cv2.cvtColor(cv2.imread(str(shared_file("media/portrait_s0.jpg"))), cv2.COLOR_BGR2RGB).astype(np.int16)
    rng = np.random.default_rng(0)
    animator = Animator()
    raw, out = [], []
    with FaceTracker(FaceTrackerOptions(model_path=face_model)) as tracker:
        for i in range(240):
            noisy = np.clip(portrait + rng.normal(0, 3, portrait.shape), 0, 255).astype(np.uint8)
            face = tracker.process(VideoFrame(noisy, i / FPS, i))
            state = animator.update(face, i / FPS)
            if i >= 30:  # after the ease-in
                raw.append(list(face.blendshapes.values()))
                out.append([*state.controls.values(), *np.add(state.head, state.neck)])
    raw, out = np.array(raw), np.array(out)
    assert np.diff(raw, axis=0).std(axis=0).max() > 0.02, "the noise really shakes the tracker"
    jitter = np.diff(out, axis=0).std(axis=0)
    assert jitter[:52].max() <= 0.005
    assert jitter[52:].max() <= 0.1  # degrees
