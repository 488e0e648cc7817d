"""mkdata.scenes: one module per MIAD scenario, each defining a ``Scenario`` subclass.

The registry is discovered from the modules in this package, so adding a scenario touches only
its own module. Nothing here imports Blender.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from mkdata.errors import BadInput
from mkdata.scenes.base import Scenario

_INFRASTRUCTURE = {"base", "camera", "geometry", "materials", "night"}


@cache
def scenario_classes() -> dict[str, type[Scenario]]:
    """Name → Scenario subclass, for every scenario module in this package."""
    found: dict[str, type[Scenario]] = {}
    for module_info in pkgutil.iter_modules(__path__):
        if module_info.name in _INFRASTRUCTURE or module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Scenario) and value is not Scenario and value.__module__ == module.__name__:
                found[value.spec.name] = value
    return dict(sorted(found.items()))


def scenario_names() -> list[str]:
    """Names of all scenarios, sorted."""
    return list(scenario_classes())


def get_scenario(name: str) -> type[Scenario]:
    """The Scenario class called ``name``; unknown names raise BadInput listing the valid ones."""
    classes = scenario_classes()
    if name not in classes:
        raise BadInput(f"unknown scenario {name!r}; valid scenarios: {', '.join(classes)}")
    return classes[name]
