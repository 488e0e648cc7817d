"""A contact sheet of a scenario: a few normal images and one per defect type, mask outlined."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from mkdata.files import write_png_atomic
from mkdata.generator.config import RenderConfig
from mkdata.generator.plan import ImageJob
from mkdata.generator.pool import render_in_subprocess
from mkdata.scenes import get_scenario

OUTLINE_RGB = (255, 40, 40)


def outline(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``image`` with the boundary of ``mask`` drawn in red (2 px)."""
    inside = mask > 0
    edge = ndimage.binary_dilation(inside, iterations=2) & ~ndimage.binary_erosion(inside)
    out = image.copy()
    out[edge] = OUTLINE_RGB
    return out


def preview_sheet(config: RenderConfig, n_normal: int = 3) -> np.ndarray:
    """Render and tile ``n_normal`` training images plus one test image per defect type."""
    spec = get_scenario(config.scenario).spec
    jobs = [ImageJob("train", i, None) for i in range(n_normal)]
    jobs += [ImageJob("test_bad", i, defect) for i, defect in enumerate(spec.defect_types)]
    tiles = []
    for job, (image, mask, record) in zip(jobs, render_in_subprocess(config, [(job, True) for job in jobs])):
        tile = Image.fromarray(outline(image, mask) if mask is not None else image)
        caption = job.label if mask is None else f"{job.label} ({100 * record.defect_pixel_ratio:.2f}%)"
        draw = ImageDraw.Draw(tile)
        draw.rectangle((0, 0, tile.width, 14), fill=(0, 0, 0))
        draw.text((3, 2), caption, fill=(255, 255, 255))
        tiles.append(np.asarray(tile))
    columns = min(len(tiles), 4)
    rows = -(-len(tiles) // columns)
    blank = np.zeros_like(tiles[0])
    tiles += [blank] * (rows * columns - len(tiles))
    return np.concatenate([np.concatenate(tiles[r * columns:(r + 1) * columns], axis=1) for r in range(rows)], axis=0)


def write_preview(config: RenderConfig, path: Path) -> Path:
    write_png_atomic(path, preview_sheet(config))
    return path
