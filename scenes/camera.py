"""Camera viewpoints on a spherical shell, with MIAD's train/test angle bins (no viewpoint leakage).

Train images take azimuth and elevation in ⋃ₙ[2n, 2n+1) degrees, test images in ⋃ₙ[2n+1, 2n+2);
the radius interval is shared. Pure numpy: the placing of the Blender camera is ``place_camera``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mkdata.scenes.base import CameraShell

SPLIT_PARITY = {"train": 0, "test": 1}


def angle_bin_parity(angle_deg: float) -> int:
    """0 when ``angle_deg`` lies in some [2n, 2n+1), 1 when in some [2n+1, 2n+2)."""
    return int(math.floor(angle_deg)) % 2


def sample_binned_angle(rng: np.random.Generator, low: float, high: float, split: str) -> float:
    """Uniform angle in [low, high) restricted to the split's unit-degree bins."""
    parity = SPLIT_PARITY[split]
    whole_bins = [n for n in range(math.floor(low), math.ceil(high)) if n % 2 == parity]
    # length of each allowed bin clipped to [low, high)
    spans = [(max(n, low), min(n + 1, high)) for n in whole_bins]
    spans = [(a, b) for a, b in spans if b > a]
    if not spans:
        raise ValueError(f"angle range [{low}, {high}) has no {split} bin; widen it to at least 2 degrees")
    lengths = np.array([b - a for a, b in spans])
    chosen = rng.choice(len(spans), p=lengths / lengths.sum())
    a, b = spans[chosen]
    return float(a + rng.random() * (b - a))


def sample_viewpoint(rng: np.random.Generator, shell: CameraShell, split: str, uncontrolled: bool) -> tuple[float, float, float]:
    """(radius, azimuth°, elevation°): random on the shell if ``uncontrolled``, else the fixed pose."""
    if not uncontrolled:
        return shell.fixed
    radius = float(rng.uniform(*shell.radius))
    return radius, sample_binned_angle(rng, *shell.azimuth, split), sample_binned_angle(rng, *shell.elevation, split)


def spherical_to_cartesian(radius: float, azimuth_deg: float, elevation_deg: float) -> np.ndarray:
    """Offset from the point of interest to the camera."""
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    return radius * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])


def place_camera(bp: Any, target: np.ndarray, radius: float, azimuth_deg: float, elevation_deg: float, lens_mm: float) -> np.ndarray:
    """Put the (single, frame-0) camera with a ``lens_mm`` lens (36 mm sensor) on the shell
    looking at ``target``; returns its location."""
    bp.camera.set_intrinsics_from_blender_params(lens=lens_mm, lens_unit="MILLIMETERS")
    location = np.asarray(target, float) + spherical_to_cartesian(radius, azimuth_deg, elevation_deg)
    rotation = bp.camera.rotation_from_forward_vec(np.asarray(target, float) - location)
    bp.utility.reset_keyframes()
    bp.camera.add_camera_pose(bp.math.build_transformation_mat(location, rotation), frame=0)
    return location
