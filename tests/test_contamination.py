"""Contaminated datasets (`contaminate_dataset`) and the injectors the bench shares with them,
on tiny synthetic sets with a pool (benchmark.synthetic_pool) and real detectors."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mkdata.benchmark.contaminated_dataset import MASKS, RECORD, contaminate_dataset
from mkdata.benchmark.contamination import SyntheticSample, anomalies_needed, contaminate
from mkdata.benchmark.datasets import SampleImages, load_array, read_category
from mkdata.benchmark.detectors.base import _digest
from mkdata.benchmark.detectors.images import ImageBatches, load_images
from mkdata.benchmark.detectors.registry import create
from mkdata.benchmark.metrics import image_auroc
from mkdata.benchmark.robust import WrapperSpec, fit_robust
from mkdata.benchmark.synthetic_anomalies import METHODS, synthesise
from mkdata.benchmark.synthetic_pool import write_synthetic_with_pool
from mkdata.errors import BadInput
from mkdata.files import pool_dir


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 normal training images, 6 good + 12 defective test images (5 blobs, 7 scratches), a pool of 10; 32×32."""
    return write_synthetic_with_pool(tmp_path_factory.mktemp("src"), "syn", n_train=20, n_test_good=6, n_test_bad=12,
                                     n_pool=10, size=32, seed=1)


