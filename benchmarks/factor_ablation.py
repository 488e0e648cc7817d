"""MIAD's factor ablation (Tables 5 and 6), in shape, on rendered mkdata scenes: per scenario the
controlled set (every factor off), each factor alone and all factors, scored by the bench's
detectors; then a learning curve of the all-factor set at growing training sizes. With three
factors, `--conditions` can add each pair (UV+UB, UV+US, UB+US); for every combination it prints
the AUROC its single factors predict if their costs added independently, so a measured AUROC far
below that says the factors compound.

Every image set is rendered by the public function `mkdata miad` calls (``render_scenario``) and
every score is a `mkdata bench` cell run by ``run_bench`` (one process per cell), so a stopped
study resumes: rendered images and finished cells are reused. The test set of a condition is
the same for every training size (image i depends only on its seed and settings, not on counts).

    python benchmarks/factor_ablation.py --scenario witness_mark --resolution 128 --curve 60 250 1000
    python benchmarks/factor_ablation.py --scenario electrical_insulator --resolution 256 --train 60 --curve

MIAD (10,000 training images, 512², mean image AUROC / Recall@1%FPR over RD, PatchCore,
FastFlow and DRAEM) reports for the insulator: controlled 0.85/0.45, +UV 0.75/0.20, +UB 0.74/0.27,
+US 0.81/0.12, all three 0.65/0.07; for the witness mark 0.99/0.86 controlled, 0.58/0.02 all.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from mkdata.benchmark.auroc_change import AurocChange, auroc_change
from mkdata.benchmark.config import DEFAULT_DETECTORS, BenchConfig, DatasetSpec, DetectorSpec, Limits
from mkdata.benchmark.datasets import read_category
from mkdata.benchmark.report import load_results
from mkdata.benchmark.runner import expand_cells, run_bench
from mkdata.files import list_images
from mkdata.generator.config import RenderConfig
from mkdata.generator.runner import Backend, render_scenario
from mkdata.scenes import get_scenario

# MIAD's mean image AUROC / Recall@1%FPR per condition (Tables 5 and 6), where reported.
PAPER: dict[str, dict[str, tuple[float, float]]] = {
    "electrical_insulator": {"controlled": (0.85, 0.45), "UV": (0.75, 0.20), "UB": (0.74, 0.27), "US": (0.81, 0.12),
                             "all": (0.65, 0.07)},
    "witness_mark": {"controlled": (0.99, 0.86), "all": (0.58, 0.02)},
}


def conditions(scenario: str) -> dict[str, tuple[str, ...]]:
    """Condition name → factors: controlled, each of the scenario's factors alone, each pair of
    them ("UV+UB"; only where there are three), all of them."""
    factors = get_scenario(scenario).spec.factors
    named = {"controlled": (), **{factor: (factor,) for factor in factors}}
    if len(factors) > 2:
        named |= {"+".join(pair): pair for pair in itertools.combinations(factors, 2)}
    if len(factors) > 1:
        named["all"] = tuple(factors)
    else:
        named["all"] = named.pop(factors[0])
    return named


def is_pair(condition: str) -> bool:
    """Pairs are not MIAD rows: rendered only when --conditions names them."""
    return "+" in condition


def condition_of(dataset: str, scenario: str) -> str:
    """The condition of a bench dataset named "<scenario>-<condition>-n<train images>"."""
    return dataset.removeprefix(f"{scenario}-").rsplit("-n", 1)[0]


def render_set(scenario: str, condition: str, factors: tuple[str, ...], n_train: int, args: argparse.Namespace) -> Path:
    """Render (or resume) one condition's images; returns its dataset folder."""
    config = RenderConfig.from_preset(
        scenario, args.out / "data" / condition, n_train=n_train, n_test_good=args.test_good, n_test_bad=args.test_bad,
        resolution=args.resolution, samples=args.samples, factors=factors, seed=args.seed)
    start = time.perf_counter()
    summary = render_scenario(config, Backend(workers=args.workers))
    if summary.failures:
        raise SystemExit(f"{scenario}/{condition}: {len(summary.failures)} image(s) failed to render; rerun to retry")
    print(f"  rendered {scenario:22s} {condition:10s} train {n_train:5d}  ({time.perf_counter() - start:6.0f} s)", flush=True)
    return config.dataset_dir


