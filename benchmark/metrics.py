"""Benchmark metrics: image AUROC, Recall@FPR, image AUPR and F1-max, per-defect-type AUROC,
AUPRO and pixel AUROC (``mkdata.benchmark.aupro``), and threshold rules
(``mkdata.benchmark.thresholds``).

Inputs are numpy arrays or torch tensors; labels and masks are 0 (normal) / 1 (anomalous).
Invalid input (NaN, shape mismatch, a missing class) raises ``ValueError``.

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
    check_scores_labels,
    classify,
    threshold_at_fpr,
    threshold_max_accuracy,
    threshold_mean_std,
    threshold_percentile,
)

__all__ = [
    "Classification", "aupro", "binned_aupro", "check_maps_masks", "classify", "f1_max", "image_aupr",
    "image_auroc", "per_defect_auroc", "pixel_auroc", "pro_curve", "recall_at_fpr",
    "threshold_at_fpr", "threshold_max_accuracy", "threshold_mean_std", "threshold_percentile",
]


def image_auroc(scores: Any, labels: Any) -> float:
    """ROC AUC of image scores against 0/1 labels (ties count half; all-equal scores give 0.5)."""
    score_array, label_array = check_scores_labels(scores, labels)
    return float(roc_auc_score(label_array, score_array))


def recall_at_fpr(scores: Any, labels: Any, fpr: float = 0.01) -> float:
    """Highest recall (TPR) among ROC operating points with FPR <= ``fpr`` (MIAD's Recall@1%FPR).

    The threshold is set on the normal images of this very set (``threshold_at_fpr``), as MIAD does.
    """
    score_array, label_array = check_scores_labels(scores, labels)
    threshold = threshold_at_fpr(score_array[~label_array], fpr)
    return float(np.mean(score_array[label_array] > threshold))


def image_aupr(scores: Any, labels: Any) -> float:
    """Area under the precision-recall curve as step-wise average precision (as anomalib's AUPR)."""
    score_array, label_array = check_scores_labels(scores, labels)
    return float(average_precision_score(label_array, score_array))


def f1_max(scores: Any, labels: Any) -> float:
    """Best F1 over all thresholds (anomalib's F1Max)."""
    score_array, label_array = check_scores_labels(scores, labels)
    precision, recall, _ = precision_recall_curve(label_array, score_array)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
    return float(f1.max())


def per_defect_auroc(scores: Any, labels: Any, defect_types: Sequence[str]) -> dict[str, float]:
    """Image AUROC of each defect type's images against all normal images, by type name."""
    score_array, label_array = check_scores_labels(scores, labels)
    types = np.asarray(defect_types, dtype=object)
    if types.shape != score_array.shape:
        raise ValueError(f"defect_types has {types.size} entries for {score_array.size} scores")
    result = {}
    for kind in sorted(set(types[label_array])):
        subset = ~label_array | (types == kind)
        result[str(kind)] = float(roc_auc_score(label_array[subset], score_array[subset]))
    return result

