"""Autoencoder detectors of the seed papers, all on one reconstruction base.

``ReconstructionDetector``: fit = train the conv autoencoder (``nets.ConvAutoencoder``) with the
shared loop; predict = reconstruct, compare input and reconstruction, score. The detectors differ
only in their loss and their comparison:

* ``ae_l2`` / ``ae_ssim`` (Bergmann et al.): L2 / SSIM loss; map = squared residual / 1 − SSIM;
  image score = max of the map (MIAD's convention).
* ``ae_msssim4`` (dual-mode paper, mode 1): MSE training; score = 1 − four-component
  multi-scale SSIM (Li & Bovik), optionally inside an edge-attention ROI.
* ``ae_mahalanobis`` (dual-mode paper, mode 2): Mahalanobis distance of a random subset of
  encoder-layer-2 features to their training Gaussian (Ledoit-Wolf shrinkage covariance).
* ``ae_residual_stats``, ``vae_residual_stats``, ``dilated_vae_residual_stats`` (comparative
  study): a statistic of the residual image, chosen by ``criterion``.

Unknown training details are Bergmann's: Adam, lr 2e-4, weight decay 1e-5, batch 128, latent 100;
100 epochs (MIAD's AE baseline). Inputs are RGB in [0, 1] at ``image_size``².
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.covariance import LedoitWolf
from torch import nn

from mkdata.benchmark.detectors.nets import ConvAutoencoder, ConvVAE, stem_layers
from mkdata.benchmark.detectors.registry import register
from mkdata.benchmark.detectors.ssim import (
    REGIONS,
    content_regions,
    edge_attention_mask,
    four_component_pool,
    grey,
    ms_ssim_map,
    scale_weights,
    ssim_loss,
    ssim_map,
)
from mkdata.benchmark.detectors.torch_detector import TorchDetector, TorchParams
from mkdata.benchmark.detectors.torch_training import batched, smooth_maps, to_tensor, train

Scores = tuple[torch.Tensor, torch.Tensor | None]


@dataclass
class AEParams(TorchParams):
    epochs: int = 100
    batch_size: int = 128
    lr: float = 2e-4
    weight_decay: float = 1e-5
    latent_dim: int = 100


class AutoencoderDetector(TorchDetector):
    """Shared fit: train the conv autoencoder with ``_loss`` (MSE unless overridden)."""

    Params = AEParams

    def __init__(self, params: AEParams) -> None:
        super().__init__(params)
        stem_layers(params.image_size)  # ValueError unless a power of two ≥ 32

    def _build(self, fresh: bool) -> nn.Module:
        return ConvAutoencoder(self.params.image_size, self.params.latent_dim)

    def _loss(self, x: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(self.model(x), x)

    def _train(self, x: torch.Tensor) -> None:
        train(self.model, x, self._loss, self.train_spec(), self.device)


@dataclass
class ReconstructionParams(AEParams):
    map_sigma: float = 4.0  # Gaussian smoothing of anomaly maps, pixels at image_size (0 = none)


class ReconstructionDetector(AutoencoderDetector):
    """Shared predict: reconstruct, then ``_compare`` input and reconstruction.

    Anomaly maps are smoothed with a Gaussian of ``map_sigma`` pixels (anomalib's post-processing
    convention, σ = 4; the papers do not smooth): single-pixel residual noise of an imperfect
    reconstruction otherwise dominates the max-of-map image score.
    """

    Params = ReconstructionParams
    yields_map = True

    def __init__(self, params: ReconstructionParams) -> None:
        super().__init__(params)
        if params.map_sigma < 0:
            raise ValueError(f"map_sigma must be ≥ 0, got {params.map_sigma}")

    def _smooth(self, maps: torch.Tensor) -> torch.Tensor:
        return smooth_maps(maps, self.params.map_sigma)

    def reconstruct(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The inputs as the model sees them and their reconstructions, both (N, 3, S, S) float32."""
        x = to_tensor(images, self.params.image_size)
        return x.numpy(), batched(self.model, x, self.params.batch_size, self.device).numpy()

    def _score(self, x: torch.Tensor) -> Scores:
        return batched(lambda b: self._compare(b, self.model(b)), x, self.params.batch_size, self.device)

    @abstractmethod
    def _compare(self, x: torch.Tensor, recon: torch.Tensor) -> Scores:
        """Scores (N,) and maps (N, S, S) from inputs and reconstructions."""


def _max_of(maps: torch.Tensor) -> Scores:
    return maps.flatten(1).amax(1), maps


@register
class AEL2(ReconstructionDetector):
    name = "ae_l2"
    description = "Conv autoencoder, L2 loss (Bergmann et al.); map = squared residual, score = its max"

    def _compare(self, x: torch.Tensor, recon: torch.Tensor) -> Scores:
        return _max_of(self._smooth((x - recon).pow(2).sum(1)))


@dataclass
class SSIMParams(ReconstructionParams):
    ssim_window: int = 11


