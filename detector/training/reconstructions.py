"""Aligned decoder-reconstruction fakes, made once and cached next to the prepared crops.

    python -m detector reconstruct --prepared .cache/prepared/faces-native256 --autoencoder taef2 --per-source 400

Every latent-diffusion image leaves its generator through a VAE decoder.  A real training crop passed
through such an encoder/decoder comes back carrying that decoder's trace on exactly the same content
(Rajan et al., ICLR 2025, "On the Effectiveness of Dataset Alignment for Fake Image Detection"; the
AutoGAN simulator of Zhang et al., 2019): "real vs its own reconstruction" teaches the trace and
nothing else.  Training draws these as a share of each batch's fakes, paired with their real crop in
the same batch (``detector.training.train``), at native resolution so the artefact branch sees them.

Only **training reals with a face** are reconstructed, never a validation row: a model must not be
selected or calibrated on pairs whose real half it trained on.  The cache lives in
``<prepared>/recon/<autoencoder key>/`` (the key names the weights, so two autoencoders -- or two
trainings of one -- never share a cache) and is keyed by crop: each entry records the SHA-1 of the crop
it was made from, and a crop that changed (``prepare`` run again) is not used.  Building is resumable:
entries are written in chunks, and a stopped run continues where it stopped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from .prepare import Prepared

CHUNK = 64  # crops per chunk file
AUTOENCODERS = ("taef2", "own")


def crop_key(crop: np.ndarray) -> str:
    """The identity of a crop's pixels (and size)."""
    h = hashlib.sha1(np.ascontiguousarray(crop).tobytes())
    h.update(str(crop.shape).encode())
    return h.hexdigest()[:16]


def cache_dir(prepared_dir: str | Path, ae_key: str) -> Path:
    return Path(prepared_dir) / "recon" / ae_key


def eligible_rows(data: Prepared, per_source: int = 0, seed: int = 0) -> np.ndarray:
    """Training reals with a face, at most ``per_source`` of each source (a seeded random choice; 0 = all)."""
    return reals_per_source(data, "train", per_source, seed)


def reals_per_source(data: Prepared, split: str, per_source: int = 0, seed: int = 0) -> np.ndarray:
    """Reals of ``split`` with a face, at most ``per_source`` of each source (a seeded random choice; 0 = all)."""
    idx = np.where((data.split == split) & (data.label == 0) & data.face_found)[0]
    if not per_source:
        return idx
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(idx[data.source[idx] == s])[:per_source] for s in sorted(set(data.source[idx].tolist()))]
    return np.sort(np.concatenate(keep)) if keep else idx


def build(data: Prepared, ae, rows: np.ndarray, out: Path, batch: int = 8) -> Path:
    """Reconstruct ``rows`` of ``data`` with ``ae`` into ``out`` (resumable; validation rows refused)."""
    from .tae import reconstruct_batch

    rows = np.asarray(rows)
    bad = rows[(data.split[rows] != "train") | (data.label[rows] != 0)]
    if len(bad):
        raise ValueError(f"only training reals are reconstructed; rows {bad[:5].tolist()} are not")
    out.mkdir(parents=True, exist_ok=True)
    meta_path = out / "autoencoder.json"
    meta = {"name": ae.name, "key": ae.key, "native_max": int(data.native.shape[1])}
    if meta_path.is_file() and json.loads(meta_path.read_text())["key"] != ae.key:
        raise ValueError(f"{out} holds reconstructions of another autoencoder")
    meta_path.write_text(json.dumps(meta, indent=2))
    done = {int(r) for f in sorted(out.glob("chunk-*.npz")) for r in np.load(f)["rows"]}
    todo = [int(r) for r in rows if int(r) not in done]
    n_chunk = len(list(out.glob("chunk-*.npz")))
    t0 = time.time()
    for c in range(0, len(todo), CHUNK):
        ids = todo[c:c + CHUNK]
        crops = [data.crop(i) for i in ids]
        recon = np.zeros((len(ids), data.native.shape[1], data.native.shape[2], 3), np.uint8)
        # one call per crop size (sizes vary by source); same-size crops go through together
        by_side: dict[int, list[int]] = {}
        for k, crop in enumerate(crops):
            by_side.setdefault(crop.shape[0], []).append(k)
        for side, ks in by_side.items():
            for s in range(0, len(ks), batch):
                part = ks[s:s + batch]
                recon[part, :side, :side] = reconstruct_batch(ae, np.stack([crops[k] for k in part]))
        np.savez(out / f"chunk-{n_chunk:05d}.npz", rows=np.array(ids, np.int64),
                 keys=np.array([crop_key(x) for x in crops]), sides=np.array([x.shape[0] for x in crops]),
                 crops=recon)
        n_chunk += 1
        rate = (c + len(ids)) / max(time.time() - t0, 1e-6)
        print(f"{ae.name}: {len(done) + c + len(ids)}/{len(done) + len(todo)} crops, {rate:.1f}/s", flush=True)
    return out


