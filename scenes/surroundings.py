"""Day surroundings: a ground with a procedural material family and a pool of 3-D background props
(poles, fences, buildings, trees, rails, catenary masts, PV rows, turbines, yard items, steel
members), built once and re-placed per image behind the inspected object.

Ground materials follow Infinigen's recipe in small: several noise / Voronoi layers at scales
from metres to millimetres drive colour ramps and chained bumps. The relief is true displacement
(Cycles moves the ground's vertices): heaps, ruts and tussocks of up to ``RELIEF_M`` per family
over a 10 cm grid of the near field (±``NEAR_FIELD_M``); beyond it the ground is four flat quads,
since a grid over hundreds of metres fine enough for a close-up would cost too much. The relief
fades to flat at the near field's edge, so the two meet, and rises from the ground's height,
so object feet sink into it rather than float.
Props are background only: their names start with ``bg_``, never a scenario part's name.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mkdata.scenes import geometry
from mkdata.scenes.materials import add_noise_bump, colour_ramp, principled, set_base_colour
from mkdata.scenes.nodes import math_node, noise

GROUND_FAMILIES = ("grass", "gravel", "soil", "concrete")
RELIEF_M = {"grass": 0.04, "gravel": 0.06, "soil": 0.08, "concrete": 0.0}  # peak height of the displaced relief
NEAR_FIELD_M, NEAR_FIELD_STEPS = 15.0, 300  # the displaced grid: ±15 m in 10 cm steps
SUN_CLEARANCE_DEG = 6.0  # a prop seen from the target stays this far below the sun (no shadow on it)
SUN_SECTOR_DEG = 40.0  # ... or this far from the sun's azimuth


def _position(material: Any) -> Any:
    return material.node_tree.nodes.new("ShaderNodeNewGeometry").outputs["Position"]


def _noise(material: Any, scale: float, detail: float = 6.0, vector: Any = None) -> Any:
    node = material.node_tree.nodes.new("ShaderNodeTexNoise")
    node.inputs["Scale"].default_value = scale
    node.inputs["Detail"].default_value = detail
    material.node_tree.links.new(vector if vector is not None else _position(material), node.inputs["Vector"])
    return node.outputs["Fac"]


def _voronoi(material: Any, scale: float, output: str = "Distance", feature: str = "F1") -> Any:
    node = material.node_tree.nodes.new("ShaderNodeTexVoronoi")
    node.feature = feature
    node.inputs["Scale"].default_value = scale
    material.node_tree.links.new(_position(material), node.inputs["Vector"])
    return node.outputs[output]


def _multiply(material: Any, a: Any, b: Any) -> Any:
    mix = material.node_tree.nodes.new("ShaderNodeMix")
    mix.data_type, mix.blend_type = "RGBA", "MULTIPLY"
    mix.inputs["Factor"].default_value = 1.0
    material.node_tree.links.new(a, mix.inputs["A"])
    material.node_tree.links.new(b, mix.inputs["B"])
    return mix.outputs["Result"]


def _bumps(material: Any, layers: tuple[tuple[Any, float, float], ...]) -> None:
    """Chain one bump node per (height socket, strength, distance in m) into the BSDF's normal."""
    nodes, links = material.node_tree.nodes, material.node_tree.links
    normal = None
    for height, strength, distance in layers:
        bump = nodes.new("ShaderNodeBump")
        bump.inputs["Strength"].default_value = strength
        bump.inputs["Distance"].default_value = distance
        links.new(height, bump.inputs["Height"])
        if normal is not None:
            links.new(normal, bump.inputs["Normal"])
        normal = bump.outputs["Normal"]
    links.new(normal, nodes["Principled BSDF"].inputs["Normal"])