@register
class AESSIM(ReconstructionDetector):
    name = "ae_ssim"
    description = "Conv autoencoder, SSIM loss (Bergmann et al.); map = 1 − SSIM, score = its max"
    Params = SSIMParams

    def _loss(self, x: torch.Tensor) -> torch.Tensor:
        return ssim_loss(self.model(x), x, self.params.ssim_window)

    def _compare(self, x: torch.Tensor, recon: torch.Tensor) -> Scores:
        return _max_of(self._smooth(1.0 - ssim_map(x, recon, self.params.ssim_window).mean(1)))


@dataclass
class MSSSIM4Params(ReconstructionParams):
    scales: int = 5
    ssim_window: int = 11
    region_weights: tuple[float, float, float, float] = (0.25, 0.25, 0.25, 0.25)  # order of ssim.REGIONS
    attention_roi: bool = False  # restrict scoring to the edge-attention ROI of the mean training image
    roi_dilation: int = 11


@register
class AEMSSSIM4(ReconstructionDetector):
    """Dual-mode paper, mode 1: 1 − four-component multi-scale SSIM between input and reconstruction.

    Computed on luma. Li & Bovik's region weights are a parameter (``region_weights``, in the order
    preserved edge, changed edge, texture, smooth; equal by default). With ``attention_roi`` the
    map and score cover only the dual-mode paper's domain-attention ROI: Sobel edges of the mean
    training image, dilated by ``roi_dilation`` pixels. Thresholds (μ + 2σ, supervised) belong to
    the metrics module.
    """

    name = "ae_msssim4"
    description = "Conv autoencoder scored by four-component multi-scale SSIM (dual-mode paper, mode 1)"
    Params = MSSSIM4Params

    def __init__(self, params: MSSSIM4Params) -> None:
        super().__init__(params)
        scale_weights(params.scales)  # validates the number of scales
        if params.image_size // 2 ** (params.scales - 1) < params.ssim_window:
            raise ValueError(
                f"image_size {params.image_size} is too small for {params.scales} scales "
                f"with window {params.ssim_window}"
            )
        if len(params.region_weights) != len(REGIONS) or min(params.region_weights) < 0:
            raise ValueError(f"region_weights must be {len(REGIONS)} non-negative numbers for {REGIONS}")
        if params.roi_dilation < 1 or params.roi_dilation % 2 == 0:
            raise ValueError(f"roi_dilation must be a positive odd number, got {params.roi_dilation}")

    def _build(self, fresh: bool) -> nn.Module:
        net = super()._build(fresh)
        size = self.params.image_size
        net.register_buffer("roi", torch.ones(size, size, dtype=torch.bool))
        return net

    def _train(self, x: torch.Tensor) -> None:
        super()._train(x)
        if self.params.attention_roi:
            self.model.roi.copy_(edge_attention_mask(grey(x.mean(0, keepdim=True)), self.params.roi_dilation))

    def _compare(self, x: torch.Tensor, recon: torch.Tensor) -> Scores:
        p = self.params
        gx, gr = grey(x), grey(recon)
        quality = ms_ssim_map(gx, gr, p.scales, p.ssim_window)
        roi = self.model.roi
        score = 1.0 - four_component_pool(quality, content_regions(gx, gr), tuple(p.region_weights), roi)
        return score, self._smooth(1.0 - quality) * roi


@dataclass
class MahalanobisParams(AEParams):
    n_features: int = 1000


