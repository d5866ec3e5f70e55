"""The scan on Ray Data: the local engine's records, on every core of a machine or of a cluster.

    python -m detector scan photos/ --engine ray                                    # JSON lines, local Ray
    python -m detector scan list.parquet --engine ray --address auto --out res/ --format parquet --resume

How a run goes:

* the driver (this process) lists the files -- folders walked, manifests read, exactly as the local
  engine does (``scan.collect_files``) -- drops those already in ``--out`` when resuming, and hands
  Ray Data the paths, a few hundred to a block;
* a pool of :class:`ScanActor` -- each loads the detector *once* -- scores a block with the local
  engine's own :class:`~detector.batch.local_engine.Scanner` (decoding ahead on threads, the faces of many
  images in one MTCNN pass, the crops of many images in one model call), so every record is the
  record the local engine writes for that file, key for key (``tests/test_scan_ray.py``);
* ``--format parquet`` is written by the workers themselves (``Dataset.write_parquet``): the driver
  never holds the records.  JSON lines and CSV stream through the driver to stdout, and with
  ``--out`` into ``DIR/records-<time>.jsonl`` as they arrive.

A file that fails becomes an error record on its worker; a block whose whole call fails
unexpectedly becomes error records for its files.  Records arrive in the order blocks finish, not
in input order.  ``--resume`` reads the paths already in ``DIR`` (``*.parquet``, ``records-*.jsonl``)
and scans only the others; an output file a killed run left unreadable is set aside as
``*.incomplete`` and its files scanned again.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .records import CSV_FIELDS, NAME_ERRORS, ScanRecord, error_record
from .tally import OUTCOMES, outcome

log = logging.getLogger(__name__)

# One row per file: the columns a table reader wants, and the whole JSON record as the local engine writes it.
COLUMNS = ("path", "kind", "label", "verdict", "p_fake", "n_faces", "crops", "error", "message", "record")
JSONL_GLOB = "records-*.jsonl"
BLOCK_FILES = 256  # files per Ray Data block: the unit of work an actor takes, of load balance and of retry


@dataclass
class RayOptions:
    """How the Ray engine runs; the scan's own options travel to the actors as ``scan`` (ScanOptions fields)."""

    address: str | None = None  # None: start a local Ray for this run; "auto" or HOST:PORT: join that cluster
    actors: int | None = None  # detector copies in the pool (None: one per ``cpus_per_actor`` CPUs of the cluster)
    cpus_per_actor: float = 1.0  # CPUs each actor reserves (its TF Lite threads follow: OMP_NUM_THREADS)
    block_files: int = BLOCK_FILES
    retries: int = 2  # a block whose worker process dies is retried this often, then its files one by one
    model_dir: str | None = None
    face_finder: str | None = None
    progress: bool = True
    scan: dict[str, Any] = field(default_factory=dict)  # ScanOptions(**scan) on each actor


# ---------------------------------------------------------------------------- one row per record


def record_row(rec: ScanRecord) -> dict[str, Any]:
    """The table row of a record; ``record`` is exactly the local engine's JSON line."""
    d = rec.to_dict()
    scored = rec.error is None and rec.kind == "image"
    return {"path": rec.path, "kind": rec.kind, "label": rec.label, "verdict": rec.verdict, "p_fake": d["p_fake"],
            "n_faces": rec.n_faces,
            # face crops this image put through the model: its faces, or the centre square when it has none
            "crops": (len(rec.faces) or 1) if scored else 0,
            "error": rec.error, "message": rec.message, "record": json.dumps(d)}


def rows_table(rows: list[dict[str, Any]]):
    import pyarrow as pa

    schema = pa.schema([("path", pa.string()), ("kind", pa.string()), ("label", pa.string()),
                        ("verdict", pa.string()), ("p_fake", pa.float64()), ("n_faces", pa.int64()), ("crops", pa.int64()),
                        ("error", pa.string()), ("message", pa.string()), ("record", pa.string())])
    return pa.Table.from_pylist(rows, schema=schema)


