"""A tiny synthetic inspection dataset (textured surfaces with obvious defects) for tests and demos.

No rendering needed: a smooth random texture plus stripes per image; defective images get a dark
or bright blob or a scratch, with its exact 0/1 mask. Fully determined by ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter


@dataclass(frozen=True)
class SyntheticSet:
    train: np.ndarray  # N×H×W×3 uint8, normal only
    test: np.ndarray  # M×H×W×3 uint8
    labels: np.ndarray  # (M,) 0 normal / 1 defective
    masks: np.ndarray  # M×H×W uint8 0/1
    defect_types: list[str]  # per test image: "good", "blob" or "scratch"


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    noise = gaussian_filter(rng.normal(size=(size, size)), sigma=size / 24)
    noise = (noise - noise.mean()) / (noise.std() + 1e-8)
    yy, xx = np.mgrid[0:size, 0:size] / size
    phase = rng.uniform(0, 2 * np.pi)
    stripes = np.sin(2 * np.pi * 6 * (xx + 0.1 * yy) + phase)
    grey = 0.5 + 0.06 * noise + 0.05 * stripes
    tint = np.array([1.0, 0.95, 0.85]) * rng.uniform(0.95, 1.05)
    return np.clip(grey[..., None] * tint, 0, 1)


def _defect(rng: np.random.Generator, size: int) -> tuple[np.ndarray, str]:
    """Return a float mask in [0, 1] (soft edge) and the defect type."""
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    cy, cx = rng.uniform(0.25 * size, 0.75 * size, 2)
    if rng.random() < 0.5:
        radius = rng.uniform(0.06, 0.12) * size
        return (np.hypot(yy - cy, xx - cx) <= radius).astype(float), "blob"
    angle = rng.uniform(0, np.pi)
    length = rng.uniform(0.3, 0.5) * size
    along = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
    across = -(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)
    width = max(1.5, 0.025 * size)
    return ((np.abs(along) <= length / 2) & (np.abs(across) <= width)).astype(float), "scratch"


def make_synthetic(
    n_train: int = 24, n_test_good: int = 8, n_test_bad: int = 8, size: int = 64, seed: int = 0
) -> SyntheticSet:
    """Build the arrays of a synthetic set; defects change intensity by ±0.35 (obvious)."""
    rng = np.random.default_rng(seed)
    train = np.stack([_texture(rng, size) for _ in range(n_train)])
    test, labels, masks, types = [], [], [], []
    for i in range(n_test_good + n_test_bad):
        image = _texture(rng, size)
        mask = np.zeros((size, size))
        kind = "good"
        if i >= n_test_good:
            mask, kind = _defect(rng, size)
            shift = 0.35 if rng.random() < 0.5 else -0.35
            image = np.clip(image + shift * mask[..., None], 0, 1)
        test.append(image)
        labels.append(int(kind != "good"))
        masks.append(mask > 0)
        types.append(kind)
    to_u8 = lambda a: (np.asarray(a) * 255).round().astype(np.uint8)  # noqa: E731
    return SyntheticSet(to_u8(train), to_u8(test), np.array(labels), np.array(masks, np.uint8), types)


def write_mvtec(data: SyntheticSet, root: str | Path, category: str = "synthetic") -> Path:
    """Write a SyntheticSet in the MVTec AD layout under root/category; returns that folder."""
    base = Path(root) / category
    for i, image in enumerate(data.train):
        _save(image, base / "train" / "good" / f"{i:03d}.png")
    for i, (image, kind, mask) in enumerate(zip(data.test, data.defect_types, data.masks)):
        _save(image, base / "test" / kind / f"{i:03d}.png")
        if kind != "good":
            _save(mask * 255, base / "ground_truth" / kind / f"{i:03d}_mask.png")
    return base


def _save(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8)).save(path)
