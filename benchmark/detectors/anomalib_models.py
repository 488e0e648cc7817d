"""Every image model of anomalib 2.7 that fits the detector interface, wrapped by one generic class.

For each anomalib model class one ``Detector`` subclass is generated and registered under the
model's anomalib module name (``patchcore``, ``reverse_distillation``, ...). Its ``Params`` are the
anomalib constructor's keyword arguments with anomalib's defaults, plus ``pretrained``,
``weights``, ``epochs``, ``batch_size`` and the common ``device``/``seed``/``image_size``.

Training runs through anomalib's ``Engine`` on an in-memory datamodule (nothing is written but a
temporary Lightning work directory). Prediction calls the torch model directly after the model's
own pre-processing, so scores and maps are anomalib's raw outputs (no min-max normalisation by
validation statistics); maps are resized to the input resolution. The pre-processing resizes to
``image_size`` and never centre-crops, so maps cover the whole image.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import inspect
import math
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from anomalib.data import ImageBatch
from anomalib.engine import Engine
from anomalib.models import image as anomalib_image
from anomalib.models.components import AnomalibModule, MemoryBankMixin
from anomalib.pre_processing import PreProcessor
from lightning import LightningDataModule, seed_everything
from torch.utils.data import DataLoader, Sampler
from torchvision.transforms.v2 import CenterCrop, Compose, Resize, Transform

from mkdata.benchmark.detectors.base import CommonParams, Detector, Prediction
from mkdata.benchmark.detectors.registry import register
from mkdata.benchmark.detectors.torch_training import seeded, to_image_resolution, torch_device
from mkdata.benchmark.detectors.weights import MissingWeightsError, backbone_weights, cache_locations, offline_guard

# anomalib models left out, and why.
EXCLUDED = {
    "AnomalyVFM": "zero-shot foundation model: nothing to fit, weights only from the Hugging Face hub",
    "CFM": "needs RGB images plus 3D point clouds",
    "VlmAd": "asks a vision-language model service in text; no training, no anomaly map",
    "WinClip": "zero/few-shot CLIP prompting; needs the open_clip package and a class name, no training",
}

# One-line descriptions for `mkdata detectors` (anomalib's docstrings mostly say "Lightning Module").
DESCRIPTIONS = {
    "anomaly_dino": "AnomalyDINO: kNN of DINOv2 patch features to a memory bank of normal patches",
    "cfa": "CFA: coupled-hypersphere feature adaptation of CNN patch features",
    "cflow": "CFLOW-AD: conditional normalizing flows on multi-scale CNN features",
    "csflow": "CS-Flow: cross-scale normalizing flow on EfficientNet-B5 features",
    "dfkde": "DFKDE: kernel density estimate of PCA-reduced pooled CNN features (image score only)",
    "dfm": "DFM: PCA + Gaussian on pooled CNN features, feature-reconstruction error",
    "dinomaly": "Dinomaly: DINOv2 encoder, noisy-bottleneck transformer decoder reconstruction",
    "draem": "DRAEM: reconstructive + discriminative subnetworks trained on simulated anomalies",
    "dsr": "DSR: dual subspace re-projection with a pretrained VQ codebook",
    "efficient_ad": "EfficientAD: student-teacher + autoencoder on a small patch descriptor network",
    "fastflow": "FastFlow: 2D normalizing flow on CNN features",
    "foundad": "FoundAD: projection of foundation-model (DINOv2) features onto the normal manifold",
    "fre": "FRE: feature reconstruction error of a tied autoencoder on CNN features",
    "ganomaly": "GANomaly: encoder-decoder-encoder GAN, latent distance as score",
    "general_ad": "GeneralAD: discriminator on ViT patch features with synthetic feature anomalies",
    "glass": "GLASS: global and local anomaly synthesis in feature space, discriminator",
    "inp_former": "INP-Former: intrinsic normal prototypes from a ViT, reconstruction",
    "l2bt": "L2BT: students learn to reproduce a frozen ViT's features",
    "mh_patchcore": "MH-PatchCore: PatchCore with Mahalanobis-whitened PCA features",
    "padim": "PaDiM: per-position Gaussian of multi-scale CNN patch features, Mahalanobis distance",
    "patchcore": "PatchCore: kNN distance to a coreset memory bank of CNN patch features",
    "patchflow": "PatchFlow: normalizing flow on local patch features",
    "rad": "RAD: multi-layer ViT patch-feature memory bank with positional neighbours",
    "reverse_distillation": "Reverse Distillation: one-class bottleneck, student decoder mimics the teacher",
    "stfpm": "STFPM: student-teacher feature pyramid matching",
    "super_add": "SuperADD: training-free DINOv3 patch-feature memory bank",
    "supersimplenet": "SuperSimpleNet: feature adaptor + segmentation-detection head on synthetic anomalies",
    "uflow": "U-Flow: U-shaped normalizing flow on multi-scale features",
    "uninet": "UniNet: contrastive student-teacher distillation",
}

# Training epochs from anomalib's example configs (examples/configs/model/*.yaml). Memory-bank
# models fix their passes in anomalib's trainer_arguments (1; MH-PatchCore 3) whatever `epochs`
# says; other models not in the configs default to 100.
DEFAULT_EPOCHS = {
    "cfa": 30, "cflow": 50, "csflow": 240, "draem": 700, "dsr": 700, "efficient_ad": 1000, "fastflow": 500,
    "fre": 220, "ganomaly": 100, "glass": 100, "inp_former": 200, "patchflow": 200,
    "reverse_distillation": 200, "stfpm": 100, "uflow": 200, "uninet": 100, "mh_patchcore": 3,
}  # fmt: skip
# anomalib's datamodules default to 32. EfficientAd refuses other sizes than 1. DRAEM: its paper's
# 8; at 32, one CPU training step on 256² images went over 24 GiB and was OOM-killed (measured).
DEFAULT_BATCH_SIZE = {"efficient_ad": 1, "draem": 8}

# Constructor defaults this wrapper changes, each with its reason.
ANOMALIB_OVERRIDES: dict[str, dict[str, Any]] = {
    # anomalib downloads the DTD textures when the folder is missing; None here means Perlin-noise
    # textures instead (DRAEM's fallback), so DRAEM trains offline by default.
    "draem": {"dtd_dir": None},
}

_COMPONENTS = ("pre_processor", "post_processor", "evaluator", "visualizer")
_SHARED = ("epochs", "batch_size", "image_size")  # our parameters that some anomalib models also take


@dataclass
class AnomalibParams(CommonParams):
    """Parameters of every wrapped anomalib model (subclasses add the model's own keyword arguments)."""

    pretrained: bool = True  # ImageNet weights for the backbone (False: random initialisation)
    weights: str | None = None  # local state_dict file for the backbone; overrides `pretrained`
    epochs: int = 100
    batch_size: int = 32

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "image_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")


