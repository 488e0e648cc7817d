"""UniAD-style detector (You et al.): a transformer reconstructs frozen CNN features.

Features: EfficientNet-b4 stages 1-4 (24 + 32 + 56 + 160 = 272 channels), each resized to the
stride-16 grid (image_size/16) and concatenated, as in MIAD's UniAD setting. A linear
projection to ``hidden_dim``, a learned positional embedding, a transformer encoder and a
decoder driven by learned per-layer queries ("layer-wise query decoder") reconstruct the
features; neighbourhood-masked attention (each token may not attend to the ``neighbor_size``²
tokens around it, itself included) and feature jittering (Gaussian noise of standard deviation
``jitter_scale``·‖f‖/C on the encoder input) stop the model from copying its input. Loss: MSE
between features and their reconstruction; anomaly map: the per-position L2 norm of the
difference, upsampled to the image; image score: the maximum of that map.

Simplifications against the paper's code, for size: sine positional embeddings are replaced by
learned ones, and the map is not average-pooled before the maximum. Training uses AdamW
(lr 1e-4, weight decay 1e-4, ×0.1 after 80% of the epochs: MIAD's 500 epochs with the step at
400), batch 8, on features computed once (the backbone is frozen and there is no image augmentation).
Training-set scores are in-sample (``TorchDetector.train_scores``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mkdata.benchmark.detectors.nets import FeatureExtractor, backbone_from_params
from mkdata.benchmark.detectors.registry import register
from mkdata.benchmark.detectors.torch_detector import BackboneParams, TorchDetector
from mkdata.benchmark.detectors.torch_training import TrainSpec, batched, train

_STRIDE = 16


@dataclass
class UniADParams(BackboneParams):
    image_size: int = 224
    epochs: int = 500
    batch_size: int = 8  # UniAD's per-GPU batch (8 GPUs in the paper); 64 needs ~6 GiB more on a CPU
    lr: float = 1e-4
    weight_decay: float = 1e-4
    backbone: str = "efficientnet_b4"
    hidden_dim: int = 256
    heads: int = 8
    encoder_layers: int = 4
    decoder_layers: int = 4
    feedforward_dim: int = 1024
    neighbor_size: int = 7  # 0 disables the neighbourhood mask
    jitter_scale: float = 20.0
    jitter_prob: float = 1.0


def neighbour_mask(grid: int, size: int) -> torch.Tensor:
    """(grid², grid²) boolean attention mask: True where key j lies in query i's size×size neighbourhood."""
    yy, xx = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    y, x = yy.flatten(), xx.flatten()
    half = size // 2
    return ((y[:, None] - y[None, :]).abs() <= half) & ((x[:, None] - x[None, :]).abs() <= half) & (size > 0)


class FeatureReconstructor(nn.Module):
    """Transformer encoder + layer-wise-query decoder over a grid of feature tokens."""

    def __init__(self, channels: int, grid: int, p: UniADParams) -> None:
        super().__init__()
        tokens = grid * grid
        self.project_in = nn.Linear(channels, p.hidden_dim)
        self.project_out = nn.Linear(p.hidden_dim, channels)
        self.position = nn.Parameter(torch.randn(1, tokens, p.hidden_dim) * 0.02)
        self.queries = nn.Parameter(torch.randn(p.decoder_layers, 1, tokens, p.hidden_dim) * 0.02)

        def layer(cls: type) -> nn.Module:
            return cls(p.hidden_dim, p.heads, p.feedforward_dim, dropout=0.1, batch_first=True)

        self.encoder = nn.ModuleList(layer(nn.TransformerEncoderLayer) for _ in range(p.encoder_layers))
        self.decoder = nn.ModuleList(layer(nn.TransformerDecoderLayer) for _ in range(p.decoder_layers))
        self.register_buffer("mask", neighbour_mask(grid, p.neighbor_size), persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        memory = self.project_in(tokens) + self.position
        for block in self.encoder:
            memory = block(memory, src_mask=self.mask)
        out = torch.zeros_like(memory)
        for query, block in zip(self.queries, self.decoder):
            out = block(out + query, memory + self.position, memory_mask=self.mask)
        return self.project_out(out)


class UniADModel(nn.Module):
    def __init__(self, extractor: FeatureExtractor, channels: int, grid: int, p: UniADParams) -> None:
        super().__init__()
        self.extractor = extractor
        self.grid = grid
        self.reconstructor = FeatureReconstructor(channels, grid, p)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) images → (B, grid², C) tokens."""
        size = (self.grid, self.grid)
        maps = [F.interpolate(f, size=size, mode="bilinear", align_corners=False) for f in self.extractor(x)]
        return torch.cat(maps, 1).flatten(2).transpose(1, 2)


@register
class UniAD(TorchDetector):
    name = "unified_ad"
    description = "UniAD-style transformer reconstruction of EfficientNet-b4 features; map = feature L2 error"
    Params = UniADParams
    yields_map = True
    needs_weights = True

    def __init__(self, params: UniADParams) -> None:
        super().__init__(params)
        grid = params.image_size // _STRIDE
        if params.image_size % _STRIDE or grid < 2:
            raise ValueError(
                f"image_size must be a multiple of {_STRIDE} and at least {2 * _STRIDE}, got {params.image_size}"
            )
        if not 0 <= params.neighbor_size < grid:
            raise ValueError(f"neighbor_size must be in 0..{grid - 1} for a {grid}×{grid} feature grid")
        if params.hidden_dim % params.heads:
            raise ValueError(f"hidden_dim {params.hidden_dim} is not divisible by heads {params.heads}")

    def train_spec(self) -> TrainSpec:
        p = self.params
        return TrainSpec(
            p.epochs, p.batch_size, p.lr, p.weight_decay, optimizer="adamw", milestones=(int(0.8 * p.epochs),)
        )

    def _build(self, fresh: bool) -> nn.Module:
        p = self.params
        extractor = backbone_from_params(p, fresh)
        with torch.no_grad():
            channels = sum(f.shape[1] for f in extractor(torch.zeros(1, 3, p.image_size, p.image_size)))
        return UniADModel(extractor, channels, p.image_size // _STRIDE, p)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        return batched(self.model.features, x, self.params.batch_size, self.device)

    def _loss(self, tokens: torch.Tensor) -> torch.Tensor:
        p = self.params
        noisy = tokens
        if torch.rand(()) < p.jitter_prob:
            scale = tokens.norm(dim=2, keepdim=True) / tokens.shape[2] * p.jitter_scale
            noisy = tokens + torch.randn_like(tokens) * scale
        return F.mse_loss(self.model.reconstructor(noisy), tokens)

    def _train(self, x: torch.Tensor) -> None:
        train(self.model.reconstructor, self._features(x), self._loss, self.train_spec(), self.device)

    def _score(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self._features(x)
        recon = batched(self.model.reconstructor, tokens, self.params.batch_size, self.device)
        grid = self.model.grid
        maps = (tokens - recon).norm(dim=2).view(len(x), grid, grid)
        return maps.flatten(1).amax(1), maps
