"""`pip install .` (a wheel) must carry every module of the design-card folders and the asset data."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"scenes": "mkdata/scenes", "generator": "mkdata/generator", "benchmark": "mkdata/benchmark",
           "assets_manifest": "mkdata/assets_manifest", "mkdata": "mkdata"}


def test_wheel_contains_every_module_and_installs_into_a_fresh_venv(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)],
                   check=True)
    wheel = next(tmp_path.glob("mkdata-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder, package_path in FOLDERS.items():
        for source in (ROOT / folder).rglob("*.py"):
            assert f"{package_path}/{source.relative_to(ROOT / folder).as_posix()}" in names, source
    assert "mkdata/assets_manifest/assets.json" in names
    assert not any(name.startswith(("scenes/", "generator/", "benchmark/", "tests/")) for name in names), "no generic top-level packages"

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)
    probe = "from mkdata.assets_manifest import load_assets; import mkdata; print(len(load_assets()), mkdata.__file__)"
    result = subprocess.run([venv / "bin" / "python", "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path)
    count, location = result.stdout.split()
    assert int(count) > 0 and str(venv) in location
