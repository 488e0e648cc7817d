"""The default `mkdata bench` works on an air-gapped machine: its detectors' backbones are
packaged, so on a (small) default-style `mkdata miad` output every cell succeeds offline."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from mkdata.benchmark.config import DEFAULT_DETECTORS
from mkdata.cli import app

pytestmark = pytest.mark.render


def test_default_bench_runs_every_default_cell_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # as on a plant's machine: no hub, whatever the network
    data = tmp_path / "data"
    render = CliRunner().invoke(app, ["miad", "--out", str(data), "--train", "16", "--test-good", "6", "--test-bad", "6",
                                      "--resolution", "96", "--samples", "4", "--no-denoise", "--quiet"])
    assert render.exit_code == 0, render.output
    config = tmp_path / "small.yaml"  # the default grid at a small image size: only the size differs
    config.write_text(f"output: {tmp_path / 'out'}\nimage_size: 64\n")  # the autoencoder takes powers of two
    result = CliRunner().invoke(app, ["bench", "--config", str(config), "--data", str(data), "--quiet"])
    assert result.exit_code == 0, result.output
    cells = [json.loads(p.read_text()) for p in (tmp_path / "out").glob("cells/*/result.json")]
    assert sorted(cell["detector_name"] for cell in cells) == sorted(spec.name for spec in DEFAULT_DETECTORS)
    assert all(cell["status"] == "ok" for cell in cells), [cell.get("error") for cell in cells]
    results = pd.read_parquet(tmp_path / "out" / "results.parquet").set_index("detector_name")
    # the MIAD metrics exist for every cell, AUPRO for the map-making ones (whether the detectors
    # find the defects is tests/test_weights_packaged.py's question, on a controlled render)
    assert results.image_auroc.between(0, 1).all() and results.recall_at_1fpr.between(0, 1).all()
    assert results.loc[["padim", "patchcore"], "aupro"].between(0, 1).all()
