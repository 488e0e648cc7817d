"""Networks shared by this package's own torch detectors.

* ``ConvAutoencoder`` / ``ConvVAE``: the convolutional autoencoder of Bergmann et al. (SSIM-AE
  paper, Table 1), generalised to any power-of-two input size; with batch norm it is also the
  20-layer net of the IAAE paper (Table 3), and with dilated stride-1 encoder layers the
  dilated-VAE of the residual-statistics study.
* ``latent_gradcam``: Grad-CAM of an autoencoder's latent code w.r.t. an encoder layer (IAAE).
* ``FeatureExtractor``: a frozen torchvision backbone returning intermediate feature maps, with
  pretrained ImageNet weights by default, a local weights file, or random initialisation.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor

from mkdata.benchmark.detectors.weights import Location, WeightChoice, torchvision_location

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# The 256² layer table (IAAE Table 3 with Bergmann's channel counts). Each row is
# (out_channels, kernel, stride, padding) of a Conv2d followed by LeakyReLU(0.2).
# The IAAE table lists layer 1 as 256²→64² with kernel 4 / stride 2 / padding 1, which halves
# rather than quarters; taking every kernel, stride and padding literally gives 256→128→64→32
# for layers 1-3 and 8² before layer 10, whose 8×8 kernel then yields the 1×1 latent exactly as
# in Bergmann's net. So spatial sizes are twice the table's from layer 1 on; all kernels,
# strides, paddings and channel counts are the table's.
_STEM = (32, 4, 2, 1)  # repeated stride-2 layer until the map is 32² (3× at 256², IAAE layers 1-3)
_BODY = (
    (32, 3, 1, 1),  # IAAE layer 4
    (64, 4, 2, 1),  # 5: 32² → 16²
    (64, 3, 1, 1),  # 6
    (128, 4, 2, 1),  # 7: 16² → 8²
    (64, 3, 1, 1),  # 8
    (32, 3, 1, 1),  # 9
)
_LATENT_KERNEL = 8  # layer 10: 8² → 1² × latent_dim
_NO_BN_TAIL = 4  # IAAE: batch norm on all but the last four layers of each half (1-6, 11-16 at 256²)


def stem_layers(image_size: int) -> int:
    """Number of leading stride-2 layers that bring ``image_size`` down to 32 (3 at 256²)."""
    if image_size < 32 or image_size & (image_size - 1):
        raise ValueError(f"image_size must be a power of two ≥ 32 for the conv autoencoder, got {image_size}")
    return int(math.log2(image_size // 32))


def _block(conv: nn.Module, out_channels: int, batch_norm: bool, activation: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [conv]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    if activation:
        layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


class ConvAutoencoder(nn.Module):
    """Bergmann et al.'s conv autoencoder, sized for ``image_size`` (a power of two ≥ 32).

    Encoder: ``stem_layers(image_size)`` stride-2 layers to 32², the six layers of ``_BODY``,
    then an 8×8 convolution to a 1×1×``latent_dim`` code. The decoder mirrors it with transposed
    convolutions for the resolution changes; its last layer is linear (no activation), so it
    outputs images in the input's range. ``encoder[i]`` is layer i+1 of the table at 256²; the
    latent convolution is ``encoder[-1]``.
    """

    def __init__(
        self, image_size: int, latent_dim: int = 100, batch_norm: bool = False, dilation: int = 1, latent_heads: int = 1
    ) -> None:
        super().__init__()
        specs = [_STEM] * stem_layers(image_size) + list(_BODY)
        n_enc = len(specs) + 1
        enc: list[nn.Module] = []
        in_ch = 3
        for i, (out_ch, k, s, p) in enumerate(specs):
            d = dilation if s == 1 else 1  # dilate only the resolution-keeping layers
            conv = nn.Conv2d(in_ch, out_ch, k, s, p * d, dilation=d)
            enc.append(_block(conv, out_ch, batch_norm and i < n_enc - _NO_BN_TAIL))
            in_ch = out_ch
        # latent_heads=2 for a VAE: mean and log-variance, no activation
        latent = nn.Conv2d(in_ch, latent_heads * latent_dim, _LATENT_KERNEL)
        enc.append(_block(latent, latent_heads * latent_dim, False, activation=latent_heads == 1))
        self.encoder = nn.Sequential(*enc)

        dec: list[nn.Module] = []
        in_ch = latent_dim
        mirrored = list(reversed(specs))
        outs = [out for out, *_ in mirrored[1:]] + [3]
        dec.append(_block(nn.ConvTranspose2d(in_ch, mirrored[0][0], _LATENT_KERNEL), mirrored[0][0], batch_norm))
        in_ch = mirrored[0][0]
        for i, ((_, k, s, p), out_ch) in enumerate(zip(mirrored, outs)):
            conv = nn.ConvTranspose2d(in_ch, out_ch, k, s, p) if s == 2 else nn.Conv2d(in_ch, out_ch, k, s, p)
            last = i == len(mirrored) - 1
            bn = batch_norm and i + 1 < n_enc - _NO_BN_TAIL
            dec.append(_block(conv, out_ch, bn and not last, activation=not last))
            in_ch = out_ch
        self.decoder = nn.Sequential(*dec)
        self.latent_dim = latent_dim

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encode(x))


class ConvVAE(ConvAutoencoder):
    """The same net as a VAE: the latent layer outputs mean and log-variance (``latent_heads=2``).

    ``dilation=2`` gives the dilated-convolution encoder of the residual-statistics study
    (its stride-1 3×3 encoder layers dilated by 2, receptive field enlarged, sizes unchanged).
    """

    def __init__(self, image_size: int, latent_dim: int = 100, dilation: int = 1) -> None:
        super().__init__(image_size, latent_dim, dilation=dilation, latent_heads=2)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_var = self.encoder(x).chunk(2, dim=1)
        return mean, log_var.clamp(-30.0, 20.0)

    def forward_with_kl(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstruction from a reparameterised sample, and the per-image KL divergence to N(0, I)."""
        mean, log_var = self.posterior(x)
        z = mean + torch.randn_like(mean) * (0.5 * log_var).exp()
        kl = 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).flatten(1).sum(1)
        return self.decoder(z), kl

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean (deterministic; used for reconstruction at test time)."""
        return self.posterior(x)[0]


def latent_gradcam(
    model: ConvAutoencoder, x: torch.Tensor, layer: int, create_graph: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Grad-CAM of the latent code w.r.t. encoder layer ``layer`` (1-based index into ``model.encoder``).

    For every latent entry z_i: weights α_ic = spatial mean of ∂z_i/∂A_c, map_i = ReLU(Σ_c α_ic A_c).
    Returns the mean over i of the maps, shape (B, h, w) at the layer's resolution (bilinear
    upsampling is linear, so upsampling this mean equals the mean of the upsampled maps), and the
    latent code z (B, d, 1, 1) of the same forward pass. ``create_graph=True`` keeps the graph so
    the map can be trained on.

    The activation A is captured with a forward hook. The d gradients come from one backward
    pass: the layers after ``layer`` are re-run on A replicated d times (copy k feeds only z_k),
    one large batched convolution instead of d backward passes (``is_grads_batched`` falls back
    to a per-entry loop for CPU convolutions; IAAE's test fit took 65 s with it, 36 s like this).
    Batch norm in the re-run layers (only for layers before 7 at 256²) sees the same batch
    statistics, but its running statistics get a second update per step.
    """
    captured: list[torch.Tensor] = []
    handle = model.encoder[layer - 1].register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        code = model.encode(x)
    finally:
        handle.remove()
    activation = captured[0]
    d, b = model.latent_dim, len(x)
    replicated = activation.unsqueeze(0).expand(d, *activation.shape).reshape(d * b, *activation.shape[1:])
    z = model.encoder[layer:](replicated)[:, :d].reshape(d, b, d)  # VAE heads: mean only
    own = z.diagonal(dim1=0, dim2=2)  # (b, d): copy k's z_k
    (grads,) = torch.autograd.grad(own.sum(), replicated, create_graph=create_graph)
    alpha = grads.reshape(d, b, *activation.shape[1:]).mean(dim=(3, 4))  # (d, B, C)
    return F.relu(torch.einsum("dbc,bchw->dbhw", alpha, activation)).mean(0), code


