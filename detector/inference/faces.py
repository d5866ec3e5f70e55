"""Find faces and cut them out the same way for training and for inference.

Two face finders are offered; ``auto`` is MTCNN, chosen by measurement (``python -m bench.speed`` reports
speed and recall for both):

* ``mtcnn`` (PyPI ``mtcnn``, MIT, weights shipped in the wheel): boxes, scores and five landmarks.
  Images are shrunk so the longer side is at most ``det_max_side`` (320 px) before detection --
  MTCNN's cost grows with pixels, and a face under ~3 % of the photo is too small to judge
  anyway.  Measured with ``python -m bench.speed``: 320 instead of 480 halves the detection time of a
  512 px portrait; it loses no face on the shared validation images (all under 320 px, so
  detected exactly as when the training crops were made) nor on the package portraits at
  256-2048 px, and finds 16/16 faces of a 4x4 group photo at 2048 px (faces 4 % of the side),
  24/25 at 5x5 (3.3 %).
  Many images can be detected in one batched call (``detect_each``/``detect_many``: the batch scan,
  ``detector.training.prepare``) and every image still gets exactly the faces it gets alone -- the
  canonical boxes are MTCNN's own answer for the image by itself (``mtcnn_nets.BatchedMtcnn``; the
  single-image ``detect`` is the same code with a batch of one).
  The library runs its three small networks eagerly with TensorFlow, layer by layer, once per
  pyramid level; ``detector.inference.mtcnn_nets`` runs them in TF Lite instead
  (``mtcnn_engine="tflite"``, the default): the same boxes to the pixel, 2.5-3x faster per photo.
  ``mtcnn_engine="graph"`` (compiled ``tf.function`` networks, the previous default) and
  ``mtcnn_engine="eager"`` remain for comparison.  (The classifier's own engine is a separate
  setting: ``FDET_ENGINE``, see ``detector.config``.)
* ``haar`` (OpenCV's frontal-face cascade): faster, no landmarks, misses tight crops and profiles.

The crop is a square of side ``margin * max(w, h)`` centred on the box, slid inside the image
(never padded: padding would be a cue that only some sources have) and resized to the model input.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..config import FACE_FINDERS, MIN_FACE, CropConfig

log = logging.getLogger(__name__)


@dataclass
class FaceBox:
    """One face in upright-image pixel coordinates."""

    x: int
    y: int
    w: int
    h: int
    score: float = 1.0
    landmarks: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def area(self) -> int:
        return self.w * self.h

    def as_list(self) -> list[int]:
        return [int(self.x), int(self.y), int(self.w), int(self.h)]


def square_crop_box(box: FaceBox | None, width: int, height: int, margin: float) -> tuple[int, int, int]:
    """(x0, y0, side) of the square crop around ``box``, inside the image; whole-image centre if None."""
    limit = min(width, height)
    if box is None:
        return (width - limit) // 2, (height - limit) // 2, limit
    side = int(round(margin * max(box.w, box.h)))
    side = max(8, min(side, limit))
    cx, cy = box.x + box.w / 2.0, box.y + box.h / 2.0
    x0 = int(round(cx - side / 2.0))
    y0 = int(round(cy - side / 2.0))
    x0 = min(max(x0, 0), width - side)
    y0 = min(max(y0, 0), height - side)
    return x0, y0, side


def crop_square(rgb: np.ndarray, crop: tuple[int, int, int], size: int) -> np.ndarray:
    """Cut the square ``crop`` = (x0, y0, side) and resize it to ``size`` x ``size``."""
    x0, y0, side = crop
    patch = rgb[y0:y0 + side, x0:x0 + side]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interp)


def cut_square(rgb: np.ndarray, crop: tuple[int, int, int]) -> np.ndarray:
    """The square ``crop`` = (x0, y0, side) at the image's own resolution (no resizing)."""
    x0, y0, side = crop
    return np.ascontiguousarray(rgb[y0:y0 + side, x0:x0 + side])


PAD_RETRY = 0.25  # border added on each side (fraction of the longer side) when no face is found


