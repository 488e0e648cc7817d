"""Uncontrolled surface (US): degradation of an object's materials by one of several families,
each with its own node recipe for where it lies:

- rust: noise patches plus streaks running down from them, with bump;
- dust: on up-facing surfaces (the world normal's Z), in soft drifts;
- grime: in crevices (ambient occlusion) and blotches;
- fade: broad soft chalking of paint;
- peel: paint flaked off in sharp patches with a raised lip;
- lichen: small clumps, more on up-facing surfaces.

A material's own BSDF is mixed with a degradation BSDF by ``sum(amount_f * mask_f)``; only the
drawn family's amount is non-zero (Cycles folds the others away). The variants are assets (kind
``surface_degradation``: family, colour, roughness, scale, detail, bump, coverage and strength
ranges) split into disjoint train and test sets; strength and coverage are drawn per image.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mkdata.assets_manifest import ids_for, load_assets
from mkdata.scenes.nodes import math_node, noise

CLEAN = "clean"
SOFTNESS = {"rust": 0.05, "dust": 0.25, "grime": 0.2, "fade": 0.45, "peel": 0.008, "lichen": 0.03}


def threshold(coverage: float) -> float:
    """The noise value above which a family covers about ``coverage`` of a surface."""
    return 0.66 - 0.32 * coverage


def _up(material: Any, low: float, high: float) -> Any:
    """0 on surfaces facing sideways or down, rising to 1 on those facing +Z (world)."""
    nodes, links = material.node_tree.nodes, material.node_tree.links
    split = nodes.new("ShaderNodeSeparateXYZ")
    links.new(nodes.new("ShaderNodeNewGeometry").outputs["Normal"], split.inputs[0])
    return _ramp(material, split.outputs["Z"], low, high)


def _ramp(material: Any, value: Any, low: float, high: float) -> Any:
    """``value`` mapped from [low, high] to [0, 1], clamped (a Map Range node)."""
    node = material.node_tree.nodes.new("ShaderNodeMapRange")
    node.inputs["From Min"].default_value, node.inputs["From Max"].default_value = low, high
    material.node_tree.links.new(value, node.inputs["Value"])
    return node


class Family:
    """One family's mask in one material: its noise nodes and threshold ramps, set per image."""

    def __init__(self, material: Any, name: str, where: Any) -> None:
        self.name, self.noises, self.ramps = name, [], []
        self.mask = RECIPES[name](self, material, where)

    def noise(self, material: Any, where: Any, stretch: tuple[float, float, float] | None = None, distortion: float = 0.0) -> Any:
        """A noise of this family (its scale and detail are the variant's)."""
        node = noise(material, where, 1.0, stretch=stretch, distortion=distortion)
        self.noises.append(node)
        return node.outputs["Fac"]

    def ramp(self, material: Any, value: Any, shift: float = 0.0, soft: float | None = None) -> Any:
        """``value`` thresholded at the coverage's level (+ ``shift``), over a ``soft`` band."""
        node = _ramp(material, value, 0.0, 1.0)
        self.ramps.append((node, shift, SOFTNESS[self.name] if soft is None else soft))
        return node.outputs["Result"]

    def set(self, scale: float, detail: float, coverage: float) -> None:
        """Set the noises' scale and detail and the thresholds for ``coverage``."""
        for node in self.noises:
            node.inputs["Scale"].default_value, node.inputs["Detail"].default_value = scale, detail
        for node, shift, soft in self.ramps:
            low = threshold(coverage) + shift
            node.inputs["From Min"].default_value, node.inputs["From Max"].default_value = low, low + soft


def _rust(family: Family, material: Any, where: Any) -> Any:
    patches = family.ramp(material, family.noise(material, where))
    streaks = family.ramp(material, family.noise(material, where, stretch=(6.0, 6.0, 0.4)), shift=0.04, soft=0.1)
    return math_node(material, "MAXIMUM", patches, math_node(material, "MULTIPLY", streaks, 0.7))


def _dust(family: Family, material: Any, where: Any) -> Any:
    return math_node(material, "MULTIPLY", family.ramp(material, family.noise(material, where)), _up(material, 0.05, 0.6).outputs["Result"])


def _grime(family: Family, material: Any, where: Any) -> Any:
    ao = material.node_tree.nodes.new("ShaderNodeAmbientOcclusion")
    ao.samples, ao.only_local = 4, True
    ao.inputs["Distance"].default_value = 0.05
    crevice = _ramp(material, math_node(material, "SUBTRACT", 1.0, ao.outputs["AO"]), 0.1, 0.6).outputs["Result"]
    return math_node(material, "MAXIMUM", crevice, family.ramp(material, family.noise(material, where)))


def _fade(family: Family, material: Any, where: Any) -> Any:
    return family.ramp(material, family.noise(material, where, stretch=(0.3, 0.3, 0.3)), shift=-0.2)


