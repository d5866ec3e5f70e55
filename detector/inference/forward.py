"""The classifier's forward pass: crops in, the four arrays every answer is computed from out.

One pass yields, per crop, the Grad-CAM layer's features, the logit, the probability and the
gradient of the logit with respect to those features -- so the label and both heatmaps
(``explain.gradcam``) cost one call, and the plain "P(fake) only" path of a batch scan is the
same call with the other three arrays dropped.

Two runtimes compute it, with the same numbers to 1e-5 (``tests/test_lite.py``):

* :func:`forward_function`: one compiled ``tf.function`` over the Keras model;
* the TF Lite conversion of that very function (``model.tflite`` in the model folder, run by
  :class:`detector.inference.lite.LiteRunner`), 3-5x faster on a CPU.

Both are a :data:`Forward`: ``crops (N, s, s, 3) float32 -> [features, logit, probability, gradient]``.
:class:`Classifier` wraps one for whoever only wants probabilities.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from explain.gradcam import Forward  # the contract explain.gradcam computes heatmaps from

__all__ = ["FORWARD_OUTPUTS", "Classifier", "Forward", "forward_function", "keras_forward"]
FORWARD_OUTPUTS = 4  # what a Forward returns: features, logit, probability, gradient


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


def keras_forward(model: keras.Model, cam_layer: str) -> Forward:
    """A :data:`Forward` running :func:`forward_function` in TensorFlow, NumPy in and out."""
    graph = forward_function(model, cam_layer)

    def forward(crops: np.ndarray) -> list:
        return [t.numpy() for t in graph(tf.convert_to_tensor(crops, tf.float32))]

    return forward


class Classifier:
    """The classifier at run time: a :data:`Forward` and the crop size it takes.

    ``Classifier(forward, input_size)`` for any forward pass (the TF Lite copy), or
    :meth:`from_keras` for a Keras model and its Grad-CAM layer (the pass then runs in TensorFlow).
    """

    def __init__(self, forward: Forward, input_size: int):
        self.forward = forward
        self.input_size = int(input_size)

    @classmethod
    def from_keras(cls, model: keras.Model, cam_layer: str) -> Classifier:
        return cls(keras_forward(model, cam_layer), int(model.input_shape[1]))

    def predict(self, crops: np.ndarray, batch: int = 64) -> np.ndarray:
        """Probabilities only, in batches of ``batch``: the path for batch scans."""
        if len(crops) == 0:
            return np.zeros((0,), np.float32)
        return np.concatenate([np.asarray(self.forward(np.asarray(crops[s:s + batch], np.float32))[2])
                               for s in range(0, len(crops), batch)])
