"""Does a detector score the defect, or only the scene it sits in? For each defective test image of
a rendered dataset this renders its defect-free twin (the same scene, view, finish and camera
response, with the defect undone: the renderer's ``apply_defect=False``, which the mask checks
use), fits each detector on the first N training images and prints, per detector and N:

- image AUROC, good vs defective (MIAD's metric) and good vs the twins: the twins' AUROC is what
  the test set's scenes alone give, with no defect in any image;
- how often a defective image scores above its own twin (0.5: the image score ignores the defect);
- how often the anomaly map's maximum lies inside the defect's mask, and the median maximum
  inside the mask, with and without the defect, next to the good images' median score.

Before the detectors it prints what the defect changes in the pixels, detector-free: the median
grey-level change inside the mask, defective vs twin, and that change over the twin's own
spread (standard deviation) in a ring around the mask.

    python benchmarks/defect_twins.py data/electrical_insulator --train 60 1000 --image-size 256

Twins are written beside the dataset (``<dataset>_twins/``, the dataset's own paths) and reused.
``--scores DIR`` also writes each defective image's figures, with its manifest row (view, surface
variant, background), to ``DIR/<detector>_<N>.csv``, to break the table down by factor.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from scipy.ndimage import binary_dilation
from sklearn.metrics import roc_auc_score

from mkdata.benchmark.config import DEFAULT_DETECTORS, DetectorSpec
from mkdata.benchmark.datasets import DatasetSplit, load_masks, read_category
from mkdata.benchmark.detectors.registry import create
from mkdata.files import write_png_atomic, write_text_atomic
from mkdata.generator.inventory import planned_config
from mkdata.generator.plan import plan_jobs
from mkdata.generator.pool import render_in_subprocess

BATCH = 25  # twins rendered per worker process
RING_PX = 6  # width of the ring around a mask whose spread the pixel change is compared with


def render_twins(dataset: Path, twins: Path) -> None:
    """Render (or resume) the defect-free twin of every defective test image into ``twins``."""
    config = planned_config(dataset)
    todo = [job for job in plan_jobs(config) if job.defect_type is not None and not (twins / job.image_path).exists()]
    for start in range(0, len(todo), BATCH):
        batch = todo[start:start + BATCH]
        for job, (image, _mask, _record) in zip(batch, render_in_subprocess(config, [(job, False) for job in batch])):
            write_png_atomic(twins / job.image_path, image)
        print(f"  twins rendered: {start + len(batch)} / {len(todo)}", flush=True)


def pixel_change(split: DatasetSplit, twins: Path) -> tuple[float, float]:
    """Median over the defective test images of the mean grey-level change inside the mask
    (defective vs twin, 0–255) and of that change over the twin's spread around the mask."""
    changes, ratios = [], []
    for sample in (s for s in split.test if s.label == 1 and s.mask_path is not None):
        defective = np.asarray(Image.open(sample.path).convert("L"), float)
        twin = np.asarray(Image.open(twins / sample.path.relative_to(split.root)).convert("L"), float)
        mask = np.asarray(Image.open(sample.mask_path).convert("L")) > 0
        if not mask.any():
            continue
        change = float(np.abs(defective - twin)[mask].mean())
        ring = binary_dilation(mask, iterations=RING_PX) & ~mask
        changes.append(change)
        ratios.append(change / max(float(twin[ring].std()), 1.0))
    return float(np.median(changes)), float(np.median(ratios))


def compare(spec: DetectorSpec, n_train: int, split: DatasetSplit, twins: Path, image_size: int,
            scores_dir: Path | None = None) -> dict[str, object]:
    """Fit ``spec`` on the first ``n_train`` training images; score good, defective and twin images
    (each defective image's figures go to ``scores_dir`` when given)."""
    good = [s for s in split.test if s.label == 0]
    bad = [s for s in split.test if s.label == 1]
    detector = create(spec.name, **{"image_size": image_size, **spec.params})
    detector.fit([s.path for s in split.train[:n_train]])
    scores_good = detector.predict([s.path for s in good]).scores
    defective = detector.predict([s.path for s in bad])
    twin = detector.predict([twins / s.path.relative_to(split.root) for s in bad])
    labels = np.r_[np.zeros(len(good)), np.ones(len(bad))]
    row: dict[str, object] = {
        "detector": spec.name, "train": n_train,
        "AUROC good vs defective": round(roc_auc_score(labels, np.r_[scores_good, defective.scores]), 3),
        "AUROC good vs twins": round(roc_auc_score(labels, np.r_[scores_good, twin.scores]), 3),
        "defective > own twin": round(float(np.mean(defective.scores > twin.scores)), 2),
    }
    per_image = pd.DataFrame({"path": [str(s.path.relative_to(split.root)) for s in bad],
                              "score": defective.scores, "twin_score": twin.scores})
    if defective.maps is not None:
        masks = load_masks(bad, defective.maps.shape[-1]).astype(bool)
        per_image["argmax_in_mask"] = [bool(mask.ravel()[m.argmax()]) for mask, m in zip(masks, defective.maps)]
        per_image["mask_max"] = [float(m[mask].max()) for mask, m in zip(masks, defective.maps)]
        per_image["twin_mask_max"] = [float(m[mask].max()) for mask, m in zip(masks, twin.maps)]
        row["map max in mask"] = round(float(per_image["argmax_in_mask"].mean()), 2)
        row["median max in mask: defective / twin"] = (
            f"{per_image['mask_max'].median():.1f} / {per_image['twin_mask_max'].median():.1f}")
        row["median score: good"] = round(float(np.median(scores_good)), 1)
    if scores_dir is not None:
        manifest = pd.read_csv(split.root / "manifest.csv")
        write_text_atomic(scores_dir / f"{spec.name}_{n_train}.csv", per_image.merge(manifest, on="path", how="left").to_csv(index=False))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path, help="a dataset folder written by mkdata miad")
    parser.add_argument("--train", type=int, nargs="+", default=[60], help="training-set sizes (the first N images)")
    parser.add_argument("--image-size", type=int, default=256, help="what the detectors see")
    parser.add_argument("--detector", nargs=2, action="append", metavar=("NAME", "PARAMS_JSON"),
                        help="repeatable; default: the bench's padim (EfficientNet-Lite0, packaged weights)")
    parser.add_argument("--scores", type=Path, help="a folder for each defective image's figures (CSV per detector and N)")
    args = parser.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")
    dataset = args.dataset.resolve()
    twins = dataset.parent / f"{dataset.name}_twins"
    specs = ([DetectorSpec(name, json.loads(params)) for name, params in args.detector] if args.detector
             else [spec for spec in DEFAULT_DETECTORS if spec.name == "padim"])
    split = read_category(dataset)
    if len(split.train) < max(args.train):
        raise SystemExit(f"{dataset} has {len(split.train)} training images, {max(args.train)} asked")
    render_twins(dataset, twins)
    change, ratio = pixel_change(split, twins)
    print(f"the defect in the pixels: median in-mask grey-level change {change:.1f} of 255, "
          f"{ratio:.2f}x the twin's spread within {RING_PX} px around the mask", flush=True)
    rows = []
    for spec in specs:
        for n in args.train:
            rows.append(compare(spec, n, split, twins, args.image_size, args.scores))
            print("\n" + pd.DataFrame(rows).to_markdown(index=False), flush=True)  # the table so far


if __name__ == "__main__":
    main()
