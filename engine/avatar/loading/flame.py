"""FLAME head models the user supplies (flame.is.tue.mpg.de), loaded as a model and as an ``Avatar``.

FLAME's licence forbids redistribution, so avatarcam ships none: the user downloads the 2020 or
2023 ``.pkl`` (or converts it to ``.npz``) and points ``--avatar`` at it. Both hold the same arrays:
``v_template`` (N x 3, metres, +Y up, the face toward +Z), ``shapedirs`` (N x 3 x K: the first 300
components identity shape, the rest expression; an ``.npz`` may instead give ``exprdirs`` beside an
identity-only ``shapedirs``), ``posedirs`` (pose correctives), ``J_regressor`` (J x N, dense or
sparse), ``weights`` (N x J linear blend skinning), ``kintree_table`` (2 x J, parents in row 0)
and ``f`` (faces). The five joints are global, neck, jaw, left eye, right eye.

The official pickles were written with ``chumpy`` (an autodiff array) and scipy sparse matrices.
``read_flame_pickle`` unpickles them *without* either package: a restricted unpickler allows only
numpy's array reconstruction and maps chumpy arrays and scipy sparse matrices to stand-ins that keep
their state, which is then turned into plain numpy arrays. Nothing else may be constructed, so a
hostile pickle cannot run code.

As an avatar, the identity shape (``betas``) is baked into the mesh; the expression components are
morph targets in pairs (``flame_expr_NN+`` and ``flame_expr_NN-``, each ``EXPRESSION_RANGE``
standard deviations, because morph weights are 0..1 and FLAME's coefficients are signed); the
joints are skin nodes named so the retargeting finds them (the neck joint carries the head's turn,
the eyes carry the gaze). Pose correctives are not rendered (they matter for large jaw/neck turns).
"""

from __future__ import annotations

import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.avatar.model import Avatar, Material, Mesh, Node, Primitive, Skin
from engine.errors import AvatarLoadError

FLAME_SUFFIXES = (".pkl", ".npz")
FLAME_SHAPE_COMPONENTS = 300  # identity components first in a combined ``shapedirs``
EXPRESSION_RANGE = 3.0  # standard deviations one morph target spans
# Node names for FLAME's five joints, in its order (the retargeting's own candidates).
JOINT_NAMES = ("flame_root", "Head", "Jaw", "LeftEye", "RightEye")
NECK, JAW, LEFT_EYE, RIGHT_EYE = 1, 2, 3, 4
WHERE_TO_GET = ("FLAME is not shipped with avatarcam (its licence forbids it): register at "
                "https://flame.is.tue.mpg.de, download FLAME 2020 or 2023 and choose its .pkl file.")
_SKIN_COLOUR = (0.80, 0.62, 0.52, 1.0)


