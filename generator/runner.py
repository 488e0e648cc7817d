"""Render one scenario's dataset: plan, skip what is done, render the rest, write metadata."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mkdata.errors import BadInput
from mkdata.generator.blender import check_render_backend
from mkdata.generator.config import RenderConfig
from mkdata.generator.dataset import read_dataset_json, write_metadata
from mkdata.generator.inventory import incomplete
from mkdata.generator.plan import ImageJob, plan_jobs, shard_jobs
from mkdata.generator.pool import run_pool
from mkdata.generator.record import ImageRecord
from mkdata.generator.runs import finish_run, start_run

BACKENDS = ("local", "ray")
STALE_TEMP_SECONDS = 300.0  # a temp file lives milliseconds; older ones belong to killed runs


class ConfigMismatch(BadInput):
    """The output folder holds a dataset rendered with different pixel-defining settings."""


@dataclass(frozen=True)
class Backend:
    """Where the images are rendered: ``local`` worker processes, or Ray tasks of ``chunk_size``
    images with ``task_cpus`` Cycles threads each on the cluster at ``ray_address``."""

    name: str = "local"
    workers: int = 1
    recycle_after: int = 500
    ray_address: str | None = None
    chunk_size: int = 50
    task_cpus: int = 2

    def __post_init__(self) -> None:
        if self.name not in BACKENDS:
            raise BadInput(f"unknown backend {self.name!r}; valid backends: {', '.join(BACKENDS)}")
        for key in ("workers", "recycle_after", "chunk_size", "task_cpus"):
            if getattr(self, key) < 1:
                raise BadInput(f"--{key.replace('_', '-')} must be >= 1, got {getattr(self, key)}")


@dataclass(frozen=True)
class RenderProgress:
    """Where a render run stands: images to render in this run, rendered, failed."""

    total: int
    done: int
    failed: int


@dataclass
class RunSummary:
    scenario: str
    planned: int
    skipped: int
    rendered: int
    failures: list[tuple[ImageJob, str]]


def check_writable(folder: Path) -> None:
    """Create ``folder`` and prove a file can be written there (clear error otherwise)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write_probe.{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise BadInput(f"cannot write to output folder {folder}: {error.strerror or error}") from None


def check_same_config(config: RenderConfig) -> None:
    """Refuse to mix images of different render settings in one folder."""
    existing = read_dataset_json(config.dataset_dir)
    if existing is None or existing.get("render_key") == config.render_key():
        return
    changed = {k: (existing["render_key"].get(k), v) for k, v in config.render_key().items() if existing["render_key"].get(k) != v}
    details = ", ".join(f"{k}: {old} → {new}" for k, (old, new) in changed.items())
    raise ConfigMismatch(
        f"{config.dataset_dir} holds a dataset rendered with other settings ({details}); "
        "use another --out, or --no-resume to re-render everything"
    )


def remove_stale_temp_files(root: Path, older_than_s: float = STALE_TEMP_SECONDS) -> int:
    """Delete temp files left by killed runs (old enough that no live writer can own them)."""
    now, removed = time.time(), 0
    for temp in root.rglob(".*.tmp"):
        if now - temp.stat().st_mtime > older_than_s:
            temp.unlink(missing_ok=True)
            removed += 1
    return removed


def render_scenario(
    config: RenderConfig,
    backend: Backend = Backend(),
    shard: tuple[int, int] = (0, 1),
    resume: bool = True,
    on_progress: Callable[[RenderProgress], None] = lambda progress: None,
) -> RunSummary:
    """Render the (shard of the) dataset described by ``config``; ``on_progress`` hears the
    counts before the first image and after each one. Returns what was done."""
    check_render_backend()
    if resume:
        check_same_config(config)
    elif config.dataset_dir.exists():
        if shard[1] > 1:
            raise BadInput("--no-resume deletes the existing dataset first, so it cannot be combined with --shard "
                           "(shards would delete each other's work); delete the folder before starting the job array")
        shutil.rmtree(config.dataset_dir)
    check_writable(config.dataset_dir)
    remove_stale_temp_files(config.dataset_dir)
    jobs = shard_jobs(plan_jobs(config), *shard)
    pending = incomplete(config, jobs) if resume else jobs
    counts = {"done": 0, "failed": 0}

    def finished(record: ImageRecord | None) -> None:
        counts["done" if record is not None else "failed"] += 1
        on_progress(RenderProgress(len(pending), **counts))

    on_progress(RenderProgress(len(pending), **counts))
    run_file, run = start_run(config, shard)
    try:
        if backend.name == "ray" and pending:
            from mkdata.generator.farm import run_ray

            def completed(done: int) -> None:
                on_progress(RenderProgress(len(pending), min(done, len(pending)), 0))

            outcome = run_ray(config, pending, backend.chunk_size, backend.task_cpus, backend.recycle_after,
                              backend.ray_address, completed)
        else:
            outcome = run_pool(config, pending, backend.workers, backend.recycle_after, finished)
    finally:
        finish_run(run_file, run)
    write_metadata(config)
    return RunSummary(config.scenario, len(jobs), len(jobs) - len(pending), len(outcome.records), outcome.failures)
