"""The list of images a dataset consists of, their file names, seeds and shards.

Jobs come in four groups, each indexed from 0: ``train`` (normal), ``test_good``, ``test_bad``
(defect type = defect_types[index % number of types]) and ``pool``: defective images seen under
*training* conditions (viewpoint bins, backgrounds, surfaces), for contaminating a training set
without leaking test conditions. The pool is its own folder beside the dataset
(``OUT/<scenario>_pool``, see ``RenderConfig.pool``), so the dataset stays in the MVTec AD layout. Growing one count therefore
adds images without changing existing ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mkdata.generator.config import RenderConfig
from mkdata.scenes import get_scenario
from mkdata.seeds import seed_sequence

GROUP_CODES = {"train": 0, "test_good": 1, "test_bad": 2, "pool": 3}


@dataclass(frozen=True)
class ImageJob:
    """One image of the dataset (paths relative to the scenario's dataset folder)."""

    group: str  # train / test_good / test_bad / pool
    index: int
    defect_type: str | None  # None for normal images

    @property
    def split(self) -> str:
        """train, test or pool (the manifest's split)."""
        return {"train": "train", "pool": "pool"}.get(self.group, "test")

    @property
    def view_split(self) -> str:
        """Whose viewpoints, backgrounds and surfaces the image takes: train (also the pool) or test."""
        return "train" if self.group in ("train", "pool") else "test"

    @property
    def folder(self) -> str:
        """train or test: a pool folder holds its defective images as an MVTec AD test split does."""
        return "train" if self.group == "train" else "test"

    @property
    def label(self) -> str:
        return self.defect_type or "good"

    @property
    def stem(self) -> str:
        return f"{self.index:05d}"

    @property
    def image_path(self) -> Path:
        return Path(self.folder) / self.label / f"{self.stem}.png"

    @property
    def mask_path(self) -> Path | None:
        return Path("ground_truth") / self.defect_type / f"{self.stem}_mask.png" if self.defect_type else None

    @property
    def record_path(self) -> Path:
        """Per-image metadata; written last, so its presence marks the image as complete."""
        return Path(".records") / f"{self.group}_{self.stem}.json"

    @property
    def failure_path(self) -> Path:
        """The traceback of this image's last failed render; removed once it renders."""
        return Path(".failures") / f"{self.group}_{self.stem}.txt"


def plan_jobs(config: RenderConfig) -> list[ImageJob]:
    """Every image of the dataset, in a fixed order."""
    defect_types = get_scenario(config.scenario).spec.defect_types
    if config.pool:
        return [ImageJob("pool", i, defect_types[i % len(defect_types)]) for i in range(config.n_pool)]
    jobs = [ImageJob("train", i, None) for i in range(config.n_train)]
    jobs += [ImageJob("test_good", i, None) for i in range(config.n_test_good)]
    jobs += [ImageJob("test_bad", i, defect_types[i % len(defect_types)]) for i in range(config.n_test_bad)]
    return jobs


def shard_jobs(jobs: list[ImageJob], shard_index: int, shard_count: int) -> list[ImageJob]:
    """The shard_index-th of shard_count disjoint, interleaved slices (balanced across groups)."""
    return jobs[shard_index::shard_count]


def job_seed_sequence(config: RenderConfig, job: ImageJob) -> np.random.SeedSequence:
    """Seed material for one image: (seed, scenario, group, index) only."""
    return seed_sequence(config.seed, config.scenario, GROUP_CODES[job.group], job.index)
