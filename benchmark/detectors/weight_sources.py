"""Data for ``mkdata weights``: where each backbone of the given detectors gets its weights on this machine now.

Each detector reports the files its build would load (``weight_locations``: anomalib models are
built at random to find them; nothing is downloaded, the network is only probed). One row per
weight file: where it comes from (``file``, ``packaged``, ``cache``, ``download``, ``missing``
or ``random``), its path, which detectors use it and, for a missing one, how to make it
available offline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mkdata.benchmark.detectors.registry import create
from mkdata.benchmark.detectors.weights import Location

DetectorSpec = str | tuple[str, Mapping[str, Any]]  # a registry name, or a name and its parameters


@dataclass(frozen=True)
class WeightSource:
    """One weight file and the detectors that would load it."""

    backbone: str
    status: str  # file | packaged | cache | download | missing | random
    path: str  # the file, or where a copy of a missing one must go
    detectors: tuple[str, ...]
    remedy: str  # how to make a missing file available offline ("" otherwise)


def _locations(spec: DetectorSpec) -> tuple[str, list[Location]]:
    name, params = (spec, {}) if isinstance(spec, str) else spec
    detector = create(name, **params)
    survey = getattr(detector, "weight_locations", None)  # detectors without one load no weights
    return name, survey() if survey else []


def weight_sources(detectors: Iterable[DetectorSpec]) -> list[WeightSource]:
    """One ``WeightSource`` per distinct weight file the detectors would load, in first-use order."""
    rows: dict[tuple[str, str, str], tuple[Location, list[str]]] = {}
    for spec in detectors:
        name, locations = _locations(spec)
        for location in locations:
            key = (location.backbone, location.status, str(location.path))
            users = rows.setdefault(key, (location, []))[1]
            if name not in users:
                users.append(name)
    return [
        WeightSource(
            location.backbone,
            location.status,
            str(location.path),
            tuple(users),
            location.remedy() if location.status == "missing" else "",
        )
        for location, users in rows.values()
    ]
