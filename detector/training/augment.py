"""Augmentations aimed at what users send: re-compressed, resized, blurred, noisy photos.

Each one is a small pure function ``(rgb uint8 HxWx3, rng) -> rgb uint8`` with its ranges at the
top, so it can be tested and reused alone (the evaluation's robustness table uses the same
``jpeg``/``rescale``/``blur`` functions with fixed parameters).  ``augment`` chains them with
the probabilities below.
"""

from __future__ import annotations

import cv2
import numpy as np

JPEG_QUALITY = (30, 100)  # social-media re-compression
RESCALE_FACTOR = (0.25, 1.0)  # down then back up: low-resolution uploads
BLUR_SIGMA = (0.2, 2.0)
NOISE_SIGMA = (1.0, 8.0)  # in 0..255 units
BRIGHTNESS = 0.15  # +-fraction
CONTRAST = 0.15
SATURATION = 0.2
SHRINK_FACTOR = (0.5, 1.0)  # native crops only: shrink for good (faces at many pixel scales)
MIN_SHRUNK_SIDE = 64
P = {"flip": 0.5, "jpeg": 0.6, "rescale": 0.3, "blur": 0.2, "noise": 0.15, "color": 0.5, "shrink": 0.3}


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    """Re-encode as JPEG at ``quality`` (1..100)."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 image
        return rgb
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def rescale(rgb: np.ndarray, factor: float) -> np.ndarray:
    """Shrink by ``factor`` and enlarge back to the original size."""
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def shrink(rgb: np.ndarray, factor: float) -> np.ndarray:
    """Shrink a square crop by ``factor`` (area averaging) and keep it small: a face seen at a lower resolution.

    Unlike :func:`rescale` the pixels stay at the new scale, so the native-resolution branch learns
    faces of many pixel sizes -- and a source whose fakes are stored larger than its reals
    (CELEBA_STYLEGAN: face crops of 235 vs 148 px) cannot be told apart by crop size alone.
    """
    side = rgb.shape[0]
    new = max(MIN_SHRUNK_SIDE, int(round(side * factor)))
    if new >= side:
        return rgb
    return cv2.resize(rgb, (new, new), interpolation=cv2.INTER_AREA)


def blur(rgb: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with standard deviation ``sigma`` pixels."""
    return cv2.GaussianBlur(rgb, (0, 0), sigmaX=float(sigma))


def noise(rgb: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Additive Gaussian noise of ``sigma`` (0..255 units)."""
    return np.clip(rgb.astype(np.float32) + rng.normal(0.0, sigma, rgb.shape), 0, 255).astype(np.uint8)


def color_jitter(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast and saturation."""
    x = rgb.astype(np.float32)
    x = x * (1.0 + rng.uniform(-BRIGHTNESS, BRIGHTNESS))
    mean = x.mean()
    x = (x - mean) * (1.0 + rng.uniform(-CONTRAST, CONTRAST)) + mean
    gray = x.mean(axis=2, keepdims=True)
    x = (x - gray) * (1.0 + rng.uniform(-SATURATION, SATURATION)) + gray
    return np.clip(x, 0, 255).astype(np.uint8)


def augment(rgb: np.ndarray, rng: np.random.Generator, native: bool = False) -> np.ndarray:
    """The training chain: geometry, colour, then degradations in the order the web applies them.

    ``native``: ``rgb`` is a native-resolution crop, which may also be shrunk for good (:func:`shrink`).
    """
    if rng.random() < P["flip"]:
        rgb = rgb[:, ::-1]
    if native and rng.random() < P["shrink"]:
        rgb = shrink(np.ascontiguousarray(rgb), rng.uniform(*SHRINK_FACTOR))
    if rng.random() < P["color"]:
        rgb = color_jitter(rgb, rng)
    if rng.random() < P["blur"]:
        rgb = blur(rgb, rng.uniform(*BLUR_SIGMA))
    if rng.random() < P["rescale"]:
        rgb = rescale(rgb, rng.uniform(*RESCALE_FACTOR))
    if rng.random() < P["noise"]:
        rgb = noise(rgb, rng.uniform(*NOISE_SIGMA), rng)
    if rng.random() < P["jpeg"]:
        rgb = jpeg(np.ascontiguousarray(rgb), int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1)))
    return np.ascontiguousarray(rgb)


# Fixed degradations for the robustness table in ``detector.evaluation.evaluate``.
PERTURBATIONS = {
    "jpeg90": lambda x: jpeg(x, 90),
    "jpeg70": lambda x: jpeg(x, 70),
    "jpeg50": lambda x: jpeg(x, 50),
    "jpeg30": lambda x: jpeg(x, 30),
    "down0.5": lambda x: rescale(x, 0.5),
    "down0.25": lambda x: rescale(x, 0.25),
    "blur1": lambda x: blur(x, 1.0),
    "blur2": lambda x: blur(x, 2.0),
}
