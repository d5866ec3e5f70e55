"""Face-part masks from MTCNN's five landmarks: the whole inner face, one eye, the nose, the mouth, the lower face.

Self-Blended Images need a mask of "the face" (and, for local edits, of one part); the fidelity
benchmark needs the same masks to know where an edit is.  The masks are ellipses fitted to the
five points MTCNN gives every face (eyes, nose tip, mouth corners), scaled by the eye distance
``d`` and the eye-to-mouth distance ``h`` and turned with the eye line, so they follow head roll
and face size.

Why five points and not a 68-point model: the five points are what the app's own face finder
returns for every face, at every size, so training, the app and the benchmark share one source of
landmarks with no extra model; dlib's 68-point predictor is trained on iBUG 300-W (non-commercial
licence) and its detector misses many of the 128 px and tightly cropped faces of the training set;
MediaPipe's face mesh pins NumPy < 2, which the pinned TensorFlow does not accept.  The cost is a
coarser face outline (an ellipse, not the jaw line) -- which SBI's own mask deformation blurs anyway.

Every function takes landmarks as ``{name: (x, y)}`` in the pixels of the image the mask is for.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PARTS = ("left_eye", "right_eye", "nose", "mouth", "lower_face")  # local edits (+ "face": the whole inner face)
REQUIRED = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass(frozen=True)
class FaceFrame:
    """The face's own axes: eye midpoint, unit vectors along the eye line (u) and down the face (v)."""

    left_eye: np.ndarray
    right_eye: np.ndarray
    nose: np.ndarray
    mouth_left: np.ndarray
    mouth_right: np.ndarray

    @property
    def eye_mid(self) -> np.ndarray:
        return (self.left_eye + self.right_eye) / 2

    @property
    def mouth_mid(self) -> np.ndarray:
        return (self.mouth_left + self.mouth_right) / 2

    @property
    def d(self) -> float:
        """Eye distance (px)."""
        return max(2.0, float(np.linalg.norm(self.right_eye - self.left_eye)))

    @property
    def u(self) -> np.ndarray:
        e = self.right_eye - self.left_eye
        return e / max(1e-6, float(np.linalg.norm(e)))

    @property
    def v(self) -> np.ndarray:
        v = np.array([-self.u[1], self.u[0]])
        return v if float(np.dot(self.mouth_mid - self.eye_mid, v)) >= 0 else -v

    @property
    def h(self) -> float:
        """Eye-to-mouth distance along the face's vertical axis (px)."""
        return max(2.0, float(np.dot(self.mouth_mid - self.eye_mid, self.v)))

    @property
    def angle(self) -> float:
        """Roll of the eye line in degrees (OpenCV's ellipse angle)."""
        return float(np.degrees(np.arctan2(self.u[1], self.u[0])))


def frame(landmarks: dict) -> FaceFrame | None:
    """The :class:`FaceFrame` of five landmarks, or None when some are missing or degenerate."""
    if not landmarks or any(k not in landmarks for k in REQUIRED):
        return None
    pts = {k: np.asarray(landmarks[k], np.float64) for k in REQUIRED}
    if np.linalg.norm(pts["right_eye"] - pts["left_eye"]) < 2:
        return None
    return FaceFrame(**pts)


def _ellipse(shape: tuple[int, int], centre: np.ndarray, axes: tuple[float, float], angle: float) -> np.ndarray:
    mask = np.zeros(shape, np.float32)
    ax = (max(1, int(round(axes[0]))), max(1, int(round(axes[1]))))
    cv2.ellipse(mask, (int(round(centre[0])), int(round(centre[1]))), ax, angle, 0, 360, 1.0, -1)
    return mask


def part_geometry(f: FaceFrame, part: str, scale: float = 1.0) -> tuple[np.ndarray, tuple[float, float]]:
    """(centre, (semi-axis along the eye line, semi-axis down the face)) of ``part``'s ellipse."""
    d, h = f.d, f.h
    if part in ("left_eye", "right_eye"):
        eye = f.left_eye if part == "left_eye" else f.right_eye
        return eye - f.v * 0.04 * d, (0.33 * d * scale, 0.21 * d * scale)
    if part == "nose":
        top = f.eye_mid + f.v * 0.2 * h
        bottom = f.nose + f.v * 0.12 * h
        centre = (top + bottom) / 2
        centre = centre + f.u * float(np.dot(f.nose - centre, f.u)) * 0.6  # follow a turned head
        return centre, (0.26 * d * scale, max(0.15 * d, float(np.dot(bottom - top, f.v)) / 2) * scale)
    if part == "mouth":
        half_w = float(np.linalg.norm(f.mouth_right - f.mouth_left)) / 2
        return f.mouth_mid + f.v * 0.02 * h, ((half_w + 0.16 * d) * scale, 0.24 * d * scale)
    if part in ("face", "lower_face"):
        centre = f.eye_mid + f.v * 0.5 * h + f.u * float(np.dot(f.nose - f.eye_mid, f.u)) * 0.3
        return centre, (0.98 * d * scale, 1.12 * h * scale)
    raise ValueError(f"unknown face part {part!r}; choose one of {('face',) + PARTS}")


def part_mask(shape: tuple[int, int], landmarks: dict, part: str, scale: float = 1.0) -> np.ndarray:
    """Hard {0, 1} float32 mask (H, W) of ``part`` ("face" or one of :data:`PARTS`); zeros without landmarks."""
    f = frame(landmarks)
    if f is None:
        return np.zeros(shape, np.float32)
    centre, axes = part_geometry(f, part, scale)
    mask = _ellipse(shape, centre, axes, f.angle)
    if part == "lower_face":  # the face ellipse below a line just above the nose tip, across the face
        ys, xs = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
        cut = f.nose - f.v * 0.05 * f.h
        below = (xs - cut[0]) * f.v[0] + (ys - cut[1]) * f.v[1] >= 0
        mask = mask * below
    return mask.astype(np.float32)


def eye_distance(landmarks: dict) -> float | None:
    f = frame(landmarks)
    return None if f is None else f.d
