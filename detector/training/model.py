"""The classifier's architectures: build one untrained, fold a temperature into it.

One Functional Keras model maps a batch of 0..255 RGB face crops to one sigmoid "fake"
probability.  The ImageNet normalisation lives inside the model, the head is
``GAP -> Dropout -> Dense(1, name="logit") -> sigmoid``, and the backbone is built flat (no
nested models) so Grad-CAM tools can reach its last convolution by name.  Saving the trained
model is :mod:`detector.training.export`; loading it is :mod:`detector.inference.bundle`.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from . import backbone as bb


def _head(features, dropout: float, name: str) -> keras.Model:
    x = keras.layers.GlobalAveragePooling2D(name="gap")(features)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    logit = keras.layers.Dense(1, name="logit")(x)
    out = keras.layers.Activation("sigmoid", name="p_fake")(logit)
    return out


ARCHITECTURES = ("dual", "mobilenetv2", "small_cnn", "efficientnetv2b0", "dual_small")


def _small_cnn(inputs, widths: tuple[int, ...]):
    """Blocks of two 3x3 conv-BN-ReLU, max-pooled between blocks; the last block is the CAM layer."""
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="scale")(inputs)
    for i, filters in enumerate(widths):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"block{i}_conv1")(x)
        x = keras.layers.BatchNormalization(name=f"block{i}_bn1")(x)
        x = keras.layers.ReLU(name=f"block{i}_relu1")(x)
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"block{i}_conv2")(x)
        x = keras.layers.BatchNormalization(name=f"block{i}_bn2")(x)
        x = keras.layers.ReLU(name=f"block{i}_relu2")(x)
        if i < len(widths) - 1:
            x = keras.layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
    return x


def build_model(architecture: str = "dual", input_size: int = 160, pretrained: bool = True,
                dropout: float = 0.2, weights_path: str | Path | None = None, patch: int = 64,
                n_patches: int = 4) -> tuple[keras.Model, str]:
    """Build an untrained classifier; returns ``(model, cam_layer_name)``.

    ``architecture``: ``dual`` (model 2: the ImageNet MobileNetV2 on the 160 px view *and* the
    native-resolution artefact branch of :mod:`detector.training.artefact` on ``n_patches`` patches
    of ``patch`` px, pooled, concatenated and read by one logit), ``mobilenetv2`` (model 1.x: the
    semantic branch alone; ImageNet weights from the offline package when ``pretrained``),
    ``small_cnn`` (a 4-block CNN trained from scratch), or ``efficientnetv2b0`` (the seed
    project's architecture, ``weights=None``; benchmarks only).
    """
    inputs = keras.Input((input_size, input_size, 3), name="image")
    if architecture in ("dual", "dual_small"):
        from . import artefact

        if architecture == "dual":
            x = keras.layers.Normalization(mean=bb.IMAGENET_MEAN, variance=[s * s for s in bb.IMAGENET_STD],
                                           name="imagenet_norm")(inputs)
            semantic, cam_layer = bb.mobilenet_v2_features(x), bb.LAST_CONV_LAYER
        else:  # a tiny semantic branch, for tests of the two-branch plumbing
            semantic, cam_layer = _small_cnn(inputs, (8, 16)), "block1_relu2"
        patches = keras.Input((n_patches, patch, patch, 3), name="patches")
        art = artefact.artefact_features(patches, n_patches, patch)
        pooled = keras.layers.Concatenate(name="fused")([keras.layers.GlobalAveragePooling2D(name="gap")(semantic),
                                                         keras.layers.GlobalAveragePooling2D(name="art_gap")(art)])
        h = keras.layers.Dropout(dropout, name="dropout")(pooled)
        logit = keras.layers.Dense(1, name="logit")(h)
        out = keras.layers.Activation("sigmoid", name="p_fake")(logit)
        model = keras.Model([inputs, patches], out, name=f"fdet_{architecture}")
        artefact.init_branch(model)
        if architecture == "dual" and pretrained:
            bb.load_torch_imagenet_weights(model, weights_path)
        return model, cam_layer
    if architecture == "mobilenetv2":
        x = keras.layers.Normalization(mean=bb.IMAGENET_MEAN, variance=[s * s for s in bb.IMAGENET_STD],
                                       name="imagenet_norm")(inputs)
        features = bb.mobilenet_v2_features(x)
        cam_layer = bb.LAST_CONV_LAYER
    elif architecture == "small_cnn":
        features = _small_cnn(inputs, (32, 64, 128, 256))
        cam_layer = "block3_relu2"
    elif architecture == "efficientnetv2b0":
        base = keras.applications.EfficientNetV2B0(include_top=False, weights=None, input_tensor=inputs)
        features = base.output
        cam_layer = "top_activation"
    else:
        raise ValueError(f"unknown architecture {architecture!r}")
    model = keras.Model(inputs, _head(features, dropout, architecture), name=f"fdet_{architecture}")
    if architecture == "mobilenetv2" and pretrained:
        bb.load_torch_imagenet_weights(model, weights_path)
    return model, cam_layer


def fold_temperature(model: keras.Model, temperature: float) -> None:
    """Divide the ``logit`` layer by ``temperature`` so the sigmoid output is calibrated."""
    layer = model.get_layer("logit")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel / temperature, bias / temperature])


def predict_proba(model: keras.Model, crops: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Probabilities that each crop is fake, shape (N,)."""
    if len(crops) == 0:
        return np.zeros((0,), np.float32)
    return model.predict(np.asarray(crops, np.float32), batch_size=batch_size, verbose=0).reshape(-1)