def _relief(material: Any, peak: float, near: float) -> Any:
    """Displace the ground by heaps of 0.3–1 m across and up to ``peak`` m high, fading to flat
    between 60 % of ``near`` and ``near`` from the centre; returns the Mapping node that shifts them."""
    nodes, links = material.node_tree.nodes, material.node_tree.links
    position = _position(material)
    shift = nodes.new("ShaderNodeMapping")
    links.new(position, shift.inputs["Vector"])
    heaps = nodes.new("ShaderNodeMapRange")
    heaps.inputs["From Min"].default_value, heaps.inputs["From Max"].default_value = 0.35, 0.65
    links.new(noise(material, shift.outputs["Vector"], 1.5, detail=3.0).outputs["Fac"], heaps.inputs["Value"])
    axes = nodes.new("ShaderNodeSeparateXYZ")
    links.new(position, axes.inputs[0])
    edge = math_node(material, "MAXIMUM", math_node(material, "ABSOLUTE", axes.outputs["X"]), math_node(material, "ABSOLUTE", axes.outputs["Y"]))
    fade = nodes.new("ShaderNodeMapRange")
    fade.interpolation_type = "SMOOTHSTEP"
    fade.inputs["From Min"].default_value, fade.inputs["From Max"].default_value = 0.6 * near, near
    fade.inputs["To Min"].default_value, fade.inputs["To Max"].default_value = 1.0, 0.0
    links.new(edge, fade.inputs["Value"])
    displacement = nodes.new("ShaderNodeDisplacement")
    displacement.inputs["Midlevel"].default_value, displacement.inputs["Scale"].default_value = 0.0, 1.0
    links.new(math_node(material, "MULTIPLY", math_node(material, "MULTIPLY", heaps.outputs["Result"], peak), fade.outputs["Result"]),
              displacement.inputs["Height"])
    links.new(displacement.outputs["Displacement"], nodes["Material Output"].inputs["Displacement"])
    material.displacement_method = "BOTH"
    return shift


def ground_mesh(size: float, near: float, steps: int, z: float) -> tuple[list[tuple[float, float, float]], list[tuple[int, ...]]]:
    """A flat square of half-size ``size`` at height ``z``: ``steps``² quads over ±``near`` (what the
    relief displaces), and four coarse quads from there to the edge."""
    near = min(near, size)
    ticks = np.linspace(-near, near, steps + 1)
    verts = [(float(x), float(y), z) for y in ticks for x in ticks]
    row = steps + 1
    faces: list[tuple[int, ...]] = [(j * row + i, j * row + i + 1, (j + 1) * row + i + 1, (j + 1) * row + i) for j in range(steps) for i in range(steps)]
    if near < size:
        outer = len(verts)
        verts += [(-size, -size, z), (size, -size, z), (size, size, z), (-size, size, z)]
        inner = (0, steps, row * row - 1, row * row - row)  # the grid's corners, in the same order
        faces += [(outer + k, outer + (k + 1) % 4, inner[(k + 1) % 4], inner[k]) for k in range(4)]
    return verts, faces


