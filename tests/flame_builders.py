"""Small synthetic models in the FLAME format (the real one may not be shipped): an egg-shaped
head of 200 vertices, FLAME's five joints, smooth random shape and expression blendshapes."""

from __future__ import annotations

import pickle
import sys
import types
from pathlib import Path

import numpy as np

RINGS, SEGMENTS = 10, 20  # 200 vertices


def synthetic_flame(shapes: int = 5, expressions: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    """The arrays of a FLAME file, with ``shapedirs`` and ``exprdirs`` apart."""
    rng = np.random.default_rng(seed)
    lat = np.linspace(-1.35, 1.35, RINGS)
    lon = np.linspace(0, 2 * np.pi, SEGMENTS, endpoint=False)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    v = np.stack([0.075 * np.cos(la) * np.sin(lo), 0.11 * np.sin(la), 0.09 * np.cos(la) * np.cos(lo)], -1).reshape(-1, 3)
    faces = []
    for r in range(RINGS - 1):
        for s in range(SEGMENTS):
            a, b = r * SEGMENTS + s, r * SEGMENTS + (s + 1) % SEGMENTS
            c, d = a + SEGMENTS, b + SEGMENTS
            faces += [(a, b, d), (a, d, c)]

    def smooth_directions(count: int, scale: float, where: np.ndarray) -> np.ndarray:
        """Local deformations, as FLAME's are (no component is a move, turn or scale of the whole
        head, which the pose would absorb): two 3 cm bumps each, centred on vertices in ``where``."""
        out = np.zeros((len(v), 3, count))
        for k in range(count):
            for centre in rng.choice(where, 2, replace=False):
                bump = np.exp(-((v - v[centre]) ** 2).sum(1) / (2 * 0.03**2))
                out[:, :, k] += bump[:, None] * rng.normal(scale=scale, size=3)
        return out

    front = np.clip(v[:, 2] / 0.09, 0, 1)
    face = np.flatnonzero(v[:, 2] > 0.04)
    regressor = np.zeros((5, len(v)))
    bottom = np.arange(SEGMENTS)
    regressor[0, bottom] = 1 / SEGMENTS  # global: the bottom ring's centre
    regressor[1, bottom + SEGMENTS] = 1 / SEGMENTS  # neck
    regressor[2, [3 * SEGMENTS, 3 * SEGMENTS + SEGMENTS // 2]] = 0.5  # jaw: inside the lower head
    eye_ring = 6 * SEGMENTS
    regressor[3, eye_ring + 2] = 1.0  # left eye (+x)
    regressor[4, eye_ring + SEGMENTS - 2] = 1.0  # right eye (-x)
    jaw = np.clip((-0.01 - v[:, 1]) / 0.04, 0, 1) * front
    weights = np.zeros((len(v), 5))
    weights[:, 2] = jaw
    weights[:, 1] = 1 - jaw
    return {"v_template": v, "shapedirs": smooth_directions(shapes, 0.004, face),
            "exprdirs": smooth_directions(expressions, 0.004, face), "posedirs": np.zeros((len(v), 3, 36)),
            "J_regressor": regressor, "weights": weights,
            "kintree_table": np.array([[2**32 - 1, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.uint32),
            "f": np.array(faces, dtype=np.uint32)}


def write_npz(path: Path, **kwargs) -> Path:
    np.savez(path, **synthetic_flame(**kwargs))
    return path


def write_flame_pickle(path: Path, **kwargs) -> Path:
    """The arrays pickled the way the official files are: ``shapedirs`` (identity and expression in
    one, 300 identity components first) as a chumpy array, ``J_regressor`` as a scipy CSC matrix.
    Stand-in chumpy/scipy modules exist only while pickling: loading must not need them."""
    arrays = synthetic_flame(**kwargs)
    n = len(arrays["v_template"])
    shape = np.zeros((n, 3, 300))
    shape[:, :, : arrays["shapedirs"].shape[2]] = arrays["shapedirs"]
    combined = np.concatenate([shape, arrays.pop("exprdirs")], axis=2)

    ch = types.ModuleType("chumpy.ch")
    sparse = types.ModuleType("scipy.sparse.csc")

    class Ch:
        def __reduce__(self):
            import copyreg

            return copyreg._reconstructor, (Ch, object, None), self.__dict__

    class csc_matrix:  # scipy's name
        def __reduce__(self):
            import copyreg

            return copyreg._reconstructor, (csc_matrix, object, None), self.__dict__

    for cls, module in ((Ch, ch), (csc_matrix, sparse)):
        cls.__module__, cls.__qualname__ = module.__name__, cls.__name__
        setattr(module, cls.__name__, cls)
    saved = {name: sys.modules.get(name) for name in ("chumpy", "chumpy.ch", "scipy", "scipy.sparse", "scipy.sparse.csc")}
    sys.modules.update({"chumpy": types.ModuleType("chumpy"), "chumpy.ch": ch, "scipy": types.ModuleType("scipy"),
                        "scipy.sparse": types.ModuleType("scipy.sparse"), "scipy.sparse.csc": sparse})
    try:
        shapedirs = Ch()
        shapedirs.__dict__.update(x=combined)
        regressor = csc_matrix()
        dense = arrays["J_regressor"]
        cols = [np.flatnonzero(dense[:, c]) for c in range(dense.shape[1])]
        regressor.__dict__.update(_shape=dense.shape, format="csc", maxprint=50,
                                  data=np.concatenate([dense[r, c] for c, r in enumerate(cols)]),
                                  indices=np.concatenate(cols).astype(np.int32),
                                  indptr=np.cumsum([0] + [len(r) for r in cols]).astype(np.int32))
        arrays.update(shapedirs=shapedirs, J_regressor=regressor, bs_style="lbs", bs_type="lrotmin")
        path.write_bytes(pickle.dumps(arrays, protocol=2))
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return path
