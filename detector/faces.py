"""Find faces and cut them out the same way for training and for inference.

Two detectors are offered; ``auto`` is MTCNN, chosen by measurement (``bench/speed.py`` reports
speed and recall for both):

* ``mtcnn`` (PyPI ``mtcnn``, MIT, weights shipped in the wheel): boxes, scores and five landmarks.
  Images are shrunk so the longer side is at most ``det_max_side`` (320 px) before detection --
  MTCNN's cost grows with pixels, and a face under ~3 % of the photo is too small to judge
  anyway.  Measured with ``bench/speed.py``: 320 instead of 480 halves the detection time of a
  512 px portrait; it loses no face on the shared validation images (all under 320 px, so
  detected exactly as when the training crops were made) nor on the package portraits at
  256-2048 px, and finds 16/16 faces of a 4x4 group photo at 2048 px (faces 4 % of the side),
  24/25 at 5x5 (3.3 %).
  Many images can be detected in one batched call (used by ``detector.prepare``).
  The library runs its three small networks eagerly, layer by layer, once per pyramid level;
  that Python overhead cost more than the arithmetic, so each network is wrapped in one
  compiled ``tf.function`` (same weights, same boxes, 2-3x faster; ``compiled=False`` keeps
  the library's own path for comparison).
* ``haar`` (OpenCV's frontal-face cascade): faster, no landmarks, misses tight crops and profiles.

The crop is a square of side ``margin * max(w, h)`` centred on the box, slid inside the image
(never padded: padding would be a cue that only some sources have) and resized to the model input.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import cv2
import numpy as np

from .config import CropConfig


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


def _shrink(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    h, w = rgb.shape[:2]
    scale = min(1.0, max_side / float(max(h, w)))
    if scale < 1.0:
        rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return rgb, scale


class _CompiledNet:
    """One MTCNN stage network as a single compiled graph, called like the Keras model it wraps.

    The input signature leaves batch, height and width open, so every pyramid level and every
    batch of candidate patches reuses one trace instead of dispatching each layer from Python.
    """

    def __init__(self, model):
        import tensorflow as tf

        self._tf = tf
        self._fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True, autograph=False,
                               input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)])

    def __call__(self, x, *args, **kwargs):
        return self._fn(self._tf.convert_to_tensor(x, self._tf.float32))

    def warmup(self, side: int) -> None:
        self(self._tf.zeros((1, side, side, 3), self._tf.float32))


# Input side of P-Net (any size, 12 is its smallest), R-Net and O-Net: what warm-up traces with.
_STAGE_INPUT_SIDES = (12, 24, 48)


class MtcnnFaceFinder:
    """MTCNN with a shrink-first policy; thread-safe (the TF stages are not re-entrant)."""

    name = "mtcnn"

    def __init__(self, det_max_side: int = 320, min_confidence: float = 0.9, min_face: int = 24,
                 compiled: bool = True):
        from mtcnn import MTCNN  # heavy import, only when used

        self._mtcnn = MTCNN(device="CPU:0")
        self.compiled = False
        if compiled:
            self._compile()
        self.det_max_side = det_max_side
        self.min_confidence = min_confidence
        self.min_face = min_face
        self._lock = threading.Lock()

    def _compile(self) -> None:
        # mtcnn 1.0 keeps each stage's Keras model in ``stage._model`` and only ever calls it;
        # if a future release changes that, we silently keep its eager path.
        stages = list(getattr(self._mtcnn, "stages", []))
        if len(stages) != len(_STAGE_INPUT_SIDES) or not all(hasattr(s, "_model") for s in stages):
            return
        for stage in stages:
            stage._model = _CompiledNet(stage._model)
        self.compiled = True

    def warmup(self) -> None:
        """Trace the three networks now, so the first photo does not pay for it."""
        if self.compiled:
            for stage, side in zip(self._mtcnn.stages, _STAGE_INPUT_SIDES, strict=True):
                stage._model.warmup(side)
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

    def _safe_detect(self, images):
        """MTCNN raises on some tiny inputs (its pyramid reaches <12 px); treat that as 'no face'."""
        try:
            with self._lock:
                return self._mtcnn.detect_faces(images)
        except (ValueError, IndexError):
            return None

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        small, scale = _shrink(rgb, self.det_max_side)
        if min(small.shape[:2]) < 24:
            return []
        raw = self._safe_detect(small)
        return [] if raw is None else self._convert(raw, scale, rgb.shape[1], rgb.shape[0])

    def detect_many(self, images: list[np.ndarray]) -> list[list[FaceBox]]:
        """Batched detection; images of similar size batch best (MTCNN pads to the largest)."""
        if not images:
            return []
        shrunk = [_shrink(im, self.det_max_side) for im in images]
        raw = self._safe_detect([s for s, _ in shrunk])
        if raw is None:  # fall back to one at a time so one odd image cannot sink the batch
            return [self.detect(im) for im in images]
        return [self._convert(r, sc, im.shape[1], im.shape[0]) for r, (_, sc), im in zip(raw, shrunk, images, strict=False)]


class HaarFaceFinder:
    """OpenCV's Viola-Jones frontal-face cascade (no landmarks); thread-safe (the cascade is not re-entrant)."""

    name = "haar"

    def __init__(self, det_max_side: int = 640, min_face: int = 24):
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

    def warmup(self) -> None:
        self.detect(np.zeros((64, 64, 3), np.uint8))


_FINDERS: dict[str, object] = {}
_FINDERS_LOCK = threading.Lock()


def get_face_finder(name: str = "auto", crop: CropConfig | None = None):
    """Shared face finder by name: ``auto`` (= ``mtcnn``), ``mtcnn`` or ``haar``."""
    name = "mtcnn" if name in ("auto", "", None) else name
    min_face = (crop or CropConfig()).min_face
    with _FINDERS_LOCK:
        if name not in _FINDERS:
            if name == "mtcnn":
                _FINDERS[name] = MtcnnFaceFinder(min_face=min_face)
            elif name == "haar":
                _FINDERS[name] = HaarFaceFinder(min_face=min_face)
            else:
                raise ValueError(f"unknown face detector {name!r}; choose auto, mtcnn or haar")
        return _FINDERS[name]
