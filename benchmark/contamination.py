"""Noise injectors: contaminate a "normal" training set with anomalous images at a known ratio.

The noise level R is the fraction of anomalous images in the training set, at most 0.5 (IRP's
range: beyond it the anomalies are the majority, "normal" is no longer what most of the training
set shows, and a rule on the median training score, as IRP's, removes normal images). Kinds:

- ``pool``: defective images rendered for training (training viewpoints, backgrounds and
  surfaces), read from the pool beside SRC (``mkdata.files.pool_dir``: ``SRC_pool/test/<type>/``
  with masks in ``SRC_pool/ground_truth/<type>/``), which ``mkdata miad --contamination-pool N`` renders.
- ``test-defects`` (IRP/SoftPatch protocol for external data such as MVTec AD): defective test
  images move into training and leave the test set (at most half of each defect type, so every
  type keeps at least half of its images in the test set); ``overlap`` keeps them in the test set
  too (then all may be used).
- ``synthetic``: CutPaste and Perlin-noise anomalies synthesised on normal training images
  (``synthetic_anomalies``), alternating in draw order.

``defective`` is accepted as an alias of ``test-defects`` (the injector's former name).

Modes: ``replace`` keeps the training-set size (R·N normal images are left out, as many anomalous
ones come in; synthetic anomalies replace the normal image they are made from), ``add`` keeps every
normal image and adds R·n/(1 − R) anomalous ones. The count is the one whose share is nearest R.

Draws are seeded prefixes of draw orders (``mkdata.seeds``: separate streams for the normal
images left out, the anomalies chosen and the training order), so a lower ratio's anomalies are a
subset of a higher one's with the same seed, and the training order says nothing of which images
are anomalous. Pool and test defects are drawn stratified by defect type: each type's images in
a seeded random order, the types interleaved in proportion to their counts (Sainte-Laguë, which
keeps the draws nested), so the training anomalies mix the types as the candidates do.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from mkdata.benchmark.datasets import DatasetSplit, Sample, resized
from mkdata.benchmark.synthetic_anomalies import METHODS, synthesise
from mkdata.errors import BadInput
from mkdata.files import list_images, pool_dir
from mkdata.seeds import seed_sequence

KINDS = ("pool", "test-defects", "synthetic")
ALIASES = {"defective": "test-defects"}
INJECTORS = KINDS + tuple(ALIASES)  # every name a config may give
MODES = ("replace", "add")
MAX_RATIO = 0.5
MAX_MOVED_FRACTION = 0.5  # without overlap, at most half of each defect type's test images move into training
CANDIDATES = {  # what the drawn indices of each kind index into
    "pool": "SRC_pool images, by defect type then name",
    "test-defects": "SRC's defective test images, by defect type then name",
    "synthetic": "SRC's training images by name (each chosen one is the base of a synthesised anomaly)",
}


@dataclass(frozen=True)
class SyntheticSample(Sample):
    """An anomaly synthesised on the normal image at ``path``; ``defect_type`` is the method and
    ``stream`` the ``mkdata.seeds`` parts of its random stream. It is no file of its own."""

    stream: tuple[int | str, ...] = ()

    def synthesised(self) -> tuple[np.ndarray, np.ndarray]:
        """The edited image (H×W×3 uint8) and its 0/1 mask, at the base image's resolution."""
        base = np.asarray(Image.open(self.path).convert("RGB"))
        return synthesise(base, self.defect_type, np.random.default_rng(seed_sequence(*self.stream)))

    def pixels(self, size: int) -> np.ndarray:
        """The edited image as size×size×3 uint8, resized as its written file would be on reading
        (so a cell sees what it would read from a dataset written by ``contaminate_dataset``)."""
        return resized(Image.fromarray(self.synthesised()[0]), size)


