"""The CLI's own behaviour, without rendering or training: one-line errors with their exit code,
a missing extra named once with its install command, and tables that never cut a cell."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from mkdata.cli import app


def blocking(tmp_path: Path, *modules: str) -> dict[str, str]:
    """An environment whose Python cannot import ``modules`` (as on a machine without them)."""
    (tmp_path / "sitecustomize.py").write_text(
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        f"        if name.split('.')[0] in {modules!r}: raise ModuleNotFoundError('blocked')\n"
        "sys.meta_path.insert(0, Block())\n")
    return {**os.environ, "PYTHONPATH": str(tmp_path)}


def test_bench_without_the_bench_extra_says_what_to_install(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "mkdata.cli", "bench", "--data", str(tmp_path)], capture_output=True,
                            text=True, env=blocking(tmp_path, "torch", "anomalib"), timeout=120)
    assert result.returncode == 2, result.stderr
    assert "pip install 'mkdata[bench]'" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_stats_table_keeps_every_name_whole_when_piped(tmp_path: Path) -> None:
    category = tmp_path / "electrical_insulator"
    for folder in ("train/good", "test/good", "test/leading_edge_erosion", "ground_truth/leading_edge_erosion"):
        (category / folder).mkdir(parents=True)
    image = np.zeros((8, 8, 3), np.uint8)
    for folder in ("train/good", "test/good", "test/leading_edge_erosion"):
        Image.fromarray(image).save(category / folder / "00000.png")
    mask = np.zeros((8, 8), np.uint8)
    mask[2:4, 2:4] = 255
    Image.fromarray(mask).save(category / "ground_truth/leading_edge_erosion/00000_mask.png")
    result = CliRunner().invoke(app, ["stats", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for word in ("electrical_insulator", "leading_edge_erosion", "median_ratio", "border_masks", "6.250%"):
        assert word in result.output, word


def test_bad_input_is_one_line_with_exit_code_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["stats", str(tmp_path / "absent")])
    assert result.exit_code == 2
    assert "is not a directory" in result.output and "Traceback" not in result.output


def test_a_resolution_too_small_for_a_scenario_is_refused_before_anything_renders(tmp_path: Path) -> None:
    """The insulator's crack needs 96² (measured in its module): `--scenario all` at 64² stops with
    the minimum, before nut_bolt or any other scenario has written an image."""
    result = CliRunner().invoke(app, ["miad", "--scenario", "all", "--out", str(tmp_path / "out"), "--resolution", "64"])
    assert result.exit_code == 2, result.output
    assert "resolution 64 is too small for electrical_insulator: use at least 96" in " ".join(result.output.split())
    assert not (tmp_path / "out").exists()


def test_bench_console_shows_no_third_party_deprecation_warnings(tmp_path: Path) -> None:
    """Checking a bench config imports timm and anomalib, whose FutureWarnings a user can do nothing about."""
    config = tmp_path / "bench.yaml"
    config.write_text(f"detectors: [padim]\ndatasets: [{tmp_path / 'absent'}]\n")
    result = subprocess.run([sys.executable, "-m", "mkdata.cli", "bench", "--config", str(config)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert "MVTec AD layout" in result.stderr and "Warning" not in result.stderr, result.stderr
