"""Where a backbone's weights come from: one policy for every detector, and no network wait offline.

A backbone starts from one of three choices (``WeightChoice``):

* a local state_dict file (``weights=PATH``), which wins over everything else;
* its pretrained weights (``pretrained=True``): packaged in an installed pip package
  (``packaged``; no network, no user action), else the file in the library's own cache (Hugging
  Face hub for timm, torch hub for torchvision and for timm's URL weights), else downloaded into
  that cache when the network is reachable, else ``MissingWeightsError`` at once, naming the
  cache path to copy the file to;
* random initialisation (``pretrained=False``).

``Location`` says where one pretrained file is or would be, without downloading anything
(``Survey`` collects them for a whole model, for ``mkdata weights``). The
network is probed once per host and process (a bounded TCP connect, through the HTTPS proxy if
one is set); Hugging Face's documented offline switch ``HF_HUB_OFFLINE=1`` counts as offline for
the hub. Nothing here imports anomalib; timm and torchvision are imported where they are used.
"""

from __future__ import annotations

import functools
import socket
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlparse

if TYPE_CHECKING:
    from torchvision.models import WeightsEnum

PROBE_TIMEOUT_S = 3.0
HF_FILES = ("model.safetensors", "pytorch_model.bin")  # what timm asks the hub for, in its order

Status = Literal["file", "packaged", "cache", "download", "missing", "random"]


class MissingWeightsError(RuntimeError):
    """Pretrained weights (or a data set a model needs) are neither available locally nor downloadable."""


def network_available(url: str) -> bool:
    """True when a TCP connection to the URL's host (or to the HTTPS proxy, if one is set) opens."""
    proxy = urllib.request.getproxies().get("https")
    target = urlparse(proxy if proxy else url)
    return _probe(target.hostname or "", target.port or 443)


@functools.cache
def _probe(host: str, port: int) -> bool:
    """Connect within PROBE_TIMEOUT_S, in a daemon thread so that a slow DNS lookup cannot block longer."""
    result: list[bool] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(PROBE_TIMEOUT_S + 0.5)
    return bool(result and result[0])


@dataclass(frozen=True)
class Location:
    """Where one pretrained weight file is, or would be cached, and where it downloads from."""

    backbone: str  # e.g. "timm resnet18.a1_in1k", "torchvision ResNet18_Weights.IMAGENET1K_V1"
    status: Status
    path: Path  # the file (status file/packaged/cache), or where a copy of it must go
    url: str  # the download source ("" where there is none)
    download: Callable[[], Path] | None = field(default=None, compare=False, repr=False)
    hint: str = ""  # a further way to make the file available (e.g. a pip install)

    def fetch(self) -> Path:
        """The file: as it is, downloaded now (status "download"), or ``MissingWeightsError``."""
        if self.status == "download" and self.download is not None:
            return self.download()
        if self.status == "missing":
            raise MissingWeightsError(
                f"the weights of {self.backbone} are not in {self.path} and the network is unreachable "
                f"({self.url}). {self.remedy()}"
            )
        return self.path

    def remedy(self) -> str:
        """How to make this file available offline."""
        ways = [self.hint] if self.hint else []
        if self.url:
            ways.append(f"copy {self.path} from a connected machine that has it ({self.url}) to the same path")
        ways += ["pass weights=PATH (a local state_dict file of the backbone)", "pretrained=False (random initialisation)"]
        text = ", or ".join(ways)
        return text[0].upper() + text[1:]


def _locate_file(backbone: str, path: Path, url: str, download: Callable[[], Path]) -> Location:
    if path.is_file():
        return Location(backbone, "cache", path, url)
    status: Status = "download" if network_available(url) else "missing"
    return Location(backbone, status, path, url, download)


def _url_location(backbone: str, url: str) -> Location:
    """A file torch hub caches under <torch hub dir>/checkpoints (torchvision weights, timm URL weights)."""
    import torch.hub

    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name

    def download() -> Path:
        torch.hub.load_state_dict_from_url(url, progress=False, check_hash=True, map_location="cpu")
        return path

    return _locate_file(backbone, path, url, download)


