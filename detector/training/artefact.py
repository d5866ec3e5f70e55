"""The native-resolution artefact branch: a high-frequency residual into a small CNN trained from scratch.

Generators leave fingerprints in the finest pixel structure -- the up-sampling layers of GANs and
diffusion decoders make neighbouring pixels correlated in a way cameras do not.  NPR (Tan et al.,
CVPR 2024, "Rethinking the up-sampling operations in CNN-based generative network") exposes them
with the *neighbouring pixel relationship* residual

    r = x - up_nearest(down_nearest(x, 2))

i.e. each pixel minus the top-left pixel of its 2 x 2 block: zero for a flat image, large where
pixels of one block disagree.  Any resize averages those blocks away, so the branch looks at
native-resolution patches (``detector.views``), never at the 160 px view.

The residual is built from plain Keras layers -- a frozen depthwise 2 x 2 convolution with stride 2
that picks the top-left pixel, nearest up-sampling and a subtraction -- so the model still loads
with ``safe_mode`` and has no ``Lambda``.  A ResNet stem and two residual stages (what NPR and
SAFE use, here one basic block per stage and narrow, to fit a CPU budget) map the residual of each
patch to features; the model averages them over space and patches.
"""

from __future__ import annotations

import keras
import numpy as np

STEM = 24  # stem: 3 x 3, stride 2 -- each output sees whole 2 x 2 residual blocks and their neighbours
STAGES = (32, 64)  # one basic block per stage, stride 2 each: 64 px patch -> 8 x 8 feature map
PREFIX = "art"
FEATURE_LAYER = f"{PREFIX}_stage2_out"  # the branch's last feature map (its CAM layer)
PICK_LAYER = f"{PREFIX}_npr_pick"
# Batch-norm running statistics follow the last ~10 batches (Keras' default 0.99 follows ~100): the
# branch trains from scratch at a high learning rate, and with the slower average its inference-time
# statistics lagged the weights by so much in short runs that a model perfect in training mode
# scored every face alike at inference (seen in tests/test_gradcam.py's two-branch model).
BN_MOMENTUM = 0.9


def _pick_kernel(channels: int = 3) -> np.ndarray:
    k = np.zeros((2, 2, channels, 1), np.float32)
    k[0, 0, :, 0] = 1.0
    return k


def npr_residual(x, name: str = f"{PREFIX}_npr"):
    """``x - up_nearest(down_nearest(x))`` with stock layers (frozen weights set by :func:`init_branch`)."""
    picked = keras.layers.DepthwiseConv2D(2, strides=2, use_bias=False, trainable=False, name=PICK_LAYER)(x)
    up = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_up")(picked)
    return keras.layers.Subtract(name=f"{name}_residual")([x, up])


def _block(x, filters: int, stride: int, name: str):
    shortcut = x
    h = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    h = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn1")(h)
    h = keras.layers.ReLU(name=f"{name}_relu1")(h)
    h = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(h)
    h = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn2")(h)
    if stride != 1 or shortcut.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_down")(shortcut)
        shortcut = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_down_bn")(shortcut)
    h = keras.layers.Add(name=f"{name}_add")([h, shortcut])
    return keras.layers.ReLU(name=f"{name}_out")(h)


def artefact_features(patches, n_patches: int, patch: int):
    """(B, n, p, p, 3) 0..255 patches -> (B, n*p/8, p/8, C) feature map of the stacked patches.

    The patches are stacked vertically into one (n*p) x p image; ``p`` is a multiple of 8, so each
    patch keeps its own rows of the feature map (row block ``k`` = patch ``k``) and the 2 x 2 blocks
    of the residual never straddle two patches.
    """
    if patch % 8:
        raise ValueError(f"patch side must be a multiple of 8, got {patch}")
    x = keras.layers.Reshape((n_patches * patch, patch, 3), name=f"{PREFIX}_stack")(patches)
    x = keras.layers.Rescaling(1.0 / 255.0, name=f"{PREFIX}_scale")(x)
    x = npr_residual(x)
    x = keras.layers.Conv2D(STEM, 3, strides=2, padding="same", use_bias=False, name=f"{PREFIX}_stem_conv")(x)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{PREFIX}_stem_bn")(x)
    x = keras.layers.ReLU(name=f"{PREFIX}_stem_relu")(x)
    for i, filters in enumerate(STAGES, start=1):
        x = _block(x, filters, 2, f"{PREFIX}_stage{i}")
    return x


def init_branch(model: keras.Model) -> None:
    """Set the frozen residual kernel (call once after building; saved with the weights)."""
    layer = model.get_layer(PICK_LAYER)
    layer.set_weights([_pick_kernel(layer.get_weights()[0].shape[2])])


def residual_numpy(x: np.ndarray) -> np.ndarray:
    """The same residual in NumPy (N, H, W, C) with even H, W: for tests and for explaining it."""
    picked = x[:, ::2, ::2]
    return x - np.repeat(np.repeat(picked, 2, axis=1), 2, axis=2)
