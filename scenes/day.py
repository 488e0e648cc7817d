"""A daytime outdoor environment: a physically based sky (Blender's Nishita model), a sun lamp in
the sky's sun direction, and 3-D surroundings (``surroundings.Surroundings``: a procedural ground
and background props of the scenario's world).

MIAD's uncontrolled background by day: with UB on, each image takes a background layout of its
split (assets of kind "background_layout"; train and test sets are disjoint): its sky (sun
elevation / azimuth ranges, air, dust and ozone density), ground material family and prop mix;
the props are placed per image behind the object as seen from the camera. With UB off the
layout "day_fixed" is used: the scenario's own ground, a fixed set of props at fixed places and
the scenario's sun, varied only slightly (elevation ±3°, azimuth ±5°, strength ±10 %).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mkdata.assets_manifest import ids_for, load_assets
from mkdata.scenes.base import CameraShell, View
from mkdata.scenes.surroundings import Placement, Surroundings

FIXED_LAYOUT = "day_fixed"
LAYOUT_KIND = "background_layout"
SKY_STRENGTH = 0.12  # Nishita radiance is physical (sun ~ 1e5 × sky); scaled to the sun lamp's units
VIEW_SPREAD_DEG = 28.0  # props go within this of the line of sight behind the target (≈ the view's width)
FIXED_SPREAD_DEG = 100.0  # with UB off: around the fixed camera's line of sight, seen from any UV pose
JITTER = {"elevation": 3.0, "azimuth": 5.0, "strength": 0.1}  # UB off: the controlled set's normal variation


class DayEnvironment:
    """Owns the sky, the sun and the surroundings of a day scene.

    ``props`` are the prop kinds of the scenario's world (see ``surroundings.PROP_KINDS``),
    ``ground`` its ground family with UB off, ``ground_z`` the ground's height, ``distance`` how
    far props stand from the target (metres), ``structure`` the half extents (x, y) of the
    scenario's own structure around the origin (kept free of props), ``sun_elevations`` the
    range a layout's sun height maps onto, ``camera`` the scenario's camera shell.
    """

    def __init__(self, bp: Any, camera: CameraShell, props: tuple[str, ...], ground: str, ground_z: float,
                 distance: tuple[float, float], structure: tuple[float, float], sun_elevation_deg: float = 55.0,
                 sun_azimuth_deg: float = 30.0, sun_strength: float = 3.0, sun_elevations: tuple[float, float] = (25.0, 70.0)) -> None:
        self.bp, self.camera, self.ground, self.distance = bp, camera, ground, distance
        self.sun_elevation, self.sun_azimuth, self.sun_strength, self.sun_elevations = sun_elevation_deg, sun_azimuth_deg, sun_strength, sun_elevations
        self.surroundings = Surroundings(bp, props, ground_z, 3.0 * distance[1], structure)

    def build(self) -> None:
        bpy = self.bp.bpy
        world = bpy.context.scene.world
        world.use_nodes = True
        nodes = world.node_tree.nodes
        self.sky = nodes.new("ShaderNodeTexSky")
        self.sky.sky_type = "NISHITA"
        self.sky.sun_disc = False  # the sun lamp gives the direct light and its sharp shadows
        world.node_tree.links.new(self.sky.outputs["Color"], nodes["Background"].inputs["Color"])
        nodes["Background"].inputs["Strength"].default_value = SKY_STRENGTH
        self.sun = bpy.data.objects.new("sun", bpy.data.lights.new("sun", type="SUN"))
        self.sun.data.angle = math.radians(1.0)
        bpy.context.scene.collection.objects.link(self.sun)
        self.surroundings.build()

    def randomise(self, rng: np.random.Generator, uncontrolled: bool, split: str, view: View) -> str:
        """Set this image's sky, ground and props: a layout of ``split`` with props placed behind
        the target seen from ``view`` (UB on), or the fixed layout (UB off); returns its asset id."""
        if uncontrolled:
            choices = ids_for(LAYOUT_KIND, split)
            layout = choices[int(rng.integers(len(choices)))]
            params = load_assets()[layout].params
            lo, hi = self.sun_elevations
            elevation = lo + (hi - lo) * rng.uniform(*params["sun_height"])
            azimuth = self.sun_azimuth + rng.uniform(*params["sun_azimuth_offset_deg"])
            strength = self.sun_strength * rng.uniform(0.85, 1.15)
            self._set_sky(elevation, azimuth, strength, *(rng.uniform(*params[key]) for key in ("air_density", "dust_density", "ozone_density")))
            sight = view.target[:2] - view.location[:2]
            norm = float(np.linalg.norm(sight))
            sight = sight / norm if norm > 1e-6 else np.array([math.cos(math.radians(view.azimuth + 180)), math.sin(math.radians(view.azimuth + 180))])
            where = Placement(view.target, math.degrees(math.atan2(sight[1], sight[0])), VIEW_SPREAD_DEG, self.distance, sight, 0.5)
            self.surroundings.set_ground(params["ground"], tuple(rng.uniform(-50.0, 50.0, 2)))
            self.surroundings.place(rng, self._counts(rng, params), where, (elevation, azimuth))
            return layout
        params = load_assets()[FIXED_LAYOUT].params
        elevation = self.sun_elevation + rng.uniform(-1, 1) * JITTER["elevation"]
        azimuth = self.sun_azimuth + rng.uniform(-1, 1) * JITTER["azimuth"]
        self._set_sky(elevation, azimuth, self.sun_strength * (1 + rng.uniform(-1, 1) * JITTER["strength"]),
                      params["air_density"], params["dust_density"], params["ozone_density"])
        self.surroundings.set_ground(self.ground)
        fixed = np.random.default_rng(params["seed"])  # the same props at the same places in every image
        target = np.asarray(self.camera.centre, float)
        near = max(self.distance[0], self.camera.radius[1] + 1.0)  # beyond every UV pose: never in front of the object
        where = Placement(target, self.camera.fixed[1] + 180.0, FIXED_SPREAD_DEG, (near, max(near * 1.5, self.distance[1])), None, 0.0)
        self.surroundings.place(fixed, self._counts(fixed, params), where, (self.sun_elevation, self.sun_azimuth))
        return FIXED_LAYOUT

    def _counts(self, rng: np.random.Generator, params: dict[str, Any]) -> dict[str, int]:
        """How many props of each kind: a total in the layout's range, kinds mixed by weights
        drawn once from the layout's seed (layouts differ in which kinds dominate)."""
        kinds = self.surroundings.kinds
        weights = np.random.default_rng(params["seed"]).dirichlet(np.full(len(kinds), 0.8))
        drawn = rng.choice(len(kinds), size=int(rng.integers(params["props"][0], params["props"][1] + 1)), p=weights)
        return {kind: int((drawn == k).sum()) for k, kind in enumerate(kinds)}

    def _set_sky(self, elevation: float, azimuth: float, strength: float, air: float, dust: float, ozone: float) -> None:
        """Nishita sky and sun lamp for a sun at ``elevation`` / ``azimuth`` (degrees, azimuth from +X)."""
        self.sky.sun_elevation = math.radians(elevation)
        self.sky.sun_rotation = math.radians(azimuth - 90.0)  # Nishita's rotation 0 puts the sun at +Y
        self.sky.air_density, self.sky.dust_density, self.sky.ozone_density = air, dust, ozone
        self.sun.rotation_euler = (math.radians(90 - elevation), 0.0, math.radians(azimuth + 90))
        self.sun.data.energy = strength
        low = 1.0 - min(1.0, math.sin(math.radians(max(elevation, 1.0))) / math.sin(math.radians(35.0)))
        self.sun.data.color = (1.0, 1.0 - 0.25 * low * (1 + 0.1 * dust), 1.0 - 0.5 * low * (1 + 0.1 * dust))  # warmer when low and dusty