class Reconstructions:
    """The cached reconstructions of one autoencoder for a prepared set: ``rows`` and ``crop(row)``."""

    def __init__(self, folder: str | Path, data: Prepared):
        folder = Path(folder)
        meta = json.loads((folder / "autoencoder.json").read_text())
        self.name, self.key = meta["name"], meta["key"]
        self._crops: dict[int, np.ndarray] = {}
        stale = 0
        for f in sorted(folder.glob("chunk-*.npz")):
            z = np.load(f)
            for r, key, side, crop in zip(z["rows"], z["keys"], z["sides"], z["crops"]):
                r = int(r)
                if r >= len(data) or data.split[r] != "train" or data.label[r] != 0 or crop_key(data.crop(r)) != key:
                    stale += 1  # prepared again since, or not a training real: never used
                    continue
                self._crops[r] = np.array(crop[:side, :side])
        self.stale = stale
        self.rows = np.array(sorted(self._crops), np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def crop(self, row: int) -> np.ndarray:
        return self._crops[int(row)]


def current_key(name: str, weights: str = "") -> str:
    """The cache key of autoencoder ``name``'s current weights, without building the network."""
    if name == "taef2":
        from .tae import DEFAULT_DIR, sha256, weights_key

        folder = Path(weights or DEFAULT_DIR)
        return weights_key(sha256(folder / "taef2_encoder.pth"), sha256(folder / "taef2_decoder.pth"))
    if name == "own":
        from .own_ae import DEFAULT_DIR as OWN_DIR
        from .own_ae import weights_key

        return weights_key(json.loads((Path(weights or OWN_DIR) / "autoencoder.json").read_text())["sha256"])
    raise SystemExit(f"unknown autoencoder {name!r}; choose from {', '.join(AUTOENCODERS)}")


def find_cache(prepared_dir: str | Path, name_or_folder: str) -> Path:
    """A cache folder given as itself, or the cache of an autoencoder's *current* weights given by name."""
    p = Path(name_or_folder)
    if (p / "autoencoder.json").is_file():
        return p
    folder = cache_dir(prepared_dir, current_key(name_or_folder))
    if not (folder / "autoencoder.json").is_file():
        raise SystemExit(f"no {name_or_folder} reconstructions in {folder}: run python -m detector reconstruct "
                         f"--prepared {prepared_dir} --autoencoder {name_or_folder}")
    return folder


def load_autoencoder(name: str, weights: str = ""):
    """``taef2`` (``weights``: its folder) or ``own`` (``weights``: the trained autoencoder's folder)."""
    if name == "taef2":
        from .tae import DEFAULT_DIR, load_taef2

        return load_taef2(weights or DEFAULT_DIR)
    if name == "own":
        from .own_ae import DEFAULT_DIR as OWN_DIR
        from .own_ae import load_own

        return load_own(weights or OWN_DIR)
    raise SystemExit(f"unknown autoencoder {name!r}; choose from {', '.join(AUTOENCODERS)}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m detector reconstruct", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prepared", required=True, help="prepared crop folder (python -m detector prepare)")
    p.add_argument("--autoencoder", choices=AUTOENCODERS, default="taef2",
                   help="taef2: the tiny FLUX.2 autoencoder; own: the latent-diffusion-shaped one this project trains")
    p.add_argument("--weights", default="", help="autoencoder weights folder (default: ../shared/weights/taef2 "
                   "or assets/autoencoder)")
    p.add_argument("--per-source", type=int, default=0, help="at most this many training reals per source (0 = all)")
    p.add_argument("--batch", type=int, default=8, help="crops per autoencoder call")
    p.add_argument("--seed", type=int, default=0, help="seed of the per-source choice")
    a = p.parse_args(argv)
    data = Prepared(a.prepared)
    try:
        ae = load_autoencoder(a.autoencoder, a.weights)
    except FileNotFoundError as exc:  # one sentence, not a traceback
        raise SystemExit(str(exc)) from None
    rows = eligible_rows(data, a.per_source, a.seed)
    out = build(data, ae, rows, cache_dir(a.prepared, ae.key), a.batch)
    print(json.dumps({"autoencoder": ae.name, "key": ae.key, "folder": str(out), "rows": int(len(rows))}))


if __name__ == "__main__":
    main()