def training_view(dataset: Path, n_train: int, views: Path, name: str) -> Path:
    """A dataset folder of links: the first ``n_train`` training images of ``dataset``, all of its
    test images and masks (the bench fingerprints it by its file names and sizes)."""
    view = views / name
    (view / "train" / "good").mkdir(parents=True, exist_ok=True)
    for folder in ("test", "ground_truth"):
        if not (view / folder).exists():
            (view / folder).symlink_to((dataset / folder).resolve(), target_is_directory=True)
    train = list_images(dataset / "train" / "good")[:n_train]
    if len(train) < n_train:
        raise SystemExit(f"{dataset} has {len(train)} training images, {n_train} asked")
    wanted = {image.name for image in train}
    for link in (view / "train" / "good").iterdir():
        if link.name not in wanted:
            link.unlink()
    for image in train:
        link = view / "train" / "good" / image.name
        if not link.exists():
            link.symlink_to(image.resolve())
    return view


def bench(views: list[Path], detectors: tuple[DetectorSpec, ...], args: argparse.Namespace) -> pd.DataFrame:
    """Run (or reuse) the bench cells of ``views`` × ``detectors``; returns their ok results."""
    config = BenchConfig(output=args.out / "bench", detectors=detectors, image_size=args.image_size, device=args.device,
                         limits=Limits(time_s=args.cell_time_limit))
    cells = expand_cells(config, [(DatasetSpec(path=view), view) for view in views])
    counts = run_bench(config, cells, jobs=1)
    print(f"  bench: {counts.cells} cells, {counts.skipped} reused, {counts.succeeded} run, {counts.failed} failed", flush=True)
    results = load_results(config.output)
    keys = {cell.key() for cell in cells}
    results = results[results.key.isin(keys)]
    for row in results[results.status != "ok"].itertuples():
        print(f"  FAILED {row.dataset} {row.detector}: {str(row.error)[:200]}")
    return results[results.status == "ok"]


def ablation_table(results: pd.DataFrame, scenario: str, names: list[str], n_train: int) -> pd.DataFrame:
    """MIAD-shaped: per condition each detector's AUROC / R@1%FPR / AUPRO, their means, the paper's."""
    rows = []
    for condition in names:
        cells = results[results.dataset == f"{scenario}-{condition}-n{n_train}"]
        row: dict[str, object] = {"condition": condition}
        for cell in cells.sort_values("detector_name").itertuples():
            row[cell.detector_name] = f"{cell.image_auroc:.2f} / {cell.recall_at_1fpr:.2f} / {cell.aupro:.2f}"
        row["mean AUROC"] = round(cells.image_auroc.mean(), 3)
        row["mean R@1%FPR"] = round(cells.recall_at_1fpr.mean(), 3)
        paper = PAPER.get(scenario, {}).get(condition)
        row["MIAD AUROC / R@1%"] = f"{paper[0]:.2f} / {paper[1]:.2f}" if paper else "—"
        rows.append(row)
    return pd.DataFrame(rows).set_index("condition")


def cell_scores(out: Path, cells: pd.DataFrame) -> list[tuple[np.ndarray, np.ndarray]]:
    """(test scores, labels) of each bench cell in ``cells``, as its run saved them."""
    saved = [np.load(out / "bench" / "cells" / key / "curves.npz") for key in cells.key]
    return [(arrays["scores"], arrays["labels"]) for arrays in saved]


def dataset_change(results: pd.DataFrame, out: Path, before: str, after: str) -> AurocChange:
    """The mean image AUROC of dataset ``after``'s cells less ``before``'s, with a 95 % bootstrap
    interval; two training sizes of one condition share their test images, so those are paired."""
    condition = lambda dataset: dataset.rsplit("-n", 1)[0]
    return auroc_change(cell_scores(out, results[results.dataset == before]),
                        cell_scores(out, results[results.dataset == after]),
                        same_images=condition(before) == condition(after))


