"""``patchcore_scalable``: anomalib's PatchCore with a memory bank and coreset that scale with the data.

It is the ``patchcore`` detector (same parameters, same anomalib model, pre-processing and weight
policy) with three parts replaced:

* fitting streams: training images given as files (a folder or paths) or as a bench cell's
  ``datasets.SampleImages`` are decoded ``batch_size`` at a time (an array is sliced the same
  way), and so are the held-out folds of out-of-fold training scores (``streams_fit``); each
  batch's patch embeddings (anomalib's feature extractor, 3×3 average pooling and layer
  concatenation) go to a float16 ``MemoryBank`` that spills to disk past ``bank_ram_mb``, and
  their random projection to ``projection_dim`` dimensions to a float32 one that spills past
  ``projection_ram_mb`` (on CUDA: kept on the device while it takes at most half its free
  memory); anomalib instead decodes every image first and stacks every float32 embedding in RAM
  (twice, during ``vstack``);
* the coreset is the PatchCore paper's approximate greedy (``benchmark.coreset``) on those
  projections, on the detector's device (read in row chunks on every pick when they are on disk);
  only the picked rows are read back from the bank;
* test patches find their nearest coreset patch with faiss (``search="faiss"``, exact L2 on the
  CPU) or anomalib's chunked torch search (``"torch"``, also on a GPU); ``"auto"`` takes faiss on
  the CPU, torch on CUDA. Image scores (the paper's reweighting) and maps (upsampling, Gaussian
  blur σ=4) are anomalib's own ``compute_anomaly_score`` and ``anomaly_map_generator``.

The fitted state is anomalib's: the coreset is the model's ``memory_bank``, so save/load is the
``patchcore`` detector's.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from mkdata.benchmark.coreset import PROJECTION_DIM, STARTING_POINTS, approximate_greedy, coreset_size, random_projection
from mkdata.benchmark.detectors.anomalib_data import to_tensor
from mkdata.benchmark.detectors.base import Prediction
from mkdata.benchmark.detectors.images import ImageBatches, ImageSource
from mkdata.benchmark.detectors.registry import detector_class, register
from mkdata.benchmark.detectors.torch_training import seeded, to_image_resolution, torch_device
from mkdata.benchmark.detectors.weights import WeightChoice
from mkdata.benchmark.memory_bank import MemoryBank

_SEARCHES = ("auto", "faiss", "torch")
_Patchcore = detector_class("patchcore")


@dataclass
class ScalableParams(_Patchcore.Params):  # type: ignore[name-defined,misc]
    """``patchcore``'s parameters plus the bank, projection and search settings."""

    bank_ram_mb: float = 1024.0  # a float16 bank larger than this is written to disk
    bank_dir: str | None = None  # where a bank on disk goes (None: the system's temporary folder)
    projection_ram_mb: float | None = None  # float32 projections larger than this go to disk (None: bank_ram_mb)
    projection_dim: int = PROJECTION_DIM  # dimensions the coreset's distances are computed in
    starting_points: int = STARTING_POINTS  # random start points of the approximate greedy
    search: str = "auto"  # nearest-neighbour search of test patches: "auto", "faiss" or "torch"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.coreset_sampling_ratio <= 1:
            raise ValueError(f"coreset_sampling_ratio must be in (0, 1], got {self.coreset_sampling_ratio}")
        for name in ("projection_dim", "starting_points"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("bank_ram_mb", "projection_ram_mb"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.search not in _SEARCHES:
            raise ValueError(f"search must be one of {_SEARCHES}, got {self.search!r}")


@register
class ScalablePatchcore(_Patchcore):  # type: ignore[misc,valid-type]
    name = "patchcore_scalable"
    description = (
        "PatchCore with a streamed float16 memory bank (disk past a RAM budget), the paper's approximate "
        "greedy coreset on 128-d projections, and faiss nearest-neighbour search"
    )
    Params = ScalableParams
    extra_params = frozenset(f.name for f in fields(ScalableParams)) - frozenset(f.name for f in fields(_Patchcore.Params))
    streams_fit = True

    def __init__(self, params: ScalableParams) -> None:
        super().__init__(params)
        self._index = None  # faiss index over the coreset, built on first use

    def fit(self, images: ImageSource) -> ScalablePatchcore:
        """``Detector.fit`` that streams: image files are decoded ``batch_size`` at a time, never all at once."""
        batches = ImageBatches(images, self.params.batch_size)
        self._begin_fit(len(batches), batches.shape)
        self._fit(batches)
        self._fitted_on = batches.digest
        return self

    def _scores(self, images: ImageSource) -> np.ndarray:
        """Image scores, predicted ``batch_size`` images at a time (``_predict``'s own batches, so the same scores)."""
        batches = ImageBatches(images, self.params.batch_size)
        return np.concatenate([np.zeros(0), *(self.predict(batch).scores for batch in batches)])

    def _fit(self, images: np.ndarray | ImageBatches) -> None:
        p = self.params
        batches = images if isinstance(images, ImageBatches) else ImageBatches(images, p.batch_size)
        device = torch_device(p.device)
        with self.weights_hint():
            self.module = self.build_module(WeightChoice(p.pretrained, p.weights))
        model = self.module.model.to(device).eval()
        bank, projected, projection = None, None, None
        with torch.no_grad():
            for batch in batches:
                embedding = model.reshape_embedding(self._embed(batch, device))
                if bank is None:
                    rows = len(batches) * (len(embedding) // len(batch))
                    bank = MemoryBank(rows, embedding.shape[1], p.bank_ram_mb * 2**20, p.bank_dir)
                    projected = self._projection_bank(rows, device)
                    projection = random_projection(embedding.shape[1], p.projection_dim, p.seed, device)
                projected.append(embedding @ projection)
                bank.append(embedding)
            size = coreset_size(rows, p.coreset_sampling_ratio)
            picks = approximate_greedy(projected if projected.on_disk else projected.tensor(), size, p.seed,
                                       p.starting_points, device)  # fmt: skip
            projected.close()
            model.memory_bank = bank.take(picks).to(device)
        bank.close()
        self._index = None

    def _projection_bank(self, rows: int, device: torch.device) -> MemoryBank:
        """Room for ``rows`` float32 projections: on a CUDA device while they take at most half its free
        memory, else in RAM up to ``projection_ram_mb`` (None: ``bank_ram_mb``), else on disk."""
        p = self.params
        size = rows * p.projection_dim * torch.float32.itemsize
        if device.type == "cuda" and size <= torch.cuda.mem_get_info(device)[0] / 2:
            return MemoryBank(rows, p.projection_dim, size, dtype=torch.float32, device=device)
        budget = p.bank_ram_mb if p.projection_ram_mb is None else p.projection_ram_mb
        return MemoryBank(rows, p.projection_dim, budget * 2**20, p.bank_dir, dtype=torch.float32)

    def _embed(self, images: np.ndarray, device: torch.device) -> torch.Tensor:
        """B×D×h×w patch embeddings, as anomalib's PatchcoreModel.forward computes them."""
        model = self.module.model
        batch = self.module.pre_processor.transform(to_tensor(images, self.params.image_size).to(device))
        features = model.feature_extractor(batch.type(model.memory_bank.dtype))
        return model.generate_embedding({layer: model.feature_pooler(f) for layer, f in features.items()})

    def _search(self) -> str:
        if self.params.search != "auto":
            return self.params.search
        return "torch" if self.module.model.memory_bank.device.type == "cuda" else "faiss"

    def _nearest(self, embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Distance to, and index of, each patch's nearest coreset patch."""
        model = self.module.model
        if self._search() == "torch":
            scores, locations = model.nearest_neighbors(embedding, n_neighbors=1)
            return scores, locations
        if self._index is None:
            import faiss

            self._index = faiss.IndexFlatL2(model.memory_bank.shape[1])
            self._index.add(model.memory_bank.cpu().numpy())
        squared, locations = self._index.search(embedding.cpu().numpy(), 1)
        device = embedding.device
        return torch.from_numpy(squared[:, 0]).clamp_min_(0).sqrt_().to(device), torch.from_numpy(locations[:, 0]).to(device)

    def _predict(self, images: np.ndarray) -> Prediction:
        device = torch_device(self.params.device)
        model = self.module.to(device).eval().model
        scores, maps = [], []
        with torch.no_grad(), seeded(self.params.seed, device):
            for start in range(0, len(images), self.params.batch_size):
                embedding = self._embed(images[start : start + self.params.batch_size], device)
                batch, _, height, width = embedding.shape
                embedding = model.reshape_embedding(embedding)
                patch_scores, locations = self._nearest(embedding)
                patch_scores, locations = patch_scores.reshape(batch, -1), locations.reshape(batch, -1)
                scores.append(model.compute_anomaly_score(patch_scores, locations, embedding).double().cpu())
                size = (self.params.image_size, self.params.image_size)
                maps.append(model.anomaly_map_generator(patch_scores.reshape(batch, 1, height, width), size)[:, 0].cpu())
        return Prediction(torch.cat(scores).numpy(), to_image_resolution(torch.cat(maps), images.shape[1:3]))

    def _load_state(self, path: Path) -> None:
        super()._load_state(path)
        self._index = None
