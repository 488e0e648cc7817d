"""The one patch left: anomalib 2.7 models that hard-code their backbone's pretrained weights.

Models whose record says ``Weights.HARD_CODED`` (STFPM's teacher, U-Flow, the DINO-based models,
CFA's and UniNet's torchvision teachers, ...) build a backbone with ``pretrained=True`` or a
torchvision weights enum whatever the caller asks, and offer no constructor argument to pass a
backbone or a weights file. While such a model is constructed, and only then,
``routed_to(choice)`` sends those loads to the weights the policy chose: ``timm.create_model``
calls that ask for pretrained weights load the chosen file (or none: random initialisation), and
torchvision's ``WeightsEnum.get_state_dict`` returns the chosen state. Calls that ask for no
weights (STFPM's student) are left as they are.

Written for anomalib ``PINNED``; importing it under another version fails, and
``tests/test_detectors_anomalib.py::test_hard_coded_models_still_need_the_compat`` fails once a
listed model stops loading weights on its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import anomalib
import timm
import torch
import torchvision
from torch import nn
from torchvision.models import WeightsEnum

from mkdata.benchmark.detectors.timm_weights import create_timm
from mkdata.benchmark.detectors.weights import WeightChoice, timm_location, torchvision_location

PINNED = "2.7."
if not anomalib.__version__.startswith(PINNED):
    raise ImportError(
        f"anomalib_compat was written for anomalib {PINNED}x, found {anomalib.__version__}: check which models "
        f"still hard-code pretrained weights (test_hard_coded_models_still_need_the_compat) and update the records"
    )


def _random_torchvision_state(weights: WeightsEnum) -> dict[str, torch.Tensor]:
    """A randomly initialised state_dict of the architecture ``weights`` belongs to."""
    for name in torchvision.models.list_models():
        if torchvision.models.get_model_weights(name) is type(weights):
            num_classes = len(weights.meta["categories"])
            return torchvision.models.get_model(name, weights=None, num_classes=num_classes).state_dict()
    raise ValueError(f"no torchvision architecture uses {weights}")


@contextmanager
def routed_to(choice: WeightChoice) -> Iterator[None]:
    """Inside the block, hard-coded pretrained loads read the weights ``choice`` picks."""
    create_model = timm.create_model

    def timm_create(model_name: str, pretrained: bool = False, **kwargs: Any) -> nn.Module:
        if not pretrained:
            return create_model(model_name, pretrained=False, **kwargs)
        file = choice.file(lambda: timm_location(model_name))
        return create_timm(model_name, file, create=create_model, **kwargs)

    def torchvision_state(weights: WeightsEnum, *args: Any, **kwargs: Any) -> dict[str, Any]:
        file = choice.file(lambda: torchvision_location(weights))
        if file is None:
            return _random_torchvision_state(weights)
        return torch.load(file, map_location="cpu", weights_only=True)

    with mock.patch.object(timm, "create_model", timm_create), mock.patch.object(
        WeightsEnum, "get_state_dict", torchvision_state
    ):
        yield
