"""Offscreen OpenGL renderer for avatars (moderngl, headless).

``AvatarRenderer`` owns one standalone OpenGL context and everything created in it. A frame is
``render(pose) -> H x W x 3 uint8 RGB`` (top row first). Choices measured on Mesa llvmpipe
(2 cores, no GPU), where the vertex stage runs on one thread and a shader runs both sides of a
branch:

* Morph targets are blended on the CPU: one numpy matrix product over the non-zero targets of
  each primitive, written into that primitive's dynamic position/normal buffer only when its
  weights changed. For a 12.7k-vertex head with 52 targets, 10 active, this adds 0.3 ms per
  frame; the GPU alternative (deltas in an RGB32F texture fetched by ``gl_VertexID``, weights in a
  uniform array) added 3.0 ms to the draw on llvmpipe.
* Skinning runs in the vertex shader with joint matrices in a float texture (faster than a
  dynamically indexed uniform array there: 1.5 vs 2.1 ms for 12.7k vertices), and each primitive
  uses a shader variant compiled for its influence count (rigid, 1, 2 or 4 joints) and material
  (textured or not, alpha mask or not) instead of uniform branches.
* The projection is flipped vertically, so OpenGL's bottom-up rows come back top row first and
  are read straight into the output array: no flip copy.
* MSAA renders into a multisample framebuffer resolved by a blit; optional FXAA is a full-screen
  pass over the resolved image. Both are cheap on a GPU and expensive on llvmpipe (see
  ``benchmark_render`` and ``AvatarRenderer.is_software``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import cv2
import moderngl
import numpy as np

from engine.avatar.model import Avatar, Material, OutlineMode, Primitive, Texture
from engine.errors import AvatarLoadError, RenderError
from engine.packets import AvatarPose
from engine.paths import SHADERS_DIR
from engine.render import culling
from engine.render.camera import FRAMINGS, Camera, frame_avatar
from engine.render.colour import DEFAULT_BACKGROUND

log = logging.getLogger(__name__)

GL_SRGB8_ALPHA8 = 0x8C43
_TEXTURE_UNIT, _JOINT_UNIT = 0, 1
# the material's other textures: sampler uniform, texture unit, shader switch
_MATERIAL_TEXTURES = {"emissive_texture": ("u_emissive_texture", 2, "HAS_EMISSIVE_TEXTURE"),
                      "shade_texture": ("u_shade_texture", 3, "HAS_SHADE_TEXTURE"),
                      "matcap_texture": ("u_matcap_texture", 4, "HAS_MATCAP")}
# glTF wrap enum -> moderngl repeat flag (MIRRORED_REPEAT is drawn as REPEAT, CLAMP_TO_EDGE clamps)
_WRAP = {10497: True, 33071: False, 33648: True}
_EMPTY_WEIGHTS: Mapping[str, float] = MappingProxyType({})
_SHADING = {"pbr": 0, "unlit": 1, "mtoon": 2}
_FXAA_MARGIN = 4  # pixels around the avatar's projected box that the FXAA pass also covers


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """How to render. ``background`` is in display (sRGB-encoded) values 0..1: the empty parts of
    the frame get exactly ``round(255 * background)`` (``CHROMA_GREEN`` for keying).

    ``software_msaa`` replaces ``msaa`` when OpenGL is a CPU rasteriser (Mesa llvmpipe): there MSAA
    costs about 2.5x the whole frame (720p, 30k triangles, 2 cores: 10 ms without, 26 ms with 2x
    or 4x), which breaks real time. ``None`` uses ``msaa`` everywhere.
    """

    width: int = 1280
    height: int = 720
    background: tuple[float, float, float] = DEFAULT_BACKGROUND
    msaa: int = 4  # samples; 0 = off; clamped to the context's GL_MAX_SAMPLES
    software_msaa: int | None = 0  # samples on a software rasteriser; None = same as msaa
    # FXAA pass after the (optional) MSAA resolve, limited to the avatar's screen rectangle.
    # None (auto): on exactly when MSAA is off, so there is always some anti-aliasing.
    fxaa: bool | None = None
    fxaa_quality: str = "lite"  # "lite": 5 taps, no edge search (cheap on CPUs); "full": FXAA 3.11 console
    transparent: bool = False  # clear to alpha 0: ``render_rgba`` gives a straight-alpha RGBA frame
    framing: str = "head_and_shoulders"  # see engine.render.camera.FRAMINGS
    fov_y_deg: float = 25.0

    def __post_init__(self) -> None:
        if not (16 <= self.width <= 8192 and 16 <= self.height <= 8192):
            raise ValueError(f"render size {self.width}x{self.height} is out of range (16..8192)")
        if self.msaa < 0 or (self.software_msaa or 0) < 0:
            raise ValueError("msaa must be 0 (off) or a sample count")
        if self.fxaa_quality not in ("lite", "full"):
            raise ValueError("fxaa_quality must be 'lite' or 'full'")
        if self.framing not in FRAMINGS:
            raise ValueError(f"unknown framing {self.framing!r}; choose one of {', '.join(FRAMINGS)}")
        if not 5.0 <= self.fov_y_deg <= 120.0:
            raise ValueError("fov_y_deg must be between 5 and 120 degrees")


def create_context() -> moderngl.Context:
    """A standalone GL 3.3+ context: EGL (headless) first, then the platform default."""
    errors = []
    for kwargs in ({"backend": "egl"}, {}):
        try:
            return moderngl.create_standalone_context(require=330, **kwargs)
        except Exception as error:
            errors.append(f"{kwargs.get('backend', 'default')}: {error}")
    raise RenderError("Could not create an OpenGL 3.3 context (" + "; ".join(errors) + ").",
                      "Install Mesa (libegl1, libgl1-mesa-dri) or update your graphics driver.")


def _gl_finish_function() -> ctypes._CFuncPtr | None:
    """``glFinish`` called through ctypes, which lets go of Python's GIL while it waits; None if
    the OpenGL library cannot be found (then moderngl's own calls wait, holding the GIL)."""
    name = "opengl32" if sys.platform == "win32" else ctypes.util.find_library("OpenGL" if sys.platform == "darwin" else "GL")
    try:
        return ctypes.CDLL(name or "libGL.so.1").glFinish
    except (OSError, AttributeError):
        return None


# moderngl holds the GIL in every call, and the calls that need the finished picture (the blit
# FXAA reads, the read-back) wait there for the rasteriser: on llvmpipe ~10 ms per 720p frame in
# which the tracker's and the voice's Python could not run. Waiting in glFinish first, without the
# GIL, leaves only the draw calls' own vertex work (~6 ms) holding it.
_FINISH_WITHOUT_GIL = _gl_finish_function()


def _wait_for_the_picture() -> None:
    if _FINISH_WITHOUT_GIL is not None:
        _FINISH_WITHOUT_GIL()


def _is_software(ctx: moderngl.Context) -> bool:
    name = str(ctx.info["GL_RENDERER"]).lower()
    return any(word in name for word in ("llvmpipe", "softpipe", "swiftshader", "software rasterizer"))


def _load_shader(name: str, defines: Mapping[str, object] = MappingProxyType({})) -> str:
    source = (SHADERS_DIR / name).read_text(encoding="utf-8")
    version, _, body = source.partition("\n")
    return "\n".join([version, *(f"#define {k} {v}" for k, v in defines.items()), body])


def _mat4_bytes(m: np.ndarray) -> bytes:
    """Column-major float32 bytes of one 4x4 or a stack of 4x4 matrices for GLSL."""
    return np.ascontiguousarray(np.swapaxes(m, -1, -2), dtype=np.float32).tobytes()


class _MorphBlender:
    """CPU morph targets for one primitive: ``positions|normals = base + sum(w_t * delta_t)``.

    Targets with no effect on this primitive are dropped at build time; ``blend`` skips work when
    the weights are unchanged and reuses its buffers (no per-frame allocation). It accumulates one
    target at a time rather than calling a BLAS matrix product: same median cost (0.19 ms for 10 of
    52 targets on 12.7k vertices) but no multi-millisecond spikes from BLAS worker threads waking.
    """

    def __init__(self, prim: Primitive) -> None:
        n = prim.vertex_count
        deltas = np.concatenate([prim.morph_positions, prim.morph_normals], axis=2).reshape(prim.target_count, n * 6)
        self.targets = np.flatnonzero(np.any(deltas != 0, axis=1))
        self.deltas = np.ascontiguousarray(deltas[self.targets])
        self.base = np.ascontiguousarray(np.concatenate([prim.positions, prim.normals], axis=1).reshape(-1))
        self.out = self.base.copy()
        self._scaled = np.empty_like(self.base)
        self._last = np.zeros(len(self.targets), dtype=np.float32)

    @property
    def active(self) -> bool:
        return len(self.targets) > 0

    def blend(self, mesh_weights: np.ndarray) -> np.ndarray | None:
        """New interleaved position/normal data, or ``None`` when nothing changed since last time."""
        weights = mesh_weights[self.targets]
        if np.array_equal(weights, self._last):
            return None
        self._last = weights
        np.copyto(self.out, self.base)
        for t in np.flatnonzero(weights):
            np.multiply(self.deltas[t], weights[t], out=self._scaled)
            np.add(self.out, self._scaled, out=self.out)
        return self.out


class _Program:
    """One compiled shader variant and its uniforms; setting a uniform the variant lacks is a no-op."""

    def __init__(self, ctx: moderngl.Context, defines: Mapping[str, int]) -> None:
        self.program = ctx.program(vertex_shader=_load_shader("avatar.vert", defines),
                                   fragment_shader=_load_shader("avatar.frag", defines))
        self.uniforms = {name: member for name, member in ((n, self.program[n]) for n in self.program)
                         if isinstance(member, moderngl.Uniform)}
        self.frame = -1  # the last frame whose camera uniforms were set
        self.material: Material | None = None  # the material whose uniforms are set now
        self.uv: tuple[float, float, float, float] | None = None

    def set(self, name: str, value: object) -> None:
        uniform = self.uniforms.get(name)
        if uniform is not None:
            uniform.value = value

    def write(self, name: str, data: bytes) -> None:
        uniform = self.uniforms.get(name)
        if uniform is not None:
            uniform.write(data)

    def release(self) -> None:
        self.program.release()


class _ProgramCache:
    """Shader variants by their compile-time switches (skin influences, textures, alpha mask,
    shading, outline), compiled on first use and shared by every primitive that needs them."""

    def __init__(self, ctx: moderngl.Context) -> None:
        self._ctx = ctx
        self._programs: dict[tuple[tuple[str, int], ...], _Program] = {}

    def get(self, **defines: int) -> _Program:
        key = tuple(sorted(defines.items()))
        if key not in self._programs:
            program = _Program(self._ctx, dict(key))
            program.set("u_base_texture", _TEXTURE_UNIT)
            program.set("u_joint_texture", _JOINT_UNIT)
            for sampler, unit, _ in _MATERIAL_TEXTURES.values():
                program.set(sampler, unit)
            self._programs[key] = program
        return self._programs[key]

    def release(self) -> None:
        for program in self._programs.values():
            program.release()
        self._programs = {}


def _heaviest_first(joints: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each vertex's joint/weight pairs sorted by weight, heaviest first: the 1- and 2-joint shader
    variants read the leading slots, and exporters may store a weight after a zero one."""
    order = np.argsort(-weights, axis=1, kind="stable")
    return np.take_along_axis(joints, order, axis=1), np.take_along_axis(weights, order, axis=1)


def _influences(prim: Primitive) -> int:
    """How many joints the busiest vertex uses, rounded to a compiled variant (1, 2 or 4)."""
    count = int(np.count_nonzero(prim.weights > 0, axis=1).max()) if prim.vertex_count else 1
    return 1 if count <= 1 else 2 if count == 2 else 4


class _GpuPrimitive:
    """GPU buffers, vertex array, shader variant and material of one primitive of one mesh instance."""

    def __init__(self, programs: _ProgramCache, prim: Primitive, textures: Mapping[str, moderngl.Texture],
                 skinned: bool) -> None:
        n = prim.vertex_count
        mat = self.material = prim.material
        self.texture = textures.get("base_color_texture")
        # (unit, texture) pairs bound before each draw; the outline pass only needs the base colour
        self.bindings = tuple((_MATERIAL_TEXTURES[name][1], tex) for name, tex in textures.items()
                              if name in _MATERIAL_TEXTURES)
        self.morph = _MorphBlender(prim)
        margin = mat.outline_width if mat.outline_mode is OutlineMode.WORLD else 0.0
        self.box = culling.local_box(prim, margin=0.02 + margin)  # for frustum culling
        self.box_joints = culling.used_joints(prim) if skinned else None
        influences = _influences(prim) if skinned else 0
        common = {"SKIN_INFLUENCES": influences, "HAS_TEXTURE": int(self.texture is not None),
                  "ALPHA_MASK": int(mat.alpha_mode == "MASK")}
        self.program = programs.get(**common, SHADING=_SHADING.get(mat.shading, 0), OUTLINE=0,
                                    **{define: int(name in textures) for name, (_, _, define) in _MATERIAL_TEXTURES.items()})
        # MToon outline: a second, inverted-hull draw of the same buffers (opaque materials only)
        outline = {OutlineMode.WORLD: 1, OutlineMode.SCREEN: 2}.get(mat.outline_mode, 0)
        self.outline_program = (programs.get(**common, SHADING=2, OUTLINE=outline,
                                             **{define: 0 for _, _, define in _MATERIAL_TEXTURES.values()})
                                if outline and mat.outline_width > 0 and mat.alpha_mode != "BLEND" else None)
        ctx = self.program.program.ctx
        static = np.zeros(n, dtype=[("uv", "f4", 2), ("color", "f4", 4), ("joints", "u2", 4), ("weights", "f4", 4)])
        static["uv"] = prim.uv0 if prim.uv0 is not None else 0.0
        static["color"] = prim.colors if prim.colors is not None else 1.0
        if influences:
            static["joints"], static["weights"] = _heaviest_first(prim.joints, prim.weights)
        self.vbo_dynamic = ctx.buffer(self.morph.base.tobytes(), dynamic=self.morph.active)
        self.vbo_static = ctx.buffer(static.tobytes())
        self.ibo = ctx.buffer(prim.indices.tobytes())
        layout = [(self.vbo_dynamic, "3f 3f", "in_position", "in_normal"),
                  (self.vbo_static, "2f 4f 4u2 4f", "in_uv", "in_color", "in_joints", "in_weights")]
        self.vao = ctx.vertex_array(self.program.program, layout, index_buffer=self.ibo, index_element_size=4,
                                    skip_errors=True)  # variants drop unused inputs
        self.outline_vao = (ctx.vertex_array(self.outline_program.program, layout, index_buffer=self.ibo,
                                             index_element_size=4, skip_errors=True)
                            if self.outline_program is not None else None)

    def update_morphs(self, mesh_weights: np.ndarray) -> None:
        if self.morph.active:
            data = self.morph.blend(mesh_weights)
            if data is not None:
                self.vbo_dynamic.write(data)

    def release(self) -> None:
        for obj in (self.vao, self.outline_vao, self.vbo_dynamic, self.vbo_static, self.ibo):
            if obj is not None:
                obj.release()


@dataclass(slots=True)
class _DrawItem:
    node: int
    mesh: int
    skin: int | None
    gpu: _GpuPrimitive


class _GpuScene:
    """All GPU resources of one avatar, plus the per-frame pose application.

    Built completely or not at all: a failure releases what was created and raises
    ``AvatarLoadError``.
    """

    def __init__(self, ctx: moderngl.Context, programs: _ProgramCache, avatar: Avatar) -> None:
        self.avatar = avatar
        self.textures: dict[int, moderngl.Texture] = {}
        self.joint_textures: dict[int, moderngl.Texture] = {}
        self.skin_matrices: dict[int, np.ndarray] = {}  # this frame's joint matrices by skin
        self.items: list[_DrawItem] = []
        max_size = int(ctx.info["GL_MAX_TEXTURE_SIZE"])
        try:
            for index, skin in enumerate(avatar.skins):
                if 4 * len(skin.joints) > max_size:
                    raise AvatarLoadError(f"The avatar's skin has {len(skin.joints)} bones; this GPU supports "
                                          f"{max_size // 4}.", "Reduce the bone count in your 3D tool.")
                self.joint_textures[index] = ctx.texture((4 * len(skin.joints), 1), 4, dtype="f4")
            for inst in avatar.instances:
                for prim in avatar.meshes[inst.mesh].primitives:
                    skinned = inst.skin is not None and prim.joints is not None and prim.weights is not None
                    if skinned and prim.vertex_count and int(prim.joints.max()) >= len(avatar.skins[inst.skin].joints):
                        raise AvatarLoadError("A mesh refers to a bone its skin does not have.",
                                              "Re-export the avatar from your 3D tool.")
                    textures = {}
                    for name in ("base_color_texture", *_MATERIAL_TEXTURES):
                        texture = self._texture(ctx, getattr(prim.material, name), max_size)
                        if texture is not None:
                            textures[name] = texture
                    gpu = _GpuPrimitive(programs, prim, textures, skinned)
                    self.items.append(_DrawItem(inst.node, inst.mesh, inst.skin if skinned else None, gpu))
        except AvatarLoadError:
            self.release()
            raise
        except (moderngl.Error, ValueError, MemoryError) as error:
            self.release()
            raise AvatarLoadError(f"The avatar could not be uploaded to the GPU ({error}).",
                                  "Try a smaller avatar or lower texture sizes.") from error
        self.node_by_name: dict[str, int] = {}
        for index, node in enumerate(avatar.nodes):
            self.node_by_name.setdefault(node.name.lower(), index)
        self.mesh_targets = [{name: i for i, name in enumerate(mesh.target_names)} for mesh in avatar.meshes]
        self.mesh_weights = [np.zeros(len(mesh.target_names), dtype=np.float32) for mesh in avatar.meshes]
        self.blend_items = [item for item in self.items if item.gpu.material.alpha_mode == "BLEND"]
        self.solid_items = [item for item in self.items if item.gpu.material.alpha_mode != "BLEND"]
        self.outline_items = [item for item in self.items if item.gpu.outline_vao is not None]

    def _texture(self, ctx: moderngl.Context, texture: Texture | None, max_size: int) -> moderngl.Texture | None:
        if texture is None:
            return None
        key = id(texture.image)
        if key not in self.textures:
            image = texture.image
            if max(image.shape[:2]) > max_size:
                scale = max_size / max(image.shape[:2])
                log.warning("Texture of %dx%d is larger than this GPU allows (%d); drawing it scaled down.",
                            image.shape[1], image.shape[0], max_size)
                image = cv2.resize(image, (max(1, int(image.shape[1] * scale)), max(1, int(image.shape[0] * scale))),
                                   interpolation=cv2.INTER_AREA)
            h, w = image.shape[:2]
            # glTF UV (0, 0) is the image's top-left corner and GL's t = 0 is the first row uploaded:
            # upload top row first, sample the file's UVs unchanged.
            tex = ctx.texture((w, h), 4, np.ascontiguousarray(image).tobytes(), internal_format=GL_SRGB8_ALPHA8)
            tex.repeat_x = _WRAP.get(texture.wrap_s, True)
            tex.repeat_y = _WRAP.get(texture.wrap_t, True)
            tex.build_mipmaps()
            tex.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
            self.textures[key] = tex
        return self.textures[key]

    def pose_world(self, node_rotations: Mapping[str, Sequence[float]]) -> np.ndarray:
        rotations = {}
        for name, quat in node_rotations.items():
            index = self.node_by_name.get(name.lower())
            if index is not None:
                rotations[index] = quat
        return self.avatar.world_matrices(rotations)

    def apply_skins(self, world: np.ndarray) -> None:
        """Upload this frame's joint matrices (column-major texels) for every skin."""
        for index, texture in self.joint_textures.items():
            matrices = self.skin_matrices[index] = self.avatar.joint_matrices(index, world)
            texture.write(np.ascontiguousarray(np.swapaxes(matrices, 1, 2), dtype=np.float32))

    def visible_items(self, world: np.ndarray, view_projection: np.ndarray) -> dict[int, float]:
        """The draw items that may be on screen, by ``id``, with their distance from the camera
        (call after ``apply_skins``)."""
        visible = {}
        for item in self.items:
            gpu = item.gpu
            if item.skin is not None and gpu.box_joints is not None and len(gpu.box_joints):
                transforms = self.skin_matrices[item.skin][gpu.box_joints]
            else:
                transforms = world[item.node][None]
            distance = culling.on_screen_distance(gpu.box, transforms, view_projection)
            if distance is not None:
                visible[id(item)] = distance
        return visible

    def apply_morphs(self, weights_by_name: Mapping[str, float],
                     target_weights: Mapping[tuple[int, int], float] = _EMPTY_WEIGHTS,
                     visible: Mapping[int, float] | None = None) -> None:
        """Blend this frame's morph targets; primitives not in ``visible`` (ids) catch up when they are."""
        for targets, weights in zip(self.mesh_targets, self.mesh_weights):
            for name, i in targets.items():
                weights[i] = float(weights_by_name.get(name, 0.0))
        for (mesh, target), weight in target_weights.items():
            if 0 <= mesh < len(self.mesh_weights) and 0 <= target < len(self.mesh_weights[mesh]):
                self.mesh_weights[mesh][target] += float(weight)
        for weights in self.mesh_weights:
            np.clip(weights, 0.0, 1.0, out=weights)
        for item in self.items:
            if visible is None or id(item) in visible:
                item.gpu.update_morphs(self.mesh_weights[item.mesh])

    def release(self) -> None:
        for item in self.items:
            item.gpu.release()
        for tex in (*self.textures.values(), *self.joint_textures.values()):
            tex.release()
        self.items, self.textures, self.joint_textures = [], {}, {}


class _Targets:
    """The framebuffers of one output size: multisample (optional), resolve (read back; FXAA
    writes its rectangle back into it), and the copy FXAA samples (optional)."""

    def __init__(self, ctx: moderngl.Context, size: tuple[int, int], samples: int, fxaa: bool) -> None:
        self._objects: list = []

        def keep(obj):
            self._objects.append(obj)
            return obj

        # FXAA samples a copy of the resolved frame: drawing the avatar straight into a texture
        # costs llvmpipe ~3 ms more per frame at 640x360 than drawing into a renderbuffer, while
        # the copy costs 0.04 ms.
        self.resolve_texture = keep(ctx.texture(size, 4)) if fxaa else None
        if self.resolve_texture is not None:
            self.resolve_texture.filter = (moderngl.LINEAR, moderngl.LINEAR)
            self.resolve_texture.repeat_x = self.resolve_texture.repeat_y = False
        resolve_color = keep(ctx.renderbuffer(size, 4))
        if samples:
            self.draw = keep(ctx.framebuffer(keep(ctx.renderbuffer(size, 4, samples=samples)),
                                             keep(ctx.depth_renderbuffer(size, samples=samples))))
            self.resolve = keep(ctx.framebuffer(resolve_color))
        else:
            self.draw = self.resolve = keep(ctx.framebuffer(resolve_color, keep(ctx.depth_renderbuffer(size))))

    def release(self) -> None:
        for obj in reversed(self._objects):
            obj.release()
        self._objects = []


class _FxaaPass:
    """FXAA from a copy of the resolved colour (a texture) into a framebuffer, optionally scissored."""

    def __init__(self, ctx: moderngl.Context, quality: str = "lite") -> None:
        self.program = ctx.program(vertex_shader=_load_shader("fullscreen.vert"),
                                   fragment_shader=_load_shader("fxaa_lite.frag" if quality == "lite" else "fxaa.frag"))
        self.program["u_image"] = 0
        self.vao = ctx.vertex_array(self.program, [])

    def run(self, source: moderngl.Texture, target: moderngl.Framebuffer,
            rect: tuple[int, int, int, int] | None = None) -> None:
        """Filter ``source`` into ``target``; only inside ``rect`` (x, y, w, h in GL pixels) if given."""
        target.use()
        target.scissor = rect
        source.use(0)
        self.vao.render(moderngl.TRIANGLES, vertices=3)
        target.scissor = None

    def release(self) -> None:
        self.vao.release()
        self.program.release()


class AvatarRenderer:
    """Renders an ``Avatar`` offscreen into RGB frames.

    Thread affinity: the constructor creates a standalone OpenGL context bound to the calling
    thread; every other method must be called from that thread (``RenderError`` otherwise).
    ``close()`` releases every GL object and the context, is idempotent, and is also called on
    leaving a ``with`` block. Static vertex data and textures are uploaded once per avatar; per
    frame only changed morph data, joint matrices and uniforms are sent.
    """

    def __init__(self, avatar: Avatar, options: RenderOptions = RenderOptions()) -> None:
        self._thread = threading.get_ident()
        self._options = options
        self._ctx: moderngl.Context | None = create_context()
        self._frame = 0
        try:
            ctx = self._ctx
            ctx.front_face = "cw"  # the flipped projection mirrors winding in window space
            self._programs = _ProgramCache(ctx)
            samples = options.msaa
            if options.software_msaa is not None and _is_software(ctx):
                samples = options.software_msaa
            self._samples = min(samples, ctx.max_samples) if samples > 1 else 0
            use_fxaa = (self._samples == 0) if options.fxaa is None else options.fxaa
            self._draw_size = (options.width, options.height)  # smaller under load: set_resolution_scale
            self._targets = _Targets(ctx, self._draw_size, self._samples, use_fxaa)
            self._fxaa = _FxaaPass(ctx, options.fxaa_quality) if use_fxaa else None
            self._scene = _GpuScene(ctx, self._programs, avatar)
        except moderngl.Error as error:
            self.close()
            raise RenderError(f"The renderer could not start ({error}).",
                              "Update your graphics driver or run with Mesa's llvmpipe.") from error
        except BaseException:
            self.close()
            raise
        self._background = tuple(float(c) for c in options.background)
        self._staging = np.empty((options.height, options.width, 4), dtype=np.uint8)  # at the draw size
        self._alpha = 0.0 if options.transparent else 1.0
        self._camera_key: tuple | None = None
        self._uv: Mapping[int, tuple[float, float, float, float]] = _EMPTY_WEIGHTS
        self._camera_cache: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._cull = True  # whether back faces are culled now (changed only when a material needs it)
        self.drawn = 0  # primitives inside the view frustum in the last frame (the rest were skipped)

    # --- public API ---

    @property
    def options(self) -> RenderOptions:
        return self._options

    @property
    def avatar(self) -> Avatar:
        return self._scene.avatar

    @property
    def gl_renderer(self) -> str:
        return str(self._live_ctx().info["GL_RENDERER"])

    @property
    def is_software(self) -> bool:
        """True on a CPU rasteriser (llvmpipe, softpipe, SwiftShader), where MSAA is expensive."""
        return _is_software(self._live_ctx())

    @property
    def fxaa(self) -> bool:
        """Whether the FXAA pass runs (``RenderOptions.fxaa``, or automatically when MSAA is off)."""
        return self._fxaa is not None

    @property
    def msaa_samples(self) -> int:
        """The MSAA sample count in use (0 when off) after clamping to the hardware limit."""
        return self._samples

    @property
    def resolution_scale(self) -> float:
        """The drawn picture's width over the output's (1.0: drawn at the output size)."""
        return self._draw_size[0] / self._options.width

    def set_resolution_scale(self, scale: float) -> None:
        """Draw at ``scale`` times the output size (0.25 to 1) and scale the picture up to it: on a
        CPU rasteriser the cost goes with the pixels drawn (0.75: ~40 % less at 720p). Frames keep
        the output size; the switch reallocates the framebuffers, so make it rarely."""
        if not 0.25 <= scale <= 1.0:
            raise ValueError("the resolution scale must be between 0.25 and 1")
        o = self._options
        size = (max(16, round(o.width * scale)), max(16, round(o.height * scale)))
        if size == self._draw_size:
            return
        ctx = self._live_ctx()
        old = self._targets
        self._targets = _Targets(ctx, size, self._samples, self._fxaa is not None)
        old.release()
        self._draw_size = size
        self._staging = np.empty((size[1], size[0], 4), dtype=np.uint8)

    def camera(self, view_yaw_deg: float = 0.0) -> Camera:
        """The auto-framed camera for the current avatar and options."""
        avatar, o = self._scene.avatar, self._options
        return frame_avatar(avatar.bounds(), avatar.head_bounds(), aspect=o.width / o.height,
                            fov_y_deg=o.fov_y_deg, framing=o.framing, yaw_deg=view_yaw_deg,
                            eye_height=avatar.eye_height())

    def set_avatar(self, avatar: Avatar) -> None:
        """Show another avatar. On failure the current avatar stays and ``AvatarLoadError`` is raised."""
        new_scene = _GpuScene(self._live_ctx(), self._programs, avatar)
        old, self._scene = self._scene, new_scene
        old.release()
        self._camera_key = None

    def set_background(self, rgb: Sequence[float]) -> None:
        """Background in display (sRGB-encoded) values 0..1."""
        if len(rgb) != 3:
            raise ValueError("background needs three values (r, g, b)")
        self._background = tuple(min(max(float(c), 0.0), 1.0) for c in rgb)

    def render(self, pose: AvatarPose) -> np.ndarray:
        """One frame: ``height x width x 3`` uint8 RGB, top row first, C-contiguous, newly allocated."""
        return self._to_output_size(cv2.cvtColor(self._render(pose), cv2.COLOR_RGBA2RGB))

    def render_rgba(self, pose: AvatarPose) -> np.ndarray:
        """One frame as ``height x width x 4`` uint8 RGBA (straight alpha; with
        ``RenderOptions.transparent`` the background has alpha 0), newly allocated."""
        rgba = self._render(pose)
        return self._to_output_size(rgba) if self._drawn_smaller else rgba.copy()  # the staging array is reused

    @property
    def _drawn_smaller(self) -> bool:
        return self._draw_size != (self._options.width, self._options.height)

    def _to_output_size(self, image: np.ndarray) -> np.ndarray:
        """``image`` (at the draw size) at the output size: bilinear, ~1 ms at 720p."""
        if not self._drawn_smaller:
            return image
        return cv2.resize(image, (self._options.width, self._options.height), interpolation=cv2.INTER_LINEAR)

    def _render(self, pose: AvatarPose) -> np.ndarray:
        """Draw a frame and read it into the staging array (RGBA, top row first); returns the staging array."""
        ctx = self._live_ctx()
        self._frame += 1
        scene = self._scene
        world = scene.pose_world(pose.node_rotations)
        scene.apply_skins(world)
        view = self._view_projection(pose.view_yaw_deg)[0]
        visible = scene.visible_items(world, self._camera_cache[4] @ view)  # off-screen parts: no work
        scene.apply_morphs(pose.morph_weights, pose.target_weights, visible)
        self._uv = pose.uv_transforms
        self.drawn = len(visible)

        targets = self._targets
        targets.draw.use()
        targets.draw.clear(*self._background, self._alpha, depth=1.0)
        ctx.enable(moderngl.DEPTH_TEST | moderngl.CULL_FACE)
        self._cull = True
        # Nearest first, cut-outs (alpha MASK: their discard defeats the early depth test) after
        # the solid surfaces: llvmpipe then shades ~10 % fewer hidden fragments than in material order.
        solid = [item for item in scene.solid_items if id(item) in visible]
        for item in sorted(solid, key=lambda it: (it.gpu.material.alpha_mode == "MASK", visible[id(it)])):
            self._draw(item, world, view)
        if scene.outline_items:  # inverted hulls: back faces of the pushed-out surface
            ctx.cull_face = "front"
            for item in scene.outline_items:
                if id(item) in visible:
                    self._draw(item, world, view, outline=True)
            ctx.cull_face = "back"
        if scene.blend_items:
            ctx.enable(moderngl.BLEND)
            # colour: over; alpha: accumulate coverage (correct for a transparent background)
            ctx.blend_func = (moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA,
                              moderngl.ONE, moderngl.ONE_MINUS_SRC_ALPHA)
            targets.draw.depth_mask = False
            blended = [item for item in scene.blend_items if id(item) in visible]
            for item in sorted(blended, key=lambda it: -visible[id(it)]):  # farthest first
                self._draw(item, world, view)
            targets.draw.depth_mask = True
            ctx.disable(moderngl.BLEND)
        ctx.disable(moderngl.DEPTH_TEST | moderngl.CULL_FACE)
        if targets.draw is not targets.resolve:
            ctx.copy_framebuffer(targets.resolve, targets.draw)
        # FXAA only where the avatar is: the background needs none, and on a software rasteriser a
        # full-screen pass costs as much as the avatar itself. The pass reads a copy of the resolved
        # frame and writes the filtered rectangle back over the resolved frame itself, so one
        # read-back gives the whole picture (a second read of the rectangle from another
        # framebuffer cost llvmpipe ~2.5 ms of CPU per 720p frame).
        if self._fxaa is not None:
            rect = self._avatar_rect(world, view)
            if rect is not None:
                _wait_for_the_picture()
                ctx.copy_framebuffer(targets.resolve_texture, targets.resolve)
                self._fxaa.run(targets.resolve_texture, targets.resolve, rect)
        # RGBA read-back plus an OpenCV channel drop: 0.25 ms at 720p on llvmpipe, against 1.35 ms
        # for GL's own RGBA->RGB conversion (fbo.read(components=3)). The flipped projection makes
        # GL rows image rows.
        _wait_for_the_picture()
        targets.resolve.read_into(self._staging, components=4, alignment=1)
        return self._staging

    def _avatar_rect(self, world: np.ndarray, view: np.ndarray) -> tuple[int, int, int, int] | None:
        """Screen rectangle (GL pixels, flipped rows) around the posed avatar's bounding box."""
        width, height = self._draw_size
        lo, hi = self._scene.avatar.bounds()
        pad = 0.06 * float(np.max(hi - lo))  # head turns and expressions stay inside the padded box
        corners = np.array([[x, y, z, 1.0] for x in (lo[0] - pad, hi[0] + pad) for y in (lo[1] - pad, hi[1] + pad)
                            for z in (lo[2] - pad, hi[2] + pad)])
        proj = self._camera_cache[4]
        clip = corners @ (proj @ view).T
        if np.any(clip[:, 3] <= 1e-6):  # the camera is inside the padded box: filter everything
            return 0, 0, width, height
        ndc = clip[:, :2] / clip[:, 3:4]
        x0 = int(np.floor((ndc[:, 0].min() + 1) / 2 * width)) - _FXAA_MARGIN
        x1 = int(np.ceil((ndc[:, 0].max() + 1) / 2 * width)) + _FXAA_MARGIN
        y0 = int(np.floor((ndc[:, 1].min() + 1) / 2 * height)) - _FXAA_MARGIN
        y1 = int(np.ceil((ndc[:, 1].max() + 1) / 2 * height)) + _FXAA_MARGIN
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if x1 <= x0 or y1 <= y0:
            return None
        return x0, y0, x1 - x0, y1 - y0

    def close(self) -> None:
        """Release all GL objects and the context. Safe to call more than once."""
        ctx, self._ctx = self._ctx, None
        if ctx is None:
            return
        for name in ("_scene", "_targets", "_fxaa", "_programs"):
            resource = getattr(self, name, None)
            if resource is not None:
                resource.release()
        ctx.release()

    def __enter__(self) -> AvatarRenderer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- internals ---

    def _live_ctx(self) -> moderngl.Context:
        if self._ctx is None:
            raise RenderError("The renderer is closed.", "Create a new AvatarRenderer.")
        if threading.get_ident() != self._thread:
            raise RenderError("The renderer was used from a thread that does not own its OpenGL context.",
                              "Call every AvatarRenderer method from the thread that created it.")
        return self._ctx

    def _view_projection(self, yaw: float) -> tuple[np.ndarray, bytes, bytes, tuple[float, float, float]]:
        """View matrix, and view/projection as uniform bytes and the view-space up vector (cached)."""
        key = (yaw, id(self._scene))
        if key != self._camera_key:
            o = self._options
            cam = self.camera(yaw)
            view = cam.view_matrix()
            proj = cam.projection_matrix(o.width / o.height, flip_y=True)
            self._camera_cache = (view, _mat4_bytes(view), _mat4_bytes(proj), tuple(map(float, view[:3, 1])), proj)
            self._camera_key = key
        return self._camera_cache

    def _draw(self, item: _DrawItem, world: np.ndarray, view: np.ndarray, outline: bool = False) -> None:
        ctx, gpu, mat = self._ctx, item.gpu, item.gpu.material
        program = gpu.outline_program if outline else gpu.program
        if program.frame != self._frame:  # camera uniforms once per program per frame
            _, view_bytes, proj_bytes, up, _ = self._camera_cache
            program.write("u_view", view_bytes)
            program.write("u_proj", proj_bytes)
            program.set("u_up", up)
            program.frame = self._frame
        if item.skin is not None:
            self._scene.joint_textures[item.skin].use(_JOINT_UNIT)
        else:
            program.write("u_model", _mat4_bytes(world[item.node]))
            normal = np.linalg.inv((view @ world[item.node])[:3, :3])  # (M^-1)^T, stored column-major
            program.write("u_normal_matrix", np.ascontiguousarray(normal, dtype=np.float32).tobytes())
        uv = self._uv.get(mat.index, (*mat.uv_offset, *mat.uv_scale))
        if program.material is not mat or program.uv != uv:  # primitives are drawn grouped by material
            self._set_material(program, mat, uv)
        if gpu.texture is not None:
            gpu.texture.use(_TEXTURE_UNIT)
        if not outline:
            for unit, texture in gpu.bindings:
                texture.use(unit)
        cull = outline or not mat.double_sided
        if cull != self._cull:
            (ctx.enable if cull else ctx.disable)(moderngl.CULL_FACE)
            self._cull = cull
        (gpu.outline_vao if outline else gpu.vao).render(moderngl.TRIANGLES)

    @staticmethod
    def _set_material(program: _Program, mat: Material, uv: tuple[float, float, float, float]) -> None:
        program.set("u_base_color", mat.base_color_factor)
        program.set("u_metallic", mat.metallic)
        program.set("u_roughness", mat.roughness)
        program.set("u_emissive", mat.emissive)
        program.set("u_alpha_cutoff", mat.alpha_cutoff)
        program.set("u_blend", mat.alpha_mode == "BLEND")
        program.set("u_uv_transform", uv)
        if mat.shading == "mtoon":
            program.set("u_shade_color", mat.shade_color)
            program.set("u_toony", mat.shading_toony)
            program.set("u_shift", mat.shading_shift)
            program.set("u_rim_color", mat.rim_color)
            program.set("u_rim_power", mat.rim_fresnel_power)
            program.set("u_rim_lift", mat.rim_lift)
            program.set("u_rim_mix", mat.rim_lighting_mix)
            program.set("u_matcap_factor", mat.matcap_factor)
            program.set("u_outline_color", mat.outline_color)
            program.set("u_outline_width", mat.outline_width)
        program.material, program.uv = mat, uv


def benchmark_render(avatar: Avatar, options: RenderOptions = RenderOptions(), frames: int = 120) -> dict:
    """Time ``render`` (pose update, draw, read-back) over ``frames`` frames of a moving pose.

    About ten morph targets are non-zero and change every frame, and the head turns, as in live
    use. Returns ``{"p50_ms", "p95_ms", "mean_ms", "frames", "width", "height", "msaa", "fxaa",
    "triangles", "gl_renderer"}``.
    """
    names = avatar.morph_target_names
    head = avatar.head_node
    head_name = avatar.nodes[head].name if head is not None else ""
    times = []
    with AvatarRenderer(avatar, options) as renderer:
        for frame in range(frames + 5):
            phase = frame * 0.2
            weights = {name: 0.5 + 0.5 * np.sin(phase + i) for i, name in enumerate(names[:10])}
            angle = np.radians(15.0 * np.sin(phase)) / 2.0
            pose = AvatarPose(morph_weights=weights,
                              node_rotations={head_name: (0.0, float(np.sin(angle)), 0.0, float(np.cos(angle)))})
            start = time.perf_counter()
            renderer.render(pose)
            if frame >= 5:  # the first frames include driver warm-up (shader JIT, first uploads)
                times.append((time.perf_counter() - start) * 1000.0)
        samples, gl, fxaa = renderer.msaa_samples, renderer.gl_renderer, renderer.fxaa
    t = np.asarray(times)
    return {"p50_ms": float(np.percentile(t, 50)), "p95_ms": float(np.percentile(t, 95)), "mean_ms": float(t.mean()),
            "frames": frames, "width": options.width, "height": options.height, "msaa": samples,
            "fxaa": fxaa, "triangles": avatar.triangle_count, "gl_renderer": gl}
