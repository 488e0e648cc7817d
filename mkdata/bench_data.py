"""The datasets of a `mkdata bench` run: folders as they are, scenarios rendered first.

This top-level module joins the two sides: the benchmark takes dataset folders and never imports
the generator or the scenes; rendering the scenarios a bench config names happens here.
"""

from __future__ import annotations

from pathlib import Path

from mkdata.benchmark.config import BenchConfig, ConfigError, DatasetSpec
from mkdata.errors import RunFailed


class DatasetRenderFailed(RunFailed):
    """Some images of a scenario a bench config names could not be rendered."""


def check_scenarios(config: BenchConfig) -> None:
    """Raise ConfigError naming ``datasets[i].scenario`` for a scenario that does not exist."""
    from mkdata.scenes import scenario_names

    for i, spec in enumerate(config.datasets):
        if spec.scenario is not None and spec.scenario not in scenario_names():
            raise ConfigError(f"config key 'datasets[{i}].scenario': unknown scenario {spec.scenario!r}; "
                              f"valid: {', '.join(scenario_names())}")


def render_dataset(spec: DatasetSpec) -> Path:
    """Render (or resume) the scenario of ``spec`` with the default preset and its ``render``
    overrides; returns the dataset folder."""
    from mkdata.generator.config import RenderConfig
    from mkdata.generator.runner import render_scenario

    render = dict(spec.render)
    sizes = {"train": "n_train", "test_good": "n_test_good", "test_bad": "n_test_bad"}
    overrides = {sizes.get(key, key): value for key, value in render.items() if key != "out"}
    config = RenderConfig.from_preset(spec.scenario, Path(render.get("out", "data")), **overrides)  # type: ignore[arg-type]
    summary = render_scenario(config)
    if summary.failures:
        raise DatasetRenderFailed(f"rendering {spec.scenario} failed for {len(summary.failures)} image(s); "
                                  f"rerun to retry them, or render it with `mkdata miad --scenario {spec.scenario}` to see why")
    return config.dataset_dir
