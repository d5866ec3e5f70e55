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
            self._run = LiteRunner(convert(CompiledNet(model, side)._fn), shapes=_shapes(side))
            if not _reproduces(self._run, probe, expected):
                raise RuntimeError(f"TF Lite conversion of MTCNN's {name} does not reproduce it")
        self._empty = [np.zeros((0,) + e.shape[1:], np.float32) for e in expected]

    def _shipped(self, expected, probe):
        from .lite import LiteRunner

        path = MTCNN_LITE_DIR / f"{self.name}.tflite"
        if not path.is_file():
            return None
        try:
            run = LiteRunner(path.read_bytes(), shapes=_shapes(self.side))
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
        n = x.shape[0]
        if min(x.shape[1:3]) < self.side:
            # TF would raise on an input its convolutions cannot cover; TF Lite crashes the process instead
            raise ValueError(f"{self.name} needs inputs of at least {self.side} px, got {x.shape[1:3]}")
        if n == 0:
            return tuple(o.view(_Outputs) for o in self._empty)
        rows = _bucket(n) if self.side > STAGE_INPUT_SIDES[0] else n
        if rows > n:  # R-/O-Net: a few batch sizes, not one interpreter re-plan per candidate count
            x = np.concatenate([x, np.zeros((rows - n,) + x.shape[1:], np.float32)])
        return tuple(o[:n].view(_Outputs) for o in self._run(x))

    def warmup(self) -> None:
        self(np.zeros((1, self.side, self.side, 3), np.float32))


def _shapes(side: int) -> int:
    """Interpreters a stage keeps, one per input shape: P-Net one per pyramid level of each image size
    seen lately (~8 levels a size; a mixed archive has a handful of sizes after shrinking to 320 px),
    R-/O-Net one per batch bucket (:func:`_bucket`).  P-Net's weights are 7k floats: the copies are cheap.
    """
    return 64 if side == STAGE_INPUT_SIDES[0] else 24


