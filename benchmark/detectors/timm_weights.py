"""Building timm models with a chosen weights file, and loading one into a timm model built without weights.

timm's documented way to load a local file is ``pretrained=True`` with
``pretrained_cfg_overlay={"file": PATH}``; it applies the model's checkpoint filter (e.g. position
embedding resampling for ViTs) and drops the classifier for feature extractors, as for its own
weights. A model someone else built (an anomalib backbone built with ``pre_trained=False``) gets
the file through a twin: the same architecture, structure and file, built by timm, whose
state_dict then loads strictly, so any difference of keys or shapes raises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import timm
import torch
from timm.models import FeatureInfo
from torch import nn


def create_timm(name: str, file: Path | None, create: Callable[..., nn.Module] = timm.create_model, **kwargs: Any) -> nn.Module:
    """``timm.create_model(name, **kwargs)`` with the weights of ``file`` (None: random initialisation)."""
    if file is None:
        return create(name, pretrained=False, **kwargs)
    overlay = {**(kwargs.pop("pretrained_cfg_overlay", None) or {}), "file": str(file), "source": None}
    return create(name, pretrained=True, pretrained_cfg_overlay=overlay, **kwargs)


def timm_name(model: nn.Module) -> str:
    """The ``arch.tag`` name a timm-built model was created from."""
    cfg = model.pretrained_cfg
    return f"{cfg['architecture']}.{cfg['tag']}" if cfg.get("tag") else cfg["architecture"]


def timm_models(module: nn.Module) -> Iterator[nn.Module]:
    """The outermost timm-built models inside ``module`` (timm sets ``pretrained_cfg`` on what it builds)."""
    found: list[str] = []
    for path, child in module.named_modules():
        if hasattr(child, "pretrained_cfg") and not any(path.startswith(f"{outer}.") for outer in found):
            found.append(path)
            yield child


def feature_modules(name: str) -> tuple[str, ...]:
    """The module names timm's features_only extractor of CNN ``name`` can return (built on the meta device)."""
    with torch.device("meta"):
        return tuple(timm.create_model(name, pretrained=False, features_only=True).feature_info.module_name())


def _structure(model: nn.Module) -> dict[str, Any]:
    """The ``create_model`` arguments that shape a timm model's state_dict."""
    if isinstance(getattr(model, "feature_info", None), FeatureInfo):  # features_only wrapper
        return {"features_only": True, "out_indices": tuple(model.feature_info.out_indices)}
    kwargs: dict[str, Any] = {"num_classes": model.num_classes}
    img_size = getattr(getattr(model, "patch_embed", None), "img_size", None)
    if img_size is not None:  # ViTs: the position embedding's size
        kwargs["img_size"] = tuple(img_size)
    return kwargs


def load_timm_file(model: nn.Module, file: Path) -> None:
    """Load a timm checkpoint file into ``model`` (a timm model built without weights), strictly."""
    name = timm_name(model)
    twin = create_timm(name, file, **_structure(model))
    try:
        model.load_state_dict(twin.state_dict())
    except RuntimeError as error:
        raise ValueError(f"{file} does not fit the {name} backbone built here: {error}") from error
