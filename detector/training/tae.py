"""TAEF2, the tiny FLUX.2 autoencoder (github.com/madebyollin/taesd, MIT), rebuilt in Keras.

A latent-diffusion image leaves its generator through a VAE decoder; TAEF2's decoder is distilled to
imitate the FLUX.2 one.  A real photo passed through encoder and decoder comes back carrying that
decoder's trace on exactly the same content -- an *aligned* fake (``detector.training.reconstructions``).

The network is read off the state dict itself, so the file decides the shape and a file of another
shape cannot be loaded half-way:

* encoder: 3x3 conv, residual :func:`block`, then three times (stride-2 3x3 conv, three blocks), then a
  3x3 conv to the latent channels (f = 8);
* decoder: ``tanh(z / 3) * 3``, 3x3 conv, ReLU, then three times (three blocks, nearest 2x upsampling,
  3x3 conv), a block and a 3x3 conv to RGB;
* block: ``relu(conv3(relu(conv2(relu(conv1(x))))) + skip(x))``; TAEF2's blocks add a "mid-block
  GroupNorm" branch first, ``x + conv1x1(relu(groupnorm(conv1x1(x))))``.

Images go in and come out as RGB in 0..1.  Weights are read by :mod:`detector.training.torchfile`'s
restricted unpickler (no code in a weights file runs); every tensor must match a layer's shape, every
layer must get its tensors, and the files' SHA-256 may be pinned.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from .torchfile import read_torch_state_dict

DEFAULT_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "weights" / "taef2"
# The files of ../shared/weights/taef2 (taesd commit 5cccb12): loading checks them unless told otherwise.
TAEF2_SHA256 = {
    "taef2_encoder.pth": "10a4e1021e89d7551eaf161352da8dbd0b1aa83872ae28b150c1df1ce2f147b6",
    "taef2_decoder.pth": "0a44a31e1ae59eb9dbf9359d24942fd3ef5928162c1800d97a28c61d51be0ab5",
}
GROUPS = 4  # GroupNorm groups of the mid-block branch
GN_EPS = 1e-5  # torch's GroupNorm default


class WeightsError(ValueError):
    """A weights file that does not fit the network it claims to be (or was tampered with)."""


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _modules(state: dict[str, np.ndarray]) -> dict[int, dict[str, np.ndarray]]:
    """``{"3.conv.0.weight": w}`` -> ``{3: {"conv.0.weight": w}}`` (the nn.Sequential index first)."""
    if not state:
        raise WeightsError("the file holds no tensors")
    out: dict[int, dict[str, np.ndarray]] = {}
    for key, value in state.items():
        head, _, rest = key.partition(".")
        if not head.isdigit() or not rest:
            raise WeightsError(f"unexpected key {key!r} in a tiny-autoencoder state dict")
        out.setdefault(int(head), {})[rest] = value
    return out


def _conv_kernel(w: np.ndarray) -> np.ndarray:
    """torch (out, in, kh, kw) -> Keras (kh, kw, in, out)."""
    return np.transpose(w, (2, 3, 1, 0)).astype(np.float32)


class _Builder:
    """Builds layers and remembers the weights each should get, so they are set after the model exists."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.assign: list[tuple[str, list[np.ndarray]]] = []

    def conv(self, x, tensors: dict[str, np.ndarray], name: str, stride: int = 1):
        w = tensors["weight"]
        out_ch, _, k, _ = w.shape
        if k == 3:  # torch pads 1 on every side; Keras "same" pads stride-2 convolutions asymmetrically
            x = keras.layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
        use_bias = "bias" in tensors
        x = keras.layers.Conv2D(out_ch, k, strides=stride, padding="valid", use_bias=use_bias, name=name)(x)
        self.assign.append((name, [_conv_kernel(w)] + ([tensors["bias"].astype(np.float32)] if use_bias else [])))
        return x

    def block(self, x, tensors: dict[str, np.ndarray], name: str):
        if "pool.0.weight" in tensors:  # TAEF2's mid-block GroupNorm branch
            sub = {k[len("pool."):]: v for k, v in tensors.items() if k.startswith("pool.")}
            h = self.conv(x, {"weight": sub["0.weight"]}, f"{name}_pool0")
            h = keras.layers.GroupNormalization(GROUPS, epsilon=GN_EPS, name=f"{name}_pool1")(h)
            self.assign.append((f"{name}_pool1", [sub["1.weight"].astype(np.float32), sub["1.bias"].astype(np.float32)]))
            h = keras.layers.ReLU(name=f"{name}_pool2")(h)
            h = self.conv(h, {"weight": sub["3.weight"]}, f"{name}_pool3")
            x = keras.layers.Add(name=f"{name}_pooladd")([x, h])
        h = x
        for j in (0, 2, 4):
            h = self.conv(h, {"weight": tensors[f"conv.{j}.weight"], "bias": tensors[f"conv.{j}.bias"]}, f"{name}_conv{j}")
            if j < 4:
                h = keras.layers.ReLU(name=f"{name}_relu{j}")(h)
        skip = self.conv(x, {"weight": tensors["skip.weight"]}, f"{name}_skip") if "skip.weight" in tensors else x
        return keras.layers.ReLU(name=f"{name}_fuse")(keras.layers.Add(name=f"{name}_add")([h, skip]))


