"""White-box L-inf attacks on the model's inputs (0..255 pixel units) and adversarial training batches.

FGSM (Goodfellow et al. 2015) takes one step of size ``eps`` along the sign of the input gradient;
PGD (Madry et al. 2018) takes ``steps`` steps of ``eps / 4`` from a random start inside the ball,
projecting back after each.  Both work on a *list* of input tensors (the model's image and patches)
and keep every pixel inside ``[x - eps, x + eps]`` and ``[0, 255]``.

"Fast adversarial training" (Wong et al., ICLR 2020) is FGSM with a random start and a step of
``1.25 * eps``: nearly as robust as PGD training at the cost of one extra forward/backward pass.
"""

from __future__ import annotations

import tensorflow as tf


def _loss(logit_fn, xs, y):
    z = logit_fn(xs)
    return tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.reshape(y, tf.shape(z)), logits=z))


def _project(xs, x0s, eps):
    return [tf.clip_by_value(tf.clip_by_value(x, x0 - eps, x0 + eps), 0.0, 255.0) for x, x0 in zip(xs, x0s)]


def linf_attack(logit_fn, xs, y, eps: float, steps: int = 1, step_size: float | None = None,
                random_start: bool = True, seed: int | None = None):
    """Inputs that raise the loss of labels ``y`` within an L-inf ball of ``eps`` (0..255 units).

    ``steps`` 1 with ``step_size`` None is FGSM (step ``eps``, from ``x`` itself unless
    ``random_start``); more steps are PGD with step ``eps / 4`` by default.
    """
    eps = float(eps)
    x0s = [tf.convert_to_tensor(x, tf.float32) for x in xs]
    if step_size is None:
        step_size = eps if steps == 1 and not random_start else (1.25 * eps if steps == 1 else eps / 4.0)
    if random_start:
        gen = tf.random.get_global_generator() if seed is None else tf.random.Generator.from_seed(seed)
        adv = _project([x + gen.uniform(tf.shape(x), -eps, eps) for x in x0s], x0s, eps)
    else:
        adv = list(x0s)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            tape.watch(adv)
            loss = _loss(logit_fn, adv, y)
        grads = tape.gradient(loss, adv)
        adv = _project([a + step_size * tf.sign(g) for a, g in zip(adv, grads)], x0s, eps)
    return [tf.stop_gradient(a) for a in adv]


def adversarial_rows(y, share: float):
    """Row indices to attack: a random ``share`` of each class (rounded up), so both classes get it.

    Stratified on purpose: training batches are ordered (reals first), and attacking only the first
    rows once meant only reals were ever perturbed -- the model then learns "perturbation noise
    means real", which helps a forger and costs the clean model (the failed fine-tune in the card).
    """
    y = tf.reshape(tf.cast(y, tf.float32), [-1])
    u = tf.random.get_global_generator().uniform(tf.shape(y))
    same = tf.cast(tf.equal(y[:, None], y[None, :]), tf.float32)
    rank = tf.reduce_sum(same * tf.cast(u[None, :] < u[:, None], tf.float32), axis=1)  # within its class
    quota = tf.math.ceil(share * tf.reduce_sum(same, axis=1))
    return tf.where(rank < quota)[:, 0]


def adversarial_batch(logit_fn, xs, y, eps: float, steps: int = 1, share: float = 0.5):
    """``xs`` with a random ``share`` of each class's rows replaced by adversarial versions (training).

    Rows keep their places and labels; see :func:`adversarial_rows`.  One step is FGSM with a random
    start (step ``1.25 * eps``, Wong et al.); more are PGD with step ``2.5 * eps / steps`` (Madry et
    al.), so that even a 2- or 3-step attack can cross the whole ball.
    """
    pick = adversarial_rows(y, share)
    head = [tf.gather(x, pick) for x in xs]
    step = None if steps == 1 else 2.5 * float(eps) / steps
    adv = linf_attack(logit_fn, head, tf.gather(y, pick), eps, steps, step_size=step, random_start=True)
    return [tf.tensor_scatter_nd_update(x, pick[:, None], a) for a, x in zip(adv, xs)]


# ---------------------------------------------------------------------- the decision path, differentiable
#
# A user's face reaches the model as its native crop (<= NATIVE_MAX px, not resized), from which the
# 160 px view (OpenCV area averaging or bilinear up-scaling) and the native patches (plain slices)
# are cut.  Both are *linear* maps of the crop's pixels, and OpenCV's resize is separable, so each is
# ``A @ X @ B`` with small matrices read off OpenCV itself (resize the identity).  The attack below
# therefore differentiates the exact path the app runs -- crop pixels -> views -> network -- with no
# approximation of the resize (no BPDA needed), and the attacked crop is then re-quantised to uint8
# and scored by the real NumPy/OpenCV path (``detector.inference.views``) as a saved file would be.


