"""Anomalies synthesised on normal images, for datasets without a defect pool (numpy/scipy only).

Two methods, each returning the edited image and its exact 0/1 mask, deterministic in the
random generator they are given:

- ``cutpaste`` (Li et al., CVPR 2021): a rectangle of 2–15 % of the image area, aspect ratio
  log-uniform in [0.3, 3.3], is cut from the image, colour-jittered (brightness, contrast and
  saturation factors in [0.9, 1.1], the paper's jitter without its hue shift) and pasted where it
  does not overlap its source.
- ``perlin`` (DRAEM, Zavrtanik et al., ICCV 2021): a mask from Perlin noise thresholded at 0.5
  (lattice of 2^k cells per axis, k in 0..6 drawn per axis), filled with a texture blended in
  with a random opacity, I' = (1 − M)·I + M·((1 − β)·A + β·I), β ~ U(0, 0.8). DRAEM takes A from
  DTD photographs; here A is fractal Perlin noise between two random colours (no download).
"""

from __future__ import annotations

import numpy as np

METHODS = ("cutpaste", "perlin")
MASK_AREA = (0.005, 0.5)  # a Perlin mask is redrawn until it covers this share of the image
MAX_DRAWS = 1000


def synthesise(image: np.ndarray, method: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``image`` (H×W×3 uint8) with a ``method`` anomaly; returns (image, H×W uint8 0/1 mask)."""
    if method not in METHODS:
        raise ValueError(f"unknown synthesis method {method!r}; valid: {', '.join(METHODS)}")
    pixels = image.astype(np.float64) / 255.0
    edited, mask = (_cutpaste if method == "cutpaste" else _perlin)(pixels, rng)
    return (np.clip(edited, 0, 1) * 255).round().astype(np.uint8), mask.astype(np.uint8)


def _cutpaste(pixels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    h, w = pixels.shape[:2]
    area = rng.uniform(0.02, 0.15) * h * w
    aspect = float(np.exp(rng.uniform(np.log(0.3), np.log(3.3))))
    ph = int(np.clip(round(np.sqrt(area * aspect)), 1, h // 2))
    pw = int(np.clip(round(np.sqrt(area / aspect)), 1, w // 2))
    sy, sx = int(rng.integers(0, h - ph + 1)), int(rng.integers(0, w - pw + 1))
    ys, xs = np.mgrid[0:h - ph + 1, 0:w - pw + 1]
    free = np.flatnonzero(((np.abs(ys - sy) >= ph) | (np.abs(xs - sx) >= pw)).ravel())  # never empty: ph ≤ h/2
    dy, dx = np.unravel_index(int(rng.choice(free)), ys.shape)
    patch = _jitter(pixels[sy:sy + ph, sx:sx + pw], rng)
    edited = pixels.copy()
    edited[dy:dy + ph, dx:dx + pw] = patch
    mask = np.zeros((h, w), bool)
    mask[dy:dy + ph, dx:dx + pw] = True
    return edited, mask


def _jitter(patch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    brightness, contrast, saturation = rng.uniform(0.9, 1.1, 3)
    out = patch * brightness
    out = (out - out.mean()) * contrast + out.mean()
    grey = out.mean(axis=2, keepdims=True)
    return (out - grey) * saturation + grey


def _perlin(pixels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    h, w = pixels.shape[:2]
    for _ in range(MAX_DRAWS):
        cells = (2 ** int(rng.integers(0, 7)), 2 ** int(rng.integers(0, 7)))
        mask = perlin_noise((h, w), cells, rng) > 0.5
        if MASK_AREA[0] <= mask.mean() <= MASK_AREA[1]:
            break
    else:  # practically unreachable: about one draw in seven lands in the range at 32², more when larger
        raise RuntimeError(f"no Perlin mask covering {MASK_AREA} of a {h}×{w} image in {MAX_DRAWS} draws")
    texture = _texture((h, w), rng)
    beta = rng.uniform(0.0, 0.8)
    m = mask[..., None]
    return (1 - m) * pixels + m * ((1 - beta) * texture + beta * pixels), mask


def _texture(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Fractal Perlin noise (3 octaves) mapped between two random colours: H×W×3 in [0, 1]."""
    base = 2 ** int(rng.integers(1, 4))
    noise = sum(0.5 ** octave * perlin_noise(shape, (base * 2 ** octave,) * 2, rng) for octave in range(3))
    noise = (noise - noise.min()) / (np.ptp(noise) + 1e-12)
    low, high = rng.uniform(0, 1, (2, 3))
    return low + noise[..., None] * (high - low)


def perlin_noise(shape: tuple[int, int], cells: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """2-D Perlin gradient noise over ``cells`` lattice cells per axis (values in about [-0.71, 0.71])."""
    (h, w), (cy, cx) = shape, cells
    angles = rng.uniform(0, 2 * np.pi, (cy + 1, cx + 1))
    gradients = np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    y = np.arange(h) * cy / h
    x = np.arange(w) * cx / w
    y0, x0 = np.floor(y).astype(int)[:, None], np.floor(x).astype(int)[None, :]
    fy, fx = (y[:, None] - y0), (x[None, :] - x0)

    def corner(dy: int, dx: int) -> np.ndarray:
        g = gradients[y0 + dy, x0 + dx]
        return g[..., 0] * (fy - dy) + g[..., 1] * (fx - dx)

    def fade(t: np.ndarray) -> np.ndarray:
        return t * t * t * (t * (6 * t - 15) + 10)

    uy, ux = fade(fy), fade(fx)
    top = corner(0, 0) + ux * (corner(0, 1) - corner(0, 0))
    bottom = corner(1, 0) + ux * (corner(1, 1) - corner(1, 0))
    return top + uy * (bottom - top)
