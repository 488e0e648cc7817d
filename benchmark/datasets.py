"""Reading one dataset category in the MVTec AD layout into lists the benchmark can use."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from mkdata.errors import BadInput
from mkdata.files import list_images


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int  # 0 normal, 1 defective
    defect_type: str  # "good" for normal images
    mask_path: Path | None = None

    def pixels(self, size: int) -> np.ndarray:
        """The image as size×size×3 uint8 (``resized``)."""
        return resized(Image.open(self.path), size)


@dataclass
class DatasetSplit:
    """Train (normal, maybe contaminated) and test samples of one category."""

    name: str
    root: Path
    train: list[Sample]
    test: list[Sample]
    contaminated: list[bool] = field(default_factory=list)  # per train sample: a moved defective?

    def __post_init__(self) -> None:
        if not self.contaminated:
            self.contaminated = [False] * len(self.train)


def read_category(root: str | Path) -> DatasetSplit:
    """train/good, test/<type>, ground_truth/<type>/<stem>_mask.png → a DatasetSplit."""
    root = Path(root)
    if not (root / "train" / "good").is_dir() or not (root / "test").is_dir():
        raise BadInput(f"{root} is not a dataset in the MVTec AD layout (needs train/good/ and test/)")
    train = [Sample(p, 0, "good") for p in list_images(root / "train" / "good")]
    test = []
    for type_dir in sorted(p for p in (root / "test").iterdir() if p.is_dir()):
        for image in list_images(type_dir):
            if type_dir.name == "good":
                test.append(Sample(image, 0, "good"))
            else:
                mask = root / "ground_truth" / type_dir.name / f"{image.stem}_mask.png"
                test.append(Sample(image, 1, type_dir.name, mask if mask.exists() else None))
    if not train:
        raise BadInput(f"{root}/train/good holds no images")
    return DatasetSplit(root.name, root, train, test)


def dataset_fingerprint(root: str | Path) -> str:
    """Hash of the dataset's content identity: its manifest if present, else the names and sizes of
    the images and masks the bench reads (``read_category``'s; folders behind links included)."""
    root = Path(root)
    digest = hashlib.sha256()
    manifest = root / "manifest.parquet"
    if manifest.exists():
        digest.update(manifest.read_bytes())
    else:
        split = read_category(root)
        for sample in [*split.train, *split.test]:
            for path in filter(None, (sample.path, sample.mask_path)):
                digest.update(f"{path.relative_to(root)}:{path.stat().st_size}".encode())
    return digest.hexdigest()[:16]


def resized(image: Image.Image, size: int) -> np.ndarray:
    """``image`` in RGB as size×size×3 uint8 (bilinear resize when needed)."""
    image = image.convert("RGB")
    return np.asarray(image if image.size == (size, size) else image.resize((size, size), Image.BILINEAR))


def load_array(samples: Sequence[Sample], size: int) -> np.ndarray:
    """N×size×size×3 uint8 images, each its sample's ``pixels`` (a synthesised anomaly's edited ones)."""
    out = np.empty((len(samples), size, size, 3), np.uint8)
    for i, sample in enumerate(samples):
        out[i] = sample.pixels(size)
    return out


@dataclass(frozen=True)
class SampleImages:
    """The images of ``samples`` at size×size, decoded only when asked: ``load`` decodes them all
    (``load_array``); indexing by an index array or a slice gives the subset, still undecoded
    (``detectors.images.ImageBatches`` decodes one batch of it at a time)."""

    samples: tuple[Sample, ...]
    size: int

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: slice | np.ndarray | Sequence[int]) -> SampleImages:
        return SampleImages(tuple(self.samples[i] for i in np.arange(len(self.samples))[index]), self.size)

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of every image, known before any is decoded."""
        return (self.size, self.size)

    def load(self) -> np.ndarray:
        """The N×size×size×3 uint8 array of the images."""
        return load_array(self.samples, self.size)


def load_masks(samples: list[Sample], size: int) -> np.ndarray:
    """N×size×size uint8 0/1 masks (nearest resize); normal or unmasked samples get zeros."""
    out = np.zeros((len(samples), size, size), np.uint8)
    for i, sample in enumerate(samples):
        if sample.mask_path is not None:
            mask = Image.open(sample.mask_path).convert("L")
            out[i] = np.asarray(mask if mask.size == (size, size) else mask.resize((size, size), Image.NEAREST)) > 0
    return out
