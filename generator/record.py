"""The record of one rendered image: written per image (the resume bookkeeping) and gathered
into the manifest, whose columns are this dataclass's fields."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class ImageRecord:
    """One image of a dataset, as the manifest lists it."""

    path: str
    mask_path: str | None
    split: str
    group: str
    label: int  # 0 normal, 1 defective
    defect_type: str  # "good" for normal images
    index: int
    seed: int
    camera_radius: float
    camera_azimuth: float
    camera_elevation: float
    camera_lens_mm: float  # focal length on a 36 mm sensor, as Blender rendered it
    factor_UV: bool
    factor_UB: bool
    factor_US: bool
    background_id: str
    surface_id: str
    defect_target: str | None
    defect_details: str  # JSON of what the defect did (sizes, angles)
    defect_pixel_ratio: float
    camera_response: str  # JSON of this image's exposure, white balance, defocus and noise
    render_seconds: float
    render_key: str
    device: str  # Cycles' device for this image: cpu, cuda or optix (bytes may differ between them)

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


MANIFEST_COLUMNS = [field.name for field in dataclasses.fields(ImageRecord)]
