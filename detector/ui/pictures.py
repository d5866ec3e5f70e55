"""Pictures the apps show besides the detector's own overlay: example photos, a video's timeline,
and the overlay re-blended at another opacity (no new model pass)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from explain.overlay import render

from ..inference.results import DetectionResult, box_labels
from ..inference.video import VideoResult, timeline_png


def example_photos() -> dict[str, np.ndarray]:
    """Package-shipped photos: scikit-image's astronaut and coffee, matplotlib's Grace Hopper."""
    import matplotlib.cbook
    import skimage.data

    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as im:
        hopper = np.asarray(im.convert("RGB"))
    return {"astronaut": skimage.data.astronaut(), "grace_hopper": hopper, "coffee": skimage.data.coffee()}


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
    """``res``'s heatmap blended onto ``rgb`` at ``opacity``, with a box per face in its verdict colour.

    Needs ``res.heatmap`` (``analyze`` pastes it when heatmaps are on); without a face no box is drawn.
    """
    labels = box_labels(res.faces) if res.face_found else []
    return render(rgb, res.heatmap if res.cam_method else None, labels, opacity)
