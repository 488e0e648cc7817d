"""catenary_dropper: a railway overhead contact line seen from below against the sky, by day.

A messenger wire (sagging slightly) above a level contact wire, joined every 1.1 m by a vertical
dropper wire with a clamp on each wire (a sleeve round the wire with a lug the dropper is
crimped into). Logical defects, each on one dropper:

- ``missing_dropper``: the whole dropper assembly is gone — wire and both clamps (as after a
  dropper breaks and falls off); the mask is where the three parts would be visible.
- ``slack_dropper``: the straight dropper is replaced by a bowed one between the same clamps
  (a per-dropper hidden mesh, re-shaped at random and shown instead); the mask is the union of
  the straight and bowed wires' footprints. It bows across the line of sight, so it shows.
- ``missing_clamp``: one clamp (messenger or contact-wire side) is gone, the dropper wire stays.

Wires are modelled somewhat thicker than real ones (a 10 mm dropper instead of ~5 mm) so that
they are 2-3 px wide at 256², the size the MIAD defect-pixel ratio refers to.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mkdata.scenes import geometry
from mkdata.scenes.base import CameraShell, DefectChange, DefectTarget, Scenario, ScenarioSpec, View
from mkdata.scenes.day import DayEnvironment
from mkdata.scenes.materials import principled

# Geometry (metres). The contact wire runs along X at z = 0; the messenger sags above it.
CONTACT_R, MESSENGER_R, DROPPER_R = 0.006, 0.0055, 0.005
MESSENGER_MID, MESSENGER_SAG = 0.55, 0.015  # messenger height above the contact wire: MID + SAG·x²
LINE_HALF_LENGTH = 9.0
DROPPER_X = tuple(1.1 * k for k in range(-4, 5))
SLACK_POINTS = 24  # points along a bowed dropper's centre line


def messenger_height(x: float | np.ndarray) -> float | np.ndarray:
    """Height of the messenger wire's axis above the contact wire's at ``x`` (a shallow parabola)."""
    return MESSENGER_MID + MESSENGER_SAG * np.square(x)


def clamp_mesh(x: float, wire_z: float, wire_r: float, lug_from: float, lug_to: float) -> tuple[list, list]:
    """A dropper clamp: an octagonal sleeve round the wire and a square lug towards the dropper
    (80 mm long, as a bolted dropper clamp)."""
    sleeve = geometry.tube(np.array([[x - 0.04, 0, wire_z], [x + 0.04, 0, wire_z]]), wire_r + 0.01, sides=8)
    lug = geometry.tube(np.array([[x, 0, lug_from], [x, 0, lug_to]]), 0.014, sides=4)
    return geometry.merge(sleeve, lug)


def dropper_ends(x: float) -> tuple[np.ndarray, np.ndarray]:
    """Bottom and top of dropper wire ``x`` (each end buried in its clamp's lug)."""
    return np.array([x, 0.0, CONTACT_R + 0.024]), np.array([x, 0.0, messenger_height(x) - MESSENGER_R - 0.022])


def bowed_path(bottom: np.ndarray, top: np.ndarray, direction: np.ndarray, amplitude: float, skew: float) -> np.ndarray:
    """Centre line of a slack dropper: bowed sideways by ``amplitude`` along the horizontal unit
    ``direction``, its belly moved up or down by ``skew`` (> 1 lower belly, < 1 higher)."""
    s = np.linspace(0, 1, SLACK_POINTS)[:, None]
    return bottom + s * (top - bottom) + amplitude * np.sin(math.pi * s**skew) * direction


class CatenaryDropper(Scenario):
    """The MIAD catenary-dropper scenario."""

    spec = ScenarioSpec(
        name="catenary_dropper",
        anomaly_kind="logical",
        factors=("UV", "UB"),
        time_of_day="day",
        defect_types=("missing_dropper", "slack_dropper", "missing_clamp"),
        camera=CameraShell(radius=(1.6, 2.3), azimuth=(-135.0, -45.0), elevation=(-40.0, -8.0), fixed=(1.9, -90.5, -20.5),
                           centre=(0.0, 0.0, 0.3), centre_jitter=(0.55, 0.05, 0.05)),
        description="overhead contact line: messenger and contact wire joined by droppers with clamps, from below, day",
        miad_defect_pixel_ratio=0.0037,
    )

    def build(self) -> None:
        bp = self.bp
        self.environment = DayEnvironment(bp, self.spec.camera, ("mast", "wires", "pole", "tree", "building", "rail"), "gravel", -5.3, (4.0, 45.0), (10.0, 1.5), sun_elevation_deg=60, sun_azimuth_deg=-120)
        self.environment.build()
        copper = principled(bp, "contact_copper", (0.30, 0.15, 0.08), metallic=0.7, roughness=0.4, finish="metal")
        bronze = principled(bp, "messenger_bronze", (0.16, 0.13, 0.09), metallic=0.6, roughness=0.55, finish="metal")
        dropper_bronze = principled(bp, "dropper_bronze", (0.22, 0.16, 0.09), metallic=0.5, roughness=0.5, finish="metal")
        brass = principled(bp, "clamp_brass", (0.62, 0.46, 0.20), metallic=0.8, roughness=0.35, finish="metal")
        span = np.linspace(-LINE_HALF_LENGTH, LINE_HALF_LENGTH, 97)
        straight = np.array([[-LINE_HALF_LENGTH, 0, 0], [LINE_HALF_LENGTH, 0, 0]])
        geometry.mesh_object(bp, "contact_wire", *geometry.tube(straight, CONTACT_R, 16), copper)
        geometry.mesh_object(bp, "messenger_wire", *geometry.tube(np.stack([span, 0 * span, messenger_height(span)], 1), MESSENGER_R, 16), bronze)
        self.slack: dict[str, tuple[Any, float]] = {}  # dropper name -> (its hidden bowed twin, x)
        for k, x in enumerate(DROPPER_X):
            top_z = float(messenger_height(x))
            contact_clamp = clamp_mesh(x, 0.0, CONTACT_R, CONTACT_R, CONTACT_R + 0.03)
            messenger_clamp = clamp_mesh(x, top_z, MESSENGER_R, top_z - MESSENGER_R - 0.028, top_z)
            geometry.mesh_object(bp, f"clamp_contact_{k}", *contact_clamp, brass, smooth=False)
            geometry.mesh_object(bp, f"clamp_messenger_{k}", *messenger_clamp, brass, smooth=False)
            bottom, top = dropper_ends(x)
            geometry.mesh_object(bp, f"dropper_{k}", *geometry.tube(np.stack([bottom, top]), DROPPER_R, 10), dropper_bronze)
            bowed = geometry.tube(bowed_path(bottom, top, np.array([0.0, 1.0, 0.0]), 0.1, 1.0), DROPPER_R, 10)
            slack = geometry.mesh_object(bp, f"dropper_{k}_slack", *bowed, dropper_bronze)
            slack.hide_render = True
            self.slack[f"dropper_{k}"] = (slack, x)

    def _defect_targets(self, defect_type: str) -> list[DefectTarget]:
        droppers = range(len(DROPPER_X))
        if defect_type == "missing_clamp":
            clamps = [f"clamp_{side}_{k}" for k in droppers for side in ("contact", "messenger")]
            return [DefectTarget(name, (name,)) for name in clamps]
        if defect_type == "slack_dropper":
            return [DefectTarget(f"dropper_{k}", (f"dropper_{k}",)) for k in droppers]
        return [DefectTarget(f"dropper_{k}", (f"dropper_{k}", f"clamp_contact_{k}", f"clamp_messenger_{k}")) for k in droppers]

    def _apply_defect(self, defect_type: str, target: DefectTarget, rng: np.random.Generator, view: View) -> DefectChange:
        objects = self.bp.bpy.data.objects
        hidden = [objects[name] for name in target.object_names]
        shown: list[Any] = []
        details: dict[str, Any] = {}
        if defect_type == "slack_dropper":
            slack, x = self.slack[target.object_names[0]]
            details = self._reshape_slack(slack, x, rng, view)
            shown = [slack]
        for obj in hidden:
            obj.hide_render = True
        for obj in shown:
            obj.hide_render = False

        def undo() -> None:
            for obj in hidden:
                obj.hide_render = False
            for obj in shown:
                obj.hide_render = True

        return DefectChange(tuple(obj.name for obj in hidden + shown), undo, details)

    def _reshape_slack(self, slack: Any, x: float, rng: np.random.Generator, view: View) -> dict[str, Any]:
        """Give the hidden slack dropper at ``x`` a random bow, across the camera's line of sight."""
        bottom, top = dropper_ends(x)
        sight = view.location[:2] - bottom[:2]
        across = math.atan2(sight[1], sight[0]) + math.pi / 2 + math.radians(rng.uniform(-30, 30))
        across += math.pi * int(rng.integers(2))  # bow to the left or to the right
        direction = np.array([math.cos(across), math.sin(across), 0.0])
        amplitude, skew = float(rng.uniform(0.05, 0.12)), float(rng.uniform(0.7, 1.4))
        verts, _ = geometry.tube(bowed_path(bottom, top, direction, amplitude, skew), DROPPER_R, 10)
        slack.data.vertices.foreach_set("co", np.asarray(verts, dtype=np.float32).ravel())
        slack.data.update()
        return {"bow_m": amplitude, "bow_heading_deg": math.degrees(across) % 360}
