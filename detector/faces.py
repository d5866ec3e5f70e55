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
  The library runs its three small networks eagerly with TensorFlow, layer by layer, once per
  pyramid level.  Here they run in TF Lite with XNNPACK kernels (``engine="tflite"``, the default;
  flatbuffers shipped in ``assets/mtcnn``, checked against the wheel's networks at start-up): the
  same boxes to the pixel, P-Net 4-6x faster on a 192 px pyramid level than TF's own kernels.  ``engine="graph"`` (one compiled ``tf.function`` per
  network, the previous default) and ``engine="eager"`` (the library's own path) remain for comparison.
* ``haar`` (OpenCV's frontal-face cascade): faster, no landmarks, misses tight crops and profiles.

The crop is a square of side ``margin * max(w, h)`` centred on the box, slid inside the image
(never padded: padding would be a cue that only some sources have) and resized to the model input.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .config import ASSETS_DIR, FACE_DETECTORS, CropConfig

log = logging.getLogger(__name__)
MTCNN_LITE_DIR = ASSETS_DIR / "mtcnn"  # MTCNN's networks as TF Lite flatbuffers (export_mtcnn_lite)


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

    def __init__(self, model, side: int):
        import tensorflow as tf

        self._tf = tf
        self.side = side
        self._fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True, autograph=False,
                               input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)])

    def __call__(self, x, *args, **kwargs):
        return self._fn(self._tf.convert_to_tensor(x, self._tf.float32))

    def warmup(self) -> None:
        self(self._tf.zeros((1, self.side, self.side, 3), self._tf.float32))


class _Outputs(np.ndarray):
    """A NumPy array that also answers ``.numpy()``, as the library expects of a TF tensor."""

    def numpy(self) -> np.ndarray:
        return self.view(np.ndarray)


class _LiteNet:
    """One MTCNN stage network in TF Lite (``detector.lite``), called like the Keras model it replaces.

    The flatbuffer comes from ``assets/mtcnn/<name>.tflite`` (converted by :func:`export_mtcnn_lite`
    from the weights the ``mtcnn`` wheel ships) or, when that file is missing or no longer matches
    the wheel's network, from converting the network now (~0.2 s each).  Either way both are run on
    a probe batch and must agree to 1e-4.  Batch, height and width stay open.
    """

    def __init__(self, model, side: int, name: str):
        from .lite import LiteRunner, convert

        self.side, self.name = side, name
        probe = np.random.default_rng(0).uniform(-1, 1, (2, side, side, 3)).astype(np.float32)
        expected = [np.asarray(t) for t in model(probe, training=False)]
        self.source = "shipped"
        self._run = self._shipped(expected, probe)
        if self._run is None:
            self.source = "converted at start-up"
            self._run = LiteRunner(convert(_CompiledNet(model, side)._fn), shapes=24)
            if not _reproduces(self._run, probe, expected):
                raise RuntimeError(f"TF Lite conversion of MTCNN's {name} does not reproduce it")
        self._empty = [np.zeros((0,) + e.shape[1:], np.float32) for e in expected]

    def _shipped(self, expected, probe):
        from .lite import LiteRunner

        path = MTCNN_LITE_DIR / f"{self.name}.tflite"
        if not path.is_file():
            return None
        try:
            run = LiteRunner(path.read_bytes(), shapes=24)  # P-Net: one interpreter per pyramid level
            if _reproduces(run, probe, expected):
                return run
        except (ValueError, RuntimeError) as exc:  # not a readable flatbuffer
            log.warning("%s could not be loaded (%s); converting MTCNN's network instead.", path, exc)
            return None
        log.warning("%s does not reproduce the installed mtcnn's %s; converting it instead "
                    "(re-export with `python -m detector export-lite --mtcnn`).", path, self.name)
        return None

    def __call__(self, x, *args, **kwargs):
        x = np.asarray(x, np.float32)
        outs = self._empty if x.shape[0] == 0 else self._run(x)
        return tuple(o.view(_Outputs) for o in outs)

    def warmup(self) -> None:
        self(np.zeros((1, self.side, self.side, 3), np.float32))


def _reproduces(run, probe: np.ndarray, expected: list[np.ndarray]) -> bool:
    got = run(probe)
    return len(got) == len(expected) and all(g.shape == e.shape and np.allclose(g, e, atol=1e-4)
                                             for g, e in zip(got, expected, strict=False))


