"""Detect and crop faces once, so training reads ready crops.

    python -m detector prepare --data ../shared/data/faces --out .cache/prepared/faces-native

Uses exactly the inference path (``images.load_image`` -> face finder -> ``square_crop_box`` ->
``faces.cut_square`` -> ``views.cap_native``), so the model never sees a crop the app would not
make.  Writes

* ``native.npy``  -- uint8 (N, NATIVE_MAX, NATIVE_MAX, 3): the largest face of each image at the
  image's own resolution (capped at ``views.NATIVE_MAX``), in the top-left ``side`` x ``side``
  corner (or the centre square when no face is found, as the app does);
* ``index.csv``   -- one row per crop: path, label, source, split, group, face_found, box, side,
  landmarks in native-crop pixels (for Self-Blended Images), and the *trivial features* the
  shortcut probe (``detector.evaluation.probe``) uses: width, height, file_bytes, jpeg_quality,
  brightness, sharpness.

Training and evaluation derive the 160 px semantic view and the native patches from these crops
(``detector.inference.views``).
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
from ..inference.faces import FaceBox, cut_square, get_face_finder, square_crop_box
from ..inference.images import load_image
from ..inference.views import NATIVE_MAX, cap_native
from .data import Sample, read_dataset

TRIVIAL_FEATURES = ["width", "height", "file_bytes", "jpeg_quality", "brightness", "sharpness"]
INDEX_COLUMNS = ["path", "label", "source", "split", "group", "face_found", "box", "side", "landmarks",
                 *TRIVIAL_FEATURES, "donor", "resized_to"]
FORMAT = 2  # 1: 160 px crops.npy (model 1.x); 2: native crops


def default_prepared_dir(data: str | Path, size: int = NATIVE_MAX) -> Path:
    """Where training looks for (and writes) the crop cache of ``data`` when none is named."""
    return Path(".cache/prepared") / f"{Path(data).resolve().name}-native{size}"


def crop_landmarks(face: FaceBox | None, crop: tuple[int, int, int], size: int) -> dict:
    """``face``'s landmarks in the pixels of ``crop`` resized to ``size``."""
    if face is None:
        return {}
    x0, y0, side = crop
    s = size / float(side)
    return {k: [round((x - x0) * s, 1), round((y - y0) * s, 1)] for k, (x, y) in face.landmarks.items()}


# IJG's standard luminance quantisation table (quality 50), for estimating a JPEG's quality.
_IJG_LUMA = np.array([16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
                      14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
                      92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], np.float64)


def jpeg_quality(path: str | Path) -> float:
    """Estimated IJG quality (1-100) of a JPEG from its luminance table; 100 for lossless formats."""
    from PIL import Image

    with Image.open(path) as im:
        tables = getattr(im, "quantization", None)
        if im.format != "JPEG" or not tables:
            return 100.0
        luma = np.array(tables[0], np.float64)
    best, best_err = 100, float("inf")
    for q in range(1, 101):
        scale = 5000.0 / q if q < 50 else 200.0 - 2 * q
        table = np.clip(np.floor((_IJG_LUMA * scale + 50) / 100), 1, 255)
        err = float(np.abs(np.sort(table) - np.sort(luma)).sum())
        if err < best_err:
            best, best_err = q, err
    return float(best)


def trivial_features(path: str, rgb: np.ndarray) -> dict:
    """The cues a shortcut could use: size, file size, JPEG quality, brightness, sharpness."""
    import cv2

    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return {"width": int(rgb.shape[1]), "height": int(rgb.shape[0]), "file_bytes": int(Path(path).stat().st_size),
            "jpeg_quality": jpeg_quality(path), "brightness": round(float(gray.mean()), 2),
            "sharpness": round(float(cv2.Laplacian(gray, cv2.CV_64F).var()), 2)}


def prepare(samples: list[Sample], out_dir: Path, native_max: int = NATIVE_MAX, detector: str = "auto",
            crop_cfg: CropConfig | None = None, batch: int = 32) -> Path:
    crop_cfg = crop_cfg or CropConfig()
    finder = get_face_finder(detector, crop_cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    crops = np.lib.format.open_memmap(out_dir / "native.tmp.npy", mode="w+", dtype=np.uint8,
                                      shape=(len(samples), native_max, native_max, 3))
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
        for i, rgb, faces in zip(ok_ids, images, finder.detect_many(images), strict=True):
            face = faces[0] if faces else None
            found += face is not None
            box = square_crop_box(face, rgb.shape[1], rgb.shape[0], crop_cfg.margin)
            native = cap_native(cut_square(rgb, box), native_max)
            side = native.shape[0]
            crops[i] = 0
            crops[i, :side, :side] = native
            s = samples[i]
            index_rows[i] = {
                "path": s.path, "label": s.label, "source": s.source, "split": s.split, "group": s.group,
                "face_found": int(face is not None), "box": json.dumps(face.as_list() if face else None),
                "side": side, "landmarks": json.dumps(crop_landmarks(face, box, side)),
                **trivial_features(s.path, rgb), "donor": "", "resized_to": "",
            }
        bar.update(len(ids))
        bar.set_postfix(faces=f"{found}/{start + len(ids)}")
    bar.close()
    paired = pair_fake_only(samples, index_rows, crops, finder, crop_cfg, native_max)
    keep = sorted(index_rows)
    final = np.lib.format.open_memmap(out_dir / "native.npy", mode="w+", dtype=np.uint8,
                                      shape=(len(keep), native_max, native_max, 3))
    for j, i in enumerate(keep):
        final[j] = crops[i]
    final.flush()
    del crops
    (out_dir / "native.tmp.npy").unlink()
    rows = [index_rows[i] for i in keep]
    with open(out_dir / "index.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=INDEX_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    (out_dir / "prepare.json").write_text(json.dumps({
        "format": FORMAT, "native_max": native_max, "detector": finder.name, "margin": crop_cfg.margin,
        "n": len(rows), "faces_found": sum(r["face_found"] for r in rows), "paired": paired}, indent=2))
    return out_dir


