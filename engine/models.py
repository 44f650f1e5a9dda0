"""Model manager: finds the models the engine needs, and downloads the ones that cannot ship.

``models/manifest.json`` lists each model (name, kind, filename, url, sha256, size, licence,
description). ``ModelManager.find(name)`` looks in the folder named by ``AVATARCAM_MODEL_DIR``,
then the user data folder (``platformdirs.user_data_dir("avatarcam")/models``), then the shared
folder beside a source checkout, and accepts a file only if its size and sha256 match.
``ensure(name)`` downloads a missing model into the user data folder, with progress and cancel,
and raises ``ModelError`` (message plus what to do) when that fails, never anything else. A model
published inside an archive (e.g. Silero VAD inside its PyPI wheel) names the archive as ``url`` and
the file inside it as ``member``: the archive is downloaded, verified, and the member extracted.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from engine.errors import ModelError
from engine.paths import MODELS_DIR, SHARED_DIR

ENV_MODEL_DIR = "AVATARCAM_MODEL_DIR"
DEFAULT_MANIFEST = MODELS_DIR / "manifest.json"
_CHUNK = 64 * 1024
_TIMEOUT_S = 20.0

Progress = Callable[[int, int], None]
"""Called as ``progress(done_bytes, total_bytes)`` while a model downloads."""


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One manifest entry."""

    name: str
    filename: str
    url: str
    sha256: str
    size: int
    licence: str
    description: str = ""
    kind: str = "model"  # how messages name it: "the face model 'face_landmarker.task'"
    # When ``url`` is a .whl/.zip archive: the file inside it that is the model, and the archive's
    # own size and sha256 (``size``/``sha256`` above are then those of the extracted member).
    member: str = ""
    archive_size: int = 0
    archive_sha256: str = ""

    @property
    def label(self) -> str:
        return f"the {self.kind} '{self.filename}'"


@dataclass(frozen=True, slots=True)
class ModelStatus:
    """Whether one model is usable, for ``avatarcam doctor`` and the GUI's model manager."""

    name: str
    present: bool
    path: Path | None  # the verified file, when present
    size: int  # bytes, from the manifest
    licence: str
    description: str


# sha256 results per (path, size, mtime_ns), shared by every manager in this process, so each
# file is hashed once however often it is looked up.
_verified: dict[tuple[str, int, int], bool] = {}
_verified_lock = threading.Lock()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _is_valid(path: Path, model: ModelInfo) -> bool:
    """True when ``path`` is a file with the model's size and sha256 (hash cached per process)."""
    try:
        stat = path.stat()
    except OSError:
        return False
    if not path.is_file() or stat.st_size != model.size:
        return False
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _verified_lock:
        if key not in _verified:
            _verified[key] = _sha256(path) == model.sha256.lower()
        return _verified[key]


