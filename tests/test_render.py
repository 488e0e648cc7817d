"""Real renders of the nut_bolt scenario at tiny sizes (bpy runs only in spawned worker processes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import ndimage
from typer.testing import CliRunner

from mkdata.cli import app
from mkdata.generator.config import RenderConfig
from mkdata.generator.plan import ImageJob
from mkdata.generator.pool import render_in_subprocess
from mkdata.scenes import get_scenario

pytestmark = pytest.mark.render

TINY = ["--scenario", "nut_bolt", "--train", "4", "--test-good", "2", "--test-bad", "6",
        "--resolution", "64", "--samples", "4", "--no-denoise", "--quiet"]


def with_option(args: list[str], option: str, value: str) -> list[str]:
    """``args`` with the value after ``option`` replaced."""
    position = args.index(option) + 1
    return [*args[:position], value, *args[position + 1:]]


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["miad", *args])
    return result.exit_code, result.output


def png_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.png"))}


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    code, output = run_cli(*TINY, "--out", str(out))
    assert code == 0, output
    return out / "nut_bolt"


def test_mvtec_layout_and_metadata(tiny: Path) -> None:
    defect_types = get_scenario("nut_bolt").spec.defect_types
    assert len(list((tiny / "train" / "good").glob("*.png"))) == 4
    assert len(list((tiny / "test" / "good").glob("*.png"))) == 2
    for defect in defect_types:
        images = sorted((tiny / "test" / defect).glob("*.png"))
        assert len(images) == 2
        for image in images:
            mask = np.asarray(Image.open(tiny / "ground_truth" / defect / f"{image.stem}_mask.png"))
            assert mask.shape == np.asarray(Image.open(image)).shape[:2] == (64, 64)
            assert set(np.unique(mask)) <= {0, 255}
    manifest = pd.read_parquet(tiny / "manifest.parquet")
    assert len(manifest) == 12
    pd.testing.assert_frame_equal(manifest, pd.read_csv(tiny / "manifest.csv", keep_default_na=False, na_values=[""]), check_dtype=False)
    info = json.loads((tiny / "dataset.json").read_text())
    assert info["counts"] == {"train/good": 4, "test/good": 2, **{f"test/{d}": 2 for d in defect_types}}
    assert {a["asset_id"] for a in info["assets"]} == set(manifest.background_id) | set(manifest.surface_id)
    assert all(a["licence"] for a in info["assets"])


def test_defect_masks_nonempty_and_normal_masks_absent(tiny: Path) -> None:
    manifest = pd.read_parquet(tiny / "manifest.parquet")
    defective = manifest[manifest.label == 1]
    normal = manifest[manifest.label == 0]
    assert (defective.defect_pixel_ratio > 0).all() and (defective.defect_pixel_ratio < 0.2).all()
    assert (normal.defect_pixel_ratio == 0).all() and normal.mask_path.isna().all()
    for row in defective.itertuples():
        mask = np.asarray(Image.open(tiny / row.mask_path)) > 0
        assert mask.mean() == pytest.approx(row.defect_pixel_ratio)
    assert not list((tiny / "ground_truth").glob("good*"))


def test_train_and_test_viewpoints_lie_in_disjoint_angle_bins(tiny: Path) -> None:
    manifest = pd.read_parquet(tiny / "manifest.parquet")
    for column in ("camera_azimuth", "camera_elevation"):
        parity = np.floor(manifest[column]).astype(int) % 2
        assert (parity[manifest.split == "train"] == 0).all()
        assert (parity[manifest.split == "test"] == 1).all()


def blender_temp_dirs() -> set[Path]:
    """Blender's and BlenderProc's per-process folders in /tmp."""
    tmp = Path(tempfile.gettempdir())
    return set(tmp.glob("blender_*")) | set(tmp.glob("mkdata_bproc_*"))


def test_workers_and_shards_give_the_same_bytes(tiny: Path, tmp_path: Path) -> None:
    before = blender_temp_dirs()
    assert run_cli(*TINY, "--out", str(tmp_path), "--shard", "0/2", "--workers", "2")[0] == 0
    assert run_cli(*TINY, "--out", str(tmp_path), "--shard", "1/2", "--recycle-after", "2")[0] == 0
    again = png_files(tmp_path / "nut_bolt")
    assert again == png_files(tiny)  # same files, same bytes
    assert blender_temp_dirs() <= before  # finished (and recycled) workers clean up after Blender(Proc)


def test_killed_run_resumes_to_a_complete_identical_dataset(tiny: Path, tmp_path: Path) -> None:
    args = with_option(TINY, "--train", "16")  # the first 4 training images must equal tiny's
    stale = tmp_path / "nut_bolt" / "train" / "good" / ".00000.png.99999.tmp"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half an image")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    process = subprocess.Popen([sys.executable, "-m", "mkdata.cli", "miad", *args, "--out", str(tmp_path)], start_new_session=True)
    records = tmp_path / "nut_bolt" / ".records"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(records.glob("*.json"))) < 3:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done_before = len(list(records.glob("*.json")))
    assert 3 <= done_before < 24, "the run should have been killed part-way"
    for png in (tmp_path / "nut_bolt").rglob("*.png"):
        Image.open(png).load()  # no truncated image is visible under its final name
    assert run_cli(*args, "--out", str(tmp_path))[0] == 0
    resumed = png_files(tmp_path / "nut_bolt")
    assert len(resumed) == 16 + 2 + 6 + 6
    assert {k: v for k, v in resumed.items() if k in png_files(tiny)} == png_files(tiny)
    assert not stale.exists()
    assert len(pd.read_parquet(tmp_path / "nut_bolt" / "manifest.parquet")) == 24


def children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while being read
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_workers_stop_when_the_run_is_killed(tmp_path: Path) -> None:
    """Only the CLI process is killed (an OOM kill, a closed session): its render workers must not
    go on rendering the queue as orphans, competing with the rerun for the cores."""
    args = with_option(with_option(TINY, "--train", "40"), "--resolution", "48")
    process = subprocess.Popen([sys.executable, "-m", "mkdata.cli", "miad", *args, "--workers", "2", "--out", str(tmp_path)],
                               start_new_session=True)
    records = tmp_path / "nut_bolt" / ".records"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(records.glob("*.json"))) < 2:
        time.sleep(0.2)
    workers = children(process.pid)
    assert len(workers) >= 2, "the run should have started its workers"
    process.kill()
    process.wait()
    deadline = time.time() + 60
    while time.time() < deadline and any(Path(f"/proc/{pid}").exists() for pid in workers):
        time.sleep(0.2)
    alive = [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    assert not alive, "render workers outlived the killed run"
    assert len(list(records.glob("*.json"))) < 48, "the orphans rendered the rest of the queue"


def test_mask_covers_where_the_defect_changes_the_image() -> None:
    config = RenderConfig("nut_bolt", Path("unused"), 0, 0, 3, 96, 8, ("UV", "UB"), denoise=False)
    jobs = [ImageJob("test_bad", i, d) for i, d in enumerate(get_scenario("nut_bolt").spec.defect_types)]
    results = render_in_subprocess(config, [(job, apply) for job in jobs for apply in (True, False)])
    for k, job in enumerate(jobs):
        (defective, mask, record), (clean, clean_mask, _) = results[2 * k], results[2 * k + 1]
        mask = mask > 0
        assert mask.any(), job
        assert not clean_mask.any(), "without the defect nothing changed, so nothing is masked"
        difference = np.abs(defective.astype(int) - clean.astype(int)).max(axis=-1)
        strong = difference > 40
        near_mask = ndimage.binary_dilation(mask, iterations=2)
        assert strong.any(), job
        assert strong[near_mask].sum() >= 0.9 * strong.sum(), f"{job}: strong changes outside the mask"
        assert difference[mask].mean() > 5 * difference[~near_mask].mean(), job


def test_factors_none_holds_viewpoint_and_background_fixed(tmp_path: Path) -> None:
    code, output = run_cli(*TINY, "--factors", "none", "--test-bad", "0", "--out", str(tmp_path))
    assert code == 0, output
    manifest = pd.read_parquet(tmp_path / "nut_bolt" / "manifest.parquet")
    camera = manifest[["camera_radius", "camera_azimuth", "camera_elevation"]]
    assert (camera.nunique() == 1).all()
    assert set(manifest.background_id) == {"night_plain"}
    assert not manifest[["factor_UV", "factor_UB", "factor_US"]].any().any()


def test_anomalib_datamodules_load_the_dataset(tiny: Path) -> None:
    from anomalib.data import Folder, MVTecAD

    mvtec = MVTecAD(root=tiny.parent, category="nut_bolt", train_batch_size=4, eval_batch_size=12, num_workers=0)
    mvtec.setup()
    batch = next(iter(mvtec.test_dataloader()))
    assert batch.image.shape[0] == 8 and batch.gt_mask.shape[-2:] == (64, 64)
    assert int(batch.gt_label.sum()) == 6 and batch.gt_mask[batch.gt_label.bool()].flatten(1).any(1).all()
    assert next(iter(mvtec.train_dataloader())).image.shape[0] == 4
    folder = Folder(
        name="nut_bolt", root=tiny, normal_dir="train/good", normal_test_dir="test/good",
        abnormal_dir=[f"test/{d}" for d in get_scenario("nut_bolt").spec.defect_types],
        mask_dir=[f"ground_truth/{d}" for d in get_scenario("nut_bolt").spec.defect_types],
        train_batch_size=4, eval_batch_size=12, num_workers=0,
    )
    folder.setup()
    assert next(iter(folder.test_dataloader())).gt_mask.shape[-2:] == (64, 64)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "bolts"], "valid scenarios: "),
        (["--train", "-1"], "n_train must be >= 0"),
        (["--shard", "2/2"], "--shard"),
        (["--shard", "one/two"], "--shard"),
        (["--factors", "UV,US"], "has no factor US"),
        (["--factors", "XY"], "unknown factor"),
        (["--preset", "huge"], "valid presets"),
        (["--camera", "pinhole"], "valid camera models: realistic, ideal"),
    ],
)
def test_bad_input_exits_nonzero_with_a_clear_message(args: list[str], message: str, tmp_path: Path) -> None:
    code, output = run_cli(*TINY, "--out", str(tmp_path), *args)
    assert code != 0
    assert message in " ".join(output.split())
    assert not (tmp_path / "nut_bolt" / "train").exists()


def test_unknown_scenario_lists_every_valid_one(tmp_path: Path) -> None:
    code, output = run_cli("--scenario", "nut_bolt,bolts", "--out", str(tmp_path))
    assert code == 2 and "nut_bolt" in output and "bolts" in output


def test_unwritable_output_and_changed_settings_are_refused(tiny: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    code, output = run_cli(*TINY, "--out", str(blocker / "sub"))
    assert code == 2 and "cannot write to output folder" in output
    code, output = run_cli(*with_option(TINY, "--resolution", "80"), "--out", str(tiny.parent))
    assert code == 2 and "resolution: 64 → 80" in " ".join(output.split())


def test_missing_bpy_names_the_extra_to_install(tmp_path: Path) -> None:
    blocker = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'bpy': raise ModuleNotFoundError('blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
    )
    (tmp_path / "sitecustomize.py").write_text(blocker)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "mkdata.cli", "miad", *TINY, "--out", str(tmp_path / "o")],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    assert "mkdata[render]" in result.stderr


def test_stats_matches_the_manifest(tiny: Path) -> None:
    result = CliRunner().invoke(app, ["stats", str(tiny.parent), "--json"])
    assert result.exit_code == 0, result.output
    table = pd.DataFrame(json.loads(result.output)).set_index(["split", "defect_type"])
    manifest = pd.read_parquet(tiny / "manifest.parquet")
    for (split, defect), rows in manifest.groupby(["split", "defect_type"]):
        assert table.loc[(split, defect), "images"] == len(rows)
        if defect != "good":
            assert table.loc[(split, defect), "mean_ratio"] == pytest.approx(rows.defect_pixel_ratio.mean())
            masks = [np.asarray(Image.open(tiny / p)) > 0 for p in rows.mask_path]
            touching = np.mean([m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any() for m in masks])
            assert table.loc[(split, defect), "border_masks"] == pytest.approx(touching)
            assert table.loc[(split, defect), "empty_masks"] == 0
            assert table.loc[(split, defect), "vs_miad"] == pytest.approx(rows.defect_pixel_ratio.mean() / 0.0036)  # MIAD Table 2
    assert CliRunner().invoke(app, ["stats", str(tiny / "train" / "good")]).exit_code == 2


def test_preview_writes_a_contact_sheet_with_outlined_masks(tmp_path: Path) -> None:
    sheet_path = tmp_path / "sheet.png"
    result = CliRunner().invoke(app, ["preview", "--scenario", "nut_bolt", "--out", str(sheet_path), "--resolution", "64", "--samples", "2"])
    assert result.exit_code == 0, result.output
    sheet = np.asarray(Image.open(sheet_path))
    assert sheet.shape == (128, 256, 3)  # 3 normal + 3 defect tiles in 2 rows of 4
    outlined = np.all(sheet == [255, 40, 40], axis=-1)
    assert not outlined[:64, :192].any() and outlined[:64, 192:].any() and outlined[64:, :128].any()
    assert CliRunner().invoke(app, ["preview", "--scenario", "all"]).exit_code == 2  # one scenario at a time
