"""metal_welding: two steel plates joined by a butt weld on a welding table, seen by day.

The weld bead is a rippled half-round ridge along the joint (crescent ripples, tapered start and
end craters) with spatter beside it; the plates show heat tint near the bead. Surface defects on
the bead: ``porosity`` (a cluster of dark gas pores) and ``crack`` (a dark groove along or across
the bead). US: rust / dust / grime on the plates.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mkdata.scenes import geometry
from mkdata.scenes.base import CameraShell, DefectChange, DefectTarget, Scenario, ScenarioSpec, View
from mkdata.scenes.day import DayEnvironment
from mkdata.scenes.decals import Decal, crack_shape, pits_shape, place_variant
from mkdata.scenes.finish import apply_finish
from mkdata.scenes.materials import add_noise_bump, colour_ramp, mottled, principled, set_base_colour
from mkdata.scenes.surfaces import Degradation

# Geometry (metres). The joint runs along Y at x = 0; the plates' top face is at PLATE_TOP.
TABLE_TOP = 0.0
PLATE_T, PLATE_W, PLATE_L = 0.008, 0.13, 0.24
PLATE_TOP = TABLE_TOP + PLATE_T
BEAD_HALF_WIDTH, BEAD_HEIGHT, BEAD_LENGTH = 0.008, 0.0028, 0.232
RIPPLE_PITCH = 0.0024
DEGRADATION_ZOOM = 5.0  # rust / dust patches a few centimetres across on 0.26 m of plate
HEAT_TINT = (  # (distance from the joint in m, colour): temper colours fading into mill scale
    (0.0, (0.03, 0.03, 0.035)),
    (0.014, (0.035, 0.04, 0.07)),
    (0.018, (0.09, 0.06, 0.06)),
    (0.023, (0.16, 0.12, 0.07)),
    (0.034, (0.075, 0.08, 0.09)),
)


def weld_bead_mesh(stations: int = 420, across: int = 17) -> tuple[list, list]:
    """A closed rippled bead along Y: half-round cross-section, crescent ripples, tapered ends."""
    y = np.linspace(-BEAD_LENGTH / 2, BEAD_LENGTH / 2, stations)
    u = -np.cos(np.linspace(0, math.pi, across))  # -1..1, denser at the toes
    end = np.clip((BEAD_LENGTH / 2 - np.abs(y)) / 0.012, 0.0, 1.0)  # 0 at the bead's ends
    half_width = BEAD_HALF_WIDTH * (0.55 + 0.45 * np.sqrt(end))
    height = BEAD_HEIGHT * (0.25 + 0.75 * np.sqrt(end))
    verts: list[tuple[float, float, float]] = []
    for yk, wk, hk in zip(y, half_width, height):
        phase = (yk + 0.5 * BEAD_HALF_WIDTH * (1 - u**2)) / RIPPLE_PITCH  # crescents lead at the centre
        ripple = 1 + 0.07 * np.abs(np.sin(math.pi * phase)) ** 0.6
        z = PLATE_TOP + hk * np.sqrt(1 - u**2) ** 0.8 * ripple
        verts += [(float(wk * uk), float(yk), float(zk)) for uk, zk in zip(u, z)]
        verts += [(float(wk), float(yk), PLATE_TOP - 0.002), (float(-wk), float(yk), PLATE_TOP - 0.002)]
    ring = across + 2
    faces = [(s * ring + k, s * ring + (k + 1) % ring, (s + 1) * ring + (k + 1) % ring, (s + 1) * ring + k)
             for s in range(stations - 1) for k in range(ring)]
    faces += [tuple(range(ring)), tuple(range((stations - 1) * ring, stations * ring))]
    return verts, faces


def spatter_mesh(rng: np.random.Generator, count: int = 26, sides: int = 6) -> tuple[list, list]:
    """Small weld-spatter domes scattered on the plates beside the bead."""
    verts: list[tuple[float, float, float]] = []
    faces: list[tuple[int, ...]] = []
    for _ in range(count):
        side = rng.choice([-1, 1])
        cx, cy = side * rng.uniform(BEAD_HALF_WIDTH + 0.002, 0.035), rng.uniform(-0.1, 0.1)
        radius = rng.uniform(0.0005, 0.0012)
        base = len(verts)
        for ring_radius, ring_z in ((radius, -0.0002), (0.75 * radius, 0.6 * radius)):
            verts += [(cx + ring_radius * math.cos(a), cy + ring_radius * math.sin(a), PLATE_TOP + ring_z)
                      for a in np.linspace(0, 2 * math.pi, sides, endpoint=False)]
        verts.append((cx, cy, PLATE_TOP + 0.9 * radius))
        faces += [(base + k, base + (k + 1) % sides, base + sides + (k + 1) % sides, base + sides + k) for k in range(sides)]
        faces += [(base + sides + k, base + sides + (k + 1) % sides, base + 2 * sides) for k in range(sides)]
        faces.append(tuple(base + k for k in reversed(range(sides))))
    return verts, faces


def colour_by_distance(material: Any, stops: tuple[tuple[float, tuple[float, float, float]], ...], wobble: float, axis: int = 0) -> None:
    """Base colour from a ramp over |world coordinate ``axis``|, its bands wavering by up to
    ``wobble`` metres (heat tint beside a weld)."""
    nodes, links = material.node_tree.nodes, material.node_tree.links
    position = nodes.new("ShaderNodeNewGeometry").outputs["Position"]
    separate, absolute, noise, wavy = (nodes.new("ShaderNodeSeparateXYZ"), nodes.new("ShaderNodeMath"),
                                       nodes.new("ShaderNodeTexNoise"), nodes.new("ShaderNodeMath"))
    absolute.operation, wavy.operation = "ABSOLUTE", "MULTIPLY_ADD"
    noise.inputs["Scale"].default_value = 40.0
    links.new(position, separate.inputs["Vector"])
    links.new(position, noise.inputs["Vector"])
    links.new(separate.outputs[axis], absolute.inputs[0])
    links.new(noise.outputs["Fac"], wavy.inputs[0])
    wavy.inputs[1].default_value = wobble
    links.new(absolute.outputs["Value"], wavy.inputs[2])
    set_base_colour(material, colour_ramp(material, wavy.outputs["Value"], stops))


class MetalWelding(Scenario):
    """The MIAD metal-welding scenario."""

    spec = ScenarioSpec(
        name="metal_welding",
        anomaly_kind="surface",
        factors=("UV", "US"),
        time_of_day="day",
        defect_types=("porosity", "crack"),
        camera=CameraShell(radius=(0.26, 0.36), azimuth=(-180.0, 180.0), elevation=(35.0, 80.0), fixed=(0.31, -60.5, 55.5),
                           centre=(0.0, 0.0, PLATE_TOP), centre_jitter=(0.01, 0.06, 0.0)),
        description="two steel plates butt-welded on a welding table: rippled bead, heat tint, spatter; day",
        miad_defect_pixel_ratio=0.0010,
    )

    def build(self) -> None:
        bp = self.bp
        self.environment = DayEnvironment(bp, self.spec.camera, ("container", "drums", "steel_stack", "fence", "building"), "concrete", TABLE_TOP - 0.88, (2.0, 14.0), (0.7, 0.55), sun_elevation_deg=60, sun_azimuth_deg=40, sun_strength=2.5)
        self.environment.build()
        table = principled(bp, "table_steel", (0.05, 0.05, 0.05), metallic=0.5, roughness=0.7, finish="metal")
        add_noise_bump(table, 60.0, 0.15)
        plate = principled(bp, "plate_steel", (0.075, 0.08, 0.09), metallic=0.35, roughness=0.6)
        add_noise_bump(plate, 180.0, 0.12)
        colour_by_distance(plate, HEAT_TINT, wobble=0.008)
        apply_finish(bp, plate, "metal")  # after the heat tint, so its streaks tone that colour
        bead = principled(bp, "weld_metal", (0.3, 0.3, 0.3), metallic=0.8, roughness=0.42)
        mottled(bead, 90.0, ((0.4, (0.34, 0.33, 0.31)), (0.62, (0.22, 0.2, 0.17)), (0.75, (0.16, 0.13, 0.1))))
        add_noise_bump(bead, 900.0, 0.08)
        geometry.box(bp, "table_top", (1.2, 0.8, 0.03), (0.05, 0.1, TABLE_TOP - 0.015), table, bevel=0.003)
        for k, (x, y) in enumerate(((-0.5, -0.25), (0.6, -0.25), (-0.5, 0.45), (0.6, 0.45))):
            geometry.box(bp, f"table_leg_{k}", (0.06, 0.06, 0.85), (x, y, TABLE_TOP - 0.455), table)
        for side in (-1, 1):
            centre = side * (PLATE_W / 2 + 0.0008)
            geometry.box(bp, f"plate_{'left' if side < 0 else 'right'}", (PLATE_W, PLATE_L, PLATE_T),
                         (centre, 0.0, TABLE_TOP + PLATE_T / 2), plate, bevel=0.001)
        geometry.mesh_object(bp, "weld_bead", *weld_bead_mesh(), bead)
        geometry.mesh_object(bp, "spatter", *spatter_mesh(np.random.default_rng(7)), bead)
        self.degradation = Degradation(bp, [plate], zoom=DEGRADATION_ZOOM)  # the plates are small
        pore = principled(bp, "pore_dark", (0.012, 0.011, 0.010), roughness=0.9)
        groove = principled(bp, "crack_dark", (0.015, 0.013, 0.012), roughness=0.9)
        along_bead, across_bead = np.array([0.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.0])
        self.decals = {
            "porosity": [(Decal(bp, "porosity", pore, lambda rng: pits_shape(rng, count=int(rng.integers(8, 13))),
                                size=(0.013, 0.016), elongation=(1.4, 2.2)), along_bead)],
            "crack": [  # crack_shape is unit length along X: size = length, widths relative to it
                (Decal(bp, "crack_longitudinal", groove, lambda rng: crack_shape(rng, width=0.08, branches=int(rng.integers(0, 2))),
                       size=(0.030, 0.045), elongation=(1.0, 1.0)), along_bead),
                (Decal(bp, "crack_transverse", groove, lambda rng: crack_shape(rng, width=0.12, branches=0),
                       size=(0.014, 0.017), elongation=(1.0, 1.0)), across_bead),
            ],
        }

    def _defect_targets(self, defect_type: str) -> list[DefectTarget]:
        return [DefectTarget("weld_bead", ("weld_bead",))]

    def _apply_defect(self, defect_type: str, target: DefectTarget, rng: np.random.Generator, view: View) -> DefectChange:
        host = self.bp.bpy.data.objects[target.object_names[0]]
        return place_variant(self.decals[defect_type], host, rng, facing=view.location)
