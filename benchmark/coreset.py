"""Approximate greedy k-center coreset, as in the PatchCore paper's own implementation.

``patchcore-inspection``'s ``ApproximateGreedyCoresetSampler``: distances are computed on a random
projection of the features (``random_projection``, ~128 dimensions); instead of one start point,
each point's initial distance is its mean distance to a few random start points (which are not
picks themselves); then each pick is the point farthest from the picks so far. One pick costs one
matrix-vector product over the projected features (squared norms precomputed, buffers reused, no
host synchronisation), on whatever device the features are on. All random choices come from
``seed``.
"""

from __future__ import annotations

import torch

STARTING_POINTS = 10  # the reference implementation's number_of_starting_points
PROJECTION_DIM = 128  # its dimension_to_project_features_to
_ROWS = 65536  # rows per batch when measuring distances to the start points


def random_projection(dim_in: int, dim_out: int, seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """A ``dim_in × dim_out`` Gaussian matrix scaled by 1/√dim_out (distances kept in expectation)."""
    generator = torch.Generator().manual_seed(seed)
    matrix = torch.randn(dim_in, dim_out, generator=generator) / dim_out**0.5
    return matrix.to(device)


def coreset_size(n: int, ratio: float) -> int:
    """``int(n · ratio)``, as anomalib's KCenterGreedy; a ValueError when that is 0."""
    size = int(n * ratio)
    if size <= 0:
        raise ValueError(f"coreset_sampling_ratio {ratio} of {n} patches selects no patch")
    return size


def approximate_greedy(features: torch.Tensor, size: int, seed: int, starting_points: int = STARTING_POINTS) -> torch.Tensor:
    """Indices (int64, on ``features``' device) of ``size`` greedy picks from the rows of ``features``.

    ``features`` are the projected features (n × d, float32); they are not modified.
    """
    n = features.shape[0]
    if not 0 < size <= n:
        raise ValueError(f"coreset size must be in 1..{n}, got {size}")
    generator = torch.Generator().manual_seed(seed)
    starts = features[torch.randperm(n, generator=generator)[: min(starting_points, n)].to(features.device)]
    start_norms = starts.pow(2).sum(1)
    norms = torch.empty(n, device=features.device)  # squared norms, computed in batches of rows
    nearest = torch.empty(n, device=features.device)  # squared distance to the nearest pick
    for begin in range(0, n, _ROWS):
        rows = slice(begin, begin + _ROWS)
        norms[rows] = features[rows].pow(2).sum(1)
        squared = (norms[rows, None] - 2 * features[rows] @ starts.T + start_norms).clamp_min_(0)
        nearest[rows] = squared.sqrt_().mean(1).square_()
    picks = torch.empty(size, dtype=torch.long, device=features.device)
    squared = torch.empty(n, device=features.device)
    for i in range(size):
        pick = nearest.argmax().reshape(1)
        picks[i] = pick[0]
        torch.mv(features, features.index_select(0, pick)[0], out=squared)
        squared.mul_(-2).add_(norms).add_(norms.index_select(0, pick))
        torch.minimum(nearest, squared, out=nearest)
    return picks


def coverage_radius(points: torch.Tensor, centers: torch.Tensor, rows: int = 4096) -> float:
    """The largest distance of any row of ``points`` to its nearest row of ``centers``."""
    worst = 0.0
    for begin in range(0, len(points), rows):
        worst = max(worst, torch.cdist(points[begin : begin + rows], centers).amin(1).max().item())
    return worst
