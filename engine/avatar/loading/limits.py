"""Limits an avatar file must stay within: an avatar is a file from the internet.

Every external file it names must be a regular file inside the avatar's own folder (no absolute
paths, no ``..``, no symlink leading out, no FIFO or device that blocks or never ends), and is read
with a size cap. Images are measured from their header before decoding; geometry is counted as the
loader reads it (accessors reused by many primitives count every time); node trees are bounded in
count and depth; every number that places a node or colours a material must be finite and of the
right length. Each breach is an ``AvatarLoadError`` with one line saying what and why.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from engine.capture.image_header import image_size
from engine.errors import AvatarLoadError

MAX_FILE_BYTES = 200 * 1024 * 1024  # the avatar file, and each file it names
MAX_IMAGE_PIXELS = 8192 * 8192  # one decoded texture (256 MB as RGBA)
MAX_TOTAL_IMAGE_PIXELS = 4 * 4096 * 4096  # all textures together
MAX_ACCESSOR_VALUES = 48_000_000  # numbers one accessor may declare (count x components)
MAX_TOTAL_VERTICES = 4_000_000  # over all primitives, reused accessors counted each time
MAX_TOTAL_INDICES = 12_000_000
MAX_TOTAL_MORPH_VERTICES = 16_000_000  # morph targets x their vertices, over all primitives
MAX_NODES = 4096
MAX_OBJECTS = 4096  # entries of any other top-level list, and primitives over all meshes
MAX_FAST_OBJECTS = 200_000  # accessors and buffer views (built without the slow generic parser)
MAX_NODE_DEPTH = 512
_HINT_REEXPORT = "Re-export the avatar from your 3D tool (glTF 2.0 / GLB)."
_HINT_SMALLER = "Reduce texture sizes or polygon count in your 3D tool and export again."
_HINT_FILES = "Keep the avatar's .bin and texture files in its folder, named by relative paths."


class AvatarLimitError(AvatarLoadError):
    """The file breaks one of these limits: never softened into a warning (a texture that merely
    fails to decode renders white; one that breaks a limit refuses the avatar)."""


def read_regular_file(path: Path, what: str, cap: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``cap`` bytes. A FIFO, a device
    (``/dev/zero``) or a folder is refused without blocking (opened non-blocking, checked by fstat)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as error:
        raise AvatarLimitError(f"Cannot read {what} '{path.name}': {error.strerror}.", _HINT_FILES) from error
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise AvatarLimitError(f"{what} '{path.name}' is not a regular file.", _HINT_FILES)
        if info.st_size > cap:
            raise AvatarLimitError(f"{what} '{path.name}' is {info.st_size / 2**20:.0f} MB, over the "
                                  f"{cap / 2**20:.0f} MB limit.", _HINT_SMALLER)
        with os.fdopen(fd, "rb", closefd=False) as file:
            data = file.read(cap + 1)  # a file that grows while read is still capped
    except OSError as error:
        raise AvatarLimitError(f"Cannot read {what} '{path.name}': {error.strerror}.", _HINT_FILES) from error
    finally:
        os.close(fd)
    if len(data) > cap:
        raise AvatarLimitError(f"{what} '{path.name}' is over the {cap / 2**20:.0f} MB limit.", _HINT_SMALLER)
    return data


def resolve_uri(folder: Path, uri: str, what: str) -> Path:
    """The file a (percent-decoded) relative ``uri`` names inside ``folder``; anything that could
    reach another file on the computer (a private photo shown as a texture) is refused."""
    parts = PurePosixPath(uri.replace("\\", "/"))
    if (parts.is_absolute() or ":" in uri or uri.startswith("~") or ".." in parts.parts or "\0" in uri
            or not parts.parts):
        raise AvatarLimitError(f"{what} names '{uri[:80]}', outside the avatar's folder; only relative paths "
                              "inside it are allowed.", _HINT_FILES)
    root = folder.resolve()
    target = (root / Path(*parts.parts)).resolve()
    if not target.is_relative_to(root):  # a symlink inside the folder leading out of it
        raise AvatarLimitError(f"{what} '{uri[:80]}' leads outside the avatar's folder.", _HINT_FILES)
    return target


def check_image(encoded: bytes, what: str, budget: list[int]) -> None:
    """Refuse an image whose header claims more pixels than one texture, or than what is left of
    ``budget`` (a one-item list: pixels still allowed for this avatar), before it is decoded."""
    size = image_size(encoded)
    if size is None:
        raise ValueError("not a PNG, JPEG or WebP image")
    width, height = size
    pixels = width * height
    if pixels > MAX_IMAGE_PIXELS or pixels > budget[0]:
        raise AvatarLimitError(f"{what} is {width}x{height} pixels, over the limit of "
                              f"{math.isqrt(MAX_IMAGE_PIXELS)}x{math.isqrt(MAX_IMAGE_PIXELS)} "
                              "(or of all textures together).", _HINT_SMALLER)
    budget[0] -= pixels


class GeometryBudget:
    """Counts vertices, indices and morph data as primitives are read (reuse counted every time)."""

    def __init__(self) -> None:
        self.vertices = self.indices = self.morph_vertices = 0

    def add(self, vertices: int, indices: int, targets: int) -> None:
        self.vertices += vertices
        self.indices += indices
        self.morph_vertices += vertices * targets
        for name, used, cap in (("vertices", self.vertices, MAX_TOTAL_VERTICES),
                                ("triangle indices", self.indices, MAX_TOTAL_INDICES),
                                ("morph target vertices", self.morph_vertices, MAX_TOTAL_MORPH_VERTICES)):
            if used > cap:
                raise AvatarLimitError(f"The avatar has over {cap:,} {name} (meshes reusing data count each time).",
                                      _HINT_SMALLER)


def check_accessor_count(count: Any, components: int, index: int) -> int:
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count * components <= MAX_ACCESSOR_VALUES:
        raise AvatarLimitError(f"Accessor {index} declares {str(count)[:20]} elements (at most "
                               f"{MAX_ACCESSOR_VALUES // components:,}).", _HINT_SMALLER)
    return count


def check_document(doc: dict) -> None:
    """Counts checked on the raw JSON, before the (slow, ~1.5 ms an object) generic parser runs."""
    for key, value in doc.items():
        if isinstance(value, list):
            cap = MAX_NODES if key == "nodes" else MAX_FAST_OBJECTS if key in ("accessors", "bufferViews") else MAX_OBJECTS
            if len(value) > cap:
                raise AvatarLimitError(f"The avatar has {len(value):,} {key} (at most {cap:,}).", _HINT_SMALLER)
    meshes = doc.get("meshes")
    if isinstance(meshes, list):
        primitives = sum(len(m.get("primitives") or ()) for m in meshes if isinstance(m, dict)
                         and isinstance(m.get("primitives"), list))
        if primitives > MAX_OBJECTS:
            raise AvatarLimitError(f"The avatar has {primitives:,} mesh primitives (at most {MAX_OBJECTS:,}).",
                                   _HINT_SMALLER)


def check_node_tree(parents: dict[int, int], count: int) -> None:
    """At most MAX_NODES nodes, no deeper than MAX_NODE_DEPTH, and no cycles."""
    if count > MAX_NODES:
        raise AvatarLimitError(f"The avatar has {count:,} nodes (at most {MAX_NODES:,}).", _HINT_SMALLER)
    depth: dict[int, int] = {}
    for start in range(count):
        chain = []
        node: int | None = start
        while node is not None and node not in depth:
            chain.append(node)
            if len(chain) > MAX_NODE_DEPTH:
                raise AvatarLimitError(f"The avatar's node tree is deeper than {MAX_NODE_DEPTH} levels, or loops.",
                                      _HINT_REEXPORT)
            node = parents.get(node)
        base = 0 if node is None else depth[node]
        for offset, item in enumerate(reversed(chain), start=1):
            depth[item] = base + offset
            if depth[item] > MAX_NODE_DEPTH:
                raise AvatarLimitError(f"The avatar's node tree is deeper than {MAX_NODE_DEPTH} levels.",
                                      _HINT_REEXPORT)


def numbers(values: Any, length: int, what: str) -> tuple[float, ...]:
    """``values`` as ``length`` finite floats, or ``AvatarLoadError`` (inf, NaN, text, wrong count)."""
    if not isinstance(values, Sequence) or isinstance(values, str | bytes) or len(values) != length:
        raise AvatarLimitError(f"{what} must be {length} numbers.", _HINT_REEXPORT)
    try:
        out = tuple(float(v) for v in values if not isinstance(v, bool))
    except (TypeError, ValueError, OverflowError):
        out = ()
    if len(out) != length or not all(math.isfinite(v) for v in out):
        raise AvatarLimitError(f"{what} must be {length} finite numbers.",
                              _HINT_REEXPORT)
    return out


def number(value: Any, what: str) -> float:
    return numbers([value], 1, what)[0]


def finite_or(value: Any, default: float) -> float:
    """``value`` as a finite float, else ``default`` (lenient VRM fields)."""
    try:
        result = float(value)
    except (TypeError, ValueError, OverflowError):
        return default
    return result if math.isfinite(result) else default