class ScanActor:
    """One Ray actor: a detector loaded once, then blocks of paths in, one table of records out."""

    def __init__(self, model_dir: str | None, face_finder: str | None, scan: dict[str, Any]):
        # Worker stdout is relayed to the driver's stdout, which carries the JSON lines: nothing else may land there.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
        from ..config import quiet_environment

        quiet_environment()
        from ..inference.pipeline import Detector
        from .local_engine import ScanOptions

        self.det = Detector(model_dir, face_finder)
        self.options = ScanOptions(**scan)

    def __call__(self, batch: dict) -> Any:
        from .local_engine import Scanner, _unexpected

        paths = [str(p) for p in batch["path"]]
        try:
            records = list(Scanner(self.det, self.options).run([Path(p) for p in paths]))
        except Exception as exc:  # noqa: BLE001 - the Scanner keeps failures per file; this is the last net
            message = _unexpected(exc)
            records = [error_record(p, message) for p in paths]
        return rows_table([record_row(r) for r in records])


# ---------------------------------------------------------------------------- the output folder


def done_paths(out: Path) -> set[str]:
    """Absolute paths with a record in ``out`` (Parquet files and JSON-lines files of earlier runs)."""
    done: set[str] = set()
    if not out.is_dir():
        return done
    import pyarrow.parquet as pq

    for f in sorted(out.glob("*.parquet")):
        try:
            paths = pq.read_table(f, columns=["path"]).column("path").to_pylist()
        except Exception as exc:  # noqa: BLE001 - a file a killed run left half-written
            aside = f.with_name(f.name + ".incomplete")
            log.warning("%s is not a readable Parquet file (%s); set aside as %s, its files are scanned again.",
                        f, type(exc).__name__, aside.name)
            f.rename(aside)
            continue
        done.update(os.path.abspath(p) for p in paths)
    for f in sorted(out.glob(JSONL_GLOB)):
        with open(f, encoding="utf-8", errors=NAME_ERRORS) as lines:
            for line in lines:
                try:
                    done.add(os.path.abspath(json.loads(line)["path"]))
                except (ValueError, KeyError, TypeError):
                    continue  # the last line of a killed run may be cut short
    return done


def has_output(out: Path) -> bool:
    return out.is_dir() and any(out.glob("*.parquet")) or out.is_dir() and any(out.glob(JSONL_GLOB))


# ---------------------------------------------------------------------------- running it


