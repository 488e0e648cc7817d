"""Local render worker processes: a shared job queue, per-image results, worker recycling.

Each worker is a fresh 'spawn' process (bpy is never imported in the parent). A worker exits
after ``recycle_after`` images and is replaced, which bounds any memory Blender accumulates.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mkdata.errors import BadInput, RunFailed
from mkdata.generator.config import RenderConfig
from mkdata.generator.plan import ImageJob
from mkdata.generator.record import ImageRecord
from mkdata.generator.worker import worker_main


class RenderFailed(RunFailed):
    """A worker could not start (e.g. the scene failed to build)."""


@dataclass
class PoolOutcome:
    records: list[ImageRecord] = field(default_factory=list)
    failures: list[tuple[ImageJob, str]] = field(default_factory=list)


def threads_per_worker(workers: int) -> int:
    """Split the machine's cores evenly between workers (Cycles output does not depend on it)."""
    return max(1, (os.cpu_count() or 1) // workers)


def run_pool(
    config: RenderConfig,
    jobs: list[ImageJob],
    workers: int,
    recycle_after: int,
    on_result: Callable[[ImageRecord | None], None] = lambda record: None,
    threads: int | None = None,
) -> PoolOutcome:
    """Render ``jobs`` with ``workers`` processes of ``threads`` Cycles threads each (default:
    the machine's cores split between them); ``on_result`` is called once per finished job."""
    outcome = PoolOutcome()
    if not jobs:
        return outcome
    workers = max(1, min(workers, len(jobs)))
    context = mp.get_context("spawn")
    job_queue, result_queue = context.Queue(), context.Queue()
    for job in jobs:
        job_queue.put(job)
    for _ in range(workers):
        job_queue.put(None)
    threads = threads or threads_per_worker(workers)

    def start() -> Any:
        process = context.Process(target=worker_main, args=(config, threads, recycle_after, job_queue, result_queue), daemon=True)
        process.start()
        return process

    processes = [start() for _ in range(workers)]
    try:
        for message in _messages(result_queue, processes):
            kind = message[0]
            if kind == "done":
                outcome.records.append(message[1])
                on_result(message[1])
            elif kind == "failed":
                outcome.failures.append((message[1], message[2]))
                on_result(None)
            elif kind == "recycle":
                processes.append(start())
            elif kind == "bad_input":
                raise BadInput(message[2])
            else:  # fatal
                raise RenderFailed(f"a render worker could not start:\n{message[2]}")
            if len(outcome.records) + len(outcome.failures) == len(jobs):
                break
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join(timeout=10)
    return outcome


def _messages(results: Any, processes: list[Any]) -> Iterator[tuple[Any, ...]]:
    """Yield result messages; raise if a worker died abnormally (its image is lost, not half-written)."""
    while True:
        try:
            yield results.get(timeout=2.0)
        except queue.Empty:
            crashed = [p for p in processes if p.exitcode not in (None, 0)]
            if crashed or all(not p.is_alive() for p in processes):
                codes = sorted({p.exitcode for p in processes if not p.is_alive()})
                raise RenderFailed(f"render worker(s) exited unexpectedly (exit codes {codes}); rerun to resume") from None


def _render_requests(config: RenderConfig, requests: list[tuple[ImageJob, bool]]) -> list[tuple[Any, Any, ImageRecord]]:
    from mkdata.generator.worker import SceneRenderer, _silence_blender, remove_temp_dirs

    _silence_blender()
    renderer = SceneRenderer(config, threads_per_worker(1))
    rendered = [renderer.render(job, apply_defect) for job, apply_defect in requests]
    remove_temp_dirs()  # the pool terminates this process next
    return rendered


def render_in_subprocess(config: RenderConfig, requests: list[tuple[ImageJob, bool]]) -> list[tuple[Any, Any, ImageRecord]]:
    """Render (job, apply_defect) pairs in one fresh worker process and return (image, mask, record)
    for each, without writing files (for previews and checks; keeps bpy out of this process)."""
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(_render_requests, (config, requests))
