"""The one interface every detector implements, and the registry that builds them by name.

A detector is built from a registry name plus keyword parameters (validated against the
detector's ``Params`` dataclass), fitted on normal training images and asked for per-image
scores (higher = more anomalous) and, where the method has one, per-pixel anomaly maps at image
resolution.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

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
    scores_in_sample: ClassVar[bool] = False  # train_scores reuses the detector's own fit (no k-fold refits)
    Params: ClassVar[type] = CommonParams

    def __init__(self, params: Any) -> None:
        self.params = params
        self.image_shape: tuple[int, int] | None = None  # (H, W) of the fitted training images

    # -- public API -------------------------------------------------------------------------
    def fit(self, images: ImageSource) -> "Detector":
        """Fit on normal training images (paths, a folder, or an N×H×W×3 uint8 array)."""
        array = load_images(images)
        if len(array) == 0:
            raise ValueError(f"{self.name}: the training set is empty")
        self.image_shape = array.shape[1:3]
        self._fit(array)
        return self

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
        """Out-of-sample scores of the training images by k-fold refits (for IRP-style ranking).

        Memory-bank methods would score every training image ~0 in-sample; each fold is scored by
        a fresh detector fitted on the other folds. Subclasses whose in-sample score is honest
        (reconstruction models, flows) may override with a cheaper in-sample pass.
        """
        array = load_images(images)
        n = len(array)
        if n < 2:
            raise ValueError(f"{self.name}: need at least 2 training images for out-of-sample scores")
        folds = min(folds, n)
        order = np.random.default_rng(self.params.seed).permutation(n)
        scores = np.empty(n)
        for fold in np.array_split(order, folds):
            rest = np.setdiff1d(order, fold)
            clone = type(self)(dataclasses.replace(self.params))
            scores[fold] = clone.fit(array[rest]).predict(array[fold]).scores
        return scores

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


__all__ = ["CommonParams", "Detector", "Prediction", "field", "param_defaults", "resolve_device"]
