"""The Ray backend: a dataset's pending images split into chunks, one Ray task per chunk, each
rendering its chunk in one long-lived render worker process (the local pool's, so every path a
local run takes is the same). A task whose worker dies is retried by Ray; image i is
deterministic and every file is written atomically, so a retried chunk skips what is done and
writes the same bytes, and a half-rendered chunk leaves nothing half-written."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from mkdata.generator.config import RenderConfig
from mkdata.generator.inventory import incomplete
from mkdata.generator.plan import ImageJob
from mkdata.generator.pool import PoolOutcome, run_pool

TASK_RETRIES = 3  # a chunk whose render worker dies (killed, out of memory) is run again this often
POLL_S = 2.0


def render_chunk(config: RenderConfig, jobs: list[ImageJob], threads: int, recycle_after: int) -> PoolOutcome:
    """Render the images of ``jobs`` not yet complete (a retried task resumes) in one worker."""
    return run_pool(config, incomplete(config, jobs), workers=1, recycle_after=recycle_after, threads=threads)


def chunks(jobs: list[ImageJob], size: int) -> list[list[ImageJob]]:
    return [jobs[start:start + size] for start in range(0, len(jobs), size)]


def run_ray(config: RenderConfig, jobs: list[ImageJob], chunk_size: int, threads: int, recycle_after: int,
            address: str | None, on_progress: Callable[[int], None]) -> PoolOutcome:
    """Render ``jobs`` on a Ray cluster (``address``, else ``RAY_ADDRESS``, else a local Ray);
    ``on_progress`` hears how many images were completed on disk so far, every POLL_S seconds.
    The output folder must be one that every node sees."""
    import ray

    ray.init(address=address or os.environ.get("RAY_ADDRESS"), ignore_reinit_error=True, log_to_driver=False,
             include_dashboard=False, logging_level=logging.ERROR)  # Ray's start-up notes are not the user's concern
    gpus = 1 if config.device in ("cuda", "optix") else 0
    task = ray.remote(num_cpus=threads, num_gpus=gpus, max_retries=TASK_RETRIES, retry_exceptions=True)(render_chunk)
    records = config.dataset_dir / ".records"
    records.mkdir(parents=True, exist_ok=True)
    before = len(os.listdir(records))
    waiting = [task.remote(config, chunk, threads, recycle_after) for chunk in chunks(jobs, chunk_size)]
    outcome = PoolOutcome()
    while waiting:
        finished, waiting = ray.wait(waiting, num_returns=len(waiting), timeout=POLL_S)
        for result in ray.get(finished):
            outcome.records += result.records
            outcome.failures += result.failures
        on_progress(len(os.listdir(records)) - before)  # a listing: cheap also for 100,000 records
    return outcome