class ModelManager:
    """Finds, verifies and downloads the models listed in a manifest.

    ``data_dir`` is where downloads go (default: the user data folder's ``models``). Thread-safe:
    concurrent ``ensure`` calls for one model download it once.
    """

    def __init__(self, manifest_path: str | Path = DEFAULT_MANIFEST, data_dir: str | Path | None = None) -> None:
        self.manifest_path = Path(manifest_path)
        self.data_dir = (
            Path(data_dir) if data_dir is not None else Path(platformdirs.user_data_dir("avatarcam")) / "models"
        )
        self.models = self._load_manifest()
        self._download_lock = threading.Lock()

    def _load_manifest(self) -> dict[str, ModelInfo]:
        try:
            entries = json.loads(self.manifest_path.read_text(encoding="utf-8"))["models"]
            return {entry["name"]: ModelInfo(**entry) for entry in entries}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(
                f"Cannot read the model manifest '{self.manifest_path}' ({exc}).",
                hint="Reinstall avatarcam, or restore models/manifest.json.",
            ) from exc

    def info(self, name: str) -> ModelInfo:
        """The manifest entry for ``name``. Raises ``ModelError`` for an unknown name."""
        try:
            return self.models[name]
        except KeyError:
            raise ModelError(
                f"Unknown model '{name}'.", hint=f"Known models: {', '.join(sorted(self.models))}."
            ) from None

    def search_dirs(self) -> list[Path]:
        """Folders searched, in order: ``$AVATARCAM_MODEL_DIR``, the user data folder, shared/models."""
        env = os.environ.get(ENV_MODEL_DIR)
        return ([Path(env)] if env else []) + [self.data_dir, SHARED_DIR / "models"]

    def find(self, name: str) -> Path | None:
        """The first verified copy of the model, or ``None``. Files of the wrong size or sha256 are
        passed over. Raises ``ModelError`` only for an unknown name."""
        model = self.info(name)
        for folder in self.search_dirs():
            candidate = folder / model.filename
            if _is_valid(candidate, model):
                return candidate
        return None

    def status(self) -> list[ModelStatus]:
        """One ``ModelStatus`` per manifest entry, in manifest order."""
        result = []
        for model in self.models.values():
            path = self.find(model.name)
            result.append(
                ModelStatus(model.name, path is not None, path, model.size, model.licence, model.description)
            )
        return result

    def ensure(
        self, name: str, progress: Progress | None = None, cancel: threading.Event | None = None
    ) -> Path:
        """The path of a verified copy of the model, downloading it first if none is found.

        The download goes to ``<data_dir>/<filename>.part`` in chunks, calling
        ``progress(done_bytes, total_bytes)`` after each, stops as soon as ``cancel`` is set,
        is checked against the manifest's sha256 and then renamed into place atomically; on any
        failure the partial file is removed and ``ModelError`` is raised.
        """
        model = self.info(name)
        with self._download_lock:
            found = self.find(name)
            if found is not None:
                return found
            target = self.data_dir / model.filename
            part = target.with_name(model.filename + ".part")
            try:
                if model.member:
                    self._download(model, part, progress, cancel, model.archive_size, model.archive_sha256)
                    self._extract(model, part, target)
                else:
                    self._download(model, part, progress, cancel, model.size, model.sha256)
                    os.replace(part, target)
            finally:
                part.unlink(missing_ok=True)
            return target

    def _extract(self, model: ModelInfo, archive: Path, target: Path) -> None:
        """Extract ``model.member`` from a verified archive to ``target``, checked against the manifest."""
        member_part = target.with_name(model.filename + ".member.part")
        try:
            with zipfile.ZipFile(archive) as zipped, zipped.open(model.member) as src, member_part.open("wb") as out:
                digest = hashlib.sha256()
                while chunk := src.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
            if member_part.stat().st_size != model.size or digest.hexdigest() != model.sha256.lower():
                raise ModelError(f"{model.label} inside {model.url} is not the expected file.",
                                 hint="The manifest may be out of date; update avatarcam.")
            os.replace(member_part, target)
        except (zipfile.BadZipFile, KeyError, OSError) as exc:
            raise ModelError(f"Could not extract {model.label} from its archive ({exc}).",
                             hint=f"Retry, or place the file in {self.data_dir} (sha256 {model.sha256}).") from exc
        finally:
            member_part.unlink(missing_ok=True)

    def _download(
        self, model: ModelInfo, part: Path, progress: Progress | None, cancel: threading.Event | None,
        size: int, sha256: str,
    ) -> None:
        try:
            part.parent.mkdir(parents=True, exist_ok=True)
            with urllib.request.urlopen(model.url, timeout=_TIMEOUT_S) as response, part.open("wb") as out:
                total = int(response.headers.get("Content-Length") or size)
                done = 0
                digest = hashlib.sha256()
                while chunk := response.read(_CHUNK):
                    if cancel is not None and cancel.is_set():
                        raise ModelError(f"Download of {model.label} was cancelled.", hint="Retry when ready.")
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise ModelError(
                f"Could not download {model.label} ({reason}).",
                hint=f"Connect to the internet and retry, or place the file in {self.data_dir} "
                f"(sha256 {model.sha256}).",
            ) from exc
        if done != size or digest.hexdigest() != sha256.lower():
            raise ModelError(
                f"The download of {model.label} is damaged ({done} bytes, sha256 "
                f"{digest.hexdigest()[:12]}..., expected {size} bytes, {sha256[:12]}...).",
                hint=f"Retry; if it keeps failing, download {model.url} yourself and place it in "
                f"{self.data_dir}.",
            )
