"""Procedural materials shared by scenarios (Principled BSDF with optional banded bump)."""

from __future__ import annotations

from typing import Any


def principled(
    bp: Any,
    name: str,
    color: tuple[float, float, float],
    metallic: float = 0.0,
    roughness: float = 0.5,
    bump_bands: float | None = None,
    bump_strength: float = 0.6,
) -> Any:
    """A bpy material; ``bump_bands`` adds Z-direction bands (a screw thread look) of that scale."""
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
    return material


def assign(obj: Any, material: Any) -> None:
    """Give a bpy object exactly one material."""
    obj.data.materials.clear()
    obj.data.materials.append(material)
