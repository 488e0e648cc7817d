"""Properties every scenario must have, rendered for real at tiny sizes (bpy in a worker process)."""

from __future__ import annotations

import io
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
import pandas as pd
from PIL import Image
from scipy import ndimage
from typer.testing import CliRunner

from mkdata.cli import app
from mkdata.generator.config import RenderConfig
from mkdata.generator.plan import ImageJob
from mkdata.generator.pool import render_in_subprocess
from mkdata.scenes import get_scenario, scenario_names
from mkdata.scenes.base import ALL_FACTORS

pytestmark = pytest.mark.render
SIZE, SAMPLES = 128, 6


def config(scenario: str, factors: tuple[str, ...] | None = None) -> RenderConfig:
    spec = get_scenario(scenario).spec
    return RenderConfig(scenario, Path("unused"), 0, 0, 0, SIZE, SAMPLES, spec.factors if factors is None else factors, denoise=False)


def assert_mask_explains_difference(defective: np.ndarray, clean: np.ndarray, mask: np.ndarray, what: str) -> None:
    """The mask is where the defect changed the image: strong changes lie in (a 2-px band around)
    the mask — one stray pixel is tolerated, as a glossy neighbour may reflect a tiny defect — and
    the mask changed far more than the rest."""
    assert mask.any(), f"{what}: empty mask"
    difference = np.abs(defective.astype(int) - clean.astype(int)).max(axis=-1)
    near_mask = ndimage.binary_dilation(mask, iterations=2)
    strong = difference > 40
    assert strong.any(), f"{what}: the defect is invisible"
    outside = strong[~near_mask].sum()
    assert outside <= max(1, 0.1 * strong.sum()), f"{what}: {outside} of {strong.sum()} strong changes outside the mask"
    assert difference[mask].mean() > 5 * difference[~near_mask].mean(), what


@pytest.mark.parametrize("scenario", scenario_names())
def test_each_defect_type_is_masked_where_the_image_changes(scenario: str) -> None:
    spec = get_scenario(scenario).spec
    jobs = [ImageJob("test_bad", i, defect) for i, defect in enumerate(spec.defect_types)]
    normal = ImageJob("test_good", 0, None)
    results = render_in_subprocess(config(scenario), [(job, apply) for job in jobs for apply in (True, False)] + [(normal, True)])
    for k, job in enumerate(jobs):
        (defective, mask, record), (clean, clean_mask, _) = results[2 * k], results[2 * k + 1]
        assert record.defect_type == job.defect_type and record.label == 1
        assert not clean_mask.any()
        assert_mask_explains_difference(defective, clean, mask > 0, f"{scenario}/{job.defect_type}")
    image, mask, record = results[-1]
    assert mask is None and record.label == 0 and record.defect_pixel_ratio == 0.0
    assert image.shape == (SIZE, SIZE, 3)


@pytest.mark.parametrize("scenario", scenario_names())
def test_factors_the_scenario_lacks_stay_fixed(scenario: str) -> None:
    spec = get_scenario(scenario).spec
    jobs = [ImageJob(group, i, None) for group in ("train", "test_good") for i in range(3)]
    records = [record for _, _, record in render_in_subprocess(config(scenario), [(job, True) for job in jobs])]
    varies = {
        "UV": len({(r.camera_radius, r.camera_azimuth, r.camera_elevation) for r in records}) > 1,
        "UB": len({r.background_id for r in records}) > 1 or "UB" in spec.factors,  # night UB moves objects, same id
        "US": len({r.surface_id for r in records}) > 1,
    }
    for factor in ALL_FACTORS:
        if factor not in spec.factors:
            assert not varies[factor], f"{scenario} lacks {factor} but it varied"
    assert varies["UV"], "every MIAD scenario has an uncontrolled viewpoint"
    if "US" in spec.factors:
        assert {r.surface_id for r in records if r.split == "train"}.isdisjoint(
            {r.surface_id for r in records if r.split == "test"} - {"clean"})


