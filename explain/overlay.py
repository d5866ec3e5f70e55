"""From per-face heatmaps to a picture a person can read.

A face's heatmap is a small grid over its square crop (``explain.gradcam.GRID``).  It is resized
smoothly to the crop, **faded to nothing towards the crop's edge** (a raised-cosine fall-off over
the outer part of the circle inscribed in the crop -- no hard squares, nothing drawn outside the
face's square), pasted back where that crop came from in the photo (faces may overlap: the larger
value wins), coloured and blended in proportion to its strength, so areas the model ignored keep
their own pixels.  **The colour says which way the evidence points**: yellow to red for evidence
*for* fake (a face at or above the threshold), light to dark blue for evidence *against* it (a face
below the threshold: what made the model find no sign).  A signed map carries both: > 0 for fake,
< 0 against.  Boxes carry a number (the row of the face table), the
verdict and the probability, in the verdict's colour; captions are kept inside the picture, clear
of its top-left corner (where image widgets put their own label) and clear of one another.  A legend
under the picture names each colour scale it uses, its words whole and in proportion to the picture
at any size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

FAKE_COLOR = (230, 57, 70)  # RGB
REAL_COLOR = (46, 160, 67)
UNSURE_COLOR = (230, 145, 20)
NOFACE_COLOR = (110, 110, 120)
FADE_START = 0.62  # fraction of the crop's inscribed radius where the fade begins (1.0 = the edge)
# Weak -> strong, per direction of the evidence (RGB stops).  Neither scale uses the other's hue, and
# neither is the jet map (whose blue low end read as "cold" inside a red "suspicious" scale).
EVIDENCE_RAMPS = {
    "fake": ((255, 221, 51), (250, 130, 20), (205, 20, 40)),  # yellow, orange, red
    "real": ((150, 215, 255), (55, 135, 230), (20, 45, 160)),  # light blue to dark blue
}
LEGEND_TITLES = {"fake": "evidence for FAKE", "real": "evidence against FAKE"}
LEGEND_ENDS = ("weak", "strong")
LEGEND_FONT = 1 / 1000  # Hershey font scale per pixel of picture width: text keeps its share of the picture
LEGEND_MIN_FONT = 0.4  # smallest font on its own; a very narrow picture shrinks it further so no word is cut
CORNER_CLEAR = (0.28, 0.09)  # top-left corner kept free of captions: fraction of width, height
CAPTION_SCALE = 0.62  # OpenCV font scale of a box caption on a 640 px picture (scaled with the picture)


@dataclass
class BoxLabel:
    box: tuple[int, int, int, int]  # x, y, w, h
    text: str
    fake: bool
    color: tuple[int, int, int] | None = None  # default: red for fake, green for real


def fade_window(side: int, start: float = FADE_START) -> np.ndarray:
    """(side, side) weights: 1 inside ``start`` of the inscribed circle, raised cosine to 0 at its rim, 0 beyond."""
    c = (side - 1) / 2.0
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    r = np.sqrt((xx - c) ** 2 + (yy - c) ** 2) / max(c, 1.0)
    t = np.clip((r - start) / (1.0 - start), 0.0, 1.0)
    return (0.5 * (1.0 + np.cos(np.pi * t))).astype(np.float32)


def crop_heat(cam: np.ndarray, side: int) -> np.ndarray:
    """A face's heatmap at its crop's size, faded at the edge, in [0, 1]."""
    up = cv2.resize(np.asarray(cam, np.float32), (side, side), interpolation=cv2.INTER_LINEAR)
    return np.clip(up, 0.0, 1.0) * fade_window(side)


def paste_heatmaps(shape: tuple[int, int], crops: list[tuple[int, int, int]], cams: list[np.ndarray],
                   signs: list[float] | None = None) -> np.ndarray:
    """Full-image heatmap (H, W): each face's faded map in its square crop (x0, y0, side), in [0, 1].

    With ``signs`` (+1 for a face whose map is evidence for fake, -1 for one whose map is evidence
    against) the map is signed, in [-1, 1]; where crops overlap the stronger map wins, with its sign.
    """
    heat = np.zeros(shape[:2], np.float32)
    sign = np.ones(shape[:2], np.float32)
    for i, ((x0, y0, side), cam) in enumerate(zip(crops, cams, strict=True)):
        up = crop_heat(cam, side)
        region = heat[y0:y0 + side, x0:x0 + side]
        up = up[:region.shape[0], :region.shape[1]]
        if signs is not None:
            wins = up > region
            sign[y0:y0 + side, x0:x0 + side][wins] = -1.0 if signs[i] < 0 else 1.0
        np.maximum(region, up, out=region)
    return heat if signs is None else heat * sign


def _ramp_lut(stops: tuple[tuple[int, int, int], ...]) -> np.ndarray:
    x = np.linspace(0.0, 1.0, len(stops))
    t = np.linspace(0.0, 1.0, 256)
    return np.stack([np.interp(t, x, [c[k] for c in stops]) for k in range(3)], axis=1).round().astype(np.uint8)


_LUTS = {side: _ramp_lut(stops) for side, stops in EVIDENCE_RAMPS.items()}


def colorize(heat: np.ndarray, evidence: str = "fake") -> np.ndarray:
    """RGB uint8 colours of a [0, 1] map on the scale of ``evidence`` ("fake": yellow to red, "real": blues)."""
    return _LUTS[evidence][np.clip(np.asarray(heat) * 255, 0, 255).astype(np.uint8)]


def blend(rgb: np.ndarray, heat: np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """Blend the coloured heatmap onto ``rgb``; ``opacity`` in [0, 1] scales the strongest areas.

    ``heat`` may be signed (:func:`paste_heatmaps` with ``signs``): values below 0 are evidence
    against fake and take the blue scale, at the strength of their magnitude.

    Only the rectangle around the non-zero heat is computed: outside it the weight is 0 and the
    pixels stay the photo's own, so a face on a 12-megapixel photo costs a face-sized blend.
    """
    opacity = float(np.clip(opacity, 0.0, 1.0))
    out = rgb.copy() if rgb.dtype == np.uint8 else np.clip(rgb, 0, 255).astype(np.uint8)
    live = heat != 0
    rows, cols = np.flatnonzero(live.any(axis=1)), np.flatnonzero(live.any(axis=0))
    if rows.size == 0:
        return out
    win = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    h = heat[win]
    against = h < 0
    strength = np.abs(h) if against.any() else h
    colours = colorize(strength)
    if against.any():
        colours[against] = colorize(strength[against], "real")
    w = (opacity * np.clip(strength, 0, 1))[..., None]
    mixed = rgb[win].astype(np.float32) * (1 - w) + colours.astype(np.float32) * w
    out[win] = np.clip(mixed, 0, 255).astype(np.uint8)
    return out


def evidence_sides(heat: np.ndarray | None) -> tuple[str, ...]:
    """The colour scales a (signed) map uses: "fake" where it is > 0, "real" where it is < 0."""
    if heat is None:
        return ()
    return tuple(side for side, present in (("fake", bool((heat > 0).any())), ("real", bool((heat < 0).any())))
                 if present)


def _scale(shape) -> float:
    return max(shape[:2]) / 640.0


def _corner(image_size: tuple[int, int]) -> tuple[int, int]:
    width, height = image_size
    return math.ceil(CORNER_CLEAR[0] * width), math.ceil(CORNER_CLEAR[1] * height)


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def caption_box(box, text_size: tuple[int, int], image_size: tuple[int, int], pad: int,
                taken: list[tuple[int, int, int, int]] | None = None,
                faces: list[tuple[int, int, int, int]] | None = None) -> tuple[int, int]:
    """Top-left (x, y) of a caption for ``box``: above it if there is room, else below it or inside its
    top edge; always inside the picture and out of its top-left corner (where image widgets draw their
    label).  Where possible it stays clear of the captions already placed (``taken``: x, y, w, h) and
    of the other faces' boxes (``faces``); in a crowded picture the nearest free place is used."""
    x, y, w, h = box
    tw, th = text_size
    width, height = image_size
    corner_w, corner_h = _corner(image_size)

    def fit(cx: int, cy: int) -> tuple[int, int]:
        cx = min(max(0, cx), max(0, width - tw))
        cy = min(max(0, cy), max(0, height - th))
        if cx < corner_w and cy < corner_h:
            cy = min(corner_h, max(0, height - th))
        return int(cx), int(cy)

    lefts = (x, x + w - tw)  # aligned with the box's left edge, or its right edge
    tops = (y - th - pad, y + h + pad, y + pad)  # above, below, inside the top edge
    preferred = [fit(cx, cy) for cy in tops for cx in lefts if cy >= 0 and cy + th <= height]
    preferred.append(fit(x, y - th - pad if y - th - pad >= 0 else y + pad))
    others = [f for f in faces or [] if tuple(f) != tuple(box)]

    def free(c: tuple[int, int], avoid_faces: bool) -> bool:
        rect = (c[0], c[1], tw, th)
        return not any(_overlaps(rect, t) for t in taken or []) and not (
            avoid_faces and any(_overlaps(rect, f) for f in others))

    for avoid_faces in (True, False):
        for c in preferred:
            if free(c, avoid_faces):
                return c
    if taken:  # crowded: the nearest place, on a coarse grid, that covers no other caption
        step_x, step_y = max(4, tw // 4), max(4, th // 2)
        grid = {fit(cx, cy) for cy in range(0, max(1, height - th + 1), step_y)
                for cx in range(0, max(1, width - tw + 1), step_x)}
        near = sorted(grid, key=lambda c: abs(c[0] - x) + abs(c[1] - (y - th)))
        for avoid_faces in (True, False):
            found = next((c for c in near if free(c, avoid_faces)), None)
            if found is not None:
                return found
    return preferred[0]


def draw_boxes(rgb: np.ndarray, labels: list[BoxLabel]) -> np.ndarray:
    """Boxes in the verdict colour with a numbered caption, line widths and text scaled to the image."""
    out = np.ascontiguousarray(rgb.copy())
    scale = _scale(out.shape)
    thick = max(2, int(round(2 * scale)))
    # Captions stay legible when a picture of ~500 px is shown in a column of about that size.
    font = CAPTION_SCALE * max(0.85, scale)
    weight = max(1, int(round(1.6 * max(0.85, scale))))
    taken: list[tuple[int, int, int, int]] = []  # captions placed so far: later ones keep clear of them
    boxes = [tuple(lab.box) for lab in labels]  # and, where they can, of the other faces
    for lab in labels:
        x, y, w, h = lab.box
        color = lab.color or (FAKE_COLOR if lab.fake else REAL_COLOR)
        cv2.rectangle(out, (x, y), (x + w, y + h), color, thick)
        pad = max(3, thick)
        size = font
        (tw, th), base = cv2.getTextSize(lab.text, cv2.FONT_HERSHEY_SIMPLEX, size, weight)
        if tw + 2 * pad > 0.95 * out.shape[1]:  # a small picture: the caption must still fit across it
            size = font * 0.95 * out.shape[1] / (tw + 2 * pad)
            (tw, th), base = cv2.getTextSize(lab.text, cv2.FONT_HERSHEY_SIMPLEX, size, weight)
        bw, bh = tw + 2 * pad, th + base + 2 * pad
        cx, cy = caption_box(lab.box, (bw, bh), (out.shape[1], out.shape[0]), thick, taken, boxes)
        taken.append((cx, cy, bw, bh))
        cv2.rectangle(out, (cx, cy), (cx + bw, cy + bh), color, -1)
        cv2.putText(out, lab.text, (cx + pad, cy + pad + th), cv2.FONT_HERSHEY_SIMPLEX, size, (255, 255, 255),
                    weight, cv2.LINE_AA)
    return out


def _text_width(text: str, font: float, weight: int) -> int:
    return cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, weight)[0][0]


