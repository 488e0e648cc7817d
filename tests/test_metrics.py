"""Metrics against independent references: sklearn, anomalib, a naive AUPRO, and hand-built cases."""

from __future__ import annotations

from types import ModuleType, SimpleNamespace

import numpy as np
import pytest
from scipy import ndimage
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score, roc_curve

import mkdata.benchmark.aupro as aupro_module
from mkdata.benchmark.metrics import (
    aupro,
    binned_aupro,
    classify,
    f1_max,
    image_aupr,
    image_auroc,
    per_defect_auroc,
    pixel_auroc,
    recall_at_fpr,
    threshold_at_fpr,
    threshold_max_accuracy,
    threshold_mean_std,
    threshold_percentile,
)


@pytest.fixture
def torch() -> ModuleType:
    """The torch module where installed (the bench extra); tests needing it skip otherwise."""
    return pytest.importorskip("torch")


def naive_aupro(maps: np.ndarray, masks: np.ndarray, limit: float) -> float:
    """The MVTec AD definition, literally: one pass over the maps per distinct threshold."""
    maps = np.asarray(maps, dtype=np.float64)
    masks = np.asarray(masks).astype(bool)
    regions = np.zeros(masks.shape, dtype=int)  # ground-truth components numbered 1.. across images
    for index, mask in enumerate(masks):
        labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
        regions[index] = np.where(labels > 0, labels + regions.max(), 0)
    sizes = np.bincount(regions.ravel())[1:]
    normal = ~masks
    fpr, pro = [0.0], [0.0]
    for threshold in np.unique(maps)[::-1]:
        above = maps >= threshold
        fpr.append(np.sum(above & normal) / np.sum(normal))
        pro.append(np.mean(np.bincount(regions[above], minlength=sizes.size + 1)[1:] / sizes))
    area = 0.0
    for f0, f1, p0, p1 in zip(fpr, fpr[1:], pro, pro[1:]):
        if f1 >= limit:
            p_limit = p0 + (p1 - p0) * (limit - f0) / (f1 - f0)
            return (area + (limit - f0) * (p0 + p_limit) / 2) / limit
        area += (f1 - f0) * (p0 + p1) / 2
    raise AssertionError("the FPR always reaches 1")