@dataclass
class RunResult:
    """What the driver saw: counts for the summary and the exit status, and where the time went."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("files", "images", "videos", *OUTCOMES, "errors", "crops"), 0))
    startup_s: float = 0.0  # ray.init (start or join the cluster)
    seconds: float = 0.0  # from the dataset's start to its last record
    first_record_s: float | None = None  # from the dataset's start to the first record (actors loading the model)
    actors: int = 0
    cluster_cpus: float = 0.0

    def add(self, table) -> None:
        c = self.counts
        cols = {name: table.column(name).to_pylist() for name in ("kind", "verdict", "label", "error", "crops")}
        for kind, verdict, label, error, crops in zip(*cols.values(), strict=True):
            c["files"] += 1
            c["images"] += kind == "image"
            c["videos"] += kind == "video"
            c[outcome(verdict, label, error)] += 1  # the same five outcomes as the local scan's summary
            c["errors"] += error is not None
            c["crops"] += crops


_STARTED_HERE = False  # whether this process started (or joined) Ray itself, so shutdown() should end it


def init_ray(opts: RayOptions) -> float:
    """Start (or join) Ray -- unless this process is already connected (tests share one session); the seconds it took."""
    import ray

    global _STARTED_HERE
    t = time.perf_counter()
    if ray.is_initialized():
        return 0.0
    _STARTED_HERE = True
    env = {k: v for k, v in os.environ.items() if k.startswith("FDET_")}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    ray.init(address=opts.address, include_dashboard=False, logging_level=logging.WARNING,
             runtime_env={"env_vars": env})
    return time.perf_counter() - t


LOST = ("This file could not be analysed: the worker process scoring it died ({tries}; the file may crash "
        "a decoder); it was skipped.")


def build_dataset(paths: list[str], opts: RayOptions, cluster_cpus: float, actor: type | None = None,
                  block_files: int | None = None, in_flight: int | None = None):
    """The paths in blocks, mapped by the pool of ``actor`` (default :class:`ScanActor`) to record tables.

    ``in_flight``: blocks queued on one actor at a time (Ray's default when None).  The rescue round
    uses 1, so a file that kills its actor cannot take blocks queued behind it down with it.
    """
    import pyarrow as pa
    import ray.data

    actors = opts.actors or max(1, int(cluster_cpus // max(opts.cpus_per_actor, 1e-9)))
    # Enough blocks that every actor has work, none so large that the last one finishes alone.
    per_block = max(1, min(block_files or opts.block_files, math.ceil(len(paths) / (2 * actors))))
    blocks = [pa.table({"path": paths[i:i + per_block]}) for i in range(0, len(paths), per_block)]
    ds = ray.data.from_arrow(blocks)
    # A worker process that dies (a decoder crash) is restarted and its block retried ``retries`` times;
    # after that the block is given up (DataContext.max_errored_blocks) and run() deals with its files.
    ds = ds.map_batches(actor or ScanActor, batch_size=None, batch_format="numpy",
                        compute=ray.data.ActorPoolStrategy(size=actors, max_tasks_in_flight_per_actor=in_flight),
                        num_cpus=opts.cpus_per_actor,
                        max_restarts=-1, max_task_retries=opts.retries,
                        fn_constructor_kwargs={"model_dir": opts.model_dir, "face_finder": opts.face_finder,
                                               "scan": opts.scan})
    return ds, actors


def configure_progress(progress: bool) -> None:
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = progress
    ctx.enable_operator_progress_bars = progress
    ctx.print_on_execution_start = progress
    ctx.max_errored_blocks = -1  # a lost block must not end the job: its files are scanned again, one by one
    if not progress:
        logging.getLogger("ray.data").setLevel(logging.WARNING)


class _Output:
    """Where record tables go: JSON lines or CSV on ``out`` (and DIR/records-*.jsonl), or Parquet files in DIR."""

    def __init__(self, out_format: str, out_dir: Path | None, out):
        self.format, self.dir, self.out = out_format, out_dir, out
        self.sink = self.writer = None
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
        if out_dir is not None and out_format == "json":
            name = time.strftime("records-%Y%m%d-%H%M%S") + f"-{os.getpid()}.jsonl"
            self.sink = open(out_dir / name, "a", encoding="utf-8", errors=NAME_ERRORS)  # noqa: SIM115 - close()
        if out_format == "csv":
            if hasattr(out, "reconfigure"):
                out.reconfigure(errors=NAME_ERRORS)
            self.writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
            self.writer.writeheader()

    def write(self, table, tag: str = "driver") -> None:
        """One table of records; Parquet tables from the driver (missing and lost files) get their own file."""
        if self.format == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, self.dir / f"{tag}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.parquet")
            return
        lines = table.column("record").to_pylist()
        if self.writer is not None:
            for line in lines:
                d = json.loads(line)
                self.writer.writerow(ScanRecord(d["path"], d["kind"], d["p_fake"], d["label"], error=d["error"],
                                                n_faces_override=d["n_faces"], verdict=d.get("verdict"),
                                                provenance=d.get("provenance")).csv_row())
        else:
            self.out.write("".join(line + "\n" for line in lines))
        self.out.flush()
        if self.sink is not None:
            self.sink.write("".join(line + "\n" for line in lines))
            self.sink.flush()

    def close(self) -> None:
        if self.sink is not None:
            self.sink.close()


def _score(paths: list[str], opts: RayOptions, result: RunResult, output: _Output, t0: float,
           actor: type | None, rescue: bool = False) -> set[str]:
    """One pass of the actor pool over ``paths``; the paths it returned records for.

    ``rescue``: one file per block and one block per actor at a time (the round after a lost block).
    """
    import pyarrow.parquet as pq

    ds, result.actors = build_dataset(paths, opts, result.cluster_cpus, actor,
                                      block_files=1 if rescue else None, in_flight=1 if rescue else None)
    produced: set[str] = set()
    if output.format == "parquet":  # written by the workers; read back for the summary
        before = set(output.dir.glob("*.parquet"))
        ds.write_parquet(str(output.dir))
        for f in sorted(set(output.dir.glob("*.parquet")) - before):
            table = pq.read_table(f, columns=["path", "kind", "label", "verdict", "error", "n_faces", "crops"])
            result.add(table)
            produced.update(table.column("path").to_pylist())
        return produced
    for table in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        output.write(table)
        if result.first_record_s is None:
            result.first_record_s = time.perf_counter() - t0
        result.add(table)
        produced.update(table.column("path").to_pylist())
    return produced


def run(paths: list[str], opts: RayOptions, out_format: str, out_dir: Path | None, stdout=None,
        driver_records: list[ScanRecord] = (), actor: type | None = None) -> RunResult:
    """Score ``paths`` on Ray; JSON lines / CSV rows to ``stdout`` (and ``out_dir``), or Parquet into ``out_dir``.

    ``driver_records`` (paths that do not exist) are written first, through the same output.  Files
    whose block was lost (its worker process died ``retries + 1`` times) are scanned again one per
    block and one block per actor at a time, so one crashing file cannot take its neighbours with it
    (neither those in its block nor blocks queued behind it on the same actor); a file lost again gets
    an error record.  ``actor`` replaces :class:`ScanActor` (the benchmark's timed actor, tests).
    """
    import ray

    result = RunResult()
    result.startup_s = init_ray(opts)
    configure_progress(opts.progress)
    result.cluster_cpus = float(ray.cluster_resources().get("CPU", 1.0))
    output = _Output(out_format, out_dir, stdout or sys.stdout)
    t0 = time.perf_counter()
    try:
        if driver_records:
            table = rows_table([record_row(r) for r in driver_records])
            output.write(table, "missing")
            result.add(table)
        todo = list(paths)
        for attempt in range(2):
            if not todo:
                break
            produced = _score(todo, opts, result, output, t0, actor, rescue=bool(attempt))
            todo = [p for p in todo if p not in produced]
            if todo and not attempt:
                log.warning("%d files were lost with their block (its worker stopped); scanning them one by one.",
                            len(todo))
        if todo:
            n = opts.retries + 1
            message = LOST.format(tries=f"{n} attempt" + ("s" if n > 1 else ""))
            table = rows_table([record_row(error_record(p, message)) for p in todo])
            output.write(table, "lost")
            result.add(table)
    finally:
        output.close()
    result.seconds = time.perf_counter() - t0
    return result


def shutdown() -> None:
    """End the Ray session :func:`init_ray` started (a session someone else started is left alone)."""
    global _STARTED_HERE
    if not _STARTED_HERE:
        return
    import ray

    _STARTED_HERE = False
    with contextlib.suppress(Exception):
        ray.shutdown()


def scan_options_dict(options) -> dict[str, Any]:
    """A ScanOptions as the plain dict an actor rebuilds it from."""
    d = asdict(options)
    d.pop("timeline_dir", None)
    return d


def todo_paths(files: Iterable[Path], done: set[str]) -> tuple[list[str], int]:
    """Paths still to scan (as the records will name them) and how many were skipped as done."""
    todo, skipped = [], 0
    for f in files:
        if done and os.path.abspath(f) in done:
            skipped += 1
        else:
            todo.append(str(f))
    return todo, skipped
