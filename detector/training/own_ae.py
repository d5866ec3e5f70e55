"""An autoencoder of the latent-diffusion shape, trained by this project on real training crops.

    python -m detector train-ae --prepared .cache/prepared/faces-native256 --out assets/autoencoder --minutes 20

The second kind of aligned fake (beside TAEF2, :mod:`detector.training.tae`): Stable Diffusion's VAE is
f = 8 with 4 latent channels, built from 3x3 convolutions, residual blocks (GroupNorm, SiLU) and
nearest-neighbour 2x upsampling followed by a convolution in the decoder.  This one has that shape at
a small width (``WIDTH``), so it trains on a laptop CPU in minutes to an hour, and its decoder leaves
the same *kind* of trace (upsampling grid, smoothed high frequencies) without being any generator's.

Trained on random patches of training reals only (never validation rows), with an L1 loss on pixels and
on image gradients (plain L1 alone blurs edges, which would teach "blurry = fake" instead of the trace).
Checkpointed every ``--save-every`` steps into ``--out`` (``autoencoder.weights.h5`` + ``autoencoder.json``);
a run that is started again continues from its checkpoint.  The weights are an artefact like the model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from .prepare import Prepared

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "assets" / "autoencoder"
WIDTH = 32  # channels at full resolution; 2x that below
LATENT = 4  # latent channels (Stable Diffusion's VAE: 4)
LEVELS = 3  # 2x downsamplings: f = 2 ** LEVELS = 8
GROUPS = 8


def _res(x, ch: int, name: str):
    """GroupNorm-SiLU-conv twice with a skip (1x1 where widths differ): the LDM residual block."""
    h = keras.layers.GroupNormalization(GROUPS, name=f"{name}_gn1")(x)
    h = keras.layers.Activation("silu", name=f"{name}_act1")(h)
    h = keras.layers.Conv2D(ch, 3, padding="same", name=f"{name}_conv1")(h)
    h = keras.layers.GroupNormalization(GROUPS, name=f"{name}_gn2")(h)
    h = keras.layers.Activation("silu", name=f"{name}_act2")(h)
    h = keras.layers.Conv2D(ch, 3, padding="same", name=f"{name}_conv2")(h)
    if x.shape[-1] != ch:
        x = keras.layers.Conv2D(ch, 1, name=f"{name}_skip")(x)
    return keras.layers.Add(name=f"{name}_add")([x, h])


def widths(width: int = WIDTH) -> list[int]:
    """Channels per resolution level, full resolution first."""
    return [width] + [2 * width] * LEVELS


def build_encoder(width: int = WIDTH, latent: int = LATENT) -> keras.Model:
    ws = widths(width)
    inp = keras.Input((None, None, 3), name="ae_enc_in")
    x = keras.layers.Rescaling(2.0, offset=-1.0, name="ae_enc_scale")(inp)  # 0..1 -> -1..1 as LDM
    x = keras.layers.Conv2D(ws[0], 3, padding="same", name="ae_enc_in_conv")(x)
    for lvl in range(LEVELS):
        x = _res(x, ws[lvl], f"ae_enc_{lvl}")
        x = keras.layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"ae_enc_{lvl}_pad")(x)  # LDM's Downsample pads so
        x = keras.layers.Conv2D(ws[lvl + 1], 3, strides=2, name=f"ae_enc_{lvl}_down")(x)
    x = _res(x, ws[-1], "ae_enc_mid")
    x = keras.layers.GroupNormalization(GROUPS, name="ae_enc_out_gn")(x)
    x = keras.layers.Activation("silu", name="ae_enc_out_act")(x)
    z = keras.layers.Conv2D(latent, 3, padding="same", name="ae_enc_out_conv")(x)
    return keras.Model(inp, z, name="own_encoder")


def build_decoder(width: int = WIDTH, latent: int = LATENT) -> keras.Model:
    ws = widths(width)
    inp = keras.Input((None, None, latent), name="ae_dec_in")
    x = keras.layers.Conv2D(ws[-1], 3, padding="same", name="ae_dec_in_conv")(inp)
    x = _res(x, ws[-1], "ae_dec_mid")
    for lvl in reversed(range(LEVELS)):
        x = _res(x, ws[lvl + 1], f"ae_dec_{lvl}")
        x = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"ae_dec_{lvl}_up")(x)
        x = keras.layers.Conv2D(ws[lvl], 3, padding="same", name=f"ae_dec_{lvl}_conv")(x)
    x = _res(x, ws[0], "ae_dec_out")
    x = keras.layers.GroupNormalization(GROUPS, name="ae_dec_out_gn")(x)
    x = keras.layers.Activation("silu", name="ae_dec_out_act")(x)
    x = keras.layers.Conv2D(3, 3, padding="same", name="ae_dec_out_conv")(x)
    out = keras.layers.Rescaling(0.5, offset=0.5, name="ae_dec_scale")(x)  # -1..1 -> 0..1
    return keras.Model(inp, out, name="own_decoder")


@dataclass
class OwnAutoencoder:
    encoder: keras.Model
    decoder: keras.Model
    name: str = "own"
    key: str = ""


def load_own(folder: str | Path = DEFAULT_DIR) -> OwnAutoencoder:
    """The trained autoencoder in ``folder``; refuses weights whose hash differs from the recorded one."""
    folder = Path(folder)
    meta_path, weights = folder / "autoencoder.json", folder / "autoencoder.weights.h5"
    if not meta_path.is_file() or not weights.is_file():
        raise FileNotFoundError(f"{folder} has no trained autoencoder (python -m detector train-ae --out {folder})")
    meta = json.loads(meta_path.read_text())
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    if meta.get("sha256") and meta["sha256"] != digest:
        raise ValueError(f"{weights} does not match the sha256 recorded in {meta_path}")
    enc, dec = build_encoder(meta["width"], meta["latent"]), build_decoder(meta["width"], meta["latent"])
    ae = keras.Model(enc.input, dec(enc.output), name="own_autoencoder")
    ae.load_weights(weights)
    return OwnAutoencoder(enc, dec, "own", weights_key(digest))


def weights_key(sha256: str) -> str:
    """The reconstruction-cache key of this autoencoder's weights (their SHA-256, as autoencoder.json records it)."""
    return "own-" + sha256[:12]