def random_case(rng: np.random.Generator, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    """Small maps with many one-pixel and diagonal regions; ``ties`` quantises scores to a few levels."""
    shape = (int(rng.integers(1, 4)), int(rng.integers(1, 9)), int(rng.integers(1, 9)))
    maps = rng.random(shape).astype(np.float32)
    if ties:
        maps = np.round(maps * rng.integers(1, 5)).astype(np.float32)
    masks = rng.random(shape) < rng.uniform(0.05, 0.5)
    masks.flat[0], masks.flat[-1] = True, False  # at least one anomalous and one normal pixel
    return maps, masks


def blob_case(seed: int, count: int = 6, size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Smooth maps with a few discs per defective image, a bump of random strength on each."""
    rng = np.random.default_rng(seed)
    maps = ndimage.gaussian_filter(rng.normal(size=(count, size, size)), sigma=(0, 3, 3)) * 4
    masks = np.zeros((count, size, size), dtype=np.uint8)
    yy, xx = np.mgrid[0:size, 0:size]
    for image in range(1, count):
        for _ in range(int(rng.integers(1, 4))):
            cy, cx = rng.uniform(5, size - 5, 2)
            disc = np.hypot(yy - cy, xx - cx) <= rng.uniform(1, 5)
            masks[image][disc] = 1
            maps[image][disc] += rng.uniform(0, 2)
    return maps.astype(np.float32), masks


# --- image level --------------------------------------------------------------------------------


def scored_images(seed: int, normal: int = 120, anomalous: int = 80) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scores = np.r_[rng.normal(0, 1, normal), rng.normal(1.2, 1, anomalous)]
    if seed % 2:
        scores = np.round(scores * 2) / 2  # many ties
    return scores, np.r_[np.zeros(normal, int), np.ones(anomalous, int)]


@pytest.mark.parametrize("seed", range(6))
def test_image_auroc_equals_sklearn_including_ties_and_torch_input(seed: int, torch: ModuleType) -> None:
    scores, labels = scored_images(seed)
    expected = roc_auc_score(labels, scores)
    assert image_auroc(scores, labels) == pytest.approx(expected, abs=1e-12)
    assert image_auroc(torch.from_numpy(scores), torch.from_numpy(labels)) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("fpr", [0.0, 0.01, 0.05, 0.3, 1.0])
def test_recall_at_fpr_is_the_best_tpr_of_roc_points_within_the_fpr(seed: int, fpr: float) -> None:
    scores, labels = scored_images(seed, normal=250 + 17 * seed)
    roc_fpr, roc_tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    assert recall_at_fpr(scores, labels, fpr) == pytest.approx(roc_tpr[roc_fpr <= fpr].max(), abs=1e-12)


@pytest.mark.parametrize(("normal", "fpr"), [(101, 0.01), (201, 0.05), (2501, 0.01)])
def test_recall_at_fpr_equals_anomalib_pbn_where_its_quantile_hits_a_score(normal: int, fpr: float, torch: ModuleType) -> None:
    """PBn thresholds at torch.quantile(normal, 1 - fpr) (interpolated); with (normal - 1) * fpr whole,
    that quantile is the score MIAD's rule picks, so both give the same recall."""
    from anomalib.metrics import PBn

    scores, labels = scored_images(0, normal=normal, anomalous=300)
    scores = scores.astype(np.float32)  # PBn needs float32
    metric = PBn(fpr=fpr, fields=["pred_score", "gt_label"])
    metric.update(SimpleNamespace(pred_score=torch.from_numpy(scores), gt_label=torch.from_numpy(labels)))
    assert recall_at_fpr(scores, labels, fpr) == pytest.approx(float(metric.compute()), abs=1e-7)  # float32 result


@pytest.mark.parametrize("seed", range(4))
def test_image_aupr_and_f1_max_equal_anomalib(seed: int, torch: ModuleType) -> None:
    from anomalib.metrics import AUPR, F1Max

    scores, labels = scored_images(seed)
    batch = SimpleNamespace(pred_score=torch.from_numpy(scores).float(), gt_label=torch.from_numpy(labels))
    for metric_class, ours in [(AUPR, image_aupr), (F1Max, f1_max)]:
        metric = metric_class(fields=["pred_score", "gt_label"])
        metric.update(batch)
        assert ours(scores, labels) == pytest.approx(float(metric.compute()), abs=1e-6)


def test_f1_max_is_the_best_f1_over_every_threshold() -> None:
    scores, labels = scored_images(3)
    best = max(f1_score(labels, scores >= t, zero_division=0) for t in np.unique(scores))
    assert f1_max(scores, labels) == pytest.approx(best, abs=1e-12)


def test_all_equal_scores_give_chance_level() -> None:
    labels = np.r_[np.zeros(5), np.ones(5)]
    assert image_auroc(np.ones(10), labels) == 0.5
    assert recall_at_fpr(np.ones(10), labels, 0.01) == 0.0


def test_per_defect_auroc_ranks_each_type_against_all_normal_images() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.9, 0.8, 0.05, 0.25])
    labels = np.array([0, 0, 0, 1, 1, 1, 1])
    types = ["good", "good", "good", "crack", "crack", "rust", "rust"]
    # crack above every normal; rust: 0.05 below all three, 0.25 above two of three -> 2 / 6.
    assert per_defect_auroc(scores, labels, types) == {"crack": 1.0, "rust": pytest.approx(2 / 6)}


def test_threshold_rules_on_known_scores() -> None:
    normal = np.array([1.0, 2.0, 3.0, 4.0])
    assert threshold_mean_std(normal) == pytest.approx(2.5 + 2 * np.sqrt(1.25))
    assert threshold_percentile(normal, 50) == pytest.approx(2.5)
    assert threshold_at_fpr(normal, 0.25) == 3.0  # only 4.0 is above it: FPR 1/4
    assert threshold_at_fpr(normal, 0.2) == 4.0
    assert threshold_at_fpr(normal, 1.0) == -np.inf


