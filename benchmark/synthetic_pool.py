"""A synthetic dataset (``benchmark.synthetic``) with a contamination pool, for tests and studies.

The pool is laid out as ``mkdata miad --contamination-pool N`` lays it out, beside the category:
``ROOT/<category>_pool/test/<defect_type>/NNNNN.png`` and ``.../ground_truth/<defect_type>/NNNNN_mask.png``.
Its images are further defective images of the same generator (drawn after the test images), so
they follow the training distribution as a pool rendered with training conditions does.
"""

from __future__ import annotations

from pathlib import Path

from mkdata.benchmark.synthetic import SyntheticSet, make_synthetic, write_mvtec
from mkdata.files import pool_dir, write_png_atomic


def write_synthetic_with_pool(root: str | Path, category: str = "synthetic", n_train: int = 24, n_test_good: int = 8,
                              n_test_bad: int = 8, n_pool: int = 8, size: int = 64, seed: int = 0) -> Path:
    """Write the MVTec-layout set and its pool of ``n_pool`` defective images; returns the category folder."""
    data = make_synthetic(n_train, n_test_good, n_test_bad + n_pool, size, seed)
    n_test = n_test_good + n_test_bad
    test = SyntheticSet(data.train, data.test[:n_test], data.labels[:n_test], data.masks[:n_test], data.defect_types[:n_test])
    base = write_mvtec(test, root, category)
    pool = pool_dir(base)
    for i in range(n_test, n_test + n_pool):
        kind = data.defect_types[i]
        write_png_atomic(pool / "test" / kind / f"{i - n_test:05d}.png", data.test[i])
        write_png_atomic(pool / "ground_truth" / kind / f"{i - n_test:05d}_mask.png", data.masks[i] * 255)
    return base
