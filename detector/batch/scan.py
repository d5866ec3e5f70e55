"""``python -m detector scan``: files and folders of photos and videos, one verdict per file.

    python -m detector scan photos/ clip.mp4 --format html --out report/
    python -m detector scan archive/ --engine ray --format parquet --out results/

This module is the command line: arguments, the output formats (JSON lines, CSV, the HTML
report; Parquet on Ray), the summary and the exit status.  The scoring itself is the local
engine (``detector.batch.local_engine``: decoding, face finding and the model overlapped in this
process) or, with ``--engine ray``, the same engine in every actor of a Ray Data pool
(``detector.batch.ray_engine``).  stdout carries only the machine-readable records (none for
``--format html``, whose output is the report); progress and the closing summary go to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..config import CAM_METHODS, DEFAULT_CAM_METHOD, FACE_FINDERS, VIDEO_FRAMES, VIDEO_TOP_K
from ..errors import DetectorError
from ..inference.video import VIDEO_SUFFIXES
from ..training.data import IMAGE_SUFFIXES
from . import report
from .local_engine import (  # noqa: F401 - Scanner, ScanOptions, scan, read_manifest: the library API, as before
    ManifestError,
    Scanner,
    ScanOptions,
    collect_files,
    read_manifest,
    scan,
)
from .records import CSV_FIELDS, NAME_ERRORS, ScanRecord, missing_record
from .tally import OUTCOMES, n_files, outcome, summary_line, tally, tally_words

EXIT_CLEAN, EXIT_FAKE_FOUND, EXIT_USAGE, EXIT_UNREADABLE = 0, 1, 2, 3
# A stopped scan exits as the shell reports a process ended by that signal (128 + its number), so
# that no script mistakes a partial scan for "fake found" or for a clean one.
EXIT_INTERRUPTED, EXIT_PIPE_CLOSED, EXIT_TERMINATED = 128 + signal.SIGINT, 128 + 13, 128 + signal.SIGTERM
EPILOG = """\
verdicts (the summary line, the progress bar and the reports count the same five outcomes):
  likely fake     P(fake) at or above the model's threshold, outside the uncertain band
  uncertain       P(fake) too close to the threshold for the model to tell
  no sign found   P(fake) below the threshold, outside the band: no sign of manipulation found
  without a face  no face found in the image (or in any sampled frame of the video): not assessed
  unreadable      the file could not be read (damaged, not an image or video, or does not exist)

