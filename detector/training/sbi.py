"""Self-Blended Images (Shiohara & Yamasaki, CVPR 2022): fakes made from one real face.

A real face is blended into a slightly altered copy of itself.  The result carries the traces
every face swap or local edit leaves -- a blending boundary, a colour or sharpness mismatch, a
small misalignment -- without the identity or generator of any particular fake, which is why it
helps on manipulation methods the model never saw.

As the paper trains them (parameters at the top):

1. **source-target generation**: two copies of the real face; one of them, chosen at random, gets
   the colour (RGB shift, hue/saturation/value, brightness/contrast) and frequency (down-and-up
   scaling or sharpening) changes; the source is then resized and shifted a little (the
   misalignment of a pasted face);
2. **mask generation**: the inner-face region from the landmarks (here: an ellipse fitted to MTCNN's
   five points, :mod:`detector.training.parts`), elastically deformed, eroded or dilated, blurred twice to a
   soft edge, times a blend ratio from ``BLEND_RATIOS``;
3. **blending**: ``mask * source + (1 - mask) * target``.

Beyond the paper, ``PART_PROB`` of the blends cover a single part -- one eye, the nose, the mouth
or the lower face -- so that local edits are learned too, not only whole-face swaps.  Training
pairs each SBI with the real face it came from in the same batch (the paper's batch design), so
the only difference the model can learn between the two is the blend itself.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..config import CROP_MARGIN
from . import parts

SHIFT = 0.03  # max source shift, fraction of the crop side
SCALE = (0.95, 1.05)  # source resize
RGB_SHIFT = 20  # per channel, 0..255 units
HUE_SHIFT = 10  # OpenCV hue units (half-degrees)
SAT_VAL = 0.15  # +-fraction
BRIGHT_CONTRAST = 0.1
DOWNSCALE = (0.25, 0.6)  # frequency change: down-and-up factor
BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)
MASK_BLUR = (5, 27)  # odd kernel sizes of the two soft-edge blurs, at 256 px (scaled with the crop)
ELASTIC_ALPHA = 0.04  # mask displacement, fraction of the side
FACE_SCALE = (0.8, 1.1)  # whole-face ellipse scale
PART_SCALE = (0.8, 1.35)  # part ellipse scale ("several sizes")
PART_PROB = 0.5  # share of blends over one part instead of the whole face
FACE_FRACTION = 1.0 / CROP_MARGIN  # face box inside a crop made with the crop margin (no-landmark fallback)


def _elastic(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = mask.shape[0]
    grid = 4
    dx = cv2.resize(rng.uniform(-1, 1, (grid, grid)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    dy = cv2.resize(rng.uniform(-1, 1, (grid, grid)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    xs, ys = np.meshgrid(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32))
    a = ELASTIC_ALPHA * size
    return cv2.remap(mask, xs + dx * a, ys + dy * a, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def _odd(k: float) -> int:
    k = max(3, int(round(k)))
    return k if k % 2 else k + 1


def _fallback_face(size: int, rng: np.random.Generator) -> np.ndarray:
    """Ellipse in the middle of the crop, for faces without landmarks."""
    mask = np.zeros((size, size), np.float32)
    c = size / 2.0
    ax = size * FACE_FRACTION / 2.0 * rng.uniform(0.7, 0.95)
    ay = size * FACE_FRACTION / 2.0 * rng.uniform(0.85, 1.05)
    cv2.ellipse(mask, (int(c), int(c)), (int(ax), int(ay)), 0, 0, 360, 1.0, -1)
    return mask


def blend_mask(size: int, landmarks: dict | None, rng: np.random.Generator, part: str | None = None,
               scale: float | None = None) -> np.ndarray:
    """Soft float mask in [0, 1] for ``part`` ("face" or one of :data:`parts.PARTS`; None = draw one).

    ``scale`` fixes the ellipse size (else drawn from ``FACE_SCALE`` / ``PART_SCALE``).
    """
    if part is None:
        part = str(rng.choice(parts.PARTS)) if rng.random() < PART_PROB else "face"
    f = parts.frame(landmarks or {})
    if f is None:
        hard = _fallback_face(size, rng)
    else:
        if scale is None:
            scale = rng.uniform(*(FACE_SCALE if part == "face" else PART_SCALE))
        hard = parts.part_mask((size, size), landmarks, part, scale)
    mask = _elastic(hard, rng) if part in ("face", "lower_face") else hard
    unit = size / 256.0
    k = _odd(rng.uniform(*MASK_BLUR) * unit * (1.0 if part in ("face", "lower_face") else 0.6))
    if rng.random() < 0.5:
        e = max(1, k // 3)
        op = cv2.erode if rng.random() < 0.5 else cv2.dilate
        mask = op(mask, np.ones((e, e), np.uint8))
    mask = cv2.GaussianBlur(mask, (k, k), 0)
    mask = cv2.GaussianBlur(mask, (_odd(k * 0.6), _odd(k * 0.6)), 0)
    peak = float(mask.max())
    return mask / peak if peak > 0 else mask


def _colour(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = rgb.astype(np.float32) + rng.uniform(-RGB_SHIFT, RGB_SHIFT, 3).astype(np.float32)
    x = np.clip(x, 0, 255).astype(np.uint8)
    hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-HUE_SHIFT, HUE_SHIFT)) % 180
    hsv[..., 1] *= rng.uniform(1 - SAT_VAL, 1 + SAT_VAL)
    hsv[..., 2] *= rng.uniform(1 - SAT_VAL, 1 + SAT_VAL)
    x = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    mean = x.mean()
    x = (x - mean) * rng.uniform(1 - BRIGHT_CONTRAST, 1 + BRIGHT_CONTRAST) + mean * rng.uniform(
        1 - BRIGHT_CONTRAST, 1 + BRIGHT_CONTRAST)
    return np.clip(x, 0, 255).astype(np.uint8)


def _frequency(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 0.5:
        h, w = rgb.shape[:2]
        f = rng.uniform(*DOWNSCALE)
        small = cv2.resize(rgb, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    soft = cv2.GaussianBlur(rgb, (0, 0), rng.uniform(0.8, 1.5))
    return cv2.addWeighted(rgb, 1.0 + rng.uniform(0.3, 1.0), soft, -rng.uniform(0.3, 1.0), 0)


def _alter(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colour and frequency change (each with probability 1/2, at least one)."""
    do_colour = rng.random() < 0.5
    do_freq = (not do_colour) or rng.random() < 0.5
    out = _colour(rgb, rng) if do_colour else rgb
    return _frequency(out, rng) if do_freq else out


