"""Classical baselines of the IAAE paper's table: OC-SVM, LOF, k-means and 1-NN (scikit-learn).

Each image becomes one feature vector: the image downsampled to ``image_size``² (RGB in [0, 1],
flattened; default 32²), or, with ``features="cnn"``, the spatially averaged feature maps of a
frozen torchvision backbone (``nets.BACKBONE_NODES``; ImageNet weights unless ``pretrained=False``
or ``weights=PATH``) at ``image_size``². Image score only. Training-set scores use the base
class's k-fold refits (these models memorise their training vectors). ``save`` keeps the fitted
estimator; the backbone is rebuilt from the parameters on load (seeded when random).
"""

from __future__ import annotations

import pickle
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.neighbors import LocalOutlierFactor, NearestNeighbors
from sklearn.svm import OneClassSVM

from mkdata.benchmark.detectors.base import CommonParams, Detector, Prediction
from mkdata.benchmark.detectors.nets import FeatureExtractor, backbone_from_params, backbone_locations
from mkdata.benchmark.detectors.registry import register
from mkdata.benchmark.detectors.torch_training import batched, seeded, to_tensor, torch_device
from mkdata.benchmark.detectors.weights import Location

FEATURE_KINDS = ("pixels", "cnn")


@dataclass
class ClassicalParams(CommonParams):
    image_size: int = 32
    features: str = "pixels"  # "pixels" (downsampled image) or "cnn" (pooled backbone features)
    backbone: str = "resnet18"
    pretrained: bool = True
    weights: str | None = None


class ClassicalDetector(Detector):
    """Shared feature extraction, fit and save/load; subclasses pick the estimator and its score."""

    Params = ClassicalParams
    yields_map = False

    def __init__(self, params: ClassicalParams) -> None:
        super().__init__(params)
        if params.features not in FEATURE_KINDS:
            raise ValueError(f"features must be one of {FEATURE_KINDS}, got {params.features!r}")
        if params.image_size < 1:
            raise ValueError(f"image_size must be positive, got {params.image_size}")
        self.estimator: Any = None
        self._extractor: FeatureExtractor | None = None  # built lazily, never pickled

    def weight_locations(self) -> list[Location]:
        """Where the CNN backbone's weights would come from (none for pixel features)."""
        return backbone_locations(self.params) if self.params.features == "cnn" else []

    def features(self, images: np.ndarray) -> np.ndarray:
        """One float64 feature vector per image (N, D)."""
        x = to_tensor(images, self.params.image_size)
        if self.params.features == "pixels":
            return x.flatten(1).double().numpy()
        device = torch_device(self.params.device)
        if self._extractor is None:
            with seeded(self.params.seed, device):  # random init when pretrained=False is seeded too
                self._extractor = backbone_from_params(self.params).to(device)

        def pooled(batch: torch.Tensor) -> torch.Tensor:
            return torch.cat([f.mean(dim=(2, 3)) for f in self._extractor(batch)], 1)

        return batched(pooled, x, 32, device).double().numpy()

    def _fit(self, images: np.ndarray) -> None:
        self.estimator = self._estimator(len(images)).fit(self.features(images))

    def _predict(self, images: np.ndarray) -> Prediction:
        return Prediction(np.asarray(self._anomaly(self.features(images)), dtype=np.float64))

    def _save_state(self, path: Path) -> None:
        with open(path / "estimator.pkl", "wb") as fh:
            pickle.dump(self.estimator, fh)

    def _load_state(self, path: Path) -> None:
        with open(path / "estimator.pkl", "rb") as fh:
            self.estimator = pickle.load(fh)

    @abstractmethod
    def _estimator(self, n_train: int) -> Any:
        """An unfitted scikit-learn estimator for ``n_train`` training vectors."""

    @abstractmethod
    def _anomaly(self, features: np.ndarray) -> np.ndarray:
        """Scores, higher = more anomalous."""


@dataclass
class OCSVMParams(ClassicalParams):
    nu: float = 0.1
    gamma: str = "scale"


@register
class OCSVM(ClassicalDetector):
    name = "ocsvm"
    description = "One-class SVM (RBF) on downsampled images or pooled CNN features"
    Params = OCSVMParams

    def _estimator(self, n_train: int) -> Any:
        return OneClassSVM(kernel="rbf", nu=self.params.nu, gamma=self.params.gamma)

    def _anomaly(self, features: np.ndarray) -> np.ndarray:
        return -self.estimator.decision_function(features)


@dataclass
class LOFParams(ClassicalParams):
    n_neighbors: int = 20


@register
class LOF(ClassicalDetector):
    name = "lof"
    description = "Local outlier factor (novelty mode) on downsampled images or pooled CNN features"
    Params = LOFParams

    def _estimator(self, n_train: int) -> Any:
        return LocalOutlierFactor(n_neighbors=max(1, min(self.params.n_neighbors, n_train - 1)), novelty=True)

    def _anomaly(self, features: np.ndarray) -> np.ndarray:
        return -self.estimator.score_samples(features)


@dataclass
class KMeansParams(ClassicalParams):
    n_clusters: int = 8


@register
class KMeansDetector(ClassicalDetector):
    name = "kmeans"
    description = "Distance to the nearest k-means centre, on downsampled images or pooled CNN features"
    Params = KMeansParams

    def _estimator(self, n_train: int) -> Any:
        return KMeans(n_clusters=min(self.params.n_clusters, n_train), n_init=10, random_state=self.params.seed)

    def _anomaly(self, features: np.ndarray) -> np.ndarray:
        return self.estimator.transform(features).min(1)


@register
class KNN(ClassicalDetector):
    name = "knn"
    description = "Distance to the nearest training image (1-NN), on downsampled images or pooled CNN features"

    def _estimator(self, n_train: int) -> Any:
        return NearestNeighbors(n_neighbors=1)

    def _anomaly(self, features: np.ndarray) -> np.ndarray:
        return self.estimator.kneighbors(features)[0][:, 0]
