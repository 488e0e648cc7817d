"""The weight policy: where a backbone's weights come from, offline and with files in the caches.

"Offline" is a proxy that cannot resolve plus empty caches (the ``offline`` fixture), so no test
waits for or depends on a download; cached files are written by the tests themselves.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import constants as hf_constants
from safetensors.torch import save_file

from mkdata.benchmark.detectors.registry import create
from mkdata.benchmark.detectors.timm_weights import create_timm
from mkdata.benchmark.detectors.weights import MissingWeightsError, WeightChoice, timm_location


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No network (connections go through a proxy that does not resolve) and empty weight caches."""
    for variable in ("HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(variable, "http://proxy.invalid:3128")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # anomalib's and mkdata's caches
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)  # the probe, not the switch, must notice
    torch_hub = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "torch"))
    yield
    torch.hub.set_dir(torch_hub)


def put_in_hub_cache(repo_id: str, state: dict[str, torch.Tensor]) -> Path:
    """Write ``state`` where the Hugging Face hub cache keeps ``repo_id``'s model.safetensors."""
    commit = "0" * 40
    repo = Path(hf_constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    file = repo / "snapshots" / commit / "model.safetensors"
    file.parent.mkdir(parents=True)
    save_file({key: value.contiguous() for key, value in state.items()}, str(file))
    return file


def test_a_missing_file_fails_at_once_and_says_where_to_put_it(offline: None) -> None:
    start = time.perf_counter()
    location = timm_location("resnet18")
    assert location.status == "missing"
    with pytest.raises(MissingWeightsError) as error:
        WeightChoice(pretrained=True).file(lambda: location)
    assert time.perf_counter() - start < 10  # one bounded probe, no download retries
    message = str(error.value)
    assert str(location.path) in message and "weights=PATH" in message and "pretrained=False" in message


def test_a_hub_cached_file_is_used_offline(offline: None) -> None:
    torch.manual_seed(5)
    state = create_timm("resnet18", None).state_dict()
    file = put_in_hub_cache("timm/resnet18.a1_in1k", state)
    location = timm_location("resnet18")
    assert (location.status, location.path) == ("cache", file)
    model = create_timm("resnet18", WeightChoice().file(lambda: timm_location("resnet18")))
    torch.testing.assert_close(model.state_dict()["conv1.weight"], state["conv1.weight"], rtol=0, atol=0)


def test_a_local_file_wins_and_random_needs_no_file(offline: None, tmp_path: Path) -> None:
    path = tmp_path / "backbone.pt"
    torch.save({}, path)

    def unreachable() -> None:
        raise AssertionError("no pretrained file should be looked for")

    assert WeightChoice(pretrained=True, weights=str(path)).file(unreachable) == path
    assert WeightChoice(pretrained=False).file(unreachable) is None
    with pytest.raises(ValueError, match="absent.pt"):
        WeightChoice(weights=str(tmp_path / "absent.pt"))


def test_own_detector_without_weights_fails_fast_with_instructions(offline: None) -> None:
    detector = create("differnet", image_size=64, n_scales=1, epochs=1, fc_hidden=8, device="cpu")
    with pytest.raises(MissingWeightsError, match="weights=PATH"):
        detector.fit(np.zeros((2, 64, 64, 3), np.uint8))