def _misalign(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = rgb.shape[0]
    sx, sy = rng.uniform(*SCALE, 2)
    tx, ty = rng.uniform(-SHIFT, SHIFT, 2) * size
    m = np.array([[sx, 0, (1 - sx) * size / 2 + tx], [0, sy, (1 - sy) * size / 2 + ty]], np.float32)
    return cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def self_blend(rgb: np.ndarray, landmarks: dict | None, rng: np.random.Generator,
               part: str | None = None, scale: float | None = None,
               ratio: float | None = None, alter: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(fake, mask)``: ``rgb`` (square uint8) blended with an altered copy of itself.

    ``part`` picks the region ("face" or one of :data:`parts.PARTS`); None draws one.  ``mask`` is
    the soft blend weight actually used (0 = untouched pixel).  ``scale`` and ``ratio`` fix the
    mask size and the blend ratio (else drawn); ``alter`` ("source" or "target") which copy gets
    the colour/frequency change (else drawn: the paper alters either).  When the target is altered the
    whole picture changes, so only a blend of an altered *source* leaves the border untouched.
    """
    rgb = np.ascontiguousarray(rgb)
    size = rgb.shape[0]
    source, target = rgb, rgb
    if alter not in (None, "source", "target"):
        raise ValueError(f"alter must be 'source', 'target' or None, got {alter!r}")
    if (alter or ("source" if rng.random() < 0.5 else "target")) == "source":
        source = _alter(source, rng)
    else:
        target = _alter(target, rng)
    source = _misalign(source, rng)
    mask = blend_mask(size, landmarks, rng, part, scale) * float(rng.choice(BLEND_RATIOS) if ratio is None else ratio)
    m = mask[..., None]
    fake = np.clip(source.astype(np.float32) * m + target.astype(np.float32) * (1 - m), 0, 255)
    return np.rint(fake).astype(np.uint8), mask
