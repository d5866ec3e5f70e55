"""TF Lite for CPU inference: the same networks, XNNPACK kernels, 3-5x faster on a laptop CPU.

TensorFlow's own CPU kernels spend much of a small network's time on dispatch and on layouts
tuned for large batches; TF Lite's XNNPACK kernels do not.  Measured on the 2-core development
machine (``python -m bench.speed``): MTCNN's P-Net on a 192 px pyramid level 2.9 vs 12 ms; the
MobileNetV2@160 classifier 7 vs 35 ms for one crop and 190 vs 50 crops/s in batches of 32.

What runs in TF Lite here is only ever a *conversion* of a Keras model this project also keeps:

* :func:`convert` turns a ``tf.function`` with a full input signature into a flatbuffer;
* :class:`LiteRunner` runs one, re-sizing the input when the batch (or image) size changes, and
  returns the outputs in the order the function returned them.

The classifier's converted function (``detector.inference.forward.forward_function``) returns the
logit's gradient with respect to the Grad-CAM layer as one more output, so its heatmaps need no
TensorFlow at run time either.  Writing a model's copy is ``detector.training.export``.  TF 2.21 marks ``tf.lite.Interpreter`` as deprecated in favour of
the LiteRT package, whose interpreter has the same API; the pinned TensorFlow still ships it.
"""

from __future__ import annotations

import re
import threading
import warnings
from collections import OrderedDict
from typing import Any

import numpy as np


def default_threads() -> int:
    """Threads per interpreter (:func:`detector.config.lite_threads`: ``OMP_NUM_THREADS``, else up to 4 cores)."""
    from ..config import lite_threads

    return lite_threads()


def convert(fn) -> bytes:
    """Flatbuffer of a ``tf.function`` whose ``input_signature`` fixes every input's dtype and rank."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
    return converter.convert()


def _output_position(name: str) -> int:
    """Converted functions name their outputs Identity, Identity_1, ... in return order."""
    match = re.search(r"Identity(?:_(\d+))?$", name)
    if not match:
        raise ValueError(f"unexpected TF Lite output name {name!r}")
    return int(match.group(1) or 0)


class LiteRunner:
    """One TF Lite model; calls are serialised (an interpreter is not re-entrant).

    Re-sizing an interpreter re-plans its memory (~0.2 ms for MTCNN's P-Net, whose input size changes
    on every pyramid level), so up to ``shapes`` interpreters are kept, one per input shape, least
    recently used dropped first.  Each holds its own copy of the packed weights: keep ``shapes`` at 1
    for large models.
    """

    def __init__(self, content: bytes, threads: int | None = None, shapes: int = 1, inputs: list[str] | None = None):
        """``inputs``: the input names in the order calls pass them (default: the flatbuffer's own order)."""
        self._content = content
        self._threads = threads or default_threads()
        self._max = max(1, shapes)
        self._cache: OrderedDict[tuple, Any] = OrderedDict()
        probe = self._new()
        details = probe.get_input_details()
        if inputs is not None:
            by_name = {d["name"]: d for d in details}
            missing = [n for n in inputs if n not in by_name]
            if missing or len(inputs) != len(details):
                raise ValueError(f"TF Lite inputs are {sorted(by_name)}, not {inputs}")
            details = [by_name[n] for n in inputs]
        self._inputs = [d["index"] for d in details]
        self.input_names = [d["name"] for d in details]
        self.input_shapes = [tuple(int(v) for v in d["shape_signature"]) for d in details]
        outputs = sorted(probe.get_output_details(), key=lambda d: _output_position(d["name"]))
        self._outputs = [d["index"] for d in outputs]
        self.output_ranks = [len(d["shape_signature"]) for d in outputs]
        self.input_shape = self.input_shapes[0]
        self.n_outputs = len(self._outputs)
        self._spare: Any | None = probe
        self._lock = threading.Lock()

    def _new(self):
        import tensorflow as tf

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the deprecation notice, see the module docstring
            return tf.lite.Interpreter(model_content=self._content, num_threads=self._threads)

    def _interpreter(self, shapes: tuple):
        interp = self._cache.get(shapes)
        if interp is not None:
            self._cache.move_to_end(shapes)
            return interp
        if len(self._cache) >= self._max:
            _, interp = self._cache.popitem(last=False)  # re-use the oldest one's interpreter
        elif self._spare is not None:
            interp, self._spare = self._spare, None
        else:
            interp = self._new()
        for index, shape in zip(self._inputs, shapes, strict=True):
            interp.resize_tensor_input(index, shape)
        interp.allocate_tensors()
        self._cache[shapes] = interp
        return interp

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        if len(arrays) != len(self._inputs):
            raise ValueError(f"expected {len(self._inputs)} inputs, got {len(arrays)}")
        data = [np.ascontiguousarray(a, np.float32) for a in arrays]
        with self._lock:
            interp = self._interpreter(tuple(a.shape for a in data))
            for index, a in zip(self._inputs, data, strict=True):
                interp.set_tensor(index, a)
            interp.invoke()
            return [interp.get_tensor(i) for i in self._outputs]  # get_tensor copies
