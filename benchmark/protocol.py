"""The evaluation protocol: every constant that decides how a benchmark cell is scored.

One frozen value, passed to ``cell.metric_row`` and ``robust.fit_robust`` and recorded under
``"protocol"`` in every ``result.json``, so each result says how it was scored. The defaults are
the values every result so far was produced with.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from mkdata.benchmark.thresholds import check_rate


@dataclass(frozen=True)
class EvaluationProtocol:
    """How a cell is scored; fields are checked once, here, so the metrics need not re-check them."""

    aupro_fpr_limit: float = 0.3  # AUPRO (and the report's PRO curve) integrates FPR 0..limit
    recall_fpr: float = 0.01  # Recall@FPR: the threshold allows this FPR on the test set's normals
    threshold_k: float = 2.0  # unsupervised threshold: mean + k * std of the training scores
    # Out-of-fold training scores take a k-fold refit of the detector (in-sample scorers ignore
    # both counts). The two counts differ on purpose: the threshold's folds are paid by every cell,
    # vanilla included, on top of its fit (for PatchCore most of the cell's time), so they are few;
    # IRP/OSR's folds decide which images are removed, and 5 folds fit each fold model on 80 % of
    # the images, closer to the model being cleaned. Changing either changes results.
    threshold_folds: int = 3
    ranking_folds: int = 5

    def __post_init__(self) -> None:
        check_rate(self.aupro_fpr_limit, "aupro_fpr_limit", zero_ok=False)
        check_rate(self.recall_fpr, "recall_fpr", zero_ok=True)
        if not math.isfinite(self.threshold_k):
            raise ValueError(f"threshold_k must be a finite number, got {self.threshold_k}")
        for name in ("threshold_folds", "ranking_folds"):
            folds = getattr(self, name)
            if not isinstance(folds, int) or folds < 2:
                raise ValueError(f"{name} must be an integer >= 2 (k-fold needs two folds), got {folds!r}")

    def record(self) -> dict[str, Any]:
        """The protocol as the plain dict stored in ``result.json``."""
        return dataclasses.asdict(self)


DEFAULT_PROTOCOL = EvaluationProtocol()

__all__ = ["DEFAULT_PROTOCOL", "EvaluationProtocol"]
