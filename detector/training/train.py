"""Train, calibrate and save a detector.

    python -m detector train --data ../shared/data/faces --out runs/model

Faces are cropped once at native resolution (``detector.training.prepare``, cached under ``--prepared``;
fake-only sources get matched real partners there).  A background thread draws batches -- every
(source, label) cell equally often, so no source or class dominates -- and turns each native crop
into the model's two views (``detector.inference.views``) after the robustness augmentations of
``detector.training.augment``.  Self-Blended Images (``detector.training.sbi``) come in three modes:

* ``paper`` (default, Shiohara & Yamasaki 2022): each batch is half real faces, a quarter dataset
  fakes and a quarter SBIs made from the first reals *of the same batch* (pairs), of every source;
  ``--part-prob`` of the blends cover one face part (an eye, the nose, the mouth, the lower face);
* ``legacy`` (model 1.x): ``--sbi-prob`` of the fake slots are whole-face SBIs of random reals;
* ``off``.

The backbone (ImageNet MobileNetV2) and the new layers (artefact branch, head) have their own AdamW
optimisers and learning rates (``--learning-rate``, ``--head-learning-rate``), both with cosine
decay.  ``--adv-eps`` adds adversarial training (``detector.evaluation.attacks``: FGSM with a random start,
Wong et al. 2020, or PGD) on ``--adv-share`` of every batch.  Rows with no face found are left out
of training and validation (``--keep-no-face`` keeps them): the face finder fails more often on
some fakes than on reals, which would make "no face" itself a fake signal.

After each epoch the model is scored on the validation split per source; the best epoch by *mean
per-source* AUC is kept (early stopping), calibrated (temperature on the logit; threshold by
balanced accuracy, raised until no source flags more than 5 % of its validation reals; fitted on all
validation rows, the no-face ones scored on their centre square as the app scores them) and saved
with its card.  ``--exclude-source`` / ``--exclude-family`` leave sources out of training entirely
(leave-one-out runs, ``detector.evaluation.loso``); their rows are scored at the end as ``held_out``.

Every flag can also come from a JSON file (``--config``); flags given on the command line win.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import queue
import random
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..config import CropConfig
from ..evaluation import metrics
from ..inference.views import ViewSpec, cap_native, grid_patches, random_patches, semantic_view
from . import augment, parts, sbi
from .calibration import choose_operating_threshold, fit_temperature, sigmoid
from .data import read_dataset
from .prepare import Prepared, default_prepared_dir, prepare

# Families of manipulation: leave-one-family-out holds out every source of one family.
FAMILIES = {
    "swap": ("DFDC", "LFWSWAP"),
    "composite": ("YONSEI",),
    "gan": ("CELEBA_STYLEGAN", "FFHQ_TPDNE"),
    "diffusion": ("SDFD", "PIXABAY_SD14"),
}
# Folds that are not one family: "generators" holds out every generator-made source (GAN and diffusion)
# while reconstruction fakes stay in training -- can aligned fakes alone find generated images?
FOLDS = {**FAMILIES, "generators": FAMILIES["gan"] + FAMILIES["diffusion"]}
SBI_MODES = ("paper", "legacy", "off")


@dataclass
class TrainConfig:
    data: str = ""
    out: str = "runs/model"
    prepared: str = ""  # default: .cache/prepared/<data folder name>-native<size>
    architecture: str = "dual"
    pretrained: bool = True
    input_size: int = 160
    patch: int = 64
    n_patches: int = 4
    epochs: int = 12
    steps_per_epoch: int = 200
    batch_size: int = 32
    learning_rate: float = 2e-4  # pretrained backbone
    head_learning_rate: float = 1e-3  # layers trained from scratch (artefact branch, head)
    weight_decay: float = 1e-5
    dropout: float = 0.2
    sbi: str = "paper"
    sbi_prob: float = 0.25  # legacy mode: share of fake slots filled with whole-face SBIs
    part_prob: float = 0.5  # paper mode: share of SBIs over one face part (sbi.PART_PROB)
    recon: list[str] = field(default_factory=list)  # autoencoders whose cached reconstructions are fakes
    recon_share: float = 0.25  # share of each batch's fakes that are reconstructions (when ``recon``)
    augment: bool = True
    keep_no_face: bool = False
    adv_eps: float = 0.0  # adversarial training budget, L-inf in 0..255 units (0 = off)
    adv_steps: int = 1  # 1 = FGSM with random start; more = PGD
    adv_share: float = 0.5  # share of each batch replaced by its adversarial version
    patience: int = 4
    exclude_source: list[str] = field(default_factory=list)
    exclude_family: list[str] = field(default_factory=list)
    seed: int = 1234
    version: str = "2.1.0"
    held_out_limit: int = 0  # score at most this many held-out rows (stratified sample; 0 = all)
    lite: bool = True  # also write the TF Lite copy (leave-one-out folds skip it)
    finalize_only: bool = False  # skip training: calibrate and save <out>/best.weights.h5
    init_from: str = ""  # start from this saved model folder's weights (fine-tune / continue a run)

    @property
    def excluded(self) -> set[str]:
        out = set(self.exclude_source)
        for fam in self.exclude_family:
            if fam not in FOLDS:
                raise SystemExit(f"unknown family {fam!r}; choose from {', '.join(FOLDS)}")
            out |= set(FOLDS[fam])
        return out

    @property
    def spec(self) -> ViewSpec:
        return ViewSpec(self.input_size, self.patch, self.n_patches)


def seed_everything(seed: int) -> None:
    import tensorflow as tf

    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)


def views(native: np.ndarray, spec: ViewSpec, rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray]:
    """(160 px view, patches) of one native crop: random patches when ``rng`` is given (training)."""
    capped = cap_native(native, spec.native_max)
    img = semantic_view(capped, spec.input_size)
    pts = random_patches(capped, rng, spec.patch, spec.n_patches) if rng is not None else grid_patches(
        capped, spec.patch, spec.n_patches)
    return img, pts


class Batches:
    """Infinite training batches ``(inputs dict, labels)`` from a :class:`Prepared` set."""

    def __init__(self, data: Prepared, idx: np.ndarray, cfg: TrainConfig, recon: list | None = None):
        self.data, self.cfg, self.spec = data, cfg, cfg.spec
        self.rng = np.random.default_rng(cfg.seed)
        cells: dict[tuple, list[int]] = {}
        for i in idx:
            cells.setdefault((data.source[i], int(data.label[i])), []).append(int(i))
        self.cells = {k: np.array(v) for k, v in sorted(cells.items())}
        self.real_cells = [v for k, v in self.cells.items() if k[1] == 0]
        self.fake_cells = [v for k, v in self.cells.items() if k[1] == 1]
        self.all_cells = list(self.cells.values())
        self.all_labels = [k[1] for k in self.cells]
        self.real_idx = np.array([i for i in idx if data.label[i] == 0])
        # Reconstructions (detector.training.reconstructions) of the training reals among ``idx`` only:
        # per autoencoder, source -> rows, so every source's reals are reconstructed equally often.
        self.recon = []
        self.last_recon_rows: list[int] = []  # the reals whose reconstructions the last batch holds
        self.pair_seeds: dict[int, int] = {}  # batch position -> augmentation seed (a real and its reconstruction share one)
        allowed = set(self.real_idx.tolist()) & set(np.where(data.split == "train")[0].tolist()) if recon else set()
        for r in recon or []:
            by_source: dict[str, list[int]] = {}
            for row in r.rows:
                if int(row) in allowed:
                    by_source.setdefault(str(data.source[row]), []).append(int(row))
            if by_source:
                self.recon.append((r, [np.array(v) for _, v in sorted(by_source.items())]))

    def _pick_recon(self, k: int) -> tuple[int, np.ndarray]:
        """A training real with a cached reconstruction (autoencoders in turn), and that reconstruction."""
        r, cells = self.recon[k % len(self.recon)]
        row = self._pick(cells)
        return row, r.crop(row)

    def _pick(self, cells: list[np.ndarray]) -> int:
        c = cells[int(self.rng.integers(len(cells)))]
        return int(c[int(self.rng.integers(len(c)))])

    def _sbi(self, i: int, part: str | None = None) -> np.ndarray:
        native = self.data.crop(i)
        fake, _ = sbi.self_blend(native, self.data.rows[i]["landmarks"], self.rng, part)
        return fake

    def _finish(self, native: np.ndarray, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Augment and cut the views; items given one ``seed`` get the very same augmentation and patches."""
        rng = self.rng if seed is None else np.random.default_rng(seed)
        if self.cfg.augment:
            native = augment.augment(native, rng, native=True)
        return views(native, self.spec, rng)

    def samples(self) -> list[tuple[np.ndarray, int]]:
        """One batch of (native crop, label) before augmentation."""
        b, cfg = self.cfg.batch_size, self.cfg
        self.pair_seeds = {}
        if cfg.sbi == "paper" and self.real_cells and self.fake_cells:
            n_real = b // 2
            n_recon = int(round(cfg.recon_share * (b - n_real))) if self.recon else 0
            n_sbi = max(0, b // 4 - n_recon)  # reconstructions take SBI slots first; dataset fakes keep theirs
            start = int(self.rng.integers(len(self.recon))) if self.recon else 0
            recon = [self._pick_recon(start + k) for k in range(n_recon)]
            self.last_recon_rows = [row for row, _ in recon]
            # A real and its reconstruction share one augmentation (flip, shrink, blur, JPEG quality, patch
            # positions), so the only difference left between them is the decoder's trace.
            pair = self.rng.integers(0, 2**31, n_recon).tolist()
            self.pair_seeds = {**dict(enumerate(pair)), **{n_real + k: s for k, s in enumerate(pair)}}
            reals = self.last_recon_rows + [self._pick(self.real_cells) for _ in range(n_real - n_recon)]
            out = [(self.data.crop(i), 0) for i in reals]
            out += [(fake, 1) for _, fake in recon]  # pairs: each reconstruction's real is in the batch too
            for i in reals[n_recon:n_recon + n_sbi]:  # pairs: each SBI's real face is in the batch too
                part = str(self.rng.choice(parts.PARTS)) if self.rng.random() < cfg.part_prob else "face"
                out.append((self._sbi(i, part), 1))
            out += [(self.data.crop(self._pick(self.fake_cells)), 1) for _ in range(b - len(out))]
            return out
        out = []
        for _ in range(b):
            c = int(self.rng.integers(len(self.all_cells)))
            label = self.all_labels[c]
            if label == 1 and self.recon and self.rng.random() < cfg.recon_share:
                out.append((self._pick_recon(int(self.rng.integers(len(self.recon))))[1], 1))
            elif label == 1 and cfg.sbi == "legacy" and self.rng.random() < cfg.sbi_prob and len(self.real_idx):
                i = int(self.rng.choice(self.real_idx))
                out.append((self._sbi(i, "face"), 1))
            else:
                cell = self.all_cells[c]
                out.append((self.data.crop(int(cell[int(self.rng.integers(len(cell)))])), label))
        return out

    def __iter__(self):
        while True:
            batch = self.samples()
            seeds = [self.pair_seeds.get(k) for k in range(len(batch))]
            imgs, pts = zip(*(self._finish(n, seed) for (n, _), seed in zip(batch, seeds)))
            y = np.array([lab for _, lab in batch], np.float32)[:, None]
            yield {"image": np.stack(imgs).astype(np.float32), "patches": np.stack(pts).astype(np.float32)}, y


def plot_history(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    ep = [h["epoch"] for h in history]
    ax[0].plot(ep, [h["loss"] for h in history], marker="o")
    ax[0].set(title="training loss", xlabel="epoch")
    for k in history[0]:
        if k.startswith("val_auc_"):
            ax[1].plot(ep, [h[k] for h in history], marker="o", label=k[8:])
    ax[1].set(title="validation AUC", xlabel="epoch", ylim=(0.4, 1.0))
    ax[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_history(history: list[dict], out: Path) -> None:
    with open(out / "history.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(history[0].keys()))
        w.writeheader()
        w.writerows(history)
    plot_history(history, out / "history.png")


def background(batches, depth: int = 3):
    """Yield from ``batches`` as made by a worker thread, so augmentation overlaps the training step.

    The worker's exceptions are re-raised in the consumer; it stops (after the batch it is making)
    and is joined when the consumer is closed.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(message: tuple) -> bool:
        """Hand ``message`` over; False once the consumer has gone (never blocks past that)."""
        while not stop.is_set():
            try:
                q.put(message, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in batches:
                if not put(("item", item)):
                    return
            put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put(("error", exc))

    worker = threading.Thread(target=work, name="fdet-batches", daemon=True)
    worker.start()
    try:
        while True:
            kind, item = q.get()
            if kind == "error":
                raise item
            if kind == "end":
                return
            yield item
    finally:
        stop.set()
        # Joined, not left running: a daemon thread still inside OpenCV when the interpreter
        # finalises is killed through C++ frames and aborts the process.
        worker.join(timeout=120)


def model_feed(model, inputs: dict) -> list:
    """The arrays of ``inputs`` in the order of ``model``'s inputs (a 1.x model takes only ``image``)."""
    return [inputs[t.name.split(":")[0]] for t in model.inputs]


class EvalSet:
    """Fixed inference views (grid patches) of some rows, kept as uint8 and scored in batches."""

    def __init__(self, data: Prepared, idx: np.ndarray, spec: ViewSpec):
        self.idx = np.asarray(idx)
        n = len(self.idx)
        self.image = np.zeros((n, spec.input_size, spec.input_size, 3), np.uint8)
        self.patches = np.zeros((n, spec.n_patches, spec.patch, spec.patch, 3), np.uint8)
        for k, i in enumerate(self.idx):
            self.image[k], self.patches[k] = views(data.crop(int(i)), spec, None)
        self.y = data.label[self.idx]
        self.source = data.source[self.idx]

    def logits(self, logit_model, batch: int = 64) -> np.ndarray:
        out = []
        for s in range(0, len(self.idx), batch):
            feed = {"image": self.image[s:s + batch].astype(np.float32),
                    "patches": self.patches[s:s + batch].astype(np.float32)}
            out.append(np.asarray(logit_model(model_feed(logit_model, feed), training=False)).reshape(-1))
        return np.concatenate(out) if out else np.zeros((0,), np.float32)


def mean_source_auc(y: np.ndarray, z: np.ndarray, sources: np.ndarray, include: set[str]) -> tuple[float, dict]:
    per = {s: metrics.auc(y[sources == s], z[sources == s]) for s in sorted(set(sources.tolist()))}
    used = [v for s, v in per.items() if s in include and v is not None]
    return float(np.mean(used)) if used else float("nan"), per


class Trainer:
    """One compiled training step: two AdamW optimisers (backbone / new layers), optional adversarial batch."""

    def __init__(self, model, cfg: TrainConfig, total_steps: int):
        import keras
        import tensorflow as tf

        self.model, self.cfg = model, cfg
        self.logit_model = keras.Model(model.inputs, model.get_layer("logit").output)
        backbone = [v for layer in model.layers if layer.name.startswith("features_") for v in layer.trainable_weights]
        ids = {id(v) for v in backbone}
        rest = [v for v in model.trainable_weights if id(v) not in ids]
        self.groups = [(g, keras.optimizers.AdamW(keras.optimizers.schedules.CosineDecay(lr, total_steps),
                                                  weight_decay=cfg.weight_decay))
                       for g, lr in ((backbone, cfg.learning_rate), (rest, cfg.head_learning_rate)) if g]
        for g, opt in self.groups:
            opt.build(g)
        self.variables = [v for g, _ in self.groups for v in g]
        self._step = tf.function(self._train_step, reduce_retracing=True)

    def _loss(self, xs, y, training: bool):
        import tensorflow as tf

        z = self.logit_model(xs, training=training)
        return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=z)), z

    def _train_step(self, xs, y):
        import tensorflow as tf

        if self.cfg.adv_eps > 0:
            from ..evaluation.attacks import adversarial_batch

            xs = adversarial_batch(lambda v: self.logit_model(v, training=False), xs, y, self.cfg.adv_eps,
                                   self.cfg.adv_steps, self.cfg.adv_share)
        with tf.GradientTape() as tape:
            loss, z = self._loss(xs, y, True)
        grads = tape.gradient(loss, self.variables)
        k = 0
        for g, opt in self.groups:
            opt.apply(grads[k:k + len(g)], g)
            k += len(g)
        return loss, z

    def step(self, feed: list, y: np.ndarray) -> tuple[float, np.ndarray]:
        import tensorflow as tf

        loss, z = self._step([tf.convert_to_tensor(a) for a in feed], tf.convert_to_tensor(y))
        return float(loss), np.asarray(z).reshape(-1)


def fit(model, cfg: TrainConfig, data: Prepared, train_idx, val: EvalSet, included: set[str],
        out: Path, recon: list | None = None) -> tuple[float, int]:
    """The epoch loop: balanced batches, validation per source, best checkpoint, early stopping."""
    import keras

    trainer = Trainer(model, cfg, cfg.epochs * cfg.steps_per_epoch)
    batches = background(iter(Batches(data, train_idx, cfg, recon)))
    history: list[dict] = []
    best, best_epoch, wait = -1.0, -1, 0
    ckpt = out / "best.weights.h5"
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.time()
        print(f"epoch {epoch}/{cfg.epochs}", flush=True)
        bar = keras.utils.Progbar(cfg.steps_per_epoch, verbose=1 if sys.stdout.isatty() else 2,
                                  stateful_metrics=["loss"])
        ys, zs, losses = [], [], []
        for step in range(cfg.steps_per_epoch):
            inputs, y = next(batches)
            loss, z = trainer.step(model_feed(model, inputs), y)
            losses.append(loss)
            ys.append(y.reshape(-1))
            zs.append(z)
            bar.update(step + 1, [("loss", float(np.mean(losses[-20:])))])
        train_auc = metrics.auc(np.concatenate(ys), np.concatenate(zs))
        z = val.logits(trainer.logit_model)
        score, per = mean_source_auc(val.y, z, val.source, included)
        row = {"epoch": epoch, "loss": float(np.mean(losses)), "train_auc": train_auc,
               "val_mean_source_auc": score, **{f"val_auc_{s}": v for s, v in per.items()},
               "seconds": round(time.time() - t0, 1)}
        history.append(row)
        print(json.dumps(row), flush=True)
        write_history(history, out)  # every epoch, so a stopped run keeps its record
        if best_epoch < 0 or score > best:  # nan (one class in val) still keeps the first epoch
            best, best_epoch, wait = score, epoch, 0
            model.save_weights(ckpt)
        else:
            wait += 1
            if wait >= cfg.patience:
                print(f"early stop: no gain in mean source AUC for {cfg.patience} epochs", flush=True)
                break
    batches.close()  # stops the worker thread
    return best, best_epoch


def load_recon(cfg: TrainConfig, data: Prepared, prepared: Path) -> list:
    """The reconstruction caches ``cfg.recon`` names (an autoencoder's name or a cache folder)."""
    from .reconstructions import Reconstructions, find_cache

    out = []
    for name in cfg.recon:
        folder = find_cache(prepared, name)
        r = Reconstructions(folder, data)
        if not len(r):
            raise SystemExit(f"{folder} has no usable reconstructions (python -m detector reconstruct)")
        print(f"reconstruction fakes: {r.name} ({r.key}), {len(r)} training reals"
              + (f", {r.stale} stale entries ignored" if r.stale else ""), flush=True)
        out.append(r)
    return out


def init_weights(model, cfg: TrainConfig) -> None:
    """Copy the weights of the saved model ``cfg.init_from`` into ``model``, undoing its folded temperature."""
    from ..inference.bundle import load_bundle
    from .model import fold_temperature

    src, card = load_bundle(cfg.init_from)
    if (card.architecture, card.input_size) != (cfg.architecture, cfg.input_size):
        raise SystemExit(f"--init-from {cfg.init_from} is {card.architecture}@{card.input_size}; "
                         f"this run is {cfg.architecture}@{cfg.input_size}")
    model.set_weights(src.get_weights())
    fold_temperature(model, 1.0 / card.temperature)  # back to the uncalibrated logit
    print(f"initialised from {cfg.init_from} (version {card.version})", flush=True)


def calibration_rows(data: Prepared, cfg: TrainConfig) -> np.ndarray:
    """Validation rows of the trained sources *with* the no-face ones: the app (and ``evaluate``) score a
    photo without a face on its centre square, so temperature and threshold are fitted on what it scores."""
    return np.where((data.split == "val") & ~np.isin(data.source, list(cfg.excluded)))[0]


def select_rows(data: Prepared, cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, held-out) row indices: no-face rows out unless kept; excluded sources held out."""
    usable = data.face_found | cfg.keep_no_face
    held = np.isin(data.source, list(cfg.excluded))
    train_idx = np.where((data.split == "train") & ~held & usable)[0]
    cal_idx = calibration_rows(data, cfg)
    val_idx = cal_idx[usable[cal_idx]]  # model selection: the calibration rows that have a face
    held_idx = np.where(held & usable)[0]
    if cfg.held_out_limit and len(held_idx) > cfg.held_out_limit:  # a stratified random sample, per source x label
        rng = np.random.default_rng(cfg.seed)
        cells = {}
        for i in held_idx:
            cells.setdefault((data.source[i], data.label[i]), []).append(i)
        share = cfg.held_out_limit / len(held_idx)
        held_idx = np.sort(np.concatenate([rng.permutation(v)[:max(1, int(round(share * len(v))))]
                                           for v in cells.values()]))
    return train_idx, val_idx, held_idx


def train(cfg: TrainConfig) -> Path:
    from ..inference.bundle import ModelConfig
    from . import artefact
    from .export import save_bundle
    from .model import build_model, fold_temperature

    if cfg.sbi not in SBI_MODES:
        raise SystemExit(f"--sbi must be one of {', '.join(SBI_MODES)}")
    seed_everything(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    prepared = Path(cfg.prepared) if cfg.prepared else default_prepared_dir(cfg.data)
    if not (prepared / "index.csv").is_file():
        prepare(read_dataset(cfg.data), prepared)
    data = Prepared(prepared)
    train_idx, val_idx, held_idx = select_rows(data, cfg)
    excluded = cfg.excluded
    included = set(data.source[train_idx].tolist())
    print(f"train rows {len(train_idx)}, val rows {len(val_idx)}, held-out rows {len(held_idx)} "
          f"(left out: {sorted(excluded) or 'none'}; no-face rows {'kept' if cfg.keep_no_face else 'dropped'}: "
          f"{int((~data.face_found).sum())})", flush=True)
    val = EvalSet(data, val_idx, cfg.spec)

    model, cam_layer = build_model(cfg.architecture, cfg.input_size, cfg.pretrained, cfg.dropout,
                                   patch=cfg.patch, n_patches=cfg.n_patches)
    if cfg.init_from:
        init_weights(model, cfg)
    ckpt = out / "best.weights.h5"
    best, best_epoch = float("nan"), -1
    if not cfg.finalize_only:
        best, best_epoch = fit(model, cfg, data, train_idx, val, included, out, load_recon(cfg, data, prepared))
    elif not ckpt.is_file():
        raise SystemExit(f"--finalize-only needs {ckpt}")
    elif (out / "history.csv").is_file():  # the stopped run's record says which epoch the checkpoint is
        with open(out / "history.csv", newline="") as f:
            hist = [r for r in csv.DictReader(f) if r["val_mean_source_auc"] not in ("", "nan")]
        if hist:
            top = max(hist, key=lambda r: float(r["val_mean_source_auc"]))
            best, best_epoch = float(top["val_mean_source_auc"]), int(top["epoch"])
    model.load_weights(ckpt)
    import keras

    logit_model = keras.Model(model.inputs, model.get_layer("logit").output)
    cal_idx = calibration_rows(data, cfg)
    cal = val if np.array_equal(cal_idx, val_idx) else EvalSet(data, cal_idx, cfg.spec)
    z = cal.logits(logit_model)
    temperature = fit_temperature(z, cal.y)
    p = sigmoid(z / temperature)
    threshold, why = choose_operating_threshold(p, cal.y, list(cal.source))
    fold_temperature(model, temperature)
    val_metrics = metrics.per_source(cal.y, p, list(cal.source), threshold)
    result = {"best_epoch": best_epoch, "val_mean_source_auc": best, "temperature": temperature,
              "threshold": threshold, "threshold_choice": why, "val": val_metrics,
              "rows": {"train": int(len(train_idx)), "val": int(len(val_idx)), "calibration": int(len(cal_idx)),
                       "held_out": int(len(held_idx)),
                       "no_face_dropped": 0 if cfg.keep_no_face else int((~data.face_found).sum())}}
    if len(held_idx):
        held = EvalSet(data, held_idx, cfg.spec)
        ph = sigmoid(held.logits(logit_model))  # the temperature is folded into the logit layer now
        result["held_out"] = metrics.per_source(held.y, ph, list(held.source), threshold)
        for fam in cfg.exclude_family:
            m = np.isin(held.source, FOLDS[fam])
            result.setdefault("held_out_family", {})[fam] = metrics.summary(held.y[m], ph[m], threshold)
    is_dual = len(model.inputs) == 2
    card = ModelConfig(
        name="fdet-dual" if is_dual else f"fdet-{cfg.architecture}",
        version=cfg.version, architecture=cfg.architecture, input_size=cfg.input_size, threshold=threshold,
        temperature=temperature, cam_layer=cam_layer, crop_margin=CropConfig().margin,
        inputs=[t.name.split(":")[0] for t in model.inputs], patch=cfg.patch, n_patches=cfg.n_patches,
        native_max=cfg.spec.native_max, artefact_layer=artefact.FEATURE_LAYER if is_dual else "",
        map_layers=[cam_layer, artefact.FEATURE_LAYER] if is_dual else [cam_layer],
        trained_on=str(cfg.data), metrics=result, training=asdict(cfg),
    )
    save_bundle(model, card, out, lite=cfg.lite)
    ckpt.unlink(missing_ok=True)
    (out / "train_result.json").write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k not in ("val", "held_out")}, indent=2))
    print("validation AUC per source:", {s: round(m["auc"], 4) for s, m in val_metrics.items() if m["auc"]})
    return out


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    d = TrainConfig()
    p = argparse.ArgumentParser(prog="python -m detector train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="JSON file with any of the options below (flags override it)")
    p.add_argument("--data", help="manifest CSV, folder with manifest.csv, or folder with real/ and fake/")
    p.add_argument("--out", help=f"output model folder (default {d.out})")
    p.add_argument("--prepared", help="crop cache folder (default .cache/prepared/<data>-native256)")
    p.add_argument("--architecture", choices=["dual", "mobilenetv2", "small_cnn", "efficientnetv2b0", "dual_small"],
                   help=f"network (default {d.architecture}: MobileNetV2 on the 160 px view + native artefact branch)")
    p.add_argument("--no-pretrained", dest="pretrained", action="store_const", const=False,
                   help="train MobileNetV2 from scratch instead of ImageNet weights")
    p.add_argument("--input-size", type=int, help=f"semantic view size in pixels (default {d.input_size})")
    p.add_argument("--patch", type=int, help=f"native patch side, a multiple of 8 (default {d.patch})")
    p.add_argument("--n-patches", type=int, help=f"native patches per face, a square number (default {d.n_patches})")
    p.add_argument("--epochs", type=int, help=f"maximum epochs (default {d.epochs})")
    p.add_argument("--steps-per-epoch", type=int, help=f"batches per epoch (default {d.steps_per_epoch})")
    p.add_argument("--batch-size", type=int, help=f"batch size (default {d.batch_size})")
    p.add_argument("--learning-rate", type=float, help=f"peak AdamW learning rate of the pretrained backbone, cosine decay (default {d.learning_rate})")
    p.add_argument("--head-learning-rate", type=float, help=f"peak learning rate of the layers trained from scratch (default {d.head_learning_rate})")
    p.add_argument("--weight-decay", type=float, help=f"AdamW weight decay (default {d.weight_decay})")
    p.add_argument("--dropout", type=float, help=f"dropout before the logit (default {d.dropout})")
    p.add_argument("--sbi", choices=SBI_MODES, help=f"Self-Blended Images: paper (pairs, half the fakes), legacy (1.x) or off (default {d.sbi})")
    p.add_argument("--sbi-prob", type=float, help=f"legacy mode: share of fake slots filled with SBIs (default {d.sbi_prob})")
    p.add_argument("--part-prob", type=float, help=f"paper mode: share of SBIs that blend one face part (default {d.part_prob})")
    p.add_argument("--no-augment", dest="augment", action="store_const", const=False, help="turn robustness augmentations off")
    p.add_argument("--keep-no-face", action="store_const", const=True, help="train on rows where no face was found (scored on the centre square)")
    p.add_argument("--adv-eps", type=float, help=f"adversarial training: L-inf budget in 0..255 units, e.g. 2 (default {d.adv_eps}: off)")
    p.add_argument("--adv-steps", type=int, help=f"adversarial steps: 1 = FGSM with random start, more = PGD (default {d.adv_steps})")
    p.add_argument("--adv-share", type=float, help=f"share of each batch replaced by adversarial examples (default {d.adv_share})")
    p.add_argument("--patience", type=int, help=f"early-stopping patience in epochs (default {d.patience})")
    p.add_argument("--exclude-source", action="append", help="leave this source out of training (repeatable)")
    p.add_argument("--exclude-family", action="append", help=f"leave a family out of training: {', '.join(FOLDS)} (repeatable)")
    p.add_argument("--recon", action="append", help="aligned reconstruction fakes from this autoencoder's cache "
                   "(taef2, own, or a cache folder; repeatable; python -m detector reconstruct makes them)")
    p.add_argument("--recon-share", type=float, help=f"share of each batch's fakes that are reconstructions (default {d.recon_share})")
    p.add_argument("--seed", type=int, help=f"random seed (default {d.seed})")
    p.add_argument("--finalize-only", action="store_const", const=True,
                   help="skip training; calibrate and save the checkpoint <out>/best.weights.h5 (after a stopped run)")
    p.add_argument("--held-out-limit", type=int, help="score a stratified random sample of at most this many "
                   "held-out rows (default: all)")
    p.add_argument("--no-lite", dest="lite", action="store_const", const=False,
                   help="do not write the TF Lite copy (faster; leave-one-out folds)")
    p.add_argument("--init-from", help="saved model folder to start from (continue or fine-tune a run)")
    p.add_argument("--version", help=f"model version written to the card (default {d.version})")
    a = p.parse_args(argv)
    values = asdict(d)
    if a.config:
        values.update(json.loads(Path(a.config).read_text()))
    values.update({k: v for k, v in vars(a).items() if v is not None and k != "config"})
    cfg = TrainConfig(**values)
    if not cfg.data:
        p.error("--data is required (or 'data' in --config)")
    if not Path(cfg.data).exists():
        raise SystemExit(f"python -m detector train: no data at {cfg.data}: give --data (make train DATA=...) a manifest "
                         "CSV or a folder with real/ and fake/ below it; see docs/model-and-training.md")
    return cfg


def main(argv: list[str] | None = None) -> None:
    train(parse_args(argv))


if __name__ == "__main__":
    main()
