"""Grad-CAM and Grad-CAM++ for a one-logit classifier, fused with the prediction.

The idea (Selvaraju et al., 2017): weight each channel of the last convolutional feature map by
how much the score rises when that channel rises (the spatially averaged gradient), sum, and
keep the positive part.  Grad-CAM++ (Chattopadhay et al., 2018) replaces the plain average by
per-location weights from higher-order terms, which separates several instances better.

The score we explain is the *decision*: the fake logit for faces called fake, minus the logit
for faces called real, so a heatmap always shows what drove the label the user sees.

Two back ends give the same maps (a test pins them together):

* ``fused`` (default, fast): the classifier's forward pass yields the probabilities, the CAM
  layer's features, the logit and the gradient of the logit with respect to the features; both
  CAMs are computed from those in NumPy -- no work repeated between the label and the heatmap.
  The forward pass is any callable with that contract (``detector.inference.forward``: a compiled
  ``tf.function`` over the Keras model, or its TF Lite copy, 3-5x faster on a CPU);
* ``tf-keras-vis``: the reference implementation (``Gradcam``/``GradcamPlusPlus`` with
  ``ReplaceToLinear`` and ``clone=True``), for anyone who wants the library's own numbers.

Arrays in, maps out: this package imports nothing from ``detector``.  It knows a model only as a
``forward(crops)`` callable, and -- for ``tf-keras-vis`` -- as "a Keras model with a layer named
``cam_layer`` and an output that is a sigmoid of a layer named ``logit``".  TensorFlow is imported
only by that reference back end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import BACKENDS, METHODS

EPS = 1e-7  # keras.backend.epsilon(), as tf-keras-vis uses for normalising

# crops (N, s, s, 3) float32 -> [features (N, h, w, c), logit (N,), probability (N,), d logit / d features]
Forward = Callable[[np.ndarray], list]


@dataclass
class Explained:
    """Probabilities and per-crop CAMs (each min-max normalised to [0, 1], CAM resolution)."""

    p_fake: np.ndarray  # (N,)
    cams: dict[str, np.ndarray]  # method -> (N, h, w)


def _normalise(cam: np.ndarray) -> np.ndarray:
    lo = cam.min(axis=(1, 2), keepdims=True)
    hi = cam.max(axis=(1, 2), keepdims=True)
    return (cam - lo) / (hi - lo + EPS)


def gradcam_from(features: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """Grad-CAM: channel weights = mean gradient over space."""
    weights = grads.mean(axis=(1, 2), keepdims=True)
    return np.maximum((weights * features).sum(axis=-1), 0.0)


def gradcam_plus_plus_from(features: np.ndarray, grads: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Grad-CAM++ with the exponential score, term for term as tf-keras-vis 0.8.7 computes it."""
    with np.errstate(over="ignore"):  # a huge score overflows exp to inf exactly as in TF
        s = np.exp(score.astype(np.float32)).reshape(-1, 1, 1, 1)
    first = s * grads
    second = first * grads
    third = second * grads
    global_sum = features.sum(axis=(1, 2), keepdims=True)
    denom = second * 2.0 + third * global_sum
    denom = denom + (second == 0.0)
    alphas = second / denom
    norm = alphas.sum(axis=(1, 2), keepdims=True)
    alphas = alphas / (norm + (norm == 0.0))
    weights = (np.maximum(first, 0.0) * alphas).sum(axis=(1, 2), keepdims=True)
    return np.maximum((weights * features).sum(axis=-1), 0.0)


def cams_from(features: np.ndarray, logit_grads: np.ndarray, logit: np.ndarray, prob: np.ndarray,
              threshold: float) -> dict[str, np.ndarray]:
    """Both normalised maps for the decision at ``threshold`` (score = +logit if fake, -logit if real)."""
    sign = np.where(prob >= threshold, 1.0, -1.0).astype(np.float32)
    grads = logit_grads * sign.reshape(-1, 1, 1, 1)
    score = sign * logit
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"gradcam": _normalise(gradcam_from(features, grads)).astype(np.float32),
                "gradcam++": _normalise(gradcam_plus_plus_from(features, grads, score)).astype(np.float32)}


class CamExplainer:
    """Fused prediction + Grad-CAM/Grad-CAM++ (see module docstring).

    ``forward`` is the classifier's forward pass; the ``tf-keras-vis`` back end also needs the
    Keras ``model`` and its ``cam_layer``.
    """

    def __init__(self, forward: Forward, backend: str = "fused", model=None, cam_layer: str | None = None):
        if backend not in BACKENDS:
            raise ValueError(f"unknown CAM back end {backend!r}; choose one of {BACKENDS}")
        if backend == "tf-keras-vis" and (model is None or cam_layer is None):
            raise ValueError("the tf-keras-vis back end needs the Keras model and its cam_layer")
        self.backend = backend
        self.forward = forward
        self._tfkv: TfKerasVisCams | None = TfKerasVisCams(model, cam_layer) if backend == "tf-keras-vis" else None

    def explain(self, crops: np.ndarray, threshold: float = 0.5) -> Explained:
        """Probabilities and both CAMs for a batch of crops (one forward pass with ``fused``)."""
        if len(crops) == 0:
            empty = np.zeros((0, 1, 1), np.float32)
            return Explained(np.zeros((0,), np.float32), {m: empty for m in METHODS})
        crops = np.asarray(crops, np.float32)
        if self._tfkv is not None:
            prob = np.asarray(self.forward(crops)[2])
            signs = np.where(prob >= threshold, 1.0, -1.0)
            return Explained(prob, {m: self._tfkv(crops, signs, m) for m in METHODS})
        features, logit, prob, grads = (np.asarray(a) for a in self.forward(crops))
        return Explained(prob, cams_from(features, grads, logit, prob, float(threshold)))


class TfKerasVisCams:
    """Grad-CAM / Grad-CAM++ through tf-keras-vis, the reference implementation.

    ``ReplaceToLinear`` turns the sigmoid output into the logit and ``clone=True`` keeps the served
    model untouched; the visualisers are built once because cloning costs more than a map.
    """

    def __init__(self, model, cam_layer: str):
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
        from tf_keras_vis.utils.model_modifiers import ReplaceToLinear

        self.cam_layer = cam_layer
        self._vis = {"gradcam": Gradcam(model, model_modifier=ReplaceToLinear(), clone=True),
                     "gradcam++": GradcamPlusPlus(model, model_modifier=ReplaceToLinear(), clone=True)}

    def __call__(self, crops: np.ndarray, signs: np.ndarray, method: str = "gradcam++") -> np.ndarray:
        import tensorflow as tf

        signs_t = tf.constant(np.asarray(signs, np.float32))

        def score(output):
            return tf.reshape(output, [-1]) * signs_t

        # seek_penultimate_conv_layer=False: our CAM layer is the ReLU after the last convolution,
        # and tf-keras-vis would otherwise step back to the convolution before it.
        cam = self._vis[method](score, np.asarray(crops, np.float32), penultimate_layer=self.cam_layer,
                                seek_penultimate_conv_layer=False, expand_cam=False, normalize_cam=True)
        return np.asarray(cam).reshape(len(crops), *np.asarray(cam).shape[-2:])


def tfkv_cams(model, cam_layer: str, crops: np.ndarray, signs: np.ndarray,
              method: str = "gradcam++") -> np.ndarray:
    """One-off tf-keras-vis maps (N, h, w), normalised; see :class:`TfKerasVisCams`."""
    return TfKerasVisCams(model, cam_layer)(crops, signs, method)
