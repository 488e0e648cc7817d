"""The project's own detectors (autoencoders, IAAE, DifferNet, UniAD-style, classical baselines).

Every detector is fitted once per module on a tiny synthetic set (64², obvious defects) with
small, fast settings, on one CPU thread; the tests share those fits. Nothing downloads weights:
CNN backbones are randomly initialised (``pretrained=False``).
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.stats
import torch
import torchvision
from scipy.spatial.distance import mahalanobis
from sklearn.covariance import LedoitWolf
from sklearn.metrics import roc_auc_score
from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

from mkdata.benchmark.detectors._catalogue import OWN_MODULES
from mkdata.benchmark.detectors.autoencoders import CRITERIA
from mkdata.benchmark.detectors.base import Detector
from mkdata.benchmark.detectors.iaae import exp_difference
from mkdata.benchmark.detectors.nets import ConvAutoencoder, FeatureExtractor, latent_gradcam
from mkdata.benchmark.detectors.registry import create, describe, detector_class, detector_names
from mkdata.benchmark.detectors.ssim import REGIONS, content_regions, edge_attention_mask, ms_ssim_maps, scale_weights
from mkdata.benchmark.detectors.torch_training import TrainSpec, seeded, train
from mkdata.benchmark.detectors.unified_ad import neighbour_mask
from mkdata.benchmark.synthetic import make_synthetic

SIZE = 64
_AE = dict(image_size=SIZE, epochs=50, batch_size=8, lr=1e-3)  # paper lr 2e-4 needs far more steps
# Settings per detector. Tuned where the paper defaults cannot work here: residual statistics use
# "std" because the set mixes dark and bright defects (signed criteria such as the VAEs' default
# "mean" cancel out); random-init EfficientNet features vanish with depth (stage 4 ~1e-10), so
# the UniAD-style model uses a random ResNet-18 whose stages have comparable scales.
CONFIGS: dict[str, dict] = {
    "ae_l2": _AE,
    "ae_ssim": _AE,
    "ae_msssim4": {**_AE, "scales": 3},
    "ae_mahalanobis": _AE,
    "ae_residual_stats": {**_AE, "criterion": "std"},
    "vae_residual_stats": {**_AE, "criterion": "std"},
    "dilated_vae_residual_stats": {**_AE, "criterion": "std"},
    "iaae": {**_AE, "epochs": 20},
    "differnet": dict(
        image_size=SIZE, n_scales=1, epochs=45, batch_size=8, lr=1e-3, fc_hidden=128, n_transforms_test=8,
        pretrained=False,
    ),
    "unified_ad": dict(
        image_size=SIZE, epochs=50, batch_size=8, lr=1e-3, pretrained=False, backbone="resnet18", neighbor_size=1,
        hidden_dim=64, heads=4, encoder_layers=2, decoder_layers=2, feedforward_dim=128,
    ),
    "ocsvm": {},
    "lof": {},
    "kmeans": {},
    "knn": {},
}
# Image AUROC not asserted for these two (measured 0.66 and 0.66 here, 0.44 and 0.83 with seed 1):
# the SSIM-AE cannot reconstruct the random texture through its 1×1×100 bottleneck (it keeps about
# half the input's variance), so 1 − SSIM is high everywhere and a normal image's worst spot (at
# fixed positions near the border) competes with a defect's. Neither a border-free ("valid") SSIM
# map (0.85), 96 training images (0.67–0.78 over seeds) nor a smoother texture (0.56–1.0 over
# data seeds) makes it reliable. IAAE's image score (the sum of the attention map of a
# standardised exp-difference) is weak here too. Both maps do localise the defects (pixel AUROC
# 0.95 / 0.90): that is asserted instead.
NO_IMAGE_AUROC = {"ae_ssim", "iaae"}
pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: these tiny models only lose to thread contention


@pytest.fixture(scope="module")
def data():
    return make_synthetic(n_train=24, n_test_good=12, n_test_bad=12, size=SIZE, seed=0)


@pytest.fixture(scope="module")
def fitted(data):
    """name → (detector fitted on data.train, its Prediction on data.test); fitted on first use."""
    cache: dict = {}

    def get(name: str):
        if name not in cache:
            detector = create(name, device="cpu", seed=0, **CONFIGS[name])
            cache[name] = (detector.fit(data.train), detector.predict(data.test))
        return cache[name]

    return get


def test_every_own_detector_is_registered_and_tested():
    own = {n for n in detector_names() if detector_class(n).__module__.rsplit(".", 1)[-1] in OWN_MODULES}
    assert own == set(CONFIGS)
    for name in own:
        entry = describe(name)
        assert entry["description"] and isinstance(entry["defaults"], dict)
        assert entry["needs_weights"] == (name in {"differnet", "unified_ad"})


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_fit_predict_shapes(name, data, fitted):
    detector, pred = fitted(name)
    assert pred.scores.shape == (len(data.test),) and pred.scores.dtype == np.float64
    assert np.all(np.isfinite(pred.scores))
    if detector.yields_map:
        assert pred.maps.shape == (len(data.test), SIZE, SIZE) and pred.maps.dtype == np.float32
        assert np.all(np.isfinite(pred.maps))
    else:
        assert pred.maps is None


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_save_load_round_trip(name, data, fitted, tmp_path):
    detector, pred = fitted(name)
    detector.save(tmp_path / name)
    again = Detector.load(tmp_path / name).predict(data.test)
    np.testing.assert_array_equal(again.scores, pred.scores)
    if detector.yields_map:
        np.testing.assert_array_equal(again.maps, pred.maps)


@pytest.mark.parametrize("name", sorted(set(CONFIGS) - NO_IMAGE_AUROC))
def test_image_auroc_on_obvious_defects(name, data, fitted):
    _, pred = fitted(name)
    assert roc_auc_score(data.labels, pred.scores) >= 0.9


@pytest.mark.parametrize("name", ["ae_ssim", "iaae"])
def test_maps_localise_defects(name, data, fitted):
    """Pixel AUROC of the maps on the defective test images."""
    _, pred = fitted(name)
    bad = data.labels == 1
    assert roc_auc_score(data.masks[bad].ravel(), pred.maps[bad].ravel()) >= 0.85


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_bad_input_raises_value_error(name, data, fitted):
    with pytest.raises(ValueError, match="unknown parameter"):
        create(name, no_such_parameter=1)
    with pytest.raises(ValueError, match="empty"):
        create(name, device="cpu", **CONFIGS[name]).fit(np.zeros((0, SIZE, SIZE, 3), np.uint8))
    detector, _ = fitted(name)
    with pytest.raises(ValueError, match="fitted on"):
        detector.predict(data.test[:, :32, :32])


@pytest.mark.parametrize(
    "name, params",
    [
        ("ae_l2", {"image_size": 48}),
        ("ae_residual_stats", {"criterion": "median"}),
        ("ae_msssim4", {"image_size": 64, "scales": 5}),
        ("iaae", {"image_size": 64, "gradcam_layer": 2}),
        ("differnet", {"image_size": 128, "n_scales": 3}),
        ("unified_ad", {"image_size": 64, "neighbor_size": 7}),
        ("knn", {"features": "edges"}),
        ("ae_l2", {"epochs": 0}),
    ],
)
def test_bad_parameter_values_raise_value_error(name, params):
    with pytest.raises(ValueError):
        create(name, **params)


def test_in_sample_train_scores_reuse_the_fitted_model(data, fitted):
    detector, _ = fitted("ae_l2")
    np.testing.assert_array_equal(detector.train_scores(data.train), detector.predict(data.train).scores)


def test_mahalanobis_train_scores_are_out_of_sample(data):
    """k-fold scores of the training images exceed the (biased-low) in-sample distances."""
    detector = create("ae_mahalanobis", device="cpu", **{**_AE, "epochs": 2}).fit(data.train)
    out_of_sample = detector.train_scores(data.train, folds=3)
    assert out_of_sample.shape == (len(data.train),) and np.all(np.isfinite(out_of_sample))
    assert np.median(out_of_sample) > np.median(detector.predict(data.train).scores)


def test_training_is_seeded(data):
    def scores(seed: int) -> np.ndarray:
        detector = create("vae_residual_stats", device="cpu", seed=seed, **{**_AE, "epochs": 2})
        return detector.fit(data.train[:8]).predict(data.test[:4]).scores

    first = scores(0)
    np.testing.assert_array_equal(scores(0), first)
    assert not np.array_equal(scores(1), first)


# -- shared pieces ----------------------------------------------------------------------------
def test_training_loop_fits_a_regression_and_restores_the_rng():
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    x = torch.linspace(-1, 1, 33)[:, None]
    sizes = []

    def loss(batch: torch.Tensor) -> torch.Tensor:
        sizes.append(len(batch))
        return (model(batch) - (3 * batch - 1)).pow(2).mean()

    with seeded(0, torch.device("cpu")):
        model = torch.nn.Linear(1, 1)
        losses = train(model, x, loss, TrainSpec(60, 8, 0.05, milestones=(30, 45)), torch.device("cpu"))
    assert sizes == [8, 8, 8, 8] * 60  # 33 samples: the trailing single-sample batch is dropped
    assert losses[-1] < 1e-3 < losses[0]
    assert torch.equal(torch.rand(3), before)  # the caller's RNG stream is untouched
    assert model.weight.item() == pytest.approx(3, abs=0.03) and model.bias.item() == pytest.approx(-1, abs=0.03)


def test_conv_autoencoder_matches_the_iaae_table():
    net = ConvAutoencoder(256, batch_norm=True)
    assert len(net.encoder) == len(net.decoder) == 10  # 20 layers
    x = torch.zeros(1, 3, 256, 256)
    sizes = []
    for layer in net.encoder:
        x = layer(x)
        sizes.append((x.shape[1], x.shape[2]))
    assert sizes == [(32, 128), (32, 64), (32, 32), (32, 32), (64, 16), (64, 16), (128, 8), (64, 8), (32, 8), (100, 1)]
    with_bn = [any(isinstance(m, torch.nn.BatchNorm2d) for m in block) for block in [*net.encoder, *net.decoder]]
    assert with_bn == [True] * 6 + [False] * 4 + [True] * 6 + [False] * 4
    assert net(torch.zeros(2, 3, 256, 256)).shape == (2, 3, 256, 256)


def test_gradcam_equals_per_entry_autograd():
    torch.manual_seed(0)
    net = ConvAutoencoder(64, latent_dim=12, batch_norm=True).eval()
    x = torch.rand(3, 3, 64, 64)
    cam, _ = latent_gradcam(net, x, layer=7)
    activation = net.encoder[:7](x).detach().requires_grad_(True)
    z = net.encoder[7:](activation).flatten(1)
    maps = []
    for i in range(z.shape[1]):
        (grad,) = torch.autograd.grad(z[:, i].sum(), activation, retain_graph=True)
        maps.append(torch.relu((grad.mean(dim=(2, 3), keepdim=True) * activation).sum(1)))
    torch.testing.assert_close(cam, torch.stack(maps).mean(0), rtol=1e-5, atol=1e-9)


def test_exp_difference_keeps_sign_order_and_is_standardised():
    mean = torch.full((1, 3, 8, 8), 0.5)
    y = mean + torch.linspace(-0.05, 0.05, 3 * 64).view(1, 3, 8, 8)  # |x̄ − y|⁹ ≤ 2e-12
    assert torch.exp((mean - y).pow(9)).std() == 0  # naive float32 exp rounds every value to 1
    d = exp_difference(y, mean, power=9).flatten()
    ordered = d[torch.argsort((mean - y).flatten())]
    assert torch.all(torch.diff(ordered) >= 0) and ordered[0] < ordered[-1]  # odd power: order and sign kept
    assert d.mean().item() == pytest.approx(0, abs=1e-5) and d.std().item() == pytest.approx(1, abs=1e-4)
    assert torch.all(exp_difference(mean, mean, 9) == 0)  # an image equal to x̄: zeros, not NaN


def test_residual_criteria_match_numpy_and_scipy(data, fitted):
    detector, pred = fitted("ae_residual_stats")  # fitted with criterion "std"
    x, recon = detector.reconstruct(data.test)
    luma = np.array([0.299, 0.587, 0.114], np.float32)[:, None, None]
    residual = ((x - recon) * luma).sum(1).reshape(len(x), -1).astype(np.float64)
    np.testing.assert_allclose(pred.scores, residual.std(1), rtol=1e-4)
    r = torch.from_numpy(residual)
    counts = [np.histogram(row.clip(-1, 1), bins=256, range=(-1, 1))[0] for row in residual]
    reference = {
        "mean": residual.mean(1),
        "std": residual.std(1),
        "var": residual.var(1),
        "kurtosis": scipy.stats.kurtosis(residual, axis=1),
        "skewness": scipy.stats.skew(residual, axis=1),
        "range": residual.max(1) - residual.min(1),
        "min": -residual.min(1),
        "max": residual.max(1),
        "cumsum": np.cumsum(residual, axis=1)[:, -1],
        "mse": (residual**2).mean(1),
        "entropy": [scipy.stats.entropy(c, base=2) for c in counts],
    }
    assert set(reference) == set(CRITERIA)
    for name, expected in reference.items():
        np.testing.assert_allclose(CRITERIA[name](r).numpy(), expected, rtol=1e-6, atol=1e-9, err_msg=name)


def test_mahalanobis_matches_scipy(data, fitted):
    detector, pred = fitted("ae_mahalanobis")
    train_features, test_features = detector.features(data.train), detector.features(data.test)
    assert train_features.shape == (len(data.train), 1000)
    gaussian = LedoitWolf().fit(train_features)
    inverse = np.linalg.inv(gaussian.covariance_)
    expected = [mahalanobis(f, gaussian.location_, inverse) for f in test_features]
    np.testing.assert_allclose(pred.scores, expected, rtol=1e-5)


def test_multiscale_ssim_maps_agree_with_torchmetrics():
    """Pooled like torchmetrics (cs on the valid region, last-scale SSIM over the whole map)."""
    torch.manual_seed(0)
    x = torch.rand(2, 1, 96, 96, dtype=torch.float64)
    y = (x + 0.2 * torch.rand_like(x)).clamp(0, 1)
    weights = scale_weights(3)
    maps = ms_ssim_maps(x, y, scales=3)
    pooled = [m[..., 5:-5, 5:-5].mean(dim=(1, 2, 3)) for m in maps[:-1]] + [maps[-1].mean(dim=(1, 2, 3))]
    ours = torch.stack([p**w for p, w in zip(pooled, weights)]).prod(0)
    expected = multiscale_structural_similarity_index_measure(x, y, betas=weights, data_range=1.0, reduction="none")
    torch.testing.assert_close(ours, expected, rtol=1e-6, atol=1e-8)


def test_content_regions_follow_li_and_bovik():
    original = torch.zeros(1, 1, 32, 64)
    original[..., 16:] = 1.0  # an edge at column 16, present in both images
    original[..., 48:] = 2.0  # an edge at column 48, only in the original
    original[..., 24:40] += torch.linspace(0, 15 * 0.045, 16)  # Sobel 0.045: between TH2 and TH1
    distorted = original.clone()
    distorted[..., 48:] = distorted[..., 47:48]
    labels = content_regions(original, distorted)[0, 16]
    assert REGIONS[labels[16]] == "preserved_edge"
    assert REGIONS[labels[48]] == "changed_edge"
    assert REGIONS[labels[32]] == "texture"
    assert REGIONS[labels[8]] == "smooth"


def test_edge_attention_mask_covers_dilated_edges_only():
    image = torch.zeros(1, 1, 32, 32)
    image[..., 16:] = 1.0
    mask = edge_attention_mask(image, dilation=5)
    columns = torch.nonzero(mask.any(0)).flatten().tolist()
    assert columns == list(range(13, 19))  # Sobel marks columns 15-16, dilated by 2 each side
    assert mask[:, 13:19].all()


def test_msssim4_attention_roi_limits_the_map(data, tmp_path):
    params = {**_AE, "epochs": 2, "scales": 3}
    detector = create("ae_msssim4", device="cpu", attention_roi=True, roi_dilation=3, **params)
    pred = detector.fit(data.train[:8]).predict(data.test)
    roi = edge_attention_mask(torch.from_numpy(data.train[:8]).float().div(255).mean(0).permute(2, 0, 1)[None]
                              .mul(torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True), 3)
    assert 0 < roi.float().mean() < 1
    assert np.all(pred.maps[:, ~roi.numpy()] == 0) and np.all(np.isfinite(pred.scores))
    detector.save(tmp_path / "roi")
    np.testing.assert_array_equal(Detector.load(tmp_path / "roi").predict(data.test).scores, pred.scores)


def test_differnet_score_is_invariant_to_quarter_turns(data, fitted):
    """Test rotations are evenly spaced (8 of them): a 90° turn of the input permutes them."""
    detector, _ = fitted("differnet")
    images = data.test[-4:]
    turned = np.ascontiguousarray(np.rot90(images, 1, axes=(1, 2)))
    np.testing.assert_allclose(detector.predict(turned).scores, detector.predict(images).scores, rtol=1e-4)


@pytest.fixture(scope="module")
def differnet_with_map(data, fitted, tmp_path_factory):
    """The fitted DifferNet, saved and loaded back with ``gradient_map`` switched on."""
    detector, _ = fitted("differnet")
    path = tmp_path_factory.mktemp("differnet")
    detector.save(path)
    loaded = Detector.load(path)
    loaded.params.gradient_map = True
    return loaded


def test_differnet_gradient_map_localises_defects_and_keeps_the_scores(data, fitted, differnet_with_map):
    _, plain = fitted("differnet")
    pred = differnet_with_map.predict(data.test)
    np.testing.assert_allclose(pred.scores, plain.scores, rtol=1e-5)
    assert plain.maps is None and pred.maps.shape == data.masks.shape
    bad = data.labels == 1
    assert roc_auc_score(data.masks[bad].ravel(), pred.maps[bad].ravel()) >= 0.75  # 0.84 measured


def test_differnet_gradient_map_turns_with_the_image(data, differnet_with_map):
    """Each gradient is rotated back to the input's frame: a quarter turn of the input turns the map."""
    images = data.test[-3:]
    turned = np.ascontiguousarray(np.rot90(images, 1, axes=(1, 2)))
    maps = differnet_with_map.predict(images).maps
    np.testing.assert_allclose(
        differnet_with_map.predict(turned).maps, np.rot90(maps, 1, axes=(1, 2)), rtol=1e-3, atol=1e-3 * maps.max()
    )