def ground_material(bp: Any, family: str) -> Any:
    """A ground material of ``family`` (see GROUND_FAMILIES), detailed from metres to millimetres."""
    if family == "grass":
        material = principled(bp, "bg_ground_grass", (0.1, 0.14, 0.05), roughness=0.95)
        patches = colour_ramp(material, _noise(material, 0.4, 4.0), ((0.35, (0.05, 0.08, 0.025)), (0.5, (0.1, 0.13, 0.04)), (0.7, (0.2, 0.18, 0.08))))
        blades = _voronoi(material, 220.0)
        set_base_colour(material, _multiply(material, patches, colour_ramp(material, blades, ((0.0, (1.0, 1.0, 1.0)), (0.9, (0.55, 0.6, 0.5))))))
        _bumps(material, ((blades, 0.6, 0.002), (_noise(material, 12.0), 0.4, 0.01)))
    elif family == "gravel":
        material = principled(bp, "bg_ground_gravel", (0.3, 0.29, 0.27), roughness=0.85)
        stones = _voronoi(material, 30.0)
        tint = colour_ramp(material, _voronoi(material, 30.0, "Color"), ((0.2, (0.17, 0.16, 0.15)), (0.5, (0.33, 0.31, 0.28)), (0.8, (0.45, 0.41, 0.35))))
        dirt = colour_ramp(material, _noise(material, 0.8, 4.0), ((0.4, (1.0, 1.0, 1.0)), (0.7, (0.6, 0.52, 0.42))))
        set_base_colour(material, _multiply(material, tint, dirt))
        _bumps(material, ((stones, -1.0, 0.02), (_noise(material, 300.0, 2.0), 0.3, 0.001)))
    elif family == "soil":
        material = principled(bp, "bg_ground_soil", (0.15, 0.1, 0.06), roughness=0.95)
        moisture = _noise(material, 0.6, 5.0)
        set_base_colour(material, colour_ramp(material, moisture, ((0.35, (0.08, 0.05, 0.03)), (0.55, (0.17, 0.11, 0.06)), (0.75, (0.26, 0.19, 0.11)))))
        clods = _voronoi(material, 45.0, "Distance", "SMOOTH_F1")
        _bumps(material, ((clods, -0.6, 0.01), (_noise(material, 150.0, 3.0), 0.4, 0.002), (_noise(material, 3.0), 0.5, 0.05)))
    elif family == "concrete":
        material = principled(bp, "bg_ground_concrete", (0.32, 0.31, 0.29), roughness=0.9)
        slabs = material.node_tree.nodes.new("ShaderNodeTexBrick")  # expansion joints every few metres
        slabs.inputs["Scale"].default_value = 0.25
        slabs.inputs["Mortar Size"].default_value = 0.004
        slabs.offset = 0.0
        material.node_tree.links.new(_position(material), slabs.inputs["Vector"])
        stains = colour_ramp(material, _noise(material, 0.7, 6.0), ((0.3, (0.2, 0.2, 0.19)), (0.6, (0.34, 0.33, 0.31)), (0.8, (0.42, 0.41, 0.38))))
        joints = colour_ramp(material, slabs.outputs["Fac"], ((0.0, (1.0, 1.0, 1.0)), (1.0, (0.35, 0.35, 0.35))))
        set_base_colour(material, _multiply(material, stains, joints))
        _bumps(material, ((slabs.outputs["Fac"], -0.8, 0.01), (_noise(material, 250.0, 4.0), 0.35, 0.001)))
    else:
        raise ValueError(f"ground family {family!r} is not one of {GROUND_FAMILIES}")
    return material


# ---------------------------------------------------------------- props: meshes in metres, origin on the ground


def _box(centre: tuple[float, float, float], size: tuple[float, float, float]) -> tuple[list, list]:
    cx, cy, cz = centre
    sx, sy, sz = (s / 2 for s in size)
    verts = [(cx + a * sx, cy + b * sy, cz + c * sz) for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)]
    return verts, [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]


def _post(x: float, y: float, radius: float, height: float, sides: int = 8, z0: float = 0.0) -> tuple[list, list]:
    return geometry.tube(np.array([[x, y, z0], [x, y, z0 + height]]), radius, sides)


