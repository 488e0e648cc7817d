"""Images per minute for nut_bolt with masks: mkdata's persistent workers vs a fresh scene per image.

The naive way starts a new process per image (import bpy, build the scene, render one image),
which is what a `blenderproc run` per image does. Both write the same files; same config.

    python benchmarks/render_throughput.py --resolution 512 --samples 32 --images 8 --workers 1
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

import pandas as pd

from mkdata.generator.config import RenderConfig
from mkdata.generator.plan import plan_jobs
from mkdata.generator.runner import Backend, render_scenario


def _render_one_fresh(config: RenderConfig, job: object) -> None:
    from mkdata.generator.worker import SceneRenderer, _silence_blender, exit_process

    _silence_blender()
    SceneRenderer(config).render_and_write(job)
    exit_process()


def naive(config: RenderConfig) -> float:
    """Seconds for all jobs, one fresh process (and scene) per image."""
    context = mp.get_context("spawn")
    start = time.perf_counter()
    for job in plan_jobs(config):
        process = context.Process(target=_render_one_fresh, args=(config, job))
        process.start()
        process.join()
        if process.exitcode != 0:
            raise RuntimeError(f"naive render of {job} failed")
    return time.perf_counter() - start


def persistent(config: RenderConfig, workers: int) -> tuple[float, float]:
    """Seconds for all jobs with mkdata's workers, and the mean in-worker seconds per image
    (what each further image costs once the workers have started and built the scene)."""
    start = time.perf_counter()
    summary = render_scenario(config, Backend(workers=workers), resume=False)
    if summary.failures:
        raise RuntimeError(summary.failures[0][1])
    elapsed = time.perf_counter() - start
    return elapsed, float(pd.read_parquet(config.dataset_dir / "manifest.parquet").render_seconds.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", type=int, default=512)
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--images", type=int, default=8, help="total images; a third are defective (need masks)")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    n_bad = args.images // 3
    with tempfile.TemporaryDirectory() as tmp:
        def config(name: str) -> RenderConfig:
            return RenderConfig("nut_bolt", Path(tmp) / name, args.images - n_bad, 0, n_bad, args.resolution, args.samples, ("UV", "UB"))

        ours, per_image = persistent(config("persistent"), args.workers)
        fresh = naive(config("naive"))
    per_min = lambda seconds: 60 * args.images / seconds  # noqa: E731
    print(f"nut_bolt {args.resolution}² {args.samples} spp, {args.images} images ({n_bad} with masks)")
    print(f"  persistent workers ({args.workers}): {per_min(ours):6.2f} img/min  ({ours / args.images:.2f} s/img)")
    print(f"  fresh scene per image:      {per_min(fresh):6.2f} img/min  ({fresh / args.images:.2f} s/img)")
    print(f"  speed-up: {fresh / ours:.2f}×")
    steady = per_image / args.workers  # workers render side by side
    print(f"  steady state (workers started): {steady:.2f} s/img, speed-up {fresh / args.images / steady:.2f}×")


if __name__ == "__main__":
    main()
