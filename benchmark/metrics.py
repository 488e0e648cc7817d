"""Benchmark metrics: image AUROC, Recall@FPR, image AUPR and F1-max, per-defect-type AUROC,
AUPRO and pixel AUROC (``mkdata.benchmark.aupro``), and threshold rules
(``mkdata.benchmark.thresholds``).

Inputs are numpy arrays or torch tensors; labels and masks are 0 (normal) / 1 (anomalous).
Invalid input (NaN, shape mismatch, a missing class) raises ``ValueError``. Each public function
validates its input and calls a ``_``-prefixed compute function of the validated arrays; a caller
scoring the same arrays many times (``cell.metric_row``) validates them once with the ``check_*``
functions and calls the compute functions directly.

    from mkdata.benchmark.metrics import image_auroc, recall_at_fpr, aupro, pixel_auroc
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from mkdata.benchmark.aupro import aupro, binned_aupro, check_maps_masks, pixel_auroc, pro_curve
from mkdata.benchmark.thresholds import (
    Classification,
    _threshold_at_fpr,
    check_finite_scores,
    check_rate,
    check_scores_labels,
    classify,
    threshold_at_fpr,
    threshold_max_accuracy,
    threshold_mean_std,
    threshold_percentile,
)

__all__ = [
    "Classification", "aupro", "binned_aupro", "check_defect_types", "check_finite_scores", "check_maps_masks",
    "check_scores_labels", "classify", "f1_max", "image_aupr", "image_auroc", "per_defect_auroc", "pixel_auroc",
    "pro_curve", "recall_at_fpr", "threshold_at_fpr", "threshold_max_accuracy", "threshold_mean_std",
    "threshold_percentile",
]


def image_auroc(scores: Any, labels: Any) -> float:
    """ROC AUC of image scores against 0/1 labels (ties count half; all-equal scores give 0.5)."""
    return _image_auroc(*check_scores_labels(scores, labels))


def _image_auroc(score_array: np.ndarray, label_array: np.ndarray) -> float:
    return float(roc_auc_score(label_array, score_array))


def recall_at_fpr(scores: Any, labels: Any, fpr: float = 0.01) -> float:
    """Highest recall (TPR) among ROC operating points with FPR <= ``fpr`` (MIAD's Recall@1%FPR).

    The threshold is set on the normal images of this very set (``threshold_at_fpr``), as MIAD does.
    """
    return _recall_at_fpr(*check_scores_labels(scores, labels), check_rate(fpr, "fpr", zero_ok=True))


def _recall_at_fpr(score_array: np.ndarray, label_array: np.ndarray, fpr: float) -> float:
    threshold = _threshold_at_fpr(score_array[~label_array], fpr)
    return float(np.mean(score_array[label_array] > threshold))


def image_aupr(scores: Any, labels: Any) -> float:
    """Area under the precision-recall curve as step-wise average precision (as anomalib's AUPR)."""
    return _image_aupr(*check_scores_labels(scores, labels))


def _image_aupr(score_array: np.ndarray, label_array: np.ndarray) -> float:
    return float(average_precision_score(label_array, score_array))


def f1_max(scores: Any, labels: Any) -> float:
    """Best F1 over all thresholds (anomalib's F1Max)."""
    return _f1_max(*check_scores_labels(scores, labels))


def _f1_max(score_array: np.ndarray, label_array: np.ndarray) -> float:
    precision, recall, _ = precision_recall_curve(label_array, score_array)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    return float(f1.max())


def per_defect_auroc(scores: Any, labels: Any, defect_types: Sequence[str]) -> dict[str, float]:
    """Image AUROC of each defect type's images against all normal images, by type name."""
    score_array, label_array = check_scores_labels(scores, labels)
    return _per_defect_auroc(score_array, label_array, check_defect_types(defect_types, score_array.size))


def check_defect_types(defect_types: Sequence[str], count: int) -> np.ndarray:
    """The defect types as an object array of ``count`` entries; ValueError on another length."""
    types = np.asarray(defect_types, dtype=object)
    if types.shape != (count,):
        raise ValueError(f"defect_types has {types.size} entries for {count} scores")
    return types


def _per_defect_auroc(score_array: np.ndarray, label_array: np.ndarray, types: np.ndarray) -> dict[str, float]:
    result = {}
    for kind in sorted(set(types[label_array])):
        subset = ~label_array | (types == kind)
        result[str(kind)] = float(roc_auc_score(label_array[subset], score_array[subset]))
    return result