def _peel(family: Family, material: Any, where: Any) -> Any:
    return family.ramp(material, family.noise(material, where, distortion=1.2))


def _lichen(family: Family, material: Any, where: Any) -> Any:
    clumps = family.ramp(material, family.noise(material, where, stretch=(4.0, 4.0, 4.0)))
    spread = family.ramp(material, family.noise(material, where), shift=-0.05, soft=0.1)
    bias = math_node(material, "ADD", math_node(material, "MULTIPLY", _up(material, -0.2, 0.9).outputs["Result"], 0.6), 0.4)
    return math_node(material, "MULTIPLY", math_node(material, "MULTIPLY", clumps, spread), bias)


RECIPES: dict[str, Callable[[Family, Any, Any], Any]] = {
    "rust": _rust, "dust": _dust, "grime": _grime, "fade": _fade, "peel": _peel, "lichen": _lichen}
FAMILIES = tuple(RECIPES)


class Layer:
    """The degradation layer of one material: every family's mask, amount and the dirt BSDF."""

    def __init__(self, material: Any, zoom: float) -> None:
        nodes, links = material.node_tree.nodes, material.node_tree.links
        output, base = nodes["Material Output"], nodes["Principled BSDF"]
        self.mapping = nodes.new("ShaderNodeMapping")
        self.mapping.inputs["Scale"].default_value = (zoom,) * 3
        links.new(nodes.new("ShaderNodeTexCoord").outputs["Object"], self.mapping.inputs["Vector"])
        where = self.mapping.outputs["Vector"]
        self.families = {name: Family(material, name, where) for name in FAMILIES}
        self.amounts: dict[str, Any] = {}
        total: Any = 0.0
        for name, family in self.families.items():
            amount = nodes.new("ShaderNodeMath")
            amount.operation, amount.inputs[1].default_value = "MULTIPLY", 0.0
            links.new(family.mask, amount.inputs[0])
            self.amounts[name] = amount
            total = math_node(material, "ADD", total, amount.outputs["Value"])
        self.dirt, mix = nodes.new("ShaderNodeBsdfPrincipled"), nodes.new("ShaderNodeMixShader")
        tone = math_node(material, "ADD", math_node(material, "MULTIPLY", noise(material, where, 40.0).outputs["Fac"], 0.8), 0.6)
        self.colour = nodes.new("ShaderNodeVectorMath")
        self.colour.operation = "SCALE"
        links.new(tone, self.colour.inputs["Scale"])
        links.new(self.colour.outputs["Vector"], self.dirt.inputs["Base Color"])
        self.bump = nodes.new("ShaderNodeBump")
        self.bump.inputs["Distance"].default_value = 0.001
        links.new(total, self.bump.inputs["Height"])
        links.new(self.bump.outputs["Normal"], self.dirt.inputs["Normal"])
        links.new(math_node(material, "MINIMUM", total, 1.0), mix.inputs["Fac"])
        links.new(base.outputs["BSDF"], mix.inputs[1])
        links.new(self.dirt.outputs["BSDF"], mix.inputs[2])
        links.new(mix.outputs["Shader"], output.inputs["Surface"])

    def set(self, family: str | None, params: dict[str, Any], strength: float, coverage: float, offset: np.ndarray) -> None:
        """Show ``family`` at ``strength`` (none when None) with the variant's ``params``."""
        for name, amount in self.amounts.items():
            amount.inputs[1].default_value = strength if name == family else 0.0
        if family is None:
            return
        self.mapping.inputs["Location"].default_value = tuple(offset)
        self.families[family].set(params["scale"], params["detail"], coverage)
        self.colour.inputs[0].default_value = tuple(params["color"])
        self.dirt.inputs["Roughness"].default_value = params["roughness"]
        self.bump.inputs["Strength"].default_value = params["bump"]


class Degradation:
    """Adds a degradation layer to materials; ``randomise`` picks a variant per image. The variants'
    noise scales are per metre; ``zoom`` multiplies them (for small objects)."""

    def __init__(self, bp: Any, materials: list[Any], zoom: float = 1.0) -> None:
        self.bp = bp
        self.layers = [Layer(material, zoom) for material in materials]

    def randomise(self, rng: np.random.Generator, uncontrolled: bool, split: str) -> str:
        """Apply a random variant of ``split`` (US on) or none (US off); returns the surface id."""
        if not uncontrolled:
            for layer in self.layers:
                layer.set(None, {}, 0.0, 0.0, np.zeros(3))
            return CLEAN
        choices = ids_for("surface_degradation", split)
        asset_id = choices[int(rng.integers(len(choices)))]
        params = load_assets()[asset_id].params
        strength, coverage = float(rng.uniform(*params["strength"])), float(rng.uniform(*params["coverage"]))
        offset = rng.uniform(-50, 50, 3)
        for layer in self.layers:
            layer.set(params["family"], params, strength, coverage, offset)
        return asset_id
