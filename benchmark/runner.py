"""`mkdata bench`: resolve datasets, expand the grid into cells, run each cell in its own process
(locally with --jobs, or on a Ray cluster), store results per cell as they finish, then report.

Results live in ``OUTPUT/cells/<key>/result.json`` (one atomic file per cell, keyed by the hash
of the cell's full config and its dataset's fingerprint), so a killed run loses only the cells in
flight, a rerun skips the cells that succeeded (failed ones are retried; ``force`` redoes all),
and Ray workers on other nodes write to a shared folder without a database lock.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mkdata.benchmark.cell import failed_record
from mkdata.benchmark.config import BenchConfig, Cell, DatasetSpec, Limits
from mkdata.benchmark.datasets import dataset_fingerprint, read_category

from mkdata.errors import BadInput
from mkdata.files import write_bytes_atomic, write_text_atomic

POLL_S = 0.5
CELL_ENV = {"TQDM_DISABLE": "1"}
BACKENDS = ("local", "ray")


def discover_datasets(root: Path) -> list[DatasetSpec]:
    """Every MVTec-layout category folder directly under ``root`` (what `mkdata miad` writes)."""
    if not root.is_dir():
        return []
    return [DatasetSpec(path=p) for p in sorted(root.iterdir()) if (p / "train" / "good").is_dir()]


def dataset_folder(spec: DatasetSpec, render: Callable[[DatasetSpec], Path] | None) -> Path:
    """The folder of a dataset spec: its path (layout checked now, not in every cell), or the
    folder ``render`` makes for a scenario spec (the benchmark itself cannot render)."""
    if spec.path is not None:
        read_category(spec.path)
        return Path(spec.path)
    if render is None:
        raise ValueError(f"dataset {spec.name} is a scenario to render; pass a renderer (mkdata.bench_data.render_dataset)")
    return render(spec)


def expand_cells(config: BenchConfig, datasets: list[tuple[DatasetSpec, Path]]) -> list[Cell]:
    """The grid: dataset × detector × wrapper × contamination ratio × seed."""
    cells = []
    for spec, path in datasets:
        fingerprint = dataset_fingerprint(path)
        for detector in config.detectors:
            for wrapper in config.wrappers:
                for ratio in config.ratios:
                    for seed in config.seeds:
                        cells.append(Cell(spec, path, fingerprint, detector, wrapper, config.contamination_kind, ratio, seed,
                                          config.image_size, config.device))
    return cells


def select(cells: list[Cell], only: Iterable[str]) -> list[Cell]:
    """Keep cells whose description matches every KEY=VALUE in ``only`` (e.g. detector=padim)."""
    conditions = []
    for item in only:
        if "=" not in item:
            raise BadInput(f"--only takes KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        conditions.append((key.strip(), value.strip()))
    keys = set(cells[0].describe()) if cells else set()
    for key, _ in conditions:
        if cells and key not in keys:
            raise BadInput(f"--only: unknown key {key!r}; valid keys: {', '.join(sorted(keys))}")
    return [c for c in cells if all(str(c.describe()[k]) == v or _same_number(c.describe()[k], v) for k, v in conditions)]


def _same_number(value: Any, text: str) -> bool:
    try:
        return isinstance(value, (int, float)) and float(text) == float(value)
    except ValueError:
        return False


def cell_dir(output: Path, cell: Cell) -> Path:
    return output / "cells" / cell.key()


def finished(output: Path, cell: Cell) -> bool:
    result = cell_dir(output, cell) / "result.json"
    return result.exists() and json.loads(result.read_text()).get("status") == "ok"


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return next(int(line.split()[1]) / 1024 for line in fh if line.startswith("VmRSS"))
    except (OSError, StopIteration):
        return 0.0


def cell_environment(detector: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a cell of ``detector`` runs in: ``CELL_ENV`` and the detector's own
    ``cell_env``, under the caller's environment (a variable set there wins), under ``extra``."""
    from mkdata.benchmark.detectors.registry import detector_class

    return {**CELL_ENV, **detector_class(detector).cell_env, **os.environ, **(extra or {})}


