"""The runs started on a dataset folder: one small file per run (host, pid, config, shard, start
and end) under ``.runs/``, so `mkdata status` knows the plan and whether a run is going on,
also when many shards on many machines write into one shared folder."""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from mkdata.files import write_text_atomic
from mkdata.generator.config import RenderConfig

RUNS_DIR = ".runs"
STALE_RUN_S = 6 * 3600.0  # a run elsewhere that has not finished after this long is taken for dead


@dataclass(frozen=True)
class RunInfo:
    """One run of `mkdata miad` on the folder."""

    host: str
    pid: int
    started_at: float
    config: dict[str, object]
    shard: tuple[int, int]
    finished_at: float | None = None

    def is_going_on(self, now: float) -> bool:
        """Not finished, and its process alive (same host) or started recently (elsewhere)."""
        if self.finished_at is not None:
            return False
        if self.host == socket.gethostname():
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return True
            return True
        return now - self.started_at < STALE_RUN_S


def start_run(config: RenderConfig, shard: tuple[int, int]) -> tuple[Path, RunInfo]:
    """Record that a run starts now; returns its file and info (pass both to ``finish_run``)."""
    info = RunInfo(socket.gethostname(), os.getpid(), time.time(), config.to_dict(), shard)
    path = config.dataset_dir / RUNS_DIR / f"{info.host}-{info.pid}-{int(info.started_at * 1000)}.json"
    write_text_atomic(path, json.dumps(asdict(info)))
    return path, info


def finish_run(path: Path, info: RunInfo) -> None:
    write_text_atomic(path, json.dumps({**asdict(info), "finished_at": time.time()}))


def read_runs(dataset_dir: Path) -> list[RunInfo]:
    """Every run recorded on the folder, oldest first."""
    runs = []
    for path in sorted((dataset_dir / RUNS_DIR).glob("*.json")):
        entry = json.loads(path.read_text())
        runs.append(RunInfo(**{**entry, "shard": tuple(entry["shard"])}))
    return sorted(runs, key=lambda run: run.started_at)