def curve_table(results: pd.DataFrame, out: Path, scenario: str, sizes: list[int]) -> pd.DataFrame:
    """All-factor image AUROC per detector at each training size; below them, each detector's (and
    the mean's) change from the smallest to the largest size with its paired 95 % bootstrap interval."""
    rows = []
    for n in sizes:
        cells = results[results.dataset == f"{scenario}-all-n{n}"]
        row: dict[str, object] = {"train images": n}
        row.update({cell.detector_name: round(cell.image_auroc, 3) for cell in cells.sort_values("detector_name").itertuples()})
        row["mean AUROC"] = round(cells.image_auroc.mean(), 3)
        rows.append(row)
    if len(sizes) > 1:
        first, last = (f"{scenario}-all-n{n}" for n in (sizes[0], sizes[-1]))
        row = {"train images": f"Δ {sizes[0]} → {sizes[-1]}"}
        detectors = (set(results[results.dataset == dataset].detector_name) for dataset in (first, last))
        for name in sorted(set.intersection(*detectors)):
            row[name] = str(dataset_change(results[results.detector_name == name], out, first, last))
        row["mean AUROC"] = str(dataset_change(results, out, first, last))
        rows.append(row)
    return pd.DataFrame(rows).set_index("train images")


def centred(scores: np.ndarray, groups: pd.Series) -> np.ndarray:
    """``scores`` less their group's mean."""
    return scores - pd.Series(scores).groupby(groups.to_numpy()).transform("mean").to_numpy()


def explained(scores: np.ndarray, residual: np.ndarray) -> float:
    """The share of the scores' variance that ``residual`` (the scores less a fit) no longer has:
    η² when the fit is the groups' means, R² for a regression."""
    return float(1 - residual.var() / scores.var())


def score_drivers(results: pd.DataFrame, out: Path, scenario: str) -> pd.DataFrame:
    """What the test scores of each cell follow: η² of the surface variant (US) and of the background
    layout (UB), R² of a linear fit on the camera's radius, elevation and azimuth (UV), and the image
    AUROC once every score is centred on its surface variant's mean (what US alone costs)."""
    rows = []
    cells = results.drop_duplicates("key").sort_values(["dataset", "detector_name"])
    # Two settings of one detector on one set (a curve's and the table's) are told apart by their parameters.
    ambiguous = cells.duplicated(["dataset", "detector_name"], keep=False)
    for cell, full_label, (scores, _) in zip(cells.itertuples(), ambiguous, cell_scores(out, cells)):
        view = out / "views" / cell.dataset
        condition = condition_of(cell.dataset, scenario)
        manifest = pd.read_parquet(out / "data" / condition / scenario / "manifest.parquet").set_index("path")
        test = manifest.loc[[str(s.path.relative_to(view)) for s in read_category(view).test]]
        scores = scores.astype(float)
        row: dict[str, object] = {"cell": cell.dataset.removeprefix(f"{scenario}-"),
                                  "detector": cell.detector if full_label else cell.detector_name,
                                  "AUROC": round(cell.image_auroc, 3)}
        if test.surface_id.nunique() > 1:
            by_surface = centred(scores, test.surface_id)
            row["η² surface"] = round(explained(scores, by_surface), 2)
            row["AUROC, surface-centred"] = round(roc_auc_score(test.label, by_surface), 3)
        if test.background_id.nunique() > 1:
            row["η² background"] = round(explained(scores, centred(scores, test.background_id)), 2)
        if test.camera_elevation.nunique() > 1:
            azimuth = np.radians(test.camera_azimuth.to_numpy())
            design = np.column_stack([np.ones(len(test)), test.camera_radius, test.camera_elevation, np.cos(azimuth), np.sin(azimuth)])
            residual = scores - design @ np.linalg.lstsq(design, scores, rcond=None)[0]
            row["R² viewpoint"] = round(explained(scores, residual), 2)
        rows.append(row)
    return pd.DataFrame(rows)


