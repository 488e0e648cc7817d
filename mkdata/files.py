"""File I/O shared by the render side (scenes, generator) and the benchmark side: crash-safe
writes (a temporary name in the same folder, then a rename) and listing image files.

Both sides import it (and mkdata.errors, mkdata.seeds); neither imports the other (tests/test_layers.py).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from mkdata.errors import BadInput

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
POOL_SUFFIX = "_pool"


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` so that ``path`` is either absent, the old file, or the complete new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(temp, path)


def png_bytes(array: np.ndarray) -> bytes:
    """Deterministic PNG encoding of an H×W (grey) or H×W×3 uint8 array."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8)).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def write_png_atomic(path: Path, array: np.ndarray) -> None:
    write_bytes_atomic(path, png_bytes(array))


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BadInput(f"{folder} is not a directory")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def pool_dir(dataset_dir: str | Path) -> Path:
    """The contamination pool of a dataset: ``OUT/<name>_pool`` beside ``OUT/<name>`` (inside it,
    anomalib's MVTecAD, which reads every image under a category folder, would fail). Its
    defective images are laid out as an MVTec AD test split: ``test/<type>/NNNNN.png`` and
    ``ground_truth/<type>/NNNNN_mask.png``."""
    dataset_dir = Path(dataset_dir)
    return dataset_dir.parent / f"{dataset_dir.name}{POOL_SUFFIX}"
