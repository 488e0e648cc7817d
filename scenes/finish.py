"""The normal finish of real equipment: galvanised spangle, paint orange-peel and edge wear,
scratches on bare metal, run-down streaks, glaze ripple.

This is *normal* variation (never a defect, never in a mask), independent of the US factor. Every
finished material reads one shared node group, ``mkdata_finish``, holding a texture offset and a
strength; ``Finish(bp).randomise(rng)`` redraws them per image, so the finish differs between
images with every factor off. Until it is called the finish is static (offset 0, strength 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mkdata.scenes.nodes import math_node, noise, reroute_input

GROUP = "mkdata_finish"
KINDS = ("paint", "galvanised", "metal", "glaze")
STRENGTH = (0.5, 1.5)  # per-image range of the finish's strength


class Finish:
    """The per-image parameters every finished material shares (one node group per scene)."""

    def __init__(self, bp: Any) -> None:
        groups = bp.bpy.data.node_groups
        self.group = groups.get(GROUP) or _new_group(groups)

    def outputs(self, material: Any) -> tuple[Any, Any]:
        """(offset vector, strength) sockets of an instance of the group in ``material``."""
        node = material.node_tree.nodes.new("ShaderNodeGroup")
        node.node_tree = self.group
        return node.outputs["Offset"], node.outputs["Strength"]

    def randomise(self, rng: np.random.Generator) -> None:
        """Draw this image's texture offset and finish strength."""
        nodes = self.group.nodes
        for socket, value in zip(nodes["offset"].inputs, rng.uniform(-100.0, 100.0, 3)):
            socket.default_value = float(value)
        nodes["strength"].outputs[0].default_value = float(rng.uniform(*STRENGTH))


def _new_group(groups: Any) -> Any:
    """The shared node group: outputs Offset (a Combine XYZ) and Strength (a Value, 1 at first)."""
    group = groups.new(GROUP, "ShaderNodeTree")
    group.interface.new_socket(name="Offset", in_out="OUTPUT", socket_type="NodeSocketVector")
    group.interface.new_socket(name="Strength", in_out="OUTPUT", socket_type="NodeSocketFloat")
    out, offset, strength = (group.nodes.new(t) for t in ("NodeGroupOutput", "ShaderNodeCombineXYZ", "ShaderNodeValue"))
    offset.name, strength.name = "offset", "strength"
    strength.outputs[0].default_value = 1.0
    group.links.new(offset.outputs["Vector"], out.inputs["Offset"])
    group.links.new(strength.outputs[0], out.inputs["Strength"])
    group.use_fake_user = True
    return group


def apply_finish(bp: Any, material: Any, kind: str) -> None:
    """Give a Principled material the normal finish ``kind`` (one of KINDS)."""
    if kind not in KINDS:
        raise ValueError(f"finish {kind!r}; valid: {', '.join(KINDS)}")
    nodes, links = material.node_tree.nodes, material.node_tree.links
    bsdf = nodes["Principled BSDF"]
    offset, strength = Finish(bp).outputs(material)
    coords = nodes.new("ShaderNodeVectorMath")
    links.new(nodes.new("ShaderNodeTexCoord").outputs["Object"], coords.inputs[0])
    links.new(offset, coords.inputs[1])
    where = coords.outputs["Vector"]
    streaks = noise(material, where, 2.0, stretch=(30.0, 30.0, 1.0)).outputs["Fac"]  # vertical run-down streaks
    tone = math_node(material, "MULTIPLY", math_node(material, "SUBTRACT", streaks, 0.5), strength)
    height = None
    if kind == "paint":
        height = math_node(material, "MULTIPLY", noise(material, where, 350.0).outputs["Fac"], math_node(material, "MULTIPLY", strength, 0.25))
        _edge_wear(material, where, strength)
    elif kind == "galvanised":
        spangle = nodes.new("ShaderNodeTexVoronoi")
        spangle.inputs["Scale"].default_value = 70.0
        links.new(where, spangle.inputs["Vector"])
        cell = math_node(material, "SUBTRACT", spangle.outputs["Color"], 0.5)
        _offset_input(material, "Roughness", math_node(material, "MULTIPLY", cell, math_node(material, "MULTIPLY", strength, 0.3)))
        tone = math_node(material, "ADD", tone, math_node(material, "MULTIPLY", cell, 0.4))
    elif kind == "metal":
        scratches = noise(material, where, 60.0, stretch=(40.0, 1.0, 1.0), detail=2.0).outputs["Fac"]
        lines = math_node(material, "GREATER_THAN", scratches, 0.62)
        _offset_input(material, "Roughness", math_node(material, "MULTIPLY", lines, math_node(material, "MULTIPLY", strength, -0.2)))
    else:  # glaze: a slow ripple of the glaze thickness
        height = math_node(material, "MULTIPLY", noise(material, where, 25.0).outputs["Fac"], math_node(material, "MULTIPLY", strength, 0.15))
    _scale_colour(material, math_node(material, "ADD", math_node(material, "MULTIPLY", tone, 0.7), 1.0))
    if height is not None:
        bump = nodes.new("ShaderNodeBump")
        bump.inputs["Distance"].default_value = 0.0004
        links.new(height, bump.inputs["Height"])
        if bsdf.inputs["Normal"].is_linked:
            links.new(bsdf.inputs["Normal"].links[0].from_socket, bump.inputs["Normal"])
        links.new(bump.outputs["Normal"], bsdf.inputs["Normal"])


def _edge_wear(material: Any, where: Any, strength: Any) -> None:
    """Paint worn to bare metal on edges: where the bevelled normal leaves the true one, in patches."""
    nodes, links = material.node_tree.nodes, material.node_tree.links
    bevel, geometry, dot = nodes.new("ShaderNodeBevel"), nodes.new("ShaderNodeNewGeometry"), nodes.new("ShaderNodeVectorMath")
    bevel.samples = 2
    bevel.inputs["Radius"].default_value = 0.004
    dot.operation = "DOT_PRODUCT"
    links.new(bevel.outputs["Normal"], dot.inputs[0])
    links.new(geometry.outputs["Normal"], dot.inputs[1])
    edge = math_node(material, "MULTIPLY", math_node(material, "SUBTRACT", 0.98, dot.outputs["Value"]), 15.0)  # 0 on flat faces
    patches = math_node(material, "GREATER_THAN", noise(material, where, 40.0).outputs["Fac"], 0.5)
    wear = math_node(material, "MINIMUM", math_node(material, "MULTIPLY", math_node(material, "MULTIPLY", edge, patches), strength), 1.0)
    mix = nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    mix.inputs[7].default_value = (0.32, 0.31, 0.30, 1.0)  # bare steel under the paint
    links.new(wear, mix.inputs[0])
    reroute_input(material, "Base Color", mix.inputs[6], mix.outputs[2])


def _scale_colour(material: Any, factor: Any) -> None:
    """Multiply the base colour by the value socket ``factor``."""
    scale = material.node_tree.nodes.new("ShaderNodeVectorMath")
    scale.operation = "SCALE"
    material.node_tree.links.new(factor, scale.inputs["Scale"])
    reroute_input(material, "Base Color", scale.inputs[0], scale.outputs["Vector"])


def _offset_input(material: Any, name: str, delta: Any) -> None:
    """Add the value socket ``delta`` to the BSDF's scalar input ``name``."""
    add = material.node_tree.nodes.new("ShaderNodeMath")
    add.use_clamp = True
    material.node_tree.links.new(delta, add.inputs[1])
    reroute_input(material, name, add.inputs[0], add.outputs[0])

