"""Features of known size, filled chunk by chunk, then read back by index or in row ranges.

A bank lives in memory (RAM, or a device's memory) while it fits its budget in bytes; a larger one
is written to a file on disk as the chunks arrive and read back with plain reads: ``take`` one
read per row it gathers, ``rows`` one read of a row range into a reused buffer. The file's pages
stay in the system's page cache, not in the process's RSS, however often it is scanned (a memory
map would not do: gathering 512 rows of a 297 MiB bank through one mapped 216 MiB of it).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch


class MemoryBank:
    """``rows × dim`` features of one dtype (float16 unless told), appended in order."""

    def __init__(self, rows: int, dim: int, budget: float, directory: str | Path | None = None,
                 dtype: torch.dtype = torch.float16, device: torch.device | str = "cpu") -> None:  # fmt: skip
        self.shape = (rows, dim)
        self.dtype = dtype
        self.filled = 0
        self.on_disk = rows * dim * dtype.itemsize > budget
        self._folder = tempfile.TemporaryDirectory(prefix="mkdata-bank-", dir=directory) if self.on_disk else None
        self.path = Path(self._folder.name) / "bank.bin" if self._folder else None
        self._file = self.path.open("wb") if self.path else None
        self._tensor = None if self.on_disk else torch.empty(self.shape, dtype=dtype, device=device)
        self._buffer: torch.Tensor | None = None  # rows read from the file by rows()

    def append(self, chunk: torch.Tensor) -> None:
        """Add the next ``len(chunk)`` rows (any float dtype and device)."""
        if chunk.shape[1] != self.shape[1] or self.filled + len(chunk) > self.shape[0]:
            raise ValueError(f"chunk of shape {tuple(chunk.shape)} does not fit a bank of {self.shape} holding {self.filled}")
        if self._file is not None:
            self._file.write(chunk.detach().to("cpu", self.dtype).numpy().tobytes())
        else:
            self._tensor[self.filled : self.filled + len(chunk)] = chunk.detach()
        self.filled += len(chunk)

    def _complete(self) -> None:
        """Raise unless every row is in; from then on the file is read, not written."""
        if self.filled != self.shape[0]:
            raise RuntimeError(f"the bank holds {self.filled} of its {self.shape[0]} rows")
        if self._file is not None and self._file.writable():
            self._file.close()
            self._file = self.path.open("rb", buffering=0)

    def _read(self, begin: int, out: np.ndarray) -> None:
        """Fill ``out`` with the rows from ``begin`` on, from the file."""
        self._file.seek(begin * self.shape[1] * self.dtype.itemsize)
        if self._file.readinto(out.data.cast("B")) != out.nbytes:
            raise OSError(f"{self.path}: short read of {len(out)} rows from row {begin}")

    def tensor(self) -> torch.Tensor:
        """The whole bank, in memory (not a copy); a RuntimeError when it is on disk."""
        self._complete()
        if self._tensor is None:
            raise RuntimeError(f"the bank is on disk ({self.path}); read it with rows() or take()")
        return self._tensor

    def rows(self, begin: int, end: int) -> torch.Tensor:
        """Rows ``begin:end`` in the bank's dtype: a view of the bank in memory, or read from disk into
        a buffer that the next call overwrites."""
        self._complete()
        if self._tensor is not None:
            return self._tensor[begin:end]
        count = max(0, min(end, self.shape[0]) - begin)
        if self._buffer is None or len(self._buffer) < count:
            self._buffer = torch.empty((count, self.shape[1]), dtype=self.dtype)
        out = self._buffer[:count]
        self._read(begin, out.numpy())
        return out

    def take(self, indices: torch.Tensor) -> torch.Tensor:
        """The rows at ``indices`` as a float32 CPU tensor (from disk read in sorted order, returned in the given one)."""
        self._complete()
        if self._tensor is not None:
            return self._tensor[indices.to(self._tensor.device)].to("cpu", torch.float32)
        unique, inverse = np.unique(indices.cpu().numpy(), return_inverse=True)
        rows = torch.empty((len(unique), self.shape[1]), dtype=self.dtype).numpy()
        for row, index in zip(rows, unique.tolist()):
            self._read(index, row)
        return torch.from_numpy(rows.astype(np.float32)[inverse])

    def close(self) -> None:
        """Drop the rows and delete the file, if any."""
        self._tensor = self._buffer = None
        if self._file is not None:
            self._file.close()
        if self._folder is not None:
            self._folder.cleanup()
