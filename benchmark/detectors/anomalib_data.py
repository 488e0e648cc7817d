"""Training images as anomalib batches: an in-memory Lightning datamodule with even batch sizes."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from anomalib.data import ImageBatch
from lightning import LightningDataModule
from torch.utils.data import DataLoader, Sampler


class EvenBatches(Sampler[list[int]]):
    """Batches of at most ``batch_size`` images and near-equal sizes, so that no batch holds a lone
    image (batch norm cannot train on one) and no image is dropped (memory banks need them all)."""

    def __init__(self, count: int, batch_size: int, shuffle: bool) -> None:
        self.count, self.batch_size, self.shuffle = count, batch_size, shuffle

    def __len__(self) -> int:
        return math.ceil(self.count / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(self.count) if self.shuffle else torch.arange(self.count)
        return (chunk.tolist() for chunk in torch.tensor_split(order, len(self)))


class ArrayDataModule(LightningDataModule):
    """Training images (N×3×S×S float tensor in [0, 1]) as anomalib ``ImageBatch``es.

    Some anomalib models read ``trainer.datamodule`` (its train loader, batch size, name); the
    validation loader serves the training images again, for models that calibrate on normal data.
    """

    name = "mkdata"
    category = ""

    def __init__(self, images: torch.Tensor, batch_size: int) -> None:
        super().__init__()
        self.images = images
        self.train_batch_size = min(batch_size, len(images))

    def _loader(self, shuffle: bool) -> DataLoader:
        batches = EvenBatches(len(self.images), self.train_batch_size, shuffle)
        return DataLoader(self.images, batch_sampler=batches, collate_fn=_collate)

    def train_dataloader(self) -> DataLoader:
        return self._loader(shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(shuffle=False)


def _collate(images: list[torch.Tensor]) -> ImageBatch:
    return ImageBatch(image=torch.stack(images), gt_label=torch.zeros(len(images), dtype=torch.bool))


def to_tensor(images: np.ndarray, size: int) -> torch.Tensor:
    """N×H×W×3 uint8 → N×3×size×size float in [0, 1] (antialiased bilinear, as anomalib's Resize)."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().float().div_(255.0)  # NCHW memory layout
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True).clamp_(0, 1)
