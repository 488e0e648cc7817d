"""The evaluation protocol: metric_row validates once and matches the public metrics; the train-score
strategy is one declared attribute, and IRP fits an out-of-fold scorer only for its folds."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from mkdata.benchmark import metrics
from mkdata.benchmark.cell import metric_row
from mkdata.benchmark.detectors.autoencoders import AEL2, AEMahalanobis
from mkdata.benchmark.detectors.base import Detector
from mkdata.benchmark.protocol import DEFAULT_PROTOCOL, EvaluationProtocol
from mkdata.benchmark.robust import WrapperSpec, fit_robust
from mkdata.benchmark.synthetic import SyntheticSet

CUSTOM = EvaluationProtocol(aupro_fpr_limit=0.1, recall_fpr=0.2, threshold_k=0.5, threshold_folds=4, ranking_folds=3)


@pytest.fixture
def cell_inputs(synthetic_set: SyntheticSet) -> dict[str, Any]:
    """metric_row's inputs on the synthetic test set: maps from each image's smoothed deviation from
    its median, scores their maxima plus noise, training scores drawn around the normal scores."""
    grey = synthetic_set.test.mean(axis=3) / 255
    maps = ndimage.gaussian_filter(np.abs(grey - np.median(grey, axis=(1, 2), keepdims=True)), sigma=(0, 1.5, 1.5))
    maps = maps.astype(np.float32)
    rng = np.random.default_rng(0)
    scores = maps.max(axis=(1, 2)) + rng.normal(0, 0.06, len(maps))  # noise, so normal and defective overlap
    return {
        "scores": scores, "labels": synthetic_set.labels, "types": synthetic_set.defect_types, "maps": maps,
        "masks": synthetic_set.masks, "train_scores": rng.normal(0.18, 0.03, 24),
    }


def public_row(inputs: dict[str, Any], fpr: float, fpr_limit: float, k: float) -> dict[str, float]:
    """The row the public (self-validating) metric functions give, with the constants passed explicitly."""
    scores, labels, maps, masks = inputs["scores"], inputs["labels"], inputs["maps"], inputs["masks"]
    row = {
        "image_auroc": metrics.image_auroc(scores, labels),
        "recall_at_1fpr": metrics.recall_at_fpr(scores, labels, fpr=fpr),
        "image_aupr": metrics.image_aupr(scores, labels),
        "f1_max": metrics.f1_max(scores, labels),
        "aupro": metrics.aupro(maps, masks, fpr_limit=fpr_limit),
        "pixel_auroc": metrics.pixel_auroc(maps, masks),
    }
    row.update({f"auroc[{t}]": v for t, v in metrics.per_defect_auroc(scores, labels, inputs["types"]).items()})
    for rule, threshold in (("unsupervised", metrics.threshold_mean_std(inputs["train_scores"], k=k)),
                            ("supervised", metrics.threshold_max_accuracy(scores, labels))):
        result = metrics.classify(scores, labels, threshold)
        row[f"accuracy_{rule}"], row[f"f1_{rule}"] = result.accuracy, result.f1
    return row


def test_default_protocol_is_the_one_results_were_scored_with() -> None:
    assert DEFAULT_PROTOCOL == EvaluationProtocol(aupro_fpr_limit=0.3, recall_fpr=0.01, threshold_k=2.0,
                                                  threshold_folds=3, ranking_folds=5)
    assert EvaluationProtocol(**DEFAULT_PROTOCOL.record()) == DEFAULT_PROTOCOL


def test_metric_row_with_the_default_protocol_equals_the_public_metrics(cell_inputs: dict[str, Any]) -> None:
    row = metric_row(**cell_inputs)
    assert row == public_row(cell_inputs, fpr=0.01, fpr_limit=0.3, k=2.0)  # the constants cell.py hard-coded
    assert row["image_auroc"] == pytest.approx(roc_auc_score(cell_inputs["labels"], cell_inputs["scores"]), abs=1e-12)
    pixels = roc_auc_score(cell_inputs["masks"].ravel(), cell_inputs["maps"].ravel())
    assert row["pixel_auroc"] == pytest.approx(pixels, abs=1e-9)
    assert {"auroc[blob]", "auroc[scratch]"} <= set(row)


def test_metric_row_scores_with_the_protocol_it_is_given(cell_inputs: dict[str, Any]) -> None:
    row = metric_row(**cell_inputs, protocol=CUSTOM)
    assert row == public_row(cell_inputs, fpr=CUSTOM.recall_fpr, fpr_limit=CUSTOM.aupro_fpr_limit, k=CUSTOM.threshold_k)
    default = metric_row(**cell_inputs)
    for column in ("recall_at_1fpr", "aupro", "accuracy_unsupervised"):  # each depends on one protocol field
        assert row[column] != default[column], column


def test_metric_row_takes_torch_tensors(cell_inputs: dict[str, Any]) -> None:
    torch = pytest.importorskip("torch")
    tensors = {k: torch.from_numpy(np.asarray(v)) if k != "types" else v for k, v in cell_inputs.items()}
    assert metric_row(**tensors) == metric_row(**cell_inputs)


def test_metric_row_leaves_pixel_metrics_nan_without_maps_or_defect_pixels(cell_inputs: dict[str, Any]) -> None:
    no_maps = metric_row(**{**cell_inputs, "maps": None})
    no_pixels = metric_row(**{**cell_inputs, "masks": np.zeros_like(cell_inputs["masks"])})
    for row in (no_maps, no_pixels):
        assert np.isnan(row["aupro"]) and np.isnan(row["pixel_auroc"])
        assert row["image_auroc"] == metric_row(**cell_inputs)["image_auroc"]


def _nan_at_first(values: np.ndarray) -> np.ndarray:
    values = values.astype(np.float64)
    values.flat[0] = np.nan
    return values


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"scores": _nan_at_first}, "scores contain NaN"),
        ({"labels": lambda labels: labels[:-1]}, "differ"),
        ({"labels": lambda labels: np.zeros_like(labels)}, "0 anomalous"),
        ({"types": lambda types: types[:-1]}, "defect_types has 15 entries for 16 scores"),
        ({"train_scores": _nan_at_first}, "train_scores contain NaN"),
        ({"maps": _nan_at_first}, r"maps contain NaN or infinite values \(image 0\)"),
        ({"maps": lambda maps: maps[:, :-1]}, "resize"),
        ({"maps": lambda maps: maps[:-1], "masks": lambda masks: masks[:-1]}, "maps hold 15 images for 16 scores"),
        ({"masks": lambda masks: masks * 2}, "only 0"),
    ],
)
def test_invalid_input_to_metric_row_raises_a_clear_value_error(cell_inputs: dict[str, Any], change: dict,
                                                                message: str) -> None:
    changed = {**cell_inputs, **{key: edit(cell_inputs[key]) for key, edit in change.items()}}
    with pytest.raises(ValueError, match=message):
        metric_row(**changed)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("aupro_fpr_limit", 0.0, "aupro_fpr_limit"), ("recall_fpr", 1.5, "recall_fpr"),
     ("threshold_k", float("nan"), "threshold_k"), ("threshold_folds", 1, "threshold_folds"),
     ("ranking_folds", 2.5, "ranking_folds")],
)
def test_invalid_protocol_values_are_rejected(field: str, value: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(DEFAULT_PROTOCOL, **{field: value})


# --- the train-score strategy ----------------------------------------------------------------------


def test_the_train_score_strategy_is_declared_and_checked_once_per_class() -> None:
    assert (AEL2.train_scoring, AEMahalanobis.train_scoring) == ("in_sample", "out_of_fold")
    with pytest.raises(TypeError, match="train_scoring"):
        type("Misdeclared", (AEL2,), {"train_scoring": "in-sample"})


def counting(cls: type[Detector]) -> type[Detector]:
    """A subclass of ``cls`` that counts its fits (fold clones included: they are built from ``type(self)``)."""

    class Counting(cls):  # type: ignore[misc, valid-type]
        fits = 0

        def _fit(self, images: np.ndarray) -> None:
            type(self).fits += 1
            super()._fit(images)

    return Counting


@pytest.mark.parametrize(
    ("cls", "params", "fits_per_round"),
    [(AEMahalanobis, {"n_features": 50}, CUSTOM.ranking_folds), (AEL2, {}, 1)],
    ids=["out_of_fold", "in_sample"],
)
def test_irp_fits_only_what_the_train_score_strategy_needs(synthetic_set_32: SyntheticSet, cls: type[Detector],
                                                           params: dict[str, Any], fits_per_round: int) -> None:
    """Each scoring round costs the strategy's fits (k folds, or the in-sample detector's own fit),
    plus one final fit: an out-of-fold scorer is not fitted once more per round for nothing."""
    detector_cls = counting(cls)
    images = synthetic_set_32.train[:10]
    spec = WrapperSpec("irp", T=1.0001, max_rounds=2, single=True)  # removes the top image every round

    def make() -> Detector:
        return detector_cls(cls.Params(device="cpu", image_size=32, epochs=1, batch_size=16, **params))

    fit = fit_robust(make, images, spec, CUSTOM)
    assert fit.rounds == 2 and len(fit.removed) == 2
    assert detector_cls.fits == fit.rounds * fits_per_round + 1
