"""Matplotlib figures of the report: ROC and PRO curves, AUROC vs noise, anomaly-map overlays."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import ndimage  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402


def overlay(image: np.ndarray, anomaly_map: np.ndarray, mask: np.ndarray, scale: tuple[float, float]) -> np.ndarray:
    """Image with the anomaly map as a translucent heat map and the ground-truth outline in white."""
    low, high = scale
    heat = plt.get_cmap("jet")(np.clip((anomaly_map - low) / max(high - low, 1e-12), 0, 1))[..., :3]
    blended = 0.55 * image / 255.0 + 0.45 * heat
    inside = mask > 0
    blended[ndimage.binary_dilation(inside) & ~inside] = 1.0
    return (blended * 255).round().astype(np.uint8)


def _save(figure: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def roc_pro_figure(curves: np.lib.npyio.NpzFile, title: str, path: Path) -> Path:
    """ROC curve (left) and PRO curve up to 30% FPR (right) of one cell."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(7, 3.2))
    fpr, tpr, _ = roc_curve(curves["labels"], curves["scores"])
    left.plot(fpr, tpr)
    left.plot([0, 1], [0, 1], ls=":", c="grey")
    left.set(xlabel="FPR", ylabel="TPR", title="image ROC")
    if "pro" in curves:
        right.plot(curves["pro_fpr"], curves["pro"])
        right.set(xlim=(0, 0.3), ylim=(0, 1), xlabel="pixel FPR", ylabel="PRO", title="PRO (to 30% FPR)")
    else:
        right.text(0.5, 0.5, "no anomaly maps", ha="center")
        right.set_axis_off()
    figure.suptitle(title, fontsize=8)
    return _save(figure, path)


def noise_figure(results: pd.DataFrame, dataset: str, path: Path) -> Path:
    """Image AUROC against the training-set noise level, one line per detector and wrapper."""
    figure, axis = plt.subplots(figsize=(5, 3.5))
    for (detector, wrapper), rows in results.groupby(["detector", "wrapper"]):
        means = rows.groupby("ratio")["image_auroc"].mean()
        axis.plot(means.index * 100, means.values, marker="o", label=f"{detector} / {wrapper}")
    axis.set(xlabel="defective images in training (%)", ylabel="image AUROC", title=dataset, ylim=(0, 1.02))
    axis.legend(fontsize=7)
    return _save(figure, path)
