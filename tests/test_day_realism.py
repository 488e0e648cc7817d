"""Day scenes, rendered for real at 96²: with UB on the background changes in geometry and detail
between images, not only in colour; with UB off it stays (up to the small lighting jitter of the
controlled set); train and test background layouts are disjoint.

catenary_dropper from its fixed pose (UV off) is looked at: its wires cover a few per cent of
the frame, so what changes between images is the sky, the ground and the props behind them.
The ground's displaced relief is measured in a rendered depth pass of witness_mark's ground.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from mkdata.assets_manifest import ids_for
from mkdata.generator.config import RenderConfig
from mkdata.generator.plan import ImageJob
from mkdata.generator.pool import render_in_subprocess
from mkdata.scenes.surroundings import NEAR_FIELD_M, RELIEF_M

pytestmark = pytest.mark.render
SCENARIO, SIZE, SAMPLES = "catenary_dropper", 96, 6
JOBS = (ImageJob("train", 0, None), ImageJob("train", 1, None), ImageJob("test_good", 0, None), ImageJob("test_good", 1, None))


def structure(image: np.ndarray) -> np.ndarray:
    """Gradient magnitude of the luminance normalised to zero mean and unit spread: edges and
    detail, blind to a change of overall brightness, contrast or hue."""
    luminance = image.astype(float) @ np.array([0.2126, 0.7152, 0.0722])
    luminance = (luminance - luminance.mean()) / (luminance.std() + 1e-9)
    return np.hypot(ndimage.sobel(luminance, 0), ndimage.sobel(luminance, 1))


@pytest.fixture(scope="module")
def renders() -> dict[str, list]:
    """The four JOBS rendered with UB on ('ub') and with every factor off ('fixed')."""
    rendered = {}
    for name, factors in (("ub", ("UB",)), ("fixed", ())):
        config = RenderConfig(SCENARIO, Path("unused"), 0, 0, 0, SIZE, SAMPLES, factors, denoise=False, camera="ideal")
        rendered[name] = render_in_subprocess(config, [(job, True) for job in JOBS])
    return rendered


def test_uncontrolled_background_changes_in_geometry_not_only_colour(renders: dict[str, list]) -> None:
    (first, _, _), (second, _, _) = renders["ub"][:2]
    (fixed_first, _, _), (fixed_second, _, _) = renders["fixed"][:2]
    changed = np.abs(structure(first) - structure(second))
    jitter = np.abs(structure(fixed_first) - structure(fixed_second))
    assert changed.mean() > 4 * jitter.mean(), (changed.mean(), jitter.mean())
    assert (changed > 1.0).mean() > 0.05, "edges moved in under 5 % of the frame"


def test_controlled_background_stays_up_to_lighting_jitter(renders: dict[str, list]) -> None:
    images = [image for image, _, _ in renders["fixed"]]
    assert {record.background_id for _, _, record in renders["fixed"]} == {"day_fixed"}
    for other in images[1:]:
        assert not np.array_equal(images[0], other), "the controlled set keeps a small lighting variation"
        assert np.abs(images[0].astype(int) - other).mean() < 4.0
        assert np.abs(structure(images[0]) - structure(other)).mean() < 0.3


def test_train_and_test_layouts_are_disjoint(renders: dict[str, list]) -> None:
    train, test = set(ids_for("background_layout", "train")), set(ids_for("background_layout", "test"))
    assert train and test and not train & test
    drawn = {split: {record.background_id for _, _, record in renders["ub"] if record.split == split} for split in ("train", "test")}
    assert drawn["train"] <= train and drawn["test"] <= test


_GROUND_HEIGHTS = """
import json, os, sys
import numpy as np
from mkdata.generator.blender import load_bproc
from mkdata.scenes import get_scenario
bp = load_bproc()
scenario = get_scenario(sys.argv[1])(bp, frozenset({"UB"}))
scenario.build()
surroundings = scenario.environment.surroundings
for obj in bp.bpy.data.objects:
    obj.hide_render = obj.type == "MESH" and obj.name != "bg_ground"
bp.camera.set_resolution(48, 48)
bp.renderer.set_max_amount_of_samples(1)
bp.renderer.enable_depth_output(activate_antialiasing=False)
heights = []
for family, x, shift in json.loads(sys.argv[2]):
    surroundings.set_ground(family, tuple(shift))
    camera_z = surroundings.ground_z + 3.0
    bp.camera.add_camera_pose(bp.math.build_transformation_mat([x, 0.0, camera_z], [0.0, 0.0, 0.0]), frame=0)  # straight down
    depth = np.asarray(bp.renderer.render()["depth"][0])  # along the view axis: the vertical here
    heights.append((camera_z - depth - surroundings.ground_z).tolist())
print(json.dumps(heights), flush=True)
os._exit(0)  # bpy can crash while the interpreter tears it down
"""


def ground_heights(scenario: str, views: list[tuple[str, float, tuple[float, float]]]) -> list[np.ndarray]:
    """The ground's height above its base (m) seen straight down from 3 m over (x, 0), per
    (ground family, x, relief shift): the scenario's own built ground, every other mesh hidden."""
    run = subprocess.run([sys.executable, "-c", _GROUND_HEIGHTS, scenario, json.dumps(views)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return [np.asarray(h) for h in json.loads(run.stdout.strip().splitlines()[-1])]


def test_the_ground_has_displaced_relief_near_the_object_and_is_flat_far_away() -> None:
    """True displacement, measured in a rendered depth pass: gravel near the object rises by
    centimetres (never sinks below the ground's height, so feet sink into it rather than float),
    the relief moves with its per-image shift, concrete and the far field stay flat."""
    near, near_shifted, far, concrete = ground_heights("witness_mark", [
        ("gravel", 5.0, (0.0, 0.0)), ("gravel", 5.0, (7.3, 2.1)), ("gravel", NEAR_FIELD_M + 10.0, (0.0, 0.0)), ("concrete", 5.0, (0.0, 0.0))])
    peak = RELIEF_M["gravel"]
    assert np.percentile(near, 99) - np.percentile(near, 1) > 0.3 * peak, "no relief of centimetres"
    assert near.min() > -2e-3 and near.max() < peak + 2e-3
    assert np.abs(near - near_shifted).mean() > 0.05 * peak, "the relief did not move with its shift"
    assert np.abs(far).max() < 2e-3 and np.abs(concrete).max() < 2e-3
