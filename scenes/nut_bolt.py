"""nut_bolt: a night-time view of a steel bracket bolted to a beam flange by four bolt assemblies.

Each assembly is a bolt shaft (threaded look), a washer and a hex nut on the bracket. Logical
defects, each on one assembly: ``missing_nut``; ``loose_nut`` (nut backed off along the bolt,
exposing thread); ``missing_washer`` (the nut sits down on the bracket where the washer was).
"""

from __future__ import annotations

import math

import numpy as np

from mkdata.scenes import geometry
from mkdata.scenes.base import CameraShell, DefectChange, DefectTarget, Scenario, ScenarioSpec, View
from mkdata.scenes.materials import principled
from mkdata.scenes.night import GROUND_TOP, NightEnvironment

# Geometry (metres). The bracket's top face is at BRACKET_TOP; the assemblies stand on it.
BEAM_TOP = 0.0
BRACKET_TOP = BEAM_TOP + 0.015
WASHER_T, WASHER_R = 0.003, 0.019
NUT_T, NUT_R = 0.014, 0.0145  # hex circumradius (M16 nut: 24 mm across flats)
SHAFT_R, SHAFT_TOP = 0.008, BRACKET_TOP + WASHER_T + NUT_T + 0.028
BOLT_XY = ((-0.09, -0.055), (0.09, -0.055), (-0.09, 0.055), (0.09, 0.055))


class NutBolt(Scenario):
    """The MIAD nut-and-bolt scenario."""

    spec = ScenarioSpec(
        name="nut_bolt",
        anomaly_kind="logical",
        factors=("UV", "UB"),
        time_of_day="night",
        defect_types=("missing_nut", "loose_nut", "missing_washer"),
        camera=CameraShell(radius=(0.42, 0.62), azimuth=(-180.0, 180.0), elevation=(30.0, 75.0), fixed=(0.5, -90.5, 55.5),
                           centre=(0.0, 0.0, BRACKET_TOP), centre_jitter=(0.04, 0.04, 0.01)),
        description="steel bracket on a beam flange, four bolt assemblies (bolt, washer, hex nut), night",
        miad_defect_pixel_ratio=0.0036,
    )

    def build(self) -> None:
        bp = self.bp
        self.environment = NightEnvironment(bp)
        self.environment.build()
        beam = principled(bp, "beam_steel", (0.20, 0.21, 0.22), metallic=0.8, roughness=0.55, finish="metal")
        paint = principled(bp, "bracket_paint", (0.12, 0.22, 0.14), metallic=0.1, roughness=0.45, finish="paint")
        bolt = principled(bp, "bolt_thread", (0.45, 0.42, 0.38), metallic=0.9, roughness=0.5, bump_bands=120.0, finish="metal")
        zinc = principled(bp, "galvanised", (0.70, 0.70, 0.68), metallic=0.85, roughness=0.45, finish="galvanised")
        height = BEAM_TOP - GROUND_TOP
        geometry.box(bp, "beam_web", (1.6, 0.02, height - 0.02), (0, 0, GROUND_TOP + height / 2), beam)
        geometry.box(bp, "beam_flange", (1.6, 0.22, 0.02), (0, 0, BEAM_TOP - 0.01), beam, bevel=0.002)
        geometry.box(bp, "bracket", (0.28, 0.17, BRACKET_TOP - BEAM_TOP), (0, 0, (BEAM_TOP + BRACKET_TOP) / 2), paint, bevel=0.002)
        geometry.box(bp, "bracket_upright", (0.28, 0.015, 0.16), (0, 0.0775, BRACKET_TOP + 0.08), paint, bevel=0.002)
        self.nut_rest_z = BRACKET_TOP + WASHER_T + NUT_T / 2
        for k, (x, y) in enumerate(BOLT_XY):
            shaft_bottom = BEAM_TOP - 0.02
            geometry.prism(bp, f"bolt_{k}", SHAFT_R, SHAFT_TOP - shaft_bottom, (x, y, (SHAFT_TOP + shaft_bottom) / 2), bolt)
            geometry.prism(bp, f"washer_{k}", WASHER_R, WASHER_T, (x, y, BRACKET_TOP + WASHER_T / 2), zinc, bevel=0.0005)
            nut = geometry.prism(bp, f"nut_{k}", NUT_R, NUT_T, (x, y, self.nut_rest_z), zinc, sides=6, bevel=0.0012)
            nut.rotation_euler = (0.0, 0.0, k * 0.37)

    def _defect_targets(self, defect_type: str) -> list[DefectTarget]:
        return [DefectTarget(f"assembly_{k}", (f"nut_{k}", f"washer_{k}")) for k in range(len(BOLT_XY))]

    def _apply_defect(self, defect_type: str, target: DefectTarget, rng: np.random.Generator, view: View) -> DefectChange:
        objects = self.bp.bpy.data.objects
        nut_name, washer_name = target.object_names
        nut, washer = objects[nut_name], objects[washer_name]
        nut_z, nut_turn = nut.location.z, nut.rotation_euler.z

        def undo() -> None:
            nut.hide_render = washer.hide_render = False
            nut.location.z, nut.rotation_euler.z = nut_z, nut_turn

        if defect_type == "missing_nut":
            nut.hide_render = True
            return DefectChange((nut_name,), undo)
        if defect_type == "loose_nut":
            lift = float(rng.uniform(0.008, 0.016))
            nut.location.z = nut_z + lift
            nut.rotation_euler.z = nut_turn + math.radians(rng.uniform(-60, 60))
            return DefectChange((nut_name,), undo, {"lift_m": lift})
        washer.hide_render = True  # missing_washer
        nut.location.z = nut_z - WASHER_T
        return DefectChange((nut_name, washer_name), undo)
