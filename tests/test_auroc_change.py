"""``auroc_change``: its figures are sklearn's AUROCs, and its interval covers the true change of
simulated detectors about as often as it says."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from mkdata.benchmark.auroc_change import auroc_change

GOOD, BAD = 100, 100
LABELS = np.r_[np.zeros(GOOD, int), np.ones(BAD, int)]


def two_detectors(rng: np.random.Generator, shift_a: float, shift_b: float, correlation: float) -> tuple[np.ndarray, np.ndarray]:
    """Scores of two detectors on one test set: unit-variance normals, the defective images shifted
    (true AUROC Φ(shift/√2)), the detectors' noise correlated image by image."""
    shared, own = rng.normal(size=(2, GOOD + BAD))
    a = shared + shift_a * LABELS
    b = correlation * shared + np.sqrt(1 - correlation**2) * own + shift_b * LABELS
    return a, b


@pytest.mark.parametrize("seed", range(4))
def test_figures_are_the_mean_of_sklearns_aurocs_ties_included(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cells = [np.round(rng.normal(size=GOOD + BAD) + shift * LABELS, 1) for shift in (0.2, 0.9, 1.5)]
    change = auroc_change([(cells[0], LABELS)], [(cells[1], LABELS), (cells[2], LABELS)], same_images=True)
    assert change.before == pytest.approx(roc_auc_score(LABELS, cells[0]), abs=1e-12)
    assert change.after == pytest.approx(np.mean([roc_auc_score(LABELS, c) for c in cells[1:]]), abs=1e-12)
    assert change.low <= change.delta <= change.high


@pytest.mark.parametrize("same_images", [True, False])
def test_the_95_percent_interval_covers_the_true_change_about_95_percent_of_the_time(same_images: bool) -> None:
    shift_a, shift_b = 0.6, 1.0
    truth = norm.cdf(shift_b / np.sqrt(2)) - norm.cdf(shift_a / np.sqrt(2))
    rng = np.random.default_rng(17)
    covered, widths = [], []
    for replication in range(150):
        a, b = two_detectors(rng, shift_a, shift_b, correlation=0.8)
        if not same_images:  # the after side scored its own, independent test set
            b = two_detectors(rng, shift_a, shift_b, correlation=0.8)[1]
        change = auroc_change([(a, LABELS)], [(b, LABELS)], same_images=same_images, resamples=1000, seed=replication)
        covered.append(change.low <= truth <= change.high)
        widths.append(change.high - change.low)
    assert 0.88 <= np.mean(covered) <= 0.99
    # Pairing removes the test set's luck: correlated detectors on one test set give a far narrower interval.
    assert np.mean(widths) < (0.12 if same_images else 0.30)
    assert np.mean(widths) > (0.05 if same_images else 0.15)


def test_a_clear_change_and_no_change_get_their_verdicts() -> None:
    rng = np.random.default_rng(3)
    a, b = two_detectors(rng, 0.3, 1.5, correlation=0.5)
    assert auroc_change([(a, LABELS)], [(b, LABELS)], same_images=True).verdict == "higher"
    assert auroc_change([(b, LABELS)], [(a, LABELS)], same_images=True).verdict == "lower"
    unchanged = auroc_change([(a, LABELS)], [(a, LABELS)], same_images=True)
    assert (unchanged.delta, unchanged.low, unchanged.high, unchanged.verdict) == (0, 0, 0, "no clear change")


def test_cells_that_are_not_one_test_set_are_refused() -> None:
    scores = np.linspace(0, 1, GOOD + BAD)
    with pytest.raises(ValueError, match="before's cells are not scored on one test set"):
        auroc_change([(scores, LABELS), (scores, LABELS[::-1])], [(scores, LABELS)], same_images=False)
    with pytest.raises(ValueError, match="different labels"):
        auroc_change([(scores, LABELS)], [(scores, LABELS[::-1])], same_images=True)
    with pytest.raises(ValueError, match="after has no cells"):
        auroc_change([(scores, LABELS)], [], same_images=False)
