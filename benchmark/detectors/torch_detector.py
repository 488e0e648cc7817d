"""Base class of this package's own torch detectors: device, seeding, state_dict save/load.

Subclasses build one ``nn.Module`` (network plus any fitted statistics as buffers), train it with
``torch_training.train`` and score tensors; images → tensors and maps → image resolution happen
here, once.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mkdata.benchmark.detectors.base import CommonParams, Detector, Prediction
from mkdata.benchmark.detectors.nets import backbone_locations
from mkdata.benchmark.detectors.torch_training import TrainSpec, seeded, to_image_resolution, to_tensor, torch_device
from mkdata.benchmark.detectors.weights import Location


@dataclass
class TorchParams(CommonParams):
    """Optimisation parameters shared by the torch detectors (subclasses set paper defaults)."""

    epochs: int = 100
    batch_size: int = 16
    lr: float = 1e-4
    weight_decay: float = 0.0


@dataclass
class BackboneParams(TorchParams):
    """``TorchParams`` plus a frozen CNN backbone (``nets.backbone_from_params`` builds it)."""

    backbone: str = "resnet18"
    pretrained: bool = True  # the backbone's ImageNet weights (False: random initialisation)
    weights: str | None = None  # local state-dict file for the backbone (wins over pretrained)


class TorchDetector(Detector):
    """fit: build the module under the detector's seed and train it; predict: score tensors."""

    train_scoring = "in_sample"  # honest for reconstruction models and flows

    Params = TorchParams

    def __init__(self, params: TorchParams) -> None:
        super().__init__(params)
        self.model: nn.Module | None = None
        self.train_spec()  # validates the optimisation parameters early

    @property
    def device(self) -> torch.device:
        return torch_device(self.params.device)

    def weight_locations(self) -> list[Location]:
        """Where the pretrained backbone's weights would come from (none for detectors without one)."""
        return backbone_locations(self.params) if isinstance(self.params, BackboneParams) else []

    def train_spec(self) -> TrainSpec:
        """Optimisation settings from the parameters (subclasses add optimiser details)."""
        p = self.params
        return TrainSpec(epochs=p.epochs, batch_size=p.batch_size, lr=p.lr, weight_decay=p.weight_decay)

    # -- Detector hooks ---------------------------------------------------------------------
    def _fit(self, images: np.ndarray) -> None:
        device = self.device
        x = to_tensor(images, self.params.image_size)
        with seeded(self.params.seed, device):
            self.model = self._build(fresh=True).to(device)
            self._train(x)
        self.model.eval()

    def _predict(self, images: np.ndarray) -> Prediction:
        x = to_tensor(images, self.params.image_size)
        with seeded(self.params.seed, self.device):
            scores, maps = self._score(x)
        return Prediction(
            scores.double().numpy(), None if maps is None else to_image_resolution(maps, images.shape[1:3])
        )

    def _save_state(self, path: Path) -> None:
        torch.save(self.model.state_dict(), path / "model.pt")

    def _load_state(self, path: Path) -> None:
        self.model = self._build(fresh=False).to(self.device)
        state = torch.load(path / "model.pt", map_location=self.device, weights_only=True)
        self.model.load_state_dict(state)
        self.model.eval()

    # -- subclass hooks ---------------------------------------------------------------------
    @abstractmethod
    def _build(self, fresh: bool) -> nn.Module:
        """The module; ``fresh=False`` when a saved state_dict will overwrite it (skip weight downloads)."""

    @abstractmethod
    def _train(self, x: torch.Tensor) -> None:
        """Train ``self.model`` on N×3×S×S images in [0, 1] (CPU tensor)."""

    @abstractmethod
    def _score(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Scores (N,) and maps (N, h, w) or None, as CPU tensors, for N×3×S×S images."""