def independent_costs(aurocs: pd.DataFrame, named: dict[str, tuple[str, ...]]) -> pd.DataFrame:
    """Each multi-factor condition against what its single factors predict if their costs added up:
    "measured / predicted" per column of ``aurocs`` (conditions × detectors and their mean).

    Model: a condition's AUROC is Φ(z) and 1/z² grows with the variance of the normal images'
    scores that the defect must beat; independent factors add their variance, so 1/z² of a
    combination is the controlled 1/z² plus each factor's own increase over it. A measured AUROC
    below the prediction means the factors compound (interact); near it, they merely add.
    """
    spread = 1 / aurocs.clip(0.5 + 1e-6, 1 - 1e-6).apply(norm.ppf) ** 2
    rows = {}
    for condition, factors in named.items():
        if len(factors) < 2 or not {"controlled", condition, *factors} <= set(aurocs.index):
            continue
        base = spread.loc["controlled"]
        predicted = norm.cdf(1 / np.sqrt(base + sum(spread.loc[f] - base for f in factors)))
        rows[condition] = [f"{measured:.3f} / {expected:.3f}" for measured, expected in zip(aurocs.loc[condition], predicted)]
    return pd.DataFrame.from_dict(rows, orient="index", columns=aurocs.columns).rename_axis("measured / if independent")


def verdict(change: AurocChange, wanted: str) -> str:
    """"yes" where the interval says the change goes the ``wanted`` way, "NO" where it says the
    other way, "not clearly" where it includes 0; then the figures."""
    answer = {wanted: "yes", "no clear change": "not clearly"}.get(change.verdict, "NO")
    return f"{answer} ({change.before:.3f} → {change.after:.3f}, Δ {change})"


def verdicts(results: pd.DataFrame, curve_results: pd.DataFrame, out: Path, scenario: str, names: list[str],
             n_train: int, sizes: list[int]) -> list[str]:
    """The issue's targets, each answered by a 95 % bootstrap interval of the change it names."""
    dataset = lambda condition, n=n_train: f"{scenario}-{condition}-n{n}"
    means = results.groupby("dataset").image_auroc.mean()
    lines = [f"{condition} lowers the mean AUROC vs controlled: "
             f"{verdict(dataset_change(results, out, dataset('controlled'), dataset(condition)), 'lower')}"
             for condition in names if condition != "controlled"]
    others = [name for name in names if name not in ("controlled", "all")]
    if "all" in names and others:
        hardest = min(others, key=lambda name: means[dataset(name)])
        lines.append(f"all factors lower it most (below the hardest other, {hardest}): "
                     f"{verdict(dataset_change(results, out, dataset(hardest), dataset('all')), 'lower')}")
    controlled = means[dataset("controlled")]
    lines.append(f"controlled set not trivially 1.00: {'yes' if controlled < 0.999 else 'NO'} ({controlled:.3f})")
    if len(sizes) > 1:
        change = dataset_change(curve_results, out, dataset("all", sizes[0]), dataset("all", sizes[-1]))
        lines.append(f"all-factor AUROC rises with the training set, {sizes[0]} → {sizes[-1]} images: {verdict(change, 'higher')}")
    return lines


