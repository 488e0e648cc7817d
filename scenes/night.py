"""A night-time inspection environment: dark sky, ground, a camera-mounted torch, and clutter.

MIAD's uncontrolled background at night is "a dark scene whose background objects are moved at
random". With UB on, the clutter objects are re-placed per image behind the object (seen from the
camera); with UB off they are hidden, leaving a plain dark background.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mkdata.scenes import geometry
from mkdata.scenes.base import View
from mkdata.scenes.materials import principled

CLUTTER_KINDS = ("cabinet", "pipe", "drum", "beam")
GROUND_TOP = -0.15  # z of the ground surface (m); scenes stand their structure on it
BACKGROUND_IDS = {True: "night_clutter", False: "night_plain"}


class NightEnvironment:
    """Owns the night lights, ground and clutter objects of a scene."""

    def __init__(self, bp: Any, n_clutter: int = 8) -> None:
        self.bp = bp
        self.n_clutter = n_clutter
        self.clutter: list[tuple[Any, float]] = []  # (object, height of its centre above ground)

    def build(self) -> None:
        bpy = self.bp.bpy
        world = bpy.context.scene.world
        world.use_nodes = True
        world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.004, 0.005, 0.009, 1.0)
        world.node_tree.nodes["Background"].inputs["Strength"].default_value = 1.0
        ground = principled(self.bp, "ground_concrete", (0.08, 0.08, 0.075), roughness=0.9)
        geometry.box(self.bp, "ground", (12.0, 12.0, 0.02), (0.0, 0.0, GROUND_TOP - 0.01), ground)
        palette = [
            principled(self.bp, "clutter_grey", (0.25, 0.26, 0.27), metallic=0.6, roughness=0.5),
            principled(self.bp, "clutter_yellow", (0.55, 0.42, 0.05), roughness=0.6),
            principled(self.bp, "clutter_rust", (0.25, 0.10, 0.04), roughness=0.8),
        ]
        for i in range(self.n_clutter):
            kind = CLUTTER_KINDS[i % len(CLUTTER_KINDS)]
            material = palette[i % len(palette)]
            name = f"clutter_{i}"
            if kind == "cabinet":
                obj, centre = geometry.box(self.bp, name, (0.5, 0.3, 0.9), (0, 0, 0), material, bevel=0.01), 0.45
            elif kind == "pipe":
                obj, centre = geometry.prism(self.bp, name, 0.06, 1.6, (0, 0, 0), material, rotation=(0, math.pi / 2, 0)), 0.06
            elif kind == "drum":
                obj, centre = geometry.prism(self.bp, name, 0.28, 0.85, (0, 0, 0), material), 0.425
            else:
                obj, centre = geometry.box(self.bp, name, (1.4, 0.12, 0.18), (0, 0, 0), material), 0.09
            self.clutter.append((obj, centre))
        self.torch = bpy.data.objects.new("torch", bpy.data.lights.new("torch", type="SPOT"))
        self.torch.data.energy = 30.0
        self.torch.data.spot_size = math.radians(50)
        self.torch.data.spot_blend = 0.6
        self.torch.data.shadow_soft_size = 0.03
        bpy.context.scene.collection.objects.link(self.torch)
        moon = bpy.data.objects.new("moon", bpy.data.lights.new("moon", type="SUN"))
        moon.data.energy = 0.02
        moon.rotation_euler = (math.radians(40), 0.0, math.radians(30))
        bpy.context.scene.collection.objects.link(moon)

    def randomise(self, rng: np.random.Generator, uncontrolled: bool, split: str, view: View) -> str:
        """Aim the torch from ``view``, then move the clutter behind the object as seen from the
        camera (UB on) or hide it (UB off); returns the background id (the same for every split)."""
        self._aim_torch(view)
        for obj, centre in self.clutter:
            obj.hide_render = not uncontrolled
            if uncontrolled:
                away = math.radians(view.azimuth + 180.0 + rng.uniform(-100.0, 100.0))
                distance = rng.uniform(0.7, 2.8)
                obj.location = (distance * math.cos(away), distance * math.sin(away), GROUND_TOP + centre)
                obj.rotation_euler = (0.0, 0.0, rng.uniform(0, 2 * math.pi))
        return BACKGROUND_IDS[uncontrolled]

    def _aim_torch(self, view: View) -> None:
        """Torch held next to the camera, pointed at the target, bright enough for its distance."""
        from mathutils import Matrix  # bpy's; only importable inside a render worker

        location = view.location + np.array([0.05, -0.04, 0.06])
        self.torch.location = location.tolist()
        rotation = self.bp.camera.rotation_from_forward_vec(view.target - location)
        self.torch.rotation_euler = Matrix(np.asarray(rotation).tolist()).to_euler()
        distance = float(np.linalg.norm(view.target - location))
        self.torch.data.energy = float(35.0 * distance**2)
