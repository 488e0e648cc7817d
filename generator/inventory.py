"""What a dataset folder holds against its plan (``mkdata status``) and the merge that checks
every file and rebuilds the manifest (``mkdata merge``), for farms whose shards write into one
shared folder."""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from PIL import Image

from mkdata.errors import BadInput
from mkdata.generator.config import RenderConfig
from mkdata.generator.dataset import read_dataset_json, write_metadata
from mkdata.generator.plan import ImageJob, plan_jobs
from mkdata.generator.runs import read_runs

RATE_WINDOW_S = 600.0  # the rate of a run going on: records written in the last ten minutes


def is_complete(root: Path, job: ImageJob, render_key_hash: str) -> bool:
    """An image counts as done when its record (written last) exists and matches the config."""
    record_file = root / job.record_path
    if not (record_file.exists() and (root / job.image_path).exists()):
        return False
    if job.mask_path is not None and not (root / job.mask_path).exists():
        return False
    return json.loads(record_file.read_text()).get("render_key") == render_key_hash


def incomplete(config: RenderConfig, jobs: list[ImageJob]) -> list[ImageJob]:
    """The jobs of ``jobs`` whose image is not complete in ``config``'s folder (what a run renders)."""
    key = config.render_key_hash()
    return [job for job in jobs if not is_complete(config.dataset_dir, job, key)]


def planned_config(dataset_dir: Path) -> RenderConfig:
    """The config that plans the folder: the newest run's, else dataset.json's; its output is
    ``dataset_dir`` as seen from here (a farm's runs may have mounted it elsewhere)."""
    runs = read_runs(dataset_dir)
    info = read_dataset_json(dataset_dir)
    if runs:
        settings = runs[-1].config
    elif info is not None:
        settings = info["config"]
    else:
        raise BadInput(f"{dataset_dir} holds no mkdata dataset (no dataset.json and no run started there)")
    config = replace(RenderConfig.from_dict(settings), out=dataset_dir.parent)
    if config.dataset_dir != dataset_dir:
        raise BadInput(f"{dataset_dir} holds {config.dataset_dir.name}; give the folder that name again")
    return config


@dataclass(frozen=True)
class GroupCounts:
    """Images of one split and defect type."""

    split: str
    defect_type: str
    planned: int
    done: int
    failed: int
    missing: int


@dataclass(frozen=True)
class DatasetStatus:
    groups: list[GroupCounts]
    running: bool
    images_per_minute: float | None  # over the last ten minutes of a run going on
    eta_s: float | None


def dataset_status(dataset_dir: Path, now: float | None = None) -> DatasetStatus:
    """Done / failed / missing per split and defect type, and the rate and ETA of a run going on."""
    now = time.time() if now is None else now
    config = planned_config(dataset_dir)
    key = config.render_key_hash()
    counts: dict[tuple[str, str], Counter[str]] = {}
    for job in plan_jobs(config):
        tally = counts.setdefault((job.split, job.label), Counter())
        tally["planned"] += 1
        if is_complete(dataset_dir, job, key):
            tally["done"] += 1
        elif (dataset_dir / job.failure_path).exists():
            tally["failed"] += 1
    groups = [GroupCounts(split, label, c["planned"], c["done"], c["failed"], c["planned"] - c["done"] - c["failed"])
              for (split, label), c in counts.items()]
    runs = [run for run in read_runs(dataset_dir) if run.is_going_on(now)]
    rate = eta = None
    if runs:
        window = min(RATE_WINDOW_S, now - min(run.started_at for run in runs))
        recent = sum(now - p.stat().st_mtime <= window for p in (dataset_dir / ".records").glob("*.json"))
        rate = 60.0 * recent / window if window > 0 else None
        left = sum(g.missing + g.failed for g in groups)
        eta = 60.0 * left / rate if rate else None
    return DatasetStatus(groups, bool(runs), rate, eta)


@dataclass
class MergeReport:
    planned: int
    complete: int = 0
    missing: list[str] = field(default_factory=list)  # planned images not complete (files or record absent)
    corrupt: list[str] = field(default_factory=list)  # files that do not decode (their records were removed)
    duplicates: list[str] = field(default_factory=list)  # (group, index) claimed by more than one record

    @property
    def ok(self) -> bool:
        return not (self.missing or self.corrupt or self.duplicates)


def _decodes(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            image.load()
        return True
    except (OSError, SyntaxError, ValueError):
        return False


def merge(dataset_dir: Path) -> MergeReport:
    """Check every planned image (record, image and mask present, PNGs decode), remove the
    records of images whose files are gone or do not decode (a rerun renders them again), then
    rebuild manifest.parquet, manifest.csv and dataset.json atomically from the records."""
    config = planned_config(dataset_dir)
    key = config.render_key_hash()
    jobs = plan_jobs(config)
    report = MergeReport(planned=len(jobs))
    claims = Counter((entry["group"], entry["index"]) for entry in
                     (json.loads(p.read_text()) for p in (dataset_dir / ".records").glob("*.json")))
    report.duplicates = sorted(f"{group} {index}" for (group, index), n in claims.items() if n > 1)
    complete = [job for job in jobs if is_complete(dataset_dir, job, key)]
    for job in set(jobs) - set(complete):
        report.missing.append(str(job.image_path))
        (dataset_dir / job.record_path).unlink(missing_ok=True)  # a record whose files are gone
    report.missing.sort()
    files = {job: [dataset_dir / job.image_path] + ([dataset_dir / job.mask_path] if job.mask_path else []) for job in complete}
    with ThreadPoolExecutor() as pool:  # PIL decodes without the GIL
        decoded = dict(zip(files, pool.map(lambda paths: all(_decodes(p) for p in paths), files.values())))
    for job, good in decoded.items():
        if not good:
            report.corrupt.append(str(job.image_path))
            (dataset_dir / job.record_path).unlink(missing_ok=True)
    report.complete = len(complete) - len(report.corrupt)
    write_metadata(config)
    return report
