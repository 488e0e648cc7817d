"""Loading detector inputs: a folder, a list of image paths, or an N×H×W×3 uint8 array."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from mkdata.files import list_images

ImageSource = np.ndarray | Sequence[str | Path] | str | Path


def load_images(source: ImageSource) -> np.ndarray:
    """Return an N×H×W×3 uint8 array; all images must share one size (no silent resize)."""
    if isinstance(source, np.ndarray):
        if source.ndim != 4 or source.shape[-1] != 3 or source.dtype != np.uint8:
            raise ValueError(f"expected an N×H×W×3 uint8 array, got shape {source.shape} dtype {source.dtype}")
        return source
    paths = list_images(source) if isinstance(source, (str, Path)) else [Path(p) for p in source]
    if not paths:
        return np.zeros((0, 0, 0, 3), np.uint8)
    arrays = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise ValueError(f"images have different sizes {sorted(shapes)}; resize them to one size first")
    return np.stack(arrays)
