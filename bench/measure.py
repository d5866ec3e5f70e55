"""One pipeline measured in a fresh process: load, cold start, latency, scan throughput, memory.

    python -m bench.measure --pipeline ours --inputs inputs.json --result ours.json --repeats 30

``bench.speed`` starts this once per pipeline (ours, then the seed architecture) so that neither
inherits the other's memory, caches or threads; it is not meant to be run by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import time
from pathlib import Path
from typing import Any

from detector.config import DEFAULT_CAM_METHOD

from .common import HEADLINE_PHOTO, SEED_ARCH, SEED_SIZE, peak_rss_mb, plan, rss_mb, summary
from .face_finders import face_finder_study


def time_e2e(det, data: bytes, repeats: int, warm: int = 2) -> dict[str, Any]:
    """Latency of ``analyze`` on JPEG bytes, with Grad-CAM++ and the overlay, per stage."""
    for _ in range(warm):
        det.analyze(data, cam_method=DEFAULT_CAM_METHOD, render_overlay=True)
    stages: dict[str, list[float]] = {}
    wall: list[float] = []
    faces = 0
    for _ in range(repeats):
        t = time.perf_counter()
        res = det.analyze(data, cam_method=DEFAULT_CAM_METHOD, render_overlay=True)
        wall.append((time.perf_counter() - t) * 1000)
        faces = sum(f.detector_score is not None for f in res.faces)
        for k, v in res.timings_ms.items():
            stages.setdefault(k, []).append(v)
    return {"stages_ms": {k: summary(v) for k, v in stages.items()}, "wall_ms": summary(wall), "faces_found": faces}


def scan_throughput(det, files: list[str]) -> dict[str, Any]:
    """Images/s and face crops/s with heatmaps off, through the batch scan, over ``files`` (decode included)."""
    from detector.batch.scan import Scanner, ScanOptions

    if not files:
        return {"images": 0}

    def run(paths: list[str]) -> tuple[int, int]:
        scanner = Scanner(det, ScanOptions(cam_method=None))
        records = list(scanner.run([Path(p) for p in paths]))
        return sum(r.error is None for r in records), scanner.n_crops

    run(files[:2])  # warm the scan path (threads, batch shapes)
    t = time.perf_counter()
    images, crops = run(files)
    seconds = time.perf_counter() - t
    return {"impl": "detector.batch.scan.Scanner (cam_method=None)", "images": images, "face_crops": crops,
            "seconds": round(seconds, 3), "images_per_s": round(images / seconds, 2),
            "crops_per_s": round(crops / seconds, 2)}


def model_only_throughput(det, n: int = 64, batch: int = 32, rounds: int = 3) -> dict[str, Any]:
    """Crops/s of the classifier alone (no faces, no decode, no heatmaps), batches of ``batch``."""
    import numpy as np

    from detector.inference.views import face_views

    size = det.config.input_size
    natives = list(np.random.default_rng(0).integers(0, 256, (n, 200, 200, 3), dtype=np.uint8))
    v = face_views(natives, det.spec, det.has_patches)  # the views are cut once: the network alone is timed
    feed = {"image": v.image, "patches": v.patches}
    det.classifier.predict({k: None if a is None else a[:batch] for k, a in feed.items()}, batch=batch)
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        det.classifier.predict(feed, batch=batch)
        best = min(best, time.perf_counter() - t)
    return {"crops_per_s": round(n / best, 1), "batch": batch, "input_size": size, "inputs": list(det.config.inputs)}


def in_tensorflow(det):
    """A copy of ``det`` whose classifier (and Grad-CAM) runs in TensorFlow, warmed up; it shares the face finder."""
    import numpy as np

    from detector.inference.forward import Classifier
    from detector.inference.views import face_views
    from explain.gradcam import CamExplainer

    in_tf = copy.copy(det)
    in_tf.classifier = Classifier.from_keras(det.model, det.layout)
    in_tf.explainer = CamExplainer(in_tf.classifier.forward, det.layout)
    v = face_views([np.zeros((128, 128, 3), np.uint8)], det.spec, det.has_patches)
    in_tf.explainer.explain(v.feed(in_tf.classifier.inputs), 0.5, v.boxes)
    return in_tf


def make_seed_bundle(folder: Path) -> None:
    """The seed project's architecture, untrained (speed does not depend on the weights)."""
    from detector.inference.bundle import ModelConfig
    from detector.training.export import save_bundle
    from detector.training.model import build_model

    model, cam_layer = build_model(SEED_ARCH, SEED_SIZE, pretrained=False)
    cfg = ModelConfig(name="seed-efficientnetv2b0 (untrained, benchmark only)", version="bench",
                      architecture=SEED_ARCH, input_size=SEED_SIZE, cam_layer=cam_layer, threshold=0.5)
    save_bundle(model, cfg, folder)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every figure of one pipeline, measured in this fresh process."""
    spawned_at = args.spawned_at
    inputs = json.loads(Path(args.inputs).read_text())
    steps = plan(args.quick)
    package = {p["name"]: p for p in inputs["package"]}
    first_photo = Path(package[HEADLINE_PHOTO]["path"]).read_bytes()
    r: dict[str, Any] = {"pipeline": args.pipeline}

    # --- cold start of this process: import, build, first answer (the no-app definition)
    t = time.perf_counter()
    from detector import Detector, get_detector

    r["import_s"] = round(time.perf_counter() - t, 3)
    t = time.perf_counter()
    det = get_detector() if args.model_dir is None else Detector(args.model_dir)
    r["detector_init_s"] = round(time.perf_counter() - t, 3)  # load + face finder + warm-up
    det.analyze(first_photo, cam_method=DEFAULT_CAM_METHOD, render_overlay=True)
    r["process_cold_start_s"] = round(time.time() - spawned_at, 3)
    r["model"] = det.model_info()
    r["model_dir"] = str(det.model_dir)

    from detector.inference.bundle import load_bundle

    t = time.perf_counter()
    load_bundle(det.model_dir)
    r["model_load_s"] = round(time.perf_counter() - t, 3)
    r["rss_after_load_mb"] = rss_mb()

    r["e2e"] = {name: time_e2e(det, Path(package[name]["path"]).read_bytes(), args.repeats)
                for name in steps["e2e"] if name in package}
    if not args.quick:
        # The same photo the way this project (and the seed) first ran it: mtcnn's eager path at
        # 480 px and the classifier with Grad-CAM in TensorFlow.
        from detector.inference.faces import MtcnnFaceFinder

        in_tf = in_tensorflow(det)
        before = copy.copy(in_tf)
        before.finder = MtcnnFaceFinder(det_max_side=480, mtcnn_engine="eager")
        r["e2e_as_first_built"] = time_e2e(before, first_photo, args.repeats)
    scan_files = inputs["shared"] + [p["path"] for p in inputs["package"]]
    r["scan"] = scan_throughput(det, scan_files)
    r["model_only"] = model_only_throughput(det)
    r["peak_rss_mb"] = peak_rss_mb()
    r["engine"] = det.engine
    if det.engine == "tflite" and not args.quick:
        # What the TF Lite copy buys: the same model, same photo and face finder, in TensorFlow.
        r["e2e_tensorflow_engine"] = time_e2e(in_tf, first_photo, args.repeats)
        r["model_only_tensorflow_engine"] = model_only_throughput(in_tf)

    if args.pipeline == "ours":
        from detector.errors import DetectorError
        from detector.inference.images import load_image

        def decoded(paths: list[str]) -> list[tuple[str, Any]]:
            out = []
            for p in paths:
                with contextlib.suppress(DetectorError):
                    out.append((p, load_image(p, det.limits).rgb))
            return out

        sets = {"shared_val": decoded(inputs["shared"]), "package": decoded([p["path"] for p in inputs["package"]])}
        groups = [(g["name"], load_image(g["path"], det.limits).rgb, g["faces"]) for g in inputs["groups"]]
        r["face_detectors"] = face_finder_study(det, sets, args.quick, groups)
        if args.make_seed:
            t = time.perf_counter()
            make_seed_bundle(Path(args.make_seed))
            r["seed_bundle_build_s"] = round(time.perf_counter() - t, 1)
    return r


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.measure", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pipeline", choices=("ours", "seed"), required=True)
    p.add_argument("--inputs", required=True, help="inputs.json written by bench.inputs.make_inputs")
    p.add_argument("--result", required=True, help="where to write this pipeline's JSON")
    p.add_argument("--repeats", type=int, default=30, help="timed analyze() calls per photo")
    p.add_argument("--quick", action="store_true", help="the small plan (bench.common.QUICK)")
    p.add_argument("--model-dir", default=None, help="model folder (default: the detector's own default)")
    p.add_argument("--make-seed", default=None, help="also build the seed architecture's model folder here")
    p.add_argument("--spawned-at", type=float, required=True, help="time.time() when the parent started this")
    args = p.parse_args(argv)
    Path(args.result).write_text(json.dumps(measure(args), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