def legend_font(width: int, sides: tuple[str, ...] = ("fake",)) -> tuple[float, int]:
    """(font scale, stroke) of the legend on a picture ``width`` px wide: in proportion to the width (so a
    12-megapixel photo's legend is not a faint line of tiny text), and small enough that every title and
    the "weak"/"strong" words with a bar between them fit across it whole (never cut to "strong")."""
    pad = max(4, width // 40)
    font = max(LEGEND_MIN_FONT, LEGEND_FONT * width)
    for _ in range(40):
        weight = max(1, round(font * 2))
        lo, hi = (_text_width(t, font, weight) for t in LEGEND_ENDS)
        titles = max(_text_width(LEGEND_TITLES[s], font, weight) for s in sides or ("fake",))
        bar_room = width - 2 * pad - lo - hi - 2 * pad
        if titles <= width - 2 * pad and bar_room >= 0.25 * width:
            break
        font *= 0.9
    return font, max(1, round(font * 2))


def legend(width: int, height: int | None = None, sides: tuple[str, ...] = ("fake",)) -> np.ndarray:
    """A colour key under a picture ``width`` px wide (RGB uint8): per scale in ``sides``, its title
    ("evidence for FAKE" / "evidence against FAKE") and its bar between "weak" and "strong".

    ``height`` is a minimum; the strip is as tall as its text needs.
    """
    sides = tuple(sides) or ("fake",)
    font, weight = legend_font(width, sides)
    pad = max(4, width // 40)
    (_, th), base = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, font, weight)
    line = th + base + max(2, th // 3)
    bar_h = max(6, th)
    row = line + bar_h + max(4, th)  # a gap between the two scales
    total = max(height or 0, pad + row * len(sides))
    out = np.full((total, width, 3), 255, np.uint8)
    ink = (30, 30, 30)
    lo, hi = LEGEND_ENDS
    lo_w, hi_w = _text_width(lo, font, weight), _text_width(hi, font, weight)
    y = pad // 2
    for side in sides:
        cv2.putText(out, LEGEND_TITLES[side], (pad, y + th), cv2.FONT_HERSHEY_SIMPLEX, font, ink, weight,
                    cv2.LINE_AA)
        top = y + line
        x0, x1 = pad + lo_w + pad, width - pad - hi_w - pad
        ramp = np.tile(np.linspace(0, 1, max(1, x1 - x0), dtype=np.float32)[None, :], (bar_h, 1))
        out[top:top + bar_h, x0:x0 + ramp.shape[1]] = colorize(ramp, side)
        text_y = top + (bar_h + th) // 2
        cv2.putText(out, lo, (pad, text_y), cv2.FONT_HERSHEY_SIMPLEX, font, ink, weight, cv2.LINE_AA)
        cv2.putText(out, hi, (width - pad - hi_w, text_y), cv2.FONT_HERSHEY_SIMPLEX, font, ink, weight, cv2.LINE_AA)
        y += row
    return out


def add_legend(rgb: np.ndarray, sides: tuple[str, ...] = ("fake",)) -> np.ndarray:
    """``rgb`` with the legend strip for ``sides`` appended below it (the photo itself stays uncovered)."""
    return np.concatenate([rgb, legend(rgb.shape[1], sides=sides)], axis=0)


def face_thumbnail(rgb: np.ndarray, crop: tuple[int, int, int], cam: np.ndarray | None, size: int = 112,
                   opacity: float = 0.5, evidence: str = "fake") -> np.ndarray:
    """One face's square crop at ``size`` px with its faded heatmap blended in (the table's thumbnails),
    on the colour scale of ``evidence`` ("fake" for a face at or above the threshold, "real" below it)."""
    x0, y0, side = crop
    face = np.ascontiguousarray(rgb[y0:y0 + side, x0:x0 + side])
    face = cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)
    if cam is None:
        return face
    heat = crop_heat(cam, size)
    return blend(face, -heat if evidence == "real" else heat, opacity)


def render(rgb: np.ndarray, heat: np.ndarray | None, labels: list[BoxLabel], opacity: float = 0.5,
           with_legend: bool = True) -> np.ndarray:
    """The overlay shown to users: heatmap blend (if any), numbered boxes, and the legend under a heatmap."""
    base = blend(rgb, heat, opacity) if heat is not None and opacity > 0 else rgb
    out = draw_boxes(base, labels)
    sides = evidence_sides(heat)
    return add_legend(out, sides) if with_legend and sides and opacity > 0 else out
