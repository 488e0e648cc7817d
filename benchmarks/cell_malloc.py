"""What glibc's mmap threshold costs a bench cell, side by side in one run: each detector's cell
as `mkdata bench` starts it (``runner.cell_environment``: 4 MiB for memory-bank models, glibc's
default otherwise) and with ``MALLOC_MMAP_THRESHOLD_`` set to each ``--thresholds`` value.

Every run is a real bench cell (``runner.run_cell_subprocess``, its own process, fresh folder) on
the ``--data`` dataset. Printed per run: wall seconds, the cell's fit and train-score seconds, its
user and kernel CPU seconds and minor page faults (this process's waited children, differenced),
its peak RSS and its image AUROC (the same seed, so a setting that changes only speed leaves it).

    python benchmarks/cell_malloc.py --data /path/to/electrical_insulator --detector stfpm '{"epochs": 2}' \\
        --detector patchcore '{}' --thresholds 4194304 33554432
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import pandas as pd

from mkdata.benchmark.config import BenchConfig, DatasetSpec, DetectorSpec, Limits
from mkdata.benchmark.runner import cell_environment, expand_cells, run_cell_subprocess

BENCH = "bench"  # the setting `mkdata bench` gives the detector


def children_usage() -> tuple[float, float, int]:
    """User s, kernel s and minor faults of this process's waited children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime, usage.ru_stime, usage.ru_minflt


def run_once(data: Path, detector: DetectorSpec, threshold: str, args: argparse.Namespace, folder: Path) -> dict:
    """One bench cell of ``detector`` on ``data`` with ``threshold`` (``BENCH`` or bytes); its figures
    (a cell stopped at ``--memory-limit-gb`` or failing gives its reason instead)."""
    config = BenchConfig(output=folder, detectors=(detector,), image_size=args.image_size)
    (cell,) = expand_cells(config, [(DatasetSpec(path=data), data)])
    extra = {} if threshold == BENCH else {"MALLOC_MMAP_THRESHOLD_": threshold}
    setting = cell_environment(detector.name, extra).get("MALLOC_MMAP_THRESHOLD_", "glibc default")
    before, start = children_usage(), time.perf_counter()
    record = run_cell_subprocess(cell, folder / "cell", Limits(time_s=6 * 3600, memory_gb=args.memory_limit_gb), extra)
    wall = time.perf_counter() - start
    user, kernel, faults = (after - first for after, first in zip(children_usage(), before))
    row = {"detector": detector.name, "asked": threshold, "threshold": setting, "wall_s": round(wall, 1)}
    if record["status"] != "ok":
        return {**row, "error": record["error"].splitlines()[0]}
    return {**row,
            "fit_s": round(record["fit_s"], 1), "train_scores_s": round(record["train_scores_s"], 1),
            "user_s": round(user, 1), "kernel_s": round(kernel, 1), "minor_faults_M": round(faults / 1e6, 2),
            "peak_ram_mb": round(record["peak_ram_mb"]), "image_auroc": round(record["image_auroc"], 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="an MVTec-layout category folder")
    parser.add_argument("--detector", nargs=2, action="append", metavar=("NAME", "JSON_PARAMS"), required=True)
    parser.add_argument("--thresholds", nargs="+", default=["4194304"], help="bytes to compare with the bench's setting")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--memory-limit-gb", type=float, default=16.0, help="stop a cell whose RSS passes this")
    args = parser.parse_args()
    rows = []
    for name, params in args.detector:
        detector = DetectorSpec(name, json.loads(params))
        for threshold in [BENCH, *args.thresholds]:
            with tempfile.TemporaryDirectory() as folder:
                rows.append(run_once(args.data, detector, threshold, args, Path(folder)))
            print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1), flush=True)
    print()
    print(pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