def _used_keys(tensors: dict[str, np.ndarray]) -> set[str]:
    if "conv.0.weight" in tensors:
        return set(tensors)
    return {k for k in tensors if k in ("weight", "bias")}


def build_encoder(state: dict[str, np.ndarray], name: str = "tae_encoder") -> keras.Model:
    """The encoder an encoder state dict describes, with its weights: RGB 0..1 -> latents (f = 8)."""
    mods = _modules(state)
    b = _Builder(name)
    inp = keras.Input((None, None, 3), name=f"{name}_in")
    x, seen = inp, set()
    last = max(mods)
    for i in range(last + 1):
        t = mods.get(i)
        if t is None:
            raise WeightsError(f"encoder layer {i} has no weights (expected only convolutions and blocks)")
        if "conv.0.weight" in t:
            x = b.block(x, t, f"{name}_{i}")
        else:
            stride = 1 if i in (0, last) else 2  # the middle bias-free convolutions halve the size
            if stride == 2 and "bias" in t:
                raise WeightsError(f"encoder layer {i}: a downsampling convolution without bias was expected")
            x = b.conv(x, t, f"{name}_{i}", stride)
        seen |= {f"{i}.{k}" for k in _used_keys(t)}
    return _finish(inp, x, b, state, seen, name)


def build_decoder(state: dict[str, np.ndarray], name: str = "tae_decoder") -> keras.Model:
    """The decoder a decoder state dict describes, with its weights: latents -> RGB (clipped to 0..1)."""
    mods = _modules(state)
    if 0 in mods or 2 in mods:
        raise WeightsError("decoder layers 0 (clamp) and 2 (ReLU) carry no weights")
    b = _Builder(name)
    latent = mods[1]["weight"].shape[1]
    inp = keras.Input((None, None, latent), name=f"{name}_in")
    # tanh(z / 3) * 3 from stock layers (no Lambda: a saved model must load in safe mode)
    x = keras.layers.Activation("tanh", name=f"{name}_tanh")(keras.layers.Rescaling(1.0 / 3.0, name=f"{name}_in3")(inp))
    x = keras.layers.Rescaling(3.0, name=f"{name}_clamp")(x)
    seen: set[str] = set()
    for i in range(1, max(mods) + 1):
        t = mods.get(i)
        if t is None:
            x = keras.layers.ReLU(name=f"{name}_{i}_relu")(x) if i == 2 else keras.layers.UpSampling2D(
                2, interpolation="nearest", name=f"{name}_{i}_up")(x)
        elif "conv.0.weight" in t:
            x = b.block(x, t, f"{name}_{i}")
        else:
            x = b.conv(x, t, f"{name}_{i}")
        if t is not None:
            seen |= {f"{i}.{k}" for k in _used_keys(t)}
    return _finish(inp, x, b, state, seen, name)


