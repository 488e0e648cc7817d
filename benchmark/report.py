"""Results table, summary.md (MIAD-shaped tables) and report.html (tables + matplotlib PNGs).

The HTML references only files inside the output folder (plots in ``report_files/``, overlays in
``cells/<key>/``), so it opens offline and the folder can be moved as a whole.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pandas as pd

from mkdata.benchmark.report_plots import noise_figure, roc_pro_figure
from mkdata.files import write_bytes_atomic, write_text_atomic

ID_COLUMNS = ["dataset", "detector", "detector_name", "wrapper", "contamination", "ratio", "seed", "image_size", "key", "status", "error"]
METRIC_COLUMNS = ["image_auroc", "recall_at_1fpr", "aupro", "pixel_auroc", "image_aupr", "f1_max",
                  "accuracy_unsupervised", "f1_unsupervised", "accuracy_supervised", "f1_supervised"]
RUN_COLUMNS = ["n_train", "n_test", "n_contaminated", "test_removed", "removed", "good_removed", "bad_removed", "rounds",
               "fit_s", "predict_ms_per_image", "train_scores_s", "peak_ram_mb", "peak_gpu_mb", "device", "mkdata_version", "anomalib_version",
               "torch_version"]


def load_results(output: Path) -> pd.DataFrame:
    """Every cell's record under ``output/cells`` as one long table (documented columns first)."""
    records = [json.loads(p.read_text()) for p in sorted((output / "cells").glob("*/result.json"))]
    table = pd.DataFrame(records)
    for column in ID_COLUMNS + METRIC_COLUMNS + RUN_COLUMNS:
        if column not in table:
            table[column] = np.nan
    per_type = sorted(c for c in table.columns if c.startswith("auroc["))
    return table[ID_COLUMNS + METRIC_COLUMNS + per_type + RUN_COLUMNS]


def _pivot(ok: pd.DataFrame, value: str) -> pd.DataFrame:
    table = ok.pivot_table(index="dataset", columns="detector", values=value, aggfunc="mean")
    table.loc["mean"] = table.mean(numeric_only=True)
    return table


def miad_table(ok: pd.DataFrame) -> pd.DataFrame:
    """Rows datasets (+ mean), columns detectors, cells 'AUROC / R@1%FPR' (clean training, vanilla)."""
    clean = ok[(ok.ratio == 0) & (ok.wrapper == "vanilla")]
    if clean.empty:
        clean = ok
    auroc, recall = _pivot(clean, "image_auroc"), _pivot(clean, "recall_at_1fpr")
    return auroc.combine(recall, lambda a, r: a.map(lambda x: f"{x:.2f}").str.cat(r.map(lambda x: f"{x:.2f}"), sep=" / "))


def aupro_table(ok: pd.DataFrame) -> pd.DataFrame:
    clean = ok[(ok.ratio == 0) & (ok.wrapper == "vanilla")]
    return _pivot(clean if not clean.empty else ok, "aupro").map(lambda x: "–" if pd.isna(x) else f"{x:.2f}")


def noise_table(ok: pd.DataFrame) -> pd.DataFrame:
    """Rows detector / wrapper, columns training noise level, cells mean image AUROC."""
    table = ok.pivot_table(index=["detector", "wrapper"], columns="ratio", values="image_auroc", aggfunc="mean")
    table.columns = [f"{100 * c:g}% noise" for c in table.columns]
    return table.map(lambda x: f"{x:.3f}")


def removal_table(ok: pd.DataFrame) -> pd.DataFrame:
    """IRP's Table 2: rows detector / robust wrapper, columns noise level, cells mean 'good / bad'
    training images removed (normal ones / contaminated ones); vanilla removes nothing."""
    robust = ok[ok.wrapper != "vanilla"]
    if robust.empty:
        return pd.DataFrame()
    good, bad = (robust.pivot_table(index=["detector", "wrapper"], columns="ratio", values=v, aggfunc="mean")
                 for v in ("good_removed", "bad_removed"))
    table = good.combine(bad, lambda g, b: g.map(lambda x: f"{x:g}").str.cat(b.map(lambda x: f"{x:g}"), sep=" / "))
    table.columns = [f"{100 * c:g}% noise" for c in table.columns]
    return table


