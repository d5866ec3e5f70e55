"""Pictures the apps show besides the overlay (detector.ui.pictures)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from detector.inference.video import FrameScore, VideoResult
from detector.ui.pictures import example_photos, timeline_picture, write_examples


def test_example_photos_are_written_as_jpegs_into_the_given_folder(tmp_path):
    assert set(example_photos()) == {"astronaut", "grace_hopper", "coffee"}
    paths = write_examples(tmp_path / "ex")
    assert [Path(p).name for p in paths] == ["astronaut.jpg", "grace_hopper.jpg", "coffee.jpg"]
    assert all(Path(p).parent == tmp_path / "ex" and Path(p).stat().st_size > 1000 for p in paths)


def test_timeline_is_rgb_pixels_and_leaves_no_file(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    vr = VideoResult("clip.mp4", 0.6, "fake", [FrameScore(0, 0.0, 0.4, 1), FrameScore(8, 1.0, 0.8, 1)], 8.0, 16, 3,
                     "m")
    pixels = timeline_picture(vr, 0.5)
    assert pixels.ndim == 3 and pixels.shape[2] == 3 and pixels.dtype == np.uint8 and pixels.std() > 0
    assert list(tmp_path.iterdir()) == []  # the PNG went with its private temp folder
