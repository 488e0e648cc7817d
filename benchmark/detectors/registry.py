"""Name → detector class registry, with parameter validation.

Names are listed without importing any detector module (``_catalogue``); a detector's module,
and with it torch or anomalib, is imported when its class is first asked for.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from mkdata.benchmark.detectors._catalogue import detector_modules
from mkdata.benchmark.detectors.base import Detector, param_defaults

_REGISTRY: dict[str, type[Detector]] = {}


def register(cls: type[Detector]) -> type[Detector]:
    """Class decorator: make ``cls`` buildable by ``create(cls.name, ...)``."""
    if cls.name in _REGISTRY:
        raise ValueError(f"detector name {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def detector_names() -> list[str]:
    return sorted(detector_modules())


def detector_class(name: str) -> type[Detector]:
    modules = detector_modules()
    if name not in modules:
        raise ValueError(f"unknown detector {name!r}; valid names: {', '.join(sorted(modules))}")
    importlib.import_module(modules[name])
    if name not in _REGISTRY:
        raise RuntimeError(f"module {modules[name]} does not register detector {name!r} (see _catalogue.py)")
    return _REGISTRY[name]


def create(name: str, **params: Any) -> Detector:
    """Build a detector by registry name; unknown parameters raise ValueError listing valid ones."""
    cls = detector_class(name)
    valid = {f.name for f in dataclasses.fields(cls.Params)}
    unknown = sorted(set(params) - valid)
    if unknown:
        raise ValueError(f"{name}: unknown parameter(s) {unknown}; valid parameters: {sorted(valid)}")
    return cls(cls.Params(**params))


def describe(name: str) -> dict[str, Any]:
    """One registry entry as a dict: name, description, defaults, yields_map, needs_weights."""
    cls = detector_class(name)
    return {
        "name": name,
        "description": cls.description,
        "defaults": param_defaults(cls.Params),
        "yields_map": cls.yields_map,
        "needs_weights": cls.needs_weights,
    }
