"""Where the backbones of wrapped anomalib models get their weights, without ever hanging offline.

Two context managers, used around building and training an anomalib model:

* ``backbone_weights(pretrained, weights)`` decides what a backbone starts from: its pretrained
  ImageNet weights (``pretrained=True``, the libraries' own loading: timm, torchvision), a local
  state_dict file (``weights=PATH``), or random initialisation (``pretrained=False``). It works on
  every ``timm.create_model`` and torchvision weight load inside the block, so it also covers
  backbones that anomalib builds with a hard-coded ``pretrained=True`` (STFPM's teacher, U-Flow).
* ``offline_guard()`` makes every download inside the block (Hugging Face hub, torch hub,
  anomalib's own archives) check the network first with a short, bounded probe. Files already in
  the local caches are used without any network access; a missing file with no network raises
  ``MissingWeightsError`` at once, instead of timm's ~50 s of retries.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlparse

import timm
import timm.models._hub as timm_hub  # where timm downloads (hf_hub_download, download_url_to_file)
import torch
import torch.hub
import torchvision
from anomalib.data.utils import download as anomalib_download
from anomalib.utils.path import get_pretrained_weights_dir
from huggingface_hub import constants as hf_constants
from huggingface_hub.errors import LocalEntryNotFoundError
from torchvision.models import WeightsEnum

PROBE_TIMEOUT_S = 3.0


class MissingWeightsError(RuntimeError):
    """Pretrained weights (or a data set a model needs) are neither cached locally nor downloadable."""


def cache_locations() -> str:
    """Where the libraries look for weights before downloading (for error messages)."""
    return (
        f"Hugging Face hub cache {hf_constants.HF_HUB_CACHE} (timm), "
        f"torch hub {Path(torch.hub.get_dir()) / 'checkpoints'} (torchvision, timm URLs), "
        f"anomalib {get_pretrained_weights_dir()} (EfficientAd teacher, DSR codebook)"
    )


def _reachable(url: str) -> bool:
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


def _hf_offline() -> bool:
    return bool(hf_constants.HF_HUB_OFFLINE) or not _reachable(hf_constants.ENDPOINT)


def _require_network(url: str, destination: object) -> None:
    if not _reachable(url):
        raise MissingWeightsError(f"{url} is not in the local cache ({destination}) and the network is unreachable")


def _guarded_hf_download(original: Callable[..., Any]) -> Callable[..., Any]:
    def download(*args: Any, **kwargs: Any) -> Any:
        if _hf_offline():
            kwargs["local_files_only"] = True  # cache hit or an immediate LocalEntryNotFoundError
        return original(*args, **kwargs)

    return download


def _guarded_url_download(original: Callable[..., Any]) -> Callable[..., Any]:
    def download(url: str, dst: Any, *args: Any, **kwargs: Any) -> Any:
        _require_network(url, dst)
        return original(url, dst, *args, **kwargs)

    return download


def _guarded_urlretrieve(original: Callable[..., Any]) -> Callable[..., Any]:
    def retrieve(url: str, filename: Any = None, *args: Any, **kwargs: Any) -> Any:
        _require_network(url, Path(filename).parent if filename else "?")
        return original(url, filename, *args, **kwargs)

    return retrieve


@contextmanager
def offline_guard() -> Iterator[None]:
    """Inside the block downloads fail fast with ``MissingWeightsError`` when there is no network."""
    with ExitStack() as stack:
        hf_download = _guarded_hf_download(timm_hub.hf_hub_download)
        stack.enter_context(mock.patch.object(timm_hub, "hf_hub_download", hf_download))
        for module in (torch.hub, timm_hub):
            original = module.download_url_to_file
            stack.enter_context(mock.patch.object(module, "download_url_to_file", _guarded_url_download(original)))
        original = anomalib_download.urlretrieve
        stack.enter_context(mock.patch.object(anomalib_download, "urlretrieve", _guarded_urlretrieve(original)))
        try:
            yield
        except LocalEntryNotFoundError as error:  # timm asked the HF cache for a file it does not hold
            raise MissingWeightsError(f"{error} (network unreachable)") from error


def _random_torchvision_state(weights: WeightsEnum) -> dict[str, torch.Tensor]:
    """A randomly initialised state_dict of the architecture ``weights`` belongs to."""
    for name in torchvision.models.list_models():
        if torchvision.models.get_model_weights(name) is type(weights):
            num_classes = len(weights.meta["categories"])
            return torchvision.models.get_model(name, weights=None, num_classes=num_classes).state_dict()
    raise ValueError(f"no torchvision architecture uses {weights}")


@contextmanager
def backbone_weights(pretrained: bool, weights: str | Path | None) -> Iterator[None]:
    """Inside the block, every backbone that asks for pretrained weights gets them from the chosen source.

    ``weights`` (a local state_dict file, e.g. ``torch.save(timm.create_model(name,
    pretrained=True).state_dict(), PATH)``) wins over ``pretrained``; ``pretrained=False`` leaves
    backbones randomly initialised; otherwise timm/torchvision load their defaults (cache first).
    """
    if weights is not None and not Path(weights).is_file():
        raise ValueError(f"weights file {weights} does not exist")
    use_pretrained = pretrained  # the inner functions' own `pretrained` is what the model asked for
    create_model = timm.create_model
    load_torchvision = WeightsEnum.get_state_dict

    def timm_create(model_name: str, pretrained: bool = False, **kwargs: Any) -> torch.nn.Module:
        if pretrained and weights is not None:
            overlay = {**(kwargs.pop("pretrained_cfg_overlay", None) or {}), "file": str(weights), "source": None}
            return create_model(model_name, pretrained=True, pretrained_cfg_overlay=overlay, **kwargs)
        return create_model(model_name, pretrained=pretrained and use_pretrained, **kwargs)

    def torchvision_state(self: WeightsEnum, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if weights is not None:
            return torch.load(weights, map_location="cpu", weights_only=True)
        if not use_pretrained:
            return _random_torchvision_state(self)
        return load_torchvision(self, *args, **kwargs)

    with mock.patch.object(timm, "create_model", timm_create), mock.patch.object(
        WeightsEnum, "get_state_dict", torchvision_state
    ):
        yield


__all__ = ["MissingWeightsError", "backbone_weights", "cache_locations", "offline_guard", "PROBE_TIMEOUT_S"]