def _hf_location(backbone: str, repo_id: str, filename: str | None) -> Location:
    """A file of a Hugging Face hub repository: cached (no network), downloadable, or missing."""
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import EntryNotFoundError

    repo, _, revision = repo_id.partition("@")
    candidates = (filename,) if filename else HF_FILES
    for name in candidates:
        cached = try_to_load_from_cache(repo, name, revision=revision or None)
        if isinstance(cached, str):
            return Location(backbone, "cache", Path(cached), f"{constants.ENDPOINT}/{repo}")
    url = f"{constants.ENDPOINT}/{repo}/resolve/{revision or 'main'}/{candidates[0]}"
    folder = Path(constants.HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}"

    def download() -> Path:
        for name in candidates:
            try:
                return Path(hf_hub_download(repo, name, revision=revision or None))
            except EntryNotFoundError:
                continue
        raise MissingWeightsError(f"{repo} holds none of {candidates}")

    online = not constants.HF_HUB_OFFLINE and network_available(constants.ENDPOINT)
    return Location(backbone, "download" if online else "missing", folder, url, download)


def timm_location(name: str) -> Location:
    """Where the pretrained weights for timm model ``name`` (``arch`` or ``arch.tag``) are: packaged
    ones first (for their architecture, whatever the tag), else timm's own (hub or URL)."""
    import timm

    from mkdata.benchmark.detectors.packaged import install_hint, packaged_location

    packaged = packaged_location(name)
    if packaged is not None:
        return packaged
    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None:
        raise ValueError(f"timm has no pretrained weights for {name!r}")
    backbone = f"timm {cfg.architecture}.{cfg.tag}" if cfg.tag else f"timm {cfg.architecture}"
    if cfg.hf_hub_id:
        location = _hf_location(backbone, cfg.hf_hub_id, cfg.hf_hub_filename)
    elif cfg.url:
        location = _url_location(backbone, cfg.url)
    else:
        raise ValueError(f"timm's pretrained config of {name!r} names no download source")
    return replace(location, hint=install_hint(name))


def torchvision_location(weights: WeightsEnum) -> Location:
    """Where a torchvision weights enum's file is (torch hub's checkpoint cache)."""
    return _url_location(f"torchvision {type(weights).__name__}.{weights.name}", weights.url)


@dataclass(frozen=True)
class WeightChoice:
    """What a backbone starts from: ``weights`` (a local file) wins, then ``pretrained``, else random."""

    pretrained: bool = True
    weights: str | None = None

    def __post_init__(self) -> None:
        if self.weights is not None and not Path(self.weights).is_file():
            raise ValueError(f"weights file {self.weights} does not exist")

    def file(self, locate: Callable[[], Location]) -> Path | None:
        """The state_dict file to load (``locate`` finds the pretrained one), or None for random weights."""
        if self.weights is not None:
            return Path(self.weights)
        return locate().fetch() if self.pretrained else None

    def source(self, locate: Callable[[], Location]) -> Location:
        """Where ``file`` would take the weights from, without downloading anything."""
        location = locate()
        if self.weights is not None:
            return replace(location, status="file", path=Path(self.weights))
        return location if self.pretrained else replace(location, status="random")


@dataclass(frozen=True)
class Survey(WeightChoice):
    """A choice that records where each weight file would come from (``found``) and loads none.

    Building a model with it (at random, no download) lists the files its build asks for.
    """

    found: list[Location] = field(default_factory=list, compare=False)

    def file(self, locate: Callable[[], Location]) -> Path | None:
        self.found.append(self.source(locate))
        return None


RANDOM = WeightChoice(pretrained=False)

__all__ = [
    "Location",
    "MissingWeightsError",
    "PROBE_TIMEOUT_S",
    "RANDOM",
    "Survey",
    "WeightChoice",
    "network_available",
    "timm_location",
    "torchvision_location",
]
