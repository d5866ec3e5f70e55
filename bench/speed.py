"""How fast is the detector, and how much faster than the seed project's model?

    python -m bench.speed --out runs/bench/speed.json          # full run (a few minutes)
    python -m bench.speed --quick                              # tiny run, for tests and development

Prints one JSON object on stdout (and to ``--out``), and a short table on stderr.  Every figure
is measured twice on the same machine in the same run: for **ours** (the shipped model, or
``FDET_MODEL_DIR``) and for the **seed** -- the same pipeline with the seed project's
EfficientNetV2-B0 at 256 px (``weights=None``: speed does not depend on the weights) -- and
comes with a ratio, ``speedup`` = how many times better ours is (>1 means ours wins).

What is measured, and how:

* model load -- ``load_bundle`` (hash check + Keras load) of the model folder;
* cold start -- from launching a process to its first answer: ``python app.py --port N`` then
  one ``/detect`` call through ``gradio_client`` when ``app.py`` exists, otherwise a process that
  imports ``detector.inference.pipeline``, builds the detector and analyses one photo (``cold_start.mode``
  says which);
* end-to-end latency -- ``Detector.analyze`` on JPEG bytes of a single-face photo (decode ->
  faces -> model with Grad-CAM -> overlay), p50/p95 per stage from ``DetectionResult.timings_ms``;
* scan throughput -- images/s and face crops/s with heatmaps off, through ``detector.batch.scan``;
* peak memory -- ``ru_maxrss`` of the process after the latency and scan runs;
* face finders -- speed, recall (fraction of images with a face found: every input has one)
  and how far the crop moves (IoU of the model's square crop with the one MTCNN at 480 px
  gives: on the validation images, all under 480 px, that is the training crop) for MTCNN at
  several ``det_max_side`` values and Haar, on the shared validation faces (when
  ``../shared/data/faces`` exists), on photos shipped with scikit-image/matplotlib, and on
  "group photos" (the astronaut tiled 3x3 and 4x4: recall = faces found / faces there);
* context -- outside ``--quick``, both pipelines also run the headline photo the way this project
  (and the seed) first ran it -- MTCNN's eager path at 480 px, the classifier in TensorFlow:
  ``e2e_as_first_built`` -- and with today's face finder but the classifier in TensorFlow instead of
  its TF Lite copy: ``e2e_tensorflow_engine``, ``model_only_tensorflow_engine``.

Each pipeline runs in its own fresh process (``bench.measure``), one after the other, so neither
inherits the other's memory, caches or threads; ``bench.face_finders``, ``bench.cold_start`` and
``bench.report`` hold the face-finder comparison, the app's cold start and the report.  Inputs are made here: the astronaut and Grace Hopper
photos re-encoded as JPEG at a few sizes, plus ``--shared-n`` validation images sampled evenly
from each source.  Timings are only as quiet as the machine: ``meta.load_avg`` tells whether
something else was running.  Targets are reported (``targets``), never enforced.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .cold_start import app_cold_start
from .common import HEADLINE_PHOTO, PROJECT_ROOT, SEED_ARCH, SEED_SIZE, child_env, emit, git_commit, plan, run_or_fail
from .inputs import make_inputs
from .report import check_targets, compare, table

COLD_START_RUNS = 3  # app cold starts per pipeline; the report gives their median


def run_worker(kind: str, inputs: Path, tmp: Path, args: argparse.Namespace, model_dir: Path | None = None,
               make_seed: Path | None = None) -> dict[str, Any]:
    result = tmp / f"{kind}.json"
    cmd = [sys.executable, "-m", "bench.measure", "--pipeline", kind, "--inputs", str(inputs),
           "--result", str(result), "--repeats", str(args.repeats)]
    if args.quick:
        cmd.append("--quick")
    if model_dir is not None:
        cmd += ["--model-dir", str(model_dir)]
    if make_seed is not None:
        cmd += ["--make-seed", str(make_seed)]
    cmd += ["--spawned-at", repr(time.time())]  # last, so the cold start counts from the launch
    proc = subprocess.run(cmd, cwd=PROJECT_ROOT, env=child_env(), capture_output=True, text=True)
    if proc.returncode != 0 or not result.is_file():
        tail = "\n".join((proc.stderr or "").strip().splitlines()[-15:])
        raise RuntimeError(f"the {kind} worker failed (exit {proc.returncode}):\n{tail}")
    return json.loads(result.read_text())


def run(args: argparse.Namespace) -> dict[str, Any]:
    steps = plan(args.quick)
    started = time.time()
    load_start = [round(x, 2) for x in os.getloadavg()]
    tmp = Path(tempfile.mkdtemp(prefix="fdet-bench-"))
    try:
        inputs = make_inputs(tmp, steps["sizes"], args.shared_n, steps["group_grids"])
        inputs_path = tmp / "inputs.json"
        inputs_path.write_text(json.dumps(inputs))
        seed_dir = tmp / "seed-model"
        ours = run_worker("ours", inputs_path, tmp, args, make_seed=seed_dir)
        seed = run_worker("seed", inputs_path, tmp, args, model_dir=seed_dir)
        photo = next(p["path"] for p in inputs["package"] if p["name"] == HEADLINE_PHOTO)
        use_app = (PROJECT_ROOT / "app.py").is_file() and not args.quick and not args.no_app
        # Cold starts vary by ~1 s run to run: the median of several, ours and the seed's interleaved.
        runs: dict[str, list[dict[str, Any]]] = {"ours": [], "seed": []}
        errors: dict[str, str] = {}
        for _ in range(COLD_START_RUNS if use_app else 0):
            for name, model_dir in (("ours", None), ("seed", seed_dir)):
                if name in errors:
                    continue
                try:
                    runs[name].append(app_cold_start(photo, model_dir))
                except Exception as exc:  # noqa: BLE001 - an app failure must not lose the other numbers
                    errors[name] = f"{type(exc).__name__}: {exc}"
        for name, r in (("ours", ours), ("seed", seed)):
            r["cold_start"] = {"mode": "process", "cold_start_s": r["process_cold_start_s"]}
            if runs[name]:
                r["cold_start"] = {"mode": "app", "cold_start_s": statistics.median(x["cold_start_s"] for x in runs[name]),
                                   "port_open_s": statistics.median(x["port_open_s"] for x in runs[name]),
                                   "runs_s": [x["cold_start_s"] for x in runs[name]],
                                   "process_cold_start_s": r["process_cold_start_s"]}
            if name in errors:
                r["cold_start"]["app_error"] = errors[name]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    vs_seed = compare(ours, seed)
    load_end = [round(x, 2) for x in os.getloadavg()]
    cpus = os.cpu_count() or 1
    report = {
        "meta": {"started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
                 "elapsed_s": round(time.time() - started, 1), "quick": bool(args.quick), "repeats": args.repeats,
                 "shared_n": len(inputs["shared"]), "package_photos": [p["name"] for p in inputs["package"]],
                 "headline_photo": HEADLINE_PHOTO, "cpu_count": cpus, "load_avg_start": load_start,
                 "load_avg_end": load_end, "busy_machine": max(load_start[0], load_end[0]) > 0.5 * cpus,
                 "python": platform.python_version(), "platform": platform.platform(), "git_commit": git_commit(),
                 "speedup_means": "how many times better ours is than the seed (>1: ours wins)",
                 "seed": f"{SEED_ARCH} at {SEED_SIZE}x{SEED_SIZE}, weights=None, same pipeline and face finder"},
        "ours": ours,
        "seed": seed,
        "vs_seed": vs_seed,
        "targets": check_targets(ours, vs_seed),
    }
    return report


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.speed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=None,
                   help="timed analyze() calls per photo for the latency percentiles (default 30; 3 with --quick)")
    p.add_argument("--shared-n", type=int, default=None,
                   help="validation images sampled from ../shared/data/faces for the scan and face-finder "
                        "figures, evenly across sources (default 200; 6 with --quick; 0 = package photos only)")
    p.add_argument("--quick", action="store_true",
                   help="tiny run for tests and development: one photo size, fewer repeats and candidates, "
                        "cold start of a bare process instead of app.py")
    p.add_argument("--no-app", action="store_true",
                   help="measure cold start with a bare process even when app.py exists")
    p.add_argument("--out", default=None, help="also write the JSON report to this file")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 30
    if args.shared_n is None:
        args.shared_n = 6 if args.quick else 200
    if args.repeats < 1:
        raise SystemExit("--repeats must be at least 1")
    report = run_or_fail(run, args)
    if report is None:
        return 1
    print(table(report), file=sys.stderr)
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
