"""A night-time inspection environment: dark sky, ground, a camera-mounted torch, and clutter.

MIAD's uncontrolled background at night is "a dark scene whose background objects are moved at
random". With UB on, the clutter (``clutter.Clutter``) is re-placed per image behind the object
(seen from the camera) and the torch varies widely; with UB off the clutter is hidden and the torch
keeps a small normal variation of colour temperature and intensity (no two real torches, or
battery states, are identical).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mkdata.scenes import geometry
from mkdata.scenes.base import View
from mkdata.scenes.clutter import Clutter
from mkdata.scenes.materials import principled

GROUND_TOP = -0.15  # z of the ground surface (m); scenes stand their structure on it
BACKGROUND_IDS = {True: "night_clutter", False: "night_plain"}
# Torch (colour temperature K, intensity factor) ranges: UB off (normal variation) / UB on
TORCH = {False: ((4000.0, 6500.0), (0.85, 1.15)), True: ((3000.0, 6500.0), (0.6, 1.5))}


def kelvin_rgb(kelvin: float) -> tuple[float, float, float]:
    """Linear RGB of a black body at ``kelvin`` (Tanner Helland's fit), scaled to unit luminance."""
    t = kelvin / 100.0
    red = 1.0 if t <= 66 else 1.293 * (t - 60) ** -0.1332
    green = 0.3901 * math.log(t) - 0.6318 if t <= 66 else 1.1299 * (t - 60) ** -0.0755
    blue = 1.0 if t >= 66 else (0.0 if t <= 19 else 0.5432 * math.log(t - 10) - 1.1962)
    rgb = np.clip([red, green, blue], 0.0, 1.0) ** 2.2  # the fit is in sRGB-like values
    return tuple(float(c) for c in rgb / (rgb @ np.array([0.2126, 0.7152, 0.0722])))


class NightEnvironment:
    """Owns the night lights, ground and clutter objects of a scene."""

    def __init__(self, bp: Any, n_clutter: int = 10) -> None:
        self.bp = bp
        self.n_clutter = n_clutter

    def build(self) -> None:
        bpy = self.bp.bpy
        world = bpy.context.scene.world
        world.use_nodes = True
        world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.004, 0.005, 0.009, 1.0)
        world.node_tree.nodes["Background"].inputs["Strength"].default_value = 1.0
        ground = principled(self.bp, "ground_concrete", (0.08, 0.08, 0.075), roughness=0.9)
        geometry.box(self.bp, "ground", (12.0, 12.0, 0.02), (0.0, 0.0, GROUND_TOP - 0.01), ground)
        self.clutter = Clutter(self.bp, self.n_clutter)
        self.torch = bpy.data.objects.new("torch", bpy.data.lights.new("torch", type="SPOT"))
        self.torch.data.spot_size = math.radians(50)
        self.torch.data.spot_blend = 0.6
        self.torch.data.shadow_soft_size = 0.03
        bpy.context.scene.collection.objects.link(self.torch)
        moon = bpy.data.objects.new("moon", bpy.data.lights.new("moon", type="SUN"))
        moon.data.energy = 0.02
        moon.rotation_euler = (math.radians(40), 0.0, math.radians(30))
        bpy.context.scene.collection.objects.link(moon)

    def randomise(self, rng: np.random.Generator, uncontrolled: bool, split: str, view: View) -> str:
        """Aim the torch from ``view`` (its colour and intensity drawn), then move the clutter
        behind the object as seen from the camera (UB on) or hide it (UB off); returns the
        background id (the same for every split)."""
        kelvin, intensity = (float(rng.uniform(*bounds)) for bounds in TORCH[uncontrolled])
        self._aim_torch(view, kelvin, intensity)
        if uncontrolled:
            self.clutter.place(rng, view, GROUND_TOP)
        else:
            self.clutter.hide()
        return BACKGROUND_IDS[uncontrolled]

    def _aim_torch(self, view: View, kelvin: float, intensity: float) -> None:
        """Torch held next to the camera, pointed at the target, bright enough for its distance."""
        from mathutils import Matrix  # bpy's; only importable inside a render worker

        location = view.location + np.array([0.05, -0.04, 0.06])
        self.torch.location = location.tolist()
        rotation = self.bp.camera.rotation_from_forward_vec(view.target - location)
        self.torch.rotation_euler = Matrix(np.asarray(rotation).tolist()).to_euler()
        distance = float(np.linalg.norm(view.target - location))
        colour = np.asarray(kelvin_rgb(kelvin))
        self.torch.data.energy = float(35.0 * intensity * colour.max() * distance**2)
        self.torch.data.color = tuple(colour / colour.max())
