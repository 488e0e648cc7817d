"""IAAE: the interpretability-aware autoencoder (Jiang, Xue, Zou).

Network: the 20-layer conv autoencoder of the paper's Table 3 (``nets.ConvAutoencoder`` with
batch norm on layers 1-6 and 11-16). The table's spatial sizes are inconsistent (layer 1 is
listed as 256²→64² with kernel 4 / stride 2 / padding 1, and layer 10's 8×8 kernel is applied to
a 4² map); this implementation keeps every kernel, stride, padding and channel count of the
table and lets the sizes follow from them: 256→128→64→32 (layers 1-3), 32 (4), 16 (5, 6),
8 (7-9), 1×1×100 (10), mirrored by the decoder. At other ``image_size`` values the stride-2 stem
has log2(size/32) layers; layers are numbered as in the 256² table counted back from the latent
(layer 10), so ``gradcam_layer=9`` is always the layer just before the latent convolution.

Training loss: (1 − SSIM) + MSE + λ·μ², μ = per-image mean of the Grad-CAM maps of every latent
entry w.r.t. encoder layer ``gradcam_layer`` (bilinearly upsampled to image_size²), averaged
over the batch.

Test: x̄ = mean training image; d = exp((x̄ − y)^p) elementwise (p = 9: an odd power keeps the
sign, so darker and brighter deviations push d below / above 1); d is standardised by its own
mean and (n−1) standard deviation per image, encoded, and the Grad-CAM of the latent w.r.t. the
same layer, upsampled to image_size², is the anomaly map (IAAM); the image score is its sum.
Numeric safeguards: images are in [0, 1], so |x̄ − y| ≤ 1 and (x̄ − y)^p ∈ [−1, 1] never
overflows; exp is evaluated as expm1 (standardisation removes the constant 1), which keeps the
tiny values of small differences to the 9th power from rounding to exactly 1 in float32; a
standard deviation of 0 (an image equal to x̄) gives an all-zero d instead of NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mkdata.benchmark.detectors.autoencoders import AEParams
from mkdata.benchmark.detectors.nets import ConvAutoencoder, latent_gradcam, stem_layers
from mkdata.benchmark.detectors.registry import register
from mkdata.benchmark.detectors.ssim import ssim_loss
from mkdata.benchmark.detectors.torch_detector import TorchDetector
from mkdata.benchmark.detectors.torch_training import batched, train

_TABLE_LATENT_LAYER = 10  # the latent convolution's number in the 256² table


@dataclass
class IAAEParams(AEParams):
    epochs: int = 400
    attention_weight: float = 1.0  # λ
    gradcam_layer: int = 9
    power: int = 9  # p
    ssim_window: int = 11


def exp_difference(y: torch.Tensor, mean_image: torch.Tensor, power: int) -> torch.Tensor:
    """Standardised exp((x̄ − y)^p) per image (see the module docstring for the safeguards)."""
    d = torch.expm1((mean_image - y).pow(power))
    flat = d.flatten(1)
    centred = flat - flat.mean(1, keepdim=True)
    std = flat.std(1, keepdim=True)
    return (centred / std.clamp_min(torch.finfo(d.dtype).tiny)).view_as(d)


@register
class IAAE(TorchDetector):
    name = "iaae"
    description = "Interpretability-aware AE: Grad-CAM attention of the latent code is the anomaly map (IAAE)"
    Params = IAAEParams
    yields_map = True

    def __init__(self, params: IAAEParams) -> None:
        super().__init__(params)
        n_encoder = stem_layers(params.image_size) + 7
        first = _TABLE_LATENT_LAYER - n_encoder + 1
        if not first <= params.gradcam_layer < _TABLE_LATENT_LAYER:
            raise ValueError(
                f"gradcam_layer must be in {first}..{_TABLE_LATENT_LAYER - 1} at image_size {params.image_size}, "
                f"got {params.gradcam_layer}"
            )
        if params.power < 1:
            raise ValueError(f"power must be a positive integer, got {params.power}")
        # index into model.encoder (1-based) of the table's layer
        self._layer = params.gradcam_layer - first + 1

    def _build(self, fresh: bool) -> nn.Module:
        size = self.params.image_size
        net = ConvAutoencoder(size, self.params.latent_dim, batch_norm=True)
        net.register_buffer("mean_image", torch.zeros(1, 3, size, size))
        return net

    def _attention(self, x: torch.Tensor, create_graph: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Grad-CAM map upsampled to image_size² (B, S, S), and the latent code."""
        cam, z = latent_gradcam(self.model, x, self._layer, create_graph=create_graph)
        size = (self.params.image_size,) * 2
        return F.interpolate(cam[:, None], size=size, mode="bilinear", align_corners=False)[:, 0], z

    def _loss(self, x: torch.Tensor) -> torch.Tensor:
        cam, z = self._attention(x, create_graph=True)
        recon = self.model.decoder(z)
        mu = cam.flatten(1).mean(1)
        p = self.params
        return ssim_loss(recon, x, p.ssim_window) + F.mse_loss(recon, x) + p.attention_weight * mu.pow(2).mean()

    def _train(self, x: torch.Tensor) -> None:
        self.model.mean_image.copy_(x.mean(0, keepdim=True))
        train(self.model, x, self._loss, self.train_spec(), self.device)

    def attention_maps(self, x: torch.Tensor) -> torch.Tensor:
        """IAAM (N, S, S) of N×3×S×S images in [0, 1] (CPU tensor in, CPU tensor out)."""

        def iaam(batch: torch.Tensor) -> torch.Tensor:
            d = exp_difference(batch, self.model.mean_image, self.params.power)
            return self._attention(d, create_graph=False)[0]

        return batched(iaam, x, self.params.batch_size, self.device, grad=True)

    def _score(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps = self.attention_maps(x)
        return maps.flatten(1).sum(1), maps
