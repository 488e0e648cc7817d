"""`benchmarks/factor_ablation.py` as a user runs it: a tiny study renders its sets, scores them with
real bench cells, answers each target with a bootstrap interval, and a rerun resumes from the
renders and cells it left instead of redoing them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.render, pytest.mark.slow]

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "factor_ablation.py"
PADIM = json.dumps({"backbone": "efficientnet_lite0", "layers": ["blocks.1", "blocks.2", "blocks.4"], "n_features": 50})
INTERVAL = r"[+-]\d\.\d{3} \[[+-]\d\.\d{3}, [+-]\d\.\d{3}\]"


def run_study(out: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(SCRIPT), "--scenario", "electrical_insulator", "--out", str(out),
               "--conditions", "controlled", "all", "--train", "6", "--curve", "3", "6",
               "--test-good", "4", "--test-bad", "4", "--resolution", "96", "--samples", "2", "--image-size", "64",
               "--detector", "padim", PADIM]
    return subprocess.run(command, capture_output=True, text=True, timeout=1200, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def modification_times(folder: Path, pattern: str) -> dict[Path, int]:
    return {path: path.stat().st_mtime_ns for path in folder.rglob(pattern)}


def images_and_cells(out: Path) -> dict[Path, int]:
    """When each rendered image and each cell's result were written."""
    return modification_times(out / "data", "*.png") | modification_times(out / "bench" / "cells", "result.json")


def test_a_small_study_answers_each_target_with_an_interval_and_resumes(tmp_path: Path) -> None:
    first = run_study(tmp_path)
    assert first.returncode == 0, first.stderr[-4000:]
    report = (tmp_path / "factor_ablation.md").read_text()
    assert re.search(rf"\| Δ 3 → 6 +\| {INTERVAL} +\| {INTERVAL} +\|", report), report  # padim's, and the mean's
    assert re.search(rf"- all lowers the mean AUROC vs controlled: (yes|not clearly|NO) \(\d\.\d{{3}} → \d\.\d{{3}}, Δ {INTERVAL}\)",
                     report), report
    assert re.search(rf"- all-factor AUROC rises with the training set, 3 → 6 images: (yes|not clearly|NO) .*Δ {INTERVAL}\)",
                     report), report
    written = images_and_cells(tmp_path)
    assert len(written) == 2 * (6 + 4 + 4 + 4) + 3  # masks included; cells: controlled and all at 6, all at 3

    second = run_study(tmp_path)
    assert second.returncode == 0, second.stderr[-4000:]
    assert (tmp_path / "factor_ablation.md").read_text() == report
    assert images_and_cells(tmp_path) == written
