"""Crash-safe file writes: write to a temporary name in the same folder, then rename."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image


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