def parse_detectors(entries: list[list[str]] | None) -> tuple[DetectorSpec, ...]:
    return tuple(DetectorSpec(name, json.loads(params)) for name, params in entries) if entries else DEFAULT_DETECTORS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", nargs="+", default=["witness_mark"])
    parser.add_argument("--out", type=Path, default=Path("factor_ablation"), help="renders, bench cells and tables (resumable)")
    parser.add_argument("--conditions", nargs="+",
                        help="a subset of controlled, the factors, their pairs (UV+UB, ...) and all (default: all but the pairs)")
    parser.add_argument("--train", type=int, default=60, help="training images of every condition's main row")
    parser.add_argument("--test-good", type=int, default=100, help="100 + 100 test images: an AUROC standard error of ~0.04 (20 + 30: ~0.08)")
    parser.add_argument("--test-bad", type=int, default=100)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="render worker processes")
    parser.add_argument("--image-size", type=int, default=128, help="what the detectors see")
    parser.add_argument("--device", default="auto", help="the bench's torch device")
    parser.add_argument("--cell-time-limit", type=float, default=3600.0, help="seconds per bench cell")
    parser.add_argument("--curve", type=int, nargs="*", default=[60, 250, 1000],
                        help="all-factor training sizes of the learning curve (none: no curve)")
    parser.add_argument("--detector", nargs=2, action="append", metavar=("NAME", "PARAMS_JSON"),
                        help="repeatable; default: the bench's defaults (ae_l2, padim, patchcore on EfficientNet-Lite0)")
    parser.add_argument("--curve-detector", nargs=2, action="append", metavar=("NAME", "PARAMS_JSON"),
                        help="detectors of the learning curve (default: those of the table)")
    args = parser.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")
    detectors, curve_detectors = parse_detectors(args.detector), parse_detectors(args.curve_detector or args.detector)
    sizes = sorted(set(args.curve))
    report = [f"# Factor ablation: {args.resolution}² renders, {args.samples} spp; test {args.test_good} good + "
              f"{args.test_bad} defective; detectors at {args.image_size}²\n"]
    for scenario in args.scenario:
        named = conditions(scenario)
        if args.conditions:
            unknown = set(args.conditions) - set(named)
            if unknown:
                raise SystemExit(f"{scenario} has no condition {sorted(unknown)}; its conditions are {list(named)}")
            missing = {"controlled", *(["all"] if sizes else [])} - set(args.conditions)
            if missing:
                raise SystemExit(f"--conditions needs {sorted(missing)}: the table compares with controlled, the curve is of all")
            named = {name: factors for name, factors in named.items() if name in args.conditions}
        else:
            named = {name: factors for name, factors in named.items() if not is_pair(name)}
        views = []
        for condition, factors in named.items():
            n_render = max([args.train, *sizes]) if condition == "all" else args.train
            dataset = render_set(scenario, condition, factors, n_render, args)
            views.append(training_view(dataset, args.train, args.out / "views", f"{scenario}-{condition}-n{args.train}"))
        results = bench(views, detectors, args)
        if results.empty:
            raise SystemExit(f"{scenario}: no bench cell succeeded (failures above); rerun to retry them")
        if sizes:
            dataset = args.out / "data" / "all" / scenario
            curve_views = [training_view(dataset, n, args.out / "views", f"{scenario}-all-n{n}") for n in sizes]
            curve_results = bench(curve_views, curve_detectors, args)
        table = ablation_table(results, scenario, list(named), args.train)
        curve = curve_table(curve_results, args.out, scenario, sizes) if sizes else pd.DataFrame()
        report += [f"## {scenario} (factors {', '.join(get_scenario(scenario).spec.factors)}; {args.train} training images)\n",
                   "Image AUROC / Recall@1%FPR / AUPRO per detector; MIAD's means over its four detectors at 10,000 "
                   "training images, 512².\n", table.to_markdown(), ""]
        if sizes:
            report += ["All factors, image AUROC at growing training sets:\n", curve.to_markdown(), ""]
        drivers = score_drivers(pd.concat([results, curve_results]) if sizes else results, args.out, scenario)
        report += ["What the test scores follow (η²: share of their variance between surface variants or background "
                   "layouts; R²: of a linear fit on the viewpoint):\n", drivers.to_markdown(index=False), ""]
        report += ["Each target, answered by a 95 % bootstrap interval of the mean AUROC's change (test images resampled, "
                   "good and defective apart; paired where two cells share their test set):\n"]
        report += [f"- {line}" for line in verdicts(results, curve_results if sizes else results, args.out, scenario,
                                                    list(named), args.train, sizes)] + [""]
        aurocs = results.pivot_table(index="dataset", columns="detector_name", values="image_auroc")
        aurocs = aurocs.rename(index=lambda dataset: condition_of(dataset, scenario))
        aurocs = aurocs.loc[[name for name in named if name in aurocs.index]].assign(mean=lambda frame: frame.mean(axis=1))
        costs = independent_costs(aurocs, named)
        if len(costs):
            report += ["Image AUROC of each combination, measured, and as its single factors predict if their costs "
                       "added independently (lower measured: the factors compound):\n", costs.to_markdown(), ""]
    text = "\n".join(report)
    print("\n" + text)
    (args.out / "factor_ablation.md").write_text(text)


if __name__ == "__main__":
    main()