def summary_markdown(results: pd.DataFrame) -> str:
    ok = results[results.status == "ok"]
    parts = ["# mkdata bench summary", ""]
    if not ok.empty:
        parts += ["## Image AUROC / Recall@1%FPR (clean training set, vanilla)", "", miad_table(ok).to_markdown(), "",
                  "## AUPRO@0.3", "", aupro_table(ok).to_markdown(), "",
                  "## Image AUROC by training-set noise level", "", noise_table(ok).to_markdown(), ""]
        removals = removal_table(ok)
        if not removals.empty:
            parts += ["## Training images removed by robust training (good / bad)", "", removals.to_markdown(), ""]
    failures = failed_lines(results)
    parts += [f"## Failed cells: {len(failures)}", "", *(f"- {line}" for line in failures)]
    return "\n".join(parts) + "\n"


def failed_lines(results: pd.DataFrame) -> list[str]:
    """One line per failed cell: which cell, and the last line of its error (the exception)."""
    failed = results[results.status != "ok"]
    return [f"{r.dataset} / {r.detector} / {r.wrapper} / ratio {r.ratio} / seed {r.seed}: "
            f"{str(r.error).strip().splitlines()[-1] if str(r.error).strip() else 'failed'}" for r in failed.itertuples()]


def write_report(output: Path) -> pd.DataFrame:
    """Write results.parquet, results.csv, summary.md and report.html; returns the results."""
    results = load_results(output)
    temp = output / ".results.parquet.tmp"
    results.to_parquet(temp, index=False)
    write_bytes_atomic(output / "results.parquet", temp.read_bytes())
    temp.unlink()
    write_text_atomic(output / "results.csv", results.to_csv(index=False))
    write_text_atomic(output / "summary.md", summary_markdown(results))
    write_text_atomic(output / "report.html", report_html(output, results))
    return results


def report_html(output: Path, results: pd.DataFrame) -> str:
    ok = results[results.status == "ok"]
    figures = output / "report_files"
    body = ["<h1>mkdata bench report</h1>"]
    if not ok.empty:
        body += ["<h2>Image AUROC / Recall@1%FPR</h2>", miad_table(ok).to_html(), "<h2>AUPRO@0.3</h2>", aupro_table(ok).to_html(),
                 "<h2>Image AUROC by training-set noise level</h2>", noise_table(ok).to_html()]
        removals = removal_table(ok)
        if not removals.empty:
            body += ["<h2>Training images removed by robust training (good / bad)</h2>", removals.to_html()]
        for dataset, rows in ok.groupby("dataset"):
            path = noise_figure(rows, str(dataset), figures / f"noise_{dataset}.png")
            body.append(f'<img src="{path.relative_to(output)}" alt="AUROC vs noise, {html.escape(str(dataset))}">')
        body.append("<h2>Cells</h2>")
        for row in ok.itertuples():
            cell_path = output / "cells" / row.key
            title = f"{row.dataset} · {row.detector} · {row.wrapper} · noise {100 * row.ratio:g}% · seed {row.seed}"
            body.append(f"<h3>{html.escape(title)}</h3>")
            curves = np.load(cell_path / "curves.npz")
            figure = roc_pro_figure(curves, title, figures / f"curves_{row.key}.png")
            body.append(f'<img src="{figure.relative_to(output)}" alt="ROC and PRO curves">')
            for overlay in sorted(cell_path.glob("gallery_*.png")):
                kind = "defective" if overlay.name.startswith("gallery_1") else "normal"
                body.append(f'<img src="{overlay.relative_to(output)}" alt="{kind} test image with anomaly map" width="160">')
    failed = results[results.status != "ok"]
    if not failed.empty:
        body.append(f"<h2>Failed cells ({len(failed)})</h2>")
        body += [f"<h3>{html.escape(f'{r.dataset} · {r.detector} · {r.wrapper} · {r.ratio}')}</h3><pre>{html.escape(str(r.error))}</pre>"
                 for r in failed.itertuples()]
    style = "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px}"
    return f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>mkdata bench</title><style>{style}</style></head><body>{''.join(body)}</body></html>\n"


def compare(a: Path, b: Path) -> pd.DataFrame:
    """Per matching cell (same dataset, detector, wrapper, ratio, seed): metrics of B minus A."""
    keys = ["dataset", "detector", "wrapper", "ratio", "seed"]
    left, right = (load_results(p).query("status == 'ok'") for p in (a, b))
    merged = left[keys + METRIC_COLUMNS[:6]].merge(right[keys + METRIC_COLUMNS[:6]], on=keys, suffixes=("_a", "_b"))
    for metric in METRIC_COLUMNS[:6]:
        merged[f"Δ{metric}"] = merged[f"{metric}_b"] - merged[f"{metric}_a"]
    return merged[keys + [f"Δ{m}" for m in METRIC_COLUMNS[:6]]]
