"""anomalib's PatchCore against patchcore_scalable as the training set grows: fit and coreset
seconds, peak RSS (and CUDA memory), image AUROC and AUPRO, side by side in one run.

Data: synthetic inspection sets (``mkdata.benchmark.synthetic``): N normal training images
(made 100 at a time, seeds 0, 100, 200, ...) and one fixed test set of ``--test`` images, half with a defect and its mask (seed 1),
at each ``--sizes`` side. The largest N's images are made once per size, on every core, into one
``.npy`` file; each run reads its first N (the same images a run would make alone). Both sides use the same backbone, layers, sampling ratio and seed
(defaults: the bench default, packaged EfficientNet-Lite0, blocks.2 + blocks.4). Each (side,
size, N) runs in its own interpreter, with the bench cells' environment (``runner.cell_environment``), so
peak RSS is its own; the parent kills a run whose RSS passes ``--memory-limit`` MiB or whose wall
time passes ``--time-limit`` s, and a side that fails or is stopped is not run on larger N at that
size. "RSS" is the run's peak RSS; "fit+" is that peak minus the RSS just before ``fit`` (imports,
model-free data and test set excluded: the detector's own memory). Coreset seconds are the time inside anomalib's ``KCenterGreedy.select_coreset_idxs`` (its
sparse projection included) and inside ``coreset.approximate_greedy`` (the projection is made
while streaming), timed with a profile hook on those two functions only.

``--input folder`` writes each run's training set as PNG files (100 at a time, before the "fit+"
baseline) and fits on the folder, which ``patchcore`` decodes whole and ``patchcore_scalable``
decodes one batch at a time. The side ``scalable_in_ram`` is ``patchcore_scalable`` fitted on an
array with its projections held in RAM (``projection_ram_mb`` 10⁹), as it ran before it streamed
them: beside ``scalable`` it shows what streaming the images and projections saves.

``--pick-cost ROWS`` instead times one pick of ``coreset.approximate_greedy`` on ROWS × 128 random
float32 projections: a tensor in RAM, the same rows read in chunks from RAM, and from a
``MemoryBank`` on disk (float32 and float16; the file in the page cache, as just written).

    python benchmarks/patchcore_scaling.py --sizes 128 --train 250 500 1000 --ratio 0.01
    python benchmarks/patchcore_scaling.py --sides scalable --sizes 128 --train 10000 --ratio 0.001 --bank-ram-mb 256
    python benchmarks/patchcore_scaling.py --sides scalable_in_ram scalable --input folder --sizes 128 --train 250 1000 4000 --ratio 0.001 --bank-ram-mb 16
    python benchmarks/patchcore_scaling.py --pick-cost 1024000
    python benchmarks/patchcore_scaling.py --device cuda --sizes 256 --train 2000 5000 10000   # GPU
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

SIDES = {  # side: detector, its own parameters, training input (None: --input)
    "anomalib": ("patchcore", {}, None),
    "scalable": ("patchcore_scalable", {}, None),
    "scalable_in_ram": ("patchcore_scalable", {"projection_ram_mb": 1e9}, "array"),
}
POLL_S = 0.2
CHUNK = 100  # training images generated at a time (make_synthetic builds them in float64)


def _coreset_clock(code: object, spent: list[float], sync: Callable[[], None]) -> None:
    """Add the wall time of every call of the function whose code object is ``code`` to ``spent``,
    calling ``sync`` (CUDA's synchronize) before each reading, so that queued GPU work is counted."""
    started: dict[int, float] = {}

    def hook(frame, event, _arg) -> None:  # noqa: ANN001 (sys.setprofile's signature)
        if frame.f_code is code:
            if event == "call":
                sync()
                started[id(frame)] = time.perf_counter()
            elif event == "return":
                sync()
                spent.append(time.perf_counter() - started.pop(id(frame)))

    sys.setprofile(hook)


def _make_chunk(path: Path, start: int, count: int, size: int) -> None:
    """Images ``start:start + count`` of the training file at ``path``, made from seed ``start``."""
    from mkdata.benchmark.synthetic import make_synthetic

    images = np.load(path, mmap_mode="r+")
    images[start : start + count] = make_synthetic(n_train=count, n_test_good=0, n_test_bad=0, size=size, seed=start).train
    images.flush()


def make_training_file(count: int, size: int, path: Path) -> Path:
    """``count`` normal synthetic images of ``size``² in the ``.npy`` file ``path``, CHUNK at a time
    (seeds 0, CHUNK, 2·CHUNK, ...; their float64 drafts stay small), the chunks made on every core."""
    np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(count, size, size, 3)).flush()
    chunks = [(start, min(CHUNK, count - start)) for start in range(0, count, CHUNK)]
    with ProcessPoolExecutor(min(len(chunks), os.cpu_count() or 1)) as pool:
        for made in [pool.submit(_make_chunk, path, start, images, size) for start, images in chunks]:
            made.result()  # re-raises a chunk's error
    return path