# -- data -------------------------------------------------------------------------------------
class _EvenBatches(Sampler[list[int]]):
    """Batches of at most ``batch_size`` images and near-equal sizes, so that no batch holds a lone
    image (batch norm cannot train on one) and no image is dropped (memory banks need them all)."""

    def __init__(self, count: int, batch_size: int, shuffle: bool) -> None:
        self.count, self.batch_size, self.shuffle = count, batch_size, shuffle

    def __len__(self) -> int:
        return math.ceil(self.count / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(self.count) if self.shuffle else torch.arange(self.count)
        return (chunk.tolist() for chunk in torch.tensor_split(order, len(self)))


class _ArrayDataModule(LightningDataModule):
    """Training images (N×3×S×S float tensor in [0, 1]) as anomalib ``ImageBatch``es.

    Some anomalib models read ``trainer.datamodule`` (its train loader, batch size, name); the
    validation loader serves the training images again, for models that calibrate on normal data.
    """

    name = "mkdata"
    category = ""

    def __init__(self, images: torch.Tensor, batch_size: int) -> None:
        super().__init__()
        self.images = images
        self.train_batch_size = min(batch_size, len(images))

    def _loader(self, shuffle: bool) -> DataLoader:
        batches = _EvenBatches(len(self.images), self.train_batch_size, shuffle)
        return DataLoader(self.images, batch_sampler=batches, collate_fn=_collate)

    def train_dataloader(self) -> DataLoader:
        return self._loader(shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(shuffle=False)


def _collate(images: list[torch.Tensor]) -> ImageBatch:
    return ImageBatch(image=torch.stack(images), gt_label=torch.zeros(len(images), dtype=torch.bool))


def _to_tensor(images: np.ndarray, size: int) -> torch.Tensor:
    """N×H×W×3 uint8 → N×3×size×size float in [0, 1] (antialiased bilinear, as anomalib's Resize)."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().float().div_(255.0)  # NCHW memory layout
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True).clamp_(0, 1)


def _default_steps(model_cls: type[AnomalibModule]) -> list[Transform]:
    """The transforms of the model's default pre-processor."""
    transform = model_cls.configure_pre_processor().transform
    return list(transform.transforms) if isinstance(transform, Compose) else [transform]


def _pre_processor(model_cls: type[AnomalibModule], size: int) -> PreProcessor:
    """The model's own pre-processing (normalisation, padding) resized to size², centre crops removed."""
    kept: list[Transform] = [
        Resize((size, size), interpolation=step.interpolation, antialias=True) if isinstance(step, Resize) else step
        for step in _default_steps(model_cls)
        if not isinstance(step, CenterCrop)
    ]
    return PreProcessor(transform=Compose(kept))


def _default_image_size(model_cls: type[AnomalibModule]) -> int:
    sizes = [step.size for step in _default_steps(model_cls) if isinstance(step, Resize)]
    return int(sizes[0][0]) if sizes else CommonParams.image_size


# -- weights that anomalib fetches itself (not through timm/torchvision) ----------------------
def _efficient_ad_weights(module: Any, params: Any) -> None:
    """Teacher: anomalib's download (pretrained), a local teacher state_dict (weights) or random."""
    if params.weights is not None:
        load = lambda: module.model.teacher.load_state_dict(torch.load(params.weights, weights_only=True))  # noqa: E731
        module.prepare_pretrained_model = load
    elif not params.pretrained:
        module.prepare_pretrained_model = lambda: None
    # Fetch now (anomalib would in on_train_start) so that missing files fail before training.
    module.prepare_pretrained_model()
    module.prepare_imagenette_data((params.image_size, params.image_size))


def _dsr_weights(module: Any, params: Any) -> None:
    """VQ codebook: anomalib's download (pretrained), a local .pckl state_dict (weights) or random."""
    if params.weights is not None:
        module.prepare_pretrained_model = lambda: Path(params.weights)
    elif not params.pretrained:
        module.prepare_pretrained_model = lambda: None
        module.model.load_pretrained_discrete_model_weights = lambda *args: None
    module.prepare_pretrained_model()  # fail before training when the file is missing offline


EXTRA_WEIGHTS: dict[str, Callable[[Any, Any], None]] = {"efficient_ad": _efficient_ad_weights, "dsr": _dsr_weights}
CALIBRATES_ON_NORMAL = {"efficient_ad"}  # map-normalisation quantiles, computed in anomalib's on_validation_start
HINTS = {"efficient_ad": " EfficientAd also needs natural images for its penalty loss: imagenet_dir=FOLDER."}
IMAGE_LEVEL_ONLY = {"dfkde", "ganomaly"}  # no anomaly map in anomalib's output
NEEDS_NO_WEIGHTS = {"draem", "ganomaly"}


class AnomalibDetector(Detector):
    """Generic wrapper; ``anomalib_class`` is set on each generated subclass."""

    anomalib_class: type[AnomalibModule]
    Params = AnomalibParams

    def __init__(self, params: AnomalibParams) -> None:
        super().__init__(params)
        self.module: AnomalibModule | None = None

    # -- building ---------------------------------------------------------------------------
    def _anomalib_kwargs(self) -> dict[str, Any]:
        own = {f.name for f in dataclasses.fields(AnomalibParams)}
        accepted = inspect.signature(self.anomalib_class.__init__).parameters
        kwargs = {f.name: copy.deepcopy(getattr(self.params, f.name)) for f in dataclasses.fields(self.params)}
        kwargs = {k: v for k, v in kwargs.items() if k not in own or (k in _SHARED and k in accepted)}
        kwargs.update({c: False for c in _COMPONENTS if c != "pre_processor"})
        kwargs["pre_processor"] = _pre_processor(self.anomalib_class, self.params.image_size)
        return kwargs

    def _build(self, fresh: bool) -> AnomalibModule:
        """The anomalib module; ``fresh=False`` when a saved state_dict will overwrite it (no weight loading)."""
        p = self.params
        kwargs = self._anomalib_kwargs()
        source = backbone_weights(p.pretrained and fresh, p.weights if fresh else None)
        with tempfile.TemporaryDirectory() as empty, source:
            if kwargs.get("dtd_dir", "") is None:
                kwargs["dtd_dir"] = empty  # no texture images: Perlin-noise anomaly sources
            module = self.anomalib_class(**kwargs)
            if fresh and self.name in EXTRA_WEIGHTS:
                EXTRA_WEIGHTS[self.name](module, p)
        return module

    # -- Detector hooks ---------------------------------------------------------------------
    def _fit(self, images: np.ndarray) -> None:
        p = self.params
        device = torch_device(p.device)
        seed_everything(p.seed, workers=True, verbose=False)
        data = _ArrayDataModule(_to_tensor(images, p.image_size), p.batch_size)
        try:
            with offline_guard():
                self.module = self._build(fresh=True)
                with tempfile.TemporaryDirectory() as workdir:
                    engine = Engine(
                        default_root_dir=workdir,
                        max_epochs=p.epochs,
                        accelerator="gpu" if device.type == "cuda" else "cpu",
                        devices=[device.index or 0] if device.type == "cuda" else 1,
                        barebones=True,
                    )
                    engine.fit(self.module, datamodule=data)
                    if self.name in CALIBRATES_ON_NORMAL:
                        engine.validate(self.module, datamodule=data)
        except MissingWeightsError as error:
            raise MissingWeightsError(
                f"{self.name}: {error}. Supply the weights with weights=PATH (a local state_dict file of the "
                f"backbone), train from random initialisation with pretrained=False, or put the files in the "
                f"caches: {cache_locations()}.{HINTS.get(self.name, '')}"
            ) from error
        self.module.eval()

    def _predict(self, images: np.ndarray) -> Prediction:
        device = torch_device(self.params.device)
        module = self.module.to(device).eval()
        x = _to_tensor(images, self.params.image_size)
        scores, maps = [], []
        with torch.no_grad(), seeded(self.params.seed, device):
            for start in range(0, len(x), self.params.batch_size):
                batch = module.pre_processor.transform(x[start : start + self.params.batch_size].to(device))
                out = module.model(batch)
                scores.append(out.pred_score.reshape(len(batch)).double().cpu())
                if self.yields_map:
                    maps.append(out.anomaly_map.reshape(len(batch), *out.anomaly_map.shape[-2:]).cpu())
        return Prediction(
            torch.cat(scores).numpy(), to_image_resolution(torch.cat(maps), images.shape[1:3]) if maps else None
        )

    def _save_state(self, path: Path) -> None:
        torch.save(self.module.state_dict(), path / "model.pt")

    def _load_state(self, path: Path) -> None:
        with offline_guard():
            self.module = self._build(fresh=False)
        self.module.load_state_dict(torch.load(path / "model.pt", map_location="cpu", weights_only=True))
        self.module.eval()


# -- generating one registered detector per anomalib model ------------------------------------
def _plain(value: Any) -> Any:
    """A JSON-friendly default: enums by value, paths as strings, tuples as lists."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _params_class(name: str, model_cls: type[AnomalibModule]) -> type:
    """``AnomalibParams`` plus the model's own keyword arguments (anomalib's defaults)."""
    # anomalib's own `pre_trained` stays at its default (True): which weights a backbone starts from
    # is decided by `backbone_weights` (GLASS's pre_trained=False would also unfreeze its backbone,
    # a path that fails in anomalib 2.7).
    skip = {"self", "pre_trained", *_COMPONENTS, *(f.name for f in dataclasses.fields(AnomalibParams))}
    specs: list[tuple[str, Any, Any]] = []
    for arg in inspect.signature(model_cls.__init__).parameters.values():
        if arg.name in skip or arg.kind in (arg.VAR_POSITIONAL, arg.VAR_KEYWORD):
            continue
        default = _plain(ANOMALIB_OVERRIDES.get(name, {}).get(arg.name, arg.default))
        mutable = isinstance(default, (list, dict))
        specs.append((arg.name, Any, field(default_factory=lambda d=default: copy.deepcopy(d)) if mutable else default))
    specs += [
        ("epochs", int, DEFAULT_EPOCHS.get(name, 1 if issubclass(model_cls, MemoryBankMixin) else 100)),
        ("batch_size", int, DEFAULT_BATCH_SIZE.get(name, 32)),
        ("image_size", int, _default_image_size(model_cls)),
    ]
    return dataclasses.make_dataclass(f"{model_cls.__name__}Params", specs, bases=(AnomalibParams,))


def _registry_name(model_cls: type[AnomalibModule]) -> str:
    """anomalib's own snake-case name: the model's package (anomalib.models.image.<name>)."""
    return model_cls.__module__.split(".")[3]


def _register_all() -> list[str]:
    names = []
    for class_name in anomalib_image.__all__:
        model_cls = getattr(anomalib_image, class_name)
        if class_name in EXCLUDED:
            continue
        name = _registry_name(model_cls)
        attributes = {
            "name": name,
            "description": DESCRIPTIONS.get(name, f"anomalib {class_name}"),
            "yields_map": name not in IMAGE_LEVEL_ONLY,
            "needs_weights": name not in NEEDS_NO_WEIGHTS,
            "Params": _params_class(name, model_cls),
            "anomalib_class": model_cls,
        }
        register(type(f"{class_name}Detector", (AnomalibDetector,), attributes))
        names.append(name)
    return names


ANOMALIB_DETECTORS = _register_all()
