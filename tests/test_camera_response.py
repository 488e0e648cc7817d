"""The camera response: seeded, within its documented ranges, and applied through the render path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mkdata.cli import app
from mkdata.scenes import camera_response

GREY = np.full((64, 64, 3), 128, np.uint8)


def test_same_seed_gives_the_same_bytes_and_ideal_leaves_the_image() -> None:
    def record(seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return camera_response.apply(GREY, camera_response.draw(rng, "realistic", 64), rng)

    assert np.array_equal(record(1), record(1))
    assert not np.array_equal(record(1), record(2))
    ideal = camera_response.draw(np.random.default_rng(0), "ideal", 64)
    assert camera_response.apply(GREY, ideal, np.random.default_rng(0)) is GREY


def test_responses_span_the_documented_ranges() -> None:
    rng = np.random.default_rng(0)
    responses = [camera_response.draw(rng, "realistic", 256) for _ in range(400)]
    exposure = np.array([r.exposure_ev for r in responses])
    assert exposure.min() < -0.3 and exposure.max() > 0.3 and np.abs(exposure).max() <= 0.4
    red_blue = np.array([(r.channel_gains[0], r.channel_gains[2]) for r in responses])
    assert np.abs(red_blue - 1).max() <= 0.1 and np.allclose(red_blue.sum(axis=1), 2)  # warm ↔ cool, not brighter
    defocused = np.array([r.defocus_sigma_px > 0 for r in responses])
    assert 0.15 < defocused.mean() < 0.35
    assert all(0.3 <= r.defocus_sigma_px <= 0.8 for r in responses if r.defocus_sigma_px > 0)


def test_brightness_follows_the_exposure_and_noise_is_that_of_the_sensor() -> None:
    """A flat mid-grey patch comes out with the drawn exposure's brightness (in linear light)
    and a pixel noise of the drawn shot + read noise: a few grey levels, not tens."""
    rng = np.random.default_rng(3)
    for _ in range(20):
        response = camera_response.draw(rng, "realistic", 64)
        out = camera_response.apply(GREY, response, rng).astype(float)
        expected_linear = (128 / 255) ** 2.2 * 2**response.exposure_ev * np.asarray(response.channel_gains)
        measured_linear = ((out / 255) ** 2.2).mean(axis=(0, 1))
        assert np.allclose(measured_linear, expected_linear, rtol=0.03)
        assert 0.3 < out.std(axis=(0, 1)).mean() < 8


@pytest.mark.render
def test_cli_records_the_camera_response_of_each_image(tmp_path: Path) -> None:
    args = ["miad", "--scenario", "nut_bolt", "--train", "2", "--test-good", "0", "--test-bad", "0", "--resolution", "32",
            "--samples", "1", "--no-denoise", "--factors", "none", "--quiet"]
    for model in ("realistic", "ideal"):
        result = CliRunner().invoke(app, [*args, "--camera", model, "--out", str(tmp_path / model)])
        assert result.exit_code == 0, result.output
    realistic, ideal = (pd.read_parquet(tmp_path / m / "nut_bolt" / "manifest.parquet") for m in ("realistic", "ideal"))
    exposures = [json.loads(text)["exposure_ev"] for text in realistic.camera_response]
    assert len(set(exposures)) == 2, "each image draws its own exposure"
    assert {json.loads(text)["exposure_ev"] for text in ideal.camera_response} == {0.0}