def _bucket(n: int) -> int:
    """Rows a batch of ``n`` R-/O-Net patches is padded to: 1, 2, 4, ... 64, then multiples of 64.

    Each distinct batch size costs the TF Lite runner an interpreter re-plan (``allocate_tensors``,
    ~1 ms); the candidate count changes with every photo.  The networks are row-independent, so
    zero rows change nothing but a little work (``tests/test_faces.py``).
    """
    return 1 << (n - 1).bit_length() if n <= 64 else -(-n // 64) * 64


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


# ---------------------------------------------------------------------------- many images at once

# Defaults of mtcnn 1.0's stages (StagePNet/StageRNet/StageONet.__call__): what detect_faces uses.
STAGE_DEFAULTS = {"min_face_size": 20, "min_size": 12, "scale_factor": 0.709, "threshold_pnet": 0.6,
                  "nms_pnet1": 0.5, "nms_pnet2": 0.7, "threshold_rnet": 0.7, "nms_rnet": 0.7,
                  "threshold_onet": 0.8, "nms_onet": 0.7}


class BatchedMtcnn:
    """MTCNN over many images in few network calls, each image's answer *exactly* its answer alone.

    The library's own batch (``MTCNN.detect_faces(list)``) is not that: it pads every image to the
    largest, which moves the pyramid grid and the R-/O-Net patch sampling, and it sorts the boxes
    of all images together with NumPy's unstable sort, so of two proposals with the same
    (saturated) score the one kept depends on the *other* images -- measured: 6-8 of 200
    validation images got another box.  Here only the networks see several images:

    * P-Net runs over each image's own pyramid (batched across same-sized images when ``pnet_batch``);
    * R-Net and O-Net run once for the candidate patches of *all* images, whatever their sizes;
    * everything else -- proposal generation, both NMS passes, box regression, landmarks, the
      final clipping -- runs per image on exactly the arrays a single-image call builds, with
      the library's own functions (a pyramid level where no window passes P-Net's threshold is
      skipped: it would add no row).

    The three networks are row-independent (a row's outputs do not depend on the other rows of
    the batch, bit for bit: ``tests/test_faces.py``), so every image gets the same boxes, scores
    and landmarks as ``detect_faces(image)``: these are the canonical boxes, and
    :meth:`detector.inference.faces.MtcnnFaceFinder.detect` is this with a batch of one.
    """

    def __init__(self, mtcnn, pnet_batch: bool = False, **params):
        stages = list(mtcnn.stages)
        self.pnet, self.rnet, self.onet = (s._model for s in stages)
        self.pnet_batch = pnet_batch
        self.p = {**STAGE_DEFAULTS, **params}

    # -- the three stages; ``boxes`` per image are the library's (n, 6+) rows with image id 0

    def _proposals(self, group: np.ndarray) -> list[np.ndarray]:
        """P-Net over the pyramid of the same-sized images ``group`` (normalised float32): boxes per image."""
        from mtcnn.utils.bboxes import generate_bounding_box, resize_to_square, smart_nms_from_bboxes, upscale_bboxes
        from mtcnn.utils.images import build_scale_pyramid

        p = self.p
        height, width = group.shape[1:3]
        scales = build_scale_pyramid(width, height, min_face_size=p["min_face_size"], scale_factor=p["scale_factor"])
        per_image: list[list[np.ndarray]] = [[] for _ in range(len(group))]
        chunks = [group] if self.pnet_batch else [group[i:i + 1] for i in range(len(group))]
        for scale in scales:
            h, w = (np.asarray(group.shape[1:3]) * scale).astype(np.int32)
            outs = []
            for chunk in chunks:
                level = np.stack([cv2.resize(im, (int(w), int(h)), interpolation=cv2.INTER_AREA).reshape(h, w, -1)
                                  for im in chunk])
                reg, cls = self.pnet(level)
                outs += [(reg[i:i + 1], cls[i:i + 1]) for i in range(len(chunk))]
            for i, (reg, cls) in enumerate(outs):
                if not (cls[..., 1] > p["threshold_pnet"]).any():
                    continue
                found = upscale_bboxes(generate_bounding_box(reg, cls, p["threshold_pnet"]), np.asarray([scale]))
                per_image[i].append(smart_nms_from_bboxes(found, threshold=p["nms_pnet1"], method="union",
                                                          initial_sort=False))
        out = []
        for levels in per_image:
            boxes = np.concatenate(levels, axis=0) if levels else np.empty((0, 6))
            boxes = smart_nms_from_bboxes(boxes, threshold=p["nms_pnet2"], method="union", initial_sort=True)
            out.append(resize_to_square(boxes))
        return out

    @staticmethod
    def _patches(groups: list[tuple[list[int], object]], boxes: list[np.ndarray], side: int) -> list[np.ndarray | None]:
        """Each image's candidate patches at ``side`` px, cut as the library cuts them (one call per image size)."""
        from mtcnn.utils.images import extract_patches

        out: list[np.ndarray | None] = [None] * len(boxes)
        for ids, stack in groups:
            rows = [(k, i) for k, i in enumerate(ids) if len(boxes[i])]
            if not rows:
                continue
            joined = np.concatenate([np.column_stack([np.full(len(boxes[i]), k, boxes[i].dtype), boxes[i][:, 1:]])
                                     for k, i in rows])
            cut = np.asarray(extract_patches(stack, joined, expected_size=(side, side)))
            start = 0
            for _, i in rows:
                out[i] = cut[start:start + len(boxes[i])]
                start += len(boxes[i])
        return out

    @staticmethod
    def _run(net, patches: list[np.ndarray | None]) -> list[tuple | None]:
        """``net`` once over the patches of every image; its outputs split back per image."""
        present = [p for p in patches if p is not None]
        if not present:
            return [None] * len(patches)
        outs = [np.asarray(o) for o in net(np.concatenate(present))]
        split, start = [], 0
        for p in patches:
            if p is None:
                split.append(None)
                continue
            split.append(tuple(o[start:start + len(p)].view(_Outputs) for o in outs))
            start += len(p)
        return split

    def _refine(self, groups, boxes: list[np.ndarray]) -> list[np.ndarray]:
        """R-Net: ``StageRNet.__call__`` per image, the network once for all."""
        from mtcnn.utils.bboxes import (
            adjust_bboxes,
            pick_matches,
            replace_confidence,
            resize_to_square,
            smart_nms_from_bboxes,
        )

        p = self.p
        out = []
        for b, res in zip(boxes, self._run(self.rnet, self._patches(groups, boxes, 24)), strict=True):
            if res is None:
                out.append(np.empty((0, 6)))
                continue
            offsets, scores = res
            b = adjust_bboxes(replace_confidence(b, scores), offsets)
            b = smart_nms_from_bboxes(pick_matches(b, score_threshold=p["threshold_rnet"]), threshold=p["nms_rnet"],
                                      method="union", initial_sort=True)
            out.append(resize_to_square(b))
        return out

    def _output(self, groups, boxes: list[np.ndarray]) -> list[np.ndarray]:
        """O-Net: ``StageONet.__call__`` per image (boxes and five landmarks), the network once for all."""
        from mtcnn.utils.bboxes import adjust_bboxes, pick_matches, replace_confidence, smart_nms_from_bboxes
        from mtcnn.utils.landmarks import adjust_landmarks

        p = self.p
        out = []
        for b, res in zip(boxes, self._run(self.onet, self._patches(groups, boxes, 48)), strict=True):
            if res is None:
                out.append(np.empty((0, 16)))
                continue
            offsets, landmarks, scores = res
            landmarks = adjust_landmarks(landmarks, b)
            b = adjust_bboxes(replace_confidence(b, scores), offsets)
            b = np.concatenate([b, landmarks], axis=-1)
            b = pick_matches(b, scores_column=5, score_threshold=p["threshold_onet"])
            out.append(smart_nms_from_bboxes(b, threshold=p["nms_onet"], method="min", initial_sort=True))
        return out

    # -- the call

    def __call__(self, images: list[np.ndarray]) -> list[list[dict]]:
        """``detect_faces(image)``'s JSON answer for each of ``images`` (uint8 RGB, any sizes)."""
        import tensorflow as tf
        from mtcnn.utils.bboxes import limit_bboxes, to_json

        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, im in enumerate(images):
            by_shape.setdefault(tuple(im.shape), []).append(i)
        boxes: list[np.ndarray] = [np.empty((0, 6))] * len(images)
        groups = []
        for ids in by_shape.values():
            # detect_faces normalises to (x - 127.5) / 128 in float64 and P-Net casts to float32;
            # in float32 directly the values are the same (odd multiples of 1/256: exact in both).
            stack = (np.stack([images[i] for i in ids]).astype(np.float32) - np.float32(127.5)) / np.float32(128)
            for i, b in zip(ids, self._proposals(stack), strict=True):
                boxes[i] = b
            # one tensor for R-Net's and O-Net's crop_and_resize, which reads pixels as float32 anyway
            groups.append((ids, tf.constant(stack)))
        boxes = self._output(groups, self._refine(groups, boxes))
        # detect_faces' post-processing: no padding to undo (a batch of one), boxes clipped to the image
        return [to_json(limit_bboxes(b, images_shapes=np.asarray([im.shape]), limit_landmarks=False),
                        images_count=1, output_as_width_height=True, input_as_width_height=False)[0] if len(b) else []
                for b, im in zip(boxes, images, strict=True)]
