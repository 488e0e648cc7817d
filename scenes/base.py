"""The scenario interface: a declarative spec plus build / randomise / defect hooks.

Adding a scenario means one module in ``scenes/`` that defines a ``Scenario`` subclass with a
``spec``. The hooks receive ``bp``, the namespace returned by ``mkdata.generator.blender.load_bproc``
(bpy + BlenderProc API), so importing a scenario module never imports Blender.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

Factor = Literal["UV", "UB", "US"]
ALL_FACTORS: tuple[Factor, ...] = ("UV", "UB", "US")


@dataclass(frozen=True)
class CameraShell:
    """Where the camera may be: a spherical shell around the point of interest (MIAD's UV factor).

    Angles in degrees; azimuth θ around +Z from +X, elevation φ above the XY plane. ``fixed`` is
    the (radius, azimuth, elevation) used when UV is off.
    """

    radius: tuple[float, float]
    azimuth: tuple[float, float]
    elevation: tuple[float, float]
    fixed: tuple[float, float, float]
    lens_mm: float = 50.0


@dataclass(frozen=True)
class ScenarioSpec:
    """What a scenario is, independent of Blender."""

    name: str
    anomaly_kind: Literal["surface", "logical"]
    factors: tuple[Factor, ...]  # the uncontrolled factors MIAD gives this scenario
    time_of_day: Literal["day", "night"]
    defect_types: tuple[str, ...]
    camera: CameraShell
    description: str
    miad_defect_pixel_ratio: float  # MIAD Table 2, as a fraction (0.0036 = 0.36%)


@dataclass(frozen=True)
class DefectTarget:
    """One place a defect can go (e.g. one bolt assembly): its id and the objects that show it."""

    target_id: str
    object_names: tuple[str, ...]


@dataclass
class DefectChange:
    """What ``apply_defect`` did: the objects whose pixels change meaning, and how to undo it.

    The mask is the union of these objects' visible footprints before and after the change.
    """

    affected_objects: tuple[str, ...]
    undo: Callable[[], None]
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SceneSample:
    """What ``randomise`` chose for one image (goes into the manifest)."""

    camera_radius: float
    camera_azimuth: float
    camera_elevation: float
    background_id: str
    surface_id: str


class Scenario(ABC):
    """Base class of every scenario. One instance lives in a render worker for many images."""

    spec: ClassVar[ScenarioSpec]

    def __init__(self, bp: Any, factors: frozenset[Factor]) -> None:
        self.bp = bp
        self.factors = factors

    @abstractmethod
    def build(self) -> None:
        """Create the scene once per worker (geometry, materials, lights, background objects).

        What this creates stays for the worker's life. After each image the worker deletes data
        blocks created later that nothing uses, so a block made later (a lazily loaded image) and
        kept in Python for later images must set ``use_fake_user``.
        """

    @abstractmethod
    def randomise(self, rng: np.random.Generator, split: str) -> SceneSample:
        """Re-randomise camera / background / surface for one image of ``split`` ('train'/'test').

        Factors not in ``self.factors`` must stay at their fixed value.
        """

    @abstractmethod
    def defect_targets(self, defect_type: str) -> list[DefectTarget]:
        """Places where ``defect_type`` can be applied in the current scene."""

    @abstractmethod
    def apply_defect(self, defect_type: str, target: DefectTarget, rng: np.random.Generator) -> DefectChange:
        """Change the scene to show ``defect_type`` at ``target``; return what changed and an undo."""

    def place_view(self, rng: np.random.Generator, split: str, point_of_interest: np.ndarray, jitter: np.ndarray) -> tuple[
            tuple[float, float, float], np.ndarray, np.ndarray]:
        """Put the camera for one image: on the spec's shell around a jittered point of interest
        when UV is on, at the fixed pose otherwise. Returns ((r, θ, φ), camera location, target)."""
        from mkdata.scenes.camera import place_camera, sample_viewpoint

        free = "UV" in self.factors
        pose = sample_viewpoint(rng, self.spec.camera, split, free)
        target = np.asarray(point_of_interest, float) + (rng.uniform(-1, 1, 3) * jitter if free else 0.0)
        return pose, place_camera(self.bp, target, *pose), target