def _patches(data: Prepared, rows: np.ndarray, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros((n, size, size, 3), np.float32)
    for k in range(n):
        crop = data.crop(int(rows[rng.integers(len(rows))]))
        side = crop.shape[0]
        if side < size:
            import cv2

            crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
            side = size
        y, x = rng.integers(0, side - size + 1, 2)
        p = crop[y:y + size, x:x + size]
        out[k] = (p[:, ::-1] if rng.random() < 0.5 else p) / 255.0
    return out


def train_ae(prepared: str | Path, out: str | Path, minutes: float = 20.0, steps: int = 0, batch: int = 16,
             patch: int = 96, width: int = WIDTH, lr: float = 1e-3, seed: int = 0, save_every: int = 50) -> dict:
    """Train (or continue) the autoencoder on patches of training reals; returns the record written."""
    import tensorflow as tf

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = Prepared(prepared)
    rows = np.where((data.split == "train") & (data.label == 0) & data.face_found)[0]
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    enc, dec = build_encoder(width), build_decoder(width)
    ae = keras.Model(enc.input, dec(enc.output), name="own_autoencoder")
    weights, meta_path = out / "autoencoder.weights.h5", out / "autoencoder.json"
    meta = {"width": width, "latent": LATENT, "factor": 2 ** LEVELS, "steps": 0, "seconds": 0.0, "history": []}
    if weights.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        ae.load_weights(weights)
        print(f"continuing from step {meta['steps']}", flush=True)
    opt = keras.optimizers.Adam(lr)

    @tf.function(reduce_retracing=True)
    def step(x):
        with tf.GradientTape() as tape:
            y = ae(x, training=True)
            dy_x, dx_x = tf.image.image_gradients(x)
            dy_y, dx_y = tf.image.image_gradients(y)
            loss = tf.reduce_mean(tf.abs(y - x)) + 0.5 * (tf.reduce_mean(tf.abs(dy_y - dy_x)) +
                                                         tf.reduce_mean(tf.abs(dx_y - dx_x)))
        grads = tape.gradient(loss, ae.trainable_weights)
        opt.apply(grads, ae.trainable_weights)
        return loss, tf.reduce_mean(tf.square(y - x))

    def save():
        ae.save_weights(weights)
        meta["sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
        meta_path.write_text(json.dumps(meta, indent=2))

    t0, losses, mses = time.time(), [], []
    before, done = float(meta["seconds"]), 0
    while (steps and done < steps) or (not steps and time.time() - t0 < minutes * 60):
        loss, mse = step(tf.convert_to_tensor(_patches(data, rows, batch, patch, rng)))
        losses.append(float(loss))
        mses.append(float(mse))
        done += 1
        meta["steps"] += 1
        if meta["steps"] % save_every == 0:
            psnr = 10 * np.log10(1.0 / max(np.mean(mses[-save_every:]), 1e-10))
            meta["history"].append({"step": meta["steps"], "loss": round(float(np.mean(losses[-save_every:])), 5),
                                    "psnr": round(float(psnr), 2)})
            meta["seconds"] = round(before + time.time() - t0, 1)
            save()
            print(json.dumps(meta["history"][-1]), flush=True)
    meta["seconds"] = round(before + time.time() - t0, 1)
    meta.update({"patch": patch, "batch": batch, "learning_rate": lr, "seed": seed, "trained_on": str(prepared),
                 "train_rows": int(len(rows))})
    save()
    return meta


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m detector train-ae", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prepared", required=True, help="prepared crop folder (python -m detector prepare)")
    p.add_argument("--out", default=str(DEFAULT_DIR), help="folder for autoencoder.weights.h5 and autoencoder.json")
    p.add_argument("--minutes", type=float, default=20.0, help="train for this long (wall clock; default 20)")
    p.add_argument("--steps", type=int, default=0, help="train for this many steps instead of --minutes")
    p.add_argument("--batch", type=int, default=16, help="patches per step")
    p.add_argument("--patch", type=int, default=96, help="patch side in pixels (a multiple of 8)")
    p.add_argument("--width", type=int, default=WIDTH, help=f"channels at full resolution (default {WIDTH})")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-every", type=int, default=50, help="checkpoint every N steps")
    a = p.parse_args(argv)
    meta = train_ae(a.prepared, a.out, a.minutes, a.steps, a.batch, a.patch, a.width, a.learning_rate, a.seed,
                    a.save_every)
    print(json.dumps({k: v for k, v in meta.items() if k != "history"}))


if __name__ == "__main__":
    main()
