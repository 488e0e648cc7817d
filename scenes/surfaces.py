"""Uncontrolled surface (US): an object's material mixed with a degradation material (rust, dust,
grime) through a Mix Shader driven by a noise mask. The degradation variants are assets
(kind "surface_degradation") split into disjoint train and test sets.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mkdata.assets_manifest import ids_for, load_assets

CLEAN = "clean"


class Degradation:
    """Adds a degradation layer to materials; ``randomise`` picks a variant per image."""

    def __init__(self, bp: Any, materials: list[Any]) -> None:
        self.bp = bp
        self.layers = [self._add_layer(material) for material in materials]

    @staticmethod
    def _add_layer(material: Any) -> dict[str, Any]:
        nodes, links = material.node_tree.nodes, material.node_tree.links
        output, base = nodes["Material Output"], nodes["Principled BSDF"]
        coords, mapping = nodes.new("ShaderNodeTexCoord"), nodes.new("ShaderNodeMapping")
        noise, ramp = nodes.new("ShaderNodeTexNoise"), nodes.new("ShaderNodeValToRGB")
        amount = nodes.new("ShaderNodeMath")
        amount.operation = "MULTIPLY"
        dirt, mix = nodes.new("ShaderNodeBsdfPrincipled"), nodes.new("ShaderNodeMixShader")
        links.new(coords.outputs["Object"], mapping.inputs["Vector"])
        links.new(mapping.outputs["Vector"], noise.inputs["Vector"])
        links.new(noise.outputs["Fac"], ramp.inputs["Fac"])
        links.new(ramp.outputs["Color"], amount.inputs[0])
        links.new(amount.outputs["Value"], mix.inputs["Fac"])
        links.new(base.outputs["BSDF"], mix.inputs[1])
        links.new(dirt.outputs["BSDF"], mix.inputs[2])
        links.new(mix.outputs["Shader"], output.inputs["Surface"])
        amount.inputs[1].default_value = 0.0
        return {"mapping": mapping, "noise": noise, "ramp": ramp, "amount": amount, "dirt": dirt}

    def randomise(self, rng: np.random.Generator, uncontrolled: bool, split: str) -> str:
        """Apply a random variant of ``split`` (US on) or none (US off); returns the surface id."""
        if not uncontrolled:
            for layer in self.layers:
                layer["amount"].inputs[1].default_value = 0.0
            return CLEAN
        choices = ids_for("surface_degradation", split)
        asset_id = choices[int(rng.integers(len(choices)))]
        params = load_assets()[asset_id].params
        strength = float(rng.uniform(0.6, 1.0))
        offset = rng.uniform(-50, 50, 3)
        for layer in self.layers:
            layer["amount"].inputs[1].default_value = strength
            layer["mapping"].inputs["Location"].default_value = tuple(offset)
            layer["noise"].inputs["Scale"].default_value = params["scale"]
            layer["noise"].inputs["Detail"].default_value = params["detail"]
            ramp = layer["ramp"].color_ramp
            ramp.elements[0].position = 1.0 - params["coverage"]
            ramp.elements[1].position = min(1.0, 1.0 - params["coverage"] + 0.08)
            layer["dirt"].inputs["Base Color"].default_value = (*params["color"], 1.0)
            layer["dirt"].inputs["Roughness"].default_value = params["roughness"]
        return asset_id
