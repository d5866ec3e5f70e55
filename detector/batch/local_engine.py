"""The local engine: many files scored in this process, decoding, face finding and the model overlapped.

It gives the same numbers as Detector.analyze (the web apps' call; a test pins the two together)
but is organised for throughput rather than for one upload:

* decoding, face finding and the model overlap: threads decode files ahead, two threads find
  the faces of groups of images, each group in one batched MTCNN pass (Detector.find_crops_many, the same
  faces each image gets alone), and the face crops of the whole group go through *one* model
  call (Detector.score) while the next group's faces are found;
* heatmaps are off unless asked for (``--heatmaps``, or the HTML report, which shows them):
  the plain forward pass needs no gradients.

Nothing in a folder can stop the run: a file that cannot be read becomes a record with
``error`` set to a one-sentence reason.  ``python -m detector scan`` (``detector.batch.scan``) is
the command line over it; the Ray engine (``detector.batch.ray_engine``) runs this very code in
each of its actors.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import DEFAULT_CAM_METHOD, VIDEO_FRAMES, VIDEO_TOP_K
from ..errors import DetectorError
from ..inference.images import LoadedImage, load_image
from ..inference.video import VIDEO_SUFFIXES, analyze_video, is_video, sample_frames, timeline_png
from ..inference.views import FaceViews
from ..training.data import IMAGE_SUFFIXES
from . import report
from .records import ScanRecord, error_record, missing_record

log = logging.getLogger(__name__)

THUMB_SIDE = 160  # px, longer side of the HTML report's thumbnails
# A message for failures we did not foresee: the reason stays in the log, never a traceback on the record.
UNEXPECTED = "This file could not be analysed (unexpected {kind}); it was skipped."


@dataclass
class ScanOptions:
    cam_method: str | None = None  # None = no heatmaps (fastest)
    opacity: float = 0.5  # heatmap strength in the overlay thumbnails
    batch: int = 32  # face crops per model call
    workers: int = 2  # decode threads
    finders: int = 2  # face-finding threads (each takes its own copy of MTCNN's networks)
    frames: int = VIDEO_FRAMES  # video: frames sampled per video
    stride: int | None = None  # video: every stride-th frame (default: spread evenly)
    top_k: int = VIDEO_TOP_K  # video: P(fake) = mean of the top-k frame scores
    thumbnails: bool = False  # keep JPEG thumbnails on the records (for the HTML report)
    timeline_dir: Path | None = None  # write a P(fake)-over-time PNG per video here


# ---------------------------------------------------------------------------- finding the files


MANIFEST_SUFFIXES = {".csv", ".parquet"}  # a file with one of these, named on the command line, lists the files


class ManifestError(ValueError):
    """A manifest that cannot be read or has no ``path`` column (a usage error)."""


def read_manifest(path: str | Path) -> list[Path]:
    """The files a manifest lists: its ``path`` column (CSV or Parquet); relative paths are relative to its folder."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path)
            if "path" not in table.column_names:
                raise ManifestError(f"{path} has no 'path' column (columns: {', '.join(table.column_names)})")
            entries = [str(v) for v in table.column("path").to_pylist() if v]
        else:
            with open(path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                if "path" not in (reader.fieldnames or []):
                    raise ManifestError(f"{path} has no 'path' column in its header line")
                entries = [row["path"] for row in reader if row.get("path")]
    except ManifestError:
        raise
    except Exception as exc:  # noqa: BLE001 - unreadable manifest: one sentence, not a traceback
        raise ManifestError(f"{path} could not be read as a manifest ({type(exc).__name__}: {exc})") from None
    return [q if q.is_absolute() else path.parent / q for q in map(Path, entries)]


def collect_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[str]]:
    """Files to scan (folders walked recursively, images and videos only) and paths that do not exist.

    A file named explicitly is scanned whatever its suffix -- the loader then says what it is --
    except a manifest (``.csv``/``.parquet``), whose ``path`` column lists the files instead
    (:func:`read_manifest`; raises :class:`ManifestError`).  A manifest's entries are taken as
    files without looking at the disk (a million ``stat`` calls on a network filesystem take
    minutes): one that is missing gets its error record from the loader.  A file reached twice
    (overlapping arguments, a manifest repeating a path) is scanned once.
    """
    wanted = IMAGE_SUFFIXES | VIDEO_SUFFIXES
    files: list[Path] = []
    missing: list[str] = []
    seen: set[str] = set()

    def keep(q: Path) -> None:
        key = os.path.abspath(q)
        if key not in seen:
            seen.add(key)
            files.append(q)

    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            # os.walk reads each folder once (no stat per file), far faster than rglob + is_file on big trees
            for q in sorted(Path(d) / f for d, _, names in os.walk(p) for f in names
                            if os.path.splitext(f)[1].lower() in wanted):
                keep(q)
        elif p.is_file() and p.suffix.lower() in MANIFEST_SUFFIXES:
            for q in read_manifest(p):
                keep(q)
        elif p.is_file():
            keep(p)
        else:
            missing.append(str(raw))
    return files, missing


