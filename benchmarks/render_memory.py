"""Resident memory of one render worker over many images (BlenderProc users report RAM growth).

Renders N images of a scenario (a third defective, so the defect passes run too) through the
worker's production path (render and write) in one worker process and prints its RSS every
--every images, then the growth per 100 images.

    python benchmarks/render_memory.py --scenario wind_turbine --images 300 --resolution 128 --samples 4
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
from pathlib import Path

from mkdata.generator.config import RenderConfig
from mkdata.generator.plan import plan_jobs
from mkdata.scenes import get_scenario, scenario_names


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def measure(config: RenderConfig, every: int, out: "mp.Queue[tuple[int, float]]") -> None:
    from mkdata.generator.worker import SceneRenderer, _silence_blender, exit_process

    _silence_blender()
    renderer = SceneRenderer(config)
    out.put((0, rss_mib()))
    for count, job in enumerate(plan_jobs(config), start=1):
        renderer.render_and_write(job)
        if count % every == 0:
            out.put((count, rss_mib()))
    out.put((-1, 0.0))
    exit_process(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="nut_bolt", choices=scenario_names())
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--every", type=int, default=50)
    args = parser.parse_args()
    n_bad = args.images // 3
    context = mp.get_context("spawn")
    queue = context.Queue()
    with tempfile.TemporaryDirectory() as tmp:
        factors = get_scenario(args.scenario).spec.factors
        config = RenderConfig(args.scenario, Path(tmp), args.images - n_bad, 0, n_bad, args.resolution, args.samples, factors)
        process = context.Process(target=measure, args=(config, args.every, queue))
        process.start()
        readings = []
        while (reading := queue.get())[0] != -1:
            readings.append(reading)
            print(f"after {reading[0]:5d} images: RSS {reading[1]:8.1f} MiB", flush=True)
        process.join()
    (n0, r0), (n1, r1) = readings[1], readings[-1]  # from the first checkpoint: warm-up excluded
    print(f"growth after warm-up: {100 * (r1 - r0) / max(1, n1 - n0):.2f} MiB per 100 images")


if __name__ == "__main__":
    main()
