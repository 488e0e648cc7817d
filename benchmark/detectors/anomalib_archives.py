"""EfficientAD and DSR, whose pretrained parts come from anomalib's own archives, with the file injected.

anomalib downloads EfficientAD's teacher and DSR's VQ codebook itself, in ``on_train_start``.
These subclasses take the file through the constructor instead (``weights_file``: anomalib's
cached copy, a local file, or None for random initialisation) and override the one method that
fetches it, so training never downloads. ``archive_location`` says where anomalib keeps the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from anomalib.data.utils import download_and_extract
from anomalib.models import Dsr, EfficientAd
from anomalib.models.image.dsr.lightning_model import WEIGHTS_DOWNLOAD_INFO as DSR_ARCHIVE
from anomalib.models.image.efficient_ad.lightning_model import IMAGENETTE_DOWNLOAD_INFO
from anomalib.models.image.efficient_ad.lightning_model import WEIGHTS_DOWNLOAD_INFO as EFFICIENT_AD_ARCHIVE
from anomalib.utils.path import get_pretrained_weights_dir

from mkdata.benchmark.detectors.weights import Location, MissingWeightsError, WeightChoice, network_available


class EfficientAdWithTeacher(EfficientAd):
    """EfficientAd whose teacher loads ``weights_file`` (None: stays random)."""

    def __init__(self, weights_file: Path | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.weights_file = weights_file

    def prepare_pretrained_model(self) -> None:
        if self.weights_file is not None:
            state = torch.load(self.weights_file, map_location=torch.device(self.device), weights_only=True)
            self.model.teacher.load_state_dict(state)

    def prepare_imagenette_data(self, image_size: tuple[int, int] | torch.Size) -> None:
        """anomalib's, which downloads ImageNette when ``imagenet_dir`` is missing; offline that fails at once."""
        if not self.imagenet_dir.is_dir() and not network_available(IMAGENETTE_DOWNLOAD_INFO.url):
            raise MissingWeightsError(
                f"EfficientAd's penalty images {self.imagenet_dir} are missing and the network is unreachable"
            )
        super().prepare_imagenette_data(image_size)


class DsrWithCodebook(Dsr):
    """Dsr whose discrete latent model (VQ codebook) loads ``weights_file`` (None: stays random)."""

    def __init__(self, weights_file: Path | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.weights_file = weights_file

    def prepare_pretrained_model(self) -> Path | None:  # anomalib's is a staticmethod that downloads
        return self.weights_file

    def on_train_start(self) -> None:
        # anomalib's loads the codebook unconditionally (after checking that the pre-processor does
        # not normalise, which holds for the model's default pre-processing used here).
        if self.weights_file is not None:
            super().on_train_start()


ARCHIVE_MODELS: dict[str, type] = {"efficient_ad": EfficientAdWithTeacher, "dsr": DsrWithCodebook}


def archive_location(name: str, params: Any) -> Location:
    """Where anomalib keeps model ``name``'s pretrained file, downloading it (with anomalib's code) when online."""
    root = get_pretrained_weights_dir()
    if name == "efficient_ad":
        info, folder = EFFICIENT_AD_ARCHIVE, root
        size = getattr(params.model_size, "value", params.model_size)
        path = root / "efficientad_pretrained_weights" / f"pretrained_teacher_{size}.pth"
    elif name == "dsr":
        info, folder = DSR_ARCHIVE, root / "dsr"
        path = folder / "vq_model_pretrained_128_4096.pckl"
    else:
        raise ValueError(f"{name} has no anomalib weight archive; models with one: {', '.join(ARCHIVE_MODELS)}")
    backbone = f"anomalib {info.name}"
    if path.is_file():
        return Location(backbone, "cache", path, info.url)

    def download() -> Path:
        download_and_extract(folder, info)
        return path

    return Location(backbone, "download" if network_available(info.url) else "missing", path, info.url, download)


def build_archive_model(name: str, choice: WeightChoice, params: Any, **kwargs: Any) -> Any:
    """The subclass for ``name`` with the file ``choice`` picks (a missing file fails here, before training)."""
    return ARCHIVE_MODELS[name](weights_file=choice.file(lambda: archive_location(name, params)), **kwargs)
