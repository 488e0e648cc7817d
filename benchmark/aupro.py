"""Pixel-level areas of anomaly maps: AUPRO (MVTec AD definition) and pixel AUROC, exact and fast.

Both are areas under a curve traced by the thresholds ``score >= t``: x is the false-positive rate
over all ground-truth-normal pixels, y a weighted recall of the ground-truth-anomalous pixels.

- PRO (Bergmann et al., MVTec AD): each anomalous pixel weighs 1 / (size of its 8-connected
  ground-truth component), so y is the mean over all components of the fraction of the component
  at or above t. AUPRO integrates the curve (trapezoids, from the point (0, 0)) from FPR 0 up to
  exactly ``fpr_limit`` — the last segment interpolated — and divides by ``fpr_limit``.
- pixel ROC: every anomalous pixel weighs 1; the area up to FPR 1 is the pixel AUROC.

Every distinct score is an operating point: pixels of equal score enter together, as one sloped
segment. The exact area needs no curve. Sum the trapezoids over the groups of normal pixels:
a normal pixel of score s adds (1/n) * (W(> s) + W(= s) / 2), with W the anomalous weight (over
the total weight) and n the number of normal pixels. Swapping the sums: area = (1/n) * sum over
anomalous pixels p of w_p * (normals below s_p + half the normals equal to s_p), counting only
normals above the score v where the FPR reaches the limit; the segment through v is interpolated.
So only normal pixels above v matter (30 % of them at the default limit): one pass over the maps
(chunks of images on a thread pool) keeps the normal scores above a floor estimated from a seeded
sample, ``np.partition`` finds v, the kept scores are sorted in place (in parallel parts), and
each distinct anomalous score is located in them by ``np.searchsorted``.

Binned mode histograms the kept normal scores instead of storing them: 2**20 order-preserving
buckets (the top 20 bits of the float32 bit pattern; float16 values never share one). Its points
are exact operating points (thresholds at bucket edges), and as the exact curve is monotone
between two of them, the error of each trapezoid is at most dFPR * dPRO / 2 (dFPR * dPRO for the
interpolated last one); ``binned_aupro`` returns that bound with the value. Memory is then
O(2**20) instead of O(kept pixels).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from mkdata.benchmark.thresholds import as_numpy, check_binary, check_rate, largest_count_within

CHUNK_PIXELS = 1 << 22  # pixels per chunk of images handed to one thread
SAMPLE_PIXELS = 1 << 20  # pixels sampled to estimate the floor of the normal scores that matter
SAMPLE_SEED = 0
FLOOR_MARGIN = 0.005  # added to the rate whose quantile the sampled floor estimates
BUCKET_BITS = 20
EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def check_maps_masks(maps: Any, masks: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validated N×H×W maps (finite real numbers, a numpy view) and boolean masks (N×1×H×W accepted).

    ValueError on a shape mismatch, NaN or infinite scores, or a mask value other than 0/1. The
    scans that follow only compute; they still report masks with no normal or no anomalous pixel,
    which they count anyway.
    """
    map_array = _as_stack(as_numpy(maps), "maps")
    mask_array = _as_stack(as_numpy(masks), "masks")
    if map_array.shape != mask_array.shape:
        raise ValueError(
            f"maps of shape {map_array.shape} and masks of shape {mask_array.shape} differ; "
            "resize the anomaly maps to the mask size first (nothing is resized implicitly)"
        )
    if not (np.issubdtype(map_array.dtype, np.floating) or np.issubdtype(map_array.dtype, np.integer)):
        raise ValueError(f"maps must be real numbers, got dtype {map_array.dtype}")
    if not (np.isfinite(map_array.min()) and np.isfinite(map_array.max())):  # NaN propagates; no temporary
        image = int(np.argmin(np.isfinite(map_array).all(axis=(1, 2))))
        raise ValueError(f"maps contain NaN or infinite values (image {image})")
    return map_array, check_binary(mask_array, "masks")


def _as_stack(array: np.ndarray, name: str) -> np.ndarray:
    if array.ndim == 4 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 3 or 0 in array.shape:
        raise ValueError(f"{name} must be a non-empty N×H×W (or N×1×H×W) stack, got shape {array.shape}")
    return array


@dataclass
class _Pixels:
    """What a scan gathers: normal-pixel count, folded normal scores, anomalous scores and weights."""

    normal_count: int = 0
    normals: Any = None
    anomalous_scores: list[np.ndarray] = field(default_factory=list)
    anomalous_weights: list[np.ndarray] = field(default_factory=list)
    total_weight: int = 0  # regions for PRO, anomalous pixels for ROC


