"""What the model sees of a face: a downscaled whole-face view and native-resolution patches.

A face crop is first taken at the photo's own resolution (the *native crop*, a square of side
``margin * face size``).  Two views are made from it:

* the **semantic view**: the crop resized to ``input_size`` (160 px) -- enough for an ImageNet
  backbone to judge the face as a whole (shape, lighting, blending seams);
* **native patches**: ``N_PATCHES`` squares of ``PATCH`` px cut from the crop *without any
  resizing*, where generator fingerprints (up-sampling checkerboards, diffusion noise) still live:
  every resize averages neighbouring pixels and wipes them out.  Training cuts them at random
  positions; inference tiles the centre of the crop (:func:`grid_patches`), so the artefact branch
  looks at the face, and the patches' map can be pasted back where they came from.

Crops larger than ``NATIVE_MAX`` are first reduced to it (area averaging).  The reason is the
training data: every developer image was stored with its longer side at most 256 px, so the
artefact branch only ever learned pixel statistics at that scale; a 600 px face from a phone has
different (smoother, noisier) per-pixel statistics, and showing it unreduced would ask the branch
about a scale it has never seen -- measured as real photos flagged fake more often.

Everything here is plain NumPy/OpenCV so training, inference and evaluation cut identical views.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

NATIVE_MAX = 256  # largest native crop side the artefact branch sees (training images were <= 256 px)
PATCH = 64  # native patch side; 2 x 2 patches tile the central 128 px of a crop
N_PATCHES = 4


@dataclass(frozen=True)
class ViewSpec:
    """Shapes of the model's two inputs; saved in ``model.json`` so loading needs no training code."""

    input_size: int = 160
    patch: int = PATCH
    n_patches: int = N_PATCHES
    native_max: int = NATIVE_MAX


def cap_native(crop: np.ndarray, native_max: int = NATIVE_MAX) -> np.ndarray:
    """``crop`` (square, uint8) reduced by area averaging when its side exceeds ``native_max``."""
    side = crop.shape[0]
    if side <= native_max:
        return np.ascontiguousarray(crop)
    return cv2.resize(crop, (native_max, native_max), interpolation=cv2.INTER_AREA)


def semantic_view(native: np.ndarray, size: int) -> np.ndarray:
    """The whole crop at ``size`` x ``size`` (area averaging down, bilinear up)."""
    side = native.shape[0]
    if side == size:
        return np.ascontiguousarray(native)
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(native, (size, size), interpolation=interp)


def _fit(native: np.ndarray, patch: int) -> np.ndarray:
    """Crops smaller than one patch are padded by reflection (never resized: that would fake the statistics)."""
    side = native.shape[0]
    if side >= patch:
        return native
    extra = patch - side
    a, b = extra // 2, extra - extra // 2
    return cv2.copyMakeBorder(native, a, b, a, b, cv2.BORDER_REFLECT_101 if side > 1 else cv2.BORDER_REPLICATE)


