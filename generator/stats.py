"""Statistics of a dataset in the MVTec AD layout (any such dataset, not only mkdata's)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from mkdata.errors import BadInput
from mkdata.files import POOL_SUFFIX, list_images


def category_dirs(root: Path) -> list[Path]:
    """``root`` itself if it is a category (has train/ or test/), else its category subfolders."""
    root = Path(root)
    if not root.is_dir():
        raise BadInput(f"{root} is not a directory")
    if (root / "train").is_dir() or (root / "test").is_dir():
        return [root]
    found = sorted(p for p in root.iterdir() if (p / "train").is_dir() or (p / "test").is_dir())
    if not found:
        raise BadInput(f"{root} holds no dataset in the MVTec AD layout (no train/ or test/ folder)")
    return found


def mask_table(category: Path) -> pd.DataFrame:
    """One row per image: split, defect type, and for defective images the mask's statistics."""
    rows = []
    for split in ("train", "test"):
        for type_dir in sorted(p for p in (category / split).glob("*") if p.is_dir()):
            for image in list_images(type_dir):
                row = {"split": split, "defect_type": type_dir.name, "ratio": np.nan, "empty": False, "touches_border": False}
                mask_file = category / "ground_truth" / type_dir.name / f"{image.stem}_mask.png"
                if type_dir.name != "good" and mask_file.exists():
                    mask = np.asarray(Image.open(mask_file).convert("L")) > 0
                    border = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
                    row.update(ratio=float(mask.mean()), empty=not mask.any(), touches_border=bool(border.any()))
                rows.append(row)
    return pd.DataFrame(rows, columns=["split", "defect_type", "ratio", "empty", "touches_border"])


def miad_ratio(category: str) -> float:
    """MIAD's mean defect-pixel ratio (its Table 2) for a category named after a scenario, else NaN."""
    from mkdata.scenes import scenario_classes

    scenario = scenario_classes().get(category.removesuffix(POOL_SUFFIX))
    return scenario.spec.miad_defect_pixel_ratio if scenario is not None else np.nan


def dataset_stats(root: Path) -> pd.DataFrame:
    """Per category, split and defect type: image count, mean/median defect-pixel ratio, the
    fractions of masks that are empty or touch the image border, and — for a scenario's dataset —
    the mean ratio over MIAD's (``vs_miad``; MIAD gives one ratio per scenario)."""
    tables = []
    for category in category_dirs(root):
        table = mask_table(category)
        if table.empty:
            continue
        grouped = table.groupby(["split", "defect_type"], sort=True).agg(
            images=("ratio", "size"), mean_ratio=("ratio", "mean"), median_ratio=("ratio", "median"),
            empty_masks=("empty", "mean"), border_masks=("touches_border", "mean"),
        ).reset_index()
        grouped.loc[grouped.defect_type == "good", ["mean_ratio", "median_ratio", "empty_masks", "border_masks"]] = np.nan
        grouped.insert(0, "category", category.name)
        grouped["vs_miad"] = grouped.mean_ratio / miad_ratio(category.name)
        tables.append(grouped)
    if not tables:
        raise BadInput(f"no images found under {root}")
    return pd.concat(tables, ignore_index=True)
