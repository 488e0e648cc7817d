"""Procedural day backgrounds: equirectangular sky / horizon / vegetation / structure images.

Each background is fully defined by its parameters in ``assets_manifest/assets.json`` (kind
"background_image"); the image is generated with numpy once and cached under
``$MKDATA_CACHE`` (default ``~/.cache/mkdata``) so render workers only load a PNG.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

WIDTH, HEIGHT = 1024, 512  # equirectangular: x = azimuth, y = elevation from +90° (top) to −90°


def cache_dir() -> Path:
    return Path(os.environ.get("MKDATA_CACHE", Path.home() / ".cache" / "mkdata")) / "backgrounds"


def _fractal(rng: np.random.Generator, shape: tuple[int, int], scales: tuple[float, ...]) -> np.ndarray:
    """Sum of blurred noise octaves in [0, 1], wrapping horizontally (equirect seam)."""
    total = np.zeros(shape)
    for octave, sigma in enumerate(scales):
        layer = gaussian_filter(rng.normal(size=shape), sigma=sigma, mode=("nearest", "wrap"))
        total += layer / (layer.std() + 1e-9) / (octave + 1)
    return (total - total.min()) / (np.ptp(total) + 1e-9)


def _ridge(rng: np.random.Generator, base: float, amplitude: float, smooth: float) -> np.ndarray:
    """A horizon-like 1-D profile (row index per column), periodic in x."""
    profile = gaussian_filter(rng.normal(size=WIDTH), sigma=smooth, mode="wrap")
    return base - amplitude * profile / (np.abs(profile).max() + 1e-9)


def generate(params: dict[str, Any]) -> np.ndarray:
    """H×W×3 uint8 equirect image for a background's parameters (deterministic)."""
    rng = np.random.default_rng(params["seed"])
    rows = np.arange(HEIGHT)[:, None] / (HEIGHT - 1)  # 0 = zenith, 0.5 = horizon, 1 = nadir
    horizon = HEIGHT // 2
    zenith, haze = np.array(params["zenith_rgb"]), np.array(params["horizon_rgb"])
    sky_t = np.clip(rows / 0.5, 0, 1) ** 0.6
    image = (1 - sky_t)[..., None] * zenith + sky_t[..., None] * haze
    image = np.broadcast_to(image, (HEIGHT, WIDTH, 3)).copy()
    clouds = _fractal(rng, (HEIGHT, WIDTH), (6, 18, 40))
    cloud_mask = np.clip((clouds - (1 - params["cloud_cover"])) * 4, 0, 1) * (rows < 0.5)
    image = image * (1 - cloud_mask[..., None]) + cloud_mask[..., None] * np.array(params["cloud_rgb"])
    # ground below the horizon: textured, darker with distance to the nadir
    ground = np.array(params["ground_rgb"]) * (0.75 + 0.5 * _fractal(rng, (HEIGHT, WIDTH), (2, 8)))[..., None]
    below = np.arange(HEIGHT)[:, None] >= horizon
    image = np.where(below[..., None], ground, image)
    # silhouettes standing on the horizon: hills, a tree line, or structures
    columns = np.arange(WIDTH)
    for layer in params["layers"]:
        if layer == "hills":
            top = _ridge(rng, horizon - 18, 30, 40)
            colour = np.array(params["hill_rgb"])
        elif layer == "trees":
            top = _ridge(rng, horizon - 10, 14, 3) - 10 * _fractal(rng, (1, WIDTH), (1.5,))[0]
            colour = np.array(params["tree_rgb"])
        else:  # structures: masts and buildings
            top = np.full(WIDTH, float(horizon))
            for _ in range(int(rng.integers(6, 14))):
                x, width = int(rng.integers(0, WIDTH)), int(rng.integers(2, 40))
                top[np.arange(x, x + width) % WIDTH] = horizon - rng.uniform(8, 70)
            colour = np.array(params["structure_rgb"])
        covered = (np.arange(HEIGHT)[:, None] >= top[None, columns]) & ~below
        shade = 0.85 + 0.3 * _fractal(rng, (HEIGHT, WIDTH), (1.0, 4.0))
        image = np.where(covered[..., None], colour * shade[..., None], image)
    image = image * params["exposure"]
    return (np.clip(image, 0, 1) ** (1 / 2.2) * 255).round().astype(np.uint8)


def background_path(asset_id: str, params: dict[str, Any]) -> Path:
    """The cached PNG of a background, generated (atomically) on first use."""
    from mkdata.assets_manifest import params_checksum

    path = cache_dir() / f"{asset_id}-{params_checksum(params)[:12]}.png"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        Image.fromarray(generate(params)).save(temp, format="PNG")
        os.replace(temp, path)
    return path
