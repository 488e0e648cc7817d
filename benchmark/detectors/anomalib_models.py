"""Every image model of anomalib 2.7 that fits the detector interface, wrapped by one generic class.

For each record of ``anomalib_records`` one ``Detector`` subclass is generated and registered under
the record's name (``patchcore``, ``reverse_distillation``, ...). Its ``Params`` are the anomalib
constructor's keyword arguments with anomalib's defaults, plus ``pretrained``, ``weights``,
``epochs``, ``batch_size`` and the common ``device``/``seed``/``image_size``.

Weights (``weights.WeightChoice`` decides which file): models with anomalib's own ``pre_trained``
switch are built with it off and the chosen file is loaded into their timm backbones
(``timm_weights``); models that hard-code pretrained weights are built under
``anomalib_compat.routed_to``; EfficientAD and DSR get their archive file through the constructor
(``anomalib_archives``). A missing file fails before anything is trained.

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
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import anomalib.models
import numpy as np
import torch
from anomalib.engine import Engine
from anomalib.models.components import AnomalibModule, MemoryBankMixin
from anomalib.pre_processing import PreProcessor
from lightning import seed_everything
from torchvision.transforms.v2 import CenterCrop, Compose, Resize, Transform

from mkdata.benchmark.detectors import anomalib_compat
from mkdata.benchmark.detectors.anomalib_archives import build_archive_model
from mkdata.benchmark.detectors.anomalib_data import ArrayDataModule, to_tensor
from mkdata.benchmark.detectors.anomalib_records import RECORDS, AnomalibModel, Weights
from mkdata.benchmark.detectors.base import CommonParams, Detector, Prediction
from mkdata.benchmark.detectors.registry import register
from mkdata.benchmark.detectors.packaged import is_packaged
from mkdata.benchmark.detectors.timm_weights import feature_modules, load_timm_file, timm_models, timm_name
from mkdata.benchmark.detectors.torch_training import seeded, to_image_resolution, torch_device
from mkdata.benchmark.detectors.weights import RANDOM, Location, MissingWeightsError, Survey, WeightChoice, timm_location

_COMPONENTS = ("pre_processor", "post_processor", "evaluator", "visualizer")
_SHARED = ("epochs", "batch_size", "image_size")  # our parameters that some anomalib models also take
_BACKBONE_PARAMS = ("backbone", "encoder_name", "student_backbone", "teacher_backbone")
# Bench cells of memory-bank models (one pass) run with glibc's mmap threshold fixed at 4 MiB:
# PatchCore's coreset selection once peaked at 14-20 GiB without it (1.1 GiB with); on 60 images
# of 256² its cell takes 241 s and 1.8 GiB with it, 305 s and 2.1 GiB without. A model trained by
# gradient steps would pay for it in page faults on every step (a 2-epoch STFPM cell: 99 s with
# it, 60 s without). Figures from benchmarks/cell_malloc.py.
MEMORY_BANK_CELL_ENV = {"MALLOC_MMAP_THRESHOLD_": "4194304"}


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


class AnomalibDetector(Detector):
    """Generic wrapper; ``record`` and ``anomalib_class`` are set on each generated subclass."""

    record: AnomalibModel
    anomalib_class: type[AnomalibModule]
    Params = AnomalibParams
    extra_params: ClassVar[frozenset[str]] = frozenset()  # a subclass's own parameters, not the anomalib model's

    def __init__(self, params: AnomalibParams) -> None:
        super().__init__(params)
        if self.record.takes_timm_cnn:
            self._check_layers()
        else:
            self._refuse_packaged_backbones()
        self.module: AnomalibModule | None = None

    def _refuse_packaged_backbones(self) -> None:
        """ValueError for a packaged (timm CNN) backbone given to a model that takes other backbones."""
        for key in _BACKBONE_PARAMS:
            backbone = getattr(self.params, key, None)
            if isinstance(backbone, str) and is_packaged(backbone):
                able = ", ".join(r.name for r in RECORDS if r.takes_timm_cnn)
                raise ValueError(
                    f"{self.name} cannot use the packaged backbone {backbone}: it takes {self.record.backbones}. "
                    f"Models that take any timm CNN, packaged ones included: {able}"
                )

    def _check_layers(self) -> None:
        """ValueError naming the valid layers when ``layers`` / ``layer`` name modules the backbone lacks."""
        layers = getattr(self.params, "layers", None) or [getattr(self.params, "layer", None)]
        available = feature_modules(self.params.backbone)
        missing = [layer for layer in layers if isinstance(layer, str) and layer not in available]
        if missing:
            raise ValueError(
                f"{self.name}: backbone {self.params.backbone} has no feature module {', '.join(missing)}; "
                f"valid layers: {', '.join(available)}"
            )

    # -- building (public: subclasses such as patchcore_scalable build on them) ----------------
    def anomalib_kwargs(self) -> dict[str, Any]:
        """The anomalib constructor's arguments: the model's own parameters, the shared ones it accepts,
        no components but the pre-processor; a subclass's ``extra_params`` are left out."""
        own = {f.name for f in dataclasses.fields(AnomalibParams)} | self.extra_params
        accepted = inspect.signature(self.anomalib_class.__init__).parameters
        kwargs = {f.name: copy.deepcopy(getattr(self.params, f.name)) for f in dataclasses.fields(self.params)}
        kwargs = {k: v for k, v in kwargs.items() if k not in own or (k in _SHARED and k in accepted)}
        kwargs.update({c: False for c in _COMPONENTS if c != "pre_processor"})
        kwargs["pre_processor"] = _pre_processor(self.anomalib_class, self.params.image_size)
        return kwargs

    def build_module(self, choice: WeightChoice) -> AnomalibModule:
        """The anomalib module, its pretrained parts from ``choice`` (``RANDOM`` when a saved state_dict will
        overwrite them)."""
        kwargs = self.anomalib_kwargs()
        weights = self.record.weights
        with tempfile.TemporaryDirectory() as empty:
            if kwargs.get("dtd_dir", "") is None:
                kwargs["dtd_dir"] = empty  # no texture images: Perlin-noise anomaly sources
            if weights is Weights.ARCHIVE:
                return build_archive_model(self.name, choice, self.params, **kwargs)
            if weights is Weights.SWITCH:
                kwargs["pre_trained"] = False
            routed = anomalib_compat.routed_to(choice) if weights is Weights.HARD_CODED else nullcontext()
            with routed:
                module = self.anomalib_class(**kwargs)
        if weights is Weights.SWITCH:
            self._load_backbones(module, choice)
        return module

    @contextmanager
    def weights_hint(self) -> Iterator[None]:
        """A MissingWeightsError raised inside names this detector and says how to supply its weights."""
        try:
            yield
        except MissingWeightsError as error:
            raise MissingWeightsError(f"{self.name}: {error}{self.record.hint}") from error

    def weight_locations(self) -> list[Location]:
        """Where each pretrained file this model's build asks for would come from (builds it at random)."""
        survey = Survey(self.params.pretrained, self.params.weights)
        self.build_module(survey)
        return survey.found

    def _load_backbones(self, module: AnomalibModule, choice: WeightChoice) -> None:
        """Load the chosen file into each timm backbone of a model built with ``pre_trained=False``."""
        backbones = list(timm_models(module))
        if not backbones:
            raise RuntimeError(f"{self.name}: no timm backbone found; its record's weights should not be SWITCH")
        for backbone in backbones:
            file = choice.file(lambda: timm_location(timm_name(backbone)))  # noqa: B023 (called at once)
            if file is not None:
                load_timm_file(backbone, file)

    # -- Detector hooks ---------------------------------------------------------------------
    def _fit(self, images: np.ndarray) -> None:
        p = self.params
        device = torch_device(p.device)
        seed_everything(p.seed, workers=True, verbose=False)
        data = ArrayDataModule(to_tensor(images, p.image_size), p.batch_size)
        with self.weights_hint():
            self.module = self.build_module(WeightChoice(p.pretrained, p.weights))
            with tempfile.TemporaryDirectory() as workdir:
                # No validation pass after each epoch: the scores are the torch model's own
                # (``_predict``), so a pass over the training images per epoch only costs time
                # (STFPM on 60 images of 256², 2 CPU cores: 8.5 s an epoch with it, 3.7 s without).
                # Memory banks are built at the epoch's end, EfficientAD calibrates below.
                _engine(workdir, device, max_epochs=p.epochs, limit_val_batches=0).fit(self.module, datamodule=data)
                if self.record.calibrates_on_normal:
                    _engine(workdir, device).validate(self.module, datamodule=data)
        self.module.eval()

    def _predict(self, images: np.ndarray) -> Prediction:
        device = torch_device(self.params.device)
        module = self.module.to(device).eval()
        x = to_tensor(images, self.params.image_size)
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
        self.module = self.build_module(RANDOM)
        self.module.load_state_dict(torch.load(path / "model.pt", map_location="cpu", weights_only=True))
        self.module.eval()