def _ibeam(a: np.ndarray, b: np.ndarray, depth: float, up: np.ndarray) -> tuple[list, list]:
    """An H / I section from ``a`` to ``b``: two flanges and a web (boxes along the member)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    along = (b - a) / np.linalg.norm(b - a)
    side = np.cross(along, up)
    side /= np.linalg.norm(side)
    up = np.cross(side, along)
    length, t = float(np.linalg.norm(b - a)), depth * 0.08
    parts = []
    for offset, extent in (((depth - t) / 2 * up, (depth, t)), (-(depth - t) / 2 * up, (depth, t)), (0 * up, (t, depth))):
        centre = (a + b) / 2 + offset
        half = (length / 2 * along, extent[0] / 2 * side, extent[1] / 2 * up)
        verts = [tuple(centre + i * half[0] + j * half[1] + k * half[2]) for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)]
        parts.append((verts, [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]))
    return geometry.merge(*parts)


def _blob(rng: np.random.Generator, centre: tuple[float, float, float], radius: tuple[float, float, float], rough: float) -> tuple[list, list]:
    """A lumpy ellipsoid (tree crown, bush): a UV sphere with random low-frequency bumps."""
    rings, segments = 8, 12
    phases = rng.uniform(0, 2 * math.pi, 4)
    verts = []
    for i in range(1, rings):
        theta = math.pi * i / rings
        for j in range(segments):
            phi = 2 * math.pi * j / segments
            wobble = 1 + rough * (math.sin(3 * phi + phases[0]) * math.sin(2 * theta + phases[1]) + 0.5 * math.sin(5 * phi + phases[2] + 3 * theta))
            verts.append((centre[0] + radius[0] * wobble * math.sin(theta) * math.cos(phi),
                          centre[1] + radius[1] * wobble * math.sin(theta) * math.sin(phi),
                          centre[2] + radius[2] * wobble * math.cos(theta)))
    verts += [(centre[0], centre[1], centre[2] + radius[2]), (centre[0], centre[1], centre[2] - radius[2])]
    top, bottom = len(verts) - 2, len(verts) - 1
    faces = [((i * segments + j), (i * segments + (j + 1) % segments), ((i + 1) * segments + (j + 1) % segments), ((i + 1) * segments + j))
             for i in range(rings - 2) for j in range(segments)]
    faces += [(top, (j + 1) % segments, j) for j in range(segments)]
    faces += [(bottom, (rings - 2) * segments + j, (rings - 2) * segments + (j + 1) % segments) for j in range(segments)]
    return verts, faces


def pole(rng: np.random.Generator) -> tuple[list, list]:
    """A utility pole with a cross-arm and insulators."""
    height = rng.uniform(7.0, 10.0)
    parts = [_post(0, 0, 0.13, height, 10), _box((0, 0, height - 0.5), (1.8, 0.1, 0.1))]
    parts += [_post(x, 0, 0.04, 0.2, 6, height - 0.45) for x in (-0.8, 0.0, 0.8)]
    return geometry.merge(*parts)


def fence(rng: np.random.Generator) -> tuple[list, list]:
    """A welded-mesh fence, 8 m long and 2 m high: posts, top and bottom rails, a wire grid."""
    length, height = 8.0, rng.uniform(1.6, 2.2)
    parts = [_post(x, 0, 0.03, height, 6) for x in np.linspace(-length / 2, length / 2, 4)]
    parts += [geometry.tube(np.array([[-length / 2, 0, z], [length / 2, 0, z]]), 0.02, 6) for z in (0.1, height)]
    parts += [geometry.tube(np.array([[x, 0, 0.05], [x, 0, height]]), 0.003, 4) for x in np.arange(-length / 2, length / 2, 0.2)]
    parts += [geometry.tube(np.array([[-length / 2, 0, z], [length / 2, 0, z]]), 0.003, 4) for z in np.arange(0.3, height, 0.2)]
    return geometry.merge(*parts)


def building(rng: np.random.Generator) -> tuple[list, list]:
    """A flat-roofed block with a parapet."""
    w, d, h = rng.uniform(8, 16), rng.uniform(6, 10), rng.uniform(4, 12)
    return geometry.merge(_box((0, 0, h / 2), (w, d, h)), _box((0, 0, h + 0.3), (w + 0.2, d + 0.2, 0.6)))


def tree(rng: np.random.Generator) -> tuple[list, list]:
    """A broadleaf tree: trunk and a lumpy crown (or two)."""
    height = rng.uniform(5.0, 10.0)
    crown = height * rng.uniform(0.3, 0.4)
    parts = [_post(0, 0, height * 0.025, height - crown, 8), _blob(rng, (0, 0, height - crown), (crown, crown, crown * 1.1), 0.15)]
    if rng.random() < 0.5:
        parts.append(_blob(rng, (crown * 0.6, 0.2, height - 1.6 * crown), (0.7 * crown,) * 3, 0.2))
    return geometry.merge(*parts)


def bush(rng: np.random.Generator) -> tuple[list, list]:
    size = rng.uniform(0.5, 1.2)
    return _blob(rng, (0, 0, 0.6 * size), (size * 1.4, size, size * 0.8), 0.2)


def rail(rng: np.random.Generator) -> tuple[list, list]:
    """A 24 m track panel along X: two rails on sleepers."""
    length = 24.0
    parts = [_box((0, y, 0.23), (length, 0.07, 0.15)) for y in (-0.75, 0.75)]
    parts += [_box((x, 0, 0.08), (0.26, 2.6, 0.16)) for x in np.arange(-length / 2, length / 2, 0.65)]
    return geometry.merge(*parts)


def mast(rng: np.random.Generator) -> tuple[list, list]:
    """A catenary mast (H-section) with a cantilever holding a contact-line pair."""
    height = rng.uniform(7.5, 8.5)
    parts = [_ibeam(np.zeros(3), np.array([0, 0, height]), 0.3, np.array([1.0, 0.0, 0.0])),
             geometry.tube(np.array([[0, 0, height - 1.0], [0, -2.6, height - 1.3]]), 0.03, 6),
             geometry.tube(np.array([[0, 0, height - 2.2], [0, -2.6, height - 1.9]]), 0.03, 6)]
    parts += [geometry.tube(np.array([[-30, -2.6, z], [30, -2.6, z]]), 0.008, 6) for z in (height - 2.0, height - 1.35)]
    return geometry.merge(*parts)


def wires(rng: np.random.Generator) -> tuple[list, list]:
    """A neighbouring track's contact line: messenger and contact wire, 60 m along X, with droppers."""
    z = rng.uniform(5.2, 5.8)
    parts = [geometry.tube(np.array([[-30, 0, z + dz], [30, 0, z + dz]]), 0.007, 6) for dz in (0.0, 0.9)]
    parts += [geometry.tube(np.array([[x, 0, z], [x, 0, z + 0.9]]), 0.004, 4) for x in np.arange(-30, 30, 6.0)]
    return geometry.merge(*parts)