@dataclass(frozen=True)
class Contamination:
    """A contaminated split and how it was drawn (what ``contamination.json`` records)."""

    split: DatasetSplit  # train in its final order with per-image contaminated flags; the test set left
    kind: str
    mode: str
    ratio: float
    seed: int
    overlap: bool
    left_out: tuple[int, ...]  # indices into the source's training images left out (replace mode)
    chosen: tuple[int, ...]  # indices into ``candidates`` of the anomalies, in draw order
    candidates: tuple[Sample, ...]  # pool images, test defects, or (synthetic) the normal training images
    moved_out_of_test: tuple[Sample, ...]  # test images no longer in the test set

    @property
    def n_anomalous(self) -> int:
        return len(self.chosen)

    @property
    def achieved_ratio(self) -> float:
        return self.n_anomalous / len(self.split.train)


def unknown_kind(kind: object) -> str:
    """Why ``kind`` is no contamination kind, listing the valid ones."""
    aliases = ", ".join(f"{alias} = {name}" for alias, name in ALIASES.items())
    return f"unknown contamination kind {kind!r}; valid: {', '.join(KINDS)} ({aliases})"


def canonical_kind(kind: str) -> str:
    """``kind`` with aliases resolved; BadInput naming the valid kinds otherwise."""
    if kind not in INJECTORS:
        raise BadInput(f"--kind: {unknown_kind(kind)}")
    return ALIASES.get(kind, kind)


def default_kind(root: Path) -> str:
    """``pool`` when the dataset has a pool of defective training-condition images, else ``test-defects``."""
    return "pool" if read_pool(root) else "test-defects"


