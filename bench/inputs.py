"""The speed benchmark's inputs, made in the parent process (no TensorFlow): photo files and validation images."""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

from .common import SHARED_FACES, package_photos


def make_inputs(folder: Path, sizes: tuple[int, ...], shared_n: int, grids: tuple[int, ...] = ()) -> dict[str, Any]:
    """JPEG files of the package photos at each longer side, group photos, and shared validation images.

    A "group photo" is the 512 px astronaut tiled ``n`` x ``n``: ``n * n`` faces, each about
    1/(6n) of the picture's side -- the case where shrinking before detection loses faces.
    """
    import numpy as np
    from PIL import Image

    photos = package_photos()
    groups = []
    for n in grids:
        path = folder / f"group_{n}x{n}.jpg"
        Image.fromarray(np.tile(photos["astronaut"], (n, n, 1))).save(path, "JPEG", quality=90)
        groups.append({"name": f"group_{n}x{n}", "path": str(path), "faces": n * n})
    package = []
    for name, rgb in photos.items():
        for side in sizes:
            im = Image.fromarray(rgb)
            scale = side / max(im.size)
            im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.LANCZOS)
            path = folder / f"{name}_{side}.jpg"
            im.save(path, "JPEG", quality=90)
            package.append({"name": f"{name}_{side}", "path": str(path), "size": list(im.size)})
    return {"package": package, "groups": groups, "shared": sample_shared(shared_n)}


def sample_shared(n: int, seed: int = 0) -> list[str]:
    """``n`` validation images, taken in turn from each source (so no source dominates)."""
    manifest = SHARED_FACES / "manifest.csv"
    if n <= 0 or not manifest.is_file():
        return []
    by_source: dict[str, list[str]] = {}
    with open(manifest, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("split") == "val":
                by_source.setdefault(row["source"], []).append(str(SHARED_FACES / row["path"]))
    rng = random.Random(seed)
    for paths in by_source.values():
        rng.shuffle(paths)
    picked: list[str] = []
    queues = [by_source[k] for k in sorted(by_source)]
    while len(picked) < n and any(queues):
        for q in queues:
            if q and len(picked) < n:
                picked.append(q.pop())
    return picked
