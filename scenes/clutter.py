"""Night background clutter: cabinets, pipes, drums, beams, cable reels and runs, concrete blocks
and fences, in painted (worn), rusty, concrete, rubber and galvanised materials.

Built once, with each object's material and size drawn from ``LOOK_SEED`` (the same yard in every
dataset and worker); per image ``place`` re-draws only which objects show, their yaw and their place
behind the object as seen from the camera (MIAD: "background objects are moved at random").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from mkdata.scenes import geometry
from mkdata.scenes.base import View
from mkdata.scenes.materials import add_noise_bump, mottled, principled

PAINTS = {"yellow": (0.55, 0.42, 0.05), "green": (0.10, 0.22, 0.12), "grey": (0.30, 0.31, 0.32), "red": (0.45, 0.08, 0.04)}
RUST = ((0.0, (0.12, 0.05, 0.02)), (0.5, (0.28, 0.11, 0.04)), (1.0, (0.40, 0.20, 0.08)))
CONCRETE = ((0.0, (0.16, 0.16, 0.15)), (1.0, (0.30, 0.29, 0.27)))
# Shape builders: (bp, name, material) -> (object, height of its origin above the ground, footprint radius)
Shape = Callable[[Any, str, Any], tuple[Any, float, float]]
SHOW_PROBABILITY = 0.85
LOOK_SEED = 20240  # draws each object's material and size once, at build


def _fence(bp: Any, name: str, material: Any) -> tuple[Any, float, float]:
    posts = [geometry.tube(np.array([[x, 0.0, 0.0], [x, 0.0, 1.1]]), 0.025, sides=8) for x in (-0.9, 0.0, 0.9)]
    rails = [geometry.tube(np.array([[-0.9, 0.0, z], [0.9, 0.0, z]]), 0.015, sides=8) for z in (0.3, 1.0)]
    return geometry.mesh_object(bp, name, *geometry.merge(*posts, *rails), material), 0.0, 0.9


def _cable_run(bp: Any, name: str, material: Any) -> tuple[Any, float, float]:
    x = np.linspace(-1.0, 1.0, 24)
    path = np.stack([x, 0.12 * np.sin(3.0 * x), np.full_like(x, 0.02)], axis=1)
    return geometry.mesh_object(bp, name, *geometry.tube(path, 0.02, sides=8), material), 0.0, 1.0


SHAPES: dict[str, tuple[Shape, tuple[str, ...]]] = {  # kind -> (builder, materials it may wear)
    "cabinet": (lambda bp, n, m: (geometry.box(bp, n, (0.5, 0.3, 0.9), (0, 0, 0), m, bevel=0.01), 0.45, 0.3), ("paint", "galvanised")),
    "pipe": (lambda bp, n, m: (geometry.prism(bp, n, 0.06, 1.6, (0, 0, 0), m, rotation=(0, math.pi / 2, 0)), 0.06, 0.8),
             ("rust", "paint", "galvanised")),
    "drum": (lambda bp, n, m: (geometry.prism(bp, n, 0.28, 0.85, (0, 0, 0), m, bevel=0.01), 0.425, 0.28), ("paint", "rust")),
    "beam": (lambda bp, n, m: (geometry.box(bp, n, (1.4, 0.12, 0.18), (0, 0, 0), m, bevel=0.005), 0.09, 0.7), ("rust", "paint")),
    "cable_reel": (lambda bp, n, m: (geometry.prism(bp, n, 0.32, 0.28, (0, 0, 0), m, rotation=(math.pi / 2, 0, 0)), 0.32, 0.32),
                   ("paint", "rust")),
    "cable_run": (_cable_run, ("rubber",)),
    "block": (lambda bp, n, m: (geometry.box(bp, n, (0.6, 0.4, 0.3), (0, 0, 0), m, bevel=0.01), 0.15, 0.35), ("concrete",)),
    "fence": (_fence, ("galvanised", "rust")),
}
KINDS = tuple(SHAPES)


def palette(bp: Any) -> dict[str, list[Any]]:
    """The clutter materials by family (several paint colours; one each of the others)."""
    rust = principled(bp, "clutter_rust", (0.25, 0.10, 0.04), roughness=0.85)
    mottled(rust, 6.0, RUST)
    add_noise_bump(rust, 60.0, 0.5)
    concrete = principled(bp, "clutter_concrete", (0.25, 0.25, 0.23), roughness=0.95)
    mottled(concrete, 3.0, CONCRETE)
    add_noise_bump(concrete, 120.0, 0.4)
    return {
        "paint": [principled(bp, f"clutter_paint_{name}", rgb, roughness=0.5, finish="paint") for name, rgb in PAINTS.items()],
        "rust": [rust],
        "concrete": [concrete],
        "rubber": [principled(bp, "clutter_rubber", (0.02, 0.02, 0.02), roughness=0.7)],
        "galvanised": [principled(bp, "clutter_galvanised", (0.45, 0.46, 0.45), metallic=0.7, roughness=0.5, finish="galvanised")],
    }


class Clutter:
    """The night background objects of one scene."""

    def __init__(self, bp: Any, count: int = 10) -> None:
        self.bp = bp
        self.materials = palette(bp)
        self.objects: list[tuple[Any, float, float]] = []  # (object, height of its origin, footprint radius), scaled
        rng = np.random.default_rng(LOOK_SEED)
        for i in range(count):
            build, allowed = SHAPES[KINDS[i % len(KINDS)]]
            choices = self.materials[allowed[int(rng.integers(len(allowed)))]]
            obj, height, radius = build(bp, f"clutter_{i}", choices[int(rng.integers(len(choices)))])
            size = float(rng.uniform(0.8, 1.2))
            obj.scale = (size, size, size)
            self.objects.append((obj, size * height, size * radius))

    def hide(self) -> None:
        """Hide every object (UB off: a plain dark background)."""
        for obj, *_ in self.objects:
            obj.hide_render = True

    def place(self, rng: np.random.Generator, view: View, ground: float) -> None:
        """Show most objects, each at a random yaw, on the ground at ``ground`` behind the point of
        interest as seen from ``view`` (never between it and the camera)."""
        for obj, height, radius in self.objects:
            obj.hide_render = bool(rng.random() > SHOW_PROBABILITY)
            away = math.radians(view.azimuth + 180.0 + rng.uniform(-80.0, 80.0))
            distance = rng.uniform(0.8, 2.8) + radius
            obj.location = (view.target[0] + distance * math.cos(away), view.target[1] + distance * math.sin(away), ground + height)
            obj.rotation_euler.z = rng.uniform(0, 2 * math.pi)