def pv_row(rng: np.random.Generator) -> tuple[list, list]:
    """A row of PV modules, 12 m long, tilted 30° on posts."""
    length, depth, tilt = 12.0, 2.0, math.radians(30)
    base = 0.6
    corners = [(x, y * math.cos(tilt), base + depth / 2 + y * math.sin(tilt)) for x in (-length / 2, length / 2) for y in (-depth / 2, depth / 2)]
    slab = (corners + [(c[0], c[1] + 0.04 * math.sin(tilt), c[2] - 0.04 * math.cos(tilt)) for c in corners],
            [(0, 2, 3, 1), (4, 5, 7, 6), (0, 1, 5, 4), (2, 6, 7, 3), (0, 4, 6, 2), (1, 3, 7, 5)])
    posts = [_post(x, y, 0.04, base + depth / 2 + y * math.tan(tilt) * 0.8, 6) for x in np.linspace(-5.5, 5.5, 4) for y in (-0.5, 0.5)]
    return geometry.merge(slab, *posts)


def turbine(rng: np.random.Generator) -> tuple[list, list]:
    """A distant wind turbine: tapered tower, nacelle, three blades at a random rotor angle."""
    hub = rng.uniform(70.0, 100.0)
    tower = geometry.tube(np.array([[0, 0, 0], [0, 0, hub]]), 2.0, 12)
    verts = [(x * (1 - 0.5 * z / hub), y * (1 - 0.5 * z / hub), z) for x, y, z in tower[0]]
    parts = [(verts, tower[1]), _box((0, 1.5, hub), (3.5, 10, 3.5))]
    spin = rng.uniform(0, 2 * math.pi)
    for k in range(3):
        angle = spin + 2 * math.pi * k / 3
        tip = np.array([45 * math.cos(angle), -4.0, hub + 45 * math.sin(angle)])
        parts.append(geometry.tube(np.array([[0, -4.0, hub], tip]), 1.1, 6))
    return geometry.merge(*parts)


def container(rng: np.random.Generator) -> tuple[list, list]:
    """A 20 ft shipping container (or two stacked)."""
    parts = [_box((0, 0, 1.3), (6.06, 2.44, 2.59))]
    if rng.random() < 0.4:
        parts.append(_box((0.3, 0, 3.9), (6.06, 2.44, 2.59)))
    return geometry.merge(*parts)


def drums(rng: np.random.Generator) -> tuple[list, list]:
    """A pallet with steel drums and gas bottles."""
    parts = [_box((0, 0, 0.07), (1.2, 1.2, 0.14))]
    parts += [_post(x, y, 0.29, 0.88, 12, 0.14) for x in (-0.3, 0.3) for y in (-0.3, 0.3) if rng.random() < 0.85]
    parts += [_post(0.9 + 0.25 * k, 0.0, 0.11, 1.5, 10) for k in range(int(rng.integers(0, 4)))]
    return geometry.merge(*parts)