# Feature nodes (torchvision graph names) per supported backbone.
BACKBONE_NODES: dict[str, tuple[str, ...]] = {
    "alexnet": ("features.12",),  # DifferNet: AlexNet's whole conv trunk, 256 channels
    "efficientnet_b4": ("features.1", "features.2", "features.3", "features.5"),  # UniAD: 24+32+56+160 = 272
    "resnet18": ("layer1", "layer2", "layer3"),
    "wide_resnet50_2": ("layer1", "layer2", "layer3"),
}


def _pretrained_location(name: str) -> Location:
    return torchvision_location(torchvision.models.get_model_weights(name).DEFAULT)


def load_backbone(name: str, pretrained: bool, weights: str | None) -> nn.Module:
    """A torchvision classification model with the weights ``weights.WeightChoice`` picks.

    ``weights`` (a path) wins over ``pretrained``; ``pretrained=True`` reads torch's cache or
    downloads, and without internet and without the file in the cache fails at once with a
    ``MissingWeightsError`` saying how to supply it; ``pretrained=False`` is random initialisation.
    """
    if name not in BACKBONE_NODES:
        raise ValueError(f"unknown backbone {name!r}; supported: {', '.join(sorted(BACKBONE_NODES))}")
    model = torchvision.models.get_model(name, weights=None)
    file = WeightChoice(pretrained, weights).file(lambda: _pretrained_location(name))
    if file is not None:
        model.load_state_dict(torch.load(file, map_location="cpu", weights_only=True))
    return model


class FeatureExtractor(nn.Module):
    """Frozen backbone → list of feature maps at the nodes of ``BACKBONE_NODES[name]``.

    Input: images in [0, 1]; ImageNet normalisation happens inside. Always in eval mode.
    """

    def __init__(self, name: str, pretrained: bool = True, weights: str | None = None) -> None:
        super().__init__()
        model = load_backbone(name, pretrained, weights)
        nodes = BACKBONE_NODES[name]
        self.body = create_feature_extractor(model, {node: node for node in nodes})
        self.nodes = nodes
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "FeatureExtractor":
        return super().train(False)  # frozen: batch-norm statistics never change

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = self.body((x - self.mean) / self.std)
        return [out[node] for node in self.nodes]


def backbone_from_params(params: Any, fresh: bool = True) -> FeatureExtractor:
    """The ``FeatureExtractor`` a detector's ``backbone`` / ``pretrained`` / ``weights`` parameters ask for.

    ``fresh=False`` (a saved state_dict will overwrite the weights) skips loading any weights.
    """
    return FeatureExtractor(params.backbone, params.pretrained and fresh, params.weights if fresh else None)


def backbone_locations(params: Any) -> list[Location]:
    """Where ``backbone_from_params(params)`` would take the backbone's weights from (nothing is loaded)."""
    return [WeightChoice(params.pretrained, params.weights).source(lambda: _pretrained_location(params.backbone))]
