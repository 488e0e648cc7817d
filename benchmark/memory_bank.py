"""A patch-feature bank of known size, filled chunk by chunk, in half precision.

It lives in RAM while it fits ``ram_budget`` bytes; a larger one is written to a file on disk as
the chunks arrive (plain sequential writes, so the written pages stay out of the process's RSS)
and read back memory-mapped, so that ``take`` touches only the rows it gathers.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

DTYPE = np.float16


class MemoryBank:
    """``rows × dim`` float16 features, appended in order, then gathered by index."""

    def __init__(self, rows: int, dim: int, ram_budget: int, directory: str | Path | None = None) -> None:
        self.shape = (rows, dim)
        self.filled = 0
        self.on_disk = rows * dim * np.dtype(DTYPE).itemsize > ram_budget
        self._folder = tempfile.TemporaryDirectory(prefix="mkdata-bank-", dir=directory) if self.on_disk else None
        self.path = Path(self._folder.name) / "bank.f16" if self._folder else None
        self._file = self.path.open("wb") if self.path else None
        self._array: np.ndarray | None = None if self.on_disk else np.empty(self.shape, DTYPE)

    def append(self, chunk: torch.Tensor) -> None:
        """Add the next ``len(chunk)`` rows (any float dtype and device)."""
        if chunk.shape[1] != self.shape[1] or self.filled + len(chunk) > self.shape[0]:
            raise ValueError(f"chunk of shape {tuple(chunk.shape)} does not fit a bank of {self.shape} holding {self.filled}")
        values = chunk.detach().to("cpu", torch.float16).numpy()
        if self._file is not None:
            self._file.write(values.tobytes())
        else:
            self._array[self.filled : self.filled + len(values)] = values
        self.filled += len(values)

    def _rows(self) -> np.ndarray:
        if self.filled != self.shape[0]:
            raise RuntimeError(f"the bank holds {self.filled} of its {self.shape[0]} rows")
        if self._array is None:
            self._file.close()
            self._array = np.memmap(self.path, DTYPE, mode="r", shape=self.shape)
        return self._array

    def take(self, indices: torch.Tensor) -> torch.Tensor:
        """The rows at ``indices`` as a float32 CPU tensor (read in sorted order, returned in the given one)."""
        order = indices.cpu().numpy()
        unique, inverse = np.unique(order, return_inverse=True)
        return torch.from_numpy(np.asarray(self._rows()[unique], np.float32)[inverse])

    def close(self) -> None:
        """Drop the rows and delete the file, if any."""
        self._array = None
        if self._file is not None:
            self._file.close()
        if self._folder is not None:
            self._folder.cleanup()
