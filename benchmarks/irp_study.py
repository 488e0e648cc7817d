"""IRP's Table 1 and Table 2, in shape, on one dataset folder: image AUROC at training-set noise
0, 10, …, 50 % for vanilla / OSR / IRP with each detector, and the good / bad training images
the robust wrappers removed.

Every cell is a `mkdata bench` cell (``cell.run_cell``: the bench's injectors, robust wrappers
and metrics), run in this process one after the other; per-cell outputs go to ``--out``.

    python benchmarks/irp_study.py data/nut_bolt --kind pool
    python benchmarks/irp_study.py --synthetic               # 24 train, 80 test, pool of 24, 32²: 36 cells, ~7 min on 2 cores
    python benchmarks/irp_study.py DIR --detector ae_l2 '{"epochs": 30}' --detector ocsvm '{}'

The IRP paper (Aqeel et al.) reports on MVTec AD, with its test-defects protocol, a vanilla image
AUROC falling from 0.899 at 0 % noise to 0.719 at 50 %, and IRP above vanilla at every level.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd

from mkdata.benchmark.cell import run_cell
from mkdata.benchmark.config import BenchConfig, DatasetSpec, DetectorSpec
from mkdata.benchmark.contamination import KINDS, MODES
from mkdata.benchmark.report import noise_table, removal_table
from mkdata.benchmark.robust import WrapperSpec
from mkdata.benchmark.runner import expand_cells
from mkdata.benchmark.synthetic_pool import write_synthetic_with_pool
from mkdata.errors import BadInput

RATIOS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
# weight-free and fast on a CPU; ae_l2 ({"epochs": 50, "batch_size": 8, "lr": 1e-3}) is another choice
DEFAULT_DETECTORS = (("ocsvm", {"features": "cnn", "pretrained": False}), ("lof", {"features": "cnn", "pretrained": False}))


def study(dataset: Path, detectors: list[tuple[str, dict]], kind: str, mode: str, size: int, seeds: list[int], out: Path,
          T: float) -> pd.DataFrame:
    """Run the grid and return one row per cell (the bench's result records)."""
    config = BenchConfig(
        output=out, detectors=tuple(DetectorSpec(name, params) for name, params in detectors),
        wrappers=(WrapperSpec("vanilla"), WrapperSpec("osr", T=T), WrapperSpec("irp", T=T)),
        contamination_kind=kind, ratios=RATIOS, seeds=tuple(seeds), image_size=size, device="cpu")
    rows = []
    for cell in expand_cells(config, [(DatasetSpec(path=dataset), dataset)]):
        start = time.perf_counter()
        try:
            record = run_cell(cell, out / "cells" / cell.key(), contamination_mode=mode)
        except BadInput as error:  # a noise level this dataset cannot reach (too few anomalous images)
            print(f"  {cell.detector.label:40s} {cell.wrapper.label:10s} noise {100 * cell.ratio:3.0f}%  skipped: {error}")
            continue
        print(f"  {cell.detector.label:40s} {cell.wrapper.label:10s} noise {100 * cell.ratio:3.0f}%  "
              f"AUROC {record['image_auroc']:.3f}  removed good/bad {record['good_removed']}/{record['bad_removed']}  "
              f"{time.perf_counter() - start:5.1f} s", flush=True)
        rows.append(record)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", nargs="?", type=Path, help="an MVTec-layout category folder")
    parser.add_argument("--synthetic", action="store_true", help="study a synthetic set with a pool (benchmark.synthetic_pool)")
    parser.add_argument("--train", type=int, default=24, help="synthetic: normal training images")
    parser.add_argument("--test", type=int, default=80, help="synthetic: test images, half defective")
    parser.add_argument("--kind", default="pool", choices=KINDS)
    parser.add_argument("--mode", default="replace", choices=MODES,
                        help="replace (default) keeps the training-set size at every noise level; add keeps every normal image")
    parser.add_argument("--size", type=int, default=32, help="image size the detectors see (and of the synthetic set)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--T", type=float, default=2.0, help="removal threshold, a multiple of the median score")
    parser.add_argument("--detector", nargs=2, action="append", metavar=("NAME", "PARAMS_JSON"),
                        help=f"repeatable; default: {' and '.join(f'{n} {json.dumps(p)}' for n, p in DEFAULT_DETECTORS)}")
    parser.add_argument("--out", type=Path, help="cell outputs (default: a temporary folder)")
    args = parser.parse_args()
    if (args.dataset is None) == (not args.synthetic):
        parser.error("give a dataset folder or --synthetic (not both)")
    detectors = [(name, json.loads(params)) for name, params in args.detector] if args.detector else list(DEFAULT_DETECTORS)
    with tempfile.TemporaryDirectory(prefix="irp_study_") as scratch:
        dataset = args.dataset or write_synthetic_with_pool(
            Path(scratch), "synthetic", n_train=args.train, n_test_good=args.test // 2, n_test_bad=args.test // 2,
            n_pool=args.train, size=args.size, seed=0)  # as large as the training set: 50 % noise in add mode too
        start = time.perf_counter()
        results = study(dataset, detectors, args.kind, args.mode, args.size, args.seeds, args.out or Path(scratch) / "out",
                        args.T)
    if results.empty:
        raise SystemExit("no noise level could be reached on this dataset")
    print(f"\n{dataset.name}: {len(results)} cells in {time.perf_counter() - start:.0f} s, kind {args.kind} ({args.mode}), "
          f"{results.n_train.min()}–{results.n_train.max()} training and {results.n_test.min()}–{results.n_test.max()} "
          f"test images, T = {args.T:g}")
    print("\nTable 1 shape: image AUROC by training-set noise level\n")
    print(noise_table(results).to_markdown())
    print("\nTable 2 shape: training images removed, good / bad\n")
    print(removal_table(results).to_markdown())


if __name__ == "__main__":
    main()