def check_request(ratio: float, mode: str, overlap: bool, seed: int, kind: str) -> None:
    """BadInput naming the option when a contamination request is malformed (data not looked at)."""
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0.0 <= ratio <= MAX_RATIO:
        raise BadInput(f"--ratio must be a number in [0, {MAX_RATIO}] (the anomalous share of the training set; "
                       f"above {MAX_RATIO} anomalies would be the majority), got {ratio!r}")
    if mode not in MODES:
        raise BadInput(f"--mode: unknown mode {mode!r}; valid: {', '.join(MODES)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise BadInput(f"--seed must be a non-negative integer, got {seed!r}")
    if overlap and kind != "test-defects":
        raise BadInput(f"--overlap applies only to --kind test-defects (it keeps moved test defects in the test set); "
                       f"kind {kind} leaves the test set as it is")


def anomalies_needed(n_normal: int, ratio: float, mode: str = "add") -> int:
    """Anomalous images for a training set of ``n_normal`` normal ones (``replace``: of that size)
    whose anomalous share is nearest ``ratio`` (ties: the fewer)."""
    exact = ratio * n_normal / (1.0 - ratio) if mode == "add" else ratio * n_normal

    def share(k: int) -> float:
        return k / (n_normal + k) if mode == "add" else k / n_normal

    low = math.floor(exact)
    return min((low, low + 1), key=lambda k: (abs(share(k) - ratio), k))


def read_pool(root: Path) -> list[Sample]:
    """The dataset's pool of defective training-condition images (empty when it has none)."""
    pool = pool_dir(root)
    if not (pool / "test").is_dir():
        return []
    samples = []
    for type_dir in sorted(p for p in (pool / "test").iterdir() if p.is_dir()):
        for image in list_images(type_dir):
            mask = pool / "ground_truth" / type_dir.name / f"{image.stem}_mask.png"
            samples.append(Sample(image, 1, type_dir.name, mask if mask.exists() else None))
    return samples


def _draw(n: int, seed: int, *stream: str) -> np.ndarray:
    return np.random.default_rng(seed_sequence(seed, "contamination", *stream)).permutation(n)


def _stratified(candidates: list[Sample], seed: int, kind: str, share: float) -> list[int]:
    """A draw order over ``candidates`` (indices): up to ``share`` of each defect type, the types
    interleaved by Sainte-Laguë on their candidate counts (ties: type name)."""
    by_type: dict[str, list[int]] = {}
    for i, sample in enumerate(candidates):
        by_type.setdefault(sample.defect_type, []).append(i)
    queues = {t: [ids[j] for j in _draw(len(ids), seed, kind, t)][:int(len(ids) * share)] for t, ids in sorted(by_type.items())}
    taken = dict.fromkeys(queues, 0)
    order = []
    while open_types := [t for t in queues if taken[t] < len(queues[t])]:
        best = max(open_types, key=lambda t: len(by_type[t]) / (2 * taken[t] + 1))  # max keeps the first of ties
        order.append(queues[best][taken[best]])
        taken[best] += 1
    return order


def _candidates(split: DatasetSplit, kind: str) -> list[Sample]:
    if kind == "pool":
        return read_pool(split.root)
    if kind == "test-defects":
        return [s for s in split.test if s.label == 1]
    return list(split.train)


def _shortage(split: DatasetSplit, kind: str, ratio: float, mode: str, needed: int, candidates: int, usable: int) -> str:
    n = len(split.train)
    most = min(MAX_RATIO, usable / (n + usable) if mode == "add" else usable / n)
    head = f"{split.name}: ratio {ratio} ({mode} mode, {n} normal training images) needs {needed} anomalous images"
    reach = f"these images reach a ratio of at most {most:.2f}"
    if kind == "pool":
        where = pool_dir(split.root)
        return (f"{head} but the pool {where} holds {candidates}; render a pool of at least {needed} "
                f"(mkdata miad --contamination-pool {needed}); {reach}")
    return (f"{head} but only {usable} of the test set's {candidates} defective images can be moved "
            f"(at most half of each defect type, so every type stays tested; --overlap keeps them in test "
            f"and allows all); {reach}")


def contaminate(split: DatasetSplit, ratio: float, kind: str = "test-defects", seed: int = 0, mode: str = "add",
                overlap: bool = False) -> Contamination:
    """``split`` with a ``ratio`` share of anomalous training images of ``kind`` (see the module)."""
    kind = canonical_kind(kind)
    check_request(ratio, mode, overlap, seed, kind)
    n = len(split.train)
    needed = anomalies_needed(n, ratio, mode)
    if ratio > 0 and needed == 0:
        one = 1 / (n + 1) if mode == "add" else 1 / n
        raise BadInput(f"{split.name}: ratio {ratio} rounds to no anomalous image among {n} training images; "
                       f"one anomalous image is a ratio of {one:.3g}")
    candidates = _candidates(split, kind)
    normal_order = _draw(n, seed, "left-out").tolist()
    share = MAX_MOVED_FRACTION if kind == "test-defects" and not overlap else 1.0
    order = normal_order if kind == "synthetic" else _stratified(candidates, seed, kind, share)
    if needed > len(order):
        raise BadInput(_shortage(split, kind, ratio, mode, needed, len(candidates), len(order)))
    left_out = sorted(normal_order[:needed]) if mode == "replace" else []
    chosen = order[:needed]
    if kind == "synthetic":  # made from the normal images left out (replace) or from kept ones (add)
        anomalies: list[Sample] = [
            SyntheticSample(split.train[i].path, 1, METHODS[rank % len(METHODS)], None, (seed, "synthetic", i))
            for rank, i in enumerate(chosen)]
    else:
        anomalies = [candidates[i] for i in chosen]
    dropped = set(left_out)
    mixed = [s for i, s in enumerate(split.train) if i not in dropped] + anomalies
    flags = [False] * (len(mixed) - needed) + [True] * needed
    shuffle = _draw(len(mixed), seed, "order")
    moved = anomalies if kind == "test-defects" and not overlap else []
    moved_paths = {s.path for s in moved}
    dirty = replace(split, train=[mixed[i] for i in shuffle], contaminated=[flags[i] for i in shuffle],
                    test=[s for s in split.test if s.path not in moved_paths])
    return Contamination(dirty, kind, mode, float(ratio), seed, overlap, tuple(left_out), tuple(chosen),
                         tuple(candidates), tuple(moved))


def source_name(sample: Sample, root: Path) -> str:
    """A sample as a path relative to its dataset (a synthesised one: its base image#method)."""
    name = Path(os.path.relpath(sample.path, root)).as_posix()  # ../<name>_pool/... for pool images
    return f"{name}#{sample.defect_type}" if isinstance(sample, SyntheticSample) else name
