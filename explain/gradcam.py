"""Grad-CAM and Grad-CAM++ for a one-logit classifier, fused with the prediction.

The idea (Selvaraju et al., 2017): weight each channel of the last convolutional feature map by
how much the score rises when that channel rises (the spatially averaged gradient), sum, and
keep the positive part.  Grad-CAM++ (Chattopadhay et al., 2018) replaces the plain average by
per-location weights from higher-order terms, which separates several instances better.

The score we explain is the *decision*: the fake logit for faces called fake, minus the logit
for faces called real, so a heatmap always shows what drove the label the user sees.

Two back ends give the same maps (a test pins them together):

* ``fused`` (default, fast): the forward pass runs once and yields the probabilities, the CAM
  layer's features and the logit; both CAMs come from those -- no work repeated between the label
  and the heatmap.  Either all of it is one compiled ``tf.function`` with a fixed input signature,
  or, when a ``forward`` callable is given (the TF Lite copy of the network, 3-5x faster on a CPU),
  the forward pass runs there and only the small head after the CAM layer is differentiated in
  TensorFlow -- the gradient of the score with respect to the features needs nothing else;
* ``tf-keras-vis``: the reference implementation (``Gradcam``/``GradcamPlusPlus`` with
  ``ReplaceToLinear`` and ``clone=True``), for anyone who wants the library's own numbers.

This module knows a model only as "a Keras model with a layer named ``cam_layer`` and an output
that is a sigmoid of a layer named ``logit``", and optionally a ``forward(crops) -> [features,
logit, probability]`` callable that computes the same thing faster.
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


@dataclass
class Explained:
    """Probabilities and per-crop CAMs (each min-max normalised to [0, 1], CAM resolution)."""

    p_fake: np.ndarray  # (N,)
    cams: dict[str, np.ndarray]  # method -> (N, h, w)


def _normalise(cam: tf.Tensor) -> tf.Tensor:
    lo = tf.reduce_min(cam, axis=[1, 2], keepdims=True)
    hi = tf.reduce_max(cam, axis=[1, 2], keepdims=True)
    return (cam - lo) / (hi - lo + EPS)


def gradcam_from(features: tf.Tensor, grads: tf.Tensor) -> tf.Tensor:
    """Grad-CAM: channel weights = mean gradient over space."""
    weights = tf.reduce_mean(grads, axis=[1, 2], keepdims=True)
    return tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))


def gradcam_plus_plus_from(features: tf.Tensor, grads: tf.Tensor, score: tf.Tensor) -> tf.Tensor:
    """Grad-CAM++ with the exponential score, term for term as tf-keras-vis 0.8.7 computes it."""
    s = tf.reshape(tf.exp(score), (-1, 1, 1, 1))
    first = s * grads
    second = first * grads
    third = second * grads
    global_sum = tf.reduce_sum(features, axis=[1, 2], keepdims=True)
    denom = second * 2.0 + third * global_sum
    denom = denom + tf.cast(tf.equal(second, 0.0), denom.dtype)
    alphas = second / denom
    norm = tf.reduce_sum(alphas, axis=[1, 2], keepdims=True)
    alphas = alphas / (norm + tf.cast(tf.equal(norm, 0.0), norm.dtype))
    weights = tf.reduce_sum(tf.nn.relu(first) * alphas, axis=[1, 2], keepdims=True)
    return tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))


def cams_from(features: tf.Tensor, grads: tf.Tensor, score: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Both normalised maps: (Grad-CAM, Grad-CAM++)."""
    return _normalise(gradcam_from(features, grads)), _normalise(gradcam_plus_plus_from(features, grads, score))


Forward = Callable[[np.ndarray], list]  # crops (N, s, s, 3) float32 -> [features, logit (N,), probability (N,)]