def files(root: Path, under: str = "") -> dict[str, bytes]:
    """Relative path → bytes of every file under ``root/under``."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted((root / under).rglob("*")) if p.is_file()}


def record(dst: Path) -> dict:
    return json.loads((dst / RECORD).read_text())


def masks(dst: Path) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(dst / MASKS) as archive:
        return {name: np.asarray(Image.open(io.BytesIO(archive.read(name)))) for name in archive.namelist()}


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.mark.parametrize("mode", ["replace", "add"])
@pytest.mark.parametrize("n", [7, 16, 24, 61])
@pytest.mark.parametrize("ratio", [0.0, 0.05, 0.1, 0.25, 0.3, 0.45, 0.5])
def test_the_count_gives_the_nearest_achievable_share(ratio: float, n: int, mode: str) -> None:
    k = anomalies_needed(n, ratio, mode)
    share = (lambda j: j / (n + j)) if mode == "add" else (lambda j: j / n)
    best = min(abs(share(j) - ratio) for j in range(0, n + 1 if mode == "replace" else 2 * n + 2))
    assert abs(share(k) - ratio) == pytest.approx(best, abs=1e-12)


@pytest.mark.parametrize(("ratio", "mode", "kind", "n_train", "n_anomalous"), [
    (0.1, "replace", "pool", 20, 2), (0.3, "replace", "synthetic", 20, 6), (0.5, "replace", "synthetic", 20, 10),
    (0.25, "add", "synthetic", 27, 7), (0.2, "add", "pool", 25, 5), (0.25, "replace", "test-defects", 20, 5),
    (0.0, "replace", "pool", 20, 0)])
def test_the_written_training_set_has_the_ratio(src: Path, tmp_path: Path, ratio: float, mode: str, kind: str,
                                                n_train: int, n_anomalous: int) -> None:
    result = contaminate_dataset(src, ratio, tmp_path / "dst", kind=kind, mode=mode)
    train = read_category(tmp_path / "dst").train
    flags = [entry["anomalous"] for entry in record(tmp_path / "dst")["train"]]
    assert (len(train), sum(flags)) == (result.n_train, result.n_anomalous) == (n_train, n_anomalous)
    assert result.achieved_ratio == n_anomalous / n_train == pytest.approx(ratio, abs=0.5 / n_train)
    assert [f"train/good/{s.path.name}" for s in train] == [entry["file"] for entry in record(tmp_path / "dst")["train"]]


@pytest.mark.parametrize("kind", ["pool", "synthetic"])
def test_pool_and_synthetic_leave_the_test_set_as_it_was(src: Path, tmp_path: Path, kind: str) -> None:
    result = contaminate_dataset(src, 0.3, tmp_path / "dst", kind=kind)
    for folder in ("test", "ground_truth"):
        assert files(tmp_path / "dst", folder) == files(src, folder)
    assert next((tmp_path / "dst" / "test" / "blob").iterdir()).samefile(next((src / "test" / "blob").iterdir()))  # linked
    assert result.test_removed == 0 == record(tmp_path / "dst")["counts"]["test_removed"]
    assert not pool_dir(tmp_path / "dst").exists()


def test_test_defects_leave_the_test_set_shrunk_exactly_as_reported(src: Path, tmp_path: Path) -> None:
    result = contaminate_dataset(src, 0.25, tmp_path / "dst", kind="test-defects", seed=4)
    moved = record(tmp_path / "dst")["test_removed"]
    assert result.test_removed == len(moved) == record(tmp_path / "dst")["counts"]["test_removed"] == 5
    before, after = files(src, "test"), files(tmp_path / "dst", "test")
    assert set(after) == set(before) - set(moved) and all(after[name] == before[name] for name in after)
    for defect_type in ("blob", "scratch"):  # every type keeps at least half of its images
        left = len([name for name in after if name.startswith(f"test/{defect_type}/")])
        assert left >= len([name for name in before if name.startswith(f"test/{defect_type}/")]) / 2
    gone = {name.replace("test/", "ground_truth/", 1).replace(".png", "_mask.png") for name in moved}
    assert set(files(tmp_path / "dst", "ground_truth")) == set(files(src, "ground_truth")) - gone
    sources = [e["source"] for e in record(tmp_path / "dst")["train"] if e["anomalous"]]
    assert sorted(sources) == sorted(moved)
    kept = contaminate_dataset(src, 0.4, tmp_path / "overlap", kind="test-defects", seed=4, overlap=True)
    assert kept.test_removed == 0 and files(tmp_path / "overlap", "test") == before


@pytest.mark.parametrize("kind", ["pool", "test-defects", "synthetic"])
def test_the_hidden_ground_truth_matches_the_files(src: Path, tmp_path: Path, kind: str) -> None:
    contaminate_dataset(src, 0.25, tmp_path / "dst", kind=kind, seed=2)
    dst, truth = tmp_path / "dst", record(tmp_path / "dst")
    archive = masks(dst)
    assert sorted(archive) == sorted(e["mask"] for e in truth["train"] if e["anomalous"])
    for entry in truth["train"]:
        image = pixels(dst / entry["file"])
        base, _, method = entry["source"].partition("#")
        if not entry["anomalous"]:
            assert base.startswith("train/good/") and (dst / entry["file"]).read_bytes() == (src / base).read_bytes()
            continue
        mask = archive[entry["mask"]] > 0
        if kind == "synthetic":
            assert method == entry["defect_type"] in METHODS and mask.any()
            assert (image[~mask] == pixels(src / base)[~mask]).all() and (image[mask] != pixels(src / base)[mask]).any()
        else:
            folder = f"../{src.name}_pool/test" if kind == "pool" else "test"
            assert base.startswith(f"{folder}/{entry['defect_type']}/")
            assert (dst / entry["file"]).read_bytes() == (src / base).read_bytes()
            truth_folder = (pool_dir(src) if kind == "pool" else src) / "ground_truth" / entry["defect_type"]
            truth_mask = truth_folder / f"{Path(base).stem}_mask.png"
            assert (np.asarray(Image.open(truth_mask)) > 0).tolist() == mask.tolist()
    assert sum(e["anomalous"] for e in truth["train"]) == truth["counts"]["anomalous"] == len(truth["drawn"]["chosen"])


def test_files_are_copied_where_hard_links_are_impossible_and_never_symlinked(src: Path, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    linked = contaminate_dataset(src, 0.25, tmp_path / "linked", kind="pool")
    assert linked.copied == 0

    def no_links(source: object, target: object) -> None:
        raise OSError(18, "Invalid cross-device link")  # EXDEV: DST on another filesystem

    monkeypatch.setattr("os.link", no_links)
    copied = contaminate_dataset(src, 0.25, tmp_path / "copied", kind="pool")
    written = [p for p in (tmp_path / "copied").rglob("*") if p.is_file() and p.suffix == ".png"]
    assert copied.copied == len(written) > 0
    assert files(tmp_path / "copied") == files(tmp_path / "linked")
    assert not any(p.is_symlink() for p in [*(tmp_path / "copied").rglob("*"), *(tmp_path / "linked").rglob("*")])
    first = record(tmp_path / "linked")["train"][0]  # the same draw in both
    assert (tmp_path / "linked" / first["file"]).samefile(src / first["source"])
    assert not (tmp_path / "copied" / first["file"]).samefile(src / first["source"])


def test_the_same_seed_writes_the_same_files_and_another_seed_others(src: Path, tmp_path: Path) -> None:
    first, again, other = (tmp_path / name for name in ("a", "b", "c"))
    for out, seed in ((first, 3), (again, 3), (other, 4)):
        contaminate_dataset(src, 0.3, out, kind="synthetic", seed=seed)
    assert files(first) == files(again)
    anomalous = [{e["source"] for e in record(out)["train"] if e["anomalous"]} for out in (first, other)]
    assert anomalous[0] != anomalous[1]


def test_draws_are_nested_across_ratios_and_mix_the_types_as_the_candidates_do(src: Path) -> None:
    split = read_category(src)
    for kind, overlap in (("pool", False), ("test-defects", True)):
        runs = [contaminate(split, r, kind, seed=5, mode="replace", overlap=overlap) for r in (0.1, 0.2, 0.3, 0.4)]
        drawn = [{s.path for s, bad in zip(c.split.train, c.split.contaminated) if bad} for c in runs]
        assert drawn[0] < drawn[1] < drawn[2] < drawn[3]
        for run in runs:
            types = [run.candidates[i].defect_type for i in run.chosen]
            for defect_type in {s.defect_type for s in run.candidates}:
                share = sum(s.defect_type == defect_type for s in run.candidates) / len(run.candidates)
                assert abs(types.count(defect_type) - share * len(types)) <= 1


def test_the_bench_sees_the_pixels_the_written_dataset_holds(src: Path, tmp_path: Path) -> None:
    """The bench's on-the-fly injector and the written dataset are the same draw, in the same order."""
    contaminate_dataset(src, 0.3, tmp_path / "dst", kind="synthetic", seed=6, mode="add")
    on_the_fly = contaminate(read_category(src), 0.3, "synthetic", seed=6, mode="add")
    written = read_category(tmp_path / "dst")
    for size in (32, 24):
        np.testing.assert_array_equal(load_array(on_the_fly.split.train, size), load_array(written.train, size))
    assert on_the_fly.split.contaminated == [e["anomalous"] for e in record(tmp_path / "dst")["train"]]