@dataclass(frozen=True, eq=False)
class FlameModel:
    """A FLAME model as plain float64 arrays (see the module docstring for the shapes)."""

    v_template: np.ndarray  # N x 3
    shapedirs: np.ndarray  # N x 3 x S, identity
    exprdirs: np.ndarray  # N x 3 x E, expression
    posedirs: np.ndarray  # N x 3 x P (P = 9 x (J - 1)), or N x 3 x 0
    j_regressor: np.ndarray  # J x N
    weights: np.ndarray  # N x J
    parents: np.ndarray  # J, -1 for the root
    faces: np.ndarray  # F x 3 int

    @property
    def vertex_count(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def shape_count(self) -> int:
        return int(self.shapedirs.shape[2])

    @property
    def expression_count(self) -> int:
        return int(self.exprdirs.shape[2])

    def shaped(self, betas: np.ndarray | None = None) -> np.ndarray:
        """The neutral mesh of identity ``betas`` (missing components are 0)."""
        if betas is None or not len(betas):
            return self.v_template.copy()
        b = np.asarray(betas, dtype=np.float64)[: self.shape_count]
        return self.v_template + self.shapedirs[:, :, : len(b)] @ b

    def joints(self, vertices: np.ndarray) -> np.ndarray:
        """J x 3 joint positions of a (neutral) mesh."""
        return self.j_regressor @ vertices


# --- reading -------------------------------------------------------------------------------------


class _Stub:
    """Stands in for a chumpy array or a scipy sparse matrix while unpickling: keeps the state.
    (copyreg rebuilds such objects without calling ``__init__``, then hands them their state.)"""

    state: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _Chumpy(_Stub):
    pass


class _Sparse(_Stub):
    pass


class _FlameUnpickler(pickle.Unpickler):
    """Only numpy arrays, and stand-ins for chumpy and scipy.sparse; anything else is refused."""

    _NUMPY = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
              ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
              ("numpy._core.multiarray", "scalar")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._NUMPY:
            import numpy._core.multiarray as multiarray

            return getattr(np, name) if module == "numpy" else getattr(multiarray, name)
        if module in ("copy_reg", "copyreg") and name == "_reconstructor":
            import copyreg

            return copyreg._reconstructor  # type: ignore[attr-defined]
        if module in ("__builtin__", "builtins") and name == "object":
            return object
        if module == "_codecs" and name == "encode":  # how protocol-2 pickles from Python 3 store bytes
            import codecs

            return codecs.encode
        if module.split(".")[0] == "chumpy":
            return _Chumpy
        if module.startswith("scipy.sparse") and name.endswith("_matrix"):
            return _Sparse
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a model file")


def _plain(value: Any) -> Any:
    """numpy arrays for stand-ins: a chumpy array's value is its ``x``; a CSC/CSR matrix is densified."""
    if isinstance(value, _Chumpy):
        state = value.state if isinstance(value.state, dict) else {}
        if "x" not in state:
            raise ValueError("a chumpy object without a value")
        return np.asarray(_plain(state["x"]), dtype=np.float64)
    if isinstance(value, _Sparse):
        state = value.state
        shape = tuple(state.get("_shape") or state.get("shape"))
        data, indices, indptr = (np.asarray(state[k]) for k in ("data", "indices", "indptr"))
        dense = np.zeros(shape if state.get("format", "csc") == "csr" else shape[::-1])
        for row in range(len(indptr) - 1):
            dense[row, indices[indptr[row]:indptr[row + 1]]] = data[indptr[row]:indptr[row + 1]]
        return dense if state.get("format", "csc") == "csr" else dense.T
    return value


def read_flame_pickle(data: bytes) -> dict[str, Any]:
    """The arrays of a FLAME ``.pkl`` (Python 2 pickles included), chumpy and scipy not needed."""
    loaded = _FlameUnpickler(io.BytesIO(data), encoding="latin1").load()
    if not isinstance(loaded, dict):
        raise ValueError("the pickle does not hold a dictionary of arrays")
    return {str(k): _plain(v) for k, v in loaded.items()}


def _arrays(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    if path.suffix.lower() == ".npz":
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    return read_flame_pickle(data)


def load_flame(path: str | Path) -> FlameModel:
    """Read a FLAME ``.pkl``/``.npz``. Raises ``AvatarLoadError`` (one line, with where to get FLAME)."""
    path = Path(path)
    hint = f"Choose the FLAME model file itself (e.g. flame2023.pkl). {WHERE_TO_GET}"
    if not path.is_file():
        raise AvatarLoadError(f"The FLAME model '{path}' does not exist.", hint)
    try:
        arrays = _arrays(path)
        shapedirs = np.asarray(arrays["shapedirs"], dtype=np.float64)
        if "exprdirs" in arrays:
            exprdirs = np.asarray(arrays["exprdirs"], dtype=np.float64)
        else:
            split = min(FLAME_SHAPE_COMPONENTS, shapedirs.shape[2])
            shapedirs, exprdirs = shapedirs[:, :, :split], shapedirs[:, :, split:]
        v_template = np.asarray(arrays["v_template"], dtype=np.float64)
        n = v_template.shape[0]
        posedirs = np.asarray(arrays.get("posedirs", np.zeros((n, 3, 0))), dtype=np.float64).reshape(n, 3, -1)
        model = FlameModel(v_template=v_template, shapedirs=shapedirs, exprdirs=exprdirs, posedirs=posedirs,
                           j_regressor=np.asarray(arrays["J_regressor"], dtype=np.float64),
                           weights=np.asarray(arrays["weights"], dtype=np.float64),
                           parents=_parents(arrays["kintree_table"]),
                           faces=np.asarray(arrays["f"], dtype=np.int64).reshape(-1, 3))
    except (KeyError, ValueError, TypeError, IndexError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        raise AvatarLoadError(f"'{path.name}' is not a FLAME model ({type(exc).__name__}: {exc}).", hint) from exc
    _check(model, path, hint)
    return model


def _parents(kintree: Any) -> np.ndarray:
    """Row 0 of the kinematic tree; the root's parent is stored as -1 or as 2**32 - 1 (unsigned)."""
    parents = np.asarray(kintree, dtype=np.int64)[0].copy()
    parents[(parents < 0) | (parents >= len(parents))] = -1
    return parents


def _check(model: FlameModel, path: Path, hint: str) -> None:
    n, joints = model.vertex_count, len(model.parents)
    problems = [name for name, ok in (
        ("v_template", model.v_template.shape == (n, 3)),
        ("shapedirs", model.shapedirs.shape[:2] == (n, 3) and model.exprdirs.shape[:2] == (n, 3)),
        ("J_regressor", model.j_regressor.shape == (joints, n)),
        ("weights", model.weights.shape == (n, joints)),
        ("kintree_table", joints == len(JOINT_NAMES) and model.parents[0] < 0),
        ("f", model.faces.size > 0 and 0 <= model.faces.min() and model.faces.max() < n),
    ) if not ok]
    if problems:
        raise AvatarLoadError(f"'{path.name}' is not a FLAME model (bad {', '.join(problems)}).", hint)
    sources = tuple(np.asarray(model.parents[1:]))
    if any(not (0 <= p < i) for i, p in enumerate(sources, start=1)):
        raise AvatarLoadError(f"'{path.name}' is not a FLAME model (its joints are not a tree).", hint)


# --- as an avatar --------------------------------------------------------------------------------


def expression_target_names(count: int) -> tuple[str, ...]:
    """Morph target names of ``count`` expression components: a + and a - target each."""
    return tuple(f"flame_expr_{i:02d}{sign}" for i in range(count) for sign in "+-")


def expression_weights(psi: np.ndarray) -> dict[str, float]:
    """Morph weights (0..1) showing expression coefficients ``psi`` (standard deviations)."""
    out: dict[str, float] = {}
    for i, value in enumerate(np.clip(np.asarray(psi, dtype=np.float64) / EXPRESSION_RANGE, -1.0, 1.0)):
        if value:
            out[f"flame_expr_{i:02d}{'+' if value > 0 else '-'}"] = float(abs(value))
    return out


def flame_avatar(model: FlameModel, betas: np.ndarray | None = None, source: Path | None = None) -> Avatar:
    """The model with identity ``betas`` as an ``Avatar``: one skinned mesh, expression morph
    targets, the five joints as nodes (world positions from the joint regressor)."""
    from engine.avatar.loading.gltf import smooth_normals

    vertices = model.shaped(betas)
    joints = model.joints(vertices)
    faces = model.faces.astype(np.uint32)
    normals = smooth_normals(vertices.astype(np.float32), faces.reshape(-1))
    deltas = np.moveaxis(model.exprdirs, 2, 0) * EXPRESSION_RANGE  # E x N x 3
    morph_positions = np.stack([deltas, -deltas], axis=1).reshape(-1, model.vertex_count, 3).astype(np.float32)
    morph_normals = np.stack([smooth_normals((vertices + d).astype(np.float32), faces.reshape(-1)) - normals
                              for d in morph_positions]) if len(morph_positions) else np.zeros((0, model.vertex_count, 3))
    top = np.argsort(-model.weights, axis=1)[:, :4]  # glTF skins take four influences per vertex
    top_weights = np.take_along_axis(model.weights, top, axis=1)
    top_weights /= np.maximum(top_weights.sum(axis=1, keepdims=True), 1e-12)
    joint_ids = np.zeros((model.vertex_count, 4), np.uint16)
    joint_ids[:, : top.shape[1]] = top
    skin_weights = np.zeros((model.vertex_count, 4), np.float32)
    skin_weights[:, : top.shape[1]] = top_weights
    primitive = Primitive(positions=vertices.astype(np.float32), normals=normals.astype(np.float32),
                          indices=faces.reshape(-1), material=Material(name="flame_skin", base_color_factor=_SKIN_COLOUR,
                                                                       metallic=0.0, roughness=0.6),
                          morph_positions=morph_positions, morph_normals=np.asarray(morph_normals, np.float32),
                          joints=joint_ids, weights=skin_weights)
    mesh = Mesh(name="flame", primitives=(primitive,), target_names=expression_target_names(model.expression_count))
    nodes = []
    for j, name in enumerate(JOINT_NAMES):
        parent = int(model.parents[j])
        offset = joints[j] - (joints[parent] if parent >= 0 else 0.0)
        children = tuple(c for c in range(len(JOINT_NAMES)) if model.parents[c] == j)
        nodes.append(Node(name=name, parent=None if parent < 0 else parent, translation=tuple(map(float, offset)),
                          children=children))
    nodes.append(Node(name="flame_mesh", mesh=0, skin=0))  # skinned: placed by its joints alone
    inverse_bind = np.tile(np.eye(4), (len(JOINT_NAMES), 1, 1))
    inverse_bind[:, :3, 3] = -joints  # the rest pose has no rotations: only the joints' offsets
    skin = Skin(name="flame", joints=tuple(range(len(JOINT_NAMES))), inverse_bind_matrices=inverse_bind)
    return Avatar(nodes=tuple(nodes), meshes=(mesh,), skins=(skin,), scene_roots=(0, len(JOINT_NAMES)), source=source,
                  extras={"flame": model})


def load_flame_avatar(path: str | Path, betas: np.ndarray | None = None) -> Avatar:
    """``load_flame`` then ``flame_avatar``: a FLAME file as an avatar (``AvatarLoadError`` if not)."""
    return flame_avatar(load_flame(path), betas, Path(path))
