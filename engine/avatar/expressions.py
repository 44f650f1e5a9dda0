"""Format-neutral facial expressions (VRM 0.x blend shape groups, VRM 1.0 expressions).

``Expression`` is data: a name, its morph-target and texture-transform binds, ``is_binary`` and the
three override flags. ``ExpressionManager`` turns the weights a caller sets (by expression name)
into what the renderer needs: weights per ``(mesh, target)`` and UV transforms per material,
applying the VRM 1.0 rules (``VRMC_vrm`` expressions):

1. an expression's *output weight* is its weight clamped to 0..1, or, when ``is_binary``, 1 when the
   weight is above 0.5 and 0 otherwise;
2. each override class (blink, lookAt, mouth) gets a multiplier ``max(0, 1 - sum(amounts))`` over
   all expressions, where an expression's amount is its output weight for ``blend`` and 1 (when its
   output weight is above 0) for ``block``;
3. the blink expressions (blink, blinkLeft, blinkRight), the lookAt expressions (lookUp, lookDown,
   lookLeft, lookRight) and the mouth expressions (aa, ih, ou, ee, oh) are multiplied by their
   class multiplier; a binary expression that the multiplier leaves below 1 becomes 0 (an
   overridden binary expression stays binary, as three-vrm does and as the specification's
   ``isBinary_Overridden`` sample checks);
4. binds add up: a morph target's weight is the sum over expressions of ``weight * bind weight``
   (clamped to 0..1 by the renderer); a texture transform bind moves the material's UV offset and
   scale from their rest values by ``weight * (bind - rest)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from engine.vocabulary.vrm import BLINK_PRESETS, LOOK_AT_PRESETS, MOUTH_PRESETS, VrmPreset

PRESETS: tuple[str, ...] = tuple(p.value for p in VrmPreset)
BLINK_EXPRESSIONS = BLINK_PRESETS
LOOK_AT_EXPRESSIONS = LOOK_AT_PRESETS
MOUTH_EXPRESSIONS = MOUTH_PRESETS
OVERRIDE_TYPES: tuple[str, ...] = ("none", "block", "blend")


@dataclass(frozen=True, slots=True)
class MorphBind:
    """Drive morph target ``target`` of ``Avatar.meshes[mesh]`` with ``weight`` (0..1) at full expression."""

    mesh: int
    target: int
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class TextureTransformBind:
    """At full expression the material's base-colour UV transform becomes ``offset``/``scale``."""

    material: int
    offset: tuple[float, float] = (0.0, 0.0)
    scale: tuple[float, float] = (1.0, 1.0)


@dataclass(frozen=True, slots=True)
class Expression:
    """One named expression. ``preset`` is True for the VRM 1.0 preset names (``PRESETS``)."""

    name: str
    morph_binds: tuple[MorphBind, ...] = ()
    texture_binds: tuple[TextureTransformBind, ...] = ()
    is_binary: bool = False
    override_blink: str = "none"
    override_look_at: str = "none"
    override_mouth: str = "none"
    preset: bool = False

    def __post_init__(self) -> None:
        for flag in (self.override_blink, self.override_look_at, self.override_mouth):
            if flag not in OVERRIDE_TYPES:
                raise ValueError(f"override must be one of {OVERRIDE_TYPES}, not {flag!r}")

    def output_weight(self, weight: float) -> float:
        """The weight after clamping and, for binary expressions, rounding (> 0.5 is 1)."""
        weight = min(max(float(weight), 0.0), 1.0)
        if self.is_binary:
            return 1.0 if weight > 0.5 else 0.0
        return weight

    @staticmethod
    def override_amount(flag: str, output_weight: float) -> float:
        if flag == "block":
            return 1.0 if output_weight > 0.0 else 0.0
        if flag == "blend":
            return output_weight
        return 0.0


@dataclass(frozen=True, slots=True)
class ExpressionResult:
    """What ``ExpressionManager.evaluate`` gives the renderer."""

    expression_weights: Mapping[str, float]  # final weight of each expression, after overrides
    target_weights: Mapping[tuple[int, int], float]  # (mesh, target) -> summed weight
    uv_transforms: Mapping[int, tuple[float, float, float, float]]  # material -> offset x, y, scale x, y


_EMPTY_RESULT = ExpressionResult(MappingProxyType({}), MappingProxyType({}), MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class ExpressionManager:
    """Applies expression weights with the VRM 1.0 override and ``isBinary`` rules (see module doc).

    Immutable and thread-safe: ``evaluate`` takes the weights and returns a new result.
    ``rest_uv`` gives each material's UV transform at rest ((offset x, y, scale x, y)), for texture
    transform binds.
    """

    expressions: tuple[Expression, ...] = ()
    rest_uv: Mapping[int, tuple[float, float, float, float]] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.expressions)

    def get(self, name: str) -> Expression | None:
        for expression in self.expressions:
            if expression.name == name:
                return expression
        return None

    def __contains__(self, name: object) -> bool:
        return any(e.name == name for e in self.expressions)

    def multipliers(self, weights: Mapping[str, float]) -> dict[str, float]:
        """The blink / lookAt / mouth multipliers for these weights."""
        totals = {"blink": 0.0, "lookAt": 0.0, "mouth": 0.0}
        for e in self.expressions:
            w = e.output_weight(weights.get(e.name, 0.0))
            if w <= 0.0:
                continue
            totals["blink"] += Expression.override_amount(e.override_blink, w)
            totals["lookAt"] += Expression.override_amount(e.override_look_at, w)
            totals["mouth"] += Expression.override_amount(e.override_mouth, w)
        return {k: max(0.0, 1.0 - v) for k, v in totals.items()}

    def final_weights(self, weights: Mapping[str, float]) -> dict[str, float]:
        """Each expression's weight after ``isBinary`` and the override rules."""
        m = self.multipliers(weights)
        out: dict[str, float] = {}
        for e in self.expressions:
            w = e.output_weight(weights.get(e.name, 0.0))
            if e.name in BLINK_EXPRESSIONS:
                w *= m["blink"]
            elif e.name in LOOK_AT_EXPRESSIONS:
                w *= m["lookAt"]
            elif e.name in MOUTH_EXPRESSIONS:
                w *= m["mouth"]
            if e.is_binary and w < 1.0:
                w = 0.0
            out[e.name] = w
        return out

    def evaluate(self, weights: Mapping[str, float]) -> ExpressionResult:
        if not self.expressions or not weights:
            return _EMPTY_RESULT
        final = self.final_weights(weights)
        targets: dict[tuple[int, int], float] = {}
        uv: dict[int, list[float]] = {}
        for e in self.expressions:
            w = final[e.name]
            if w <= 0.0:
                continue
            for bind in e.morph_binds:
                key = (bind.mesh, bind.target)
                targets[key] = targets.get(key, 0.0) + w * bind.weight
            for bind in e.texture_binds:
                rest = self.rest_uv.get(bind.material, (0.0, 0.0, 1.0, 1.0))
                current = uv.setdefault(bind.material, list(rest))
                goal = (*bind.offset, *bind.scale)
                for i in range(4):
                    current[i] += w * (goal[i] - rest[i])
        return ExpressionResult(MappingProxyType(final), MappingProxyType(targets),
                                MappingProxyType({k: tuple(v) for k, v in uv.items()}))


__all__ = ["BLINK_EXPRESSIONS", "Expression", "ExpressionManager", "ExpressionResult", "LOOK_AT_EXPRESSIONS",
           "MOUTH_EXPRESSIONS", "MorphBind", "OVERRIDE_TYPES", "PRESETS", "TextureTransformBind"]
