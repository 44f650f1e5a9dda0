"""Head-pose conventions: the meaning of each angle, and the round trip through matrices."""

from __future__ import annotations

import numpy as np
import pytest

from engine.rotation import euler_to_matrix, matrix_to_euler

FORWARD, UP = np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0])


def test_yaw_turns_the_face_to_the_subjects_left():
    assert (euler_to_matrix(30, 0, 0) @ FORWARD)[0] > 0.4  # +X is the subject's left


def test_pitch_lifts_the_chin():
    assert (euler_to_matrix(0, 20, 0) @ FORWARD)[1] > 0.3


def test_roll_tilts_toward_the_left_shoulder():
    assert (euler_to_matrix(0, 0, 20) @ UP)[0] > 0.3


@pytest.mark.parametrize("pose", [(0, 0, 0), (25, -10, 5), (-40, 15, -12), (10, 30, 20)])
def test_round_trip(pose):
    assert np.allclose(matrix_to_euler(euler_to_matrix(*pose)), pose, atol=1e-6)


@pytest.mark.parametrize("pose", [(0, 0, 0), (25, -10, 5), (-40, 15, -12), (10, 30, 20)])
def test_quaternion_matches_the_matrix(pose):
    from engine.avatar import quat_to_matrix
    from engine.rotation import euler_to_quaternion

    q = euler_to_quaternion(*pose)
    assert abs(np.linalg.norm(q) - 1.0) < 1e-12
    assert np.allclose(quat_to_matrix(q), euler_to_matrix(*pose), atol=1e-9)