def steel_stack(rng: np.random.Generator) -> tuple[list, list]:
    """Steel members stacked on the ground on timber bearers."""
    length = rng.uniform(4.0, 9.0)
    parts = [_box((x, 0, 0.05), (0.15, 1.4, 0.1)) for x in (-length / 3, length / 3)]
    for layer in range(int(rng.integers(1, 4))):
        for y in np.linspace(-0.45, 0.45, 3):
            z = 0.1 + 0.2 * layer + 0.1
            parts.append(_ibeam(np.array([-length / 2, y, z]), np.array([length / 2, y, z]), 0.2, np.array([0.0, 0.0, 1.0])))
    return geometry.merge(*parts)


def steel_frame(rng: np.random.Generator) -> tuple[list, list]:
    """A portal frame of H-section columns and a beam (a steel structure under construction)."""
    span, height = rng.uniform(4.0, 7.0), rng.uniform(3.5, 6.0)
    parts = [_ibeam(np.array([x, 0, 0]), np.array([x, 0, height]), 0.3, np.array([1.0, 0.0, 0.0])) for x in (-span / 2, span / 2)]
    parts.append(_ibeam(np.array([-span / 2, 0, height - 0.2]), np.array([span / 2, 0, height - 0.2]), 0.4, np.array([0.0, 0.0, 1.0])))
    parts.append(_ibeam(np.array([-span / 2, 0, 0.8]), np.array([span / 2, 0, 0.8 + 0.6 * height]), 0.15, np.array([0.0, 0.0, 1.0])))  # a diagonal brace
    return geometry.merge(*parts)


@dataclass(frozen=True)
class PropKind:
    """How to build and place one kind of prop."""

    mesh: Callable[[np.random.Generator], tuple[list, list]]
    material: str  # key of PROP_MATERIALS
    pool: int  # instances built (most that one image shows)
    aligned: bool = False  # along the scene's X axis (tracks, lines) instead of a random yaw
    faces_target: bool = False  # long side across the line of sight (fences, rows)
    near: float = 0.0  # never closer to the target than this (m): big things stand back


PROP_KINDS: dict[str, PropKind] = {
    "pole": PropKind(pole, "wood", 3),
    "fence": PropKind(fence, "galvanised", 3, faces_target=True),
    "building": PropKind(building, "facade", 2, faces_target=True, near=12.0),
    "tree": PropKind(tree, "foliage", 4, near=5.0),
    "bush": PropKind(bush, "foliage", 4),
    "rail": PropKind(rail, "rail_steel", 2, aligned=True),
    "mast": PropKind(mast, "galvanised", 3, aligned=True),
    "wires": PropKind(wires, "copper", 2, aligned=True),
    "pv_row": PropKind(pv_row, "pv_glass", 4, faces_target=True),
    "turbine": PropKind(turbine, "white_paint", 3, near=60.0),
    "container": PropKind(container, "container_paint", 2, faces_target=True, near=4.0),
    "drums": PropKind(drums, "drum_paint", 3),
    "steel_stack": PropKind(steel_stack, "primer", 2),
    "steel_frame": PropKind(steel_frame, "primer", 2, faces_target=True),
}


