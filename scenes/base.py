"""The scenario interface: a declarative spec plus build / randomise / defect hooks.

Adding a scenario means one module in ``scenes/`` that defines a ``Scenario`` subclass with a
``spec``. The hooks receive ``bp``, the namespace returned by ``mkdata.generator.blender.load_bproc``
(bpy + BlenderProc API), so importing a scenario module never imports Blender.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

import numpy as np

from mkdata.errors import BadInput
from mkdata.scenes.finish import Finish
from mkdata.scenes.surfaces import CLEAN, Degradation

Factor = Literal["UV", "UB", "US"]
ALL_FACTORS: tuple[Factor, ...] = ("UV", "UB", "US")


@dataclass(frozen=True)
class CameraShell:
    """Where the camera may be: a spherical shell around the point of interest (MIAD's UV factor).

    Angles in degrees; azimuth θ around +Z from +X, elevation φ above the XY plane. ``fixed`` is
    the (radius, azimuth, elevation) used when UV is off. ``centre`` is the point of interest
    (metres); with UV on it moves by up to ``centre_jitter`` along each axis. ``lens_mm`` is the
    focal length on a 36 mm (full-frame) sensor: 50 mm gives a 39.6° horizontal field of view,
    100 mm 20.4°.
    """

    radius: tuple[float, float]
    azimuth: tuple[float, float]
    elevation: tuple[float, float]
    fixed: tuple[float, float, float]
    centre: tuple[float, float, float]
    centre_jitter: tuple[float, float, float]
    lens_mm: float = 50.0


@dataclass(frozen=True)
class View:
    """Where the camera is for one image: its pose on the shell, its location and what it looks at."""

    radius: float
    azimuth: float
    elevation: float
    location: np.ndarray
    target: np.ndarray


class Environment(Protocol):
    """Background and lighting of a scene (``day.DayEnvironment``, ``night.NightEnvironment``)."""

    def build(self) -> None:
        """Create the world, lights and background objects once."""

    def randomise(self, rng: np.random.Generator, uncontrolled: bool, split: str, view: View) -> str:
        """Set this image's background (random of ``split`` when ``uncontrolled``, else the
        fixed one) for ``view``; returns the background id."""


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
    min_resolution: int = 16  # smallest image size (pixels) at which its defects pass the visibility check


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

    view: View
    background_id: str
    surface_id: str


class Scenario(ABC):
    """Base class of every scenario. One instance lives in a render worker for many images.

    A scenario builds its scene and sets ``environment`` (and ``degradation`` when it has US); the
    base class draws each image's view, background and surface in that order, and checks defect
    types before the scenario's ``_defect_targets`` / ``_apply_defect`` see them.
    """

    spec: ClassVar[ScenarioSpec]
    environment: Environment
    degradation: Degradation | None = None

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
    def _defect_targets(self, defect_type: str) -> list[DefectTarget]:
        """Places where the (valid) ``defect_type`` can be applied in the current scene."""

    @abstractmethod
    def _apply_defect(self, defect_type: str, target: DefectTarget, rng: np.random.Generator, view: View) -> DefectChange:
        """Change the scene to show the (valid) ``defect_type`` at ``target`` as seen from ``view``."""

    def randomise(self, rng: np.random.Generator, split: str) -> SceneSample:
        """Re-randomise view, background and surface for one image of ``split`` ('train'/'test');
        a factor not in ``self.factors`` stays at its fixed value. The equipment's normal finish
        (``scenes/finish.py``) is redrawn for every image, whatever the factors."""
        view = self.place_view(rng, split)
        background = self.environment.randomise(rng, "UB" in self.factors, split, view)
        surface = self.degradation.randomise(rng, "US" in self.factors, split) if self.degradation is not None else CLEAN
        Finish(self.bp).randomise(rng)
        return SceneSample(view, background, surface)

    def check_defect_type(self, defect_type: str) -> None:
        """Raise BadInput naming the valid types when this scenario has no ``defect_type``."""
        if defect_type not in self.spec.defect_types:
            raise BadInput(f"{self.spec.name} has no defect type {defect_type!r}; valid: {', '.join(self.spec.defect_types)}")

    def defect_targets(self, defect_type: str) -> list[DefectTarget]:
        """Places where ``defect_type`` can be applied in the current scene."""
        self.check_defect_type(defect_type)
        return self._defect_targets(defect_type)

    def apply_defect(self, defect_type: str, target: DefectTarget, rng: np.random.Generator, view: View) -> DefectChange:
        """Change the scene to show ``defect_type`` at ``target``; return what changed and an undo."""
        self.check_defect_type(defect_type)
        return self._apply_defect(defect_type, target, rng, view)

    def place_view(self, rng: np.random.Generator, split: str) -> View:
        """Put the camera for one image: on the spec's shell around a jittered point of interest
        when UV is on, at the fixed pose otherwise."""
        from mkdata.scenes.camera import place_camera, sample_viewpoint

        shell, free = self.spec.camera, "UV" in self.factors
        pose = sample_viewpoint(rng, shell, split, free)
        target = np.asarray(shell.centre, float) + (rng.uniform(-1, 1, 3) * np.asarray(shell.centre_jitter) if free else 0.0)
        return View(*pose, location=place_camera(self.bp, target, *pose, lens_mm=shell.lens_mm), target=target)
