"""Name → detector class registry, with parameter validation."""

from __future__ import annotations

import dataclasses
from typing import Any

from mkdata.benchmark.detectors.base import Detector, param_defaults

_REGISTRY: dict[str, type[Detector]] = {}


def register(cls: type[Detector]) -> type[Detector]:
    """Class decorator: make ``cls`` buildable by ``create(cls.name, ...)``."""
    if cls.name in _REGISTRY:
        raise ValueError(f"detector name {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def _load_all() -> None:
    """Import the modules that register detectors (kept lazy so `import mkdata` stays light)."""
    from mkdata.benchmark.detectors import _catalogue  # noqa: F401


def detector_names() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def detector_class(name: str) -> type[Detector]:
    _load_all()
    if name not in _REGISTRY:
        raise ValueError(f"unknown detector {name!r}; valid names: {', '.join(sorted(_REGISTRY))}")
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
