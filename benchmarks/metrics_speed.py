"""AUPRO speed and memory: mkdata's exact and binned AUPRO against anomalib's ``AUPRO``, same inputs.

Synthetic MIAD-like anomaly maps: half the images defective, with 1-3 small discs (MIAD's
defect-pixel ratios are 0.04-0.7 %); maps are smooth upsampled noise plus pixel noise plus a bump
of random strength on each defect. Prints, for each method, the wall time, the CPU time of all
threads (the machine may be shared), the extra resident memory (peak RSS during the call, sampled
every 5 ms, minus RSS before it) and the AUPRO, then the speed ratios anomalib / mkdata.
``--metric-row`` also times ``cell.metric_row``, a cell's whole results row (image metrics, AUPRO,
pixel AUROC, thresholds) on the same maps, each input validated once.

    python benchmarks/metrics_speed.py --maps 200 --size 256
    python benchmarks/metrics_speed.py --maps 200 --size 256 --skip-anomalib --metric-row
    python benchmarks/metrics_speed.py --maps 2500 --size 512 --dtype float16 --skip-anomalib

anomalib's AUPRO sorts every pixel in float32/int64 tensors: about 65 bytes per pixel (3.35 GiB for
200 maps of 512²), so 1000 maps of 512² need some 17 GiB: time it on a machine that has them.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
import torch

from mkdata.benchmark.cell import metric_row
from mkdata.benchmark.metrics import aupro, binned_aupro
from mkdata.benchmark.protocol import EvaluationProtocol


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(call: Callable[[], float]) -> tuple[float, float, float, float]:
    """(result, wall seconds, CPU seconds of all threads, extra peak RSS in bytes) of one call."""
    before, peak, running = rss_bytes(), [0], [True]

    def sample() -> None:
        while running[0]:
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start, cpu_start = time.perf_counter(), time.process_time()
    result = call()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    running[0] = False
    sampler.join()
    return result, seconds, cpu, max(peak[0], rss_bytes()) - before


def make_inputs(maps: int, size: int, dtype: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """MIAD-like maps (N×size×size, ``dtype``) and 0/1 masks (uint8), built in batches of 50."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    anomaly_maps = np.empty((maps, size, size), dtype=dtype)
    masks = np.zeros((maps, size, size), dtype=np.uint8)
    yy, xx = np.mgrid[0:size, 0:size]
    for first in range(0, maps, 50):
        count = min(50, maps - first)
        low = torch.randn(count, 1, max(2, size // 8), max(2, size // 8))
        smooth = torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
        block = 0.5 * smooth[:, 0].numpy() + 0.1 * rng.standard_normal((count, size, size), dtype=np.float32)
        for i in range(count):
            if rng.random() < 0.5:
                continue
            for _ in range(rng.integers(1, 4)):
                cy, cx = rng.uniform(0.1 * size, 0.9 * size, 2)
                radius = max(1.0, rng.uniform(2, 12) * size / 512)
                distance = np.hypot(yy - cy, xx - cx)
                masks[first + i][distance <= radius] = 1
                block[i] += rng.uniform(0, 2) * np.exp(-((distance / (1.5 * radius)) ** 2))
        anomaly_maps[first:first + count] = block
    return anomaly_maps, masks


def row_aupro(maps: np.ndarray, masks: np.ndarray, fpr_limit: float) -> float:
    """``cell.metric_row`` on the maps (scores: map maxima; training scores: those of the normal
    maps); returns its AUPRO, to compare with the others."""
    labels = masks.any(axis=(1, 2))
    scores = maps.max(axis=(1, 2)).astype(np.float64)
    types = ["disc" if label else "good" for label in labels]
    protocol = EvaluationProtocol(aupro_fpr_limit=fpr_limit)
    row = metric_row(scores, labels, types, maps, masks, scores[~labels], protocol)
    return row["aupro"]


def anomalib_aupro(maps: np.ndarray, masks: np.ndarray, fpr_limit: float) -> float:
    from anomalib.metrics import AUPRO

    metric = AUPRO(fields=["anomaly_map", "gt_mask"], fpr_limit=fpr_limit)
    metric.update(SimpleNamespace(anomaly_map=torch.from_numpy(maps).float(), gt_mask=torch.from_numpy(masks)))
    return float(metric.compute())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--maps", type=int, default=200)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--dtype", choices=["float32", "float16"], default="float32")
    parser.add_argument("--fpr-limit", type=float, default=0.3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-anomalib", action="store_true", help="time only mkdata (anomalib needs ~65 B/pixel)")
    parser.add_argument("--metric-row", action="store_true", help="also time cell.metric_row (a cell's results row)")
    args = parser.parse_args()
    torch.set_num_threads(args.workers)

    maps, masks = make_inputs(args.maps, args.size, args.dtype, args.seed)
    print(f"{args.maps} maps of {args.size}² ({args.dtype}, {maps.nbytes / 2**30:.2f} GiB), "
          f"{masks.any(axis=(1, 2)).sum()} defective, defect pixels {masks.mean():.3%} of all; "
          f"{args.workers} workers")
    rows = [
        ("mkdata exact", lambda: aupro(maps, masks, args.fpr_limit, workers=args.workers)),
        ("mkdata binned", lambda: binned_aupro(maps, masks, args.fpr_limit, workers=args.workers)),
    ]
    if args.metric_row:
        rows.append(("cell.metric_row", lambda: row_aupro(maps, masks, args.fpr_limit)))
    if not args.skip_anomalib:
        rows.append(("anomalib AUPRO", lambda: anomalib_aupro(maps, masks, args.fpr_limit)))
    results = {}
    for name, call in rows:
        value, seconds, cpu, extra = measure(call)
        results[name] = (value, seconds, cpu)
        shown = f"{value[0]:.9f} (bound {value[1]:.1e})" if isinstance(value, tuple) else f"{value:.9f}"
        print(f"{name:15s} {seconds:7.2f} s wall {cpu:7.2f} s CPU  "
              f"extra peak RSS {extra / 2**30:5.2f} GiB  AUPRO {shown}")
    exact, exact_s, exact_cpu = results["mkdata exact"]
    print(f"binned - exact: {results['mkdata binned'][0][0] - exact:+.2e}")
    if "anomalib AUPRO" in results:
        value, seconds, cpu = results["anomalib AUPRO"]
        print(f"anomalib - exact: {value - exact:+.2e}; anomalib / mkdata exact: {seconds / exact_s:.1f}x wall, "
              f"{cpu / exact_cpu:.1f}x CPU (load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
