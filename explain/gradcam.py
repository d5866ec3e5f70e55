"""Class-activation heatmaps for a one-logit classifier, fused with the prediction and across branches.

The idea (Selvaraju et al., 2017): weight each channel of a convolutional feature map by how much
the score rises when that channel rises, sum, and keep the positive part.  Four ways to weigh:

* ``gradcam``: one weight per channel, the spatially averaged gradient (Grad-CAM);
* ``gradcam++``: per-location weights from higher-order terms (Chattopadhay et al., 2018);
* ``hirescam``: no averaging -- gradient times activation at every location (Draelos & Carin,
  2020); for a layer followed by global pooling and a linear head it is exactly each location's
  share of the logit, so it cannot show a region that did not raise the score;
* ``layercam``: like HiResCAM with only the positive gradients (Jiang et al., 2021), made for
  finer, earlier layers.

The score we explain is the *decision*: the fake logit for faces called fake, minus the logit for
faces called real, so a heatmap always shows what drove the label the user sees.

Model 2 has two branches, and each gives a map: the semantic branch on its last convolutional layer
(5 x 5 over the whole face crop at 160 px) and the native-resolution artefact branch on each patch it
saw (8 x 8 per 64 px patch, i.e. 8 native pixels per cell: the fine map).  Both are the layers right
before each branch's global pooling, so HiResCAM's per-location shares add up to the logit exactly.  The maps are pasted into one grid over the
crop and **fused by how much each branch pushed the decision** -- its share of the logit, which is
exact because both branches end in global average pooling before one linear logit: the branch
that found the evidence draws the map.

Two back ends give the same maps (tests pin them together):

* ``fused`` (default, fast): the classifier's forward pass returns the probabilities, the
  features of every layer in the :class:`MapLayout` and the logit's gradient with respect to each;
  every map is computed from those in NumPy -- no work repeated between the label and the heatmap.
  The forward pass is any callable with that contract (``detector.inference.forward``: a compiled
  ``tf.function`` over the Keras model, or its TF Lite copy, 3-5x faster on a CPU);
* ``tf-keras-vis``: the reference implementation (``Gradcam``, ``GradcamPlusPlus``, ``Layercam``
  with ``ReplaceToLinear`` and ``clone=True``; HiResCAM is its ``Layercam`` without the gradient
  ReLU) for the per-branch maps, for anyone who wants the library's own numbers.

Arrays in, maps out: this package imports nothing from ``detector``.  It knows a model only as a
``forward(inputs)`` callable and a :class:`MapLayout`, and -- for ``tf-keras-vis`` -- as "a Keras
model with those layers and an output that is a sigmoid of a layer named ``logit``".  TensorFlow
is imported only by that reference back end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from . import BACKENDS, METHODS

EPS = 1e-7  # keras.backend.epsilon(), as tf-keras-vis uses for normalising
GRID = 40  # side of the fused map over a face crop (cells of 4 px on a 160 px view)

# inputs (list of float32 arrays, the model's inputs in order) ->
#   [logit (N,), probability (N,), features of each layout layer..., d logit / d features of each...]
Forward = Callable[[list], list]


@dataclass(frozen=True)
class MapLayout:
    """Which feature maps a forward pass returns, in order, and what each one covers.

    ``semantic``: a map over the whole crop (the semantic view is the whole crop resized);
    ``semantic_last``: the semantic branch's last layer, used only for its share of the logit;
    ``artefact``: the artefact branch's map of ``n_patches`` patches stacked vertically (row block
    ``k`` = patch ``k``), placed by the patch boxes given to :meth:`CamExplainer.explain`.
    """

    layers: tuple[str, ...]
    semantic: str
    semantic_last: str | None = None
    artefact: str | None = None
    n_patches: int = 0

    def index(self, name: str) -> int:
        return self.layers.index(name)


@dataclass
class Explained:
    """Probabilities, fused per-crop maps (``GRID`` x ``GRID`` over the crop, [0, 1]) and the branches' shares."""

    p_fake: np.ndarray  # (N,)
    cams: dict[str, np.ndarray]  # method -> (N, GRID, GRID)
    shares: dict[str, np.ndarray]  # branch -> (N,) share of the decision's evidence, summing to 1


