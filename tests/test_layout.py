"""The engine's imports point down the data flow, and never across the Qt boundary."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Bottom to top. A module may import its own layer and the layers below it, never one above.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("engine.packets", "engine.stages", "engine.vocabulary", "engine.errors", "engine.paths", "engine.rotation",
     "engine.models", "engine.onnx_session", "engine.idle", "engine.calibration", "engine.profiles",
     "engine.output_format", "engine.privacy"),
    ("engine.capture",),
    ("engine.perception",),
    ("engine.fusion",),
    ("engine.animation",),
    ("engine.avatar",),
    ("engine.render",),
    ("engine.outputs",),
    ("engine.runtime",),
    ("engine.session",),
    ("engine.commands",),
)


def layer_of(module: str) -> int | None:
    for index, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    return None


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (function-level imports included)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            # ``from engine import capture`` imports a submodule: its layer counts
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def upward_imports(root: Path) -> list[str]:
    found = []
    for path in sorted((root / "engine").rglob("*.py")):
        own = layer_of(module_name(path, root))
        for imported in sorted(imports(path, root)):
            target = layer_of(imported)
            if own is not None and target is not None and target > own:
                found.append(f"{module_name(path, root)} -> {imported}")
    return found


def test_every_engine_module_has_a_layer():
    modules = [module_name(p, ROOT) for p in (ROOT / "engine").rglob("*.py")]
    assert [m for m in modules if layer_of(m) is None and m != "engine"] == []


def test_engine_imports_point_down_the_data_flow():
    assert upward_imports(ROOT) == []


def test_engine_never_imports_the_app_or_qt():
    crossing = [f"{module_name(p, ROOT)} -> {m}" for p in (ROOT / "engine").rglob("*.py") for m in imports(p, ROOT)
                if m.split(".")[0] in ("app", "PySide6", "shiboken6")]
    assert crossing == []


def test_an_upward_import_is_caught(tmp_path):
    bad = tmp_path / "engine" / "capture" / "bad.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("from engine.render import AvatarRenderer\nfrom ..runtime import pipeline\nfrom engine.packets import VideoFrame\n")
    assert upward_imports(tmp_path) == ["engine.capture.bad -> engine.render", "engine.capture.bad -> engine.render.AvatarRenderer",
                                        "engine.capture.bad -> engine.runtime", "engine.capture.bad -> engine.runtime.pipeline"]
