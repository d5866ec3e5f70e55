"""MTCNN's three networks, made fast without changing what they find.

The ``mtcnn`` package (MIT) runs P-Net, R-Net and O-Net eagerly with TensorFlow, layer by layer,
once per pyramid level.  :func:`speed_up` swaps each stage's network for

* :class:`LiteNet` (``mtcnn_engine="tflite"``, the default): the network in TF Lite with XNNPACK kernels,
  from ``assets/mtcnn/<name>.tflite`` (written by :func:`export_mtcnn_lite`) or converted at start-up
  when that file is missing or no longer matches the installed package -- checked on a probe batch
  at every start.  P-Net's stage also becomes :class:`PyramidPNet`, which resizes the pyramid with
  OpenCV instead of one eager TF op per level;
* :class:`CompiledNet` (``mtcnn_engine="graph"``): one compiled ``tf.function`` per network.

``tests/test_fast_paths.py`` pins both to the library's own eager path: the same boxes, scores and
landmarks.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from ..config import ASSETS_DIR

log = logging.getLogger(__name__)
MTCNN_LITE_DIR = ASSETS_DIR / "mtcnn"  # MTCNN's networks as TF Lite flatbuffers (export_mtcnn_lite)
# Input side of P-Net (any size, 12 is its smallest), R-Net and O-Net: what warm-up runs with.
STAGE_INPUT_SIDES = (12, 24, 48)
STAGE_NAMES = ("pnet", "rnet", "onet")


class CompiledNet:
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


class LiteNet:
    """One MTCNN stage network in TF Lite (``detector.inference.lite``), called like the Keras model it replaces.

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
            self._run = LiteRunner(convert(CompiledNet(model, side)._fn), shapes=24)
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
    for stage, side, name in zip(MTCNN(device="CPU:0").stages, STAGE_INPUT_SIDES, STAGE_NAMES, strict=True):
        path = folder / f"{name}.tflite"
        path.write_bytes(convert(CompiledNet(stage._model, side)._fn))
        out.append(path)
    return out


class PyramidPNet:
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


def speed_up(mtcnn, mtcnn_engine: str) -> str:
    """Swap the networks of an ``mtcnn.MTCNN`` for ``mtcnn_engine``'s; the engine actually in use.

    mtcnn 1.0 keeps each stage's Keras model in ``stage._model`` and only ever calls it; if a
    future release changes that, its eager path stays (and ``"eager"`` is returned).
    """
    stages = list(getattr(mtcnn, "stages", []))
    if mtcnn_engine == "eager" or len(stages) != len(STAGE_INPUT_SIDES) or not all(hasattr(s, "_model") for s in stages):
        return "eager"
    for stage, side, name in zip(stages, STAGE_INPUT_SIDES, STAGE_NAMES, strict=True):
        stage._model = LiteNet(stage._model, side, name) if mtcnn_engine == "tflite" else CompiledNet(stage._model, side)
    if mtcnn_engine == "tflite":
        mtcnn.stages[0] = PyramidPNet(stages[0])
    return mtcnn_engine
