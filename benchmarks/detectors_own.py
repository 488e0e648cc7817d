"""Fit and predict cost of the project's own detectors (autoencoders, IAAE, DifferNet, UniAD, classical).

Each detector runs in a fresh subprocess (so its peak RSS is its own) on a synthetic set
(``benchmark.synthetic``: textured images with obvious defects), with its paper defaults except
``--epochs`` (torch detectors) and ``pretrained=False`` (no downloads). Prints fit seconds,
predict ms/image (wall and CPU of all threads: the machine may be shared), peak RSS, image
AUROC, and the fit/predict times relative to ``ae_l2`` measured in the same run.

    python benchmarks/detectors_own.py --train 100 --size 256 --epochs 5
    python benchmarks/detectors_own.py --only differnet --override '{"differnet": {"n_transforms_test": 8}}'
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

OWN = [
    "ae_l2", "ae_ssim", "ae_msssim4", "ae_mahalanobis", "ae_residual_stats", "vae_residual_stats",
    "dilated_vae_residual_stats", "iaae", "differnet", "unified_ad", "ocsvm", "lof", "kmeans", "knn",
]
OFFLINE = {"differnet": {"pretrained": False}, "unified_ad": {"pretrained": False}}


def run_one(args: argparse.Namespace) -> None:
    import numpy as np
    import torch
    from sklearn.metrics import roc_auc_score

    from mkdata.benchmark.detectors.registry import create, describe
    from mkdata.benchmark.synthetic import make_synthetic

    torch.set_num_threads(args.threads)
    data = make_synthetic(n_train=args.train, n_test_good=args.test // 2, n_test_bad=args.test // 2, size=args.size)
    params = {"device": args.device, **OFFLINE.get(args.one, {}), **json.loads(args.override).get(args.one, {})}
    if "epochs" in describe(args.one)["defaults"]:
        params.setdefault("epochs", args.epochs)
    detector = create(args.one, **params)
    start, cpu = time.perf_counter(), time.process_time()
    detector.fit(data.train)
    fit_s, fit_cpu = time.perf_counter() - start, time.process_time() - cpu
    start, cpu = time.perf_counter(), time.process_time()
    scores = detector.predict(data.test).scores
    predict_s, predict_cpu = time.perf_counter() - start, time.process_time() - cpu
    print(json.dumps({
        "fit_s": fit_s, "fit_cpu_s": fit_cpu,
        "predict_ms": 1000 * predict_s / len(data.test), "predict_cpu_ms": 1000 * predict_cpu / len(data.test),
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "auroc": float(roc_auc_score(data.labels, scores)) if np.all(np.isfinite(scores)) else float("nan"),
        "epochs": params.get("epochs"),
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=100)
    parser.add_argument("--test", type=int, default=20, help="half normal, half defective")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--only", nargs="*", default=OWN)
    parser.add_argument("--override", default="{}", help='JSON {name: {param: value}}')
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run_one(args)
        return
    print(f"{args.train} training images of {args.size}², {args.test} test images, {args.threads} threads, "
          f"device {args.device}, epochs {args.epochs}")
    baseline = None
    keys = ("train", "test", "size", "epochs", "threads", "device", "override")
    forwarded = [f"--{k}={getattr(args, k)}" for k in keys]
    names = args.only if "ae_l2" in args.only else ["ae_l2", *args.only]
    for name in names:
        done = subprocess.run([sys.executable, __file__, "--one", name, *forwarded], capture_output=True, text=True)
        if done.returncode:
            print(f"{name:28s} failed: {done.stderr.strip().splitlines()[-1]}")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        baseline = baseline or r
        print(f"{name:28s} epochs {r['epochs']!s:>4}  fit {r['fit_s']:8.1f} s ({r['fit_cpu_s']:8.1f} CPU, "
              f"×{r['fit_s'] / baseline['fit_s']:6.2f})  predict {r['predict_ms']:8.1f} ms/img "
              f"({r['predict_cpu_ms']:8.1f} CPU, ×{r['predict_ms'] / baseline['predict_ms']:6.2f})  "
              f"peak RSS {r['peak_rss_gib']:5.2f} GiB  AUROC {r['auroc']:.3f}")


if __name__ == "__main__":
    main()
