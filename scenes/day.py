"""A daytime outdoor environment: an equirectangular background image that also lights the scene,
plus the sun. MIAD's uncontrolled background by day is "random background images": with UB on,
each image takes a random background of its split (train/test sets are disjoint, see
assets_manifest) at a random heading; with UB off the plain sky is used at a fixed heading.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mkdata.assets_manifest import ids_for, load_assets
from mkdata.scenes.backgrounds import background_path
from mkdata.scenes.base import View

PLAIN_BACKGROUND = "sky_plain"


class DayEnvironment:
    """Owns the world background nodes and the sun of a day scene."""

    def __init__(self, bp: Any, sun_elevation_deg: float = 55.0, sun_azimuth_deg: float = 30.0, sun_strength: float = 3.0) -> None:
        self.bp = bp
        self.sun_elevation, self.sun_azimuth, self.sun_strength = sun_elevation_deg, sun_azimuth_deg, sun_strength
        self.images: dict[str, Any] = {}

    def build(self) -> None:
        bpy = self.bp.bpy
        world = bpy.context.scene.world
        world.use_nodes = True
        nodes, links = world.node_tree.nodes, world.node_tree.links
        coords = nodes.new("ShaderNodeTexCoord")
        self.mapping = nodes.new("ShaderNodeMapping")
        self.texture = nodes.new("ShaderNodeTexEnvironment")
        links.new(coords.outputs["Generated"], self.mapping.inputs["Vector"])
        links.new(self.mapping.outputs["Vector"], self.texture.inputs["Vector"])
        links.new(self.texture.outputs["Color"], nodes["Background"].inputs["Color"])
        nodes["Background"].inputs["Strength"].default_value = 1.0
        sun = bpy.data.objects.new("sun", bpy.data.lights.new("sun", type="SUN"))
        sun.data.energy = self.sun_strength
        sun.data.angle = math.radians(1.0)
        sun.rotation_euler = (math.radians(90 - self.sun_elevation), 0.0, math.radians(self.sun_azimuth + 90))
        bpy.context.scene.collection.objects.link(sun)

    def _image(self, asset_id: str) -> Any:
        if asset_id not in self.images:
            path = background_path(asset_id, load_assets()[asset_id].params)
            image = self.bp.bpy.data.images.load(str(path), check_existing=True)
            image.use_fake_user = True  # kept for later images while another one is shown
            self.images[asset_id] = image
        return self.images[asset_id]

    def randomise(self, rng: np.random.Generator, uncontrolled: bool, split: str, view: View) -> str:
        """Pick this image's background (UB on) or the plain sky (UB off); returns its asset id.
        The sky lights the scene from every side, so ``view`` does not matter."""
        if uncontrolled:
            choices = ids_for("background_image", split)
            asset_id = choices[int(rng.integers(len(choices)))]
            heading = rng.uniform(0, 2 * math.pi)
        else:
            asset_id, heading = PLAIN_BACKGROUND, 0.0
        self.texture.image = self._image(asset_id)
        self.mapping.inputs["Rotation"].default_value = (0.0, 0.0, heading)
        return asset_id
