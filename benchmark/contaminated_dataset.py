"""Writing a contaminated copy of a dataset (``mkdata contaminate``), for training any tool on it.

DST is an MVTec AD category again (anomalib's ``MVTecAD`` and ``Folder`` open it unmodified):
``train/good/`` holds the normal and the anomalous training images, renamed ``00000.png``… in the
seeded training order (names say nothing of which are anomalous); ``test/`` and ``ground_truth/``
keep SRC's names (less the moved images for ``test-defects``). Files are hard links to SRC's
(copies where a link is impossible, never symlinks; synthesised images are new PNGs), so do not
edit DST's images in place. The hidden ground truth lies beside, for evaluation only:

- ``contamination.json``: SRC, kind, mode, ratio, achieved ratio, seed, overlap, counts, the drawn
  indices (normal images left out, anomalies chosen among the candidates), per training file its
  source, whether it is anomalous, its defect type and mask, and the test images moved out.
- ``contamination_masks.zip``: the masks of the anomalous training images, ``<stem>_mask.png``
  (0/255). Not PNG files in a folder: anomalib's MVTecAD reads every image under the category
  folder and fails on any outside ``train/``, ``test/`` and ``ground_truth/``.

The whole of DST is built in a temporary sibling folder and renamed into place, so DST is either
absent (or the empty folder it was) or complete; every check is made before anything is written.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mkdata.benchmark.contamination import CANDIDATES, Contamination, SyntheticSample, contaminate, default_kind, source_name
from mkdata.benchmark.datasets import DatasetSplit, read_category
from mkdata.errors import BadInput
from mkdata.files import png_bytes, write_bytes_atomic, write_text_atomic

RECORD = "contamination.json"
MASKS = "contamination_masks.zip"
FORMAT = 1
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so the same draw writes the same bytes


@dataclass(frozen=True)
class ContaminatedDataset:
    """What ``contaminate_dataset`` wrote (the CLI prints it)."""

    path: Path
    kind: str
    mode: str
    ratio: float
    achieved_ratio: float
    n_train: int
    n_anomalous: int
    test_before: int
    test_after: int
    copied: int  # files copied because a hard link was impossible

    @property
    def test_removed(self) -> int:
        """How much the test set shrank (``test-defects`` without overlap; else 0)."""
        return self.test_before - self.test_after


def contaminate_dataset(src: str | Path, ratio: float, out: str | Path, kind: str | None = None, seed: int = 0,
                        mode: str = "replace", overlap: bool = False) -> ContaminatedDataset:
    """Write DST=``out``: SRC's dataset whose training set is a ``ratio`` share anomalous.

    ``kind``: ``pool``, ``test-defects`` or ``synthetic`` (None: ``pool`` if SRC has one, else
    ``test-defects``); ``mode``: ``replace`` (SRC's training-set size) or ``add`` (every normal
    image kept); ``overlap``: moved test defects stay in the test set. BadInput before anything
    is written for a bad option, an SRC not in the MVTec AD layout, an existing non-empty DST, or
    too few anomalous images for ``ratio`` (saying how many are needed).
    """
    src, out = Path(src), Path(out)
    try:
        split = read_category(src)
    except BadInput as error:
        raise BadInput(f"SRC: {error}") from None
    _check_out(src, out)
    contamination = contaminate(split, ratio, kind or default_kind(src), seed, mode, overlap)
    temp = out.parent / f".{out.name}.{os.getpid()}.tmp"
    shutil.rmtree(temp, ignore_errors=True)
    try:
        copied = _write(contamination, split, temp)
        if out.exists():
            out.rmdir()
        temp.rename(out)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return ContaminatedDataset(out, contamination.kind, mode, float(ratio), contamination.achieved_ratio,
                               len(contamination.split.train), contamination.n_anomalous, len(split.test),
                               len(contamination.split.test), copied)


def _check_out(src: Path, out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BadInput(f"--out {out} exists and is not an empty folder; give a new folder")
    if out.resolve().is_relative_to(src.resolve()):
        raise BadInput(f"--out {out} lies inside SRC {src}; anomalib would read it as part of SRC")


def _link(source: Path, target: Path) -> bool:
    """Hard-link ``source`` to ``target`` (a copy where linking is impossible); True if copied."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
        return False
    except OSError:
        shutil.copyfile(source, target)
        return True


def _write(contamination: Contamination, source: DatasetSplit, folder: Path) -> int:
    """Write every file of DST into ``folder``; returns how many were copied, not linked."""
    root, split = source.root, contamination.split
    width = max(5, len(str(len(split.train) - 1)))
    copied, entries, masks = 0, [], {}
    for i, (sample, anomalous) in enumerate(zip(split.train, split.contaminated)):
        stem = f"{i:0{width}d}"
        name = stem + (".png" if isinstance(sample, SyntheticSample) else Path(sample.path).suffix)
        target = folder / "train" / "good" / name
        entry: dict[str, Any] = {"file": f"train/good/{name}", "anomalous": anomalous, "source": source_name(sample, root)}
        mask: bytes | None = None
        if isinstance(sample, SyntheticSample):
            image, mask_array = sample.synthesised()
            write_bytes_atomic(target, png_bytes(image))
            mask = png_bytes(mask_array * 255)
            entry["synthesis"] = {"method": sample.defect_type, "stream": list(sample.stream)}
        else:
            copied += _link(Path(sample.path), target)
            mask = Path(sample.mask_path).read_bytes() if sample.mask_path is not None else None
        if anomalous:
            entry["defect_type"] = sample.defect_type
            entry["mask"] = f"{stem}_mask.png" if mask is not None else None
            if mask is not None:
                masks[f"{stem}_mask.png"] = mask
        entries.append(entry)
    (folder / "test").mkdir(parents=True, exist_ok=True)  # the layout needs it even with no test image
    for sample in split.test:
        copied += _link(Path(sample.path), folder / Path(sample.path).relative_to(root))
        if sample.mask_path is not None:
            copied += _link(Path(sample.mask_path), folder / Path(sample.mask_path).relative_to(root))
    write_bytes_atomic(folder / MASKS, _zip(masks))
    write_text_atomic(folder / RECORD, json.dumps(_record(contamination, source, entries), indent=1) + "\n")
    return copied


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name in sorted(files):
            archive.writestr(zipfile.ZipInfo(name, ZIP_DATE), files[name])
    return buffer.getvalue()


def _record(contamination: Contamination, source: DatasetSplit, train: list[dict[str, Any]]) -> dict[str, Any]:
    root = source.root
    return {
        "format": FORMAT,
        "source": str(root.resolve()),
        "kind": contamination.kind, "mode": contamination.mode, "ratio": contamination.ratio,
        "achieved_ratio": contamination.achieved_ratio, "seed": contamination.seed, "overlap": contamination.overlap,
        "counts": {
            "source_train": len(source.train), "train": len(contamination.split.train),
            "anomalous": contamination.n_anomalous, "normal": len(contamination.split.train) - contamination.n_anomalous,
            "test_before": len(source.test), "test_after": len(contamination.split.test),
            "test_removed": len(source.test) - len(contamination.split.test),
        },
        "drawn": {
            "left_out": list(contamination.left_out),
            "candidates": CANDIDATES[contamination.kind],
            "chosen": list(contamination.chosen),
        },
        "train": train,
        "test_removed": [source_name(s, root) for s in contamination.moved_out_of_test],
        "masks": MASKS,
    }
