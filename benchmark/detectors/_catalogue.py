"""Which module registers which detector, so that names are listed without importing torch or anomalib.

The project's own detectors are listed here by module; anomalib's come from its records, when
anomalib is installed (found without importing it). ``tests/test_detectors_own.py`` checks that
each module registers exactly the names listed for it.
"""

from __future__ import annotations

import importlib.util

from mkdata.benchmark.detectors.anomalib_records import RECORDS

_PACKAGE = "mkdata.benchmark.detectors"

OWN_MODULES: dict[str, tuple[str, ...]] = {
    "autoencoders": (
        "ae_l2", "ae_ssim", "ae_msssim4", "ae_mahalanobis", "ae_residual_stats", "vae_residual_stats",
        "dilated_vae_residual_stats",
    ),
    "iaae": ("iaae",),
    "differnet": ("differnet",),
    "unified_ad": ("unified_ad",),
    "classical": ("ocsvm", "lof", "kmeans", "knn"),
}  # fmt: skip
ANOMALIB_MODULE = "anomalib_models"
# Own detectors built on anomalib's models, listed where anomalib is installed (like anomalib's own).
ON_ANOMALIB: dict[str, tuple[str, ...]] = {"patchcore_scalable": ("patchcore_scalable",)}


def anomalib_installed() -> bool:
    """True when anomalib can be imported (checked without importing it)."""
    try:
        return importlib.util.find_spec("anomalib") is not None
    except (ImportError, ValueError):
        return False


def detector_modules() -> dict[str, str]:
    """Registry name → the dotted module that registers it, for every detector installed here."""
    modules = {name: f"{_PACKAGE}.{module}" for module, names in OWN_MODULES.items() for name in names}
    if anomalib_installed():
        modules.update({record.name: f"{_PACKAGE}.{ANOMALIB_MODULE}" for record in RECORDS})
        modules.update({name: f"{_PACKAGE}.{module}" for module, names in ON_ANOMALIB.items() for name in names})
    return modules