def _padded(rgb: np.ndarray) -> tuple[np.ndarray, int]:
    """``rgb`` on a border of its mean colour: MTCNN misses faces that fill the whole frame."""
    p = int(round(PAD_RETRY * max(rgb.shape[:2])))
    colour = [int(v) for v in rgb.reshape(-1, 3).mean(axis=0)]
    return cv2.copyMakeBorder(rgb, p, p, p, p, cv2.BORDER_CONSTANT, value=colour), p


def _unpad(faces: list[FaceBox], p: int, width: int, height: int) -> list[FaceBox]:
    out = []
    for f in faces:
        x0, y0 = max(0, f.x - p), max(0, f.y - p)
        x1, y1 = min(width, f.x + f.w - p), min(height, f.y + f.h - p)
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        marks = {k: (min(max(0, a - p), width - 1), min(max(0, b - p), height - 1)) for k, (a, b) in f.landmarks.items()}
        out.append(FaceBox(x0, y0, x1 - x0, y1 - y0, f.score, marks))
    return out


def _shrink(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    h, w = rgb.shape[:2]
    scale = min(1.0, max_side / float(max(h, w)))
    if scale < 1.0:
        rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return rgb, scale


class MtcnnFaceFinder:
    """MTCNN with a shrink-first policy; thread-safe.

    The networks are not re-entrant, so each call takes a *lane* -- one copy of MTCNN's three
    networks -- for itself.  With the TF Lite engine up to ``lanes`` copies are made, on demand,
    so that that many threads (the web app's concurrent requests, the batch scan's face-finding
    threads) find faces at once; the weights are ~0.5 MB, a copy costs ~0.5 s when first needed.
    """

    name = "mtcnn"
    MTCNN_ENGINES = ("tflite", "graph", "eager")  # how its three networks run (detector.inference.mtcnn_nets)

    def __init__(self, det_max_side: int = 320, min_confidence: float = 0.9, min_face: int = MIN_FACE,
                 mtcnn_engine: str = "tflite", lanes: int = 2):
        from mtcnn import MTCNN  # heavy import, only when used

        if mtcnn_engine not in self.MTCNN_ENGINES:
            raise ValueError(f"unknown MTCNN engine {mtcnn_engine!r}; choose {', '.join(self.MTCNN_ENGINES)}")
        self._mtcnn = MTCNN(device="CPU:0")
        from .mtcnn_nets import BatchedMtcnn, speed_up

        # "eager" if the library's layout is not the expected one
        self.mtcnn_engine = speed_up(self._mtcnn, mtcnn_engine)
        # The TF Lite engine finds faces of many images in few network calls (canonical: the same
        # faces as one image alone); the reference engines call the library one image at a time.
        self._batched = BatchedMtcnn(self._mtcnn) if self.mtcnn_engine == "tflite" else None
        self.max_lanes = max(1, lanes) if self._batched is not None else 1
        self._idle: queue.SimpleQueue = queue.SimpleQueue()
        self._idle.put(self._batched)
        self.n_lanes = 1
        self._grow = threading.Lock()
        self.det_max_side = det_max_side
        self.min_confidence = min_confidence
        self.min_face = min_face
        self._lock = threading.Lock()

    def ensure_lanes(self, n: int) -> None:
        """Allow at least ``n`` copies of the networks (one per thread that will find faces at once)."""
        if self._batched is not None:
            with self._grow:
                self.max_lanes = max(self.max_lanes, n)

    @staticmethod
    def _new_lane():
        from mtcnn import MTCNN

        from .mtcnn_nets import BatchedMtcnn, speed_up

        mtcnn = MTCNN(device="CPU:0")
        if speed_up(mtcnn, "tflite") != "tflite":
            raise RuntimeError("the installed mtcnn does not have the expected layout")
        return BatchedMtcnn(mtcnn)

    @contextlib.contextmanager
    def _lane(self):
        """An idle copy of the networks (:class:`~detector.inference.mtcnn_nets.BatchedMtcnn`), a new one if allowed."""
        try:
            lane = self._idle.get_nowait()
        except queue.Empty:
            lane = None
            with self._grow:
                if self.n_lanes < self.max_lanes:
                    try:
                        lane = self._new_lane()
                        self.n_lanes += 1
                    except Exception as exc:  # noqa: BLE001 - fewer lanes is slower, not wrong
                        log.warning("a second copy of MTCNN could not be made (%s); sharing one.", exc)
                        self.max_lanes = self.n_lanes
            if lane is None:
                lane = self._idle.get()
        try:
            yield lane
        finally:
            self._idle.put(lane)

    @property
    def networks(self) -> list:
        """The stage networks as called (``mtcnn_nets.LiteNet``/``CompiledNet`` or the library's Keras models)."""
        return [s._model for s in self._mtcnn.stages if hasattr(s, "_model")]

    def warmup(self) -> None:
        """Build/trace the networks' first run now, so the first photo does not pay for it."""
        for net in self.networks:
            if hasattr(net, "warmup"):
                net.warmup()
        self.detect(np.zeros((64, 64, 3), np.uint8))

    def _convert(self, raw: list[dict], scale: float, width: int, height: int) -> list[FaceBox]:
        faces = []
        for r in raw:
            conf = float(r.get("confidence", 0.0))
            x, y, w, h = (float(v) / scale for v in r["box"])
            if conf < self.min_confidence or min(w, h) < self.min_face:
                continue
            x0, y0 = max(0.0, x), max(0.0, y)
            x1, y1 = min(float(width), x + w), min(float(height), y + h)
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            marks = {k: (int(round(v[0] / scale)), int(round(v[1] / scale))) for k, v in r.get("keypoints", {}).items()}
            faces.append(FaceBox(int(round(x0)), int(round(y0)), int(round(x1 - x0)), int(round(y1 - y0)), conf, marks))
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces

    def _library_call(self, small: np.ndarray) -> list[dict] | None:
        """``mtcnn``'s own ``detect_faces`` on one image (the graph and eager reference engines)."""
        try:
            return self._mtcnn.detect_faces(small)
        except (ValueError, IndexError):  # its pyramid reaches < 12 px on some tiny inputs: no face
            return None

    def _raw(self, smalls: list[np.ndarray]) -> list[list[dict] | None | Exception]:
        """MTCNN's answer per image: its JSON rows, None for "it raised: no face", or the unexpected error."""
        if not smalls:
            return []
        if self._batched is None:
            with self._lock:
                return [self._library_call(s) for s in smalls]
        with self._lane() as batched:
            try:
                return batched(smalls)
            except Exception:  # noqa: BLE001 - one image at a time, so one odd image cannot sink the others
                out: list[list[dict] | None | Exception] = []
                for s in smalls:
                    try:
                        out.append(batched([s])[0])
                    except (ValueError, IndexError):
                        out.append(None)
                    except Exception as exc:  # noqa: BLE001 - handed to the caller, per image
                        out.append(exc)
                return out

    def _pass(self, images: list[np.ndarray]) -> list[list[FaceBox] | Exception]:
        """One detection pass: each image shrunk to ``det_max_side``, all of them batched."""
        shrunk = [_shrink(im, self.det_max_side) for im in images]
        todo = [i for i, (small, _) in enumerate(shrunk) if min(small.shape[:2]) >= 24]
        out: list[list[FaceBox] | Exception] = [[] for _ in images]
        for i, raw in zip(todo, self._raw([shrunk[i][0] for i in todo]), strict=True):
            if isinstance(raw, Exception):
                out[i] = raw
            elif raw is not None:
                out[i] = self._convert(raw, shrunk[i][1], images[i].shape[1], images[i].shape[0])
        return out

    def detect_each(self, images: list[np.ndarray]) -> list[list[FaceBox] | Exception]:
        """Faces per image (largest first), or the error that image alone raised; batched across images.

        Every image gets exactly the faces :meth:`detect` gives it alone (``mtcnn_nets.BatchedMtcnn``):
        a scan and the web app's ``analyze`` agree to the pixel whatever else is in the batch.
        Images without a face get the second look on a padded copy (:meth:`_retry_padded`), batched too.
        """
        found = self._pass(images)
        retry = [i for i, f in enumerate(found) if isinstance(f, list) and not f]
        padded = [_padded(images[i]) for i in retry]
        for i, (pad, again) in zip(retry, zip(padded, self._pass([im for im, _ in padded]), strict=True), strict=True):
            h, w = images[i].shape[:2]
            found[i] = again if isinstance(again, Exception) else _unpad(again, pad[1], w, h)
        return found

    def _retry_padded(self, rgb: np.ndarray) -> list[FaceBox]:
        """Second look on a padded copy: tight face crops (the face is the whole frame) are often missed.

        Measured on the developer set's DFDC crops: no face in 35 of 3000 reals and 191 of 3000
        fakes; with this retry 15 and 145.  A face finder that fails more often on one class turns
        "no face" into a class cue, so training leaves the remaining no-face rows out.
        """
        padded, p = _padded(rgb)
        return _unpad(_raise(self._pass([padded])[0]), p, rgb.shape[1], rgb.shape[0])

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        return _raise(self.detect_each([rgb])[0])

    def detect_many(self, images: list[np.ndarray]) -> list[list[FaceBox]]:
        """Batched detection, the same faces as :meth:`detect` on each image (raises an image's error)."""
        return [_raise(f) for f in self.detect_each(images)]


def _raise(found: list[FaceBox] | Exception) -> list[FaceBox]:
    if isinstance(found, Exception):
        raise found
    return found


class HaarFaceFinder:
    """OpenCV's Viola-Jones frontal-face cascade (no landmarks); thread-safe (the cascade is not re-entrant)."""

    name = "haar"

    def __init__(self, det_max_side: int = 640, min_face: int = MIN_FACE):
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise RuntimeError(f"could not load Haar cascade from {path}")
        self.det_max_side = det_max_side
        self.min_face = min_face
        # The web apps call one shared finder from several request threads at once.
        self._lock = threading.Lock()

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        small, scale = _shrink(rgb, self.det_max_side)
        gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
        min_px = max(12, int(self.min_face * scale))
        with self._lock:
            found = self._cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_px, min_px))
        faces = [FaceBox(int(x / scale), int(y / scale), int(w / scale), int(h / scale), 1.0) for x, y, w, h in found]
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces

    def detect_many(self, images: list[np.ndarray]) -> list[list[FaceBox]]:
        return [self.detect(im) for im in images]

    def ensure_lanes(self, n: int) -> None:
        """One cascade serves every thread (under its lock): nothing to add."""

    def detect_each(self, images: list[np.ndarray]) -> list[list[FaceBox] | Exception]:
        out: list[list[FaceBox] | Exception] = []
        for im in images:
            try:
                out.append(self.detect(im))
            except Exception as exc:  # noqa: BLE001 - per image, as MtcnnFaceFinder.detect_each
                out.append(exc)
        return out

    def warmup(self) -> None:
        self.detect(np.zeros((64, 64, 3), np.uint8))


_FINDERS: dict[str, object] = {}
_FINDERS_LOCK = threading.Lock()


AUTO = "mtcnn"


def get_face_finder(name: str = "auto", crop: CropConfig | None = None):
    """Shared face finder by name: one of ``config.FACE_FINDERS`` (``auto`` = :data:`AUTO`)."""
    name = AUTO if name in ("auto", "", None) else name
    min_face = (crop or CropConfig()).min_face
    with _FINDERS_LOCK:
        if name not in _FINDERS:
            if name == "mtcnn":
                _FINDERS[name] = MtcnnFaceFinder(min_face=min_face)
            elif name == "haar":
                _FINDERS[name] = HaarFaceFinder(min_face=min_face)
            else:
                raise ValueError(f"unknown face finder {name!r}; choose {', '.join(FACE_FINDERS)}")
        return _FINDERS[name]
