"""A bounded fuzz of the avatar loader: a few hundred mutated GLB/glTF/VRM files (byte flips, JSON
field mutations, huge counts, hostile URIs), made with a fixed seed from the default avatar and the
builder's small avatars, each loaded in a worker process under a memory cap and a deadline.

Every case must end as a successful load (with finite transforms) or the loader's own one-line
``AvatarLoadError``: 0 crashes, 0 hangs, 0 memory blow-ups.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import select
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from gltf_builders import build_test_avatar

from engine.paths import DEFAULT_AVATAR

ROOT = Path(__file__).resolve().parents[1]
SEED = 20261130
MEMORY_MB = 1536  # over the worker's size after imports: the limits allow ~1 GB at most
CASE_DEADLINE_S = 30.0  # generous: the machine may be shared; a hang blocks forever
BATCH = 60


# --- GLB packing ------------------------------------------------------------------------------------

def split_glb(data: bytes) -> tuple[dict, bytes]:
    json_length = struct.unpack_from("<I", data, 12)[0]
    document = json.loads(data[20:20 + json_length])
    rest = data[20 + json_length:]
    blob = rest[8:8 + struct.unpack_from("<I", rest, 0)[0]] if len(rest) >= 8 else b""
    return document, blob


def pack_glb(document: dict, blob: bytes) -> bytes:
    text = json.dumps(document).encode()  # NaN and Infinity written as JSON's non-standard words
    text += b" " * (-len(text) % 4)
    blob += b"\0" * (-len(blob) % 4)
    body = struct.pack("<II", len(text), 0x4E4F534A) + text
    if blob:
        body += struct.pack("<II", len(blob), 0x004E4942) + blob
    return struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body


def png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * (width * 4 + 1) * 4)) + chunk(b"IEND", b""))


# --- mutations --------------------------------------------------------------------------------------

HOSTILE_VALUES = [2**31, 2**32 + 7, 2**63, 10**12, -1, -(2**31), 0, math.inf, -math.inf, math.nan, 1e308,
                  "x" * 50, None, [], {}, [1.0] * 7, [math.inf] * 4, True]


def paths(node, prefix=()):
    """Every (path, value) in a JSON document."""
    yield prefix, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node[:40]):
            yield from paths(value, (*prefix, i))


def set_path(document, path, value) -> None:
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


def field_mutation(rng: random.Random, document: dict) -> dict:
    document = json.loads(json.dumps(document))  # a deep copy, faster than copy.deepcopy
    for _ in range(rng.randint(1, 3)):
        candidates = [p for p, _ in paths(document) if p]  # again: a change may remove a branch
        set_path(document, rng.choice(candidates), copy.deepcopy(rng.choice(HOSTILE_VALUES)))
    return document


def targeted(rng: random.Random, document: dict, folder: Path) -> dict:
    """Mutations aimed at the limits: transforms, counts, reuse, trees, URIs, images."""
    d = json.loads(json.dumps(document))
    nodes, accessors, meshes = d.setdefault("nodes", []), d.get("accessors", []), d.get("meshes", [])
    kind = rng.randrange(14)
    if kind == 0 and nodes:
        rng.choice(nodes)["rotation"] = rng.choice([[math.inf, 0, 0, 1], [0, 0, 0, 0], [math.nan] * 4, [0, 0, 1]])
    elif kind == 1 and nodes:
        rng.choice(nodes)["scale"] = rng.choice([[math.inf, 1, 1], [1e309, 1, 1], [1, 1]])
    elif kind == 2 and nodes:
        rng.choice(nodes)["translation"] = rng.choice([[0.0] * 7, [math.nan, 0, 0], ["a", 0, 0]])
    elif kind == 3 and nodes:
        node = rng.choice(nodes)
        node.pop("rotation", None), node.pop("translation", None), node.pop("scale", None)
        node["matrix"] = rng.choice([[1.0] * 15, [math.inf] + [0.0] * 15, [0.0] * 16])
    elif kind == 4 and accessors:
        rng.choice(accessors)["count"] = rng.choice([10**9, 2**31 - 1, 10**7, -5])
    elif kind == 5 and accessors:
        accessor = rng.choice(accessors)
        accessor.pop("bufferView", None)
        accessor["count"] = rng.choice([10**8, 4 * 10**7, 10**6])
    elif kind == 6 and meshes and nodes:
        # One mesh drawn thousands of times over: the reuse counts every time.
        prims = meshes[0]["primitives"]
        meshes[0]["primitives"] = prims * rng.choice([2000, 20000])
    elif kind == 7 and nodes:
        # A chain 100 000 deep, or a cycle.
        if rng.random() < 0.5:
            start = len(nodes)
            nodes.extend({"children": [start + i + 1]} for i in range(99_999))
            nodes.append({})
        else:
            nodes[0].setdefault("children", []).append(len(nodes))
            nodes.append({"children": [0]})
    elif kind == 8:
        d["nodes"] = nodes + [{} for _ in range(100_000)]
    elif kind in (9, 10):
        uri = rng.choice(["/dev/zero", "fifo.png", str(folder.parent / "outside" / "private.png"), "../outside/private.png",
                          "link.png", "file:///etc/passwd", "C:\\Windows\\x.png", "%2e%2e/outside/private.png",
                          "sub/../../outside/private.png", "~/private.png", "/proc/self/mem"])
        if kind == 9:
            d.setdefault("images", []).append({"uri": uri})
            d.setdefault("textures", []).append({"source": len(d["images"]) - 1})
            for material in d.setdefault("materials", [{}]):
                material.setdefault("pbrMetallicRoughness", {})["baseColorTexture"] = {"index": len(d["textures"]) - 1}
        else:
            d.setdefault("buffers", [{}]).append({"uri": uri, "byteLength": 16})
            if d.get("bufferViews"):
                rng.choice(d["bufferViews"])["buffer"] = len(d["buffers"]) - 1
    elif kind == 11:
        d.setdefault("images", []).append({"uri": rng.choice(["huge16k.png", "huge60k.png"])})
        d.setdefault("textures", []).append({"source": len(d["images"]) - 1})
        for material in d.setdefault("materials", [{}]):
            material.setdefault("pbrMetallicRoughness", {})["baseColorTexture"] = {"index": len(d["textures"]) - 1}
    elif kind == 12:
        d.setdefault("extensions", {})[rng.choice(["VRMC_vrm", "VRM"])] = rng.choice(
            [{"expressions": {"preset": {"happy": {"morphTargetBinds": [{"node": 10**9, "index": -1, "weight": math.inf}]}}}},
             {"firstPerson": {"lookAtHorizontalInner": {"xRange": math.nan, "yRange": math.inf}}},
             {"blendShapeMaster": {"blendShapeGroups": [{"binds": [{"mesh": 0, "index": 10**9, "weight": math.nan}]}]}},
             {"lookAt": {"offsetFromHeadBone": [math.inf, "x"]}}, [1, 2], "text"])
    else:
        for material in d.get("materials", []) or [{}]:
            material["emissiveFactor"] = rng.choice([[math.inf, 0, 0], [1, 1], ["red", 0, 0]])
            material.setdefault("pbrMetallicRoughness", {})["baseColorFactor"] = rng.choice(
                [[math.nan, 1, 1, 1], [1, 1, 1], [1, 1, 1, 1]])
    return d


def make_cases(folder: Path) -> list[Path]:
    rng = random.Random(SEED)
    (folder.parent / "outside").mkdir()
    (folder.parent / "outside" / "private.png").write_bytes(png_header_only(4, 4))
    (folder / "huge16k.png").write_bytes(png_header_only(16000, 16000))
    (folder / "huge60k.png").write_bytes(png_header_only(60000, 60000))
    os.mkfifo(folder / "fifo.png")
    (folder / "link.png").symlink_to(folder.parent / "outside" / "private.png")
    bases = {
        "default": DEFAULT_AVATAR.read_bytes(),
        "skinned": build_test_avatar(folder / "base_skinned.glb", with_texture=True).read_bytes(),
        "rigid": build_test_avatar(folder / "base_rigid.glb", with_skin=False, sparse_morphs=True,
                                   normalized=True).read_bytes(),
    }
    documents = {name: split_glb(data) for name, data in bases.items()}
    cases: list[Path] = []
    for number in range(300):
        # The default avatar (large JSON) only gets byte flips and one in ten targeted mutations.
        name = "default" if number % 10 == 0 else rng.choice(["skinned", "rigid"])
        data = bases[name]
        document, blob = documents[name]
        style = (0 if number % 20 == 0 else 2) if name == "default" else number % 4
        if style == 0:  # byte flips (the JSON part more often: it is where structure lives)
            mutated = bytearray(data)
            span = 20 + len(json.dumps(document)) if rng.random() < 0.7 else len(data)
            for _ in range(rng.randint(1, 12)):
                mutated[rng.randrange(min(span, len(data)))] = rng.randrange(256)
            if rng.random() < 0.2:
                mutated = mutated[: rng.randrange(len(mutated))]
            out = bytes(mutated)
        elif style == 1:
            out = pack_glb(field_mutation(rng, document), blob)
        else:
            out = pack_glb(targeted(rng, document, folder), blob)
        suffix = ".vrm" if name == "default" or rng.random() < 0.2 else ".glb"
        path = folder / f"case{number:03d}{suffix}"
        path.write_bytes(out)
        cases.append(path)
    return cases


class LineReader:
    """Lines from a pipe with a deadline each (select on the raw descriptor: no hidden buffer)."""

    def __init__(self, pipe) -> None:
        self.fd, self.buffer = pipe.fileno(), b""

    def line(self, timeout: float) -> str | None:
        """The next line; "" at the end of output; None when none came in time."""
        while b"\n" not in self.buffer:
            ready, _, _ = select.select([self.fd], [], [], timeout)
            if not ready:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return ""
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()


def run_batch(cases: list[Path]) -> dict[Path, str]:
    """Outcome of every case; a worker that dies or hangs is replaced and the rest go on."""
    results: dict[Path, str] = {}
    pending = list(cases)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"}
    while pending:
        batch, pending = pending[:BATCH], pending[BATCH:]
        worker = subprocess.Popen([sys.executable, str(ROOT / "tests" / "avatar_fuzz_worker.py"), str(MEMORY_MB),
                                   *map(str, batch)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        reader = LineReader(worker.stdout)
        current = 0
        while any(c not in results for c in batch):
            line = reader.line(CASE_DEADLINE_S)
            if not line:  # a hang (nothing in time) or a death (end of output)
                worker.kill()
                worker.wait()
                results[batch[current]] = "hang" if line is None else f"died:{worker.returncode}"
                pending = [c for c in batch if c not in results] + pending
                break
            word, number, *rest = line.split()
            if word == "start":
                current = int(number)
            else:
                results[batch[int(number)]] = rest[0]
        worker.wait()
        worker.stdout.close()
    return results


@pytest.mark.skipif(not hasattr(os, "mkfifo") or sys.platform == "darwin", reason="needs Linux (FIFOs, RLIMIT_AS)")
def test_three_hundred_hostile_avatars_load_or_fail_with_one_line(tmp_path):
    folder = tmp_path / "avatars"
    folder.mkdir()
    cases = make_cases(folder)
    results = run_batch(cases)
    assert len(results) == len(cases) == 300
    bad = {path.name: outcome for path, outcome in results.items() if outcome not in ("ok", "error")}
    counts = {kind: sum(1 for o in results.values() if o == kind) for kind in ("ok", "error")}
    assert not bad, f"{len(bad)} of 300 misbehaved: {bad}"
    # The fuzz must reach both ends: some files still load, most are refused.
    assert counts["ok"] >= 10 and counts["error"] >= 100, counts
