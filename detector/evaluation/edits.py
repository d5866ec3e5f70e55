"""Local face edits with a known mask: the ground truth of the heatmap-fidelity benchmark.

Two kinds of edit on one part (an eye, the nose, the mouth, the jaw / lower face) of a real photo:

* ``self_blend`` -- the part blended in from an altered copy of the same face (Self-Blended Images
  restricted to one part, :mod:`detector.training.sbi`);
* ``swap`` -- the part taken from *another* real face: the donor is aligned to the target by a
  similarity transform between their five landmarks, its colours matched to the target inside the
  part (mean and spread per LAB channel, Reinhard et al. 2001), and blended with a soft mask.
  Training never makes this kind of edit, so a benchmark on it is not a replay of the training data.

Every edit returns the edited photo and its mask in photo pixels (the blend weight, 0 = untouched),
so "did the heatmap point at the edit" can be measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..training import parts, sbi

EDIT_PARTS = ("left_eye", "right_eye", "nose", "mouth", "lower_face")
KINDS = ("self_blend", "swap")
SCALES = (0.9, 1.2)  # part sizes (ellipse scale)
EDGE_BLUR = 0.12  # soft edge of a swapped part: Gaussian sigma as a fraction of the eye distance
MASK_LEVEL = 0.25  # blend weight above which a pixel counts as edited


@dataclass
class Edit:
    image: np.ndarray  # edited RGB uint8
    mask: np.ndarray  # float32 blend weight in [0, 1], same H x W
    part: str
    kind: str
    scale: float
    eye_distance: float
    original: np.ndarray | None = None  # the unedited photo (the fidelity bench restores its pixels)

    @property
    def region(self) -> np.ndarray:
        """Boolean edited region (weight above :data:`MASK_LEVEL` of its peak)."""
        peak = float(self.mask.max())
        return self.mask >= MASK_LEVEL * peak if peak > 0 else np.zeros(self.mask.shape, bool)


def _points(landmarks: dict) -> np.ndarray:
    return np.array([landmarks[k] for k in parts.REQUIRED], np.float32)


def _soft(hard: np.ndarray, d: float) -> np.ndarray:
    sigma = max(1.0, EDGE_BLUR * d)
    soft = cv2.GaussianBlur(hard.astype(np.float32), (0, 0), sigma)
    peak = float(soft.max())
    return soft / peak if peak > 0 else soft


def colour_match(src: np.ndarray, dst: np.ndarray, region: np.ndarray) -> np.ndarray:
    """``src`` with the LAB mean/std of ``dst`` inside ``region`` (both RGB uint8, same size)."""
    if region.sum() < 4:
        return src
    a = cv2.cvtColor(src, cv2.COLOR_RGB2LAB).astype(np.float32)
    b = cv2.cvtColor(dst, cv2.COLOR_RGB2LAB).astype(np.float32)
    for c in range(3):
        ma, sa = a[..., c][region].mean(), a[..., c][region].std() + 1e-3
        mb, sb = b[..., c][region].mean(), b[..., c][region].std() + 1e-3
        a[..., c] = (a[..., c] - ma) * (sb / sa) + mb
    return cv2.cvtColor(np.clip(a, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def swap_part(target: np.ndarray, target_marks: dict, donor: np.ndarray, donor_marks: dict, part: str,
              scale: float = 1.0) -> Edit | None:
    """``part`` of ``donor`` pasted onto ``target`` (both full photos with five landmarks each)."""
    f = parts.frame(target_marks)
    if f is None or parts.frame(donor_marks) is None:
        return None
    m, _ = cv2.estimateAffinePartial2D(_points(donor_marks), _points(target_marks))
    if m is None:
        return None
    h, w = target.shape[:2]
    warped = cv2.warpAffine(donor, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    hard = parts.part_mask((h, w), target_marks, part, scale)
    if hard.sum() < 16:
        return None
    warped = colour_match(warped, target, hard > 0)
    mask = _soft(hard, f.d)
    out = warped.astype(np.float32) * mask[..., None] + target.astype(np.float32) * (1 - mask[..., None])
    return Edit(np.clip(np.rint(out), 0, 255).astype(np.uint8), mask, part, "swap", scale, f.d, target)


def self_blend_part(image: np.ndarray, marks: dict, part: str, rng: np.random.Generator,
                    scale: float = 1.0) -> Edit | None:
    """SBI of one part, made on the face's square around its landmarks and pasted back."""
    f = parts.frame(marks)
    if f is None:
        return None
    h, w = image.shape[:2]
    side = int(min(h, w, round(4.0 * max(f.d, f.h))))
    c = f.eye_mid + f.v * 0.5 * f.h
    x0 = int(np.clip(round(c[0] - side / 2), 0, w - side))
    y0 = int(np.clip(round(c[1] - side / 2), 0, h - side))
    crop = np.ascontiguousarray(image[y0:y0 + side, x0:x0 + side])
    local = {k: (v[0] - x0, v[1] - y0) for k, v in marks.items()}
    fake, mask = sbi.self_blend(crop, local, rng, part, scale=scale, ratio=1.0)
    out = image.copy()
    out[y0:y0 + side, x0:x0 + side] = fake
    full = np.zeros((h, w), np.float32)
    full[y0:y0 + side, x0:x0 + side] = mask
    if full.max() <= 0:
        return None
    return Edit(out, full, part, "self_blend", scale, f.d, image)
