"""From per-crop CAMs to a picture a person can read.

A CAM lives on the model's input grid (5x5 for MobileNetV2 at 160 px).  It is upsampled to its
square crop, pasted back where that crop came from in the photo (faces may overlap: the larger
value wins), coloured with the jet map and blended in proportion to its strength -- so areas
the model ignored keep their original pixels -- and boxes are drawn in the verdict's colour.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

FAKE_COLOR = (230, 57, 70)  # RGB
REAL_COLOR = (46, 160, 67)


@dataclass
class BoxLabel:
    box: tuple[int, int, int, int]  # x, y, w, h
    text: str
    fake: bool


def paste_heatmaps(shape: tuple[int, int], crops: list[tuple[int, int, int]], cams: list[np.ndarray]) -> np.ndarray:
    """Full-image heatmap (H, W) in [0, 1]: each CAM resized into its square crop (x0, y0, side)."""
    heat = np.zeros(shape[:2], np.float32)
    for (x0, y0, side), cam in zip(crops, cams):
        up = cv2.resize(np.asarray(cam, np.float32), (side, side), interpolation=cv2.INTER_CUBIC)
        up = np.clip(up, 0.0, 1.0)
        region = heat[y0:y0 + side, x0:x0 + side]
        np.maximum(region, up[:region.shape[0], :region.shape[1]], out=region)
    return heat


def colorize(heat: np.ndarray) -> np.ndarray:
    """Jet colour map of a [0, 1] map, RGB uint8."""
    bgr = cv2.applyColorMap(np.clip(heat * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def blend(rgb: np.ndarray, heat: np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """Blend the coloured heatmap onto ``rgb``; ``opacity`` in [0, 1] scales the strongest areas.

    Only the rectangle around the non-zero heat is computed: outside it the weight is 0 and the
    pixels stay the photo's own, so a face on a 12-megapixel photo costs a face-sized blend.
    """
    opacity = float(np.clip(opacity, 0.0, 1.0))
    out = rgb.copy() if rgb.dtype == np.uint8 else np.clip(rgb, 0, 255).astype(np.uint8)
    live = heat > 0
    rows, cols = np.flatnonzero(live.any(axis=1)), np.flatnonzero(live.any(axis=0))
    if rows.size == 0:
        return out
    win = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    h = heat[win]
    w = (opacity * np.clip(h, 0, 1))[..., None]
    mixed = rgb[win].astype(np.float32) * (1 - w) + colorize(h).astype(np.float32) * w
    out[win] = np.clip(mixed, 0, 255).astype(np.uint8)
    return out


def draw_boxes(rgb: np.ndarray, labels: list[BoxLabel]) -> np.ndarray:
    """Boxes in the verdict colour with a caption, line widths scaled to the image."""
    out = np.ascontiguousarray(rgb.copy())
    scale = max(out.shape[:2]) / 640.0
    thick = max(2, int(round(2 * scale)))
    font = 0.5 * max(0.6, scale)
    for lab in labels:
        x, y, w, h = lab.box
        color = FAKE_COLOR if lab.fake else REAL_COLOR
        cv2.rectangle(out, (x, y), (x + w, y + h), color, thick)
        (tw, th), base = cv2.getTextSize(lab.text, cv2.FONT_HERSHEY_SIMPLEX, font, max(1, thick // 2))
        ty = y - 4 if y - th - base - 4 > 0 else y + h + th + 4
        cv2.rectangle(out, (x, ty - th - base), (x + tw + 4, ty + base // 2), color, -1)
        cv2.putText(out, lab.text, (x + 2, ty - base // 2), cv2.FONT_HERSHEY_SIMPLEX, font, (255, 255, 255),
                    max(1, thick // 2), cv2.LINE_AA)
    return out


def render(rgb: np.ndarray, heat: np.ndarray | None, labels: list[BoxLabel], opacity: float = 0.5) -> np.ndarray:
    """The overlay shown to users: heatmap blend (if any) plus boxes."""
    base = blend(rgb, heat, opacity) if heat is not None and opacity > 0 else rgb
    return draw_boxes(base, labels)
