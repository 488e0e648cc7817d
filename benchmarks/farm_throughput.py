"""Images per minute of the render backends on this machine, side by side on one dataset:
1 and 2 local worker processes, and the Ray backend (two tasks on a local Ray that is started
before the clock starts, as a farm's cluster is), plus the Ray path's overhead per image against
the two local workers, which have the same cores per render process.

    python benchmarks/farm_throughput.py --images 24 --resolution 256 --samples 16
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from mkdata.generator.config import RenderConfig
from mkdata.generator.runner import Backend, render_scenario


def images_per_minute(config: RenderConfig, backend: Backend) -> float:
    """Render the whole dataset afresh with ``backend``; images per minute, start-up included."""
    start = time.perf_counter()
    summary = render_scenario(config, backend, resume=False)
    if summary.failures:
        raise RuntimeError(summary.failures[0][1])
    return 60.0 * summary.rendered / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="nut_bolt")
    parser.add_argument("--images", type=int, default=24, help="normal training images")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--samples", type=int, default=16)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    import ray

    ray.init(include_dashboard=False, log_to_driver=False)  # the cluster's start is not the path's cost
    with tempfile.TemporaryDirectory() as tmp:
        config = RenderConfig.from_preset(args.scenario, Path(tmp), n_train=args.images, n_test_good=0, n_test_bad=0,
                                          resolution=args.resolution, samples=args.samples, device="cpu")
        chunk = -(-args.images // 2)
        runs = {
            "local, 1 worker": Backend(workers=1),
            "local, 2 workers": Backend(workers=2),
            f"ray, 2 tasks of {max(1, cores // 2)} cores": Backend("ray", chunk_size=chunk, task_cpus=max(1, cores // 2)),
        }
        rates = {name: images_per_minute(config, backend) for name, backend in runs.items()}
    for name, rate in rates.items():
        print(f"{name:28s} {rate:7.2f} images/min")
    local, ray = rates["local, 2 workers"], list(rates.values())[-1]
    print(f"ray overhead per image vs 2 local workers: {100 * (local / ray - 1):+.1f}%")


if __name__ == "__main__":
    main()
