"""Dataset-level metadata: the manifest table and dataset.json, rebuilt from per-image records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

import mkdata
from mkdata.assets_manifest import assets_for
from mkdata.files import write_bytes_atomic, write_text_atomic
from mkdata.generator.config import RenderConfig
from mkdata.generator.plan import GROUP_CODES
from mkdata.generator.record import MANIFEST_COLUMNS


def read_records(dataset_dir: Path) -> pd.DataFrame:
    """All complete images' records under ``dataset_dir/.records`` as a table, in a stable order."""
    rows = [json.loads(p.read_text()) for p in sorted((dataset_dir / ".records").glob("*.json"))]
    table = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    return table.sort_values(["group", "index"], key=lambda c: c.map(GROUP_CODES) if c.name == "group" else c).reset_index(drop=True)


def read_dataset_json(dataset_dir: Path) -> dict[str, Any] | None:
    path = dataset_dir / "dataset.json"
    return json.loads(path.read_text()) if path.exists() else None


def write_metadata(config: RenderConfig) -> pd.DataFrame:
    """Write manifest.parquet, manifest.csv and dataset.json from the records on disk."""
    root = config.dataset_dir
    table = read_records(root)
    parquet_temp = root / f".manifest.parquet.{id(table)}.tmp"
    table.to_parquet(parquet_temp, index=False)
    write_bytes_atomic(root / "manifest.parquet", parquet_temp.read_bytes())
    parquet_temp.unlink()
    write_text_atomic(root / "manifest.csv", table.to_csv(index=False))
    counts = table.groupby(["split", "defect_type"]).size()
    asset_ids = sorted(set(table["background_id"]).union(table["surface_id"])) if len(table) else []
    info = {
        "mkdata_version": mkdata.__version__,
        "scenario": config.scenario,
        "config": config.to_dict(),
        "render_key": config.render_key(),
        "render_key_hash": config.render_key_hash(),
        "counts": {f"{split}/{label}": int(n) for (split, label), n in counts.items()},
        "assets": assets_for(asset_ids),
    }
    write_text_atomic(root / "dataset.json", json.dumps(info, indent=2))
    return table
