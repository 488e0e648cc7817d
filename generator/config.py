"""The render configuration of one scenario's dataset, its validation and presets."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from mkdata.errors import BadInput
from mkdata.files import pool_dir
from mkdata.scenes import get_scenario
from mkdata.scenes.base import ALL_FACTORS
from mkdata.scenes.camera_response import CAMERA_MODELS
from mkdata.seeds import int31_seed

# Defaults sized for ~5 minutes on a 2-core laptop; "paper" reproduces MIAD's sizes.
PRESETS: dict[str, dict[str, int]] = {
    "default": {"n_train": 60, "n_test_good": 20, "n_test_bad": 30, "resolution": 256, "samples": 16},
    "paper": {"n_train": 10000, "n_test_good": 2500, "n_test_bad": 2500, "resolution": 512, "samples": 32},
}

DEVICES = ("auto", "cpu", "cuda", "optix")  # Cycles' device; auto takes a GPU when Cycles sees one

# Fields that change pixels. Image i depends only on (scenario, split, index, these fields).
RENDER_KEY_FIELDS = ("scenario", "seed", "resolution", "samples", "denoise", "factors", "camera")


@dataclass(frozen=True)
class RenderConfig:
    """Everything that defines one scenario's dataset render."""

    scenario: str
    out: Path
    n_train: int
    n_test_good: int
    n_test_bad: int
    resolution: int
    samples: int
    factors: tuple[str, ...]
    seed: int = 0
    denoise: bool = True
    device: str = "auto"  # not in the render key: a run may move between CPU and GPU nodes
    n_pool: int = 0  # defective images under training conditions, for contamination
    pool: bool = False  # this config renders the dataset's contamination pool (n_pool images, OUT/<scenario>_pool)
    camera: str = "realistic"  # the camera's response: per-image exposure/white balance/defocus/noise, or "ideal"

    @classmethod
    def from_preset(cls, scenario: str, out: Path, preset: str = "default", *, n_train: int | None = None,
                    n_test_good: int | None = None, n_test_bad: int | None = None, resolution: int | None = None,
                    samples: int | None = None, factors: str | tuple[str, ...] | None = None, seed: int = 0,
                    denoise: bool = True, device: str = "auto", camera: str = "realistic") -> RenderConfig:
        """A preset's sizes with the given overrides (None keeps the preset's value); ``factors``
        as text ('UV,UB', 'none') or a tuple, None for every factor the scenario has."""
        if preset not in PRESETS:
            raise BadInput(f"unknown preset {preset!r}; valid presets: {', '.join(PRESETS)}")
        sizes = PRESETS[preset]
        chosen = {"n_train": n_train, "n_test_good": n_test_good, "n_test_bad": n_test_bad, "resolution": resolution, "samples": samples}
        counts = {key: sizes[key] if value is None else value for key, value in chosen.items()}
        if not isinstance(factors, tuple):
            factors = parse_factors(factors, scenario)
        return cls(scenario, Path(out), factors=factors, seed=seed, denoise=denoise, device=device, camera=camera, **counts)

    @classmethod
    def from_dict(cls, settings: dict[str, object]) -> RenderConfig:
        """The config that ``to_dict`` wrote (a run file, dataset.json)."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {key: value for key, value in settings.items() if key in known}
        return cls(**{**values, "out": Path(str(values["out"])), "factors": tuple(values["factors"])})  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        spec = get_scenario(self.scenario).spec  # raises with the list of valid names
        for key in ("n_train", "n_test_good", "n_test_bad", "n_pool"):
            if getattr(self, key) < 0:
                raise BadInput(f"{key} must be >= 0, got {getattr(self, key)}")
        if not 16 <= self.resolution <= 8192:
            raise BadInput(f"resolution must be between 16 and 8192 pixels, got {self.resolution}")
        if self.resolution < spec.min_resolution:
            raise BadInput(f"resolution {self.resolution} is too small for {self.scenario}: use at least {spec.min_resolution}; "
                           f"below it its defects ({', '.join(spec.defect_types)}, {spec.miad_defect_pixel_ratio:.2%} of the "
                           "image in MIAD) are too few pixels to pass the visibility check")
        if self.device not in DEVICES:
            raise BadInput(f"unknown device {self.device!r}; valid devices: {', '.join(DEVICES)}")
        if self.camera not in CAMERA_MODELS:
            raise BadInput(f"unknown camera model {self.camera!r}; valid camera models: {', '.join(CAMERA_MODELS)}")
        if self.samples < 1:
            raise BadInput(f"samples must be >= 1, got {self.samples}")
        unknown = [f for f in self.factors if f not in ALL_FACTORS]
        if unknown:
            raise BadInput(f"unknown factor(s) {unknown}; valid factors: {', '.join(ALL_FACTORS)} (or 'none')")
        lacking = [f for f in self.factors if f not in spec.factors]
        if lacking:
            raise BadInput(f"scenario {self.scenario} has no factor {', '.join(lacking)}; its factors are {', '.join(spec.factors)}")

    @property
    def dataset_dir(self) -> Path:
        """OUT/<scenario>, or OUT/<scenario>_pool for the contamination pool."""
        return pool_dir(self.out / self.scenario) if self.pool else self.out / self.scenario

    def pool_config(self, images: int) -> RenderConfig:
        """The config of this dataset's contamination pool: ``images`` defective images under
        training conditions, with the same pixel-defining settings."""
        return dataclasses.replace(self, n_train=0, n_test_good=0, n_test_bad=0, n_pool=images, pool=True)

    def render_key(self) -> dict[str, object]:
        """The config fields that determine pixels (counts, paths and worker layout do not)."""
        return {field: _jsonable(getattr(self, field)) for field in RENDER_KEY_FIELDS}

    def render_key_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.render_key(), sort_keys=True).encode()).hexdigest()[:16]

    def cycles_seed(self) -> int:
        """Cycles' sampling seed: one per (seed, scenario), shared by every image of the dataset."""
        return int31_seed(f"{self.scenario}:{self.seed}")

    def to_dict(self) -> dict[str, object]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _jsonable(value: object) -> object:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def parse_factors(text: str | None, scenario: str) -> tuple[str, ...]:
    """'UV,UB' → ('UV', 'UB'); 'none' → (); None → every factor the scenario has."""
    if text is None:
        return tuple(get_scenario(scenario).spec.factors)
    if text.strip().lower() == "none":
        return ()
    factors = tuple(dict.fromkeys(part.strip().upper() for part in text.split(",") if part.strip()))
    return tuple(f for f in ALL_FACTORS if f in factors) + tuple(f for f in factors if f not in ALL_FACTORS)


def parse_shard(text: str | None) -> tuple[int, int]:
    """'I/N' (0 <= I < N) → (I, N); None → (0, 1)."""
    if text is None:
        return 0, 1
    try:
        index_text, count_text = text.split("/")
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise BadInput(f"--shard must look like I/N with integers, e.g. 0/4; got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise BadInput(f"--shard {text!r}: need N >= 1 and 0 <= I < N")
    return index, count