def _training_chunks(path: Path, count: int) -> Iterator[np.ndarray]:
    """The first ``count`` images of the training file, CHUNK at a time, read with plain reads (the
    pages of a memory map would stay in this run's RSS)."""
    header = np.load(path, mmap_mode="r")
    shape, offset = header.shape[1:], header.offset
    del header
    with path.open("rb") as file:
        file.seek(offset)
        for start in range(0, count, CHUNK):
            images = min(CHUNK, count - start)
            yield np.fromfile(file, np.uint8, images * math.prod(shape)).reshape(images, *shape)


def _write_training_set(path: Path, count: int, folder: Path) -> Path:
    """The first ``count`` images of the training file as PNG files in ``folder``, named in order."""
    from PIL import Image

    done = 0
    for chunk in _training_chunks(path, count):
        for image in chunk:
            Image.fromarray(image).save(folder / f"{done:06d}.png", compress_level=1)
            done += 1
    return folder


def measure(args: argparse.Namespace) -> dict:
    """One side on one training set, in this process."""
    import torch

    from mkdata.benchmark.aupro import aupro
    from mkdata.benchmark.detectors.registry import create
    from mkdata.benchmark.metrics import image_auroc
    from mkdata.benchmark.synthetic import make_synthetic

    torch.set_num_threads(args.threads)
    name, own, source = SIDES[args.one]
    files = contextlib.ExitStack()
    if (source or args.input) == "folder":
        folder = Path(files.enter_context(tempfile.TemporaryDirectory(prefix="patchcore-scaling-")))
        train = _write_training_set(args.train_file, args.train, folder)
    else:
        train = np.empty((args.train, args.size, args.size, 3), np.uint8)  # filled in place: no second copy
        for start, chunk in zip(range(0, args.train, CHUNK), _training_chunks(args.train_file, args.train)):
            train[start : start + len(chunk)] = chunk
    test = make_synthetic(n_train=1, n_test_good=args.test // 2, n_test_bad=args.test - args.test // 2, size=args.size, seed=1)
    params = {"backbone": args.backbone, "layers": args.layers, "coreset_sampling_ratio": args.ratio,
              "image_size": args.size, "device": args.device, "seed": 0, **own}  # fmt: skip
    if name == "patchcore_scalable":
        import faiss

        from mkdata.benchmark import coreset

        faiss.omp_set_num_threads(args.threads)
        params["bank_ram_mb"] = args.bank_ram_mb
        target = coreset.approximate_greedy.__code__
    else:
        from anomalib.models.components import KCenterGreedy

        target = KCenterGreedy.select_coreset_idxs.__code__
    detector = create(name, **params)
    cuda = torch.cuda.is_available() and args.device != "cpu"
    spent: list[float] = []
    _coreset_clock(target, spent, torch.cuda.synchronize if cuda else lambda: None)
    before_fit = _rss_mib(os.getpid())
    start = time.perf_counter()
    detector.fit(train)
    fit_s = time.perf_counter() - start
    sys.setprofile(None)
    files.close()
    start = time.perf_counter()
    prediction = detector.predict(test.test)
    predict_s = time.perf_counter() - start
    return {
        "fit_s": fit_s,
        "coreset_s": sum(spent),
        "predict_ms": 1000 * predict_s / len(test.test),
        "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "fit_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before_fit,
        "cuda_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "coreset_rows": int(detector.module.model.memory_bank.shape[0]),
        "image_auroc": image_auroc(prediction.scores, test.labels),
        "aupro": aupro(prediction.maps, test.masks),
    }


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_isolated(side: str, size: int, train: int, train_file: Path, args: argparse.Namespace) -> dict:
    """``measure`` in a fresh interpreter on the first ``train`` images of ``train_file``, stopped past
    the time or memory limit."""
    from mkdata.benchmark.runner import cell_environment

    argv = [sys.executable, __file__, "--one", side, "--size", str(size), "--train-one", str(train), "--train-file", str(train_file),
            "--ratio", str(args.ratio), "--test", str(args.test), "--device", args.device, "--threads", str(args.threads), "--input", args.input,
            "--backbone", args.backbone, "--layers", *args.layers, "--bank-ram-mb", str(args.bank_ram_mb)]  # fmt: skip
    env = cell_environment(SIDES[side][0], {"OMP_NUM_THREADS": str(args.threads)})
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(argv, stdout=out, stderr=err, env=env, text=True)
        start, peak, stopped = time.monotonic(), 0.0, ""
        while child.poll() is None:
            peak = max(peak, _rss_mib(child.pid))
            if peak > args.memory_limit:
                stopped = f"stopped: RSS passed {args.memory_limit:.0f} MiB"
            elif time.monotonic() - start > args.time_limit:
                stopped = f"stopped: past {args.time_limit:.0f} s"
            if stopped:
                child.kill()
                child.wait()
                return {"error": stopped}
            time.sleep(POLL_S)
        out.seek(0)
        err.seek(0)
        lines = [line for line in out.read().splitlines() if line.startswith("{")]
        if child.returncode != 0 or not lines:
            return {"error": f"exit status {child.returncode}: {err.read().strip().splitlines()[-1:]}"}
    return json.loads(lines[-1])


def _cell(result: dict | None, key: str, fmt: str) -> str:
    if result is None or "error" in result or result.get(key) is None:
        return "-"
    return format(result[key], fmt)


def report(results: dict[tuple[int, int], dict[str, dict]], sides: list[str], cuda: bool) -> None:
    """One markdown table: a row per (size, N), each side's figures, and anomalib / scalable ratios."""
    every = [("fit_s", "fit s", ".1f"), ("coreset_s", "coreset s", ".1f"), ("rss_mib", "RSS MiB", ".0f"), ("fit_mib", "fit+ MiB", ".0f"),
               ("cuda_mib", "CUDA MiB", ".0f"), ("image_auroc", "AUROC", ".3f"), ("aupro", "AUPRO", ".3f")]  # fmt: skip
    columns = [column for column in every if cuda or column[0] != "cuda_mib"]
    header = ["size", "train", "coreset rows"] + [f"{side} {title}" for side in sides for _, title, _ in columns]
    both = {"anomalib", "scalable"} <= set(sides)
    header += ["coreset ×", "RSS ×"] if both else []
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for (size, train), row in results.items():
        rows = next((r["coreset_rows"] for r in row.values() if "coreset_rows" in r), None)
        cells = [str(size), str(train), str(rows) if rows else "-"]
        cells += [_cell(row.get(side), key, fmt) for side in sides for key, _, fmt in columns]
        if both:
            a, s = row.get("anomalib", {}), row.get("scalable", {})
            ok = "error" not in a and "error" not in s and a and s
            cells += [f"{a['coreset_s'] / s['coreset_s']:.1f}" if ok else "-", f"{a['rss_mib'] / s['rss_mib']:.2f}" if ok else "-"]
        print("| " + " | ".join(cells) + " |")
    for (size, train), row in results.items():
        for side, result in row.items():
            if "error" in result:
                print(f"{side} at {size}², {train} images: {result['error']}")


def pick_cost(rows: int, picks: int, directory: Path | None) -> None:
    """Seconds per pick of ``approximate_greedy`` on ``rows`` random 128-d projections, by where they are read from."""
    import torch

    from mkdata.benchmark.coreset import PROJECTION_DIM, approximate_greedy
    from mkdata.benchmark.memory_bank import MemoryBank

    features = torch.randn(rows, PROJECTION_DIM, generator=torch.Generator().manual_seed(0))
    banks = {"RAM, chunks": MemoryBank(rows, PROJECTION_DIM, math.inf, dtype=torch.float32),
             "disk float32": MemoryBank(rows, PROJECTION_DIM, 0, directory, dtype=torch.float32),
             "disk float16": MemoryBank(rows, PROJECTION_DIM, 0, directory, dtype=torch.float16)}  # fmt: skip
    for bank in banks.values():
        for chunk in features.split(CHUNK * 256):
            bank.append(chunk)
    print(f"| {rows} × {PROJECTION_DIM} rows | ms per pick ({picks} picks) | × tensor |\n|---|---|---|")
    base = None
    for label, source in {"tensor in RAM": features, **banks}.items():
        clock = []
        for size in (1, 1 + picks):
            start = time.perf_counter()
            approximate_greedy(source, size, seed=0)
            clock.append(time.perf_counter() - start)
        per_pick = (clock[1] - clock[0]) / picks
        base = base or per_pick
        print(f"| {label} | {1000 * per_pick:.1f} | {per_pick / base:.2f} |")
    for bank in banks.values():
        bank.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sides", nargs="+", choices=list(SIDES), default=["anomalib", "scalable"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[128, 256], help="image sides in pixels")
    parser.add_argument("--train", nargs="+", type=int, default=[250, 500, 1000, 2000], help="training-set sizes")
    parser.add_argument("--test", type=int, default=40, help="test images (half defective)")
    parser.add_argument("--ratio", type=float, default=0.1, help="coreset_sampling_ratio of both sides")
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--layers", nargs="+", default=["blocks.2", "blocks.4"])
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, ...")
    parser.add_argument("--threads", type=int, default=1, help="torch / faiss / OpenMP threads per run")
    parser.add_argument("--bank-ram-mb", type=float, default=1024.0, help="patchcore_scalable's bank_ram_mb")
    parser.add_argument("--time-limit", type=float, default=900.0, help="seconds per run (side, size, N)")
    parser.add_argument("--memory-limit", type=float, default=16384.0, help="peak RSS MiB per run")
    parser.add_argument("--input", choices=("array", "folder"), default="array", help="training images as one array, or as PNG files in a folder")
    parser.add_argument("--pick-cost", type=int, metavar="ROWS", help="time coreset picks on ROWS projections instead")
    parser.add_argument("--picks", type=int, default=20, help="picks timed by --pick-cost")
    parser.add_argument("--bank-dir", type=Path, help="folder of --pick-cost's banks on disk (default: the system's temporary folder)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--one", choices=list(SIDES), help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--train-one", type=int, dest="train_one", help=argparse.SUPPRESS)
    parser.add_argument("--train-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pick_cost:
        import torch

        torch.set_num_threads(args.threads)
        pick_cost(args.pick_cost, args.picks, args.bank_dir)
        return
    if args.one:
        args.train = args.train_one
        print(json.dumps(measure(args)))
        return
    results: dict[tuple[int, int], dict[str, dict]] = {}
    for size in args.sizes:
        with tempfile.TemporaryDirectory(prefix="patchcore-scaling-train-") as made:
            train_file = make_training_file(max(args.train), size, Path(made) / "train.npy")
            stopped: set[str] = set()
            for train in sorted(args.train):
                row = results.setdefault((size, train), {})
                for side in args.sides:
                    if side in stopped:
                        continue
                    row[side] = run_isolated(side, size, train, train_file, args)
                    print(f"{side} {size}² {train}: {row[side]}", file=sys.stderr, flush=True)
                    if "error" in row[side]:
                        stopped.add(side)
    print(f"coreset_sampling_ratio {args.ratio}, {args.backbone} {'+'.join(args.layers)}, {args.test} test images, "
          f"device {args.device}, {args.threads} thread(s); limits {args.time_limit:.0f} s, {args.memory_limit:.0f} MiB per run")  # fmt: skip
    report(results, args.sides, args.device != "cpu")
    if args.json:
        args.json.write_text(json.dumps({f"{s} {n}": row for (s, n), row in results.items()}, indent=2))


if __name__ == "__main__":
    main()