class CamExplainer:
    """Fused prediction + Grad-CAM/Grad-CAM++ for a Keras model (see module docstring)."""

    def __init__(self, model: keras.Model, cam_layer: str, backend: str = "fused", forward: Forward | None = None):
        if backend not in BACKENDS:
            raise ValueError(f"unknown CAM back end {backend!r}; choose one of {BACKENDS}")
        self.model = model
        self.cam_layer = cam_layer
        self.backend = backend
        self._tfkv: TfKerasVisCams | None = TfKerasVisCams(model, cam_layer) if backend == "tf-keras-vis" else None
        self.input_size = int(model.input_shape[1])
        self._graph = keras.Model(model.inputs, [model.get_layer(cam_layer).output,
                                                 model.get_layer("logit").output, model.output])
        # The sigmoid output layer may carry a folded temperature; we read the logit directly.
        spec = [tf.TensorSpec((None, self.input_size, self.input_size, 3), tf.float32),
                tf.TensorSpec((), tf.float32)]
        # autograph=False: the graph has no Python control flow on tensors, and skipping AutoGraph's
        # source conversion of every Keras layer cuts tracing from ~3.4 s to ~2.0 s (cold start).
        self._fused = tf.function(self._explain_graph, input_signature=spec, reduce_retracing=True,
                                  autograph=False)
        self._predict = tf.function(lambda x: tf.reshape(self.model(x, training=False), [-1]),
                                    input_signature=spec[:1], reduce_retracing=True, autograph=False)
        self.forward = forward
        if forward is not None:
            features = model.get_layer(cam_layer).output
            self._head = keras.Model(features, model.get_layer("logit").output)
            head_spec = [tf.TensorSpec((None, *features.shape[1:]), tf.float32),
                         tf.TensorSpec((None,), tf.float32), tf.TensorSpec((), tf.float32)]
            self._head_cams = tf.function(self._cams_from_features, input_signature=head_spec,
                                          reduce_retracing=True, autograph=False)

    def _explain_graph(self, x: tf.Tensor, threshold: tf.Tensor):
        with tf.GradientTape() as tape:
            features, logit, prob = self._graph(x, training=False)
            tape.watch(features)
            logit = tf.reshape(logit, [-1])
            prob = tf.reshape(prob, [-1])
            # +logit explains a "fake" verdict, -logit a "real" one.
            sign = tf.stop_gradient(tf.where(prob >= threshold, 1.0, -1.0))
            score = sign * logit
        grads = tape.gradient(score, features)
        return (prob, *cams_from(features, grads, score))

    def _cams_from_features(self, features: tf.Tensor, prob: tf.Tensor, threshold: tf.Tensor):
        """The CAMs from a forward pass made elsewhere: only the head is differentiated."""
        with tf.GradientTape() as tape:
            tape.watch(features)
            logit = tf.reshape(self._head(features, training=False), [-1])
            score = tf.where(prob >= threshold, 1.0, -1.0) * logit
        return cams_from(features, tape.gradient(score, features), score)

    def warmup(self, batch_sizes: tuple[int, ...] = (1,), predict: bool = True) -> None:
        """Trace and run once so the first user does not pay for compilation.

        ``predict=False`` traces only the fused label+heatmap graph (what the apps answer with);
        the heatmap-free path used by scans is then traced by :meth:`warmup_predict` or on first use.
        """
        for n in batch_sizes:
            if self.forward is not None:
                self.explain(np.zeros((n, self.input_size, self.input_size, 3), np.float32))
            else:
                self._fused(tf.zeros((n, self.input_size, self.input_size, 3), tf.float32), tf.constant(0.5))
        if predict:
            self.warmup_predict(batch_sizes)

    def warmup_predict(self, batch_sizes: tuple[int, ...] = (1,)) -> None:
        """Trace the probabilities-only graph (safe to run in a background thread)."""
        for n in batch_sizes:
            self.predict(np.zeros((n, self.input_size, self.input_size, 3), np.float32))

    def predict(self, crops: np.ndarray, batch: int = 64) -> np.ndarray:
        """Probabilities only (no gradients): the fast path for batch scans."""
        if len(crops) == 0:
            return np.zeros((0,), np.float32)
        chunks = [np.asarray(crops[s:s + batch], np.float32) for s in range(0, len(crops), batch)]
        if self.forward is not None:
            return np.concatenate([self.forward(c)[2] for c in chunks])
        return np.concatenate([self._predict(tf.convert_to_tensor(c)).numpy() for c in chunks])

    def explain(self, crops: np.ndarray, threshold: float = 0.5) -> Explained:
        """Probabilities and both CAMs for a batch of crops (one compiled pass with ``fused``)."""
        if len(crops) == 0:
            empty = np.zeros((0, 1, 1), np.float32)
            return Explained(np.zeros((0,), np.float32), {m: empty for m in METHODS})
        if self._tfkv is not None:
            prob = self.predict(crops)
            signs = np.where(prob >= threshold, 1.0, -1.0)
            return Explained(prob, {m: self._tfkv(crops, signs, m) for m in METHODS})
        if self.forward is not None:
            features, _, prob = self.forward(np.asarray(crops, np.float32))
            cam, campp = self._head_cams(tf.convert_to_tensor(features), tf.convert_to_tensor(prob),
                                         tf.constant(float(threshold)))
            return Explained(np.asarray(prob), {"gradcam": cam.numpy(), "gradcam++": campp.numpy()})
        prob, cam, campp = self._fused(tf.convert_to_tensor(np.asarray(crops, np.float32)),
                                       tf.constant(float(threshold)))
        return Explained(prob.numpy(), {"gradcam": cam.numpy(), "gradcam++": campp.numpy()})


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
