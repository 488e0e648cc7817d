"""The one training loop (and the tensor plumbing) shared by this package's own torch detectors.

Every torch detector here trains through ``train``: seeded shuffled mini-batches, Adam or AdamW,
a fixed number of epochs, optional step-wise learning-rate decay, and a loss callable that holds
whatever the method needs (reconstruction terms, KL, attention penalties, flow likelihoods).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import kornia
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mkdata.benchmark.detectors.base import resolve_device


@dataclass(frozen=True)
class TrainSpec:
    """Optimisation settings of one training run."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 0.0
    optimizer: str = "adam"  # "adam" or "adamw"
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    milestones: tuple[int, ...] = ()  # epochs after which the learning rate is multiplied by gamma
    gamma: float = 0.1

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError(f"epochs, batch_size and lr must be positive, got {self}")
        if self.optimizer not in ("adam", "adamw"):
            raise ValueError(f"optimizer must be 'adam' or 'adamw', got {self.optimizer!r}")


def torch_device(name: str) -> torch.device:
    """'auto' → cuda when available, else cpu; a cuda device without a GPU is a ValueError."""
    device = torch.device(resolve_device(name))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but torch sees no CUDA GPU")
    return device


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's global RNGs (CPU, and the device's if CUDA) inside the block, restoring them after."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield


def to_tensor(images: np.ndarray, size: int) -> torch.Tensor:
    """N×H×W×3 uint8 → N×3×size×size float32 in [0, 1] on the CPU (antialiased bilinear resize)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp_(0, 1)
    return x


def to_image_resolution(maps: torch.Tensor, shape: tuple[int, int]) -> np.ndarray:
    """N×h×w maps → N×H×W float32 numpy (bilinear)."""
    if maps.shape[-2:] != tuple(shape):
        maps = F.interpolate(maps[:, None].float(), size=tuple(shape), mode="bilinear", align_corners=False)[:, 0]
    return maps.float().cpu().numpy()


def smooth_maps(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """N×h×w maps blurred by a Gaussian of ``sigma`` pixels (kernel ±4σ; ``sigma=0`` returns them as is)."""
    if sigma == 0:
        return maps
    size = 2 * int(4 * sigma + 0.5) + 1
    return kornia.filters.gaussian_blur2d(maps[:, None], (size, size), (sigma, sigma))[:, 0]


def train(
    module: nn.Module,
    data: torch.Tensor,
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    spec: TrainSpec,
    device: torch.device,
) -> list[float]:
    """Minimise ``loss_fn(batch)`` over the trainable parameters of ``module``; returns per-epoch mean losses.

    ``data`` (N, ...) stays on the CPU; each shuffled batch is moved to ``device``. A trailing
    batch of a single sample is dropped when N > 1 (batch norm cannot train on one sample).
    Randomness (init, shuffling, augmentations inside ``loss_fn``) comes from torch's global RNG,
    which callers seed with ``seeded``. ``module`` is left in eval mode.
    """
    params = [p for p in module.parameters() if p.requires_grad]
    optimiser_cls = torch.optim.AdamW if spec.optimizer == "adamw" else torch.optim.Adam
    optimiser = optimiser_cls(params, lr=spec.lr, betas=spec.betas, eps=spec.eps, weight_decay=spec.weight_decay)
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimiser, list(spec.milestones), spec.gamma)
    n = len(data)
    batch_size = min(spec.batch_size, n)
    history = []
    module.train()
    for _ in range(spec.epochs):
        order = torch.randperm(n)
        total, count = 0.0, 0
        for start in range(0, n, batch_size):
            index = order[start : start + batch_size]
            if len(index) == 1 and n > 1:
                continue
            loss = loss_fn(data[index].to(device, non_blocking=True))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(index)
            count += len(index)
        schedule.step()
        history.append(total / max(count, 1))
    module.eval()
    return history


def batched(
    fn: Callable[[torch.Tensor], torch.Tensor | tuple[torch.Tensor, ...]],
    data: torch.Tensor,
    batch_size: int,
    device: torch.device,
    grad: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """Apply ``fn`` to ``data`` in batches on ``device``; outputs (a tensor or a tuple of tensors)
    are concatenated on the CPU.

    ``grad=True`` keeps autograd on (for gradient-based maps); results are detached either way.
    """
    outputs = []
    with torch.set_grad_enabled(grad):
        for start in range(0, len(data), batch_size):
            out = fn(data[start : start + batch_size].to(device))
            outputs.append(tuple(o.detach().cpu() for o in out) if isinstance(out, tuple) else out.detach().cpu())
    if isinstance(outputs[0], tuple):
        return tuple(torch.cat(parts) for parts in zip(*outputs))
    return torch.cat(outputs)
