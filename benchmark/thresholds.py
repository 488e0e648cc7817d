"""Image-score inputs, threshold rules and the classification figures a threshold gives.

Convention everywhere in ``mkdata.benchmark``: an image is predicted anomalous when its score is
strictly greater than the threshold (``score > threshold``). A threshold of ``-inf`` flags every
image.

Validate once, then compute: each public function validates its input (``check_*``) and calls a
``_``-prefixed compute function of the validated arrays, which a caller that validated the same
arrays already (``cell.metric_row``) calls directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


def as_numpy(values: Any) -> np.ndarray:
    """A numpy view of a numpy array, torch tensor (any device) or nested sequence."""
    if hasattr(values, "detach") and hasattr(values, "cpu"):  # torch.Tensor, without importing torch
        tensor = values.detach().cpu()
        if str(tensor.dtype) == "torch.bfloat16":  # numpy has no bfloat16; float32 holds it exactly
            tensor = tensor.float()
        return tensor.numpy()
    return np.asarray(values)


def check_finite_scores(scores: Any, name: str = "scores") -> np.ndarray:
    """1-D float64 scores; ValueError on NaN, infinity, an empty or a non-1-D input."""
    array = as_numpy(scores)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (one score per image), got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise ValueError(f"{name} must be real numbers, got dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        bad = np.count_nonzero(~np.isfinite(array))
        raise ValueError(f"{name} contain NaN or infinite values ({bad} of {array.size})")
    return array


def check_binary(values: Any, name: str) -> np.ndarray:
    """A boolean array from 0/1 (or bool) values; ValueError naming any other value."""
    array = as_numpy(values)
    if array.dtype == bool:
        return array
    if array.dtype == np.uint8 and array.size and array.max() <= 1:  # the common mask type: no copy
        return array.view(bool)
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise ValueError(f"{name} must hold 0/1 values, got dtype {array.dtype}")
    binary = (array == 0) | (array == 1)
    if not binary.all():
        bad = np.unique(array[~binary])[:5]
        raise ValueError(f"{name} must hold only 0 (normal) and 1 (anomalous), found {bad.tolist()}")
    return array.astype(bool)


def check_scores_labels(scores: Any, labels: Any, *, need_both: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Validated (float64 scores, bool labels) of equal length; both classes present if ``need_both``."""
    score_array = check_finite_scores(scores)
    label_array = check_binary(labels, "labels")
    if label_array.shape != score_array.shape:
        raise ValueError(f"scores of shape {score_array.shape} and labels of shape {label_array.shape} differ")
    if need_both:
        anomalous = int(label_array.sum())
        if anomalous == 0 or anomalous == label_array.size:
            raise ValueError(
                f"need at least one normal and one anomalous image, got {label_array.size - anomalous} normal "
                f"and {anomalous} anomalous"
            )
    return score_array, label_array


def check_rate(rate: float, name: str, *, zero_ok: bool) -> float:
    """A rate in (0, 1] (or [0, 1] if ``zero_ok``); ValueError otherwise."""
    rate = float(rate)
    low_ok = rate >= 0 if zero_ok else rate > 0
    if not (low_ok and rate <= 1):
        raise ValueError(f"{name} must lie in {'[0' if zero_ok else '(0'}, 1], got {rate}")
    return rate


def largest_count_within(rate: float, total: int) -> int:
    """The largest m in [0, total] with m / total <= rate, evaluated in float as ROC code does."""
    count = min(total, int(np.floor(rate * total)))
    while count < total and (count + 1) / total <= rate:
        count += 1
    while count > 0 and count / total > rate:
        count -= 1
    return count


def threshold_at_fpr(normal_scores: Any, fpr: float = 0.01) -> float:
    """Lowest threshold whose false-positive rate on ``normal_scores`` is at most ``fpr``.

    It is the (m+1)-th largest normal score with m the largest count of normals allowed above it,
    so ``score > threshold`` flags at most m normals; ``-inf`` when ``fpr`` allows all of them.
    """
    return _threshold_at_fpr(check_finite_scores(normal_scores, "normal_scores"), check_rate(fpr, "fpr", zero_ok=True))


def _threshold_at_fpr(scores: np.ndarray, fpr: float) -> float:
    """``threshold_at_fpr`` of validated float64 scores and a validated rate."""
    allowed = largest_count_within(fpr, scores.size)
    if allowed == scores.size:
        return float("-inf")
    return float(np.sort(scores)[::-1][allowed])


def threshold_mean_std(normal_scores: Any, k: float = 2.0) -> float:
    """Unsupervised rule: mean + k * std (population std, ddof=0) of normal training scores."""
    return _threshold_mean_std(check_finite_scores(normal_scores, "normal_scores"), k)


def _threshold_mean_std(scores: np.ndarray, k: float) -> float:
    """``threshold_mean_std`` of validated float64 scores."""
    return float(scores.mean() + k * scores.std())


def threshold_percentile(normal_scores: Any, percentile: float = 99.0) -> float:
    """Unsupervised rule: the given percentile (linear interpolation) of normal training scores."""
    if not 0 <= percentile <= 100:
        raise ValueError(f"percentile must lie in [0, 100], got {percentile}")
    return float(np.percentile(check_finite_scores(normal_scores, "normal_scores"), percentile))


def threshold_max_accuracy(scores: Any, labels: Any) -> float:
    """Supervised rule: the threshold (``-inf`` or one of the scores) of highest accuracy; lowest on ties."""
    return _threshold_max_accuracy(*check_scores_labels(scores, labels, need_both=False))


def _threshold_max_accuracy(score_array: np.ndarray, label_array: np.ndarray) -> float:
    """``threshold_max_accuracy`` of validated (float64 scores, bool labels)."""
    candidates = np.concatenate([[-np.inf], np.unique(score_array)])
    normal_sorted = np.sort(score_array[~label_array])
    anomalous_sorted = np.sort(score_array[label_array])
    normals_at_or_below = np.searchsorted(normal_sorted, candidates, side="right")
    anomalous_above = anomalous_sorted.size - np.searchsorted(anomalous_sorted, candidates, side="right")
    return float(candidates[np.argmax(normals_at_or_below + anomalous_above)])


@dataclass(frozen=True)
class Classification:
    """What a threshold gives on labelled images (anomalous = positive class)."""

    threshold: float
    accuracy: float
    precision: float  # 0.0 when nothing is flagged
    recall: float
    f1: float  # 0.0 when precision + recall is 0


def classify(scores: Any, labels: Any, threshold: float) -> Classification:
    """Accuracy, precision, recall and F1 of ``score > threshold`` against 0/1 labels."""
    return _classify(*check_scores_labels(scores, labels, need_both=False), threshold)


def _classify(score_array: np.ndarray, label_array: np.ndarray, threshold: float) -> Classification:
    """``classify`` of validated (float64 scores, bool labels)."""
    if np.isnan(threshold):
        raise ValueError("threshold is NaN")
    flagged = score_array > threshold
    true_pos = int(np.count_nonzero(flagged & label_array))
    precision = true_pos / int(flagged.sum()) if flagged.any() else 0.0
    recall = true_pos / int(label_array.sum()) if label_array.any() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    accuracy = float(np.mean(flagged == label_array))
    return Classification(float(threshold), accuracy, precision, recall, f1)