@dataclass
class _Prepared:
    """An image decoded and cut into face crops, waiting for its turn in a model batch."""

    path: Path
    image: LoadedImage | None = None
    faces: list = field(default_factory=list)
    boxes: list = field(default_factory=list)
    crops: FaceViews | None = None
    skipped: int = 0
    times: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def _jpeg(rgb: np.ndarray, side: int = THUMB_SIDE) -> bytes:
    from PIL import Image

    im = Image.fromarray(rgb)
    im.thumbnail((side, side))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=80)
    return buf.getvalue()


def _unexpected(exc: BaseException) -> str:
    log.warning("unexpected %s while scanning", type(exc).__name__, exc_info=log.isEnabledFor(logging.DEBUG))
    return UNEXPECTED.format(kind=type(exc).__name__)


GROUP_PIXELS = 48_000_000  # decoded pixels one face-finding group may hold (a few phone photos, many small images)


class Scanner:
    """Runs a :class:`~detector.inference.pipeline.Detector` over many files, batching across images.

    Three stages overlap, each on its own thread(s), so none waits for the others on two cores:

    1. ``workers`` threads decode files (the JPEG decoder releases the GIL);
    2. ``finders`` threads each find the faces of a *group* of decoded images at once
       (:meth:`Detector.find_crops_many`: MTCNN's networks run once for the group, every image
       still gets the faces it gets alone; each thread uses its own copy of the networks);
    3. the calling thread scores all crops of a group in one model call and assembles the records.

    While group ``g`` is scored, the next ``finders`` groups' faces are found and the one after
    is decoded; records still come out in file order.
    """

    def __init__(self, detector, options: ScanOptions | None = None):
        self.det = detector
        self.opts = options or ScanOptions()
        self.n_crops = 0  # face crops scored so far (for the speed summary)

    @property
    def group_size(self) -> int:
        """Images whose faces are found together (and whose crops then share one model call)."""
        return max(1, self.opts.batch // 2)

    # -- decode threads

    def _decode(self, path: Path) -> _Prepared:
        try:
            t = time.perf_counter()
            image = load_image(path, self.det.limits)
            return _Prepared(path, image, times={"decode": (time.perf_counter() - t) * 1000})
        except DetectorError as exc:
            return _Prepared(path, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - one odd file must not end the scan
            return _Prepared(path, error=_unexpected(exc))

    # -- the face-finding thread: one batched pass per group

    def _find(self, decoding: list[Future]) -> list[_Prepared]:
        items = [f.result() for f in decoding]
        ready = [x for x in items if x.error is None]
        if not ready:
            return items
        t = time.perf_counter()
        try:
            found = self.det.find_crops_many([x.image.rgb for x in ready])
        except Exception as exc:  # noqa: BLE001 - the whole group failed: each file says so
            found = [exc] * len(ready)
        share = (time.perf_counter() - t) * 1000 / len(ready)  # the group's time, shared per image
        for x, result in zip(ready, found, strict=True):
            if isinstance(result, Exception):
                x.error = str(result) if isinstance(result, DetectorError) else _unexpected(result)
                continue
            x.faces, x.boxes, x.crops, x.skipped = result
            x.times["faces"] = share
        return items

    # -- the calling thread: one model call per group

    def _flush(self, pending: list[_Prepared]) -> Iterator[ScanRecord]:
        ready = [x for x in pending if x.error is None]
        probs = cams = None
        model_ms = 0.0
        if ready:
            crops = FaceViews.concat([x.crops for x in ready])
            t = time.perf_counter()
            try:
                probs, cams = self.det.score(crops, self.opts.cam_method)
            except Exception as exc:  # noqa: BLE001
                message = _unexpected(exc)
                for x in ready:
                    x.error = message
                ready = []
            model_ms = (time.perf_counter() - t) * 1000
            self.n_crops += len(crops) if ready else 0
        total = sum(len(x.crops) for x in ready) or 1
        start = 0
        for x in pending:
            if x.error is not None:
                yield error_record(x.path, x.error)
                continue
            n = len(x.crops)
            sl = slice(start, start + n)
            start += n
            times = dict(x.times, model=model_ms * n / total)  # the batch's time, shared by crop count
            try:
                res = self.det.assemble(x.image, x.faces, x.boxes, x.skipped, probs[sl],
                                        None if cams is None else cams[sl], self.opts.cam_method,
                                        self.opts.opacity, render_overlay=self.opts.thumbnails, times=times)
                yield self._image_record(x, res)
            except Exception as exc:  # noqa: BLE001
                yield error_record(x.path, _unexpected(exc))

    def _image_record(self, x: _Prepared, res) -> ScanRecord:
        heat = self.opts.cam_method is not None
        faces = []
        if res.face_found:
            for f in res.faces:
                d = {"box": [int(v) for v in f.box], "p_fake": round(float(f.p_fake), 4), "label": f.label,
                     "verdict": f.verdict,
                     "detector_score": None if f.detector_score is None else round(float(f.detector_score), 4)}
                if heat and f.heatmap is not None:
                    d["heatmap"] = np.round(f.heatmap, 3).tolist()
                faces.append(d)
        rec = ScanRecord(str(x.path), "image", float(res.p_fake), res.label, faces, res.message, list(res.notes),
                         verdict=res.verdict, provenance=res.provenance)
        if self.opts.thumbnails:
            rec.thumb = _jpeg(x.image.rgb)
            report.add_pictures(rec, x.image.rgb, res, self.opts.opacity)
        return rec

    def _video(self, path: Path) -> ScanRecord:
        o = self.opts
        try:
            # The HTML report shows the worst frame's heatmap, so it asks for the CAM there too.
            cam = o.cam_method or (DEFAULT_CAM_METHOD if o.thumbnails else None)
            vr = analyze_video(self.det, path, max_frames=o.frames, stride=o.stride, top_k=o.top_k, cam_method=cam)
            rec = ScanRecord(str(path), "video", vr.p_fake, vr.label, [], vr.message, list(vr.notes), video=vr.to_dict(),
                             n_faces_override=max((f.n_faces for f in vr.frames), default=0), verdict=vr.verdict)
            if o.timeline_dir is not None:
                o.timeline_dir.mkdir(parents=True, exist_ok=True)
                tag = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]
                png = timeline_png(vr, o.timeline_dir / f"{path.stem}-{tag}.png", self.det.threshold)
                rec.timeline = str(png)
            if o.thumbnails:
                if vr.worst_result is not None and vr.worst_rgb is not None:
                    report.add_pictures(rec, vr.worst_rgb, vr.worst_result, o.opacity)
                first = next(iter(sample_frames(path, max_frames=1)), None)
                if first is not None:
                    rec.thumb = _jpeg(first[2])
            return rec
        except DetectorError as exc:
            return error_record(path, str(exc))
        except Exception as exc:  # noqa: BLE001
            return error_record(path, _unexpected(exc))

    def _segments(self, files: list[Path]) -> Iterator[tuple[str, list[Path]]]:
        """``("images", group)`` and ``("video", [path])`` in file order; a group ends at a video,
        at :attr:`group_size` images or at :data:`GROUP_PIXELS` (judged from the file size: ~1 byte a pixel)."""
        group: list[Path] = []
        budget = 0
        for p in files:
            if is_video(p):
                if group:
                    yield "images", group
                    group, budget = [], 0
                yield "video", [p]
                continue
            group.append(p)
            budget += _file_size(p) * 8  # JPEGs hold ~0.1-0.5 bytes a pixel; 8x is a safe over-estimate
            if len(group) >= self.group_size or budget >= GROUP_PIXELS:
                yield "images", group
                group, budget = [], 0
        if group:
            yield "images", group

    def run(self, files: list[Path]) -> Iterator[ScanRecord]:
        """Records in the order of ``files``."""
        segments = self._segments(files)
        queue: deque[tuple[str, list[Path], Future | None]] = deque()
        finders = max(1, self.opts.finders)
        self.det.finder.ensure_lanes(finders)
        with ThreadPoolExecutor(max(1, self.opts.workers), thread_name_prefix="fdet-decode") as decode, \
                ThreadPoolExecutor(finders, thread_name_prefix="fdet-faces") as finder:

            def fill() -> None:
                # Image groups ahead of the one being scored: one per face-finding thread, one decoding.
                while sum(kind == "images" for kind, _, _ in queue) < 2 + finders:
                    seg = next(segments, None)
                    if seg is None:
                        return
                    kind, paths = seg
                    fut = finder.submit(self._find, [decode.submit(self._decode, p) for p in paths]) \
                        if kind == "images" else None
                    queue.append((kind, paths, fut))

            fill()
            while queue:
                kind, paths, fut = queue.popleft()
                fill()
                if kind == "video":
                    yield self._video(paths[0])
                else:
                    yield from self._flush(fut.result())


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def scan(paths: Iterable[str | Path], detector=None, options: ScanOptions | None = None) -> Iterator[ScanRecord]:
    """Library entry point: records for every file under ``paths`` (missing paths become error records)."""
    if detector is None:
        from ..inference.pipeline import get_detector

        detector = get_detector()
    files, missing = collect_files(paths)
    for m in missing:
        yield missing_record(m)
    yield from Scanner(detector, options).run(files)
