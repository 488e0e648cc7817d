"""Running one benchmark cell, in its own process: load, contaminate, fit (robustly), predict,
score, and write ``result.json`` (with the robust wrapper's removal log) plus the arrays the
report plots (``curves.npz``, gallery PNGs).

Entry point: ``python -m mkdata.benchmark.cell CELL_DIR`` (CELL_DIR holds ``cell.pkl``).
"""

from __future__ import annotations

import io
import json
import pickle
import resource
import sys
import time
import traceback
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from mkdata.benchmark.config import Cell
from mkdata.benchmark.contamination import contaminate, source_name
from mkdata.benchmark.datasets import DatasetSplit, SampleImages, load_array, load_masks, read_category
from mkdata.benchmark.protocol import DEFAULT_PROTOCOL, EvaluationProtocol
from mkdata.benchmark.robust import RemovalRound, fit_robust
from mkdata.files import write_bytes_atomic, write_png_atomic, write_text_atomic

GALLERY_PER_CLASS = 3  # normal and defective test images kept for the report's overlays


def package_versions() -> dict[str, str]:
    out = {}
    for package in ("mkdata", "anomalib", "torch"):
        try:
            out[f"{package}_version"] = version(package)
        except PackageNotFoundError:
            out[f"{package}_version"] = ""
    return out


def metric_row(scores: Any, labels: Any, types: Sequence[str], maps: Any | None, masks: Any, train_scores: Any,
               protocol: EvaluationProtocol = DEFAULT_PROTOCOL) -> dict[str, Any]:
    """Every metric of the results table for one cell (NaN where undefined, e.g. no maps).

    Each input is validated once (ValueError naming the problem), then every metric is computed
    from the validated arrays, with the constants of ``protocol``.
    """
    from mkdata.benchmark import metrics
    from mkdata.benchmark.aupro import _aupro, _pixel_auroc
    from mkdata.benchmark.thresholds import _classify, _threshold_max_accuracy, _threshold_mean_std

    score_array, label_array = metrics.check_scores_labels(scores, labels)
    type_array = metrics.check_defect_types(types, score_array.size)
    train_array = metrics.check_finite_scores(train_scores, "train_scores")
    row: dict[str, Any] = {
        "image_auroc": metrics._image_auroc(score_array, label_array),
        "recall_at_1fpr": metrics._recall_at_fpr(score_array, label_array, protocol.recall_fpr),
        "image_aupr": metrics._image_aupr(score_array, label_array),
        "f1_max": metrics._f1_max(score_array, label_array),
        "aupro": np.nan,
        "pixel_auroc": np.nan,
    }
    if maps is not None:
        map_array, mask_array = metrics.check_maps_masks(maps, masks)
        if len(map_array) != score_array.size:
            raise ValueError(f"maps hold {len(map_array)} images for {score_array.size} scores")
        if mask_array[label_array].any():
            row["aupro"] = _aupro(map_array, mask_array, protocol.aupro_fpr_limit)
            row["pixel_auroc"] = _pixel_auroc(map_array, mask_array)
    for defect_type, auroc in metrics._per_defect_auroc(score_array, label_array, type_array).items():
        row[f"auroc[{defect_type}]"] = auroc
    for rule, threshold in (("unsupervised", _threshold_mean_std(train_array, protocol.threshold_k)),
                            ("supervised", _threshold_max_accuracy(score_array, label_array))):
        result = _classify(score_array, label_array, threshold)
        row[f"accuracy_{rule}"], row[f"f1_{rule}"] = result.accuracy, result.f1
    return row


def save_report_arrays(cell_dir: Path, scores: np.ndarray, labels: np.ndarray, maps: np.ndarray | None,
                       masks: np.ndarray, test_images: np.ndarray, protocol: EvaluationProtocol) -> None:
    """Scores/labels (ROC), the PRO curve, and a few anomaly-map overlays for the gallery."""
    from mkdata.benchmark import metrics
    from mkdata.benchmark.report_plots import overlay

    arrays: dict[str, np.ndarray] = {"scores": scores, "labels": labels}
    if maps is not None and masks[labels == 1].any():
        fpr, pro = metrics.pro_curve(maps, masks, fpr_limit=protocol.aupro_fpr_limit)
        arrays.update(pro_fpr=fpr, pro=pro)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    write_bytes_atomic(cell_dir / "curves.npz", buffer.getvalue())
    if maps is None:
        return
    scale = (float(np.percentile(maps, 1)), float(np.percentile(maps, 99.9)))
    for label in (0, 1):
        for rank, i in enumerate(np.flatnonzero(labels == label)[:GALLERY_PER_CLASS]):
            write_png_atomic(cell_dir / f"gallery_{label}_{rank}.png", overlay(test_images[i], maps[i], masks[i], scale))


