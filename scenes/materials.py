"""Procedural materials shared by scenarios: Principled BSDF (optional banded bump and normal
finish), noise bump, colour ramps driving the base colour."""

from __future__ import annotations

from typing import Any

from mkdata.scenes.finish import apply_finish


def principled(
    bp: Any,
    name: str,
    color: tuple[float, float, float],
    metallic: float = 0.0,
    roughness: float = 0.5,
    bump_bands: float | None = None,
    bump_strength: float = 0.6,
    finish: str | None = None,
) -> Any:
    """A bpy material; ``bump_bands`` adds Z-direction bands (a screw thread look) of that scale;
    ``finish`` one of ``finish.KINDS``, the normal finish of real equipment (never a defect)."""
    bpy = bp.bpy
    material = bpy.data.materials.new(name)
    material.use_nodes = True
    nodes, links = material.node_tree.nodes, material.node_tree.links
    bsdf = nodes["Principled BSDF"]
    bsdf.inputs["Base Color"].default_value = (*color, 1.0)
    bsdf.inputs["Metallic"].default_value = metallic
    bsdf.inputs["Roughness"].default_value = roughness
    if bump_bands is not None:
        coords = nodes.new("ShaderNodeTexCoord")
        wave = nodes.new("ShaderNodeTexWave")
        wave.bands_direction = "Z"
        wave.inputs["Scale"].default_value = bump_bands
        bump = nodes.new("ShaderNodeBump")
        bump.inputs["Strength"].default_value = bump_strength
        links.new(coords.outputs["Object"], wave.inputs["Vector"])
        links.new(wave.outputs["Fac"], bump.inputs["Height"])
        links.new(bump.outputs["Normal"], bsdf.inputs["Normal"])
    if finish is not None:
        apply_finish(bp, material, finish)
    return material


def assign(obj: Any, material: Any) -> None:
    """Give a bpy object exactly one material."""
    obj.data.materials.clear()
    obj.data.materials.append(material)


def add_noise_bump(material: Any, scale: float, strength: float, distance: float = 0.001) -> None:
    """Give a Principled material a fine noise bump (mill scale, concrete, grass)."""
    nodes, links = material.node_tree.nodes, material.node_tree.links
    noise, bump = nodes.new("ShaderNodeTexNoise"), nodes.new("ShaderNodeBump")
    noise.inputs["Scale"].default_value = scale
    noise.inputs["Detail"].default_value = 8.0
    bump.inputs["Strength"].default_value = strength
    bump.inputs["Distance"].default_value = distance
    links.new(nodes.new("ShaderNodeNewGeometry").outputs["Position"], noise.inputs["Vector"])
    links.new(noise.outputs["Fac"], bump.inputs["Height"])
    links.new(bump.outputs["Normal"], nodes["Principled BSDF"].inputs["Normal"])


def colour_ramp(material: Any, source: Any, stops: tuple[tuple[float, tuple[float, float, float]], ...]) -> Any:
    """A colour-ramp node in ``material`` over the value socket ``source``; returns its colour output."""
    ramp = material.node_tree.nodes.new("ShaderNodeValToRGB")
    material.node_tree.links.new(source, ramp.inputs["Fac"])
    elements = ramp.color_ramp.elements
    while len(elements) < len(stops):
        elements.new(0.0)
    for element, (position, colour) in zip(elements, stops):
        element.position, element.color = position, (*colour, 1.0)
    return ramp.outputs["Color"]


def set_base_colour(material: Any, colour: Any) -> None:
    """Drive a Principled material's base colour by the socket ``colour``. A colour already driven
    (by a finish's tone) is an error: linking over it would silently drop that chain, so a
    coloured material takes its finish afterwards (``apply_finish``)."""
    target = material.node_tree.nodes["Principled BSDF"].inputs["Base Color"]
    if target.is_linked:
        raise ValueError(f"material {material.name!r}: its base colour is already driven; colour it before its finish")
    material.node_tree.links.new(colour, target)


def mottled(material: Any, scale: float, stops: tuple[tuple[float, tuple[float, float, float]], ...]) -> None:
    """Base colour from a ramp over 3-D noise (oxide patches on weld metal, a grass field)."""
    nodes, links = material.node_tree.nodes, material.node_tree.links
    noise = nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = scale
    noise.inputs["Detail"].default_value = 4.0
    links.new(nodes.new("ShaderNodeNewGeometry").outputs["Position"], noise.inputs["Vector"])
    set_base_colour(material, colour_ramp(material, noise.outputs["Fac"], stops))
