"""Face finders compared on the same images: speed, recall, and how far the model's crop moves.

Candidates: MTCNN at several ``det_max_side`` values (TF Lite networks), MTCNN with compiled TF
graphs and with the library's own eager path, and OpenCV's Haar cascade.  Recall is the share of
images where a face was found (every input has one; for group photos: faces found / faces there);
crop IoU compares the model's square crop with the one MTCNN at 480 px gives -- on the validation
images, all under 480 px, that is the training crop.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from .common import plan, summary


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """IoU of two (x, y, w, h) boxes."""
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def face_finder_study(det, sets: dict[str, list[tuple[str, Any]]], quick: bool,
                      groups: list[tuple[str, Any, int]] = ()) -> dict[str, Any]:
    """Speed, recall and crop agreement of the face-finder candidates on each image set.

    ``groups`` are (name, rgb, faces in it): for them recall is faces found / faces there.
    """
    from detector.inference.faces import HaarFaceFinder, MtcnnFaceFinder, square_crop_box

    steps = plan(quick)
    margin = det.crop_margin
    lite = MtcnnFaceFinder(mtcnn_engine="tflite")
    lite.warmup()
    candidates: list[tuple[str, Any, int]] = [(f"mtcnn@{s}", lite, s) for s in steps["mtcnn_sides"]]
    graph = MtcnnFaceFinder(mtcnn_engine="graph")
    graph.warmup()
    candidates.append(("mtcnn-graph@320 (tf.function networks, the previous default)", graph, 320))
    if steps["eager_reference"]:
        candidates.append(("mtcnn-eager@480 (mtcnn's own path, as before)", MtcnnFaceFinder(mtcnn_engine="eager"), 480))
    candidates += [(f"haar@{s}", HaarFaceFinder(), s) for s in steps["haar_sides"]]

    def crop_of(faces, rgb):
        return square_crop_box(faces[0] if faces else None, rgb.shape[1], rgb.shape[0], margin)

    reference: dict[str, list[Any]] = {}
    out: dict[str, Any] = {}
    for name, finder, side in candidates:
        finder.det_max_side = side
        row: dict[str, Any] = {}
        for set_name, images in sets.items():
            if not images:
                continue
            finder.detect(images[0][1])  # warm
            times, found, crops = [], 0, []
            for _, rgb in images:
                t = time.perf_counter()
                faces = finder.detect(rgb)
                times.append((time.perf_counter() - t) * 1000)
                found += bool(faces)
                crops.append(crop_of(faces, rgb) if faces else None)
            ref = reference.setdefault(set_name, crops)  # the first candidate (mtcnn@480) is the reference
            overlaps = [iou((a[0], a[1], a[2], a[2]), (b[0], b[1], b[2], b[2]))
                        for a, b in zip(crops, ref, strict=True) if a is not None and b is not None]
            row[set_name] = {"ms_per_image": summary(times), "recall": round(found / len(images), 4),
                             "images": len(images),
                             "crop_iou_vs_mtcnn480": round(statistics.fmean(overlaps), 4) if overlaps else None}
        if groups:
            times, found, there = [], 0, 0
            for _, rgb, n in groups:
                t = time.perf_counter()
                found += min(n, len(finder.detect(rgb)))
                times.append((time.perf_counter() - t) * 1000)
                there += n
            row["group_photos"] = {"ms_per_image": summary(times), "recall": round(found / there, 4),
                                   "images": len(groups), "faces": there, "recall_means": "faces found / faces there",
                                   "crop_iou_vs_mtcnn480": None}
        out[name] = row
    finder = det.finder
    out["_default"] = {"name": finder.name, "det_max_side": getattr(finder, "det_max_side", None),
                       "mtcnn_engine": getattr(finder, "mtcnn_engine", None)}
    return out