@pytest.mark.parametrize("scenario", scenario_names())
def test_controlled_images_share_the_scene_and_differ_by_normal_variation(scenario: str) -> None:
    """With every factor off, two images keep the pose, background and surface, yet are not
    pixel-identical (camera response, lighting and finish vary, as in MIAD's controlled set);
    each defective image's mask still explains its difference to its own defect-free twin."""
    spec = get_scenario(scenario).spec
    defect = spec.defect_types[0]
    jobs = [ImageJob("test_bad", i * len(spec.defect_types), defect) for i in range(2)]
    results = render_in_subprocess(config(scenario, ()), [(job, apply) for job in jobs for apply in (True, False)])
    (first, first_mask, first_record), (first_clean, _, _), (second, second_mask, second_record), (second_clean, _, _) = results
    fixed = ("camera_radius", "camera_azimuth", "camera_elevation", "background_id", "surface_id")
    assert [getattr(first_record, key) for key in fixed] == [getattr(second_record, key) for key in fixed]
    assert not np.array_equal(first_clean, second_clean), "the controlled set has normal variation between images"
    for defective, clean, mask in ((first, first_clean, first_mask), (second, second_clean, second_mask)):
        assert_mask_explains_difference(defective, clean, mask > 0, f"{scenario} controlled")


@pytest.mark.parametrize("scenario", scenario_names())
def test_every_factor_combination_renders_through_the_cli(scenario: str, tmp_path: Path) -> None:
    """`mkdata miad --factors X` for each proper subset X of the scenario's factors (the full set
    is rendered by the next test): a normal and a defective image, masked, factors recorded."""
    factors = get_scenario(scenario).spec.factors
    subsets = [combo for k in range(len(factors)) for combo in combinations(factors, k)]
    for subset in subsets:
        out = tmp_path / ("-".join(subset) or "none")
        result = CliRunner().invoke(app, ["miad", "--scenario", scenario, "--out", str(out), "--factors", ",".join(subset) or "none",
                                          "--train", "1", "--test-good", "0", "--test-bad", "1", "--resolution", CLI_SIZE,
                                          "--samples", "1", "--no-denoise", "--quiet"])
        assert result.exit_code == 0, f"{scenario} --factors {subset}: {result.output}"
        manifest = pd.read_parquet(out / scenario / "manifest.parquet")
        assert len(manifest) == 2
        for factor in ALL_FACTORS:
            assert (manifest[f"factor_{factor}"] == (factor in subset)).all(), f"{scenario} {subset}: factor_{factor}"
        mask = np.asarray(Image.open(out / scenario / manifest.mask_path.dropna().iloc[0]))
        assert (mask > 0).any(), f"{scenario} {subset}: empty mask"


DEFECTS_PER_TYPE = 3
CLI_SIZE = "96"  # the insulator's crack (0.04% of the image in MIAD) needs ~4 visible pixels


def render_all_scenarios(out: Path, *options: str) -> dict[Path, bytes]:
    """`mkdata miad` for every scenario, tiny, with DEFECTS_PER_TYPE defective images of each
    type; returns every PNG written (path relative to ``out`` → bytes)."""
    for name in scenario_names():
        test_bad = DEFECTS_PER_TYPE * len(get_scenario(name).spec.defect_types)
        result = CliRunner().invoke(app, ["miad", "--scenario", name, "--out", str(out), "--train", "2", "--test-good", "1",
                                          "--test-bad", str(test_bad), "--resolution", CLI_SIZE, "--samples", "2", "--no-denoise",
                                          "--quiet", *options])
        assert result.exit_code == 0, f"{name}: {result.output}"
    return {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*.png"))}


def test_every_scenario_renders_many_images_per_worker_through_the_cli(tmp_path: Path) -> None:
    """The production path (CLI → pool → worker: render, write, clean up Blender data) keeps what
    a scenario caches across images (decal shapes, background images, materials, hidden twins)
    alive: one worker renders each scenario's images, defects of every type in a row; a second
    run recycles its workers every two images (each rebuilds the scene) and writes the same bytes.
    Every image is rendered through the scenario's own lens (the manifest reads it from Blender)."""
    long_lived = render_all_scenarios(tmp_path / "long_lived")
    assert render_all_scenarios(tmp_path / "recycled", "--recycle-after", "2") == long_lived
    for name in scenario_names():
        spec = get_scenario(name).spec
        lenses = pd.read_parquet(tmp_path / "recycled" / name / "manifest.parquet").camera_lens_mm
        assert (lenses == spec.camera.lens_mm).all(), f"{name}: rendered with {set(lenses)} mm, its spec says {spec.camera.lens_mm}"
        defect_types = spec.defect_types
        masks = {path: data for path, data in long_lived.items() if path.parts[:2] == (name, "ground_truth")}
        assert len(masks) == DEFECTS_PER_TYPE * len(defect_types)
        assert sum(path.parts[0] == name for path in long_lived) == 3 + 2 * len(masks)
        for path, data in masks.items():
            assert (np.asarray(Image.open(io.BytesIO(data))) > 0).any(), f"{path}: empty mask"
