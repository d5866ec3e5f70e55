"""Grad-CAM and Grad-CAM++ for a one-logit classifier, fused with the prediction.

The idea (Selvaraju et al., 2017): weight each channel of the last convolutional feature map by
how much the score rises when that channel rises (the spatially averaged gradient), sum, and
keep the positive part.  Grad-CAM++ (Chattopadhay et al., 2018) replaces the plain average by
per-location weights from higher-order terms, which separates several instances better.

The score we explain is the *decision*: the fake logit for faces called fake, minus the logit
for faces called real, so a heatmap always shows what drove the label the user sees.

Two back ends give the same maps (a test pins them together):

* ``fused`` (default, fast): one forward pass yields the probabilities, the CAM layer's features,
  the logit and the gradient of the logit with respect to the features; both CAMs are computed from
  those in NumPy -- no work repeated between the label and the heatmap.  The forward pass is
  :func:`forward_function` (one compiled ``tf.function`` with a fixed input signature) or anything
  that computes the same four arrays faster -- the project passes the TF Lite copy of that very
  function (3-5x faster on a CPU);
* ``tf-keras-vis``: the reference implementation (``Gradcam``/``GradcamPlusPlus`` with
  ``ReplaceToLinear`` and ``clone=True``), for anyone who wants the library's own numbers.

This module knows a model only as "a Keras model with a layer named ``cam_layer`` and an output
that is a sigmoid of a layer named ``logit``", or as a ``forward(crops)`` callable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

METHODS = ("gradcam++", "gradcam")
BACKENDS = ("fused", "tf-keras-vis")
EPS = 1e-7  # keras.backend.epsilon(), as tf-keras-vis uses for normalising

# crops (N, s, s, 3) float32 -> [features (N, h, w, c), logit (N,), probability (N,), d logit / d features]
Forward = Callable[[np.ndarray], list]


@dataclass
class Explained:
    """Probabilities and per-crop CAMs (each min-max normalised to [0, 1], CAM resolution)."""

    p_fake: np.ndarray  # (N,)
    cams: dict[str, np.ndarray]  # method -> (N, h, w)


def forward_function(model: keras.Model, cam_layer: str):
    """``tf.function`` crops -> [features, logit, probability, d logit / d features], any batch size.

    Each crop's logit depends on its own features only, so the gradient of the *sum* of the logits
    is every crop's own gradient; unlike the gradient of ``sign * logit`` it also converts to TF
    Lite's built-in operations (no ``BroadcastGradientArgs``), so the TF Lite copy carries it too.
    """
    size = int(model.input_shape[1])
    graph = keras.Model(model.inputs, [model.get_layer(cam_layer).output, model.get_layer("logit").output,
                                       model.output])

    def forward(x):
        with tf.GradientTape() as tape:
            features, logit, prob = graph(x, training=False)
            tape.watch(features)
            total = tf.reduce_sum(logit)
        return features, tf.reshape(logit, [-1]), tf.reshape(prob, [-1]), tape.gradient(total, features)

    # autograph=False: no Python control flow on tensors here, and skipping AutoGraph's source
    # conversion of every Keras layer makes tracing (part of the cold start) ~40 % faster.
    return tf.function(forward, autograph=False, reduce_retracing=True,
                       input_signature=[tf.TensorSpec((None, size, size, 3), tf.float32)])


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

    Give a Keras ``model`` and its ``cam_layer`` (the forward pass then runs in TensorFlow), or a
    ``forward`` callable and ``input_size`` (the model is then only needed by ``tf-keras-vis``).
    """

    def __init__(self, model: keras.Model | None = None, cam_layer: str | None = None, backend: str = "fused",
                 forward: Forward | None = None, input_size: int | None = None):
        if backend not in BACKENDS:
            raise ValueError(f"unknown CAM back end {backend!r}; choose one of {BACKENDS}")
        if model is None and (forward is None or backend != "fused"):
            raise ValueError("CamExplainer needs a Keras model unless it gets a forward pass and backend 'fused'")
        self.backend = backend
        self.cam_layer = cam_layer
        self._tfkv: TfKerasVisCams | None = TfKerasVisCams(model, cam_layer) if backend == "tf-keras-vis" else None
        if forward is None:
            graph = forward_function(model, cam_layer)

            def forward(crops: np.ndarray) -> list:
                return [t.numpy() for t in graph(tf.convert_to_tensor(crops, tf.float32))]

        self.forward = forward
        self.input_size = int(input_size or model.input_shape[1])

    def warmup(self, batch_sizes: tuple[int, ...] = (1,)) -> None:
        """Trace/run once so the first user does not pay for compilation."""
        for n in batch_sizes:
            self.explain(np.zeros((n, self.input_size, self.input_size, 3), np.float32))

    def predict(self, crops: np.ndarray, batch: int = 64) -> np.ndarray:
        """Probabilities only, in batches of ``batch``: the path for batch scans."""
        if len(crops) == 0:
            return np.zeros((0,), np.float32)
        return np.concatenate([np.asarray(self.forward(np.asarray(crops[s:s + batch], np.float32))[2])
                               for s in range(0, len(crops), batch)])

    def explain(self, crops: np.ndarray, threshold: float = 0.5) -> Explained:
        """Probabilities and both CAMs for a batch of crops (one forward pass with ``fused``)."""
        if len(crops) == 0:
            empty = np.zeros((0, 1, 1), np.float32)
            return Explained(np.zeros((0,), np.float32), {m: empty for m in METHODS})
        crops = np.asarray(crops, np.float32)
        if self._tfkv is not None:
            prob = self.predict(crops)
            signs = np.where(prob >= threshold, 1.0, -1.0)
            return Explained(prob, {m: self._tfkv(crops, signs, m) for m in METHODS})
        features, logit, prob, grads = (np.asarray(a) for a in self.forward(crops))
        return Explained(prob, cams_from(features, grads, logit, prob, float(threshold)))


