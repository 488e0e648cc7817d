"""`mkdata bench` end to end on a tiny synthetic dataset with real (tiny) detectors."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from mkdata.benchmark.config import parse_config
from mkdata.benchmark.contamination import anomalies_needed
from mkdata.benchmark.detectors.registry import create
from mkdata.benchmark.protocol import DEFAULT_PROTOCOL, EvaluationProtocol
from mkdata.benchmark.report import ID_COLUMNS, METRIC_COLUMNS, RUN_COLUMNS
from mkdata.benchmark.robust import WrapperSpec, fit_robust, to_removal
from mkdata.benchmark.runner import cell_environment
from mkdata.benchmark.synthetic import make_synthetic, write_mvtec
from mkdata.benchmark.synthetic_pool import write_synthetic_with_pool
from mkdata.cli import app

TINY_AE = {"epochs": 2, "batch_size": 8}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bench_data")
    # seed 0: 4 blobs and 4 scratches, so test-defects can move 4 (half of each type)
    return write_mvtec(make_synthetic(n_train=16, n_test_good=8, n_test_bad=8, size=32, seed=0), root, "syn")


def write_config(path: Path, dataset: Path, output: Path, **overrides: object) -> Path:
    config = {
        "output": str(output),
        "datasets": [str(dataset)],
        "detectors": [{"name": "ae_l2", "params": TINY_AE}, {"name": "ae_ssim", "params": TINY_AE}],
        "contamination": {"ratios": [0.0, 0.2]},
        "image_size": 32,
        "device": "cpu",
        "limits": {"time_s": 600},
        **overrides,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def bench(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["bench", *args, "--quiet"])
    return result.exit_code, result.output


class ImageSources(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.sources.append(dict(attrs)["src"] or "")


@pytest.fixture(scope="module")
def finished_run(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("bench_run")
    code, output = bench("--config", str(write_config(base / "bench.yaml", dataset, base / "out")))
    assert code == 0, output
    return base / "out"


def test_every_output_exists_with_documented_columns_and_valid_metrics(finished_run: Path) -> None:
    results = pd.read_parquet(finished_run / "results.parquet")
    assert len(results) == 4 and (results.status == "ok").all()
    assert set(ID_COLUMNS + METRIC_COLUMNS + RUN_COLUMNS) <= set(results.columns)
    from_csv = pd.read_csv(finished_run / "results.csv")
    assert list(from_csv.columns) == list(results.columns) and list(from_csv.key) == list(results.key)
    np.testing.assert_allclose(from_csv[METRIC_COLUMNS].to_numpy(float), results[METRIC_COLUMNS].to_numpy(float))
    metrics = results[METRIC_COLUMNS + [c for c in results if c.startswith("auroc[")]].to_numpy(float)
    assert np.all((metrics >= 0) & (metrics <= 1))
    assert set(results.ratio) == {0.0, 0.2}
    dirty = results[results.ratio == 0.2]
    assert (dirty.n_contaminated == anomalies_needed(16, 0.2, "add")).all() and (dirty.contamination == "test-defects").all()
    assert (dirty.test_removed == dirty.n_contaminated).all() and (dirty.n_test == 16 - dirty.test_removed).all()
    assert (results[results.ratio == 0.0].n_contaminated == 0).all()
    summary = (finished_run / "summary.md").read_text()
    assert "AUROC / Recall@1%FPR" in summary and "AUPRO" in summary and "noise" in summary


def test_every_result_records_the_protocol_it_was_scored_with(finished_run: Path) -> None:
    records = [json.loads(p.read_text()) for p in finished_run.glob("cells/*/result.json")]
    assert len(records) == 4
    assert all(EvaluationProtocol(**record["protocol"]) == DEFAULT_PROTOCOL for record in records)


def test_html_report_parses_and_its_images_exist(finished_run: Path) -> None:
    parser = ImageSources()
    parser.feed((finished_run / "report.html").read_text())
    assert parser.sources, "the report shows plots"
    for source in parser.sources:
        assert not source.startswith(("http:", "https:", "/")), "the report must open offline, from its folder"
        assert (finished_run / source).is_file(), source
    assert any("gallery_1" in s for s in parser.sources) and any("curves_" in s for s in parser.sources)


def test_rerun_skips_finished_cells(finished_run: Path, dataset: Path, tmp_path: Path) -> None:
    stamps = {p: p.stat().st_mtime_ns for p in finished_run.glob("cells/*/result.json")}
    code, output = bench("--config", str(write_config(tmp_path / "b.yaml", dataset, finished_run)))
    assert code == 0, output
    assert {p: p.stat().st_mtime_ns for p in finished_run.glob("cells/*/result.json")} == stamps


def test_a_grown_test_set_behind_a_linked_folder_is_scored_again(tmp_path: Path) -> None:
    """A dataset whose test/ and ground_truth/ are links to another dataset's (as the factor
    ablation's training-size views are): when the linked test set grows, a rerun scores the new
    set instead of reusing the cell of the old one."""
    source = write_mvtec(make_synthetic(n_train=8, n_test_good=4, n_test_bad=4, size=32, seed=1), tmp_path / "src", "syn")
    view = tmp_path / "view"
    (view / "train").mkdir(parents=True)
    (view / "train" / "good").symlink_to(source / "train" / "good", target_is_directory=True)
    for folder in ("test", "ground_truth"):
        (view / folder).symlink_to(source / folder, target_is_directory=True)
    config = write_config(tmp_path / "b.yaml", view, tmp_path / "out", detectors=[{"name": "ae_l2", "params": TINY_AE}],
                          contamination={"ratios": [0.0]})
    assert bench("--config", str(config))[0] == 0
    first = sorted((tmp_path / "out" / "cells").glob("*/result.json"))
    good = sorted((source / "test" / "good").iterdir())
    (source / "test" / "good" / f"9{good[0].name}").write_bytes(good[0].read_bytes())
    code, output = bench("--config", str(config))
    assert code == 0, output
    results = [json.loads(p.read_text()) for p in (tmp_path / "out" / "cells").glob("*/result.json")]
    assert len(results) == len(first) + 1, "the cell of the old test set was reused"
    assert sorted(r["n_test"] for r in results) == [8, 9]


def test_a_failing_detector_is_recorded_and_the_others_finish(dataset: Path, tmp_path: Path) -> None:
    detectors = [{"name": "ae_l2", "params": TINY_AE}, {"name": "ae_l2", "params": {"epochs": 0}}]
    config = write_config(tmp_path / "b.yaml", dataset, tmp_path / "out", detectors=detectors, contamination={"ratios": [0.0]})
    code, output = bench("--config", str(config))
    assert code == 1
    assert "failed syn / ae_l2(epochs=0)" in " ".join(output.split())  # the console names the cell
    results = pd.read_parquet(tmp_path / "out" / "results.parquet").set_index("detector")
    assert results.loc["ae_l2(batch_size=8, epochs=2)", "status"] == "ok"
    failed = results.loc["ae_l2(epochs=0)"]
    assert failed.status == "failed" and "epochs" in failed.error
    assert "Failed cells: 1" in (tmp_path / "out" / "summary.md").read_text()


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"detectrs": []}, "'detectrs'"),
        ({"detectors": [{"name": "ae_l2", "params": {"epoch": 1}}]}, "'detectors[0].params.epoch'"),
        ({"detectors": ["no_such_model"]}, "'detectors[0].name'"),
        ({"contamination": {"ratios": [0.0, 1.5]}}, "'contamination.ratios[1]'"),
        ({"contamination": {"ratios": [0.6]}}, "'contamination.ratios[0]'"),
        ({"contamination": {"kind": "noise"}}, "'contamination.kind'"),
        ({"wrappers": [{"name": "irp", "T": 0.5}]}, "'wrappers[0]'"),
        ({"limits": {"time_s": -1}}, "'limits.time_s'"),
    ],
)
def test_malformed_config_names_the_bad_key(overrides: dict, key: str, dataset: Path, tmp_path: Path) -> None:
    code, output = bench("--config", str(write_config(tmp_path / "b.yaml", dataset, tmp_path / "out", **overrides)))
    assert code == 2
    assert key in " ".join(output.split())
    assert not (tmp_path / "out").exists()


def test_compare_of_a_result_set_with_itself_is_zero(finished_run: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "compare", str(finished_run), str(finished_run)])
    assert result.exit_code == 0, result.output
    assert "Δimage_auroc" in result.output and "+0.000" in result.output


def test_irp_round_removes_scores_above_t_times_the_median() -> None:
    scores = np.array([1.0, 1.1, 0.9, 1.0, 5.0, 2.5])
    rule = to_removal(scores, 2.0, single=False)
    assert sorted(rule.positions) == [4, 5] and rule.above == 2
    assert (rule.median, rule.threshold) == pytest.approx((1.05, 2.1))
    assert list(to_removal(scores, 2.0, single=True).positions) == [4]
    assert len(to_removal(scores, 6.0, single=False).positions) == 0
    negative = to_removal(scores - 2.0, 2.0, single=False)  # shifted so the lowest is 0: median 0.15, threshold 0.3
    assert sorted(negative.positions) == [4, 5] and negative.threshold == pytest.approx(0.3)


def test_irp_reuses_the_fit_of_its_last_scoring_round() -> None:
    """An in-sample scorer (ae_l2) that IRP keeps whole is trained once, not once more at the end."""
    images = make_synthetic(n_train=12, n_test_good=0, n_test_bad=0, size=32).train
    made = []

    def make():
        made.append(create("ae_l2", image_size=32, epochs=1, batch_size=4, device="cpu"))
        return made[-1]

    fit = fit_robust(make, images, WrapperSpec("irp", T=1e6))
    assert fit.detector is made[0] and len(made) == 1
    assert fit.rounds == 1 and len(fit.removed) == 0 and list(fit.kept) == list(range(12))


def test_ray_backend_runs_the_same_cell_code(dataset: Path, tmp_path: Path, finished_run: Path) -> None:
    pytest.importorskip("ray")
    config = write_config(tmp_path / "b.yaml", dataset, tmp_path / "out", detectors=[{"name": "ae_l2", "params": TINY_AE}],
                          contamination={"ratios": [0.0]})
    code, output = bench("--config", str(config), "--backend", "ray")
    assert code == 0, output
    ray_row = pd.read_parquet(tmp_path / "out" / "results.parquet").iloc[0]
    local = pd.read_parquet(finished_run / "results.parquet").set_index(["detector", "ratio"]).loc[(ray_row.detector, 0.0)]
    assert ray_row.status == "ok" and ray_row.key == local.key
    assert ray_row.image_auroc == pytest.approx(local.image_auroc)  # same seed, same cell, same numbers


def test_only_memory_bank_cells_get_the_small_mmap_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    """PatchCore's coreset once peaked at 14-20 GiB without it; a trained model's cell runs 1.65x slower with it."""
    pytest.importorskip("anomalib")
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    assert cell_environment("patchcore")["MALLOC_MMAP_THRESHOLD_"] == "4194304"
    assert cell_environment("padim")["MALLOC_MMAP_THRESHOLD_"] == "4194304"
    assert "MALLOC_MMAP_THRESHOLD_" not in cell_environment("stfpm")
    assert "MALLOC_MMAP_THRESHOLD_" not in cell_environment("ae_l2")
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "33554432")  # the user's setting wins
    assert cell_environment("patchcore")["MALLOC_MMAP_THRESHOLD_"] == "33554432"


def test_the_former_kind_name_is_an_alias() -> None:
    assert parse_config({"contamination": {"kind": "defective"}}).contamination_kind == "test-defects"
    assert parse_config({}).contamination_kind == "test-defects"


def test_robust_cells_log_each_removal_round_with_the_ground_truth(tmp_path: Path) -> None:
    """IRP on a pool-contaminated set: per round the threshold T·median, each removed file, its
    score (above the threshold) and whether it was contaminated; the table's good / bad columns."""
    data = write_synthetic_with_pool(tmp_path / "data", "pooled", n_train=16, n_test_good=6, n_test_bad=6, n_pool=8, size=32)
    config = write_config(tmp_path / "b.yaml", data, tmp_path / "out", detectors=["ocsvm"],
                          wrappers=[{"name": "irp", "T": 2.0}], contamination={"kind": "pool", "ratios": [0.3]})
    code, output = bench("--config", str(config))
    assert code == 0, output
    (result,) = [json.loads(p.read_text()) for p in (tmp_path / "out").glob("cells/*/result.json")]
    removed = [entry for round_ in result["removal_log"] for entry in round_["removed"]]
    assert len(result["removal_log"]) == result["rounds"] and removed
    for round_ in result["removal_log"]:
        assert round_["threshold"] == pytest.approx(round_["T"] * round_["median"])
        assert all(entry["score"] > round_["threshold"] for entry in round_["removed"])
    for entry in removed:
        assert (data / entry["file"]).is_file() and entry["contaminated"] == entry["file"].startswith(f"../{data.name}_pool/")
    bad = sum(entry["contaminated"] for entry in removed)
    assert (result["good_removed"], result["bad_removed"], result["removed"]) == (len(removed) - bad, bad, len(removed))
    assert result["test_removed"] == 0 and result["n_test"] == 12
    row = pd.read_parquet(tmp_path / "out" / "results.parquet").iloc[0]
    assert (row.good_removed, row.bad_removed) == (len(removed) - bad, bad)
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "removed by robust training (good / bad)" in summary and f"{len(removed) - bad:g} / {bad:g}" in summary
