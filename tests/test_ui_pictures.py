"""Pictures the apps show besides the overlay (detector.ui.pictures)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from detector.inference.video import FrameScore, VideoResult, browser_preview
from detector.ui.pictures import (
    EXAMPLE_LABELS,
    example_photos,
    group_photo,
    timeline_picture,
    video_preview,
    write_examples,
)


def test_example_photos_are_written_as_jpegs_into_the_given_folder(tmp_path):
    assert list(example_photos()) == ["astronaut", "grace_hopper", "group", "coffee"]
    assert len(EXAMPLE_LABELS) == len(example_photos())
    paths = write_examples(tmp_path / "ex")
    assert [Path(p).name for p in paths] == ["astronaut.jpg", "grace_hopper.jpg", "group.jpg", "coffee.jpg"]
    assert all(Path(p).parent == tmp_path / "ex" and Path(p).stat().st_size > 1000 for p in paths)


def test_the_group_example_has_three_faces(detector):
    assert len(detector.find_faces(group_photo())) == 3


def _mp4v(path: Path, n: int = 12) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 6, (320, 240))
    for i in range(n):
        writer.write(np.full((240, 320, 3), 20 * i % 255, np.uint8))
    writer.release()
    return path


def test_an_mp4v_clip_gets_a_webm_preview_browsers_play(tmp_path):
    out = browser_preview(_mp4v(tmp_path / "clip.mp4"), tmp_path / "preview", max_side=160)
    assert out is not None and out.suffix == ".webm"
    assert out.read_bytes()[:4] == b"\x1a\x45\xdf\xa3"  # Matroska/WebM
    cap = cv2.VideoCapture(str(out))
    try:
        assert cap.get(cv2.CAP_PROP_FRAME_WIDTH) == 160 and int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little") == b"VP80"
    finally:
        cap.release()
    assert browser_preview(tmp_path / "missing.mp4", tmp_path / "p2") is None


def test_old_previews_are_deleted_when_a_new_one_is_made(tmp_path):
    import os
    import time

    folder = tmp_path / "previews"
    folder.mkdir()
    old = folder / "preview-old.webm"
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    made = video_preview(str(_mp4v(tmp_path / "clip.mp4")), folder, max_age_s=600)
    assert made is not None and Path(made).parent == folder and not old.exists()
    assert video_preview(None, folder, 600) is None


def test_timeline_is_rgb_pixels_and_leaves_no_file(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    vr = VideoResult("clip.mp4", 0.6, "fake", [FrameScore(0, 0.0, 0.4, 1), FrameScore(8, 1.0, 0.8, 1)], 8.0, 16, 3,
                     "m")
    pixels = timeline_picture(vr, 0.5)
    assert pixels.ndim == 3 and pixels.shape[2] == 3 and pixels.dtype == np.uint8 and pixels.std() > 0
    assert list(tmp_path.iterdir()) == []  # the PNG went with its private temp folder
