"""The package's layers depend one way: scenes ← generator, and the benchmark apart from both;
the two sides share only ``mkdata.files`` (file I/O), ``mkdata.errors`` and ``mkdata.seeds``, and meet in the
top-level modules (the CLI, ``mkdata.bench_data``) that compose them. Read from the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYER_FOLDERS = {"scenes": "scenes", "generator": "generator", "benchmark": "benchmark", "assets_manifest": "assets_manifest"}
# what each layer may import from mkdata.* (besides itself)
SHARED = {"files", "errors", "seeds", "version"}
ALLOWED = {
    "assets_manifest": SHARED,
    "scenes": {"assets_manifest"} | SHARED,
    "generator": {"scenes", "assets_manifest"} | SHARED,
    "benchmark": SHARED,
}


def imported_layers(path: Path) -> dict[str, int]:
    """mkdata sub-package (or top-level module) → first line that imports it, in one file."""
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text())):
        names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
        for name in names:
            parts = name.split(".")
            if parts[0] == "mkdata":
                found.setdefault(parts[1] if len(parts) > 1 else "version", node.lineno)
    return found


def import_graph() -> dict[str, dict[str, str]]:
    """layer → imported layer → 'file:line' of the first such import."""
    graph: dict[str, dict[str, str]] = {}
    for layer, folder in LAYER_FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            for target, line in imported_layers(path).items():
                if target != layer:
                    graph.setdefault(layer, {}).setdefault(target, f"{path.relative_to(ROOT)}:{line}")
    return graph


def test_layers_import_only_downwards() -> None:
    graph = import_graph()
    print("\n".join(f"{layer} -> {target}  ({where})" for layer, targets in sorted(graph.items())
                    for target, where in sorted(targets.items())))
    wrong = [f"{layer} imports {target} at {where}" for layer, targets in graph.items()
             for target, where in targets.items() if target not in ALLOWED[layer]]
    assert not wrong, "; ".join(wrong)


@pytest.mark.parametrize("source, target", [("generator/stats.py", "benchmark"), ("benchmark/runner.py", "generator")])
def test_the_check_sees_a_wrong_import(source: str, target: str, tmp_path: Path) -> None:
    """The reader finds both import forms a wrong edge could take (at module level or in a function)."""
    probe = tmp_path / "probe.py"
    probe.write_text((ROOT / source).read_text() + f"\n\ndef late():\n    from mkdata.{target}.x import y\n")
    assert target in imported_layers(probe)
