"""Loading detector inputs: a folder, a list of image paths, an N×H×W×3 uint8 array, or a
dataset's samples decoded on demand (``datasets.SampleImages``)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from mkdata.benchmark.datasets import SampleImages
from mkdata.files import list_images

ImageSource = np.ndarray | SampleImages | Sequence[str | Path] | str | Path


def load_images(source: ImageSource) -> np.ndarray:
    """Return an N×H×W×3 uint8 array; all images must share one size (no silent resize)."""
    if isinstance(source, np.ndarray):
        return _checked(source)
    if isinstance(source, SampleImages):
        return source.load()
    paths = image_paths(source)
    if not paths:
        return np.zeros((0, 0, 0, 3), np.uint8)
    return _decode(paths)


def image_paths(source: Sequence[str | Path] | str | Path) -> list[Path]:
    """The image files of a folder (sorted by name), or the given paths."""
    return list_images(source) if isinstance(source, (str, Path)) else [Path(p) for p in source]


def _checked(array: np.ndarray) -> np.ndarray:
    if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8:
        raise ValueError(f"expected an N×H×W×3 uint8 array, got shape {array.shape} dtype {array.dtype}")
    return array


def _decode(paths: Sequence[Path], shape: tuple[int, int] | None = None) -> np.ndarray:
    """The images at ``paths`` stacked; a ValueError when their sizes differ (from each other or from ``shape``)."""
    arrays = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    shapes = {a.shape for a in arrays} | ({(*shape, 3)} if shape else set())
    if len(shapes) > 1:
        raise ValueError(f"images have different sizes {sorted(shapes)}; resize them to one size first")
    return np.stack(arrays)


class ImageBatches:
    """The images of a source, ``batch_size`` at a time: an array is sliced, image files (and
    ``SampleImages``) are decoded one batch at a time.

    ``len`` (images) and ``shape`` ((H, W), from the first file's header) are known before any pixel
    is decoded; every batch is checked against ``shape``, as ``load_images`` checks all images.
    After a full pass, ``digest`` is the SHA-1 of the pixels in order, the same as of the stacked array.
    """

    def __init__(self, source: ImageSource, batch_size: int) -> None:
        self.batch_size = batch_size
        self._items: np.ndarray | SampleImages | list[Path]
        if isinstance(source, np.ndarray):
            self._items = _checked(source)
            self.shape: tuple[int, int] = self._items.shape[1:3]
        elif isinstance(source, SampleImages):
            self._items, self.shape = source, source.shape
        else:
            self._items = image_paths(source)
            width, height = Image.open(self._items[0]).size if self._items else (0, 0)
            self.shape = (height, width)
        self.digest: str | None = None  # set by a full pass

    def __len__(self) -> int:
        return len(self._items)

    def _batch(self, part: np.ndarray | SampleImages | list[Path]) -> np.ndarray:
        """The pixels of a slice of the source."""
        if isinstance(part, np.ndarray):
            return part
        return part.load() if isinstance(part, SampleImages) else _decode(part, self.shape)

    def __iter__(self) -> Iterator[np.ndarray]:
        sha1 = hashlib.sha1()
        for start in range(0, len(self), self.batch_size):
            batch = self._batch(self._items[start : start + self.batch_size])
            sha1.update(np.ascontiguousarray(batch).data)
            yield batch
        self.digest = sha1.hexdigest()
