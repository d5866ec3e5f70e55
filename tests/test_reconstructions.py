"""Aligned reconstruction fakes: the TAEF2 rebuild and its safe loading, the project's own autoencoder,
the reconstruction cache, and how training batches draw from it.  Nothing here needs ../shared (the one
test of the real TAEF2 weights skips without them)."""

from __future__ import annotations

import csv
import io
import json
import pickle
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest

from detector.evaluation import metrics
from detector.training import own_ae, reconstructions, tae, torchfile, train
from detector.training.prepare import FORMAT, INDEX_COLUMNS, Prepared

TAEF2_DIR = Path(__file__).resolve().parents[2] / "shared" / "weights" / "taef2"


# ------------------------------------------------------------ a torch zip file written without torch


class _Storage:
    """Pickled as a persistent id, as torch pickles a storage (its bytes are a file of the zip)."""

    def __init__(self, key: str, array: np.ndarray):
        self.key, self.array = key, array


class _Tensor:
    """Pickles as torch does: ``torch._utils._rebuild_tensor_v2(storage, 0, size, stride, ...)``."""

    def __init__(self, key: str, array: np.ndarray):
        self.key, self.array = key, array

    def __reduce__(self):
        a = self.array
        stride = tuple(s // a.itemsize for s in a.strides)
        return (sys.modules["torch._utils"]._rebuild_tensor_v2,
                (_Storage(self.key, a), 0, a.shape, stride, False, None))


def _fake_torch_modules():
    """Stand-ins for the torch globals a state dict pickle names (only their module and name matter)."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):  # noqa: ARG001 - never called: only pickled by reference
        raise AssertionError

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    for name in ("HalfStorage", "FloatStorage"):
        cls = type(name, (), {"__module__": "torch"})
        setattr(torch, name, cls)
    torch._utils = utils
    return {"torch": torch, "torch._utils": utils}


def write_torch_zip(path: Path, state: dict[str, np.ndarray], extra=None) -> Path:
    """A zip-format torch ``state_dict`` file (fp16 storages, as TAEF2's), written with plain pickle."""
    import collections

    mods = _fake_torch_modules()
    saved = {k: sys.modules.get(k) for k in mods}
    sys.modules.update(mods)
    try:
        tensors = {k: _Tensor(str(i), np.ascontiguousarray(v.astype(np.float16))) for i, (k, v) in enumerate(state.items())}

        class P(pickle.Pickler):
            def persistent_id(self, obj):
                if isinstance(obj, _Storage):
                    return ("storage", mods["torch"].HalfStorage, obj.key, "cpu", obj.array.size)
                return None

        buf = io.BytesIO()
        payload = collections.OrderedDict(tensors)
        if extra is not None:
            payload["extra"] = extra
        P(buf, protocol=2).dump(payload)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        for t in tensors.values():
            z.writestr(f"archive/data/{t.key}", t.array.tobytes())
    return path


def tiny_tae_state(width: int = 8, latent: int = 4, seed: int = 0) -> tuple[dict, dict]:
    """Encoder and decoder state dicts of TAEF2's layout (mid-block GroupNorm blocks) at a tiny width."""
    rng = np.random.default_rng(seed)

    def conv(cin, cout, k=3, bias=True):
        d = {"weight": rng.normal(0, 0.6 / np.sqrt(cin * k * k), (cout, cin, k, k))}
        if bias:
            d["bias"] = rng.normal(0, 0.05, cout)
        return d

    def block(c, pool=True):
        d = {}
        for j in (0, 2, 4):
            for k, v in conv(c, c).items():
                d[f"conv.{j}.{k}"] = v
        if pool:
            d["pool.0.weight"] = conv(c, 4 * c, 1, False)["weight"]
            d["pool.1.weight"] = rng.normal(1, 0.1, 4 * c)
            d["pool.1.bias"] = rng.normal(0, 0.1, 4 * c)
            d["pool.3.weight"] = conv(4 * c, c, 1, False)["weight"]
        return d

    enc_layers = [conv(3, width), block(width, False)]
    for _ in range(3):
        enc_layers += [conv(width, width, bias=False), block(width), block(width)]
    enc_layers.append(conv(width, latent))
    dec_layers = {1: conv(latent, width)}
    i = 3
    for _ in range(3):
        dec_layers[i] = block(width)
        dec_layers[i + 1] = block(width)
        dec_layers[i + 3] = conv(width, width, bias=False)  # i + 2 is the upsampling (no weights)
        i += 4
    dec_layers[i] = block(width, False)
    dec_layers[i + 1] = conv(width, 3)

    def flat(layers):
        return {f"{n}.{k}": v for n, d in layers for k, v in d.items()}

    return flat(enumerate(enc_layers)), flat(dec_layers.items())


# ------------------------------------------------------------ a numpy reference of the same network


def _conv(x, w, b=None, stride=1):
    """torch Conv2d (NHWC in, torch weight (out, in, k, k)), padding k // 2."""
    k = w.shape[-1]
    p = k // 2
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    h = (x.shape[1] + 2 * p - k) // stride + 1
    wd = (x.shape[2] + 2 * p - k) // stride + 1
    out = np.zeros((x.shape[0], h, wd, w.shape[0]))
    for dy in range(k):
        for dx in range(k):
            patch = xp[:, dy:dy + stride * h:stride, dx:dx + stride * wd:stride]
            out += patch @ w[:, :, dy, dx].T
    return out + (0 if b is None else b)


def _block(x, d):
    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    if "pool.0.weight" in d:
        h = _conv(x, d["pool.0.weight"])
        n, hh, ww, c = h.shape
        g = h.reshape(n, hh, ww, 4, c // 4)
        g = (g - g.mean(axis=(1, 2, 4), keepdims=True)) / np.sqrt(g.var(axis=(1, 2, 4), keepdims=True) + 1e-5)
        h = relu(g.reshape(n, hh, ww, c) * d["pool.1.weight"] + d["pool.1.bias"])
        x = x + _conv(h, d["pool.3.weight"])
    h = relu(_conv(x, d["conv.0.weight"], d["conv.0.bias"]))
    h = relu(_conv(h, d["conv.2.weight"], d["conv.2.bias"]))
    h = _conv(h, d["conv.4.weight"], d["conv.4.bias"])
    return relu(h + x)


def _reference(enc: dict, dec: dict, x: np.ndarray) -> np.ndarray:
    def layers(state):
        out: dict[int, dict] = {}
        for k, v in state.items():
            i, _, rest = k.partition(".")
            out.setdefault(int(i), {})[rest] = v.astype(np.float16).astype(np.float64)
        return out

    e = layers(enc)
    last = max(e)
    for i in range(last + 1):
        d = e[i]
        x = _block(x, d) if "conv.0.weight" in d else _conv(x, d["weight"], d.get("bias"), 1 if i in (0, last) else 2)
    z = np.tanh(x / 3) * 3
    dd = layers(dec)
    for i in range(1, max(dd) + 1):
        if i not in dd:
            z = np.maximum(z, 0) if i == 2 else z.repeat(2, axis=1).repeat(2, axis=2)
        else:
            d = dd[i]
            z = _block(z, d) if "conv.0.weight" in d else _conv(z, d["weight"], d.get("bias"))
    return z


@pytest.fixture(scope="module")
def tiny_tae_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("taef2")
    enc, dec = tiny_tae_state()
    write_torch_zip(folder / "taef2_encoder.pth", enc)
    write_torch_zip(folder / "taef2_decoder.pth", dec)
    return folder, enc, dec


def test_the_rebuilt_tiny_autoencoder_computes_what_the_torch_network_computes(tiny_tae_files):
    folder, enc, dec = tiny_tae_files
    ae = tae.load_taef2(folder, check_hash=False)  # not the released files: no pinned hash to match
    assert ae.encoder.output_shape[-1] == 4 and ae.decoder.input_shape[-1] == 4
    assert any(layer.__class__.__name__ == "GroupNormalization" for layer in ae.encoder.layers)
    x = np.random.default_rng(1).uniform(0, 1, (2, 16, 24, 3))
    z = np.asarray(ae.encoder(x.astype(np.float32)))
    assert z.shape == (2, 2, 3, 4)  # f = 8
    y = np.asarray(ae.decoder(z))
    assert y.shape == (2, 16, 24, 3)
    np.testing.assert_allclose(y, _reference(enc, dec, x), atol=2e-3)


def test_reconstructing_pads_odd_sizes_and_returns_the_same_size(tiny_tae_files):
    ae = tae.load_taef2(tiny_tae_files[0], check_hash=False)
    rgb = np.random.default_rng(2).integers(0, 256, (1, 21, 19, 3), dtype=np.uint8)
    out = tae.reconstruct_batch(ae, rgb)
    assert out.shape == rgb.shape and out.dtype == np.uint8


def test_loading_refuses_a_file_whose_pickle_names_code(tmp_path, tiny_tae_files):
    folder, enc, dec = tiny_tae_files

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo owned > " + str(tmp_path / "owned"),))

    bad = tmp_path / "bad"
    bad.mkdir()
    write_torch_zip(bad / "taef2_encoder.pth", enc, extra=Evil())
    write_torch_zip(bad / "taef2_decoder.pth", dec)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        tae.load_taef2(bad, check_hash=False)
    assert not (tmp_path / "owned").exists()


def test_loading_refuses_tensors_that_do_not_fit_and_files_that_differ_from_the_pinned_hash(tmp_path, tiny_tae_files):
    folder, enc, dec = tiny_tae_files
    wrong = dict(dec)
    wrong["3.conv.0.weight"] = np.zeros((8, 8, 3, 1))  # a 3x1 kernel where a 3x3 one belongs
    (tmp_path / "shape").mkdir()
    write_torch_zip(tmp_path / "shape" / "taef2_encoder.pth", enc)
    write_torch_zip(tmp_path / "shape" / "taef2_decoder.pth", wrong)
    with pytest.raises(tae.WeightsError):
        tae.load_taef2(tmp_path / "shape", check_hash=False)
    extra = dict(enc)
    extra["99.weight"] = np.zeros((1,))  # a tensor no layer uses
    (tmp_path / "unused").mkdir()
    write_torch_zip(tmp_path / "unused" / "taef2_encoder.pth", extra)
    write_torch_zip(tmp_path / "unused" / "taef2_decoder.pth", dec)
    with pytest.raises(tae.WeightsError):
        tae.load_taef2(tmp_path / "unused", check_hash=False)
    # A file that claims to be the released TAEF2 but whose bytes differ: refused by its pinned hash.
    (tmp_path / "swapped").mkdir()
    for role in ("encoder", "decoder"):
        data = (folder / f"taef2_{role}.pth").read_bytes()
        (tmp_path / "swapped" / f"taef2_{role}.pth").write_bytes(data)
    pinned = dict(tae.TAEF2_SHA256)
    try:
        tae.TAEF2_SHA256["taef2_encoder.pth"] = "0" * 64
        with pytest.raises(tae.WeightsError, match="not the known TAEF2 file"):
            tae.load_taef2(tmp_path / "swapped")
    finally:
        tae.TAEF2_SHA256.update(pinned)


def test_a_truncated_zip_torch_file_is_refused(tmp_path, tiny_tae_files):
    data = (tiny_tae_files[0] / "taef2_encoder.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises((ValueError, zipfile.BadZipFile)):
        torchfile.read_torch_state_dict(tmp_path / "cut.pth")


@pytest.mark.skipif(not (TAEF2_DIR / "taef2_decoder.pth").is_file(), reason="../shared/weights/taef2 is not present")
def test_taef2_reconstructs_a_photo_closely(astronaut):
    ae = tae.load_taef2(TAEF2_DIR)
    assert ae.encoder.output_shape[-1] == 32  # FLUX.2's latent channels
    face = np.ascontiguousarray(astronaut[:256, 100:356])
    rec = ae.reconstruct(face)
    assert rec.shape == face.shape
    assert tae.psnr(face, rec) > 29.0  # measured 31.9 dB on this crop
    assert tae.psnr(face, rec) < 45.0  # and not a copy: the decoder's trace is there


# ------------------------------------------------------------ the project's own autoencoder


def test_own_autoencoder_has_the_latent_diffusion_shape():
    enc, dec = own_ae.build_encoder(8), own_ae.build_decoder(8)
    x = np.zeros((1, 32, 48, 3), np.float32)
    z = enc(x)
    assert tuple(z.shape) == (1, 4, 6, 4)  # f = 8, 4 latent channels
    assert tuple(dec(z).shape) == (1, 32, 48, 3)
    ups = [layer for layer in dec.layers if layer.__class__.__name__ == "UpSampling2D"]
    assert len(ups) == 3 and all(layer.interpolation == "nearest" for layer in ups)


# ------------------------------------------------------------ a tiny prepared set


def make_prepared(folder: Path, n_per_cell: int = 3, side: int = 24) -> Prepared:
    """A prepared folder of two sources, train and val, real and fake, with random crops."""
    rng = np.random.default_rng(0)
    rows = []
    for src in ("A", "B"):
        for split in ("train", "val"):
            for label in (0, 1):
                for i in range(n_per_cell):
                    rows.append({"path": f"/x/{src}/{split}/{label}/{i}.jpg", "label": label, "source": src,
                                 "split": split, "group": f"{src}{split}{label}{i}", "face_found": 1, "box": "null",
                                 "side": side, "landmarks": "{}", "width": side, "height": side, "file_bytes": 1,
                                 "jpeg_quality": 90, "brightness": 1, "sharpness": 1, "donor": "", "resized_to": ""})
    folder.mkdir(parents=True, exist_ok=True)
    native = np.zeros((len(rows), 32, 32, 3), np.uint8)
    native[:, :side, :side] = rng.integers(0, 256, (len(rows), side, side, 3))
    np.save(folder / "native.npy", native)
    with open(folder / "index.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=INDEX_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    (folder / "prepare.json").write_text(json.dumps({"format": FORMAT, "native_max": 32, "n": len(rows)}))
    return Prepared(folder)


class CountingAE:
    """An autoencoder stand-in: inverts the image (a visible change) and counts the crops it saw."""

    name, key = "stub", "stub-0001"

    def __init__(self):
        self.seen = 0
        self.encoder = self._enc
        self.decoder = lambda z, training=False: z

    def _enc(self, x, training=False):
        self.seen += len(x)
        return 1.0 - np.asarray(x)


def test_the_cache_holds_training_reals_keyed_by_crop_and_resumes(tmp_path):
    data = make_prepared(tmp_path / "prep")
    rows = reconstructions.eligible_rows(data)
    assert set(data.split[rows]) == {"train"} and set(data.label[rows]) == {0}
    ae = CountingAE()
    folder = reconstructions.cache_dir(data.dir, ae.key)
    assert folder == data.dir / "recon" / "stub-0001"  # one folder per autoencoder's weights
    reconstructions.build(data, ae, rows, folder)
    assert ae.seen == len(rows)
    cached = reconstructions.Reconstructions(folder, data)
    assert list(cached.rows) == sorted(rows.tolist())
    r = int(rows[0])
    np.testing.assert_array_equal(cached.crop(r), 255 - data.crop(r))
    reconstructions.build(data, ae, rows, folder)  # a second run finds everything done
    assert ae.seen == len(rows)
    other = CountingAE()
    other.key = "stub-0002"
    with pytest.raises(ValueError, match="another autoencoder"):
        reconstructions.build(data, other, rows, folder)


def test_the_cache_refuses_validation_rows_and_ignores_crops_that_changed(tmp_path):
    data = make_prepared(tmp_path / "prep")
    val_real = int(np.where((data.split == "val") & (data.label == 0))[0][0])
    with pytest.raises(ValueError, match="only training reals"):
        reconstructions.build(data, CountingAE(), np.array([val_real]), tmp_path / "c")
    rows = reconstructions.eligible_rows(data)
    folder = tmp_path / "c2"
    reconstructions.build(data, CountingAE(), rows, folder)
    native = np.load(data.dir / "native.npy")
    native[int(rows[0])] ^= 1  # the crop was prepared again and differs now
    np.save(data.dir / "native.npy", native)
    cached = reconstructions.Reconstructions(folder, Prepared(data.dir))
    assert int(rows[0]) not in cached.rows and cached.stale == 1


def test_eligible_rows_takes_at_most_n_per_source():
    class D:
        split = np.array(["train"] * 10 + ["val"] * 2)
        label = np.zeros(12, int)
        face_found = np.ones(12, bool)
        source = np.array(["A"] * 7 + ["B"] * 3 + ["A", "B"])

    rows = reconstructions.eligible_rows(D(), per_source=2)
    assert len(rows) == 4 and set(D.source[rows]) == {"A", "B"} and max(rows) < 10


# ------------------------------------------------------------ batches


class StubRecon:
    def __init__(self, rows, value=7):
        self.rows = np.array(rows)
        self.value = value

    def crop(self, row):
        return np.full((16, 16, 3), self.value, np.uint8)


def test_batches_mix_reconstructions_at_the_share_paired_with_their_reals_and_never_from_validation(tmp_path):
    data = make_prepared(tmp_path / "prep", n_per_cell=4, side=16)
    train_idx = np.where(data.split == "train")[0]
    val_reals = np.where((data.split == "val") & (data.label == 0))[0]
    train_reals = np.where((data.split == "train") & (data.label == 0))[0]
    cfg = train.TrainConfig(batch_size=32, sbi="paper", augment=False, input_size=16, patch=8, recon_share=0.25)
    # the cache (wrongly) also holds validation rows: they must never be drawn
    gen = train.Batches(data, train_idx, cfg, [StubRecon(np.concatenate([train_reals, val_reals]), 7),
                                               StubRecon(train_reals, 9)])
    drawn = set()
    for _ in range(20):
        batch = gen.samples()
        labels = [lab for _, lab in batch]
        assert labels == [0] * 16 + [1] * 16
        recon = [img for img, _ in batch[16:20]]
        assert all(int(img.mean()) in (7, 9) for img in recon)  # 25 % of the 16 fakes
        assert {int(img.mean()) for img in recon} == {7, 9}  # both autoencoders, in turn
        assert not any(int(img.mean()) in (7, 9) for img, _ in batch[20:])
        # each reconstruction's real is in the batch: the first four reals are rows with a reconstruction
        drawn |= {int(k) for k in gen.last_recon_rows}
    assert drawn and drawn <= set(train_reals.tolist())


def test_without_reconstructions_batches_keep_the_paper_layout(tmp_path):
    data = make_prepared(tmp_path / "prep", n_per_cell=4, side=16)
    cfg = train.TrainConfig(batch_size=32, sbi="paper", augment=False, input_size=16, patch=8, recon_share=0.25)
    gen = train.Batches(data, np.where(data.split == "train")[0], cfg)
    assert [lab for _, lab in gen.samples()] == [0] * 16 + [1] * 16
    assert gen.last_recon_rows == []


# ------------------------------------------------------------ folds and the recall figure


def test_the_diffusion_family_holds_out_both_diffusion_sources_and_generators_holds_out_every_generator():
    assert set(train.FAMILIES["diffusion"]) == {"SDFD", "PIXABAY_SD14"}
    cfg = train.TrainConfig(exclude_family=["generators"])
    assert cfg.excluded == {"CELEBA_STYLEGAN", "FFHQ_TPDNE", "SDFD", "PIXABAY_SD14"}
    assert train.TrainConfig(exclude_family=["diffusion"]).excluded == {"SDFD", "PIXABAY_SD14"}
    with pytest.raises(SystemExit):
        _ = train.TrainConfig(exclude_family=["nope"]).excluded


def test_recall_at_five_percent_reals_is_the_share_of_fakes_above_the_95th_percentile_real():
    reals = np.arange(100) / 100.0  # 0.00 .. 0.99
    fakes = np.array([0.5, 0.94, 0.95, 0.96, 0.999])
    y = np.r_[np.zeros(100), np.ones(5)]
    # at most 5 of the 100 reals may be above the threshold: the threshold is the 95th real, 0.94
    assert metrics.recall_at_fpr(y, np.r_[reals, fakes], 0.05) == pytest.approx(3 / 5)
    assert metrics.recall_at_fpr(np.zeros(3), np.zeros(3)) is None
    assert metrics.summary(y, np.r_[reals, fakes], 0.5)["recall_at_5pct_reals"] == pytest.approx(3 / 5)


class IdentityRecon:
    """A 'reconstruction' that is the real crop itself: any difference in the batch comes from augmentation."""

    def __init__(self, data, rows):
        self.data, self.rows = data, np.array(rows)

    def crop(self, row):
        return self.data.crop(int(row))


def test_a_real_and_its_reconstruction_get_the_same_augmentation(tmp_path):
    data = make_prepared(tmp_path / "prep", n_per_cell=4, side=32)
    train_idx = np.where(data.split == "train")[0]
    reals = np.where((data.split == "train") & (data.label == 0))[0]
    cfg = train.TrainConfig(batch_size=16, sbi="paper", augment=True, input_size=16, patch=8, recon_share=0.5)
    gen = train.Batches(data, train_idx, cfg, [IdentityRecon(data, reals)])
    inputs, y = next(iter(gen))
    n_real, n_recon = 8, 4
    for k in range(n_recon):  # same crop, same augmentation, same patch positions: identical views
        np.testing.assert_array_equal(inputs["image"][k], inputs["image"][n_real + k])
        np.testing.assert_array_equal(inputs["patches"][k], inputs["patches"][n_real + k])
    assert y[:n_real].sum() == 0 and y[n_real:n_real + n_recon].min() == 1
    # the other reals are augmented on their own: not all equal to the first pair
    assert any(not np.array_equal(inputs["image"][k], inputs["image"][0]) for k in range(n_recon, n_real))


def test_the_own_autoencoder_trains_checkpoints_resumes_and_refuses_tampered_weights(tmp_path):
    make_prepared(tmp_path / "prep", n_per_cell=2, side=24)
    out = tmp_path / "ae"
    meta = own_ae.train_ae(tmp_path / "prep", out, steps=2, batch=2, patch=16, width=8, save_every=1)
    assert meta["steps"] == 2 and len(meta["history"]) == 2 and meta["train_rows"] == 4  # training reals only
    meta = own_ae.train_ae(tmp_path / "prep", out, steps=1, batch=2, patch=16, width=8, save_every=1)
    assert meta["steps"] == 3  # continued from the checkpoint
    ae = own_ae.load_own(out)
    assert ae.key == "own-" + meta["sha256"][:12] == reconstructions.current_key("own", str(out))
    assert tae.reconstruct_batch(ae, np.zeros((1, 24, 24, 3), np.uint8)).shape == (1, 24, 24, 3)
    weights = out / "autoencoder.weights.h5"
    raw = bytearray(weights.read_bytes())
    raw[-1] ^= 0xFF  # one byte changed
    weights.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="sha256"):
        own_ae.load_own(out)