class TfKerasVisCams:
    """Grad-CAM / Grad-CAM++ through tf-keras-vis, the reference implementation.

    ``ReplaceToLinear`` turns the sigmoid output into the logit and ``clone=True`` keeps the served
    model untouched; the visualisers are built once because cloning costs more than a map.
    """

    def __init__(self, model: keras.Model, cam_layer: str):
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
        from tf_keras_vis.utils.model_modifiers import ReplaceToLinear

        self.cam_layer = cam_layer
        self._vis = {"gradcam": Gradcam(model, model_modifier=ReplaceToLinear(), clone=True),
                     "gradcam++": GradcamPlusPlus(model, model_modifier=ReplaceToLinear(), clone=True)}

    def __call__(self, crops: np.ndarray, signs: np.ndarray, method: str = "gradcam++") -> np.ndarray:
        signs_t = tf.constant(np.asarray(signs, np.float32))

        def score(output):
            return tf.reshape(output, [-1]) * signs_t

        # seek_penultimate_conv_layer=False: our CAM layer is the ReLU after the last convolution,
        # and tf-keras-vis would otherwise step back to the convolution before it.
        cam = self._vis[method](score, np.asarray(crops, np.float32), penultimate_layer=self.cam_layer,
                                seek_penultimate_conv_layer=False, expand_cam=False, normalize_cam=True)
        return np.asarray(cam).reshape(len(crops), *np.asarray(cam).shape[-2:])


def tfkv_cams(model: keras.Model, cam_layer: str, crops: np.ndarray, signs: np.ndarray,
              method: str = "gradcam++") -> np.ndarray:
    """One-off tf-keras-vis maps (N, h, w), normalised; see :class:`TfKerasVisCams`."""
    return TfKerasVisCams(model, cam_layer)(crops, signs, method)