def pair_fake_only(samples: list[Sample], index_rows: dict[int, dict], crops: np.ndarray, finder,
                   crop_cfg: CropConfig, native_max: int) -> dict:
    """Give every fake-only source matched real partners (:mod:`detector.training.pairing`), in place.

    Each kept fake is stored at its partner's size (shrunk, JPEG 90, face found again); its partner
    moves to the fake-only source; unmatched fakes are dropped from the index.
    """
    from . import pairing

    rows = [index_rows.get(i) for i in range(len(samples))]
    present = [i for i in range(len(samples)) if rows[i] is not None]
    flat = [rows[i] for i in present]
    only = pairing.fake_only_sources(flat)
    if not only:
        return {}
    usable = np.array([bool(r["face_found"]) for r in flat])
    images = {k: load_image(flat[k]["path"], Limits()).rgb for k, r in enumerate(flat)
              if r["source"] in only and r["face_found"]}
    pairs = pairing.caliper(flat, images, pairing.match_resized(flat, images, usable))
    report = {s: {"fakes": sum(r["source"] == s for r in flat), "paired": 0} for s in only}
    for k, r in enumerate(flat):
        if r["source"] in only and k not in pairs:
            del index_rows[present[k]]
    for k, (j, size) in pairs.items():
        i, partner = present[k], flat[j]
        px, nbytes = pairing.shrink_jpeg(images[k], size, size)
        faces = finder.detect(px)
        face = faces[0] if faces else None
        box = square_crop_box(face, size, size, crop_cfg.margin)
        native = cap_native(cut_square(px, box), native_max)
        side = native.shape[0]
        crops[i] = 0
        crops[i, :side, :side] = native
        import cv2

        gray = cv2.cvtColor(px, cv2.COLOR_RGB2GRAY)
        index_rows[i].update({
            "face_found": int(face is not None), "box": json.dumps(face.as_list() if face else None), "side": side,
            "landmarks": json.dumps(crop_landmarks(face, box, side)), "width": size, "height": size,
            "file_bytes": nbytes, "jpeg_quality": 90.0, "brightness": round(float(gray.mean()), 2),
            "sharpness": round(float(cv2.Laplacian(gray, cv2.CV_64F).var()), 2), "resized_to": size})
        partner.update({"donor": partner["source"], "source": index_rows[i]["source"]})
        report[index_rows[i]["source"]]["paired"] += 1
    return report


class Prepared:
    """A prepared folder: ``native`` crops (memmap), ``rows`` (dicts) and column arrays."""

    def __init__(self, out_dir: str | Path):
        out_dir = Path(out_dir)
        meta = json.loads((out_dir / "prepare.json").read_text())
        if meta.get("format") != FORMAT:
            raise SystemExit(f"{out_dir} was prepared by an older version (160 px crops); "
                             f"run `python -m detector prepare` again into a new folder")
        self.dir, self.meta = out_dir, meta
        self.native = np.load(out_dir / "native.npy", mmap_mode="r")
        with open(out_dir / "index.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        for r in rows:
            r["label"] = int(r["label"])
            r["face_found"] = int(r["face_found"])
            r["side"] = int(r["side"])
            r["landmarks"] = json.loads(r["landmarks"])
            for k in TRIVIAL_FEATURES:
                r[k] = float(r[k])
        self.rows = rows
        self.label = np.array([r["label"] for r in rows], np.int64)
        self.source = np.array([r["source"] for r in rows])
        self.split = np.array([r["split"] for r in rows])
        self.group = np.array([r["group"] for r in rows])
        self.face_found = np.array([r["face_found"] for r in rows], bool)

    def __len__(self) -> int:
        return len(self.rows)

    def crop(self, i: int) -> np.ndarray:
        """Native crop ``i`` (uint8, side x side), a copy."""
        s = self.rows[i]["side"]
        return np.array(self.native[i, :s, :s])


def load_prepared(out_dir: str | Path) -> Prepared:
    return Prepared(out_dir)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m detector prepare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="manifest CSV, folder with manifest.csv, or folder with real/ and fake/")
    p.add_argument("--out", required=True, help="output folder for native.npy and index.csv")
    p.add_argument("--native-max", type=int, default=NATIVE_MAX,
                   help=f"largest stored crop side; bigger crops are reduced to it (default {NATIVE_MAX})")
    p.add_argument("--face-finder", "--detector", dest="detector", default="auto", choices=FACE_DETECTORS,
                   help="face finder (--detector: the older name)")
    p.add_argument("--batch", type=int, default=32, help="images per batched face-detection call")
    p.add_argument("--limit", type=int, default=0, help="only the first N rows (for a quick try)")
    a = p.parse_args(argv)
    samples = read_dataset(a.data)
    if a.limit:
        samples = samples[:a.limit]
    out = prepare(samples, Path(a.out), a.native_max, a.detector, batch=a.batch)
    print(json.loads((out / "prepare.json").read_text()))


if __name__ == "__main__":
    main()