def run_cell_subprocess(cell: Cell, directory: Path, limits: Limits, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one cell in a fresh Python process under the time and memory limits; its record."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "result.json").unlink(missing_ok=True)
    write_bytes_atomic(directory / "cell.pkl", pickle.dumps(cell))
    with open(directory / "log.txt", "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "mkdata.benchmark.cell", str(directory)], stdout=log, stderr=subprocess.STDOUT,
                                   env=cell_environment(cell.detector.name, env))
        start, problem = time.monotonic(), ""
        while process.poll() is None:
            time.sleep(POLL_S)
            if time.monotonic() - start > limits.time_s:
                problem = f"time limit exceeded ({limits.time_s:g} s)"
            elif limits.memory_gb and _rss_mb(process.pid) > limits.memory_gb * 1024:
                problem = f"memory limit exceeded ({limits.memory_gb:g} GB)"
            if problem:
                process.kill()
                process.wait()
    result = directory / "result.json"
    if problem or not result.exists():
        tail = (directory / "log.txt").read_text(errors="replace")[-3000:]
        reason = problem or f"cell process died (exit code {process.returncode})"
        record = failed_record(cell, f"{reason}\n{tail}")
        write_text_atomic(result, json.dumps(record))
        return record
    return json.loads(result.read_text())


def _gpu_count() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count()


def run_local(cells: list[Cell], output: Path, limits: Limits, jobs: int, on_done: Callable[[dict[str, Any]], None],
              on_start: Callable[[], None]) -> None:
    """Run cells with ``jobs`` concurrent processes; with GPUs, slot i uses GPU i % count."""
    gpus = _gpu_count()

    def work(slot_cell: tuple[int, Cell]) -> dict[str, Any]:
        slot, cell = slot_cell
        on_start()
        env = {"CUDA_VISIBLE_DEVICES": str(slot % gpus)} if gpus else None
        return run_cell_subprocess(cell, cell_dir(output, cell), limits, env)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(work, (i % jobs, cell)) for i, cell in enumerate(cells)]
        for future in as_completed(futures):
            on_done(future.result())


def run_ray(cells: list[Cell], output: Path, limits: Limits, on_done: Callable[[dict[str, Any]], None], address: str | None) -> None:
    """Spread cells over a Ray cluster; each task runs the same cell subprocess on its node
    (``output`` must be on a filesystem every node sees)."""
    import ray

    ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    gpus = 1 if _gpu_count() and any(c.device != "cpu" for c in cells) else 0
    remote = ray.remote(num_gpus=gpus)(run_cell_subprocess)
    pending = {remote.remote(cell, cell_dir(output, cell), limits): cell for cell in cells}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            pending.pop(ref)
            on_done(ray.get(ref))


def prepare(config: BenchConfig, data_root: Path = Path("data"), render: Callable[[DatasetSpec], Path] | None = None) -> list[Cell]:
    """Resolve the datasets (``render`` makes the folder of a scenario spec) and expand the grid."""
    specs = config.datasets or tuple(discover_datasets(data_root))
    if not specs:
        raise BadInput(f"no datasets: none configured and no MVTec-layout folder under {data_root} "
                         "(render one with `mkdata miad`, or list datasets in a --config file)")
    return expand_cells(config, [(spec, dataset_folder(spec, render)) for spec in specs])


@dataclass(frozen=True)
class BenchCounts:
    """Where a bench run stands: cells in all, those done before it started (skipped), and this
    run's succeeded, failed and running ones."""

    cells: int
    skipped: int
    succeeded: int
    failed: int
    running: int


def run_bench(config: BenchConfig, cells: list[Cell], jobs: int = 1, backend: str = "local", force: bool = False,
              ray_address: str | None = None, on_progress: Callable[[BenchCounts], None] = lambda progress: None) -> BenchCounts:
    """Run the cells that are not finished; ``on_progress`` hears the counts at the start and
    whenever a cell starts or ends. Returns the final counts."""
    if backend not in BACKENDS:
        raise BadInput(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    config.output.mkdir(parents=True, exist_ok=True)
    todo = [c for c in cells if force or not finished(config.output, c)]
    counts = {"succeeded": 0, "failed": 0, "running": 0}

    def report() -> None:
        on_progress(BenchCounts(len(cells), len(cells) - len(todo), **counts))

    def started() -> None:
        counts["running"] += 1
        report()

    def done(record: dict[str, Any]) -> None:
        counts["running"] = max(0, counts["running"] - 1)
        counts["succeeded" if record.get("status") == "ok" else "failed"] += 1
        report()

    report()
    if backend == "ray":
        run_ray(todo, config.output, config.limits, done, ray_address)
    else:
        run_local(todo, config.output, config.limits, max(1, jobs), done, started)
    return BenchCounts(len(cells), len(cells) - len(todo), counts["succeeded"], counts["failed"], running=0)


def with_output(config: BenchConfig, output: Path | None) -> BenchConfig:
    return config if output is None else replace(config, output=output)