def _engine(workdir: str, device: torch.device, **options: Any) -> Engine:
    """A bare anomalib engine on ``device`` (no checkpoints, loggers or progress bars)."""
    return Engine(
        default_root_dir=workdir,
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=[device.index or 0] if device.type == "cuda" else 1,
        barebones=True,
        **options,
    )


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


def _params_class(record: AnomalibModel, model_cls: type[AnomalibModule]) -> type:
    """``AnomalibParams`` plus the model's own keyword arguments (anomalib's defaults)."""
    # anomalib's own `pre_trained` is not a parameter: which weights a backbone starts from is
    # decided by `pretrained` / `weights` (see _build).
    skip = {"self", "pre_trained", *_COMPONENTS, *(f.name for f in dataclasses.fields(AnomalibParams))}
    overrides = dict(record.overrides)
    specs: list[tuple[str, Any, Any]] = []
    for arg in inspect.signature(model_cls.__init__).parameters.values():
        if arg.name in skip or arg.kind in (arg.VAR_POSITIONAL, arg.VAR_KEYWORD):
            continue
        default = _plain(overrides.get(arg.name, arg.default))
        mutable = isinstance(default, (list, dict))
        specs.append((arg.name, Any, field(default_factory=lambda d=default: copy.deepcopy(d)) if mutable else default))
    one_pass = 1 if issubclass(model_cls, MemoryBankMixin) else 100
    specs += [
        ("epochs", int, record.epochs if record.epochs is not None else one_pass),
        ("batch_size", int, record.batch_size),
        ("image_size", int, _default_image_size(model_cls)),
    ]
    return dataclasses.make_dataclass(f"{model_cls.__name__}Params", specs, bases=(AnomalibParams,))


def _register(record: AnomalibModel) -> None:
    model_cls = getattr(anomalib.models, record.class_name)
    attributes = {
        "name": record.name,
        "description": record.description,
        "yields_map": record.yields_map,
        "needs_weights": record.needs_weights,
        "Params": _params_class(record, model_cls),
        "record": record,
        "anomalib_class": model_cls,
        "cell_env": MEMORY_BANK_CELL_ENV if issubclass(model_cls, MemoryBankMixin) else {},
    }
    register(type(f"{record.class_name}Detector", (AnomalibDetector,), attributes))


for _record in RECORDS:
    _register(_record)