def prop_materials(bp: Any) -> dict[str, Any]:
    """The props' materials (built once; facades get windows, foliage and wood a noise bump)."""
    made = {
        "wood": principled(bp, "bg_wood", (0.18, 0.13, 0.09), roughness=0.85),
        "galvanised": principled(bp, "bg_galvanised", (0.45, 0.46, 0.46), metallic=0.8, roughness=0.45),
        "facade": principled(bp, "bg_facade", (0.55, 0.52, 0.47), roughness=0.8),
        "foliage": principled(bp, "bg_foliage", (0.05, 0.1, 0.03), roughness=0.8),
        "rail_steel": principled(bp, "bg_rail_steel", (0.2, 0.15, 0.12), metallic=0.6, roughness=0.6),
        "copper": principled(bp, "bg_copper", (0.3, 0.16, 0.09), metallic=0.7, roughness=0.45),
        "pv_glass": principled(bp, "bg_pv_glass", (0.03, 0.06, 0.16), roughness=0.15),
        "white_paint": principled(bp, "bg_white_paint", (0.8, 0.8, 0.8), roughness=0.4),
        "container_paint": principled(bp, "bg_container", (0.45, 0.12, 0.06), metallic=0.3, roughness=0.6),
        "drum_paint": principled(bp, "bg_drum", (0.1, 0.2, 0.45), metallic=0.3, roughness=0.5),
        "primer": principled(bp, "bg_primer", (0.35, 0.12, 0.07), roughness=0.7),
    }
    windows = made["facade"].node_tree.nodes.new("ShaderNodeTexBrick")  # window grid: bricks = windows
    windows.offset, windows.squash = 0.0, 1.0
    windows.inputs["Scale"].default_value = 0.35
    windows.inputs["Mortar Size"].default_value = 0.45  # a 2.9 m grid of 1.6 m windows
    windows.inputs["Brick Width"].default_value = 1.0
    windows.inputs["Row Height"].default_value = 1.0
    made["facade"].node_tree.links.new(_position(made["facade"]), windows.inputs["Vector"])
    set_base_colour(made["facade"], colour_ramp(made["facade"], windows.outputs["Fac"], ((0.0, (0.05, 0.07, 0.09)), (0.9, (0.55, 0.52, 0.47)))))
    leaves = _voronoi(made["foliage"], 9.0)
    set_base_colour(made["foliage"], colour_ramp(made["foliage"], _noise(made["foliage"], 1.5), ((0.3, (0.03, 0.07, 0.02)), (0.7, (0.1, 0.14, 0.04)))))
    _bumps(made["foliage"], ((leaves, 1.0, 0.05),))
    add_noise_bump(made["wood"], 30.0, 0.4)
    corrugation = made["container_paint"].node_tree.nodes.new("ShaderNodeTexWave")
    corrugation.inputs["Scale"].default_value = 4.0
    made["container_paint"].node_tree.links.new(_position(made["container_paint"]), corrugation.inputs["Vector"])
    _bumps(made["container_paint"], ((corrugation.outputs["Fac"], 0.5, 0.02),))
    return made


def _yaw_corners(half: tuple[float, float, float, float], yaw: float) -> np.ndarray:
    """The four footprint corners (x0, x1, y0, y1 in local metres) turned by ``yaw``, n×2."""
    x0, x1, y0, y1 = half
    corners = np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
    c, s = math.cos(yaw), math.sin(yaw)
    return corners @ np.array([[c, s], [-s, c]])


@dataclass
class Prop:
    """One built prop instance: its object, footprint (local x0, x1, y0, y1) and top height."""

    obj: Any
    kind: str
    footprint: tuple[float, float, float, float]
    top: float


@dataclass(frozen=True)
class Placement:
    """Where props may go for one image: around ``target`` at azimuths ``centre_deg`` ± ``spread_deg``,
    ``distance`` metres away, their nearest point ``behind`` metres behind the target along ``sight``
    (the camera's horizontal viewing direction; None: only ``distance`` counts)."""

    target: np.ndarray
    centre_deg: float
    spread_deg: float
    distance: tuple[float, float]
    sight: np.ndarray | None
    behind: float