def resize_matrix(side: int, size: int, canvas: int):
    """(size, canvas) matrix M with ``M @ x[:canvas]`` == OpenCV's resize of a length-``side`` signal to ``size``."""
    import cv2
    import numpy as np

    eye = np.eye(side, dtype=np.float32)
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    m = cv2.resize(eye, (side, size), interpolation=interp) if side != size else eye
    out = np.zeros((size, canvas), np.float32)
    out[:, :side] = m
    return out


def slice_matrices(side: int, patch: int, n: int, canvas: int):
    """(n, patch, canvas) row selectors and column selectors of the grid patches of a ``side`` crop."""
    import numpy as np

    from ..inference.views import grid_positions

    if side < patch:
        raise ValueError("crops smaller than a patch are padded by reflection; attack them unpadded")
    rows = np.zeros((n, patch, canvas), np.float32)
    cols = np.zeros((n, patch, canvas), np.float32)
    for k, (x, y) in enumerate(grid_positions(side, patch, n)):
        rows[k, np.arange(patch), y + np.arange(patch)] = 1.0
        cols[k, np.arange(patch), x + np.arange(patch)] = 1.0
    return rows, cols


class DecisionPath:
    """Native crops (B, canvas, canvas, 3) -> the model's input list, differentiably, for given crop sides."""

    def __init__(self, sides, spec, inputs: list[str], canvas: int):
        import numpy as np

        self.inputs, self.canvas = inputs, canvas
        self.r = tf.constant(np.stack([resize_matrix(int(s), spec.input_size, canvas) for s in sides]))
        if "patches" in inputs:
            sel = [slice_matrices(int(s), spec.patch, spec.n_patches, canvas) for s in sides]
            self.rows = tf.constant(np.stack([a for a, _ in sel]))
            self.cols = tf.constant(np.stack([b for _, b in sel]))

    def __call__(self, x):
        image = tf.einsum("bic,bcdk,bjd->bijk", self.r, x, self.r)
        out = {"image": image}
        if "patches" in self.inputs:
            out["patches"] = tf.einsum("bnic,bcdk,bnjd->bnijk", self.rows, x, self.cols)
        return [out[name] for name in self.inputs]