def export_mtcnn_lite(folder: str | Path = None) -> list[Path]:
    """Convert MTCNN's three networks to ``<folder>/{pnet,rnet,onet}.tflite`` (default ``assets/mtcnn``)."""
    from mtcnn import MTCNN

    from .lite import convert

    folder = Path(folder or MTCNN_LITE_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for stage, side, name in zip(MTCNN(device="CPU:0").stages, _STAGE_INPUT_SIDES, _STAGE_NAMES, strict=True):
        path = folder / f"{name}.tflite"
        path.write_bytes(convert(_CompiledNet(stage._model, side)._fn))
        out.append(path)
    return out


class _PyramidPNet:
    """MTCNN's first stage (P-Net over an image pyramid) as ``mtcnn`` 1.0's ``StagePNet.__call__`` runs it,
    with each pyramid level resized by OpenCV's area interpolation instead of one eager TF op per
    level (the same averaging as TF's AREA resize, to ~2e-5; ~4 ms less per photo on two cores).
    Level sizes are truncated exactly as ``mtcnn.utils.images.scale_images`` truncates them.
    """

    def __init__(self, stage):
        self._stage = stage
        self.id, self.name = stage.id, stage.name

    @property
    def _model(self):
        return self._stage._model

    @_model.setter
    def _model(self, model) -> None:
        self._stage._model = model

    def __call__(self, images_normalized, images_oshapes, min_face_size=20, min_size=12, scale_factor=0.709,
                 threshold_pnet=0.6, nms_pnet1=0.5, nms_pnet2=0.7, **kwargs):
        from mtcnn.utils.bboxes import generate_bounding_box, resize_to_square, smart_nms_from_bboxes, upscale_bboxes
        from mtcnn.utils.images import build_scale_pyramid

        groups = [build_scale_pyramid(shape[1], shape[0], min_face_size=min_face_size, scale_factor=scale_factor)
                  for shape in images_oshapes]
        scales = groups[int(np.argmax([g.shape[0] for g in groups]))]
        images = np.asarray(images_normalized, np.float32)
        batch = images.shape[0]
        proposals = []
        for scale in scales:
            h, w = (np.asarray(images.shape[1:3]) * scale).astype(np.int32)
            level = np.stack([cv2.resize(im, (int(w), int(h)), interpolation=cv2.INTER_AREA).reshape(h, w, -1)
                              for im in images])
            reg, cls = self._model(level)
            found = upscale_bboxes(generate_bounding_box(reg, cls, threshold_pnet), np.asarray([scale] * batch))
            proposals.append(smart_nms_from_bboxes(found, threshold=nms_pnet1, method="union", initial_sort=False))
        boxes = np.concatenate(proposals, axis=0) if proposals else np.empty((0, 6))
        boxes = smart_nms_from_bboxes(boxes, threshold=nms_pnet2, method="union", initial_sort=True)
        return resize_to_square(boxes)


# Input side of P-Net (any size, 12 is its smallest), R-Net and O-Net: what warm-up traces with.
_STAGE_INPUT_SIDES = (12, 24, 48)
_STAGE_NAMES = ("pnet", "rnet", "onet")


class MtcnnFaceFinder:
    """MTCNN with a shrink-first policy; thread-safe (the networks are not re-entrant)."""

    name = "mtcnn"
    ENGINES = ("tflite", "graph", "eager")

    def __init__(self, det_max_side: int = 320, min_confidence: float = 0.9, min_face: int = 24,
                 engine: str = "tflite"):
        from mtcnn import MTCNN  # heavy import, only when used

        if engine not in self.ENGINES:
            raise ValueError(f"unknown MTCNN engine {engine!r}; choose {', '.join(self.ENGINES)}")
        self._mtcnn = MTCNN(device="CPU:0")
        self.engine = "eager"
        if engine != "eager":
            self._swap_networks(engine)
        self.det_max_side = det_max_side
        self.min_confidence = min_confidence
        self.min_face = min_face
        self._lock = threading.Lock()

    def _swap_networks(self, engine: str) -> None:
        # mtcnn 1.0 keeps each stage's Keras model in ``stage._model`` and only ever calls it;
        # if a future release changes that, we silently keep its eager path.
        stages = list(getattr(self._mtcnn, "stages", []))
        if len(stages) != len(_STAGE_INPUT_SIDES):
            return
        if not all(hasattr(s, "_model") for s in stages):
            return
        for stage, side, name in zip(stages, _STAGE_INPUT_SIDES, _STAGE_NAMES, strict=True):
            stage._model = _LiteNet(stage._model, side, name) if engine == "tflite" else _CompiledNet(stage._model, side)
        if engine == "tflite":
            self._mtcnn.stages[0] = _PyramidPNet(stages[0])
        self.engine = engine

    @property
    def networks(self) -> list:
        """The stage networks as called (``_LiteNet``, ``_CompiledNet`` or the library's Keras models)."""
        return [s._model for s in self._mtcnn.stages if hasattr(s, "_model")]

    def warmup(self) -> None:
        """Build/trace the networks' first run now, so the first photo does not pay for it."""
        for net in self.networks:
            if isinstance(net, (_LiteNet, _CompiledNet)):
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


AUTO = "mtcnn"


def get_face_finder(name: str = "auto", crop: CropConfig | None = None):
    """Shared face finder by name: one of ``config.FACE_DETECTORS`` (``auto`` = :data:`AUTO`)."""
    name = AUTO if name in ("auto", "", None) else name
    min_face = (crop or CropConfig()).min_face
    with _FINDERS_LOCK:
        if name not in _FINDERS:
            if name == "mtcnn":
                _FINDERS[name] = MtcnnFaceFinder(min_face=min_face)
            elif name == "haar":
                _FINDERS[name] = HaarFaceFinder(min_face=min_face)
            else:
                raise ValueError(f"unknown face detector {name!r}; choose {', '.join(FACE_DETECTORS)}")
        return _FINDERS[name]
