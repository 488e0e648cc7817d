"""Imports every detector module in this package so their ``@register`` decorators run."""

import importlib
import pkgutil

import mkdata.benchmark.detectors as _package

_INFRASTRUCTURE = {"base", "images", "registry", "_catalogue"}

for _module in pkgutil.iter_modules(_package.__path__):
    if _module.name not in _INFRASTRUCTURE and not _module.name.startswith("_"):
        importlib.import_module(f"{_package.__name__}.{_module.name}")
