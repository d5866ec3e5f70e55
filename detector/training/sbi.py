"""Self-Blended Images (Shiohara & Yamasaki, CVPR 2022): fakes made from one real face.

A real face is blended into a slightly altered copy of itself.  The result carries the
traces every face swap leaves -- a blending boundary, a colour or sharpness mismatch, a small
misalignment -- without the identity or generator of any particular fake, which is why it
helps on manipulation methods the model never saw.

Steps (parameters at the top):
1. mask: the convex hull of the landmarks grown to cover the inner face (or an ellipse in the
   face box when no landmarks), elastically deformed, eroded/dilated and blurred to a soft edge;
2. source: the same face with colour jitter and a frequency change (blur or sharpen), shifted and
   scaled a little (the misalignment);
3. blend: ``mask * ratio * source + (1 - mask * ratio) * target``.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..config import CROP_MARGIN

SHIFT = 0.03  # max source shift, fraction of the image side
SCALE = (0.95, 1.05)  # source scale
HUE_SHIFT = 8  # degrees (OpenCV half-degrees x2)
BRIGHTNESS = 0.1
BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)
MASK_BLUR = (3, 21)  # odd kernel sizes for the soft edge
ELASTIC_ALPHA = 0.04  # displacement, fraction of the side
FACE_FRACTION = 1.0 / CROP_MARGIN  # face box size inside a crop made with the crop margin


def _hull_mask(size: int, landmarks: dict, rng: np.random.Generator) -> np.ndarray:
    pts = np.array(list(landmarks.values()), np.float32)
    center = pts.mean(axis=0)
    # Five points span eyes to mouth; grow them to reach brows and chin.
    grow = rng.uniform(1.4, 1.9)
    pts = center + (pts - center) * grow
    pts[:, 1] += (pts[:, 1] - center[1]) * 0.25
    mask = np.zeros((size, size), np.float32)
    cv2.fillConvexPoly(mask, cv2.convexHull(pts.astype(np.int32)), 1.0)
    return mask


def _ellipse_mask(size: int, rng: np.random.Generator) -> np.ndarray:
    mask = np.zeros((size, size), np.float32)
    c = size / 2.0
    ax = size * FACE_FRACTION / 2.0 * rng.uniform(0.7, 0.95)
    ay = size * FACE_FRACTION / 2.0 * rng.uniform(0.85, 1.05)
    cv2.ellipse(mask, (int(c), int(c)), (int(ax), int(ay)), 0, 0, 360, 1.0, -1)
    return mask


def _elastic(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = mask.shape[0]
    grid = 4
    dx = cv2.resize(rng.uniform(-1, 1, (grid, grid)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    dy = cv2.resize(rng.uniform(-1, 1, (grid, grid)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    xs, ys = np.meshgrid(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32))
    a = ELASTIC_ALPHA * size
    return cv2.remap(mask, xs + dx * a, ys + dy * a, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def blend_mask(size: int, landmarks: dict | None, rng: np.random.Generator) -> np.ndarray:
    """Soft float mask in [0, 1] covering the inner face."""
    mask = _hull_mask(size, landmarks, rng) if landmarks and len(landmarks) >= 4 else _ellipse_mask(size, rng)
    mask = _elastic(mask, rng)
    k = int(rng.integers(MASK_BLUR[0] // 2, MASK_BLUR[1] // 2 + 1)) * 2 + 1
    if rng.random() < 0.5:
        mask = cv2.erode(mask, np.ones((k // 2 + 1, k // 2 + 1), np.uint8))
    mask = cv2.GaussianBlur(mask, (k, k), 0)
    peak = mask.max()
    return mask / peak if peak > 0 else mask


def _alter_source(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    src = rgb
    hsv = cv2.cvtColor(src, cv2.COLOR_RGB2HSV).astype(np.int16)
    hsv[..., 0] = (hsv[..., 0] + int(rng.integers(-HUE_SHIFT // 2, HUE_SHIFT // 2 + 1))) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.85, 1.15), 0, 255)
    hsv[..., 2] = np.clip(hsv[..., 2] * rng.uniform(1 - BRIGHTNESS, 1 + BRIGHTNESS), 0, 255)
    src = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    if rng.random() < 0.5:  # frequency mismatch
        src = cv2.GaussianBlur(src, (0, 0), rng.uniform(0.5, 1.5))
    else:
        soft = cv2.GaussianBlur(src, (0, 0), 1.0)
        src = cv2.addWeighted(src, 1.5, soft, -0.5, 0)
    size = rgb.shape[0]
    s = rng.uniform(*SCALE)
    tx, ty = rng.uniform(-SHIFT, SHIFT, 2) * size
    m = np.array([[s, 0, (1 - s) * size / 2 + tx], [0, s, (1 - s) * size / 2 + ty]], np.float32)
    return cv2.warpAffine(src, m, (size, size), borderMode=cv2.BORDER_REFLECT)


def self_blend(rgb: np.ndarray, landmarks: dict | None, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(fake, mask)``: ``rgb`` blended with an altered copy of itself inside a face mask."""
    size = rgb.shape[0]
    mask = blend_mask(size, landmarks, rng) * rng.choice(BLEND_RATIOS)
    src = _alter_source(rgb, rng)
    m = mask[..., None]
    fake = np.clip(src.astype(np.float32) * m + rgb.astype(np.float32) * (1 - m), 0, 255).astype(np.uint8)
    return fake, mask