def _scan_chunk(
    maps: np.ndarray, anomalous: np.ndarray, floor: float, work: type, per_region: bool,
    reduce: Callable[[np.ndarray], Any],
) -> _Pixels:
    """What one chunk of validated maps and boolean masks contributes."""
    scores = np.asarray(maps, dtype=work)
    normal = ~anomalous
    kept = scores[normal & (scores >= floor)]
    chunk = _Pixels(int(np.count_nonzero(normal)), reduce(kept))
    if not per_region:
        values = scores[anomalous]
        chunk.anomalous_scores.append(values)
        chunk.anomalous_weights.append(np.ones(values.size))
        chunk.total_weight = values.size
        return chunk
    for image in np.flatnonzero(anomalous.any(axis=(1, 2))):
        rows = np.flatnonzero(anomalous[image].any(axis=1))
        cols = np.flatnonzero(anomalous[image].any(axis=0))
        box = (image, slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        labels, regions = ndimage.label(anomalous[box], structure=EIGHT_CONNECTED)
        inside = labels > 0
        chunk.anomalous_scores.append(scores[box][inside])
        chunk.anomalous_weights.append(1.0 / np.bincount(labels[inside])[labels[inside]])
        chunk.total_weight += regions
    return chunk


def _scan(
    maps: np.ndarray, masks: np.ndarray, floor: float, work: type, per_region: bool, workers: int,
    reduce: Callable[[np.ndarray], Any], fold: Callable[[Any, Any], Any],
) -> _Pixels:
    """One pass over chunks of validated images on ``workers`` threads (numpy releases the GIL)."""
    step = max(1, CHUNK_PIXELS // (maps.shape[1] * maps.shape[2]))

    def scan(first: int) -> _Pixels:
        block = slice(first, first + step)
        return _scan_chunk(maps[block], masks[block], floor, work, per_region, reduce)

    total = _Pixels()
    pool = ThreadPoolExecutor(workers)
    try:
        for chunk in pool.map(scan, range(0, len(maps), step)):
            total.normal_count += chunk.normal_count
            total.normals = fold(total.normals, chunk.normals)
            total.anomalous_scores += chunk.anomalous_scores
            total.anomalous_weights += chunk.anomalous_weights
            total.total_weight += chunk.total_weight
    finally:
        pool.shutdown(cancel_futures=True)
    if total.normal_count == 0:
        raise ValueError("masks mark every pixel anomalous; the false-positive rate needs normal pixels")
    if total.total_weight == 0:
        raise ValueError("masks contain no anomalous pixel; the area needs at least one ground-truth region")
    return total


def _normal_floor(maps: np.ndarray, masks: np.ndarray, rate: float) -> float:
    """A score with, almost surely, more than ``rate`` of the normal pixels at or above it.

    The quantile of a seeded random sample at ``rate`` plus a safety margin of FLOOR_MARGIN + 5 sigma;
    callers check the count and rescan from -inf if it was too high. -inf (keep every normal
    pixel) without sampling when the margin alone reaches 1, as for the pixel AUROC's rate 1.
    """
    if rate + FLOOR_MARGIN >= 1:
        return -np.inf
    if maps.size <= SAMPLE_PIXELS:
        scores, labels = maps.ravel(), masks.ravel()
    else:
        flat = np.sort(np.random.default_rng(SAMPLE_SEED).integers(0, maps.size, SAMPLE_PIXELS))
        index = np.unravel_index(flat, maps.shape)
        scores, labels = maps[index], masks[index]
    normal = scores[~labels].astype(np.float64)
    if normal.size == 0:
        return -np.inf  # the scan reports masks without normal pixels
    level = rate + FLOOR_MARGIN + 5 * math.sqrt(rate * (1 - rate) / normal.size)
    if level >= 1:
        return -np.inf
    position = int((1 - level) * normal.size)
    return float(np.partition(normal, position)[position])


def _first_count_reaching(rate: float, total: int) -> int:
    """Smallest c with c / total >= rate (in float, as an FPR is compared)."""
    count = largest_count_within(rate, total)
    return count if count / total >= rate else count + 1


def _last_segment(fpr0: float, pro0: float, fpr1: float, pro1: float, limit: float) -> float:
    """Area under the segment (fpr0, pro0)-(fpr1, pro1) from fpr0 to limit (fpr0 < limit <= fpr1)."""
    pro_limit = pro0 + (pro1 - pro0) * (limit - fpr0) / (fpr1 - fpr0)
    return (limit - fpr0) * (pro0 + pro_limit) / 2


def _weights_by_score(scores: list[np.ndarray], weights: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct anomalous scores (ascending) and the summed weight at each."""
    all_scores = np.concatenate(scores)
    order = np.argsort(all_scores, kind="stable")
    ordered = all_scores[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    return ordered[starts], np.add.reduceat(np.concatenate(weights)[order], starts)


def _exact_area(pixels: _Pixels, rate: float, workers: int) -> float | None:
    """Normalised area up to FPR ``rate``; None if fewer normals were kept than the limit needs."""
    n = pixels.normal_count
    need = _first_count_reaching(rate, n)
    if sum(part.size for part in pixels.normals) < need:
        return None
    top = np.concatenate(pixels.normals)
    pixels.normals = None
    split = top.size - need
    top.partition(split)
    cut = top[split]  # the score where the FPR first reaches the limit; top[split + 1:] >= cut
    parts = np.array_split(top[split + 1:], workers)
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(np.ndarray.sort, parts))
    equal_cut = [np.searchsorted(part, cut, side="right") for part in parts]
    above = sum(part.size - equal for part, equal in zip(parts, equal_cut))
    ties = 1 + int(np.count_nonzero(top[:split] == cut)) + sum(equal_cut)
    scores, weights = _weights_by_score(pixels.anomalous_scores, pixels.anomalous_weights)
    higher = scores > cut
    below_twice = np.zeros(int(higher.sum()))  # normals above cut and below s, ties counted half, times 2
    for part, equal in zip(parts, equal_cut):
        for side in ("left", "right"):
            below_twice += np.searchsorted(part, scores[higher], side) - equal
    total = pixels.total_weight
    area = float(np.dot(weights[higher], below_twice)) / 2 / (n * total)
    pro0 = weights[higher].sum() / total
    pro1 = pro0 + weights[scores == cut].sum() / total
    area += _last_segment(above / n, pro0, (above + ties) / n, pro1, rate)
    return area / rate


def _bucket(values: np.ndarray) -> np.ndarray:
    """Order-preserving bucket of float32 values: the top BUCKET_BITS bits of a sortable key."""
    bits = (values.astype(np.float32) + np.float32(0)).view(np.uint32)  # + 0 turns -0.0 into +0.0
    keys = np.where(bits >> 31, ~bits, bits | np.uint32(1 << 31))
    return keys >> np.uint32(32 - BUCKET_BITS)


def _bucket_floor(value: float) -> float:
    """The smallest float32 in the bucket of ``value``, so a floor keeps whole buckets (-inf stays)."""
    if value == -np.inf:
        return value
    key = np.uint32(int(_bucket(np.array([value]))[0]) << (32 - BUCKET_BITS))
    bits = key & np.uint32((1 << 31) - 1) if key >> 31 else ~key
    return float(np.array([bits], dtype=np.uint32).view(np.float32)[0])


def _bucket_counts(values: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    return np.bincount(_bucket(values), weights, minlength=1 << BUCKET_BITS)


def _binned_curve(pixels: _Pixels) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, PRO) at every occupied bucket edge, from the highest threshold down, from (0, 0)."""
    weights = _bucket_counts(np.concatenate(pixels.anomalous_scores), np.concatenate(pixels.anomalous_weights))
    used = np.flatnonzero(pixels.normals + weights)[::-1]  # occupied buckets, highest first
    fpr = np.r_[0.0, np.cumsum(pixels.normals[used])] / pixels.normal_count
    pro = np.r_[0.0, np.cumsum(weights[used])] / pixels.total_weight
    return fpr, pro


def _binned_area(pixels: _Pixels, rate: float) -> tuple[float, float] | None:
    """(normalised area, bound on its error) from bucket histograms; None if too few normals kept."""
    fpr, pro = _binned_curve(pixels)
    if fpr[-1] < rate:
        return None
    end = int(np.searchsorted(fpr, rate, side="left"))  # first point at or past the limit
    area = np.trapezoid(pro[:end], fpr[:end]) + _last_segment(fpr[end - 1], pro[end - 1], fpr[end], pro[end], rate)
    bound = np.sum(np.diff(fpr[:end]) * np.diff(pro[:end])) / 2 + (rate - fpr[end - 1]) * (pro[end] - pro[end - 1])
    return float(area / rate), float(bound / rate)


def _attempts(maps: np.ndarray, masks: np.ndarray, rate: float) -> Iterator[float]:
    """Floors to try: the sampled estimate, then -inf (keeps every normal pixel) if it was too high."""
    floor = _normal_floor(maps, masks, rate)
    yield floor
    if floor > -np.inf:
        yield -np.inf


def _append(parts: list[np.ndarray] | None, kept: np.ndarray) -> list[np.ndarray]:
    parts = [] if parts is None else parts
    parts.append(kept)
    return parts


def _add(total: np.ndarray | None, counts: np.ndarray) -> np.ndarray:
    return counts if total is None else np.add(total, counts, out=total)


def _default_workers() -> int:
    return min(4, os.cpu_count() or 1)


def _area(map_array: np.ndarray, mask_array: np.ndarray, rate: float, *, per_region: bool, binned: bool,
          workers: int | None) -> Any:
    """Exact area, or (binned area, bound), of validated inputs (``check_maps_masks``) and rate;
    rescans from -inf if the sampled floor kept too few normals."""
    workers = workers or _default_workers()
    for floor in _attempts(map_array, mask_array, rate):
        if binned:
            pixels = _scan(map_array, mask_array, _bucket_floor(floor), np.float32, per_region, workers,
                           reduce=_bucket_counts, fold=_add)
            result = _binned_area(pixels, rate)
        else:
            work = np.result_type(map_array.dtype, np.float32).type  # float16 -> float32 is exact
            pixels = _scan(map_array, mask_array, floor, work, per_region, workers,
                           reduce=lambda kept: kept, fold=_append)
            result = _exact_area(pixels, rate, workers)
        if result is not None:
            return result
    raise AssertionError("unreachable: a scan from -inf keeps every normal pixel")


def aupro(maps: Any, masks: Any, fpr_limit: float = 0.3, *, binned: bool = False, workers: int | None = None) -> float:
    """Normalised area under the PRO curve up to ``fpr_limit`` (MVTec AD definition, see module doc).

    ``maps``: N×H×W anomaly maps (numpy or torch, any float dtype incl. float16); ``masks``: N×H×W
    ground truth of 0/1. Exact by default (every distinct score is a threshold); ``binned=True``
    gives the bucketed value of ``binned_aupro``. ValueError on NaN, shape mismatch, non-0/1
    masks, no anomalous or no normal pixel.
    """
    if binned:
        return binned_aupro(maps, masks, fpr_limit, workers=workers)[0]
    rate = check_rate(fpr_limit, "fpr_limit", zero_ok=False)
    return _aupro(*check_maps_masks(maps, masks), rate, workers=workers)


def _aupro(map_array: np.ndarray, mask_array: np.ndarray, fpr_limit: float, *, workers: int | None = None) -> float:
    """Exact ``aupro`` of validated maps and masks (``check_maps_masks``) and a validated limit."""
    return _area(map_array, mask_array, fpr_limit, per_region=True, binned=False, workers=workers)


def binned_aupro(maps: Any, masks: Any, fpr_limit: float = 0.3, *, workers: int | None = None) -> tuple[float, float]:
    """AUPRO from 2**20 score buckets, and a bound on |binned - exact| computed from the same curve.

    Memory stays O(2**20) however many maps; exact for float16 maps (each value has its bucket).
    """
    rate = check_rate(fpr_limit, "fpr_limit", zero_ok=False)
    return _area(*check_maps_masks(maps, masks), rate, per_region=True, binned=True, workers=workers)


def pro_curve(maps: Any, masks: Any, fpr_limit: float = 0.3, *, points: int = 1000,
              workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The PRO curve (FPR, PRO) from FPR 0 to ``fpr_limit`` (last point interpolated there), for
    plots: the binned scan's operating points, thinned to at most ``points``."""
    rate = check_rate(fpr_limit, "fpr_limit", zero_ok=False)
    map_array, mask_array = check_maps_masks(maps, masks)
    pixels = _scan(map_array, mask_array, -np.inf, np.float32, True, workers or _default_workers(),
                   reduce=_bucket_counts, fold=_add)
    fpr, pro = _binned_curve(pixels)
    end = min(int(np.searchsorted(fpr, rate, side="left")), len(fpr) - 1)
    keep = np.unique(np.linspace(0, end - 1, min(points, end)).round().astype(int))
    return np.r_[fpr[keep], rate], np.r_[pro[keep], np.interp(rate, fpr[end - 1:end + 1], pro[end - 1:end + 1])]


def pixel_auroc(maps: Any, masks: Any, *, workers: int | None = None) -> float:
    """Exact ROC AUC over all pixels (anomalous = mask 1), ties counted half, as sklearn does.

    Holds a float32 (float64 for float64 maps) copy of all normal pixel scores while it runs.
    """
    return _pixel_auroc(*check_maps_masks(maps, masks), workers=workers)


def _pixel_auroc(map_array: np.ndarray, mask_array: np.ndarray, *, workers: int | None = None) -> float:
    """``pixel_auroc`` of validated maps and masks (``check_maps_masks``)."""
    return _area(map_array, mask_array, 1.0, per_region=False, binned=False, workers=workers)
