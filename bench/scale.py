"""Scanning at scale: the local engine against Ray with 1 and 2 actors, on the same images.

    python -m bench.scale --out runs/bench/scale.json     # 200 validation images + package photos, 3 passes
    python -m bench.scale --quick                         # a handful of images, local and 1 actor (tests)

Prints one JSON object on stdout (and to ``--out``).  Each engine runs in its own fresh process, one
after the other, over the same list of files (``--passes`` copies of it, so a run lasts long
enough to be timed apart from its start-up):

* ``local`` -- the local engine (``detector.batch.local_engine.Scanner``, heatmaps off) in one
  process: ``startup_s`` from launching the process to the detector loaded; ``crops_per_s`` over
  the files after a warm-up of 8; ``cores_used`` = its CPU seconds / wall seconds;
* ``ray_N`` -- ``detector.batch.ray_engine`` with N actors sharing the machine's CPUs on a local Ray:
  ``startup_s`` = ``ray.init`` + the time until the first actor has the detector loaded and takes
  its first block; ``crops_per_s`` = crops / (end of the last block - start of the first), so Ray's
  scheduling, block hand-over and result transfer count and model loading does not;
  ``cores_used`` = the actors' CPU seconds over that span (2 actors on 2 cores: ~2 if both work);
  ``overhead_vs_local`` = 1 - crops_per_s / local's, and ``overhead_per_cpu_s_vs_local`` the same
  per CPU-second (``crops_per_cpu_s``): what Ray itself costs, apart from the share of a busy
  machine's CPU each run happened to get;
* ``records_identical`` -- every file's record from each Ray run equals the local one, key for key,
  probabilities to 1e-4;
* ``driver`` -- what the Ray driver can do alone: list files (the shared dataset's folder), stream
  JSON lines, write Parquet (rows per second; one process);
* ``predict_only`` -- the classifier alone, batches of 32: the shipped TF Lite forward pass
  (probability plus features and gradients for heatmaps) against a predict-only TF Lite conversion
  of ``detector.inference.forward.predict_function`` made here, timed in interleaved rounds (best
  and median); ``max_abs_diff`` between their probabilities.

``meta.model`` is the model every engine loaded: ``$FDET_MODEL_DIR`` when set, else ``assets/model``
(its card's name and version, its folder and the SHA-256 of its weights).

``meta.busy_machine`` says whether something else was using the CPU (load average before the run,
other processes at either end): throughput taken on a busy machine is depressed.  Targets from the
issue are reported (``targets``), never enforced.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import PROJECT_ROOT, child_env, emit, git_commit, machine_load, run_or_fail, was_busy

TARGETS = {"local_crops_per_s": (">=", 100.0), "ray_1_overhead_vs_local": ("<=", 0.15), "ray_2_cores_used": (">=", 1.8)}
WARM_FILES = 8


# ---------------------------------------------------------------------------- the workers (fresh processes)


def _actor_class():
    """ScanActor that also reports, per block, when it ran, its CPU seconds and which process ran it."""
    from detector.batch.ray_engine import ScanActor

    class TimedScanActor(ScanActor):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.ready_at = time.time()

        def __call__(self, batch):
            import pyarrow as pa

            t, cpu = time.time(), time.process_time()
            table = super().__call__(batch)
            n = table.num_rows
            extra = {"t_start": [t] * n, "t_end": [time.time()] * n, "cpu_s": [time.process_time() - cpu] * n,
                     "pid": [os.getpid()] * n, "ready_at": [self.ready_at] * n, "first_row": [True] + [False] * (n - 1)}
            for name, values in extra.items():
                table = table.append_column(name, pa.array(values))
            return table

    return TimedScanActor


def local_worker(files: list[str], spawned_at: float) -> dict[str, Any]:
    from detector.batch.local_engine import Scanner, ScanOptions
    from detector.inference.pipeline import Detector

    det = Detector()
    startup = time.time() - spawned_at
    paths = [Path(p) for p in files]
    list(Scanner(det, ScanOptions()).run(paths[:WARM_FILES]))  # threads, interpreter shapes, batch sizes
    scanner = Scanner(det, ScanOptions())
    cpu, t = time.process_time(), time.perf_counter()
    records = list(scanner.run(paths))
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    return {"startup_s": round(startup, 2), "files": len(records), "face_crops": scanner.n_crops,
            "seconds": round(wall, 2), "crops_per_s": round(scanner.n_crops / wall, 1),
            "images_per_s": round(len(records) / wall, 1), "cpu_s": round(cpu, 2), "cores_used": round(cpu / wall, 2),
            "crops_per_cpu_s": round(scanner.n_crops / cpu, 1), "model": model_meta(det), "predict_only": predict_only(det),
            "records": {r.path: r.to_dict() for r in records}}


def model_meta(det) -> dict[str, Any]:
    """Which model the figures are for: the one the detector loaded (``$FDET_MODEL_DIR``, else assets/model)."""
    return {**det.model_info(), "model_dir": str(det.model_dir), "sha256": det.config.sha256}


def predict_only(det, n: int = 64, batch: int = 32, rounds: int = 8) -> dict[str, Any]:
    """Crops/s of the classifier: its full TF Lite forward pass against a predict-only TF Lite conversion."""
    import numpy as np

    from detector.inference.forward import Classifier, lite_forward, predict_function
    from detector.inference.lite import LiteRunner, convert
    from detector.inference.views import face_views

    if det.engine != "tflite":
        return {"skipped": f"the classifier runs in {det.engine}"}
    natives = list(np.random.default_rng(0).integers(0, 256, (n, 200, 200, 3), dtype=np.uint8))
    v = face_views(natives, det.spec, det.has_patches)
    feed = {"image": v.image, "patches": v.patches}
    t = time.perf_counter()
    runner = LiteRunner(convert(predict_function(det.model)), inputs=list(det.config.inputs))
    convert_s = time.perf_counter() - t
    lean = Classifier(det.classifier.forward, det.layout, det.classifier.inputs, predict_forward=lite_forward(runner))

    # Rounds interleaved (full, lean, full, lean, ...): on a shared machine the load drifts, and timing
    # one after the other would mostly compare the two moments.
    clfs = {"full": det.classifier, "lean": lean}
    times: dict[str, list[float]] = {k: [] for k in clfs}
    probs = {k: c.predict(feed, batch=batch) for k, c in clfs.items()}  # warm-up: every batch shape planned
    for _ in range(rounds):
        for k, clf in clfs.items():
            t = time.perf_counter()
            clf.predict(feed, batch=batch)
            times[k].append(time.perf_counter() - t)
    best = {k: n / min(v) for k, v in times.items()}
    median = {k: n / float(np.median(v)) for k, v in times.items()}
    return {"full_forward_crops_per_s": round(best["full"], 1), "predict_only_crops_per_s": round(best["lean"], 1),
            "speedup": round(best["lean"] / best["full"], 3),
            "median_full_forward_crops_per_s": round(median["full"], 1),
            "median_predict_only_crops_per_s": round(median["lean"], 1),
            "median_speedup": round(median["lean"] / median["full"], 3),
            "max_abs_diff": float(np.abs(probs["full"] - probs["lean"]).max()),
            "conversion_s": round(convert_s, 1), "batch": batch, "rounds": rounds, "inputs": list(det.config.inputs)}


def ray_worker(files: list[str], actors: int, spawned_at: float) -> dict[str, Any]:
    import pyarrow as pa

    from detector.batch import ray_engine
    from detector.batch.local_engine import ScanOptions

    # The machine's CPUs shared out: one actor has all of them, as the local engine does.
    cpus_per_actor = max(1, (os.cpu_count() or 1) // actors)
    opts = ray_engine.RayOptions(actors=actors, cpus_per_actor=float(cpus_per_actor), progress=False,
                                 scan=ray_engine.scan_options_dict(ScanOptions(finders=cpus_per_actor)))
    import_s = time.time() - spawned_at
    init_s = ray_engine.init_ray(opts)
    ray_engine.configure_progress(False)
    try:
        import ray

        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        ds, n_actors = ray_engine.build_dataset(files, opts, cpus, actor=_actor_class())
        t0 = time.time()
        table = pa.concat_tables(list(ds.iter_batches(batch_size=None, batch_format="pyarrow")))
        done = time.time()
    finally:
        ray_engine.shutdown()
    rows = table.to_pylist()
    blocks = [r for r in rows if r["first_row"]]
    first, last = min(b["t_start"] for b in blocks), max(b["t_end"] for b in blocks)
    span = last - first
    crops = sum(r["crops"] for r in rows)
    per_actor: dict[int, dict[str, float]] = {}
    for b in blocks:
        a = per_actor.setdefault(b["pid"], {"blocks": 0, "busy_s": 0.0, "cpu_s": 0.0, "ready_after_s": b["ready_at"] - t0})
        a["blocks"] += 1
        a["busy_s"] += b["t_end"] - b["t_start"]
        a["cpu_s"] += b["cpu_s"]
    cpu = sum(a["cpu_s"] for a in per_actor.values())
    return {"actors": n_actors, "cpus_per_actor": cpus_per_actor, "cluster_cpus": cpus, "import_s": round(import_s, 2), "ray_init_s": round(init_s, 2),
            "first_block_after_s": round(first - t0, 2), "startup_s": round(init_s + first - t0, 2),
            "files": len(rows), "blocks": len(blocks), "face_crops": crops, "seconds": round(span, 2),
            "end_to_end_s": round(done - t0, 2), "crops_per_s": round(crops / span, 1),
            "images_per_s": round(len(rows) / span, 1), "cpu_s": round(cpu, 2), "cores_used": round(cpu / span, 2),
            "crops_per_cpu_s": round(crops / cpu, 1), "per_actor": [{k: round(v, 2) for k, v in a.items()} for a in per_actor.values()],
            "records": {r["path"]: json.loads(r["record"]) for r in rows}}


def driver_limits(folder: Path | None, rows: int = 100_000) -> dict[str, Any]:
    """What the Ray driver itself can do per second: list files, stream JSON lines, write Parquet.

    The driver lists every file before the scan starts and, for JSON lines and CSV, writes every
    record; Parquet is written by the workers (measured here as one process's rate, for scale).
    """
    import io

    from detector.batch import ray_engine
    from detector.batch.local_engine import collect_files
    from detector.batch.records import ScanRecord

    out: dict[str, Any] = {}
    if folder is not None and folder.is_dir():
        t = time.perf_counter()
        files, _ = collect_files([folder])
        out["list_files_per_s"] = round(len(files) / (time.perf_counter() - t))
        out["listed_files"] = len(files)
    face = {"box": [10, 20, 30, 40], "p_fake": 0.1234, "label": "real", "detector_score": 0.9987}
    recs = [ray_engine.record_row(ScanRecord(f"/archive/{i:08d}.jpg", "image", 0.1234, "real", [face],
                                             "1 face found: likely REAL (P(fake) = 0.12).")) for i in range(rows)]
    table = ray_engine.rows_table(recs)
    sink = io.StringIO()
    t = time.perf_counter()
    output = ray_engine._Output("json", None, sink)
    for start in range(0, rows, 256):
        output.write(table.slice(start, 256))
    out["json_lines_per_s"] = round(rows / (time.perf_counter() - t))
    out["json_bytes_per_record"] = round(len(sink.getvalue()) / rows)
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        pq.write_table(table, Path(tmp) / "x.parquet")
        out["parquet_rows_per_s"] = round(rows / (time.perf_counter() - t))
        out["parquet_bytes_per_record"] = round((Path(tmp) / "x.parquet").stat().st_size / rows)
    return out


# ---------------------------------------------------------------------------- the parent


def same_record(a, b, tol: float = 1e-4) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_record(a[k], b[k], tol) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(same_record(x, y, tol) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, abs_tol=tol)
    return a == b


def spawn(kind: str, files_json: Path, tmp: Path, actors: int = 0) -> dict[str, Any]:
    result = tmp / f"{kind}-{actors}.json"
    cmd = [sys.executable, "-m", "bench.scale", "--worker", kind, "--files", str(files_json), "--result", str(result),
           "--actors", str(actors), "--spawned-at", repr(time.time())]
    proc = subprocess.run(cmd, cwd=PROJECT_ROOT, env=child_env(), capture_output=True, text=True)
    if proc.returncode != 0 or not result.is_file():
        tail = "\n".join((proc.stderr or "").strip().splitlines()[-20:])
        raise RuntimeError(f"the {kind} worker ({actors} actors) failed (exit {proc.returncode}):\n{tail}")
    return json.loads(result.read_text())


def check_targets(report: dict[str, Any]) -> dict[str, Any]:
    values = {"local_crops_per_s": report["local"]["crops_per_s"],
              "ray_1_overhead_vs_local": report.get("ray_1", {}).get("overhead_vs_local"),
              "ray_2_cores_used": report.get("ray_2", {}).get("cores_used")}
    out = {}
    for name, (op, target) in TARGETS.items():
        v = values[name]
        out[name] = {"value": v, "target": f"{op} {target}",
                     "met": None if v is None else (v >= target if op == ">=" else v <= target)}
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    from .inputs import make_inputs

    started = time.time()
    load_start = machine_load()
    tmp = Path(tempfile.mkdtemp(prefix="fdet-scale-"))
    try:
        inputs = make_inputs(tmp, args.sizes, args.shared_n)
        unique = inputs["shared"] + [p["path"] for p in inputs["package"]]
        files = unique * args.passes
        mean_bytes = round(sum(os.path.getsize(f) for f in unique) / max(1, len(unique)))  # what each file costs to read
        files_json = tmp / "files.json"
        files_json.write_text(json.dumps(files))
        report: dict[str, Any] = {"local": spawn("local", files_json, tmp)}
        local = report["local"]
        for n in args.actors:
            r = spawn("ray", files_json, tmp, n)
            r["overhead_vs_local"] = round(1 - r["crops_per_s"] / local["crops_per_s"], 3)
            # the same per CPU-second: what Ray itself costs, whatever share of the CPU each run was given
            r["overhead_per_cpu_s_vs_local"] = round(1 - r["crops_per_cpu_s"] / local["crops_per_cpu_s"], 3)
            report[f"ray_{n}"] = r
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    identical = {}
    for name, r in report.items():
        if name.startswith("ray_"):
            recs = r.pop("records")
            identical[name] = recs.keys() == local["records"].keys() and all(
                same_record(recs[p], local["records"][p]) for p in recs)
    local.pop("records")
    from .common import SHARED_FACES

    report["driver"] = driver_limits(SHARED_FACES if SHARED_FACES.is_dir() and not args.quick else None,
                                     rows=2_000 if args.quick else 100_000)
    load_end = machine_load()
    report["records_identical"] = identical
    report["predict_only"] = local.pop("predict_only")
    report["targets"] = check_targets(report)
    report["meta"] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "elapsed_s": round(time.time() - started, 1), "quick": bool(args.quick),
        "unique_files": len(unique), "mean_file_bytes": mean_bytes, "passes": args.passes, "files_per_run": len(files),
        "shared_val_images": len(inputs["shared"]), "package_photos": [p["name"] for p in inputs["package"]],
        "machine_before": load_start, "machine_after": load_end, "busy_machine": was_busy(load_start, load_end),
        "python": platform.python_version(), "platform": platform.platform(), "git_commit": git_commit(),
        "model": local.pop("model"), "ray": _ray_version(),
    }
    return {k: report[k] for k in ("meta", "targets", "records_identical", "local", *[f"ray_{n}" for n in args.actors],
                                   "predict_only", "driver")}


def _ray_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("ray")
    except Exception:  # noqa: BLE001
        return None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shared-n", type=int, default=None,
                   help="validation images from ../shared/data/faces, evenly across sources (default 200; 6 with --quick)")
    p.add_argument("--passes", type=int, default=None,
                   help="times the file list is repeated in each run, for a run long enough to time (default 3; 1 with --quick)")
    p.add_argument("--actors", default=None,
                   help="comma-separated Ray pool sizes to run (default 1,2; 1 with --quick; '' for none)")
    p.add_argument("--quick", action="store_true", help="a few images, the local engine and one actor (for tests)")
    p.add_argument("--out", default=None, help="also write the JSON report to this file")
    # worker mode (started by the parent, not by hand)
    p.add_argument("--worker", choices=("local", "ray"), help=argparse.SUPPRESS)
    p.add_argument("--files", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--spawned-at", type=float, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.worker:
        files = json.loads(Path(args.files).read_text())
        actors = int(args.actors or 1)
        out = local_worker(files, args.spawned_at) if args.worker == "local" else ray_worker(files, actors, args.spawned_at)
        Path(args.result).write_text(json.dumps(out))
        return 0
    args.shared_n = (6 if args.quick else 200) if args.shared_n is None else args.shared_n
    args.passes = (1 if args.quick else 3) if args.passes is None else args.passes
    spec = ("1" if args.quick else "1,2") if args.actors is None else args.actors
    args.actors = [int(x) for x in spec.split(",") if x.strip()]
    args.sizes = (512,) if args.quick else (512, 1024, 2048)
    if args.passes < 1 or any(n < 1 for n in args.actors):
        raise SystemExit("--passes and every --actors value must be at least 1")
    report = run_or_fail(run, args)
    if report is None:
        return 1
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
