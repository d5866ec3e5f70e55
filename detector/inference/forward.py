"""The classifier's forward pass: model inputs in, every array an answer is computed from out.

One pass yields, per face, the logit, the probability, and for each layer of the model's
:class:`~explain.gradcam.MapLayout` its features and the gradient of the logit with respect to
them -- so the label and every heatmap (``explain.gradcam``) cost one call.  The plain "P(fake)
only" path of a batch scan (:meth:`Classifier.predict`) is, in TensorFlow, :func:`predict_function`
(no gradients); on TF Lite it is the same one call with the rest dropped: the gradients are
constants broadcast over the features (:func:`head_gradients`), and a predict-only conversion
measured 2-3 % faster on the classifier alone for model 2.0.0 and is not shipped
(``python -m bench.scale``, ``predict_only``; README, "Command line (batch)").

Two runtimes compute it, with the same numbers to 1e-5 (``tests/test_lite.py``):

* :func:`forward_function`: one compiled ``tf.function`` over the Keras model;
* the TF Lite conversion of that very function (``model.tflite`` in the model folder, run by
  :class:`detector.inference.lite.LiteRunner`), 3-5x faster on a CPU.

Both are a :data:`Forward`: ``[image (N, s, s, 3), patches (N, k, p, p, 3)] float32 ->
[logit, probability, features..., gradients...]`` (a model without the artefact branch takes the
image alone).  :class:`Classifier` wraps one with its layout for the pipeline.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from explain.gradcam import Forward, MapLayout  # the contract explain.gradcam computes heatmaps from

__all__ = ["Classifier", "Forward", "forward_function", "head_gradients", "input_names", "keras_forward", "layout_for",
           "lite_forward", "predict_function"]


def input_names(model: keras.Model) -> list[str]:
    return [t.name.split(":")[0] for t in model.inputs]


def layout_for(config) -> MapLayout:
    """The :class:`MapLayout` of a model card (``detector.inference.bundle.ModelConfig``)."""
    layers = tuple(config.map_layers) if config.map_layers else (config.cam_layer,)
    art = config.artefact_layer if config.artefact_layer in layers else None
    semantic = next(name for name in layers if name != art)
    return MapLayout(layers=layers, semantic=semantic, semantic_last=semantic, artefact=art,
                     n_patches=config.n_patches if art else 0)


def lite_forward(runner) -> Forward:
    """A :data:`Forward` over a :class:`~detector.inference.lite.LiteRunner` (inputs as a list)."""

    def forward(inputs: list) -> list:
        return runner(*inputs)

    return forward


def head_gradients(model: keras.Model, layers: list[str]):
    """A function features -> d logit / d features for ``layers`` that feed the logit through global pooling.

    Model 2's head is ``GAP(semantic) ++ GAP(artefact) -> dropout -> Dense "logit"`` (model 1.x:
    ``GAP(features) -> dropout -> Dense``), so the logit's gradient with respect to each map layer is
    the constant ``w_c / (h * w)`` of its slice of the logit kernel -- written out here rather than
    taken from a tape, because TF Lite cannot convert the gradient of a concatenation
    (``ConcatOffset``); ``tests/test_lite.py`` checks it against ``tf.GradientTape``.  The slices
    follow ``layers``' order, which is the head's concatenation order.
    """
    kernel = model.get_layer("logit").kernel
    sizes = [int(model.get_layer(name).output.shape[-1]) for name in layers]
    if sum(sizes) != int(kernel.shape[0]):
        raise ValueError(f"map layers {layers} ({sum(sizes)} channels) do not feed the logit's {kernel.shape[0]} inputs")

    def grads(feats):
        out, start = [], 0
        for f, c in zip(feats, sizes, strict=True):
            w = tf.reshape(kernel[start:start + c, 0], [1, 1, 1, c])
            area = tf.cast(tf.shape(f)[1] * tf.shape(f)[2], tf.float32)
            out.append(tf.ones_like(f) * (w / area))
            start += c
        return out

    return grads


def forward_function(model: keras.Model, layers: tuple[str, ...] | list[str]):
    """``tf.function`` inputs -> [logit, probability, features of ``layers``..., d logit / d features...].

    ``layers`` are the layers that feed the logit through global average pooling, in the head's
    order (:func:`head_gradients`).
    """
    layers = list(layers)
    graph = keras.Model(model.inputs, [model.get_layer(name).output for name in layers]
                        + [model.get_layer("logit").output, model.output])
    specs = [tf.TensorSpec((None, *t.shape[1:]), tf.float32, name=name)
             for t, name in zip(model.inputs, input_names(model), strict=True)]
    grads_of = head_gradients(model, layers)

    def forward(*xs):
        outs = graph(list(xs) if len(xs) > 1 else xs[0], training=False)
        feats, logit, prob = list(outs[:len(layers)]), outs[-2], outs[-1]
        return (tf.reshape(logit, [-1]), tf.reshape(prob, [-1]), *feats, *grads_of(feats))

    # autograph=False: no Python control flow on tensors here, and skipping AutoGraph's source
    # conversion of every Keras layer makes tracing (part of the cold start) ~40 % faster.
    return tf.function(forward, autograph=False, reduce_retracing=True, input_signature=specs)


def predict_function(model: keras.Model):
    """``tf.function`` inputs -> [logit, probability]: the heatmap-free pass (no gradient, ~25 % cheaper)."""
    graph = keras.Model(model.inputs, [model.get_layer("logit").output, model.output])
    specs = [tf.TensorSpec((None, *t.shape[1:]), tf.float32, name=name)
             for t, name in zip(model.inputs, input_names(model), strict=True)]

    def predict(*xs):
        logit, prob = graph(list(xs) if len(xs) > 1 else xs[0], training=False)
        return tf.reshape(logit, [-1]), tf.reshape(prob, [-1])

    return tf.function(predict, autograph=False, reduce_retracing=True, input_signature=specs)


def keras_forward(model: keras.Model, layers) -> Forward:
    """A :data:`Forward` running :func:`forward_function` in TensorFlow, NumPy in and out."""
    graph = forward_function(model, layers)

    def forward(inputs: list) -> list:
        return [t.numpy() for t in graph(*[tf.convert_to_tensor(a, tf.float32) for a in inputs])]

    return forward


class Classifier:
    """The classifier at run time: a :data:`Forward`, its :class:`MapLayout` and its input names.

    ``predict`` (probabilities only) uses ``predict_forward`` when given -- the TF Lite copy's
    gradient-free signature -- and the full pass otherwise.
    """

    def __init__(self, forward: Forward, layout: MapLayout, inputs: list[str], predict_forward=None):
        self.forward, self.layout, self.inputs = forward, layout, list(inputs)
        self._predict = predict_forward

    @classmethod
    def from_keras(cls, model: keras.Model, layout: MapLayout) -> Classifier:
        graph = predict_function(model)

        def predict(inputs: list) -> list:
            return [t.numpy() for t in graph(*[tf.convert_to_tensor(a, tf.float32) for a in inputs])]

        return cls(keras_forward(model, layout.layers), layout, input_names(model), predict)

    def feed(self, views: dict) -> list:
        """The arrays of ``views`` ({"image": ..., "patches": ...}) this model takes, in its order."""
        return [np.asarray(views[name], np.float32) for name in self.inputs]

    def predict(self, views: dict, batch: int = 64) -> np.ndarray:
        """Probabilities only, in batches of ``batch``: the path for batch scans."""
        feed = self.feed(views)
        n = len(feed[0])
        if n == 0:
            return np.zeros((0,), np.float32)
        fn = self._predict or self.forward
        return np.concatenate([np.asarray(fn([a[s:s + batch] for a in feed])[1]) for s in range(0, n, batch)])
