"""photovoltaic_module: a framed 60-cell polycrystalline PV module on a ground-mounted rack, tilted
towards the sun, seen by day. Cells are blue with silver busbars and fingers, set on a white
backsheet under a glossy (glass) coat, in an aluminium frame.

Surface defects on one cell: ``cell_crack`` (a thin pale crack line), ``hot_spot`` (a brown-yellow
burnt discolouration) and ``snail_trail`` (dark-brown branching lines). Background and surface
are fixed (MIAD gives this scenario only UV).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mkdata.scenes import geometry
from mkdata.scenes.base import CameraShell, DefectChange, DefectTarget, Scenario, ScenarioSpec, View
from mkdata.scenes.day import DayEnvironment
from mkdata.scenes.decals import Decal, blob_shape, crack_shape, place_variant
from mkdata.scenes.materials import colour_ramp, principled, set_base_colour

# Geometry (metres), in the module's frame: u across (world X), v up the slope, w out of the face.
COLUMNS, ROWS = 6, 10
CELL, GAP, BORDER = 0.156, 0.005, 0.018
WIDTH, LENGTH = COLUMNS * CELL + (COLUMNS - 1) * GAP + 2 * BORDER, ROWS * CELL + (ROWS - 1) * GAP + 2 * BORDER
TILT = math.radians(30.0)
CENTRE = np.array([0.0, 0.0, 1.05])
U_AXIS = np.array([1.0, 0.0, 0.0])
V_AXIS = np.array([0.0, math.cos(TILT), math.sin(TILT)])
W_AXIS = np.cross(U_AXIS, V_AXIS)  # faces -Y and up: the camera looks from azimuth ≈ -90°
BUSBARS = 3
UNTAPERED = {"taper": 0.0, "wiggle": 0.3, "segments": 16}  # cell cracks and trails stay wide along their length


def module_point(u: float, v: float, w: float) -> tuple[float, float, float]:
    """World coordinates of a point given in the module's frame."""
    return tuple(float(c) for c in CENTRE + u * U_AXIS + v * V_AXIS + w * W_AXIS)


def module_box(centre: tuple[float, float, float], size: tuple[float, float, float]) -> tuple[list, list]:
    """Vertices/faces of a box aligned with the module's frame (frame bars, rails)."""
    corners = [module_point(centre[0] + su * size[0] / 2, centre[1] + sv * size[1] / 2, centre[2] + sw * size[2] / 2)
               for su in (-1, 1) for sv in (-1, 1) for sw in (-1, 1)]
    faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    return corners, faces


def cell_centres() -> list[tuple[int, int, float, float]]:
    """(column, row, u, v) of every cell."""
    pitch = CELL + GAP
    return [(c, r, (c - (COLUMNS - 1) / 2) * pitch, (r - (ROWS - 1) / 2) * pitch) for r in range(ROWS) for c in range(COLUMNS)]


def stripes(material: Any, coordinate: Any, count: int, half_width: float) -> Any:
    """A 0/1 socket that is 1 on ``count`` evenly spaced lines across a 0..1 ``coordinate``."""
    nodes, links = material.node_tree.nodes, material.node_tree.links
    scaled, fraction, centred, absolute, inside = (nodes.new("ShaderNodeMath") for _ in range(5))
    scaled.operation, fraction.operation, centred.operation = "MULTIPLY", "FRACT", "SUBTRACT"
    absolute.operation, inside.operation = "ABSOLUTE", "LESS_THAN"
    scaled.inputs[1].default_value, centred.inputs[1].default_value, inside.inputs[1].default_value = count, 0.5, half_width
    links.new(coordinate, scaled.inputs[0])
    for source, target in ((scaled, fraction), (fraction, centred), (centred, absolute), (absolute, inside)):
        links.new(source.outputs["Value"], target.inputs[0])
    return inside.outputs["Value"]


def cell_material(bp: Any) -> Any:
    """Polycrystalline silicon: blue crystal grains, silver busbars and fingers, glass coat."""
    material = principled(bp, "pv_cell", (0.03, 0.07, 0.2), roughness=0.35)
    nodes, links = material.node_tree.nodes, material.node_tree.links
    grains = nodes.new("ShaderNodeTexVoronoi")
    grains.inputs["Scale"].default_value = 50.0
    links.new(nodes.new("ShaderNodeNewGeometry").outputs["Position"], grains.inputs["Vector"])
    grain_colour = colour_ramp(material, grains.outputs["Distance"], ((0.0, (0.02, 0.05, 0.17)), (0.8, (0.03, 0.065, 0.2))))
    generated = nodes.new("ShaderNodeSeparateXYZ")
    links.new(nodes.new("ShaderNodeTexCoord").outputs["Generated"], generated.inputs["Vector"])
    busbar = stripes(material, generated.outputs["X"], BUSBARS, 0.5 * 0.0025 * BUSBARS / CELL)
    finger = stripes(material, generated.outputs["Y"], 52, 0.08)
    metal = nodes.new("ShaderNodeMath")
    metal.operation = "MULTIPLY_ADD"  # busbar + 0.45 · finger
    links.new(finger, metal.inputs[0])
    metal.inputs[1].default_value = 0.45
    links.new(busbar, metal.inputs[2])
    mix = nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    mix.clamp_factor = True
    links.new(metal.outputs["Value"], mix.inputs["Factor"])
    links.new(grain_colour, mix.inputs["A"])
    mix.inputs["B"].default_value = (0.5, 0.5, 0.52, 1.0)
    set_base_colour(material, mix.outputs["Result"])
    glass_coat(material)
    return material