class Surroundings:
    """The ground and the background props of a day scene, built once, re-placed per image."""

    def __init__(self, bp: Any, kinds: tuple[str, ...], ground_z: float, extent: float, structure: tuple[float, float]) -> None:
        unknown = set(kinds) - set(PROP_KINDS)
        if unknown:
            raise ValueError(f"unknown prop kinds {sorted(unknown)}; known: {sorted(PROP_KINDS)}")
        self.bp, self.kinds, self.ground_z, self.extent, self.structure = bp, kinds, ground_z, extent, structure
        self.props: list[Prop] = []

    def build(self) -> None:
        bp = self.bp
        self.grounds = {family: ground_material(bp, family) for family in GROUND_FAMILIES}
        self.relief_shifts = [_relief(material, RELIEF_M[family], NEAR_FIELD_M) for family, material in self.grounds.items() if RELIEF_M[family] > 0]
        verts, faces = ground_mesh(2.0 * self.extent, NEAR_FIELD_M, NEAR_FIELD_STEPS, self.ground_z)
        self.ground = geometry.mesh_object(bp, "bg_ground", verts, faces, self.grounds["grass"], smooth=True)
        if self.ground.data.polygons[0].normal[2] < 0:
            self.ground.data.flip_normals()
        materials = prop_materials(bp)
        shapes = np.random.default_rng(2024)  # the props' shapes are fixed; their layout is per image
        for kind in self.kinds:
            spec = PROP_KINDS[kind]
            for k in range(spec.pool):
                verts, faces = spec.mesh(shapes)
                obj = geometry.mesh_object(bp, f"bg_{kind}_{k}", verts, faces, materials[spec.material], smooth=False)
                points = np.asarray(verts)
                footprint = (float(points[:, 0].min()), float(points[:, 0].max()), float(points[:, 1].min()), float(points[:, 1].max()))
                obj.hide_render = True
                self.props.append(Prop(obj, kind, footprint, float(points[:, 2].max())))

    def set_ground(self, family: str, relief_shift: tuple[float, float] = (0.0, 0.0)) -> None:
        """Give the ground ``family``'s material, its relief moved by ``relief_shift`` (m, x and y)."""
        self.ground.data.materials[0] = self.grounds[family]
        for shift in self.relief_shifts:
            shift.inputs["Location"].default_value = (*relief_shift, 0.0)

    def place(self, rng: np.random.Generator, counts: dict[str, int], where: Placement, sun: tuple[float, float]) -> int:
        """Show ``counts[kind]`` props of each kind at random spots allowed by ``where``, none in
        the scene's structure or able to shade the target from ``sun`` (elevation, azimuth in
        degrees); hide the rest. Returns how many are shown."""
        shown = 0
        for kind in self.kinds:
            pool = [prop for prop in self.props if prop.kind == kind]
            for index, prop in enumerate(pool):
                prop.obj.hide_render = True
                if index < counts.get(kind, 0) and self._put(rng, prop, where, sun):
                    prop.obj.hide_render = False
                    shown += 1
        return shown

    def _put(self, rng: np.random.Generator, prop: Prop, where: Placement, sun: tuple[float, float], tries: int = 12) -> bool:
        spec = PROP_KINDS[prop.kind]
        for _ in range(tries):
            azimuth = math.radians(where.centre_deg + rng.uniform(-where.spread_deg, where.spread_deg))
            near, far = max(where.distance[0], spec.near), max(where.distance[1], spec.near * 1.5)
            distance = float(np.exp(rng.uniform(math.log(near), math.log(far))))  # as many near as far, per octave
            if spec.aligned:
                yaw = math.pi * int(rng.integers(2)) + math.radians(rng.uniform(-3, 3))
            elif spec.faces_target:
                yaw = azimuth + math.pi / 2 + math.radians(rng.uniform(-20, 20))
            else:
                yaw = rng.uniform(0, 2 * math.pi)
            centre = where.target[:2] + distance * np.array([math.cos(azimuth), math.sin(azimuth)])
            corners = centre + _yaw_corners(prop.footprint, yaw)
            if self._allowed(corners, prop.top, where, sun):
                prop.obj.location = (float(centre[0]), float(centre[1]), self.ground_z)
                prop.obj.rotation_euler = (0.0, 0.0, yaw)
                return True
        return False

    def _allowed(self, corners: np.ndarray, top: float, where: Placement, sun: tuple[float, float]) -> bool:
        """Outside the structure's box, behind the target, and below the sun or out of its sector."""
        half_x, half_y = self.structure
        lo, hi = corners.min(axis=0), corners.max(axis=0)
        if lo[0] < half_x and hi[0] > -half_x and lo[1] < half_y and hi[1] > -half_y:
            return False
        offsets = corners - where.target[:2]
        if where.sight is not None and (offsets @ where.sight).min() < where.behind:
            return False
        nearest = float(np.linalg.norm(offsets, axis=1).min())
        rise = self.ground_z + top - float(where.target[2])
        if math.degrees(math.atan2(rise, nearest)) < sun[0] - SUN_CLEARANCE_DEG:
            return True
        points = np.vstack([offsets, offsets.mean(axis=0)])  # corners and centre
        bearings = np.degrees(np.arctan2(points[:, 1], points[:, 0]))
        return bool(np.all(np.abs((bearings - sun[1] + 180.0) % 360.0 - 180.0) > SUN_SECTOR_DEG))