def test_neighbour_mask_hides_the_neighbourhood():
    mask = neighbour_mask(5, 3)
    assert mask.shape == (25, 25) and mask[12].sum() == 9 and mask[0].sum() == 4
    assert mask[12].view(5, 5)[1:4, 1:4].all()
    assert not neighbour_mask(5, 0).any()


def test_knn_is_the_nearest_training_distance(data, fitted):
    detector, pred = fitted("knn")
    train_features, test_features = detector.features(data.train), detector.features(data.test)
    distances = np.linalg.norm(test_features[:, None] - train_features[None], axis=2)
    np.testing.assert_allclose(pred.scores, distances.min(1), rtol=1e-9)


def test_backbone_weights_from_a_local_file(tmp_path):
    torch.manual_seed(1)
    source = torchvision.models.alexnet().state_dict()
    path = tmp_path / "alexnet.pt"
    torch.save(source, path)
    loaded = FeatureExtractor("alexnet", pretrained=True, weights=str(path)).state_dict()  # the file wins
    assert loaded and all(torch.equal(v, source[k.removeprefix("body.")]) for k, v in loaded.items())
    with pytest.raises(ValueError, match="does not exist"):
        FeatureExtractor("alexnet", weights=str(tmp_path / "missing.pt"))


def test_the_catalogue_lists_what_each_module_registers():
    """detector names are listed from _catalogue without importing the modules; each lists its own."""
    for module, names in OWN_MODULES.items():
        registered = {n for n in detector_names() if detector_class(n).__module__.rsplit(".", 1)[-1] == module}
        assert registered == set(names)


