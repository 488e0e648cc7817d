"""The camera's response to the rendered scene: per-image exposure, white balance, slight defocus
and sensor noise, drawn from a seeded generator and applied to the rendered 8-bit image.

A field camera never takes two identical pictures of the same scene: auto-exposure misses by a
fraction of a stop, auto white balance drifts, focus hunts, and the sensor adds shot and read
noise. This is *normal* variation (present with every MIAD factor off) and never part of a mask;
it is applied identically to an image and to its defect-free twin, so masks stay exact.

Ranges (documented choices, within what handheld inspection cameras show):
- exposure error uniform in ±0.4 EV;
- white balance: a warm/cool shift of the red and blue gains by up to ±10 % (about ±20 mired)
  and a green/magenta tint of up to ±3 %;
- defocus in a quarter of the images: a Gaussian blur of σ 0.3–0.8 px per 256 px of width;
- noise: shot noise of variance k·x with k in [2e-4, 1.2e-3] plus read noise σ 0.002–0.005
  (linear units, x in [0, 1]) — roughly ISO 100–800 on a small-sensor camera.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.ndimage import gaussian_filter

CameraModel = Literal["realistic", "ideal"]
CAMERA_MODELS: tuple[CameraModel, ...] = ("realistic", "ideal")
GAMMA = 2.2  # the 8-bit image is treated as gamma-2.2 encoded for the linear-light operations


@dataclass(frozen=True)
class CameraResponse:
    """One image's camera settings, as drawn by ``draw``."""

    exposure_ev: float
    channel_gains: tuple[float, float, float]
    defocus_sigma_px: float
    shot_noise: float
    read_noise: float

    def to_dict(self) -> dict[str, float | list[float]]:
        return {"exposure_ev": round(self.exposure_ev, 4), "channel_gains": [round(g, 4) for g in self.channel_gains],
                "defocus_sigma_px": round(self.defocus_sigma_px, 4), "shot_noise": round(self.shot_noise, 6),
                "read_noise": round(self.read_noise, 5)}


IDEAL = CameraResponse(0.0, (1.0, 1.0, 1.0), 0.0, 0.0, 0.0)


def draw(rng: np.random.Generator, model: CameraModel, resolution: int) -> CameraResponse:
    """This image's camera response: the ranges above for ``realistic``, none for ``ideal``."""
    if model == "ideal":
        return IDEAL
    warm, tint = rng.uniform(-0.1, 0.1), rng.uniform(-0.03, 0.03)
    defocus = rng.uniform(0.3, 0.8) * resolution / 256 if rng.random() < 0.25 else 0.0
    return CameraResponse(
        exposure_ev=float(rng.uniform(-0.4, 0.4)),
        channel_gains=(float(1 + warm), float(1 + tint), float(1 - warm)),
        defocus_sigma_px=float(defocus),
        shot_noise=float(rng.uniform(2e-4, 1.2e-3)),
        read_noise=float(rng.uniform(0.002, 0.005)),
    )


def apply(image: np.ndarray, response: CameraResponse, rng: np.random.Generator) -> np.ndarray:
    """``image`` (H×W×3 uint8) as this camera records it; ``rng`` draws the noise."""
    if response == IDEAL:
        return image
    linear = (image.astype(np.float64) / 255.0) ** GAMMA
    linear = linear * (2.0**response.exposure_ev) * np.asarray(response.channel_gains)
    if response.defocus_sigma_px > 0:
        linear = gaussian_filter(linear, sigma=(response.defocus_sigma_px, response.defocus_sigma_px, 0), mode="nearest")
    variance = response.shot_noise * np.clip(linear, 0, None) + response.read_noise**2
    linear = linear + rng.standard_normal(linear.shape) * np.sqrt(variance)
    return (np.clip(linear, 0, 1) ** (1 / GAMMA) * 255).round().astype(np.uint8)