def test_sample_images_decode_what_load_array_does_subsets_and_batches_included(src: Path) -> None:
    """The bench cell's undecoded training set: synthesised anomalies and resizes as ``load_array``."""
    train = contaminate(read_category(src), 0.3, "synthetic", seed=6, mode="add").split.train
    assert any(isinstance(s, SyntheticSample) for s in train)
    for size in (32, 24):
        expected = load_array(train, size)
        lazy = SampleImages(tuple(train), size)
        assert len(lazy) == len(train) and lazy.shape == (size, size)
        np.testing.assert_array_equal(lazy.load(), expected)
        np.testing.assert_array_equal(load_images(lazy), expected)
        kept = np.array([len(train) - 1, 0, 5, 3])
        assert lazy[kept].samples == tuple(train[i] for i in kept)
        np.testing.assert_array_equal(lazy[kept].load(), expected[kept])
        batches = ImageBatches(lazy[kept], batch_size=3)
        assert len(batches) == 4 and batches.shape == (size, size)
        np.testing.assert_array_equal(np.concatenate(list(batches)), expected[kept])
        assert batches.digest == _digest(expected[kept])


@pytest.mark.parametrize("method", METHODS)
def test_synthesised_anomalies_are_deterministic_and_confined_to_their_mask(method: str) -> None:
    image = (np.random.default_rng(0).random((48, 40, 3)) * 255).astype(np.uint8)
    edited, mask = synthesise(image, method, np.random.default_rng(7))
    again, mask_again = synthesise(image, method, np.random.default_rng(7))
    other, _ = synthesise(image, method, np.random.default_rng(8))
    assert mask.shape == image.shape[:2] and 0 < mask.mean() < 0.5 and set(np.unique(mask)) == {0, 1}
    assert (edited == again).all() and (mask == mask_again).all() and not (edited == other).all()
    changed = (edited != image).any(axis=2)
    assert not changed[mask == 0].any() and changed[mask == 1].mean() > 0.5


@pytest.mark.parametrize("kind", ["pool", "test-defects", "synthetic"])
def test_anomalib_opens_the_contaminated_dataset(src: Path, tmp_path: Path, kind: str) -> None:
    from anomalib.data import Folder, MVTecAD

    dst = tmp_path / "syn_dirty"
    result = contaminate_dataset(src, 0.25, dst, kind=kind)
    test = read_category(dst).test
    mvtec = MVTecAD(root=dst.parent, category=dst.name, train_batch_size=64, eval_batch_size=64, num_workers=0)
    mvtec.setup()
    batch = next(iter(mvtec.test_dataloader()))
    assert batch.image.shape[0] == len(test) == result.test_after
    assert int(batch.gt_label.sum()) == sum(s.label for s in test)
    assert batch.gt_mask[batch.gt_label.bool()].flatten(1).any(1).all()
    assert next(iter(mvtec.train_dataloader())).image.shape[0] == result.n_train
    types = sorted({s.defect_type for s in test if s.label})
    folder = Folder(name=dst.name, root=dst, normal_dir="train/good", normal_test_dir="test/good",
                    abnormal_dir=[f"test/{t}" for t in types], mask_dir=[f"ground_truth/{t}" for t in types],
                    train_batch_size=64, eval_batch_size=64, num_workers=0)
    folder.setup()
    assert next(iter(folder.train_dataloader())).image.shape[0] == result.n_train


def listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"ratio": 0.6}, r"--ratio must be a number in \[0, 0.5\].*majority"),
    ({"ratio": -0.1}, r"--ratio must be a number in \[0, 0.5\]"),
    ({"ratio": 0.01}, r"rounds to no anomalous image among 20 .* ratio of 0.05"),
    ({"ratio": 0.5, "kind": "pool", "mode": "add"}, r"needs 20 .* pool .* holds 10; .*--contamination-pool 20"),
    ({"ratio": 0.4, "kind": "test-defects"}, r"needs 8 .* only 5 of the test set's 12 .*half of each defect type.*--overlap"),
    ({"ratio": 0.3, "kind": "pool", "overlap": True}, r"--overlap applies only to --kind test-defects"),
    ({"ratio": 0.3, "kind": "noise"}, r"--kind: unknown contamination kind 'noise'; valid: pool, test-defects, synthetic"),
    ({"ratio": 0.3, "mode": "swap"}, r"--mode: unknown mode 'swap'; valid: replace, add"),
    ({"ratio": 0.3, "seed": -1}, r"--seed must be a non-negative integer"),
])
def test_bad_input_is_refused_before_anything_is_written(src: Path, tmp_path: Path, kwargs: dict, message: str) -> None:
    before, source = listing(tmp_path), listing(src.parent)
    with pytest.raises(BadInput, match=message):
        contaminate_dataset(src, out=tmp_path / "dst", **kwargs)
    assert listing(tmp_path) == before and listing(src.parent) == source


def test_a_source_outside_the_layout_and_a_used_destination_are_refused(src: Path, tmp_path: Path) -> None:
    (tmp_path / "flat").mkdir()
    with pytest.raises(BadInput, match=r"SRC: .*flat is not a dataset in the MVTec AD layout"):
        contaminate_dataset(tmp_path / "flat", 0.2, tmp_path / "dst")
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "keep.txt").write_text("mine")
    with pytest.raises(BadInput, match=r"--out .*used exists and is not an empty folder"):
        contaminate_dataset(src, 0.2, tmp_path / "used")
    assert listing(tmp_path / "used") == ["keep.txt"]
    with pytest.raises(BadInput, match=r"--out .* lies inside SRC"):
        contaminate_dataset(src, 0.2, src / "dirty")
    assert not (src / "dirty").exists()
    (tmp_path / "empty").mkdir()
    assert contaminate_dataset(src, 0.2, tmp_path / "empty").n_anomalous == 4  # an empty folder is filled
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary folder is left"


def test_irp_removes_mostly_contaminated_images_and_does_not_lose_to_vanilla(tmp_path: Path) -> None:
    """R = 0.3 of obvious pool defects: IRP's removals, checked against the hidden ground truth."""
    src = write_synthetic_with_pool(tmp_path, "syn", n_train=24, n_test_good=8, n_test_bad=8, n_pool=10, size=32, seed=0)
    dst = tmp_path / "syn_dirty"
    contaminate_dataset(src, 0.3, dst, kind="pool")
    anomalous = np.array([e["anomalous"] for e in record(dst)["train"]])
    split = read_category(dst)
    train, test = load_array(split.train, 32), load_array(split.test, 32)
    labels = np.array([s.label for s in split.test])

    def make():
        return create("ocsvm", device="cpu", seed=0, image_size=32)

    vanilla, irp = (fit_robust(make, train, WrapperSpec(name)) for name in ("vanilla", "irp"))
    precision = anomalous[irp.removed].mean()
    recall = anomalous[irp.removed].sum() / anomalous.sum()
    assert len(irp.removed) >= 3 and precision >= 0.8 and recall >= 0.5, (precision, recall)  # measured: 1.0, 6 of 7
    assert [i for r in irp.log for i in r.removed] == irp.removed.tolist()
    auroc = [image_auroc(fit.detector.predict(test).scores, labels) for fit in (vanilla, irp)]
    assert auroc[1] >= auroc[0], auroc


def test_the_cli_writes_the_dataset_and_refuses_bad_input_in_one_line(src: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mkdata.cli import app

    done = CliRunner().invoke(app, ["contaminate", str(src), "--ratio", "0.25", "--out", str(tmp_path / "dst"),
                                    "--kind", "test-defects", "--seed", "3"])
    assert done.exit_code == 0, done.output
    said = " ".join(done.output.split())  # rich wraps long lines
    assert "5 of 20 training images anomalous" in said and "test set 18 → 13 images" in said
    assert record(tmp_path / "dst")["seed"] == 3
    refused = CliRunner().invoke(app, ["contaminate", str(src), "--ratio", "0.6", "--out", str(tmp_path / "other")])
    assert refused.exit_code == 2 and "--ratio must be a number in [0, 0.5]" in " ".join(refused.output.split())
    assert not (tmp_path / "other").exists()
