"""wind_turbine: a section of a wind-turbine blade (NACA airfoil, slight twist) seen by day, as
from an inspection drone. Surface defect ``leading_edge_erosion``: a worn patch on the leading
edge where paint and filler are gone, exposing dark, weathered laminate.
"""

from __future__ import annotations

import math

import numpy as np

from mkdata.scenes import geometry
from mkdata.scenes.base import CameraShell, DefectChange, DefectTarget, Scenario, ScenarioSpec, View
from mkdata.scenes.day import DayEnvironment
from mkdata.scenes.decals import Decal, blob_shape
from mkdata.scenes.materials import principled
from mkdata.scenes.surfaces import Degradation

SPAN, CHORD, THICKNESS = 1.6, 0.55, 0.21  # metres; NACA 00xx thickness ratio ≈ 0.21 near the root
LEADING_EDGE_CHORD = 0.12  # chord fraction modelled as its own object (the erosion host)
HEIGHT = 1.2


def naca_half_thickness(x: np.ndarray, ratio: float) -> np.ndarray:
    """NACA 4-digit symmetric half-thickness at chord fractions ``x``."""
    return 5 * ratio * (0.2969 * np.sqrt(x) - 0.1260 * x - 0.3516 * x**2 + 0.2843 * x**3 - 0.1036 * x**4)


def airfoil_loft(chord_from: float, chord_to: float, sections: int = 24, stations: int = 24) -> tuple[list, list]:
    """Vertices/faces of the blade surface between two chord fractions, capped at both span ends."""
    x = chord_from + (chord_to - chord_from) * (1 - np.cos(np.linspace(0, math.pi / 2, stations)))
    upper = np.stack([x, naca_half_thickness(x, THICKNESS / CHORD)], axis=1)
    lower = upper[::-1] * [1, -1]
    profile = np.concatenate([lower, upper[1:]]) if chord_from == 0 else np.concatenate([lower, upper])
    verts, faces = [], []
    for s in range(sections):
        span_pos = (s / (sections - 1) - 0.5) * SPAN
        twist = math.radians(4.0 * s / (sections - 1))
        scale = CHORD * (1.08 - 0.16 * s / (sections - 1))  # slight taper
        for cx, cy in profile:
            px, py = (cx - 0.3) * scale, cy * scale  # chord along -Y (leading edge at -Y)
            rx, ry = px * math.cos(twist) - py * math.sin(twist), px * math.sin(twist) + py * math.cos(twist)
            verts.append((span_pos, rx, ry + HEIGHT))
    n = len(profile)
    for s in range(sections - 1):
        for k in range(n - 1):
            a = s * n + k
            faces.append((a, a + 1, a + n + 1, a + n))
    faces += [tuple(range(n))[::-1], tuple(range((sections - 1) * n, sections * n))]  # end caps
    return verts, faces


class WindTurbine(Scenario):
    """The MIAD wind-turbine scenario."""

    spec = ScenarioSpec(
        name="wind_turbine",
        anomaly_kind="surface",
        factors=("UV", "UB", "US"),
        time_of_day="day",
        defect_types=("leading_edge_erosion",),
        camera=CameraShell(radius=(1.5, 2.2), azimuth=(-160.0, -20.0), elevation=(-25.0, 35.0), fixed=(1.8, -90.5, 10.5),
                           centre=(0.0, -0.1 * CHORD, HEIGHT), centre_jitter=(0.3, 0.05, 0.05)),
        description="wind-turbine blade section (NACA airfoil) against the sky, drone view, day",
        miad_defect_pixel_ratio=0.0005,
    )

    def build(self) -> None:
        bp = self.bp
        self.environment = DayEnvironment(bp, self.spec.camera, ("turbine", "tree", "building", "pole"), "grass", HEIGHT - 40.0, (40.0, 300.0), (1.0, 0.4), sun_elevation_deg=50, sun_azimuth_deg=-60, sun_elevations=(15.0, 65.0))
        self.environment.build()
        paint = principled(bp, "blade_paint", (0.82, 0.83, 0.82), roughness=0.35, finish="paint")
        for name, (start, end) in {"blade_leading_edge": (0.0, LEADING_EDGE_CHORD), "blade_body": (LEADING_EDGE_CHORD, 1.0)}.items():
            geometry.mesh_object(bp, name, *airfoil_loft(start, end), paint)
        self.degradation = Degradation(bp, [paint])
        laminate = principled(bp, "eroded_laminate", (0.13, 0.11, 0.085), roughness=0.9)
        self.erosion = Decal(bp, "erosion", laminate, lambda rng: blob_shape(rng, roughness=0.45), size=(0.022, 0.036), elongation=(2.0, 3.5))

    def _defect_targets(self, defect_type: str) -> list[DefectTarget]:
        return [DefectTarget("leading_edge", ("blade_leading_edge",))]

    def _apply_defect(self, defect_type: str, target: DefectTarget, rng: np.random.Generator, view: View) -> DefectChange:
        host = self.bp.bpy.data.objects[target.object_names[0]]
        return self.erosion.place(host, rng, facing=view.location, along=np.array([1.0, 0.0, 0.0]))