exit status:
  0    every file was read, and none is likely fake (uncertain files are counted in the summary)
  1    at least one image or video is likely fake
  2    usage error, the model could not be loaded, or no file could be read
  3    none is likely fake, but some files could not be read (see the unreadable count)
  130  interrupted by Ctrl-C (SIGINT)
  143  stopped by SIGTERM (kill, Docker, systemd)
  141  whoever read stdout stopped reading (e.g. "| head"); nothing more is printed
       130, 141, 143 (128 + the signal's number): the scan stops at once, whatever it found so far,
       and a report written with --out says it is partial

output:
  --format json     one JSON object per file on stdout (JSON lines); with --out also DIR/report.json
                    (--engine ray: DIR/records-<time>.jsonl, written as records arrive)
  --format csv      a header and one row per file on stdout (path,label,p_fake,n_faces,error,verdict,
                    provenance,provenance_strength); with --out also DIR/report.csv (--engine ray: stdout only)
  --format html     DIR/report.html (needs --out): thumbnails, heatmap overlays, face thumbnails,
                    verdicts and provenance, sortable by P(fake); heatmaps are always computed for it;
                    nothing but the progress bar and the summary (on stderr) is printed (--engine local only)
  --format parquet  --engine ray only, needs --out: DIR/*.parquet written by the workers, one row per file
                    (path, kind, label, verdict, p_fake, n_faces, crops, error, message, record = the JSON line)

inputs:
  files, folders (searched recursively) and manifests: a .csv or .parquet file named on the command
  line is read as a list of files (its 'path' column; relative paths are relative to the manifest)

engines:
  --engine local    this process: threads decode and find faces ahead, one model call per group of images
  --engine ray      Ray Data: a pool of actors, each with the detector loaded once, scoring blocks of
                    files with the local engine's code (the same records); a local Ray is started for
                    the run unless --address names a cluster (see the README: ray start --head)

examples:
  python -m detector scan photos/                      # JSON lines, heatmaps off (fastest)
  python -m detector scan photos/ --format csv > scores.csv
  python -m detector scan photos/ clip.mp4 --format html --out report/ --timeline
  python -m detector scan archive/ --engine ray --format parquet --out results/
  python -m detector scan list.csv --engine ray --address auto --format parquet --out results/ --resume
"""


# ---------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m detector scan", description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="image/video files and folders (folders are searched recursively for "
                        f"{', '.join(sorted(IMAGE_SUFFIXES | VIDEO_SUFFIXES))})")
    p.add_argument("--format", choices=("json", "csv", "html", "parquet"), default="json",
                   help="output format (default json); see 'output' below")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="folder for report.json / report.csv / report.html (and timelines/), or the Ray "
                        "engine's records-*.jsonl / *.parquet; created if needed")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this process (default); ray: a Ray Data actor pool, see 'engines' below")
    p.add_argument("--heatmaps", action=argparse.BooleanOptionalAction, default=False,
                   help="compute Grad-CAM heatmaps (slower; added to the JSON faces; always on for --format html)")
    p.add_argument("--cam", choices=CAM_METHODS, default=DEFAULT_CAM_METHOD,
                   help=f"heatmap method when heatmaps are on (default {DEFAULT_CAM_METHOD})")
    p.add_argument("--opacity", type=float, default=0.5, help="heatmap strength in the HTML overlays, 0..1 (default 0.5)")
    p.add_argument("--model-dir", help="model folder (model.keras + model.json); default $FDET_MODEL_DIR or assets/model")
    p.add_argument("--face-finder", "--face-detector", dest="face_finder", choices=FACE_FINDERS,
                   help="face finder (default $FDET_FACE_FINDER or auto = mtcnn; --face-detector is the older name)")
    p.add_argument("--frames", type=int, default=VIDEO_FRAMES, metavar="N",
                   help=f"videos: frames sampled per video (default {VIDEO_FRAMES})")
    p.add_argument("--stride", type=int, metavar="S",
                   help="videos: take every S-th frame (default: N frames spread over the whole video)")
    p.add_argument("--top-k", type=int, default=VIDEO_TOP_K, metavar="K",
                   help=f"videos: P(fake) is the mean of the K most suspicious frames (default {VIDEO_TOP_K})")
    p.add_argument("--timeline", action="store_true",
                   help="videos: write a P(fake)-over-time PNG per video into DIR/timelines (needs --out)")
    p.add_argument("--batch", type=int, default=32,
                   help="face crops per model call (default 32); faces are found for batch/2 images at a time")
    p.add_argument("--workers", type=int, default=2, help="threads decoding images, per process (default 2)")
    p.add_argument("--finders", type=int, default=None,
                   help="threads finding faces, per process, each with its own copy of MTCNN (default 2; "
                        "--engine ray: one per CPU of an actor)")
    ray = p.add_argument_group("Ray engine (--engine ray)")
    ray.add_argument("--address", metavar="ADDR",
                     help="join this Ray cluster ('auto': the one this machine belongs to; HOST:PORT: its head); "
                          "default: start a local Ray for this run")
    ray.add_argument("--actors", type=int, metavar="N",
                     help="detector copies (Ray actors) in the pool (default: cluster CPUs / --cpus-per-actor)")
    ray.add_argument("--cpus-per-actor", type=float, default=1.0, metavar="C",
                     help="CPUs each actor reserves; its TF Lite threads follow (default 1)")
    ray.add_argument("--resume", action="store_true",
                     help="skip the files that already have a record in --out DIR (from an earlier run)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar on stderr")
    return p


def summarize(records: list[ScanRecord], seconds: float, n_crops: int, planned: int | None = None,
              stopped: str | None = None) -> dict[str, Any]:
    """The counts of the summary line, the JSON report and the HTML report (one :func:`tally`).

    ``planned`` is how many files the scan set out to read; ``stopped`` says why it ended early
    (the report is then partial)."""
    counts = tally(records)
    return {
        "files": len(records),
        "planned": len(records) if planned is None else planned,
        "partial": stopped,
        "images": sum(r.kind == "image" for r in records),
        "videos": sum(r.kind == "video" for r in records),
        **counts,
        "errors": counts["unreadable"],  # the older name of the unreadable count
        "seconds": round(seconds, 2),
        "face_crops_per_second": round(n_crops / seconds, 1) if seconds > 0 else None,
    }


def exit_status(counts: dict[str, Any], stopped_status: int | None = None) -> int:
    """The documented exit status (see EPILOG) from a summary's counts."""
    if stopped_status is not None:
        return stopped_status
    if counts.get("fake"):
        return EXIT_FAKE_FOUND
    if counts.get("unreadable"):
        return EXIT_USAGE if counts["unreadable"] == counts.get("files") else EXIT_UNREADABLE
    return EXIT_CLEAN


class Stopped(Exception):
    """The scan was asked to stop (SIGTERM); carries the exit status."""

    def __init__(self, why: str, status: int):
        super().__init__(why)
        self.why, self.status = why, status


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """SIGTERM (what ``kill``, Docker and systemd send) stops the scan like Ctrl-C does: the records so
    far are reported, as a partial report, instead of the process vanishing without one."""
    def stop(signum, frame):
        raise Stopped("stopped by SIGTERM", EXIT_TERMINATED)

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread (a library caller): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _silence_stdout() -> None:
    """Point stdout at /dev/null once its reader has gone, so the interpreter's last flush at exit does
    not print a BrokenPipeError of its own (what the Python docs advise for SIGPIPE)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def main(argv: list[str] | None = None, detector=None) -> int:
    """Run the scan CLI; returns the exit status. ``detector`` lets tests pass a loaded one."""
    parser = build_parser()
    a = parser.parse_args(argv)
    if a.format == "html" and a.out is None:
        parser.error("--format html writes DIR/report.html: give --out DIR")
    if a.timeline and a.out is None:
        parser.error("--timeline writes DIR/timelines/*.png: give --out DIR")
    if a.out is not None and a.out.exists() and not a.out.is_dir():
        parser.error(f"--out {a.out} exists and is not a folder")  # found now, not after the whole scan
    for name in ("frames", "top_k", "batch", "workers", "finders"):
        if getattr(a, name) is not None and getattr(a, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if a.stride is not None and a.stride < 1:
        parser.error("--stride must be at least 1")
    if not 0.0 <= a.opacity <= 1.0:
        parser.error("--opacity must be between 0 and 1")
    check_engine_args(parser, a)

    try:
        files, missing = collect_files(a.paths)
    except ManifestError as exc:
        parser.error(str(exc))
    if a.engine == "ray":
        return main_ray(a, files, missing)
    if not files:
        return _nothing_to_scan(a.paths, missing)
    if detector is None:
        from ..inference.pipeline import get_detector

        try:
            detector = get_detector(a.model_dir, a.face_finder)
        except DetectorError as exc:
            print(f"python -m detector scan: {exc}", file=sys.stderr)
            return EXIT_USAGE

    html = a.format == "html"
    options = ScanOptions(cam_method=a.cam if (a.heatmaps or html) else None, opacity=a.opacity, batch=a.batch,
                          workers=a.workers, finders=a.finders or 2, frames=a.frames, stride=a.stride,
                          top_k=a.top_k, thumbnails=html,
                          timeline_dir=a.out / "timelines" if a.timeline else None)
    scanner = Scanner(detector, options)

    from tqdm import tqdm

    out = sys.stdout
    writer = None
    if a.format == "csv":
        if hasattr(out, "reconfigure"):  # JSON escapes odd file names itself; CSV writes them as they are
            out.reconfigure(errors=NAME_ERRORS)
        writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
    records: list[ScanRecord] = []
    counts = dict.fromkeys(OUTCOMES, 0)
    planned = len(files) + len(missing)
    t0 = time.perf_counter()
    bar = tqdm(total=planned, unit="file", file=sys.stderr, disable=not a.progress,
               dynamic_ncols=True, desc="scan")

    def emit(rec: ScanRecord) -> None:
        # The HTML page needs only the thumbnails; heatmaps stay in the JSON lines.
        records.append(rec)
        counts[outcome(rec.verdict, rec.label, rec.error)] += 1
        bar.update(1)
        bar.set_postfix_str(tally_words(counts, always=()), refresh=False)  # the summary's words, as they come
        if writer is not None:
            writer.writerow(rec.csv_row())
            out.flush()
        elif not html:  # the HTML report is the output: no JSON (heatmaps and all) on the terminal
            out.write(json.dumps(rec.to_dict()) + "\n")
            out.flush()

    stopped: Stopped | None = None
    try:
        with stop_on_sigterm(), contextlib.closing(scanner.run(files)) as scanning:
            if writer is not None:
                out.flush()  # the CSV header: a reader that is already gone is found here
            for m in missing:
                emit(missing_record(m))
            for rec in scanning:
                emit(rec)
    except KeyboardInterrupt:
        stopped = Stopped("interrupted by Ctrl-C", EXIT_INTERRUPTED)
    except Stopped as exc:
        stopped = exc
    except BrokenPipeError:  # "scan ... | head": the reader has what it wanted; end quietly, like head's writer
        stopped = Stopped("stopped when its output was closed", EXIT_PIPE_CLOSED)
        _silence_stdout()
    bar.close()
    seconds = time.perf_counter() - t0
    summary = summarize(records, seconds, scanner.n_crops, planned, stopped and stopped.why)
    quiet = stopped is not None and stopped.status == EXIT_PIPE_CLOSED

    if a.out is not None:
        a.out.mkdir(parents=True, exist_ok=True)
        model = detector.model_info()
        if a.format == "json":
            path = report.write_json(records, a.out / "report.json", model, summary)
        elif a.format == "csv":
            path = report.write_csv(records, a.out / "report.csv")
        else:
            path = report.write_html(records, a.out / "report.html", model, summary)
        if not quiet:
            print(f"{'partial ' if stopped else ''}report written to {path}", file=sys.stderr)
    if not quiet:
        print(f"python -m detector scan: {summary_line(summary)} Threshold {detector.threshold:.3f}.", file=sys.stderr)
    return exit_status(summary, stopped and stopped.status)


def _nothing_to_scan(paths: list[str], missing: list[str]) -> int:
    """No file to scan: say which paths do not exist, or that the ones that do hold no image or video."""
    if missing:
        print(f"python -m detector scan: {', '.join(missing)} {'does' if len(missing) == 1 else 'do'} not exist",
              file=sys.stderr)
    there = [p for p in paths if p not in missing]
    if there:
        print(f"python -m detector scan: no image or video found in {', '.join(there)}", file=sys.stderr)
    return EXIT_USAGE


def check_engine_args(parser: argparse.ArgumentParser, a: argparse.Namespace) -> None:
    """Usage errors of the engine flags, found before anything is loaded."""
    if a.engine == "local":
        for flag, value in (("--format parquet", a.format == "parquet"), ("--resume", a.resume),
                            ("--address", a.address), ("--actors", a.actors)):
            if value:
                parser.error(f"{flag} needs --engine ray")
        return
    if a.format == "html" or a.timeline:
        parser.error("the HTML report and --timeline are made by --engine local (one machine's files); "
                     "use --format json, csv or parquet with --engine ray")
    if a.format == "parquet" and a.out is None:
        parser.error("--format parquet writes DIR/*.parquet: give --out DIR")
    if a.resume and a.out is None:
        parser.error("--resume reads the records already in --out DIR: give --out DIR")
    if a.actors is not None and a.actors < 1:
        parser.error("--actors must be at least 1")
    if a.cpus_per_actor <= 0:
        parser.error("--cpus-per-actor must be positive")
    if a.out is not None and not a.resume:
        from .ray_engine import has_output

        if has_output(a.out):
            parser.error(f"--out {a.out} already holds scan records; add --resume to continue that scan, "
                         "or choose an empty folder")


def main_ray(a: argparse.Namespace, files: list[Path], missing: list[str]) -> int:
    """``--engine ray``: the files on a Ray actor pool (``detector.batch.ray_engine``)."""
    import os

    from ..inference.bundle import read_config, verify_weights
    from . import ray_engine

    done = ray_engine.done_paths(a.out) if a.resume else set()
    todo, skipped = ray_engine.todo_paths(files, done)
    missing = [m for m in missing if os.path.abspath(m) not in done]
    if not files and not missing:
        return _nothing_to_scan(a.paths, [])
    if not files and len(missing) == len(a.paths):
        return _nothing_to_scan(a.paths, missing)
    try:  # the model is checked here, once, rather than failing in every actor
        from ..config import DEFAULT_MODEL_DIR, Settings, hub_repo

        settings = Settings()
        model_dir = a.model_dir or settings.model_dir or (None if hub_repo() else DEFAULT_MODEL_DIR)
        threshold = None
        if model_dir is not None:
            config = read_config(model_dir)
            verify_weights(model_dir, config)
            threshold = float(config.threshold)
    except DetectorError as exc:
        print(f"python -m detector scan: {exc}", file=sys.stderr)
        return EXIT_USAGE

    options = ScanOptions(cam_method=a.cam if a.heatmaps else None, opacity=a.opacity, batch=a.batch,
                          workers=a.workers, finders=a.finders or max(1, round(a.cpus_per_actor)), frames=a.frames,
                          stride=a.stride, top_k=a.top_k)
    opts = ray_engine.RayOptions(address=a.address, actors=a.actors, cpus_per_actor=a.cpus_per_actor,
                                 model_dir=None if a.model_dir is None else str(Path(a.model_dir).resolve()),
                                 face_finder=a.face_finder, progress=a.progress,
                                 scan=ray_engine.scan_options_dict(options))
    if skipped:
        print(f"python -m detector scan: {n_files(skipped)} already have a record in {a.out}; scanning the "
              f"{len(todo) + len(missing)} others.", file=sys.stderr)
    lost = [missing_record(m) for m in missing]
    try:
        with stop_on_sigterm():
            result = ray_engine.run(todo, opts, a.format, a.out, sys.stdout, driver_records=lost)
    except (KeyboardInterrupt, Stopped) as exc:
        why = exc.why if isinstance(exc, Stopped) else "interrupted by Ctrl-C"
        print(f"python -m detector scan: {why}; the records written so far stay (--resume continues).",
              file=sys.stderr)
        return exc.status if isinstance(exc, Stopped) else EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_PIPE_CLOSED
    finally:
        ray_engine.shutdown()
    c = result.counts
    summary = {**c, "seconds": round(result.seconds, 2),
               "face_crops_per_second": round(c["crops"] / result.seconds, 1) if result.seconds > 0 else None}
    where = f" Ray: {result.actors} actors on {result.cluster_cpus:g} CPUs, started in {result.startup_s:.1f} s."
    tail = "" if threshold is None else f" Threshold {threshold:.3f}."
    if a.out is not None:
        print(f"records written to {a.out}", file=sys.stderr)
    print(f"python -m detector scan: {summary_line(summary)}{tail}{where}", file=sys.stderr)
    return exit_status(summary)


if __name__ == "__main__":
    sys.exit(main())