@register
class AEMahalanobis(AutoencoderDetector):
    """Dual-mode paper, mode 2: the autoencoder's layer-2 activations (flattened C×H×W), a random
    subset of ``n_features`` of them (all if fewer exist; chosen from ``seed``), and the
    Mahalanobis distance to their training Gaussian with Ledoit-Wolf shrinkage covariance.

    Training-set scores use the base k-fold refits: in-sample distances to a Gaussian fitted on
    the same (few, high-dimensional) samples are biased low.
    """

    name = "ae_mahalanobis"
    description = "Mahalanobis distance of random layer-2 autoencoder features (dual-mode paper, mode 2)"
    Params = MahalanobisParams
    yields_map = False
    train_scoring = "out_of_fold"

    def _layer2(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return net.encoder[:2](x).flatten(1)

    def _build(self, fresh: bool) -> nn.Module:
        net = super()._build(fresh)
        size = self.params.image_size
        with torch.no_grad():
            total = self._layer2(net, torch.zeros(1, 3, size, size)).shape[1]
        self._n_layer2 = total
        k = min(self.params.n_features, total)
        net.register_buffer("feature_index", torch.zeros(k, dtype=torch.long))
        net.register_buffer("mean", torch.zeros(k, dtype=torch.float64))
        net.register_buffer("precision", torch.zeros(k, k, dtype=torch.float64))
        return net

    def _train(self, x: torch.Tensor) -> None:
        super()._train(x)
        rng = np.random.default_rng(self.params.seed)
        index = np.sort(rng.choice(self._n_layer2, size=len(self.model.feature_index), replace=False))
        self.model.feature_index.copy_(torch.from_numpy(index))
        features = self._features(x).double().numpy()
        gaussian = LedoitWolf().fit(features)
        self.model.mean.copy_(torch.from_numpy(gaussian.location_))
        self.model.precision.copy_(torch.from_numpy(gaussian.precision_))

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        return batched(
            lambda b: self._layer2(self.model, b)[:, self.model.feature_index], x, self.params.batch_size, self.device
        )

    def features(self, images: np.ndarray) -> np.ndarray:
        """The selected layer-2 features (N, n_features) float64."""
        return self._features(to_tensor(images, self.params.image_size)).double().numpy()

    def _score(self, x: torch.Tensor) -> Scores:
        centred = self._features(x).double() - self.model.mean.cpu()
        squared = torch.einsum("ni,ij,nj->n", centred, self.model.precision.cpu(), centred)
        return squared.clamp_min(0).sqrt(), None


def _central_moment(r: torch.Tensor, order: int) -> torch.Tensor:
    return (r - r.mean(1, keepdim=True)).pow(order).mean(1)


def _entropy(r: torch.Tensor, bins: int = 256) -> torch.Tensor:
    """Shannon entropy (bits) of the histogram of residual values, bins spanning [−1, 1]."""
    index = ((r.clamp(-1, 1) + 1) / 2 * bins).long().clamp_(max=bins - 1)
    counts = torch.zeros(len(r), bins, dtype=r.dtype, device=r.device).scatter_add_(1, index, torch.ones_like(r))
    p = counts / r.shape[1]
    return -(p * torch.log2(p.clamp_min(1e-30))).sum(1)


_TINY = 1e-12

# Statistics of the residual image (rows of r: one flattened residual per image). All use the
# population (1/n) moments. ``min`` is negated so that, like every score, higher = more anomalous.
# ``mean``, ``skewness`` and ``cumsum`` keep the residual's sign: they rank dark-defect and
# bright-defect images in opposite directions, as in the study.
CRITERIA: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "mean": lambda r: r.mean(1),
    "std": lambda r: r.std(1, correction=0),
    "var": lambda r: r.var(1, correction=0),
    "kurtosis": lambda r: _central_moment(r, 4) / _central_moment(r, 2).clamp_min(_TINY) ** 2 - 3.0,
    "skewness": lambda r: _central_moment(r, 3) / _central_moment(r, 2).clamp_min(_TINY) ** 1.5,
    "range": lambda r: r.amax(1) - r.amin(1),
    "min": lambda r: -r.amin(1),
    "max": lambda r: r.amax(1),
    "cumsum": lambda r: r.sum(1),
    "mse": lambda r: r.pow(2).mean(1),
    "entropy": _entropy,
}


@dataclass
class ResidualStatsParams(ReconstructionParams):
    criterion: str = "range"  # best for the conv AE in the study


@register
class AEResidualStats(ReconstructionDetector):
    """Comparative study: score = ``CRITERIA[criterion]`` of the (unsmoothed) luma residual
    input − reconstruction; map = |residual|, smoothed."""

    name = "ae_residual_stats"
    description = "Conv AE; score = a statistic (criterion) of the residual image (range by default)"
    Params = ResidualStatsParams

    def __init__(self, params: ResidualStatsParams) -> None:
        super().__init__(params)
        if params.criterion not in CRITERIA:
            raise ValueError(f"criterion must be one of {sorted(CRITERIA)}, got {params.criterion!r}")

    def _compare(self, x: torch.Tensor, recon: torch.Tensor) -> Scores:
        residual = (grey(x) - grey(recon))[:, 0]
        return CRITERIA[self.params.criterion](residual.flatten(1)), self._smooth(residual.abs())


@dataclass
class VAEResidualStatsParams(ResidualStatsParams):
    criterion: str = "mean"  # best for both VAEs in the study
    kl_weight: float = 1.0


@register
class VAEResidualStats(AEResidualStats):
    """The study's VAE: loss = per-image summed squared error + ``kl_weight``·KL; reconstructions
    at test time decode the posterior mean."""

    name = "vae_residual_stats"
    description = "Conv VAE; score = a statistic (criterion) of the residual image (mean by default)"
    Params = VAEResidualStatsParams
    dilation = 1

    def _build(self, fresh: bool) -> nn.Module:
        return ConvVAE(self.params.image_size, self.params.latent_dim, dilation=self.dilation)

    def _loss(self, x: torch.Tensor) -> torch.Tensor:
        recon, kl = self.model.forward_with_kl(x)
        return (recon - x).pow(2).flatten(1).sum(1).mean() + self.params.kl_weight * kl.mean()


@register
class DilatedVAEResidualStats(VAEResidualStats):
    """The study's VAE with a dilated-convolution encoder (stride-1 layers dilated by 2)."""

    name = "dilated_vae_residual_stats"
    description = "VAE with dilated-conv encoder; score = a statistic (criterion) of the residual (mean by default)"
    dilation = 2


__all__ = ["CRITERIA", "AutoencoderDetector", "ReconstructionDetector"]
