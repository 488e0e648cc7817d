"""Cost of every registered detector: fit seconds, predict ms/image and peak memory.

Data: the synthetic inspection set (``mkdata.benchmark.synthetic``) with 100 normal 256² training
images and 20 test images; no rendering, so this runs on any box with the ``bench`` extra. Each
detector runs in its own subprocess, so peak RSS (and CUDA peak) is its own. Detectors use their
default parameters except:

* ``epochs`` (``--epochs``, default 1): the fit time is then the cost of one epoch (models that fit a
  memory bank always make exactly one pass). Multiply by the default epochs for a full training.
* ``pretrained`` (default False, ``--pretrained`` to use ImageNet weights): random initialisation
  costs the same compute and needs no download.
* EfficientAd's ``imagenet_dir`` points at a folder of noise images written by this script.

Ratios are against ``padim`` measured in the same run. Detectors that fail (missing weights,
out of memory) are listed with their error.

Models too slow to finish one epoch on ``--train`` images (GPU-scale models on a CPU) can be
probed instead: ``--probe A B`` fits on A and on B images and extrapolates the epoch on
``--train`` images linearly, fit(A) + (fit(B) − fit(A)) · (train − A) / (B − A). The fixed cost
(building the model, loading data) cancels in the slope; predict ms/image and peak memory are the
B run's, so with B below the batch size the memory is that of a batch of B.

    python benchmarks/detector_speed.py                          # all detectors, CPU
    python benchmarks/detector_speed.py --device cuda --names patchcore padim draem
    python benchmarks/detector_speed.py --names draem uflow --probe 16 32
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

BASELINE = "padim"


def _noise_folder(root: Path, count: int = 8, size: int = 256) -> Path:
    """An ImageFolder of seeded noise images (EfficientAd's penalty images stand-in)."""
    folder = root / "noise"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return root


def measure(name: str, args: argparse.Namespace) -> dict:
    """Fit and predict one detector in this process; returns the figures."""
    import torch
    from sklearn.metrics import roc_auc_score

    from mkdata.benchmark.detectors.registry import create, detector_class
    from mkdata.benchmark.synthetic import make_synthetic

    if args.threads:
        torch.set_num_threads(args.threads)
    data = make_synthetic(n_train=args.train, n_test_good=args.test // 2, n_test_bad=args.test // 2, size=args.size)
    fields = {f.name for f in dataclasses.fields(detector_class(name).Params)}
    wanted = {"device": args.device, "seed": 0, "epochs": args.epochs, "pretrained": args.pretrained}
    params = {key: value for key, value in wanted.items() if key in fields}
    with tempfile.TemporaryDirectory() as tmp:
        if "imagenet_dir" in fields:
            params["imagenet_dir"] = str(_noise_folder(Path(tmp)))
        detector = create(name, **params)
        start = time.perf_counter()
        detector.fit(data.train)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        scores = detector.predict(data.test).scores
        predict_ms = 1000 * (time.perf_counter() - start) / len(data.test)
    cuda = args.device.startswith("cuda") and torch.cuda.is_available()
    return {
        "fit_s": fit_s,
        "predict_ms": predict_ms,
        "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # Linux: KiB
        "cuda_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "auroc": float(roc_auc_score(data.labels, scores)),
        "needs_weights": detector.needs_weights,
    }


def run_isolated(name: str, argv: list[str], timeout: float) -> dict:
    """Run ``measure`` for one detector in a fresh interpreter; errors come back as {'error': ...}."""
    command = [sys.executable, __file__, *argv, "--one", name]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        errors = [line for line in done.stderr.splitlines() if re.match(r"^[\w.]+(Error|Exception)\b", line)]
        return {"error": f"exit status {done.returncode}: " + (errors[-1][:200] if errors else "no exception printed")}
    return json.loads(lines[-1])


def probe(name: str, argv: list[str], sizes: tuple[int, int], train: int, timeout: float) -> dict:
    """Fit on two training-set sizes; extrapolate the fit time to ``train`` images (see the docstring)."""
    runs = []
    for n in sizes:  # the larger fit is skipped once the smaller one fails (it would fail too)
        runs.append(run_isolated(name, [*argv, f"--train={n}"], timeout))
        if "error" in runs[-1]:
            return {"error": f"on {n} images: {runs[-1]['error']}"}
    small, large = runs
    slope = (large["fit_s"] - small["fit_s"]) / (sizes[1] - sizes[0])
    fits = {f"fit_s_{n}": run["fit_s"] for n, run in zip(sizes, (small, large))}
    return {**large, **fits, "fit_s": small["fit_s"] + slope * (train - sizes[0]), "extrapolated": True}


def report(results: dict[str, dict]) -> None:
    base = results.get(BASELINE, {})
    header = f"{'detector':24} {'fit s':>9} {'pred ms/img':>12} {'peak RSS MiB':>13} {'CUDA MiB':>9} "
    header += f"{'fit/' + BASELINE:>11} {'pred/' + BASELINE:>11} {'AUROC':>6} weights"
    print(header)
    for name, r in results.items():
        if "error" in r:
            print(f"{name:24} failed: {r['error']}")
            continue
        fit_ratio = r["fit_s"] / base["fit_s"] if "fit_s" in base else float("nan")
        pred_ratio = r["predict_ms"] / base["predict_ms"] if "predict_ms" in base else float("nan")
        cuda = f"{r['cuda_mib']:9.0f}" if r["cuda_mib"] is not None else f"{'-':>9}"
        fit = f"{r['fit_s']:8.2f}" + ("*" if r.get("extrapolated") else " ")
        print(
            f"{name:24} {fit} {r['predict_ms']:12.1f} {r['rss_mib']:13.0f} {cuda} "
            f"{fit_ratio:11.2f} {pred_ratio:11.2f} {r['auroc']:6.3f} {'yes' if r['needs_weights'] else 'no'}"
        )
    if any(r.get("extrapolated") for r in results.values()):
        print("* extrapolated from the --probe fits (fit_s_A, fit_s_B in --json)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--names", nargs="*", help="detectors to measure (default: every registered one)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, ...")
    parser.add_argument("--train", type=int, default=100, help="training images")
    parser.add_argument("--test", type=int, default=20, help="test images (half defective)")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--pretrained", action="store_true", help="ImageNet weights (needs them cached)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per detector (per run with --probe)")
    parser.add_argument("--probe", type=int, nargs=2, metavar=("A", "B"), help="extrapolate from fits on A and B images")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.one:
        print(json.dumps(measure(args.one, args)))
        return
    from mkdata.benchmark.detectors.registry import detector_names

    names = args.names or detector_names()
    if BASELINE not in names:
        names = [BASELINE, *names]
    argv = [f"--{key}={getattr(args, key)}" for key in ("device", "test", "size", "epochs", "threads")]
    argv += ["--pretrained"] if args.pretrained else []
    if args.probe and not 0 < args.probe[0] < args.probe[1]:
        parser.error(f"--probe needs 0 < A < B, got {args.probe}")
    results = {}
    for name in names:
        if args.probe:
            results[name] = probe(name, argv, tuple(args.probe), args.train, args.timeout)
        else:
            results[name] = run_isolated(name, [*argv, f"--train={args.train}"], args.timeout)
        print(f"{name}: {results[name]}", file=sys.stderr, flush=True)
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
