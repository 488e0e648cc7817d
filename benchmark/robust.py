"""Robust training wrappers: vanilla, OSR (one-shot removal) and IRP (iterative refinement).

IRP (Aqeel et al.): fit, score every training image, M = median score; remove the images scoring
above T·M, refit on the rest, repeat until none is removed or ``max_rounds`` is reached (the batch
form; ``single=True`` removes only the arg-max per round, the paper's original form). OSR is one
such round. Training scores come from ``Detector.train_scores``, as the detector class declares
(``train_scoring``: k-fold with the protocol's ``ranking_folds`` for memory-bank detectors, or
in-sample). Scores are shifted so the lowest is 0 when any is negative, keeping T·M meaningful.
Every scoring round is logged (median, threshold, the images removed and their scores), so a
cell can say which removals were contaminated images (IRP's Table 2: good / bad removed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mkdata.benchmark.datasets import SampleImages
from mkdata.benchmark.detectors.base import Detector
from mkdata.benchmark.protocol import DEFAULT_PROTOCOL, EvaluationProtocol

WRAPPERS = ("vanilla", "osr", "irp")


@dataclass(frozen=True)
class WrapperSpec:
    name: str = "vanilla"
    T: float = 2.0  # removal threshold as a multiple of the median training score
    max_rounds: int = 5
    single: bool = False

    def __post_init__(self) -> None:
        if self.name not in WRAPPERS:
            raise ValueError(f"unknown robust wrapper {self.name!r}; valid: {', '.join(WRAPPERS)}")
        if self.T <= 1.0:
            raise ValueError(f"wrapper {self.name}: T must be > 1 (a multiple of the median score), got {self.T}")
        if self.max_rounds < 1:
            raise ValueError(f"wrapper {self.name}: max_rounds must be >= 1")

    @property
    def label(self) -> str:
        return self.name if self.name == "vanilla" else f"{self.name}(T={self.T:g})"


@dataclass(frozen=True)
class Removal:
    """What the rule decides on one round's scores (positions index those scores)."""

    positions: np.ndarray  # removed
    shifted: np.ndarray  # every score, shifted so the lowest is >= 0 when any is negative
    median: float  # of the shifted scores
    threshold: float  # T x median
    above: int  # how many scores lie above the threshold


@dataclass(frozen=True)
class RemovalRound:
    """One scoring round of OSR/IRP, for the removal log (indices into the images ``fit_robust`` got)."""

    median: float
    threshold: float
    scored: int
    above: int  # above the threshold; more than ``removed`` when removing them would leave < 2 images
    removed: tuple[int, ...]
    scores: tuple[float, ...]  # shifted scores of the removed images, compared with ``threshold``


@dataclass
class RobustFit:
    detector: Detector
    kept: np.ndarray  # indices of the training images the final model was fitted on
    removed: np.ndarray  # indices removed, in removal order
    rounds: int
    log: list[RemovalRound] = field(default_factory=list)  # one entry per scoring round


def to_removal(scores: np.ndarray, T: float, single: bool) -> Removal:
    """The images a round removes: those above T x the median score (``single``: only the worst)."""
    shifted = scores - min(0.0, float(scores.min()))
    median = float(np.median(shifted))
    above = np.flatnonzero(shifted > T * median)
    positions = np.array([int(np.argmax(shifted))]) if single and len(above) else above
    return Removal(positions, shifted, median, T * median, len(above))


def _scored(make: Callable[[], Detector], images: np.ndarray | SampleImages, folds: int) -> tuple[Detector | None, np.ndarray]:
    """Training scores of ``images``, plus the detector when scoring fitted it on all of them.

    An unfitted in-sample scorer fits itself to score; out-of-fold scoring fits only fold clones.
    """
    detector = make()
    scores = detector.train_scores(images, folds=folds)
    return (detector if detector.image_shape is not None else None), scores


def fit_robust(make: Callable[[], Detector], images: np.ndarray | SampleImages, spec: WrapperSpec,
               protocol: EvaluationProtocol = DEFAULT_PROTOCOL) -> RobustFit:
    """Fit a detector from ``make()`` on ``images`` under the wrapper ``spec``, logging each round.

    ``images``: an array, or (for a ``streams_fit`` detector) ``SampleImages``, each round's kept
    images then a subset of it, decoded batch by batch. Out-of-fold training scores use
    ``protocol.ranking_folds``. A round whose scoring already fitted the detector on the kept
    images (in-sample scorers) hands that fit back when it removes nothing, so the final model is
    not trained twice.
    """
    kept = np.arange(len(images))
    removed: list[int] = []
    log: list[RemovalRound] = []
    rounds = 0 if spec.name == "vanilla" else (1 if spec.name == "osr" else spec.max_rounds)
    for done in range(rounds):
        fitted, scores = _scored(make, images[kept], protocol.ranking_folds)
        rule = to_removal(scores, spec.T, spec.single)
        stop = len(rule.positions) == 0 or len(rule.positions) >= len(kept) - 1
        drop = np.array([], int) if stop else rule.positions
        log.append(RemovalRound(rule.median, rule.threshold, len(kept), rule.above, tuple(kept[drop].tolist()),
                                tuple(rule.shifted[drop].tolist())))
        if stop:
            return RobustFit(fitted or make().fit(images[kept]), kept, np.array(removed, int), done + 1, log)
        removed += kept[drop].tolist()
        kept = np.delete(kept, drop)
    return RobustFit(make().fit(images[kept]), kept, np.array(removed, int), rounds, log)
