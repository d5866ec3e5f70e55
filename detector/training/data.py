"""Datasets as tables: a manifest CSV, or any folder with ``real/`` and ``fake/`` below it.

Both become a list of :class:`Sample` rows (path, label, source, split, group), so preparing,
training and evaluating never care where the rows came from.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
LABELS = ("real", "fake")


@dataclass(frozen=True)
class Sample:
    path: str  # absolute path
    label: int  # 1 = fake, 0 = real
    source: str
    split: str
    group: str


def _hash_split(key: str, val_fraction: float) -> str:
    """Deterministic split by group key when a folder has no split of its own."""
    h = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "val" if h < val_fraction else "train"


def read_manifest(path: str | Path) -> list[Sample]:
    """Rows of a manifest CSV with columns path,label[,source,split,group] (paths relative to it)."""
    path = Path(path)
    root = path.parent
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            label = r["label"].strip().lower()
            if label not in LABELS:
                raise ValueError(f"{path}: label must be real or fake, got {label!r}")
            p = Path(r["path"])
            full = p if p.is_absolute() else root / p
            rows.append(Sample(str(full), int(label == "fake"), r.get("source") or "unknown",
                               r.get("split") or "val", r.get("group") or r["path"]))
    return rows


def read_folder(path: str | Path, val_fraction: float = 0.0) -> list[Sample]:
    """Every image below a ``real``/``fake`` directory (any depth) of ``path``.

    The source is the path part above ``real``/``fake`` (or the folder name); the split is
    ``train``/``val`` when a path part says so, else all ``val`` (or hashed with ``val_fraction``).
    """
    root = Path(path)
    rows = []
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() not in IMAGE_SUFFIXES or not p.is_file():
            continue
        parts = [q.lower() for q in p.relative_to(root).parts[:-1]]
        label = next((q for q in reversed(parts) if q in LABELS), None)
        if label is None:
            continue
        rel = p.relative_to(root).parts[:-1]
        idx = len(parts) - 1 - parts[::-1].index(label)
        above = [q for q in rel[:idx] if q.lower() not in ("train", "val", "test")]
        source = "/".join(above) if above else root.name
        split = next((q for q in parts if q in ("train", "val", "test")), None)
        group = str(p.relative_to(root).with_suffix(""))
        if split is None:
            split = _hash_split(group, val_fraction) if val_fraction > 0 else "val"
        rows.append(Sample(str(p), int(label == "fake"), source, split, group))
    return rows


def read_dataset(path: str | Path, val_fraction: float = 0.0) -> list[Sample]:
    """A manifest CSV, a folder holding ``manifest.csv``, or a ``real``/``fake`` folder tree."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".csv":
        return read_manifest(path)
    if (path / "manifest.csv").is_file():
        return read_manifest(path / "manifest.csv")
    if path.is_dir():
        rows = read_folder(path, val_fraction)
        if not rows:
            raise ValueError(f"{path} has no images under real/ or fake/ folders")
        return rows
    raise FileNotFoundError(f"{path} is neither a manifest CSV nor a folder")
