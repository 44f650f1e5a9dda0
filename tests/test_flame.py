"""FLAME heads: the user's model file loads (no chumpy needed), becomes an avatar, and its
parameters are recovered from landmarks."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from flame_builders import synthetic_flame, write_flame_pickle, write_npz

from engine.avatar.flame_fit import FlameFitter, LandmarkEmbedding, compute_embedding, similarity
from engine.avatar.loading.flame import (
    EXPRESSION_RANGE,
    FlameModel,
    expression_weights,
    flame_avatar,
    load_flame,
)
from engine.errors import AvatarLoadError


def test_an_official_style_pickle_loads_without_chumpy_or_scipy(tmp_path):
    model = load_flame(write_flame_pickle(tmp_path / "flame2023.pkl"))
    arrays = synthetic_flame()
    assert model.shape_count == 300 and model.expression_count == 5
    np.testing.assert_allclose(model.exprdirs, arrays["exprdirs"])
    np.testing.assert_allclose(model.shapedirs[:, :, :5], arrays["shapedirs"])
    np.testing.assert_allclose(model.j_regressor, arrays["J_regressor"])  # the sparse matrix, densified
    assert model.parents.tolist() == [-1, 0, 1, 1, 1]  # the root's 2**32 - 1 read as "none"
    assert model.posedirs.shape == (200, 3, 36)


def test_an_npz_loads_with_separate_expression_directions(tmp_path):
    model = load_flame(write_npz(tmp_path / "head.npz", shapes=4, expressions=6))
    assert (model.vertex_count, model.shape_count, model.expression_count) == (200, 4, 6)


class _Evil:
    def __reduce__(self):
        import os

        return os.system, ("echo pwned",)


@pytest.mark.parametrize("content", [b"not a pickle", "code", "missing arrays"])
def test_a_bad_or_hostile_file_is_one_error_saying_where_to_get_flame(tmp_path, content):
    path = tmp_path / "flame.pkl"
    if content == "code":
        path.write_bytes(pickle.dumps({"v_template": _Evil()}))
    elif content == "missing arrays":
        path.write_bytes(pickle.dumps({"v_template": np.zeros((3, 3))}))
    else:
        path.write_bytes(content)
    with pytest.raises(AvatarLoadError) as error:
        load_flame(path)
    assert "flame.is.tue.mpg.de" in error.value.hint and "\n" not in str(error.value)
    with pytest.raises(AvatarLoadError):
        load_flame(tmp_path / "absent.pkl")


def test_the_model_becomes_a_skinned_avatar_with_expression_targets(tmp_path):
    from engine.avatar import load_avatar
    from engine.avatar.retarget import AvatarBinding

    avatar = load_avatar(write_npz(tmp_path / "head.npz"))
    model = avatar.extras["flame"]
    assert isinstance(model, FlameModel)
    assert len(avatar.morph_target_names) == 10 and avatar.morph_target_names[:2] == ("flame_expr_00+", "flame_expr_00-")
    assert [avatar.nodes[j].name for j in avatar.skins[0].joints] == ["flame_root", "Head", "Jaw", "LeftEye", "RightEye"]
    # The rest pose puts every vertex where the model has it (the skin's bind matches the joints).
    low, high = avatar.bounds()
    np.testing.assert_allclose(low, model.v_template.min(0), atol=1e-6)
    np.testing.assert_allclose(high, model.v_template.max(0), atol=1e-6)
    # The retargeting finds the head and eyes by the node names: the live head pose drives it.
    assert {"head", "left_eye", "right_eye"} <= set(AvatarBinding(avatar).bones)
    weights = expression_weights(np.array([1.5, -3.0, 0.0, 9.0, 0.0]))
    assert weights == {"flame_expr_00+": 1.5 / EXPRESSION_RANGE, "flame_expr_01-": 1.0, "flame_expr_03+": 1.0}


def test_the_avatar_renders_and_expressions_move_it(tmp_path):
    from engine.packets import AvatarPose
    from engine.render import AvatarRenderer, RenderOptions

    avatar = flame_avatar(load_flame(write_npz(tmp_path / "head.npz")))
    with AvatarRenderer(avatar, RenderOptions(width=160, height=160)) as renderer:
        neutral = renderer.render(AvatarPose())
        smiling = renderer.render(AvatarPose(morph_weights=expression_weights(np.full(5, 3.0))))
    assert (np.abs(neutral.astype(int) - neutral[0, 0]).max(axis=2) > 20).mean() > 0.05, "the head is in the picture"
    assert (np.abs(smiling.astype(int) - neutral).max(axis=2) > 10).mean() > 0.002, "the expression changes it"


def _embedding(model: FlameModel, count: int = 60, seed: int = 1) -> LandmarkEmbedding:
    rng = np.random.default_rng(seed)
    front = np.flatnonzero(model.v_template[model.faces].mean(axis=1)[:, 2] > 0.02)
    return LandmarkEmbedding(landmarks=np.arange(count), faces=rng.choice(front, count, replace=False),
                             barycentric=rng.dirichlet(np.ones(3), count))


def _observe(fitter: FlameFitter, expression, jaw, yaw_deg, seed, noise=0.0):
    """What a tracker would see: the landmarks posed, scaled, moved, with noise (model metres)."""
    rng = np.random.default_rng(seed)
    points = fitter.points(np.asarray(expression), jaw)
    points = points + rng.normal(scale=noise, size=points.shape)
    yaw = np.radians(yaw_deg)
    rotation = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    return 4.0 * points @ rotation.T + np.array([0.5, -0.2, 1.0])


# Stated accuracy (docs/FLAME.md): exact landmarks and a negligible prior give the expression to
# 0.001 standard deviations and the jaw to 0.0005 rad (the solver converges); with 0.5 mm of
# landmark noise and the default prior (2 mm), 0.3 standard deviations and 0.015 rad.
@pytest.mark.parametrize("noise, sigma, expression_error, jaw_error", [(0.0, 1e-5, 0.001, 0.0005),
                                                                       (0.0005, 0.002, 0.3, 0.015)])
def test_a_fit_recovers_known_expression_and_jaw(tmp_path, noise, sigma, expression_error, jaw_error):
    model = load_flame(write_npz(tmp_path / "head.npz"))
    fitter = FlameFitter(model, _embedding(model), expression_sigma=sigma)
    truth = np.array([1.2, -0.8, 0.5, 2.0, -1.5])
    for seed in range(5):
        fitter.last = None
        fit = fitter.fit(_observe(fitter, truth, 0.2, 25.0, seed=seed, noise=noise))
        assert np.abs(fit.expression - truth).max() < expression_error, fit.expression
        assert abs(fit.jaw - 0.2) < jaw_error
        assert abs(fit.scale - 4.0) < 0.05
        assert fit.rms < 4 * noise + 1e-6  # model-space metres


def test_identity_is_fitted_once_from_a_few_frames(tmp_path):
    model = load_flame(write_npz(tmp_path / "head.npz"))
    betas = np.array([1.0, -1.5, 0.7, 0.0, 2.0])
    person = FlameFitter(model, _embedding(model), betas)  # renders the person's landmarks
    rng = np.random.default_rng(5)
    frames = [_observe(person, rng.normal(scale=0.7, size=5), rng.uniform(0, 0.25), rng.uniform(-30, 30), seed=i)
              for i in range(6)]
    fitter = FlameFitter(model, _embedding(model))
    before = np.mean([fitter.fit(f).rms for f in frames])
    fitted = fitter.fit_identity(frames)
    after = np.mean([fitter.fit(f).rms for f in frames])
    assert np.abs(fitted - betas).max() < 0.2, fitted
    assert after < 0.1 * before and after < 2.5e-4


def _canonical_flame(face_model, expressions: int = 1) -> tuple[FlameModel, np.ndarray]:
    """A "FLAME" head that is MediaPipe's own canonical face, a little bigger and moved, with local
    expression bumps and a jaw over the lower face; and the canonical face itself."""
    from engine.perception.face_geometry import canonical_face

    canonical, triangles = canonical_face(face_model)
    mesh = 1.08 * canonical + np.array([0.004, 0.02, -0.01])
    regressor = np.zeros((5, len(mesh)))
    regressor[0, 1] = regressor[1, 1] = 1.0
    regressor[2, [234, 454]] = 0.5  # the jaw hinge: between the cheeks' outer edges
    regressor[3, [263, 362]] = regressor[4, [33, 133]] = 0.5  # eye "joints" at the eye corners
    rng = np.random.default_rng(2)
    exprdirs = np.zeros((len(mesh), 3, expressions))
    for k in range(expressions):
        centre = mesh[rng.integers(len(mesh))]
        exprdirs[:, :, k] = np.exp(-((mesh - centre) ** 2).sum(1) / (2 * 0.02**2))[:, None] * rng.normal(scale=0.003, size=3)
    weights = np.zeros((len(mesh), 5))
    weights[:, 2] = np.clip((-0.03 - mesh[:, 1]) / 0.03, 0, 1)
    weights[:, 1] = 1 - weights[:, 2]
    model = FlameModel(v_template=mesh, shapedirs=np.zeros((len(mesh), 3, 1)), exprdirs=exprdirs,
                       posedirs=np.zeros((len(mesh), 3, 0)), j_regressor=regressor, weights=weights,
                       parents=np.array([-1, 0, 1, 1, 1]), faces=triangles)
    return model, canonical


def test_the_embedding_puts_mediapipe_landmarks_on_the_model(face_model):
    # Each landmark must land on its own vertex of the canonical-face head, wherever it sits.
    model, canonical = _canonical_flame(face_model)
    mesh = model.v_template
    embedding = compute_embedding(model, canonical)
    placed = embedding.points(model, mesh)
    error = np.linalg.norm(placed - mesh, axis=1)
    assert np.median(error) < 0.0005 and error.max() < 0.003, (np.median(error), error.max())
    s, _, _ = similarity(canonical, placed)
    assert abs(s - 1.08) < 0.01


def test_a_flame_avatar_follows_live_landmarks(face_model, monkeypatch):
    """The live path: the tracker's normalised landmarks in an AvatarFrame drive the avatar's
    expression targets and jaw through the retargeting."""
    from engine.avatar.loading.flame import flame_avatar
    from engine.avatar.retarget import AvatarBinding
    from engine.models import ModelManager
    from engine.packets import AvatarFrame
    from engine.vocabulary.rigs import FaceRig

    monkeypatch.setattr(ModelManager, "find", lambda self, name: face_model)
    model, _ = _canonical_flame(face_model, expressions=4)
    binding = AvatarBinding(flame_avatar(model))
    assert binding.rig == FaceRig.FLAME and binding._flame.ready.wait(60.0)
    truth, jaw = np.array([2.0, -1.0, 0.0, 1.5]), 0.15
    points = binding._flame.fitter.points(truth, jaw)
    width, height = 640, 480
    aspect = width / height
    # Model metres to MediaPipe's normalised coordinates of a face half the picture high.
    scaled = points * 3.0
    landmarks = np.stack([scaled[:, 0] / aspect + 0.5, 0.45 - scaled[:, 1], -scaled[:, 2] / aspect], 1)
    pose = None
    for sequence in range(3):
        pose = binding.pose(AvatarFrame(t_capture=0.0, sequence=sequence, controls={}, landmarks=landmarks,
                                        image_size=(width, height)))
    expected = expression_weights(truth)
    for name, value in expected.items():
        assert abs(pose.morph_weights.get(name, 0.0) - value) < 0.05, (name, dict(pose.morph_weights))
    x, _, _, w = pose.node_rotations["Jaw"]
    assert abs(2 * np.degrees(np.arctan2(x, w)) - np.degrees(jaw)) < 1.0
    # Without landmarks (tracking lost, the voice alone) the controls drive it: a closed mouth rests.
    rest = binding.pose(AvatarFrame(t_capture=0.0, sequence=9, controls={}))
    assert not any(rest.morph_weights.values())
    assert abs(rest.node_rotations.get("Jaw", (0.0, 0.0, 0.0, 1.0))[3]) > 0.9999