_WITHOUT_ANOMALIB = """
import sys
sys.modules["anomalib"] = None  # any `import anomalib...` now raises ImportError
import numpy as np
from mkdata.benchmark.detectors.registry import create, describe, detector_names
names = detector_names()
assert "ae_l2" in names and "knn" in names and "padim" not in names, names
for name in names:
    describe(name)
create("knn", features="pixels").fit(np.zeros((4, 32, 32, 3), np.uint8))
create("ae_l2", image_size=32, epochs=1, device="cpu").fit(np.zeros((2, 32, 32, 3), np.uint8))
create("differnet", pretrained=False, image_size=64, n_scales=1, epochs=1, fc_hidden=8, device="cpu")
print("ok", len(names), "torch" in sys.modules, any(m.startswith("anomalib") and sys.modules[m] for m in sys.modules))
"""


def test_own_detectors_work_without_anomalib():
    """In a process where importing anomalib is impossible, the own detectors list, describe, build and fit."""
    run = subprocess.run([sys.executable, "-c", _WITHOUT_ANOMALIB], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split()[:2] == ["ok", str(len(set().union(*OWN_MODULES.values())))]
    assert run.stdout.split()[3] == "False"  # no anomalib module was loaded


_LIST_ONLY = """
import sys
from mkdata.benchmark.detectors.registry import detector_names
detector_names()
print(sorted(m for m in ("torch", "anomalib", "timm", "torchvision") if m in sys.modules))
"""


def test_listing_names_imports_neither_torch_nor_anomalib():
    run = subprocess.run([sys.executable, "-c", _LIST_ONLY], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip() == "[]"
