"""Detect and crop faces once, so training reads ready crops.

    python -m detector prepare --data ../shared/data/faces --out .cache/prepared/faces-160

Uses exactly the inference path (``images.load_image`` -> face finder -> ``square_crop_box`` ->
``crop_square``), so the model never sees a crop the app would not make.  Writes

* ``crops.npy``   -- uint8 (N, S, S, 3), the largest face of each image (or the centre square
  when no face is found, as the app does);
* ``index.csv``   -- one row per crop: path, label, source, split, group, face_found, box,
  landmarks in crop pixels (for Self-Blended Images).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..config import FACE_FINDERS as FACE_DETECTORS
from ..config import CropConfig, Limits
from ..errors import ImageError
from ..inference.faces import FaceBox, crop_square, get_face_finder, square_crop_box
from ..inference.images import load_image
from .data import Sample, read_dataset

INDEX_COLUMNS = ["path", "label", "source", "split", "group", "face_found", "box", "landmarks"]


def default_prepared_dir(data: str | Path, size: int) -> Path:
    """Where training looks for (and writes) the crop cache of ``data`` when none is named."""
    return Path(".cache/prepared") / f"{Path(data).resolve().name}-{size}"


def crop_landmarks(face: FaceBox | None, crop: tuple[int, int, int], size: int) -> dict:
    if face is None:
        return {}
    x0, y0, side = crop
    s = size / float(side)
    return {k: [round((x - x0) * s, 1), round((y - y0) * s, 1)] for k, (x, y) in face.landmarks.items()}


def prepare(samples: list[Sample], out_dir: Path, size: int = 160, detector: str = "auto",
            crop_cfg: CropConfig | None = None, batch: int = 32) -> Path:
    crop_cfg = crop_cfg or CropConfig()
    finder = get_face_finder(detector, crop_cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    crops = np.lib.format.open_memmap(out_dir / "crops.tmp.npy", mode="w+", dtype=np.uint8,
                                      shape=(len(samples), size, size, 3))
    rows: list[dict] = []
    # Batch images of one source together: MTCNN pads a batch to its largest image.
    order = sorted(range(len(samples)), key=lambda i: (samples[i].source, samples[i].path))
    found = 0
    bar = tqdm(total=len(samples), desc="cropping faces", unit="img")
    index_rows: dict[int, dict] = {}
    for start in range(0, len(order), batch):
        ids = order[start:start + batch]
        images, ok_ids = [], []
        for i in ids:
            try:
                images.append(load_image(samples[i].path, Limits()).rgb)
                ok_ids.append(i)
            except ImageError as exc:
                tqdm.write(f"skipping {samples[i].path}: {exc}")
        for i, rgb, faces in zip(ok_ids, images, finder.detect_many(images)):
            face = faces[0] if faces else None
            found += face is not None
            box = square_crop_box(face, rgb.shape[1], rgb.shape[0], crop_cfg.margin)
            crops[i] = crop_square(rgb, box, size)
            s = samples[i]
            index_rows[i] = {
                "path": s.path, "label": s.label, "source": s.source, "split": s.split, "group": s.group,
                "face_found": int(face is not None), "box": json.dumps(face.as_list() if face else None),
                "landmarks": json.dumps(crop_landmarks(face, box, size)),
            }
        bar.update(len(ids))
        bar.set_postfix(faces=f"{found}/{start + len(ids)}")
    bar.close()
    keep = sorted(index_rows)
    final = np.lib.format.open_memmap(out_dir / "crops.npy", mode="w+", dtype=np.uint8,
                                      shape=(len(keep), size, size, 3))
    for j, i in enumerate(keep):
        final[j] = crops[i]
        rows.append(index_rows[i])
    final.flush()
    del crops
    (out_dir / "crops.tmp.npy").unlink()
    with open(out_dir / "index.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=INDEX_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    (out_dir / "prepare.json").write_text(json.dumps({
        "size": size, "detector": finder.name, "margin": crop_cfg.margin, "n": len(rows),
        "faces_found": sum(r["face_found"] for r in rows)}, indent=2))
    return out_dir


def load_prepared(out_dir: str | Path) -> tuple[np.ndarray, list[dict]]:
    """(crops memmap, index rows) of a prepared folder."""
    out_dir = Path(out_dir)
    crops = np.load(out_dir / "crops.npy", mmap_mode="r")
    with open(out_dir / "index.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["label"] = int(r["label"])
        r["face_found"] = int(r["face_found"])
        r["landmarks"] = json.loads(r["landmarks"])
    return crops, rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m detector prepare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="manifest CSV, folder with manifest.csv, or folder with real/ and fake/")
    p.add_argument("--out", required=True, help="output folder for crops.npy and index.csv")
    p.add_argument("--size", type=int, default=160, help="crop size in pixels (the model input size)")
    p.add_argument("--face-finder", "--detector", dest="detector", default="auto", choices=FACE_DETECTORS, help="face finder (--detector: the older name)")
    p.add_argument("--batch", type=int, default=32, help="images per batched face-detection call")
    p.add_argument("--limit", type=int, default=0, help="only the first N rows (for a quick try)")
    a = p.parse_args(argv)
    samples = read_dataset(a.data)
    if a.limit:
        samples = samples[:a.limit]
    out = prepare(samples, Path(a.out), a.size, a.detector, batch=a.batch)
    print(json.loads((out / "prepare.json").read_text()))


if __name__ == "__main__":
    main()