@pytest.mark.parametrize("seed", range(4))
def test_max_accuracy_threshold_is_the_lowest_best_threshold(seed: int) -> None:
    scores, labels = scored_images(seed, normal=40, anomalous=30)
    candidates = np.r_[-np.inf, np.unique(scores)]
    accuracies = np.array([accuracy_score(labels, scores > t) for t in candidates])
    chosen = threshold_max_accuracy(scores, labels)
    assert chosen == candidates[np.flatnonzero(accuracies == accuracies.max())[0]]
    assert classify(scores, labels, chosen).accuracy == pytest.approx(accuracies.max())


@pytest.mark.parametrize("threshold", [-np.inf, -0.5, 0.5, 1.0, 10.0])
def test_classification_figures_equal_sklearn(threshold: float) -> None:
    scores, labels = scored_images(1)
    predicted = scores > threshold
    result = classify(scores, labels, threshold)
    assert result.accuracy == pytest.approx(accuracy_score(labels, predicted))
    assert result.precision == pytest.approx(precision_score(labels, predicted, zero_division=0))
    assert result.recall == pytest.approx(recall_score(labels, predicted))
    assert result.f1 == pytest.approx(f1_score(labels, predicted, zero_division=0))


@pytest.mark.parametrize(
    ("scores", "labels", "message"),
    [
        ([0.1, np.nan, 0.3], [0, 1, 1], "NaN"),
        ([0.1, 0.2, 0.3], [0, 1], "differ"),
        ([0.1, 0.2, 0.3], [0, 2, 1], "only 0"),
        ([0.1, 0.2, 0.3], [1, 1, 1], "0 normal"),
        ([0.1, 0.2, 0.3], [0, 0, 0], "0 anomalous"),
        ([[0.1, 0.2]], [[0, 1]], "one-dimensional"),
    ],
)
def test_invalid_image_inputs_raise_clear_errors(scores: list, labels: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        image_auroc(np.array(scores), np.array(labels))


def test_fpr_outside_zero_one_is_rejected() -> None:
    scores, labels = scored_images(0)
    with pytest.raises(ValueError, match="fpr"):
        recall_at_fpr(scores, labels, 1.5)


# --- AUPRO and pixel AUROC ----------------------------------------------------------------------


@pytest.mark.parametrize("split", [False, True], ids=["one-chunk", "chunk-per-image-sampled-floor"])
def test_exact_aupro_equals_naive_definition_on_random_cases(split: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if split:  # every image its own chunk on two threads, and the floor estimated from 5 sampled pixels
        monkeypatch.setattr(aupro_module, "CHUNK_PIXELS", 1)
        monkeypatch.setattr(aupro_module, "SAMPLE_PIXELS", 5)
    rng = np.random.default_rng(7)
    for case in range(120):
        maps, masks = random_case(rng, ties=case % 2 == 1)
        limit = float(rng.choice([0.3, 0.05, 0.5, 1.0]))
        expected = naive_aupro(maps, masks, limit)
        assert aupro(maps, masks, limit, workers=2) == pytest.approx(expected, abs=1e-6), case
        value, bound = binned_aupro(maps, masks, limit, workers=2)
        assert abs(value - expected) <= bound + 1e-12, case


def test_too_high_floor_estimate_falls_back_to_a_full_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    maps, masks = blob_case(1, count=4, size=24)
    monkeypatch.setattr(aupro_module, "_normal_floor", lambda maps, masks, rate: float(maps.max()))
    assert aupro(maps, masks) == pytest.approx(naive_aupro(maps, masks, 0.3), abs=1e-6)
    value, bound = binned_aupro(maps, masks)
    assert abs(value - naive_aupro(maps, masks, 0.3)) <= bound + 1e-12


@pytest.mark.parametrize("seed", range(3))
def test_pixel_auroc_equals_sklearn(seed: int) -> None:
    maps, masks = blob_case(seed)
    maps = np.round(maps, 1) if seed == 2 else maps  # ties
    assert pixel_auroc(maps, masks) == pytest.approx(roc_auc_score(masks.ravel(), maps.ravel()), abs=1e-9)


def test_aupro_with_one_pixel_regions_up_to_fpr_one_is_the_pixel_auroc() -> None:
    rng = np.random.default_rng(3)
    maps = rng.random((4, 20, 20)).astype(np.float32)
    masks = np.zeros(maps.shape, dtype=bool)
    masks[:, ::3, ::3] = rng.random((4, 7, 7)) < 0.4  # isolated pixels: every region has one pixel
    assert aupro(maps, masks, fpr_limit=1.0) == pytest.approx(roc_auc_score(masks.ravel(), maps.ravel()), abs=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_aupro_agrees_with_anomalib(seed: int, torch: ModuleType) -> None:
    """anomalib 2.7's AUPRO defines the same number (cv2 8-connected components, FPR over all normal
    pixels, ties as one point, last segment interpolated, divided by the limit). It works in
    float32: the maps are cast and each curve point is rounded to float32 (relative error 6e-8;
    its cumsum accumulates in float64), so 1e-6 covers it."""
    from anomalib.metrics import AUPRO

    maps, masks = blob_case(seed, count=8, size=64)
    if seed % 2:
        maps = np.round(maps, 1)
    for limit in (0.3, 0.05):
        metric = AUPRO(fields=["anomaly_map", "gt_mask"], fpr_limit=limit)
        metric.update(SimpleNamespace(anomaly_map=torch.from_numpy(maps), gt_mask=torch.from_numpy(masks)))
        assert aupro(maps, masks, limit) == pytest.approx(float(metric.compute()), abs=1e-6)


def test_float64_maps_keep_differences_that_anomalib_rounds_away(torch: ModuleType) -> None:
    """By design anomalib casts maps to float32; scores closer than float32 resolves become ties there."""
    from anomalib.metrics import AUPRO

    maps, masks = blob_case(4)
    fine = 1 + 1e-6 * maps.astype(np.float64)  # order kept in float64, ~100 levels left in float32
    metric = AUPRO(fields=["anomaly_map", "gt_mask"])
    metric.update(SimpleNamespace(anomaly_map=torch.from_numpy(fine), gt_mask=torch.from_numpy(masks)))
    anomalib_value = float(metric.compute())
    assert anomalib_value == pytest.approx(aupro(fine.astype(np.float32), masks), abs=1e-6)
    assert aupro(fine, masks) == pytest.approx(aupro(maps, masks), abs=1e-9)
    assert abs(aupro(fine, masks) - anomalib_value) > 1e-4


def test_hand_built_cases_with_known_answers() -> None:
    masks = np.zeros((2, 6, 6), dtype=np.uint8)
    masks[1, 1:3, 1:4] = 1
    masks[1, 5, 5] = 1
    separated = np.where(masks == 1, 2.0, np.linspace(0, 1, 72).reshape(2, 6, 6))
    for limit in (0.01, 0.3, 1.0):
        assert aupro(separated, masks, limit) == pytest.approx(1.0, abs=1e-12)
        assert aupro(-separated, masks, limit) == pytest.approx(0.0, abs=1e-12)
        assert aupro(np.ones((2, 6, 6)), masks, limit) == pytest.approx(limit / 2, abs=1e-12)  # diagonal


def test_known_pro_curve_with_regions_constant_inside() -> None:
    """Normals score 1..1000; region A (score 2000) is found at once, B (900.5) at FPR 0.1:
    PRO is 0.5 up to FPR 0.1, then 1, so the area to 0.3 is 0.05 + 0.2 and AUPRO 5/6."""
    scores = np.r_[2000.0, 1.0, 900.5, np.arange(2.0, 1001.0)]
    mask = np.zeros(scores.size, dtype=bool)
    mask[[0, 2]] = True
    maps, masks = scores.reshape(1, 1, -1), mask.reshape(1, 1, -1)
    assert aupro(maps, masks, 0.3) == pytest.approx(5 / 6, abs=1e-12)
    assert aupro(maps, masks, 0.05) == pytest.approx(0.5, abs=1e-12)


def test_regions_are_eight_connected() -> None:
    """A diagonal pair found at once plus a single pixel never found: 8-connectivity gives two
    regions (PRO 1/2 throughout); 4-connectivity would give three (2/3)."""
    masks = np.zeros((1, 8, 8), dtype=bool)
    masks[0, 1, 1] = masks[0, 2, 2] = masks[0, 6, 6] = True
    maps = np.full((1, 8, 8), 0.5)
    maps[0, 1, 1] = maps[0, 2, 2] = 1.0
    maps[0, 6, 6] = 0.0
    assert aupro(maps, masks, 0.3) == pytest.approx(0.5, abs=1e-12)


def test_binned_error_bound_holds_and_is_small_on_smooth_maps() -> None:
    maps, masks = blob_case(5, count=10, size=64)
    for limit in (0.3, 0.05, 1.0):
        exact = aupro(maps, masks, limit)
        value, bound = binned_aupro(maps, masks, limit)
        assert abs(value - exact) <= bound + 1e-12
        assert bound < 1e-3
        assert aupro(maps, masks, limit, binned=True) == value


def test_float16_maps_are_exact_and_binned_has_a_bucket_per_value(torch: ModuleType) -> None:
    maps, masks = blob_case(6)
    half = (maps - 1).astype(np.float16)  # negative and positive values
    half[0, :4, :4] = np.float16(-0.0)
    half[0, 4:8, :4] = np.float16(0.0)
    expected = naive_aupro(half[:3], masks[:3], 0.3)
    assert aupro(half[:3], masks[:3]) == pytest.approx(expected, abs=1e-6)
    from_torch = aupro(torch.from_numpy(half), torch.from_numpy(masks))
    assert from_torch == pytest.approx(aupro(half.astype(np.float64), masks), abs=1e-12)
    assert binned_aupro(half, masks)[0] == pytest.approx(aupro(half, masks), abs=1e-12)


def test_channel_axis_and_torch_bool_masks_are_accepted(torch: ModuleType) -> None:
    maps, masks = blob_case(2)
    expected = aupro(maps, masks)
    assert aupro(torch.from_numpy(maps)[:, None], torch.from_numpy(masks.astype(bool))[:, None]) == expected


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda maps, masks: (np.where(masks == 1, np.nan, maps), masks), "NaN"),
        (lambda maps, masks: (maps[:, :32, :32], masks), "resize"),
        (lambda maps, masks: (maps, masks * 2), "only 0"),
        (lambda maps, masks: (maps, np.zeros_like(masks)), "no anomalous"),
        (lambda maps, masks: (maps, np.ones_like(masks)), "normal pixels"),
        (lambda maps, masks: (maps[0], masks[0]), "N×H×W"),
    ],
)
def test_invalid_maps_and_masks_raise_clear_errors(change, message: str) -> None:  # noqa: ANN001
    maps, masks = change(*blob_case(0))
    for function in (aupro, binned_aupro, pixel_auroc):
        with pytest.raises(ValueError, match=message):
            function(maps, masks)


@pytest.mark.parametrize("limit", [0.0, -0.1, 1.5])
def test_fpr_limit_outside_zero_one_is_rejected(limit: float) -> None:
    with pytest.raises(ValueError, match="fpr_limit"):
        aupro(*blob_case(0), fpr_limit=limit)


def test_pro_curve_integrates_to_the_exact_aupro() -> None:
    from mkdata.benchmark.metrics import pro_curve

    rng = np.random.default_rng(11)
    masks = np.zeros((6, 40, 40), np.uint8)
    masks[:3, 10:20, 12:25] = 1
    masks[1, 30:33, 30:38] = 1
    maps = rng.random((6, 40, 40)).astype(np.float16) + 0.6 * masks  # float16: binned points are exact
    fpr, pro = pro_curve(maps, masks, fpr_limit=0.3)
    assert fpr[0] == 0 and fpr[-1] == pytest.approx(0.3) and np.all(np.diff(fpr) >= 0) and np.all(np.diff(pro) >= 0)
    assert np.trapezoid(pro, fpr) / 0.3 == pytest.approx(aupro(maps, masks, fpr_limit=0.3), abs=2e-3)
