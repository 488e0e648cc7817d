"""Pure logic of the render side, without bpy: camera bins, planning, sharding, seeds, asset
checksums and config parsing (seconds, so a change there is caught before any render runs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mkdata.assets_manifest import ids_for, load_assets, params_checksum
from mkdata.errors import BadInput
from mkdata.generator.config import PRESETS, RenderConfig, parse_factors, parse_shard
from mkdata.generator.plan import ImageJob, job_seed_sequence, plan_jobs, shard_jobs
from mkdata.generator.record import MANIFEST_COLUMNS, ImageRecord
from mkdata.scenes import get_scenario, scenario_names
from mkdata.scenes.camera import angle_bin_parity, sample_binned_angle, sample_viewpoint


def tiny(scenario: str = "nut_bolt", **overrides: object) -> RenderConfig:
    counts = {"n_train": 7, "n_test_good": 3, "n_test_bad": 8}
    return RenderConfig.from_preset(scenario, Path("out"), **{**counts, **overrides})


@pytest.mark.parametrize("split, parity", [("train", 0), ("test", 1)])
def test_binned_angles_fall_in_their_splits_bins_and_cover_the_range(split: str, parity: int) -> None:
    rng = np.random.default_rng(0)
    angles = np.array([sample_binned_angle(rng, -30.0, 30.0, split) for _ in range(2000)])
    assert {angle_bin_parity(a) for a in angles} == {parity}
    assert angles.min() >= -30.0 and angles.max() < 30.0
    assert angles.min() < -28.0 and angles.max() > 28.0  # the whole range is used


def test_an_angle_range_without_a_bin_of_the_split_is_refused() -> None:
    with pytest.raises(ValueError, match="no test bin"):
        sample_binned_angle(np.random.default_rng(0), 10.0, 11.0, "test")


@pytest.mark.parametrize("scenario", scenario_names())
def test_viewpoints_are_on_the_shell_or_fixed(scenario: str) -> None:
    shell = get_scenario(scenario).spec.camera
    rng = np.random.default_rng(1)
    assert sample_viewpoint(rng, shell, "train", uncontrolled=False) == shell.fixed
    for split in ("train", "test"):
        radius, azimuth, elevation = sample_viewpoint(rng, shell, split, uncontrolled=True)
        assert shell.radius[0] <= radius <= shell.radius[1]
        assert angle_bin_parity(azimuth) == angle_bin_parity(elevation) == {"train": 0, "test": 1}[split]


def test_plan_spreads_defects_evenly_and_growing_a_count_keeps_existing_jobs() -> None:
    jobs = plan_jobs(tiny())
    defect_types = get_scenario("nut_bolt").spec.defect_types
    bad = [job.defect_type for job in jobs if job.group == "test_bad"]
    assert [bad.count(d) for d in defect_types] == [3, 3, 2]
    grown = plan_jobs(tiny(n_test_bad=11, n_train=9))
    assert set(jobs) <= set(grown)
    assert len({job.image_path for job in grown}) == len(grown)


def test_shards_are_disjoint_and_cover_the_plan() -> None:
    jobs = plan_jobs(tiny())
    shards = [shard_jobs(jobs, i, 4) for i in range(4)]
    assert sorted(sum(shards, []), key=jobs.index) == jobs
    assert max(len(s) for s in shards) - min(len(s) for s in shards) <= 1


def test_an_images_seed_depends_only_on_scenario_group_index_and_seed() -> None:
    job = ImageJob("test_bad", 5, "loose_nut")
    state = job_seed_sequence(tiny(), job).generate_state(4)
    assert np.array_equal(state, job_seed_sequence(tiny(n_train=100, resolution=64, samples=2), job).generate_state(4))
    for other in (job_seed_sequence(tiny(seed=1), job), job_seed_sequence(tiny("witness_mark"), ImageJob("test_bad", 5, "misaligned_mark")),
                  job_seed_sequence(tiny(), ImageJob("test_good", 5, None)), job_seed_sequence(tiny(), ImageJob("test_bad", 6, "loose_nut"))):
        assert not np.array_equal(state, other.generate_state(4))
    assert tiny().cycles_seed() == tiny(n_train=1).cycles_seed() != tiny(seed=1).cycles_seed()


def test_asset_checksums_and_splits() -> None:
    assets = load_assets()
    assert all(params_checksum(a.params) == a.sha256 for a in assets.values())
    for kind in {a.kind for a in assets.values()}:
        train, test = set(ids_for(kind, "train")), set(ids_for(kind, "test"))
        assert not {a for a in train & test if assets[a].split != "both"}


def test_factor_shard_and_preset_parsing() -> None:
    assert parse_factors(None, "nut_bolt") == ("UV", "UB")
    assert parse_factors("none", "nut_bolt") == ()
    assert parse_factors("ub, uv,UV", "nut_bolt") == ("UV", "UB")
    assert parse_shard("3/16") == (3, 16) and parse_shard(None) == (0, 1)
    for text in ("3", "a/b", "4/4", "-1/2"):
        with pytest.raises(BadInput, match="--shard"):
            parse_shard(text)
    config = RenderConfig.from_preset("nut_bolt", Path("o"), "paper", n_train=5, factors="none", denoise=False)
    assert (config.n_train, config.n_test_good, config.resolution, config.factors, config.denoise) == (
        5, PRESETS["paper"]["n_test_good"], PRESETS["paper"]["resolution"], (), False)


@pytest.mark.parametrize("overrides, message", [
    ({"factors": "US"}, "has no factor US"), ({"factors": "XY"}, "unknown factor"), ({"resolution": 8}, "resolution"),
    ({"samples": 0}, "samples"), ({"n_train": -1}, "n_train"),
])
def test_bad_render_settings_name_the_setting(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(BadInput, match=message):
        tiny(**overrides)


def test_unknown_preset_and_scenario_list_the_valid_ones() -> None:
    with pytest.raises(BadInput, match="valid presets: default, paper"):
        RenderConfig.from_preset("nut_bolt", Path("o"), "huge")
    with pytest.raises(BadInput, match="valid scenarios: catenary_dropper"):
        get_scenario("nut")


def test_manifest_columns_are_the_record_fields() -> None:
    assert MANIFEST_COLUMNS[:3] == ["path", "mask_path", "split"] and len(MANIFEST_COLUMNS) == len(set(MANIFEST_COLUMNS))
    assert set(MANIFEST_COLUMNS) == set(ImageRecord.__dataclass_fields__)
