"""The asset manifest: every built-in asset's id, kind, train/test split, licence and checksum.

Built-in assets are procedural (made in Blender or numpy by mkdata; no download). An asset's
``sha256`` is the hash of its canonical parameter JSON, so two render nodes can check that they
use identical asset definitions (``verify_assets``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

SPLITS = ("train", "test", "both")


@dataclass(frozen=True)
class Asset:
    asset_id: str
    kind: str
    split: str  # train / test / both
    licence: str
    source: str
    params: dict[str, Any]
    sha256: str


def params_checksum(params: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of an asset's parameters."""
    return hashlib.sha256(json.dumps(params, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@cache
def load_assets() -> dict[str, Asset]:
    """All assets by id, checksums verified (ValueError naming the asset otherwise)."""
    entries = json.loads(files(__package__).joinpath("assets.json").read_text())
    assets: dict[str, Asset] = {}
    for entry in entries:
        asset = Asset(**entry)
        if asset.split not in SPLITS:
            raise ValueError(f"asset {asset.asset_id}: split must be one of {SPLITS}, got {asset.split!r}")
        if params_checksum(asset.params) != asset.sha256:
            raise ValueError(f"asset {asset.asset_id}: checksum mismatch; its definition was changed without updating sha256")
        if asset.asset_id in assets:
            raise ValueError(f"asset id {asset.asset_id} listed twice")
        assets[asset.asset_id] = asset
    return assets


def assets_for(asset_ids: list[str]) -> list[dict[str, str]]:
    """id, kind, split and licence of each given asset (unknown ids raise ValueError)."""
    assets = load_assets()
    missing = sorted(set(asset_ids) - set(assets))
    if missing:
        raise ValueError(f"asset id(s) {missing} are not in assets_manifest/assets.json")
    return [{"asset_id": a, "kind": assets[a].kind, "split": assets[a].split, "licence": assets[a].licence} for a in sorted(set(asset_ids))]


def ids_for(kind: str, split: str) -> list[str]:
    """Ids of the assets of ``kind`` usable for ``split`` ('train'/'test'): that split or 'both'."""
    return sorted(a.asset_id for a in load_assets().values() if a.kind == kind and a.split in (split, "both"))
