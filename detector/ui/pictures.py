"""Pictures the apps show besides the detector's own overlay: example and portrait photos from
installed packages, a video's timeline, and the overlay and face thumbnails re-blended at another
opacity (no new model pass)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from explain.overlay import face_thumbnail, render

from ..inference.results import DetectionResult, box_labels
from ..inference.video import VideoResult, timeline_png


def portrait_photos() -> dict[str, np.ndarray]:
    """Portraits that installed packages ship: scikit-image's astronaut and cameraman, matplotlib's Grace Hopper."""
    import matplotlib.cbook
    import skimage.data

    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as im:
        hopper = np.asarray(im.convert("RGB"))
    camera = np.repeat(skimage.data.camera()[..., None], 3, axis=2)
    return {"astronaut": skimage.data.astronaut(), "grace_hopper": hopper, "camera": camera}


def group_photo(side: int = 320) -> np.ndarray:
    """A "group photo" made of the three portraits side by side (each cut to a square around its top half)."""
    tiles = []
    for rgb in portrait_photos().values():
        h, w = rgb.shape[:2]
        s = min(h, w)
        x0 = (w - s) // 2
        tile = Image.fromarray(rgb[:s, x0:x0 + s]).resize((side, side), Image.Resampling.LANCZOS)
        tiles.append(np.asarray(tile))
    return np.concatenate(tiles, axis=1)


def example_photos() -> dict[str, np.ndarray]:
    """The Detect tab's examples: two portraits, a group of three, and scikit-image's coffee (no face)."""
    portraits = portrait_photos()
    import skimage.data

    return {"astronaut": portraits["astronaut"], "grace_hopper": portraits["grace_hopper"],
            "group": group_photo(), "coffee": skimage.data.coffee()}


EXAMPLE_LABELS = ["Astronaut (scikit-image)", "Grace Hopper (matplotlib)", "Three portraits side by side",
                  "No face: coffee (scikit-image)"]


def write_examples(out_dir: str | Path) -> list[str]:
    """Write the example photos as JPEGs into ``out_dir`` (a temp dir, never the repository)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, rgb in example_photos().items():
        p = out / f"{name}.jpg"
        Image.fromarray(rgb).save(p, quality=95)
        paths.append(str(p))
    return paths


def timeline_picture(result: VideoResult, threshold: float) -> np.ndarray:
    """The P(fake)-over-time plot as RGB pixels.

    Rendered to a private temp file, read back and deleted at once: only the web framework's own
    cache (cleaned on a timer) holds the picture sent to the browser.
    """
    with tempfile.TemporaryDirectory(prefix="fdet-timeline-") as d:
        png = timeline_png(result, Path(d) / "timeline.png", threshold)
        with Image.open(png) as im:
            return np.asarray(im.convert("RGB"))


def reblend(rgb: np.ndarray, res: DetectionResult, opacity: float) -> np.ndarray:
    """``res``'s heatmap blended onto ``rgb`` at ``opacity``, with a numbered box per face in its verdict
    colour (the image centre's grey box without a face), and the colour legend under a heatmap.

    Needs ``res.heatmap`` (``analyze`` pastes it when heatmaps are on).
    """
    heat = res.heatmap if res.cam_method and res.face_found else None  # no face: nothing assessed, no heat shown
    return render(rgb, heat, box_labels(res.faces), opacity)


def rethumb(rgb: np.ndarray, res: DetectionResult, opacity: float, size: int = 128) -> list[np.ndarray]:
    """Each face's thumbnail with its heatmap at ``opacity`` (as ``analyze`` draws them), without a new model pass."""
    return [face_thumbnail(rgb, tuple(f.crop_box), f.heatmap if res.cam_method and res.face_found else None, size,
                           opacity, f.label) for f in res.faces]


def video_preview(path: str | None, folder: str | Path, max_age_s: float) -> str | None:
    """A browser-playable copy of the video at ``path`` in ``folder`` (None if it cannot be made).

    Previews older than ``max_age_s`` are deleted first: the same rule as the web framework's cache.
    """
    import time

    from ..inference.video import browser_preview

    if not path:
        return None
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in out.glob("*.webm"):
        if now - old.stat().st_mtime > max_age_s:
            old.unlink(missing_ok=True)
    fd, name = tempfile.mkstemp(prefix="preview-", suffix=".webm", dir=out)
    os.close(fd)
    made = browser_preview(path, name)
    if made is None:
        Path(name).unlink(missing_ok=True)
    return None if made is None else str(made)