def _finish(inp, x, b: _Builder, state: dict, seen: set[str], name: str) -> keras.Model:
    unused = sorted(set(state) - seen)
    if unused:
        raise WeightsError(f"{name}: tensors no layer uses: {unused[:5]}")
    model = keras.Model(inp, x, name=name)
    for layer_name, weights in b.assign:
        layer = model.get_layer(layer_name)
        want = [tuple(w.shape) for w in layer.get_weights()]
        got = [tuple(w.shape) for w in weights]
        if want != got:
            raise WeightsError(f"{name}: layer {layer_name} wants {want}, the file has {got}")
        layer.set_weights(weights)
    return model


@dataclass
class TinyAutoencoder:
    """Encoder + decoder of one tiny autoencoder, and the hashes of the files they came from."""

    encoder: keras.Model
    decoder: keras.Model
    name: str
    key: str  # identifies the weights (for reconstruction caches)

    def reconstruct(self, rgb: np.ndarray) -> np.ndarray:
        """``rgb`` (H, W, 3) uint8 -> its reconstruction, uint8, same size (padded to a multiple of 8)."""
        return reconstruct_batch(self, rgb[None])[0]


def reconstruct_batch(ae, batch: np.ndarray, factor: int = 8) -> np.ndarray:
    """uint8 (N, H, W, 3) -> reconstructions (N, H, W, 3) uint8 through ``ae.encoder`` and ``ae.decoder``.

    Sizes that are not a multiple of the autoencoder's factor are reflect-padded and cropped back, so the
    decoder's upsampling grid starts at the image's top-left corner as it does in a generator.
    """
    n, h, w, _ = batch.shape
    ph, pw = (-h) % factor, (-w) % factor
    x = batch.astype(np.float32) / 255.0
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="reflect")
    z = ae.encoder(x, training=False)
    y = np.asarray(ae.decoder(z, training=False))[:, :h, :w]
    return np.clip(np.round(y * 255.0), 0, 255).astype(np.uint8)


def load_taef2(folder: str | Path = DEFAULT_DIR, check_hash: bool = True) -> TinyAutoencoder:
    """TAEF2 from ``taef2_encoder.pth`` / ``taef2_decoder.pth`` in ``folder``.

    Refuses a file whose pickle names anything but tensors (restricted unpickler), whose tensors do not
    fit the network, or -- with ``check_hash`` and pinned hashes -- whose bytes differ from the known file.
    """
    folder = Path(folder)
    parts = {}
    for role in ("encoder", "decoder"):
        path = folder / f"taef2_{role}.pth"
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist (TAEF2 weights: see ../shared/weights/taef2/README.md)")
        digest = sha256(path)
        pinned = TAEF2_SHA256.get(path.name)
        if check_hash and pinned and digest != pinned:
            raise WeightsError(f"{path} is not the known TAEF2 file (sha256 {digest[:12]}..., expected {pinned[:12]}...)")
        parts[role] = (read_torch_state_dict(path), digest)
    enc = build_encoder(parts["encoder"][0], "taef2_encoder")
    dec = build_decoder(parts["decoder"][0], "taef2_decoder")
    if enc.output_shape[-1] != dec.input_shape[-1]:
        raise WeightsError(f"encoder gives {enc.output_shape[-1]} latent channels, decoder takes {dec.input_shape[-1]}")
    return TinyAutoencoder(enc, dec, "taef2", weights_key(parts["encoder"][1], parts["decoder"][1]))


def weights_key(encoder_sha256: str, decoder_sha256: str) -> str:
    """The reconstruction-cache key of TAEF2 weights: names both files' bytes."""
    return "taef2-" + hashlib.sha256((encoder_sha256 + decoder_sha256).encode()).hexdigest()[:12]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images, in dB."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)

