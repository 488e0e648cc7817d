"""Render-farm paths, for real at tiny sizes: the Ray backend (a local Ray cluster), a worker
killed mid-chunk, two runs on one folder at once, `mkdata merge` and `mkdata status`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from mkdata.cli import app

pytestmark = pytest.mark.render

TINY = ["--scenario", "nut_bolt", "--train", "6", "--test-good", "2", "--test-bad", "4",
        "--resolution", "64", "--samples", "4", "--no-denoise", "--quiet"]
TINY_IMAGES = 6 + 2 + 4


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def cli_process(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mkdata.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def png_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def manifest_without_timing(root: Path) -> pd.DataFrame:
    return pd.read_parquet(root / "manifest.parquet").drop(columns=["render_seconds"])


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny dataset rendered by the local backend: the reference."""
    out = tmp_path_factory.mktemp("local")
    code, output = run_cli("miad", *TINY, "--out", str(out))
    assert code == 0, output
    return out / "nut_bolt"


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def render_workers(pid: int) -> list[int]:
    """The bpy render worker processes (multiprocessing 'spawn' children) started under ``pid``."""
    workers = []
    for child in descendants(pid):
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.append(child)
        except OSError:
            continue
    return workers


def test_ray_backend_writes_the_bytes_of_local_workers(local: Path, tmp_path: Path) -> None:
    code, output = run_cli("miad", *TINY, "--out", str(tmp_path), "--backend", "ray", "--chunk-size", "5")
    assert code == 0, output
    assert png_files(tmp_path / "nut_bolt") == png_files(local)
    pd.testing.assert_frame_equal(manifest_without_timing(tmp_path / "nut_bolt"), manifest_without_timing(local))


def test_a_render_worker_killed_mid_chunk_is_retried_and_the_run_finishes(local: Path, tmp_path: Path) -> None:
    process = cli_process("miad", *TINY, "--out", str(tmp_path), "--backend", "ray", "--chunk-size", str(TINY_IMAGES))
    records = tmp_path / "nut_bolt" / ".records"
    deadline = time.time() + 300
    while time.time() < deadline and not (records.is_dir() and len(list(records.glob("*.json"))) >= 2):
        time.sleep(0.2)
    during = json.loads(run_cli("status", str(tmp_path / "nut_bolt"), "--json")[1])
    assert during["running"] and sum(g["planned"] for g in during["groups"]) == TINY_IMAGES
    assert sum(g["done"] for g in during["groups"]) >= 2 and during["images_per_minute"] > 0
    workers = render_workers(process.pid)
    assert workers, "no render worker found to kill"
    for worker in workers:
        os.kill(worker, signal.SIGKILL)
    done_at_kill = len(list(records.glob("*.json")))
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output
    assert done_at_kill < TINY_IMAGES, "the worker should have been killed part-way through its chunk"
    dataset = tmp_path / "nut_bolt"
    for png in dataset.rglob("*.png"):
        Image.open(png).load()
    assert png_files(dataset) == png_files(local)
    assert run_cli("merge", str(dataset))[0] == 0


def test_two_runs_at_once_on_one_folder_end_as_one_run(local: Path, tmp_path: Path) -> None:
    first, second = (cli_process("miad", *TINY, "--out", str(tmp_path)) for _ in range(2))
    for process in (first, second):
        output, _ = process.communicate(timeout=600)
        assert process.returncode == 0, output
    assert png_files(tmp_path / "nut_bolt") == png_files(local)
    pd.testing.assert_frame_equal(manifest_without_timing(tmp_path / "nut_bolt"), manifest_without_timing(local))
    assert not list((tmp_path / "nut_bolt").rglob("*.tmp"))


def test_merge_finds_a_deleted_image_and_a_truncated_png_and_a_rerun_repairs_them(local: Path, tmp_path: Path) -> None:
    dataset = tmp_path / "nut_bolt"
    shutil.copytree(local, dataset)
    deleted, truncated = dataset / "train/good/00001.png", dataset / "test/loose_nut/00001.png"
    deleted.unlink()
    truncated.write_bytes(truncated.read_bytes()[:100])
    code, output = run_cli("merge", str(dataset))
    assert code == 1
    assert "train/good/00001.png" in output and "test/loose_nut/00001.png" in output
    assert len(pd.read_parquet(dataset / "manifest.parquet")) == TINY_IMAGES - 2
    status = json.loads(run_cli("status", str(dataset), "--json")[1])
    assert sum(group["missing"] for group in status["groups"]) == 2
    assert run_cli("miad", *TINY, "--out", str(tmp_path))[0] == 0
    assert png_files(dataset) == png_files(local)
    assert run_cli("merge", str(dataset))[0] == 0


def test_status_counts_done_images_per_split_and_type(local: Path) -> None:
    code, output = run_cli("status", str(local), "--json")
    assert code == 0, output
    status = json.loads(output)
    groups = {(g["split"], g["defect_type"]): g for g in status["groups"]}
    assert groups[("train", "good")]["done"] == 6 and groups[("test", "missing_nut")]["done"] == 2
    assert all(g["missing"] == g["failed"] == 0 for g in groups.values()) and not status["running"]


def test_a_device_that_is_absent_is_refused_with_its_name(tmp_path: Path) -> None:
    code, output = run_cli("miad", *TINY, "--out", str(tmp_path), "--device", "cuda")
    assert code == 2
    assert "cuda" in output.lower() and "no " in output.lower()


def test_contamination_pool_uses_training_conditions_beside_an_unchanged_dataset(local: Path, tmp_path: Path) -> None:
    """--contamination-pool renders defective images with training viewpoints (even-degree bins)
    into OUT/<scenario>_pool; the dataset itself is the same as without a pool."""
    from mkdata.scenes.camera import angle_bin_parity

    code, output = run_cli("miad", *TINY, "--out", str(tmp_path), "--contamination-pool", "6", "--seed", "0")
    assert code == 0, output
    assert png_files(tmp_path / "nut_bolt") == png_files(local)
    pool = pd.read_parquet(tmp_path / "nut_bolt_pool" / "manifest.parquet")
    assert len(pool) == 6 and set(pool.split) == {"pool"} and (pool.label == 1).all()
    assert all(angle_bin_parity(a) == 0 and angle_bin_parity(e) == 0 for a, e in zip(pool.camera_azimuth, pool.camera_elevation))
    for row in pool.itertuples():
        image, mask = Image.open(tmp_path / "nut_bolt_pool" / row.path), Image.open(tmp_path / "nut_bolt_pool" / row.mask_path)
        assert image.size == mask.size and np.asarray(mask).any()
    destination = tmp_path / "contaminated"
    code, output = run_cli("contaminate", str(tmp_path / "nut_bolt"), "--ratio", "0.5", "--out", str(destination))
    assert code == 0, output
    truth = json.loads((destination / "contamination.json").read_text())
    anomalous = [entry for entry in truth["train"] if entry["anomalous"]]
    assert len(anomalous) == 3 and len(truth["train"]) == 6  # replace mode keeps the 6 training images
    assert all(entry["source"].startswith("../nut_bolt_pool/test/") for entry in anomalous)