# ---------------------------------------------------------------------- the four weightings


def _normalise(cam: np.ndarray) -> np.ndarray:
    lo = cam.min(axis=(1, 2), keepdims=True)
    hi = cam.max(axis=(1, 2), keepdims=True)
    return (cam - lo) / (hi - lo + EPS)


def gradcam_from(features: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """Grad-CAM: channel weights = mean gradient over space."""
    weights = grads.mean(axis=(1, 2), keepdims=True)
    return np.maximum((weights * features).sum(axis=-1), 0.0)


def gradcam_plus_plus_from(features: np.ndarray, grads: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Grad-CAM++ with the exponential score, term for term as tf-keras-vis 0.8.7 computes it."""
    with np.errstate(over="ignore"):  # a huge score overflows exp to inf exactly as in TF
        s = np.exp(score.astype(np.float32)).reshape(-1, 1, 1, 1)
    first = s * grads
    second = first * grads
    third = second * grads
    global_sum = features.sum(axis=(1, 2), keepdims=True)
    denom = second * 2.0 + third * global_sum
    denom = denom + (second == 0.0)
    alphas = second / denom
    norm = alphas.sum(axis=(1, 2), keepdims=True)
    alphas = alphas / (norm + (norm == 0.0))
    weights = (np.maximum(first, 0.0) * alphas).sum(axis=(1, 2), keepdims=True)
    return np.maximum((weights * features).sum(axis=-1), 0.0)


def hirescam_from(features: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """HiResCAM: element-wise gradient x activation, summed over channels."""
    return np.maximum((grads * features).sum(axis=-1), 0.0)


def layercam_from(features: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """LayerCAM: positive gradients x activation, summed over channels."""
    return np.maximum((np.maximum(grads, 0.0) * features).sum(axis=-1), 0.0)


def raw_maps(features: np.ndarray, signed_grads: np.ndarray, score: np.ndarray, method: str) -> np.ndarray:
    """Un-normalised (N, h, w) map of ``method`` from features and the decision score's gradient."""
    if method == "gradcam":
        return gradcam_from(features, signed_grads)
    if method == "gradcam++":
        return gradcam_plus_plus_from(features, signed_grads, score)
    if method == "hirescam":
        return hirescam_from(features, signed_grads)
    if method == "layercam":
        return layercam_from(features, signed_grads)
    raise ValueError(f"unknown CAM method {method!r}; choose one of {METHODS}")


def cams_from(features: np.ndarray, logit_grads: np.ndarray, logit: np.ndarray, prob: np.ndarray,
              threshold: float, methods: tuple[str, ...] = METHODS) -> dict[str, np.ndarray]:
    """Normalised maps of one layer for the decision at ``threshold`` (score = +logit if fake, -logit if real)."""
    sign = np.where(prob >= threshold, 1.0, -1.0).astype(np.float32)
    grads = logit_grads * sign.reshape(-1, 1, 1, 1)
    score = sign * logit
    with np.errstate(invalid="ignore", divide="ignore"):
        return {m: _normalise(raw_maps(features, grads, score, m)).astype(np.float32) for m in methods}


# ---------------------------------------------------------------------- one grid per crop


def _to_grid(m: np.ndarray, grid: int) -> np.ndarray:
    return np.maximum(cv2.resize(m.astype(np.float32), (grid, grid), interpolation=cv2.INTER_CUBIC), 0.0)


def paste_patches(maps: np.ndarray, boxes: np.ndarray, grid: int = GRID) -> np.ndarray:
    """(n, h, w) patch maps into one (grid, grid) map of the crop; ``boxes`` (n, 4) are x0, y0, x1, y1 in [0, 1].

    Overlapping patches are averaged; cells no patch covered stay 0.
    """
    acc = np.zeros((grid, grid), np.float32)
    cnt = np.zeros((grid, grid), np.float32)
    for m, (x0, y0, x1, y1) in zip(maps, boxes, strict=True):
        a, b = int(round(x0 * grid)), int(round(x1 * grid))
        c, d = int(round(y0 * grid)), int(round(y1 * grid))
        if b - a < 1 or d - c < 1:
            continue
        acc[c:d, a:b] += np.maximum(cv2.resize(m.astype(np.float32), (b - a, d - c), interpolation=cv2.INTER_LINEAR), 0)
        cnt[c:d, a:b] += 1
    return np.where(cnt > 0, acc / np.maximum(cnt, 1), 0.0)


def branch_shares(contributions: dict[str, np.ndarray], sign: np.ndarray) -> dict[str, np.ndarray]:
    """Each branch's share of the evidence *for the decision* (positive signed logit contribution), summing to 1."""
    pos = {b: np.maximum(sign * c, 0.0) for b, c in contributions.items()}
    total = sum(pos.values())
    n = len(pos)
    return {b: np.where(total > 0, v / np.maximum(total, EPS), 1.0 / n).astype(np.float32) for b, v in pos.items()}


def fuse(semantic: np.ndarray, artefact: np.ndarray | None, shares: dict[str, np.ndarray]) -> np.ndarray:
    """(N, grid, grid) fused map: each branch's normalised map weighted by its share, renormalised to [0, 1]."""
    s = semantic / (semantic.max(axis=(1, 2), keepdims=True) + EPS)
    out = s * shares["semantic"].reshape(-1, 1, 1)
    if artefact is not None:
        a = artefact / (artefact.max(axis=(1, 2), keepdims=True) + EPS)
        out = out + a * shares["artefact"].reshape(-1, 1, 1)
    return (out / (out.max(axis=(1, 2), keepdims=True) + EPS)).astype(np.float32)


class CamExplainer:
    """Fused prediction + heatmaps (see module docstring).

    ``forward`` is the classifier's forward pass and ``layout`` says what it returns; the
    ``tf-keras-vis`` back end also needs the Keras ``model``.
    """

    def __init__(self, forward: Forward, layout: MapLayout, backend: str = "fused", model=None):
        if backend not in BACKENDS:
            raise ValueError(f"unknown CAM back end {backend!r}; choose one of {BACKENDS}")
        if backend == "tf-keras-vis" and model is None:
            raise ValueError("the tf-keras-vis back end needs the Keras model")
        self.backend, self.forward, self.layout = backend, forward, layout
        self._tfkv = TfKerasVisCams(model) if backend == "tf-keras-vis" else None

    def predict(self, inputs: list) -> np.ndarray:
        return np.asarray(self.forward(inputs)[1])

    def outputs(self, inputs: list) -> dict:
        """The forward pass's arrays by name: logit, prob, and features/grads of every layout layer."""
        out = [np.asarray(a) for a in self.forward(inputs)]
        n = len(self.layout.layers)
        return {"logit": out[0], "prob": out[1], "features": dict(zip(self.layout.layers, out[2:2 + n], strict=True)),
                "grads": dict(zip(self.layout.layers, out[2 + n:2 + 2 * n], strict=True))}

    def contributions(self, o: dict) -> dict[str, np.ndarray]:
        """Each branch's additive share of the logit (exact for GAP + linear head layers)."""
        lay = self.layout
        if lay.artefact is None:
            return {"semantic": o["logit"]}
        art = (o["grads"][lay.artefact] * o["features"][lay.artefact]).sum(axis=(1, 2, 3))
        last = lay.semantic_last or lay.semantic
        sem = (o["grads"][last] * o["features"][last]).sum(axis=(1, 2, 3))
        return {"semantic": sem, "artefact": art}

    def branch_maps(self, inputs: list, o: dict, sign: np.ndarray, method: str) -> dict[str, np.ndarray]:
        """Un-normalised per-branch maps: semantic (N, h, w), artefact (N, n*h', w') stacked patches."""
        lay = self.layout
        names = {"semantic": lay.semantic, **({"artefact": lay.artefact} if lay.artefact else {})}
        if self._tfkv is not None:
            return {b: self._tfkv(inputs, sign, method, layer) for b, layer in names.items()}
        score = sign * o["logit"]
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            return {b: raw_maps(o["features"][layer], o["grads"][layer] * sign.reshape(-1, 1, 1, 1), score, method)
                    for b, layer in names.items()}

    def explain(self, inputs: list, threshold: float = 0.5, patch_boxes: np.ndarray | None = None,
                methods: tuple[str, ...] = METHODS, grid: int = GRID, outputs: dict | None = None) -> Explained:
        """Probabilities and the fused maps of ``methods`` for a batch (one forward pass with ``fused``).

        ``patch_boxes`` (N, n_patches, 4): where each native patch lies in its crop (x0, y0, x1, y1 in
        [0, 1]); needed when the layout has an artefact branch.  ``outputs``: this batch's
        :meth:`outputs`, when already computed (explaining one pass at two thresholds).
        """
        n = len(inputs[0])
        if n == 0:
            empty = np.zeros((0, grid, grid), np.float32)
            return Explained(np.zeros((0,), np.float32), {m: empty for m in methods}, {})
        inputs = [np.asarray(a, np.float32) for a in inputs]
        o = self.outputs(inputs) if outputs is None else outputs
        sign = np.where(o["prob"] >= threshold, 1.0, -1.0).astype(np.float32)
        shares = branch_shares(self.contributions(o), sign)
        cams = {}
        for m in methods:
            raw = self.branch_maps(inputs, o, sign, m)
            sem = np.stack([_to_grid(c, grid) for c in np.nan_to_num(raw["semantic"])])
            art = None
            if "artefact" in raw:
                if patch_boxes is None:
                    raise ValueError("this model has an artefact branch: explain() needs patch_boxes")
                k = self.layout.n_patches
                a = np.nan_to_num(raw["artefact"])
                per = a.reshape(n, k, a.shape[1] // k, a.shape[2])
                art = np.stack([paste_patches(per[i], patch_boxes[i], grid) for i in range(n)])
            cams[m] = fuse(sem, art, shares)
        return Explained(o["prob"], cams, shares)


class TfKerasVisCams:
    """Per-branch maps through tf-keras-vis, the reference implementation.

    ``ReplaceToLinear`` turns the sigmoid output into the logit and ``clone=True`` keeps the served
    model untouched; the visualisers are built once because cloning costs more than a map.
    """

    def __init__(self, model):
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
        from tf_keras_vis.layercam import Layercam
        from tf_keras_vis.utils.model_modifiers import ReplaceToLinear

        layer = Layercam(model, model_modifier=ReplaceToLinear(), clone=True)
        self._vis = {"gradcam": Gradcam(model, model_modifier=ReplaceToLinear(), clone=True),
                     "gradcam++": GradcamPlusPlus(model, model_modifier=ReplaceToLinear(), clone=True),
                     "layercam": layer, "hirescam": layer}
        self.n_inputs = len(model.inputs)

    def __call__(self, inputs: list, signs: np.ndarray, method: str, layer: str) -> np.ndarray:
        """Un-normalised (N, h, w) map of ``layer`` for ``method``."""
        import tensorflow as tf

        signs_t = tf.constant(np.asarray(signs, np.float32))

        def score(output):
            return tf.reshape(output, [-1]) * signs_t

        kwargs = {}
        if method == "hirescam":
            kwargs["gradient_modifier"] = None
        seed = [np.asarray(a, np.float32) for a in inputs]
        # seek_penultimate_conv_layer=False: our CAM layers are activations after a convolution,
        # and tf-keras-vis would otherwise step back to the convolution before them.
        cam = self._vis[method](score, seed if self.n_inputs > 1 else seed[0], penultimate_layer=layer,
                                seek_penultimate_conv_layer=False, expand_cam=False, normalize_cam=False, **kwargs)
        cam = np.asarray(cam)
        return cam.reshape(len(seed[0]), *cam.shape[-2:])
