"""The one interface every detector implements, and the registry that builds them by name.

A detector is built from a registry name plus keyword parameters (validated against the
detector's ``Params`` dataclass), fitted on normal training images and asked for per-image
scores (higher = more anomalous) and, where the method has one, per-pixel anomaly maps at image
resolution.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

import numpy as np

from mkdata.benchmark.datasets import SampleImages
from mkdata.benchmark.detectors.images import ImageSource, load_images


@dataclass(frozen=True)
class Prediction:
    """What ``Detector.predict`` returns.

    ``scores``: shape (N,), float64, higher = more anomalous.
    ``maps``: shape (N, H, W), float32 at the input images' resolution, or None for image-level
    methods.
    """

    scores: np.ndarray
    maps: np.ndarray | None = None


TrainScoring = Literal["in_sample", "out_of_fold"]
"""How ``Detector.train_scores`` scores training images.

``"out_of_fold"``: k-fold, each fold scored by a fresh detector fitted on the other folds (memory
banks, whose in-sample scores are ~0, and any model whose in-sample scores are biased low).
``"in_sample"``: by the detector fitted on all of them (reconstruction models and flows, which
model the training distribution rather than store its images).
"""


@dataclass
class CommonParams:
    """Parameters every detector accepts."""

    device: str = "auto"  # "auto" (cuda if available), "cpu", "cuda", "cuda:1", ...
    seed: int = 0
    image_size: int = 256  # images are resized to image_size² before the model sees them


class Detector(ABC):
    """Base class: subclasses set the class attributes, define ``Params`` and the three hooks."""

    name: ClassVar[str]
    description: ClassVar[str]
    yields_map: ClassVar[bool]
    needs_weights: ClassVar[bool] = False
    train_scoring: ClassVar[TrainScoring] = "out_of_fold"  # the one declaration train_scores dispatches on
    streams_fit: ClassVar[bool] = False  # fit and _scores decode a SampleImages batch by batch, so keep it undecoded
    cell_env: ClassVar[Mapping[str, str]] = {}  # environment a bench cell of this detector starts with (runner.cell_environment)
    Params: ClassVar[type] = CommonParams

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.train_scoring not in get_args(TrainScoring):
            raise TypeError(f"{cls.__name__}.train_scoring must be one of {get_args(TrainScoring)}, got {cls.train_scoring!r}")

    def __init__(self, params: Any) -> None:
        self.params = params
        self.image_shape: tuple[int, int] | None = None  # (H, W) of the fitted training images
        self._fitted_on: str | None = None  # digest of the training array, for in-sample train_scores

    # -- public API -------------------------------------------------------------------------
    def fit(self, images: ImageSource) -> "Detector":
        """Fit on normal training images (paths, a folder, or an N×H×W×3 uint8 array)."""
        array = load_images(images)
        self._begin_fit(len(array), array.shape[1:3])
        self._fit(array)
        self._fitted_on = _digest(array)
        return self

    def _begin_fit(self, count: int, shape: tuple[int, int]) -> None:
        """Check and record a training set of ``count`` images of ``shape`` (H, W), before ``_fit``
        (a detector that overrides ``fit`` to stream its images calls it too)."""
        if count == 0:
            raise ValueError(f"{self.name}: the training set is empty")
        self.image_shape = shape

    def predict(self, images: ImageSource) -> Prediction:
        """Score images; maps (if any) come back at the images' own resolution."""
        if self.image_shape is None:
            raise RuntimeError(f"{self.name}: call fit() before predict()")
        array = load_images(images)
        if len(array) == 0:
            return Prediction(np.zeros(0), np.zeros((0, *array.shape[1:3]), np.float32) if self.yields_map else None)
        if array.shape[1:3] != self.image_shape:
            raise ValueError(
                f"{self.name}: images are {array.shape[1]}×{array.shape[2]} but the detector was "
                f"fitted on {self.image_shape[0]}×{self.image_shape[1]}"
            )
        return self._predict(array)

    def train_scores(self, images: ImageSource, folds: int = 5) -> np.ndarray:
        """Scores of the training images, for IRP-style ranking and the unsupervised threshold.

        Dispatched on the class's ``train_scoring``. ``"out_of_fold"``: ``folds`` fresh detectors,
        each fitted on the other folds, score one fold each; this detector is left as it is.
        ``"in_sample"`` (``folds`` ignored): this detector scores them if it was fitted on exactly
        these images; an unfitted one fits itself on them first (so a caller can keep that fit);
        one fitted on other images leaves it to a fresh detector fitted on them.
        A ``SampleImages`` given to a ``streams_fit`` detector scored out of fold stays undecoded (the
        folds are its subsets); any other source is decoded into one array first.
        """
        if self.train_scoring == "in_sample":
            return self._in_sample_scores(load_images(images))
        lazy = self.streams_fit and isinstance(images, SampleImages)
        return self._out_of_fold_scores(images if lazy else load_images(images), folds)

    def _fresh(self) -> "Detector":
        """An unfitted detector of the same class and parameters."""
        return type(self)(dataclasses.replace(self.params))

    def _in_sample_scores(self, array: np.ndarray) -> np.ndarray:
        if self.image_shape is None:
            self.fit(array)
        fitted = self if self._fitted_on == _digest(array) else self._fresh().fit(array)
        return fitted.predict(array).scores

    def _out_of_fold_scores(self, array: np.ndarray | SampleImages, folds: int) -> np.ndarray:
        n = len(array)
        if n < 2:
            raise ValueError(f"{self.name}: need at least 2 training images for out-of-sample scores")
        folds = min(folds, n)
        order = np.random.default_rng(self.params.seed).permutation(n)
        scores = np.empty(n)
        for fold in np.array_split(order, folds):
            rest = np.setdiff1d(order, fold)
            scores[fold] = self._fresh().fit(array[rest])._scores(array[fold])
        return scores

    def _scores(self, images: ImageSource) -> np.ndarray:
        """``predict(images).scores`` (a ``streams_fit`` detector predicts them batch by batch)."""
        return self.predict(images).scores

    def save(self, path: str | Path) -> None:
        """Save to a directory: params.json plus the detector's state."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = {"name": self.name, "params": dataclasses.asdict(self.params), "image_shape": self.image_shape}
        (path / "params.json").write_text(json.dumps(meta, indent=2))
        self._save_state(path)

    @classmethod
    def load(cls, path: str | Path) -> "Detector":
        """Load a detector saved with ``save`` (call on ``Detector`` or the concrete class)."""
        from mkdata.benchmark.detectors.registry import create

        path = Path(path)
        meta = json.loads((path / "params.json").read_text())
        detector = create(meta["name"], **meta["params"])
        detector.image_shape = tuple(meta["image_shape"]) if meta["image_shape"] else None
        detector._load_state(path)
        return detector

    # -- hooks for subclasses ---------------------------------------------------------------
    @abstractmethod
    def _fit(self, images: np.ndarray) -> None:
        """Fit on an N×H×W×3 uint8 array."""

    @abstractmethod
    def _predict(self, images: np.ndarray) -> Prediction:
        """Score an N×H×W×3 uint8 array."""

    def _save_state(self, path: Path) -> None:
        """Default: pickle the instance's __dict__ (override for torch modules)."""
        with open(path / "state.pkl", "wb") as fh:
            pickle.dump({k: v for k, v in self.__dict__.items() if k != "params"}, fh)

    def _load_state(self, path: Path) -> None:
        with open(path / "state.pkl", "rb") as fh:
            self.__dict__.update(pickle.load(fh))


def _digest(images: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(images).data).hexdigest()


def resolve_device(device: str) -> str:
    """'auto' → 'cuda' when torch sees a GPU, else 'cpu'; anything else is returned as is."""
    if device != "auto":
        return device
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def param_defaults(params_cls: type) -> dict[str, Any]:
    """Default values of a Params dataclass, for listings."""
    out = {}
    for f in dataclasses.fields(params_cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            out[f.name] = f.default_factory()  # type: ignore[misc]
    return out


__all__ = ["CommonParams", "Detector", "Prediction", "TrainScoring", "field", "param_defaults", "resolve_device"]
