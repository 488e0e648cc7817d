"""Noise injectors: contaminate a "normal" training set with defective images at a known ratio.

The noise level is the fraction of defective images in the training set (IRP's protocol). The
``defective`` injector moves real defective images from the test split into training (so they
are no longer tested on), as IRP did with MVTec AD. Deterministic in ``seed``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from mkdata.benchmark.datasets import DatasetSplit

from mkdata.errors import BadInput

INJECTORS = ("defective",)
MAX_MOVED_FRACTION = 0.5  # never move more than half of the test split's defective images


def defective_needed(n_normal: int, ratio: float) -> int:
    """Defective images to add to ``n_normal`` normal ones for a training-set noise ``ratio``."""
    return int(round(ratio * n_normal / (1.0 - ratio)))


def contaminate(split: DatasetSplit, ratio: float, kind: str = "defective", seed: int = 0) -> DatasetSplit:
    """A copy of ``split`` whose training set holds a ``ratio`` fraction of defective images."""
    if kind not in INJECTORS:
        raise BadInput(f"unknown contamination kind {kind!r}; valid kinds: {', '.join(INJECTORS)}")
    if not 0.0 <= ratio < 1.0:
        raise BadInput(f"contamination ratio must be in [0, 1), got {ratio}")
    needed = defective_needed(len(split.train), ratio)
    if needed == 0:
        return dataclasses.replace(split, contaminated=[False] * len(split.train))
    defective = [i for i, s in enumerate(split.test) if s.label == 1]
    available = int(len(defective) * MAX_MOVED_FRACTION)
    if needed > available:
        raise BadInput(
            f"{split.name}: ratio {ratio} needs {needed} defective training images but at most {available} "
            f"(half of the test split's {len(defective)}) can be moved; render more defective test images"
        )
    moved = set(np.random.default_rng(seed).choice(defective, size=needed, replace=False).tolist())
    train = split.train + [split.test[i] for i in sorted(moved)]
    test = [s for i, s in enumerate(split.test) if i not in moved]
    return dataclasses.replace(split, train=train, test=test, contaminated=[False] * len(split.train) + [True] * needed)