def run_cell(cell: Cell, cell_dir: Path, protocol: EvaluationProtocol = DEFAULT_PROTOCOL,
             contamination_mode: str = "add") -> dict[str, Any]:
    """Do the cell's work, scored by ``protocol``; returns the result record (also written to result.json).

    ``contamination_mode``: the injector's mode (``contamination.MODES``); the bench adds the
    anomalies to every normal training image, ``replace`` keeps the training-set size.
    """
    from mkdata.benchmark.detectors.base import resolve_device
    from mkdata.benchmark.detectors.registry import create, detector_class

    contamination = contaminate(read_category(cell.dataset_path), cell.ratio, cell.contamination_kind, cell.seed,
                                contamination_mode)
    split = contamination.split
    size = cell.image_size
    train: np.ndarray | SampleImages = SampleImages(tuple(split.train), size)
    if not detector_class(cell.detector.name).streams_fit:
        train = train.load()  # decoded once; a streaming detector decodes it batch by batch, on every pass
    test = load_array(split.test, size)
    masks = load_masks(split.test, size)
    labels = np.array([s.label for s in split.test])
    types = [s.defect_type for s in split.test]
    device = resolve_device(cell.device)

    def make() -> Any:
        return create(cell.detector.name, **{"device": device, "seed": cell.seed, "image_size": size, **cell.detector.params})

    start = time.perf_counter()
    robust = fit_robust(make, train, cell.wrapper, protocol)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    prediction = robust.detector.predict(test)
    predict_ms = 1000 * (time.perf_counter() - start) / max(1, len(test))
    start = time.perf_counter()
    train_scores = robust.detector.train_scores(train[robust.kept], folds=protocol.threshold_folds)
    train_scores_s = time.perf_counter() - start
    contaminated = np.array(split.contaminated)
    record = {
        **cell.describe(),
        "key": cell.key(),
        "status": "ok",
        "error": "",
        **metric_row(prediction.scores, labels, types, prediction.maps, masks, train_scores, protocol),
        "n_train": len(train), "n_test": len(test), "n_contaminated": int(contaminated.sum()),
        "contamination_mode": contamination.mode, "test_removed": len(contamination.moved_out_of_test),
        **removal_counts(robust.removed, contaminated),
        "rounds": robust.rounds,
        "removal_log": removal_log(robust.log, split, cell.wrapper.T),
        "fit_s": fit_s, "predict_ms_per_image": predict_ms, "train_scores_s": train_scores_s,
        "peak_ram_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_gpu_mb": _peak_gpu_mb(),
        "device": device,
        **package_versions(),
        "protocol": protocol.record(),
    }
    save_report_arrays(cell_dir, prediction.scores, labels, prediction.maps, masks, test, protocol)
    return record


def removal_counts(removed: np.ndarray, contaminated: np.ndarray) -> dict[str, int]:
    """IRP's Table 2 columns: normal (good) and contaminated (bad) training images removed."""
    bad = int(contaminated[removed].sum()) if len(removed) else 0
    return {"removed": len(removed), "good_removed": len(removed) - bad, "bad_removed": bad}


def removal_log(log: list[RemovalRound], split: DatasetSplit, T: float) -> list[dict[str, Any]]:
    """The robust wrapper's rounds for result.json: threshold T·median, and per removed image its
    file (relative to the dataset), score and whether it was a contaminated image."""
    return [{
        "round": number, "T": T, "median": entry.median, "threshold": entry.threshold, "scored": entry.scored,
        "above_threshold": entry.above,
        "removed": [{"file": source_name(split.train[i], split.root), "score": score, "contaminated": split.contaminated[i]}
                    for i, score in zip(entry.removed, entry.scores)],
    } for number, entry in enumerate(log, start=1)]


def _peak_gpu_mb() -> float:
    try:
        import torch
    except ImportError:
        return 0.0
    return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0


def failed_record(cell: Cell, error: str) -> dict[str, Any]:
    return {**cell.describe(), "key": cell.key(), "status": "failed", "error": error[-4000:], **package_versions()}


def main(cell_dir: str) -> int:
    """Subprocess entry: run the pickled cell, write result.json (ok or failed)."""
    directory = Path(cell_dir)
    cell = pickle.loads((directory / "cell.pkl").read_bytes())
    try:
        record = run_cell(cell, directory)
        code = 0
    except Exception:  # noqa: BLE001 - any failure is recorded as the cell's result
        record, code = failed_record(cell, traceback.format_exc()), 1
    write_text_atomic(directory / "result.json", json.dumps(record, default=float))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
