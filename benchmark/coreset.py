"""Approximate greedy k-center coreset, as in the PatchCore paper's own implementation.

``patchcore-inspection``'s ``ApproximateGreedyCoresetSampler``: distances are computed on a random
projection of the features (``random_projection``, ~128 dimensions); instead of one start point,
each point's initial distance is its mean distance to a few random start points (which are not
picks themselves); then each pick is the point farthest from the picks so far. One pick costs one
matrix-vector product over the projected features (squared norms precomputed, buffers reused, no
host synchronisation), on whatever device the features are on. Projected features too large for
memory can instead come from a ``Rows`` source (a ``MemoryBank`` on disk), read ``chunk_rows``
at a time on every pick; the picks are the same. All random choices come from ``seed``.

What stays per point, on the distances' device, whichever the source: the squared norms and the
squared distance to the nearest pick (two float32 vectors of n, 8 bytes a point; the latter is the
algorithm itself), plus a third n-vector of distances per pick when the features are a tensor,
and for a moment the random permutation of n (int64) that draws the start points.
"""

from __future__ import annotations

from typing import Protocol

import torch

STARTING_POINTS = 10  # the reference implementation's number_of_starting_points
PROJECTION_DIM = 128  # its dimension_to_project_features_to
CHUNK_ROWS = 65536  # rows per batch of the start distances, and per read from a Rows source


class Rows(Protocol):
    """An n × d matrix read by row ranges (``benchmark.memory_bank.MemoryBank`` is one)."""

    shape: tuple[int, int]

    def rows(self, begin: int, end: int) -> torch.Tensor:
        """Rows ``begin:end``, valid until the next call."""


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


def approximate_greedy(features: torch.Tensor | Rows, size: int, seed: int, starting_points: int = STARTING_POINTS,
                       device: torch.device | str = "cpu", chunk_rows: int = CHUNK_ROWS) -> torch.Tensor:  # fmt: skip
    """Indices (int64, on the distances' device) of ``size`` greedy picks from the rows of ``features``.

    ``features`` are the projected features (n × d), not modified: a float32 tensor, whose device the
    distances are computed on, or a ``Rows`` source, whose rows are moved to ``device`` as float32,
    ``chunk_rows`` at a time on every pick. Per pick on one CPU thread (1,024,000 × 128 rows,
    ``benchmarks/patchcore_scaling.py --pick-cost``): tensor 44 ms, the same rows in chunks from RAM
    47 ms, a float32 ``MemoryBank`` on disk 92 ms (2.1×; the file in the page cache, so the cost
    is copying it), a float16 one 279 ms (6.4×, the conversion).
    """
    n = features.shape[0]
    if not 0 < size <= n:
        raise ValueError(f"coreset size must be in 1..{n}, got {size}")
    in_memory = isinstance(features, torch.Tensor)
    device = features.device if in_memory else torch.device(device)

    def chunk(begin: int) -> torch.Tensor:
        end = min(begin + chunk_rows, n)
        return features[begin:end] if in_memory else features.rows(begin, end).to(device, torch.float32)

    def row(index: int) -> torch.Tensor:
        return features.rows(index, index + 1).to(device, torch.float32, copy=True)

    generator = torch.Generator().manual_seed(seed)
    index = torch.randperm(n, generator=generator)[: min(starting_points, n)]
    starts = features[index.to(device)] if in_memory else torch.cat([row(i) for i in index.tolist()])
    start_norms = starts.pow(2).sum(1)
    norms = torch.empty(n, device=device)  # squared norms, computed in batches of rows
    nearest = torch.empty(n, device=device)  # squared distance to the nearest pick
    for begin in range(0, n, chunk_rows):
        block = chunk(begin)
        rows = slice(begin, begin + len(block))
        norms[rows] = block.pow(2).sum(1)
        squared = (norms[rows, None] - 2 * block @ starts.T + start_norms).clamp_min_(0)
        nearest[rows] = squared.sqrt_().mean(1).square_()
    picks = torch.empty(size, dtype=torch.long, device=device)
    squared = torch.empty(n if in_memory else min(n, chunk_rows), device=device)
    for i in range(size):
        pick = nearest.argmax().reshape(1)
        picks[i] = pick[0]
        pick_norm = norms.index_select(0, pick)
        if in_memory:
            torch.mv(features, features.index_select(0, pick)[0], out=squared)
            _nearer(nearest, squared, norms, pick_norm)
            continue
        point = row(int(pick))[0]
        for begin in range(0, n, chunk_rows):
            block = chunk(begin)
            rows, products = slice(begin, begin + len(block)), squared[: len(block)]
            torch.mv(block, point, out=products)
            _nearer(nearest[rows], products, norms[rows], pick_norm)
    return picks


def _nearer(nearest: torch.Tensor, products: torch.Tensor, norms: torch.Tensor, pick_norm: torch.Tensor) -> None:
    """Lower ``nearest`` to the squared distances to a pick, from the points' ``products`` with it (overwritten)."""
    products.mul_(-2).add_(norms).add_(pick_norm)
    torch.minimum(nearest, products, out=nearest)


def coverage_radius(points: torch.Tensor, centers: torch.Tensor, rows: int = 4096) -> float:
    """The largest distance of any row of ``points`` to its nearest row of ``centers``."""
    worst = 0.0
    for begin in range(0, len(points), rows):
        worst = max(worst, torch.cdist(points[begin : begin + rows], centers).amin(1).max().item())
    return worst
