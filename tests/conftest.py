"""Shared fixtures: tiny synthetic inspection sets (textures with obvious defects), built once per session."""

from __future__ import annotations

import pytest

from mkdata.benchmark.synthetic import SyntheticSet, make_synthetic


@pytest.fixture(scope="session")
def synthetic_set() -> SyntheticSet:
    """64×64 images, seed 0: 24 normal training images; 8 good + 8 defective test images with masks."""
    return make_synthetic(n_train=24, n_test_good=8, n_test_bad=8, size=64, seed=0)


@pytest.fixture(scope="session")
def synthetic_set_32() -> SyntheticSet:
    """The same layout at 32×32 (seed 0), for the slowest models."""
    return make_synthetic(n_train=24, n_test_good=8, n_test_bad=8, size=32, seed=0)


@pytest.fixture(scope="module")
def one_thread():
    """One thread for torch and BLAS in a module of tiny models (they only lose to thread contention)."""
    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(threads)