def glass_coat(material: Any) -> None:
    """A clear glossy coat: the module glass, without a glass object covering the cells."""
    bsdf = material.node_tree.nodes["Principled BSDF"]
    bsdf.inputs["Coat Weight"].default_value = 0.5
    bsdf.inputs["Coat Roughness"].default_value = 0.04
    bsdf.inputs["Coat IOR"].default_value = 1.52


class PhotovoltaicModule(Scenario):
    """The MIAD photovoltaic-module scenario."""

    spec = ScenarioSpec(
        name="photovoltaic_module",
        anomaly_kind="surface",
        factors=("UV",),
        time_of_day="day",
        defect_types=("cell_crack", "hot_spot", "snail_trail"),
        camera=CameraShell(radius=(1.0, 1.45), azimuth=(-135.0, -45.0), elevation=(30.0, 75.0), fixed=(1.2, -90.5, 50.5),
                           centre=tuple(CENTRE), centre_jitter=(0.3, 0.35, 0.2)),
        description="framed 60-cell polycrystalline PV module on a tilted ground rack, day",
        miad_defect_pixel_ratio=0.0011,
    )

    def build(self) -> None:
        bp = self.bp
        self.environment = DayEnvironment(bp, self.spec.camera, ("pv_row", "fence", "pole", "tree", "bush"), "grass", 0.0, (3.0, 30.0), (0.6, 0.85), sun_elevation_deg=55, sun_azimuth_deg=-120, sun_strength=3.0)
        self.environment.build()
        cells = cell_material(bp)
        backsheet = principled(bp, "pv_backsheet", (0.85, 0.85, 0.83), roughness=0.5)
        glass_coat(backsheet)
        aluminium = principled(bp, "pv_frame", (0.78, 0.79, 0.80), metallic=1.0, roughness=0.3, finish="metal")
        steel = principled(bp, "rack_steel", (0.55, 0.56, 0.57), metallic=0.9, roughness=0.45, finish="galvanised")
        self.cell_names = []
        for column, row, u, v in cell_centres():
            name = f"cell_{row}_{column}"
            corners = [module_point(u + su * CELL / 2, v + sv * CELL / 2, 0.0) for su, sv in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
            cell = geometry.mesh_object(bp, name, corners, [(0, 1, 2, 3)], cells, smooth=False)
            if np.dot(np.array(cell.data.polygons[0].normal), W_AXIS) < 0:
                cell.data.flip_normals()  # a lone quad has no inside: make it face out of the module
            self.cell_names.append(name)
        geometry.mesh_object(bp, "backsheet", *module_box((0.0, 0.0, -0.003), (WIDTH - 0.01, LENGTH - 0.01, 0.002)), backsheet, smooth=False)
        bar = 0.02
        for name, centre, size in (
            ("frame_bottom", (0.0, -(LENGTH - bar) / 2, -0.013), (WIDTH, bar, 0.035)),
            ("frame_top", (0.0, (LENGTH - bar) / 2, -0.013), (WIDTH, bar, 0.035)),
            ("frame_left", (-(WIDTH - bar) / 2, 0.0, -0.013), (bar, LENGTH - 2 * bar, 0.035)),
            ("frame_right", ((WIDTH - bar) / 2, 0.0, -0.013), (bar, LENGTH - 2 * bar, 0.035)),
        ):
            geometry.mesh_object(bp, name, *module_box(centre, size), aluminium, smooth=False)
        for k, v in enumerate((-0.45, 0.45)):
            geometry.mesh_object(bp, f"rail_{k}", *module_box((0.0, v, -0.06), (WIDTH + 0.08, 0.04, 0.05)), steel, smooth=False)
            for j, x in enumerate((-0.3, 0.3)):
                top = np.array(module_point(x, v, -0.085))
                geometry.box(bp, f"post_{k}_{j}", (0.05, 0.05, float(top[2])), (float(top[0]), float(top[1]), float(top[2]) / 2), steel)
        pale, burnt, trail = (principled(bp, "crack_pale", (0.62, 0.64, 0.66), roughness=0.3),
                              principled(bp, "hot_spot_burn", (0.42, 0.26, 0.06), roughness=0.5),
                              principled(bp, "snail_trail_brown", (0.06, 0.03, 0.012), roughness=0.5))
        for material in (pale, burnt, trail):
            glass_coat(material)
        self.decals = {  # crack_shape is unit length along X: size = length, widths relative to it
            "cell_crack": [(Decal(bp, "cell_crack", pale, lambda rng: crack_shape(rng, width=0.07, branches=int(rng.integers(0, 2)), **UNTAPERED),
                                  size=(0.09, 0.13), elongation=(1.0, 1.0)), None)],
            "hot_spot": [(Decal(bp, "hot_spot", burnt, lambda rng: blob_shape(rng, roughness=0.35),
                                size=(0.03, 0.045), elongation=(0.8, 1.3)), None)],
            "snail_trail": [(Decal(bp, "snail_trail", trail, lambda rng: crack_shape(rng, width=0.065, branches=int(rng.integers(2, 5)), **UNTAPERED),
                                   size=(0.10, 0.14), elongation=(1.0, 1.0)), None)],
        }

    def _defect_targets(self, defect_type: str) -> list[DefectTarget]:
        return [DefectTarget(name, (name,)) for name in self.cell_names]

    def _apply_defect(self, defect_type: str, target: DefectTarget, rng: np.random.Generator, view: View) -> DefectChange:
        host = self.bp.bpy.data.objects[target.object_names[0]]
        return place_variant(self.decals[defect_type], host, rng, facing=view.location)
