"""Night clutter, the normal finish of the equipment and the US degradation families, rendered for
real at tiny sizes through the public render path (bpy in a worker process)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage
from test_scenarios import assert_mask_explains_difference

from mkdata.assets_manifest import ids_for, load_assets
from mkdata.generator.config import RenderConfig
from mkdata.generator.plan import ImageJob
from mkdata.generator.pool import render_in_subprocess
from mkdata.scenes.surfaces import CLEAN, FAMILIES

pytestmark = pytest.mark.render
SIZE, SAMPLES = 96, 4


def config(scenario: str, factors: tuple[str, ...], size: int = SIZE, samples: int = SAMPLES) -> RenderConfig:
    return RenderConfig(scenario, Path("unused"), 0, 0, 0, size, samples, factors, denoise=False, camera="ideal")


def family(surface_id: str) -> str:
    return load_assets()[surface_id].params["family"]


def structure_change(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per pixel, how far ``a`` and ``b`` differ in structure: both blurred (against the sampling
    noise), ``b`` scaled per channel to ``a``'s brightness (against a global change of the torch's
    intensity and colour); the largest channel difference in levels."""
    a, b = (ndimage.gaussian_filter(x.astype(float), (1.0, 1.0, 0)) for x in (a, b))
    gain = (a * b).sum(axis=(0, 1)) / np.maximum((b * b).sum(axis=(0, 1)), 1e-9)
    return np.abs(a - b * gain).max(axis=-1)


def moved(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of the image whose structure changed by more than 20 levels between ``a`` and ``b``."""
    return float((structure_change(a, b) > 20).mean())


def test_degradation_variants_split_disjoint_with_every_family_in_both() -> None:
    train, test = set(ids_for("surface_degradation", "train")), set(ids_for("surface_degradation", "test"))
    assert train.isdisjoint(test)
    assert {family(i) for i in train} == {family(i) for i in test} == set(FAMILIES)
    for asset_id in train | test:
        params = load_assets()[asset_id].params
        assert 0.0 < params["coverage"][0] <= params["coverage"][1] <= 1.0 and 0.0 < params["strength"][0] <= params["strength"][1] <= 1.0


def test_every_degradation_family_changes_the_object_against_the_clean_surface() -> None:
    """US only (fixed view, plain background): images drawn from each split's variants cover every
    family, and each family visibly changes the insulator (in its most changed image) against the
    same image with US off."""
    jobs = [ImageJob(group, i, None) for group in ("train", "test_good") for i in range(14)]
    degraded, clean = (render_in_subprocess(config("electrical_insulator", factors), [(job, True) for job in jobs])
                       for factors in (("US",), ()))
    change: dict[str, float] = {}
    for (image, _, record), (clean_image, _, clean_record) in zip(degraded, clean):
        assert record.surface_id in ids_for("surface_degradation", record.split), record.surface_id
        assert clean_record.surface_id == CLEAN
        lit = clean_image.max(axis=-1) > 40  # the torch-lit insulator; the night background is near black
        difference = np.abs(image.astype(int) - clean_image.astype(int)).max(axis=-1)[lit].mean()
        name = family(record.surface_id)
        change[name] = max(change.get(name, 0.0), float(difference))
    assert set(change) == set(FAMILIES), f"only {sorted(change)} drawn: render more images"
    assert all(value > 5 for value in change.values()), f"mean change on the object by family: {change}"


def test_night_clutter_moves_between_images_with_ub_and_is_hidden_without() -> None:
    jobs = [ImageJob("train", i, None) for i in range(2)]
    on, off = ([image for image, _, _ in render_in_subprocess(config("electrical_insulator", factors), [(job, True) for job in jobs])]
               for factors in (("UB",), ()))
    assert moved(*on) > 0.03, "the clutter did not move"
    assert moved(on[0], off[0]) > 0.03, "no clutter with UB on"
    assert moved(*off) < 0.005, "the plain night background changed in structure"


def test_normal_finish_varies_between_controlled_images_and_stays_out_of_masks() -> None:
    """All factors off: the equipment's finish (streaks, spangle, orange-peel, wear) is drawn per
    image (``Scenario.randomise`` calls ``Finish(bp).randomise(rng)``), so two defect-free scenes
    differ in the bracket's texture; the defect's mask still explains the difference its defect makes."""
    jobs = [ImageJob("test_bad", i * 3, "missing_nut") for i in range(2)]
    results = render_in_subprocess(config("nut_bolt", (), 128, 6), [(job, apply) for job in jobs for apply in (True, False)])
    (first, first_mask, _), (first_clean, _, _), (second, second_mask, _), (second_clean, _, _) = results
    lit = first_clean.max(axis=-1) > 40  # the torch-lit bracket, bolts and beam
    change = structure_change(first_clean, second_clean)[lit].mean()
    assert change > 1.5, f"the finish is the same in both images (mean structural change {change:.2f} levels)"
    assert_mask_explains_difference(first, first_clean, first_mask > 0, "nut_bolt finish, first")
    assert_mask_explains_difference(second, second_clean, second_mask > 0, "nut_bolt finish, second")