def attack_crops(logit_fn, natives, sides, y, spec, inputs: list[str], eps: float, steps: int,
                 only_fakes: bool = False, seed: int = 0):
    """Attacked native crops (uint8, same canvas): FGSM (``steps`` 0) or PGD-``steps`` (step eps/4, random start).

    Each crop is pushed away from its own label (reals towards fake, fakes towards real); with
    ``only_fakes`` the reals are returned untouched (the forger's evasion).  Pixels outside a crop's
    ``side`` are never changed.
    """
    import numpy as np

    canvas = natives.shape[1]
    path = DecisionPath(sides, spec, inputs, canvas)
    x0 = tf.constant(natives, tf.float32)
    valid = np.zeros(natives.shape[:3] + (1,), np.float32)
    for b, s in enumerate(sides):
        valid[b, :s, :s] = 1.0
    if only_fakes:
        valid *= np.asarray(y, np.float32).reshape(-1, 1, 1, 1)
    valid = tf.constant(valid)
    yt = tf.constant(np.asarray(y, np.float32).reshape(-1, 1))

    def fn(v):
        return logit_fn(path(v[0]))

    if steps <= 0:
        adv = linf_attack(fn, [x0], yt, eps * 1.0, steps=1, step_size=eps, random_start=False)[0]
    else:
        adv = linf_attack(fn, [x0], yt, eps, steps=steps, step_size=eps / 4.0, random_start=True, seed=seed)[0]
    adv = (x0 + (adv - x0) * valid).numpy()
    # saved as a file would be: whole pixel levels, still inside the budget and the 0..255 range
    lo, hi = np.ceil(natives - eps - 1e-6), np.floor(natives.astype(np.float64) + eps + 1e-6)
    return np.clip(np.clip(np.rint(adv), lo, hi), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------- the attack table of `evaluate --attacks`

ATTACKS = ("fgsm", "pgd10")
MODES = ("both", "fakes")  # both classes attacked, or only the fakes (the forger's evasion)


def _logit_fn(model):
    import keras

    head = keras.Model(model.inputs, model.get_layer("logit").output)
    return lambda xs: head(xs, training=False)


def _canvas(crops: list, canvas: int):
    import numpy as np

    out = np.zeros((len(crops), canvas, canvas, 3), np.uint8)
    for b, c in enumerate(crops):
        out[b, :c.shape[0], :c.shape[1]] = c
    return out


def attack_rows(y, sources, sides, per_class: int, patch: int, seed: int = 0) -> list[int]:
    """Up to ``per_class`` reals and fakes per source (crops at least one patch wide), drawn at random."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = []
    for src in sorted(set(sources.tolist())):
        for label in (0, 1):
            cand = np.where((sources == src) & (y == label) & (np.asarray(sides) >= patch))[0]
            rows += sorted(rng.permutation(cand)[:per_class].tolist())
    return rows


def attack_table(model, cfg, classifier, crops, y, sources, eps=(1, 2, 4, 8), per_class: int = 60,
                 transfer_from: str = "", steps: int = 10, batch: int = 24, seed: int = 0) -> dict:
    """AUC and fakes caught at the threshold under FGSM and PGD, per source, on the served model.

    Gradients come from ``model`` (the Keras twin of what is served); every attacked crop is rounded
    to uint8 and scored by ``classifier`` (the served engine, TF Lite when valid) through the real
    NumPy/OpenCV views.  Rows: ``per_class`` reals and fakes per source.  Also: the same crops after
    JPEG quality 90 (re-saved), and a transfer attack crafted on ``transfer_from`` (a differently
    seeded model) when given.
    """
    import numpy as np
    from tqdm import tqdm

    from ..inference.bundle import load_bundle
    from ..inference.views import spec_of
    from ..training.augment import jpeg
    from . import metrics
    from .scoring import score_natives

    spec = spec_of(cfg)
    sides = [crops[i].shape[0] for i in range(len(crops))]
    rows = attack_rows(np.asarray(y), np.asarray(sources), sides, per_class, spec.patch, seed)
    natives = [crops[i] for i in rows]
    yy, ss = np.asarray(y)[rows], np.asarray(sources)[rows]
    thr = float(cfg.threshold)

    def summarise(p):
        out = {}
        for src in sorted(set(ss.tolist())) + ["overall"]:
            m = np.ones(len(yy), bool) if src == "overall" else ss == src
            fakes = m & (yy == 1)
            out[src] = {"auc": metrics.auc(yy[m], p[m]),
                        "fakes_caught": float((p[fakes] >= thr).mean()) if fakes.any() else None}
        return out

    def craft(logit_fn, e, n_steps, only_fakes):
        adv = [c.copy() for c in natives]
        todo = [k for k in range(len(natives)) if yy[k] == 1 or not only_fakes]
        for s in tqdm(range(0, len(todo), batch), desc=f"attack eps={e} steps={n_steps}", leave=False):
            ks = todo[s:s + batch]
            canvas = _canvas([natives[k] for k in ks], spec.native_max)
            out = attack_crops(logit_fn, canvas, [natives[k].shape[0] for k in ks], yy[ks], spec,
                               list(cfg.inputs), e, n_steps, seed=seed + s)
            for k, a in zip(ks, out, strict=True):
                side = natives[k].shape[0]
                adv[k] = a[:side, :side]
        return adv

    served = _logit_fn(model)
    clean = score_natives(classifier, spec, natives, desc="clean")
    table = {"rows": len(rows), "per_class": per_class, "eps_units": "0..255 pixel levels (eps/255)",
             "steps": steps, "clean": summarise(clean), "results": {}}
    other = _logit_fn(load_bundle(transfer_from)[0]) if transfer_from else None
    for e in eps:
        for name, n_steps in (("fgsm", 0), (f"pgd{steps}", steps)):
            for mode in MODES:
                adv = craft(served, e, n_steps, mode == "fakes")
                p = score_natives(classifier, spec, adv, desc="attacked")
                pj = score_natives(classifier, spec, [jpeg(a, 90) for a in adv], desc="attacked+jpeg90")
                table["results"][f"{name}/{mode}/eps{e:g}"] = {"attack": summarise(p), "attack_jpeg90": summarise(pj)}
        if other is not None:
            for mode in MODES:
                adv = craft(other, e, steps, mode == "fakes")
                p = score_natives(classifier, spec, adv, desc="transfer")
                table["results"][f"transfer-pgd{steps}/{mode}/eps{e:g}"] = {"attack": summarise(p)}
    return table


def markdown(table: dict) -> str:
    """The attack table: AUC (fakes caught) per source for each attack, budget and mode."""
    srcs = list(table["clean"].keys())
    fmt = lambda m: "–" if m["auc"] is None else (  # noqa: E731
        f"{m['auc']:.3f}" + ("" if m["fakes_caught"] is None else f" ({100 * m['fakes_caught']:.0f} %)"))
    lines = ["| attack | " + " | ".join(srcs) + " |", "|---|" + "---|" * len(srcs),
             "| clean | " + " | ".join(fmt(table["clean"][s]) for s in srcs) + " |"]
    for key, r in table["results"].items():
        lines.append(f"| {key} | " + " | ".join(fmt(r["attack"][s]) for s in srcs) + " |")
        if "attack_jpeg90" in r:
            lines.append(f"| {key} + JPEG 90 | " + " | ".join(fmt(r["attack_jpeg90"][s]) for s in srcs) + " |")
    return "\n".join(lines)
