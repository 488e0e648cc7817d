"""witness_mark: a bolted splice plate on a steel beam flange, seen from above by day. Each of the
six M24 bolts (bolt end, hex nut, washer) carries a yellow witness (torque) mark: a paint line across
the bolt end, over the nut's top face and down one flat, over the washer and onto the plate.

The line is three objects per bolt: the bolt-end paint, the nut paint and the base paint (washer
and plate), so a nut that turns carries its own paint with it. Logical defect
``misaligned_mark``: one nut has turned on its bolt by 15-60° (either way); its paint no longer
lines up with the bolt end's and the base's. The mask is the union of the turned part's
footprints before and after — the nut *and* its paint, following nut_bolt's rule for a displaced
part: turning a hex nut changes the shading and outline of all its flats, not only the stripe.
The nut's shadow on the washer changes too but is not the defect and is not masked; the sun
stands high (78°) so that this shadow stays within a pixel or two of the nut.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mkdata.scenes import geometry
from mkdata.scenes.base import CameraShell, DefectChange, DefectTarget, Scenario, ScenarioSpec, View
from mkdata.scenes.day import DayEnvironment
from mkdata.scenes.materials import principled
from mkdata.scenes.surfaces import Degradation

# Geometry (metres): M24 bolts. The beam flange's top is at z = 0, the splice plate on it.
PLATE_TOP = 0.02
WASHER_T, WASHER_R = 0.004, 0.022
NUT_T, NUT_FLAT = 0.0215, 0.018  # ISO 4032 hex nut: height, half the width across flats (36 mm AF)
NUT_R = NUT_FLAT * 2 / math.sqrt(3)
BOLT_R, BOLT_PROTRUSION = 0.012, 0.014
NUT_BOTTOM = PLATE_TOP + WASHER_T
NUT_TOP = NUT_BOTTOM + NUT_T
BOLT_TOP = NUT_TOP + BOLT_PROTRUSION
BOLT_XY = tuple((x, y) for y in (-0.075, 0.075) for x in (-0.1, 0.0, 0.1))
PAINT_W, PAINT_T = 0.008, 0.0005  # witness line width and paint thickness
TURN_DEG = (15.0, 60.0)


def slab(a: tuple[float, float], z: tuple[float, float], heading: float) -> tuple[list, list]:
    """A paint box spanning ``a`` along the heading (radians, about a bolt's axis at the origin),
    PAINT_W across it and ``z`` in height."""
    along, across = np.array([math.cos(heading), math.sin(heading), 0.0]), np.array([-math.sin(heading), math.cos(heading), 0.0])
    verts = [tuple(p * along + q * across + np.array([0.0, 0.0, h])) for p in a for q in (-PAINT_W / 2, PAINT_W / 2) for h in z]
    faces = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    return verts, faces


def witness_paint(heading: float) -> dict[str, tuple[list, list]]:
    """The three parts of a witness line drawn outwards along ``heading``: each a top strip and
    (where the line goes over an edge) a strip down the side below it."""
    return {
        "bolt_paint": geometry.merge(slab((-0.4 * BOLT_R, BOLT_R), (BOLT_TOP, BOLT_TOP + PAINT_T), heading),
                            slab((BOLT_R, BOLT_R + PAINT_T), (NUT_TOP, BOLT_TOP + PAINT_T), heading)),
        "nut_paint": geometry.merge(slab((BOLT_R, NUT_FLAT), (NUT_TOP, NUT_TOP + PAINT_T), heading),
                           slab((NUT_FLAT, NUT_FLAT + PAINT_T), (NUT_BOTTOM, NUT_TOP + PAINT_T), heading)),
        "base_paint": geometry.merge(slab((NUT_FLAT, WASHER_R), (NUT_BOTTOM, NUT_BOTTOM + PAINT_T), heading),
                            slab((WASHER_R, WASHER_R + PAINT_T), (PLATE_TOP, NUT_BOTTOM + PAINT_T), heading),
                            slab((WASHER_R, WASHER_R + 0.03), (PLATE_TOP, PLATE_TOP + PAINT_T), heading)),
    }


class WitnessMark(Scenario):
    """The MIAD witness-mark scenario."""

    spec = ScenarioSpec(
        name="witness_mark",
        anomaly_kind="logical",
        factors=("UV", "UB", "US"),
        time_of_day="day",
        defect_types=("misaligned_mark",),
        camera=CameraShell(radius=(0.45, 0.62), azimuth=(-180.0, 180.0), elevation=(35.0, 75.0), fixed=(0.53, -90.5, 55.5),
                           centre=(0.0, 0.0, PLATE_TOP), centre_jitter=(0.04, 0.04, 0.005)),
        description="splice plate on a beam flange, six bolts with yellow witness marks across bolt end, nut and plate, day",
        miad_defect_pixel_ratio=0.0070,
    )

    def build(self) -> None:
        bp = self.bp
        self.environment = DayEnvironment(bp, self.spec.camera, ("steel_frame", "steel_stack", "fence", "container", "pole"), "gravel", -2.5, (1.2, 6.0), (0.85, 0.2), sun_elevation_deg=78, sun_azimuth_deg=40, sun_elevations=(72.0, 84.0))
        self.environment.build()
        beam = principled(bp, "beam_paint", (0.16, 0.21, 0.19), roughness=0.6, finish="paint")
        plate = principled(bp, "plate_paint", (0.25, 0.26, 0.27), metallic=0.2, roughness=0.55, finish="paint")
        zinc = principled(bp, "galvanised", (0.40, 0.41, 0.40), metallic=0.5, roughness=0.55, finish="galvanised")  # hot-dip: dull grey
        thread = principled(bp, "bolt_thread", (0.55, 0.55, 0.53), metallic=0.85, roughness=0.5, bump_bands=140.0, finish="metal")
        paint = principled(bp, "witness_paint", (0.95, 0.70, 0.02), roughness=0.5)
        geometry.box(bp, "beam_flange", (1.6, 0.34, 0.02), (0.0, 0.0, -0.01), beam, bevel=0.002)
        geometry.box(bp, "beam_web", (1.6, 0.012, 0.3), (0.0, 0.0, -0.17), beam)
        geometry.box(bp, "splice_plate", (0.33, 0.28, PLATE_TOP), (0.0, 0.0, PLATE_TOP / 2), plate, bevel=0.0015)
        for k, (x, y) in enumerate(BOLT_XY):
            heading = math.atan2(y, x)  # each line is drawn outwards from the plate's centre
            shank_bottom = PLATE_TOP - 0.005
            geometry.prism(bp, f"bolt_{k}", BOLT_R, BOLT_TOP - shank_bottom, (x, y, (BOLT_TOP + shank_bottom) / 2), thread, bevel=0.0015)
            geometry.prism(bp, f"washer_{k}", WASHER_R, WASHER_T, (x, y, PLATE_TOP + WASHER_T / 2), zinc, bevel=0.0005)
            nut = geometry.prism(bp, f"nut_{k}", NUT_R, NUT_T, (x, y, NUT_BOTTOM + NUT_T / 2), zinc, sides=6, bevel=0.0012)
            corner = nut.data.vertices[0].co
            nut.rotation_euler.z = heading - math.atan2(corner.y, corner.x) - math.pi / 6  # a flat faces the line
            for part, (verts, faces) in witness_paint(heading).items():
                obj = geometry.mesh_object(bp, f"{part}_{k}", verts, faces, paint, smooth=False)
                obj.location = (x, y, 0.0)
        self.degradation = Degradation(bp, [beam, plate, zinc, thread])

    def _defect_targets(self, defect_type: str) -> list[DefectTarget]:
        return [DefectTarget(f"bolt_{k}", (f"nut_{k}", f"nut_paint_{k}")) for k in range(len(BOLT_XY))]

    def _apply_defect(self, defect_type: str, target: DefectTarget, rng: np.random.Generator, view: View) -> DefectChange:
        turned: list[Any] = [self.bp.bpy.data.objects[name] for name in target.object_names]
        before = [obj.rotation_euler.z for obj in turned]
        turn = float(rng.uniform(*TURN_DEG)) * (1 if rng.random() < 0.5 else -1)
        for obj in turned:
            obj.rotation_euler.z += math.radians(turn)

        def undo() -> None:
            for obj, angle in zip(turned, before):
                obj.rotation_euler.z = angle

        return DefectChange(target.object_names, undo, {"turn_deg": turn})
