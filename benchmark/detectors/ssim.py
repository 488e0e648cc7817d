"""SSIM family for the autoencoder detectors.

* ``ssim_map`` / ``ssim_loss``: kornia's SSIM (Gaussian window, σ = 1.5, reflect padding).
* ``ms_ssim_maps``: the per-scale maps of Wang et al.'s multi-scale SSIM (contrast-structure at
  the fine scales, full SSIM at the coarsest, 2×2 average pooling between scales, as torchmetrics
  does), and ``ms_ssim_map``: their per-pixel combination at full resolution.
* ``content_regions`` / ``four_component_pool``: the content-partitioned ("four-component")
  pooling of Li & Bovik — each pixel is a preserved edge, changed edge, texture or smooth pixel,
  and the index is a weighted mean of the per-region means.

torchmetrics' MS-SSIM returns only a scalar per image and kornia only the single-scale map, so the
per-scale contrast-structure maps are computed here from kornia's Gaussian filtering.
"""

from __future__ import annotations

import kornia
import torch
import torch.nn.functional as F

# Wang, Simoncelli & Bovik (2003) scale exponents, finest first.
WANG_SCALE_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
REGIONS = ("preserved_edge", "changed_edge", "texture", "smooth")
_K1, _K2 = 0.01, 0.03
_SIGMA = 1.5


def ssim_map(x: torch.Tensor, y: torch.Tensor, window: int = 11) -> torch.Tensor:
    """Per-pixel SSIM (B, C, H, W) of images in [0, 1]."""
    return kornia.metrics.ssim(x, y, window, max_val=1.0)


def ssim_loss(x: torch.Tensor, y: torch.Tensor, window: int = 11) -> torch.Tensor:
    """1 − mean SSIM (a training loss)."""
    return 1.0 - ssim_map(x, y, window).mean()


def grey(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB → (B, 1, H, W) luma."""
    return kornia.color.rgb_to_grayscale(x)


def _luminance_and_cs(x: torch.Tensor, y: torch.Tensor, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    kernel = kornia.filters.get_gaussian_kernel1d(window, _SIGMA, device=x.device, dtype=x.dtype)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return kornia.filters.filter2d_separable(t, kernel, kernel, border_type="reflect")

    c1, c2 = _K1**2, _K2**2
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    return luminance, cs


def scale_weights(scales: int) -> tuple[float, ...]:
    """Wang's exponents for the first ``scales`` scales, renormalised to sum to 1."""
    if not 1 <= scales <= len(WANG_SCALE_WEIGHTS):
        raise ValueError(f"scales must be 1..{len(WANG_SCALE_WEIGHTS)}, got {scales}")
    w = WANG_SCALE_WEIGHTS[:scales]
    return tuple(v / sum(w) for v in w)


def ms_ssim_maps(x: torch.Tensor, y: torch.Tensor, scales: int = 5, window: int = 11) -> list[torch.Tensor]:
    """Contrast-structure maps of scales 1..M−1 and the SSIM map of scale M, each at its own size."""
    if min(x.shape[-2:]) // 2 ** (scales - 1) < window:
        raise ValueError(
            f"{x.shape[-2]}×{x.shape[-1]} images are too small for {scales} SSIM scales with window {window}"
        )
    maps = []
    for scale in range(scales):
        luminance, cs = _luminance_and_cs(x, y, window)
        maps.append(luminance * cs if scale == scales - 1 else cs)
        x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return maps


def ms_ssim_map(x: torch.Tensor, y: torch.Tensor, scales: int = 5, window: int = 11) -> torch.Tensor:
    """Per-pixel multi-scale SSIM (B, H, W): Π_j relu(map_j upsampled)^β_j, averaged over channels."""
    size = x.shape[-2:]
    out = torch.ones_like(x)
    for m, beta in zip(ms_ssim_maps(x, y, scales, window), scale_weights(scales)):
        up = F.interpolate(m, size=size, mode="bilinear", align_corners=False) if m.shape[-2:] != size else m
        out = out * F.relu(up) ** beta
    return out.mean(1)


def gradient_magnitude(x: torch.Tensor) -> torch.Tensor:
    """Sobel gradient magnitude (B, H, W) of a (B, 1, H, W) image."""
    return kornia.filters.spatial_gradient(x, "sobel").pow(2).sum(2).sqrt()[:, 0]


def content_regions(original: torch.Tensor, distorted: torch.Tensor) -> torch.Tensor:
    """Li & Bovik's partition of (B, 1, H, W) grey images: labels (B, H, W) indexing ``REGIONS``.

    With g_max the largest Sobel magnitude of the original, TH1 = 0.12·g_max, TH2 = 0.06·g_max:
    preserved edge if both magnitudes > TH1; changed edge if exactly one is; smooth if the
    original's ≤ TH2 (≤ so a flat image is all smooth) and the distorted's ≤ TH1; else texture.
    """
    g_o, g_d = gradient_magnitude(original), gradient_magnitude(distorted)
    g_max = g_o.flatten(1).amax(1).view(-1, 1, 1)
    edge_o, edge_d = g_o > 0.12 * g_max, g_d > 0.12 * g_max
    labels = torch.full_like(g_o, REGIONS.index("texture"), dtype=torch.long)
    labels[(g_o <= 0.06 * g_max) & ~edge_d] = REGIONS.index("smooth")
    labels[edge_o ^ edge_d] = REGIONS.index("changed_edge")
    labels[edge_o & edge_d] = REGIONS.index("preserved_edge")
    return labels


def four_component_pool(
    quality: torch.Tensor,
    regions: torch.Tensor,
    weights: tuple[float, float, float, float],
    roi: torch.Tensor | None = None,
) -> torch.Tensor:
    """Σ_k w_k·mean_{R_k}(quality) / Σ_k w_k over the regions present (inside ``roi`` if given).

    ``quality`` and ``regions`` are (B, H, W); ``weights`` follow ``REGIONS``; ``roi`` is an (H, W)
    boolean mask. An image with no pixel in any region (empty ROI) gets NaN.
    """
    one_hot = F.one_hot(regions, len(REGIONS)).to(quality.dtype)  # (B, H, W, 4)
    if roi is not None:
        one_hot = one_hot * roi[None, :, :, None].to(quality.dtype)
    counts = one_hot.sum((1, 2))
    means = (one_hot * quality[..., None]).sum((1, 2)) / counts.clamp_min(1)
    w = torch.tensor(weights, dtype=quality.dtype, device=quality.device) * (counts > 0)
    return (w * means).sum(1) / w.sum(1)


def edge_attention_mask(image: torch.Tensor, dilation: int) -> torch.Tensor:
    """Domain attention ROI of the dual-mode paper from a (1, 1, H, W) grey image (e.g. the mean
    training image): Sobel magnitude above 0.12 of its maximum, dilated by a ``dilation``-pixel
    square (odd). Returns an (H, W) boolean mask."""
    g = gradient_magnitude(image)
    edges = (g > 0.12 * g.max()).to(image.dtype)[:, None]
    return F.max_pool2d(edges, dilation, stride=1, padding=dilation // 2)[0, 0] > 0