def grid_positions(side: int, patch: int = PATCH, n: int = N_PATCHES) -> list[tuple[int, int]]:
    """Top-left corners (x, y) of the inference patches: a k x k tiling of the crop's centre.

    Patches start on even pixels so the 2 x 2 blocks of the residual line up the same way in
    every patch (and in training, where positions are drawn even too).
    """
    k = int(round(np.sqrt(n)))
    if k * k != n:
        raise ValueError(f"n_patches must be a square number, got {n}")
    side = max(side, patch)
    span = min(side, k * patch)
    start = (side - span) // 2
    if k == 1:
        xs = [start + (span - patch) // 2]
    else:
        xs = [start + round(i * (span - patch) / (k - 1)) for i in range(k)]
    xs = [min(max(0, x - x % 2), side - patch) for x in xs]
    return [(x, y) for y in xs for x in xs]


def grid_patches(native: np.ndarray, patch: int = PATCH, n: int = N_PATCHES) -> np.ndarray:
    """(n, patch, patch, 3) uint8: the inference patches of one native crop."""
    src = _fit(native, patch)
    return np.stack([src[y:y + patch, x:x + patch] for x, y in grid_positions(src.shape[0], patch, n)])


def random_patches(native: np.ndarray, rng: np.random.Generator, patch: int = PATCH,
                   n: int = N_PATCHES) -> np.ndarray:
    """(n, patch, patch, 3) uint8 at random even positions (training)."""
    src = _fit(native, patch)
    hi = src.shape[0] - patch
    out = []
    for _ in range(n):
        x, y = (int(v) - int(v) % 2 for v in rng.integers(0, hi + 1, 2))
        out.append(src[y:y + patch, x:x + patch])
    return np.stack(out)


def model_inputs(natives: list[np.ndarray], spec: ViewSpec, rng: np.random.Generator | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The model's ``(image, patches)`` batch for native crops; random patches when ``rng`` is given."""
    if not natives:
        s, p = spec.input_size, spec.patch
        return np.zeros((0, s, s, 3), np.float32), np.zeros((0, spec.n_patches, p, p, 3), np.float32)
    capped = [cap_native(c, spec.native_max) for c in natives]
    image = np.stack([semantic_view(c, spec.input_size) for c in capped]).astype(np.float32)
    if rng is None:
        patches = np.stack([grid_patches(c, spec.patch, spec.n_patches) for c in capped])
    else:
        patches = np.stack([random_patches(c, rng, spec.patch, spec.n_patches) for c in capped])
    return image, patches.astype(np.float32)


def patch_map_to_crop(maps: np.ndarray, side: int, patch: int = PATCH) -> tuple[np.ndarray, np.ndarray]:
    """Per-patch maps (n, h, w) pasted back into the native crop: ``(map, covered)``, both (side, side).

    ``side`` is the capped native side the patches were cut from (positions: :func:`grid_positions`);
    overlapping patches are averaged; ``covered`` is False where no patch looked.
    """
    n = maps.shape[0]
    full = max(side, patch)
    acc = np.zeros((full, full), np.float32)
    cnt = np.zeros((full, full), np.float32)
    for m, (x, y) in zip(maps, grid_positions(full, patch, n), strict=True):
        acc[y:y + patch, x:x + patch] += cv2.resize(m.astype(np.float32), (patch, patch), interpolation=cv2.INTER_LINEAR)
        cnt[y:y + patch, x:x + patch] += 1
    out = np.where(cnt > 0, acc / np.maximum(cnt, 1), 0.0)
    covered = cnt > 0
    if full != side:  # the crop was padded up to one patch: cut the padding off again
        a = (full - side) // 2
        out, covered = out[a:a + side, a:a + side], covered[a:a + side, a:a + side]
    return out, covered


def patch_boxes(side: int, patch: int = PATCH, n: int = N_PATCHES) -> np.ndarray:
    """(n, 4) boxes x0, y0, x1, y1 of the inference patches in units of the crop's side ([0, 1])."""
    full = max(side, patch)
    a = (full - side) // 2  # reflection padding of a crop smaller than one patch
    boxes = [((x - a) / side, (y - a) / side, (x + patch - a) / side, (y + patch - a) / side)
             for x, y in grid_positions(full, patch, n)]
    return np.clip(np.array(boxes, np.float32), 0.0, 1.0)


@dataclass
class FaceViews:
    """The model's inputs for a batch of faces, and where each native patch lies in its crop."""

    image: np.ndarray  # (N, s, s, 3) float32, 0..255
    patches: np.ndarray | None  # (N, k, p, p, 3) float32, 0..255 (None: the model has no artefact branch)
    boxes: np.ndarray | None  # (N, k, 4) patch boxes in crop units

    def __len__(self) -> int:
        return len(self.image)

    def feed(self, names: list[str]) -> list[np.ndarray]:
        """The arrays the model takes, in its input order."""
        return [self.image if n == "image" else self.patches for n in names]

    def take(self, rows) -> FaceViews:
        return FaceViews(self.image[rows], None if self.patches is None else self.patches[rows],
                         None if self.boxes is None else self.boxes[rows])

    @staticmethod
    def concat(parts: list[FaceViews]) -> FaceViews:
        """One batch from the faces of many images (the batch scan)."""
        has = parts[0].patches is not None
        return FaceViews(np.concatenate([p.image for p in parts]),
                         np.concatenate([p.patches for p in parts]) if has else None,
                         np.concatenate([p.boxes for p in parts]) if has else None)


def face_views(natives: list[np.ndarray], spec: ViewSpec, patches: bool = True,
               rng: np.random.Generator | None = None) -> FaceViews:
    """:class:`FaceViews` of native crops (capped here); ``patches`` False for a model without the artefact branch."""
    capped = [cap_native(c, spec.native_max) for c in natives]
    if not capped:
        s, p = spec.input_size, spec.patch
        return FaceViews(np.zeros((0, s, s, 3), np.float32),
                         np.zeros((0, spec.n_patches, p, p, 3), np.float32) if patches else None,
                         np.zeros((0, spec.n_patches, 4), np.float32) if patches else None)
    image = np.stack([semantic_view(c, spec.input_size) for c in capped]).astype(np.float32)
    if not patches:
        return FaceViews(image, None, None)
    cut = (lambda c: random_patches(c, rng, spec.patch, spec.n_patches)) if rng is not None else (
        lambda c: grid_patches(c, spec.patch, spec.n_patches))
    pts = np.stack([cut(c) for c in capped]).astype(np.float32)
    boxes = np.stack([patch_boxes(c.shape[0], spec.patch, spec.n_patches) for c in capped])
    return FaceViews(image, pts, boxes)


def spec_of(config) -> ViewSpec:
    """The :class:`ViewSpec` of a model card."""
    return ViewSpec(int(config.input_size), int(config.patch), int(config.n_patches), int(config.native_max))
