"""Video frame sampling covers the whole clip, first frame to last (issue 22, item 2).

The clips are made here with OpenCV: every frame is a flat grey whose level encodes the frame number,
so a sampled frame's pixels prove which frame it really is, and clips whose *last* frames differ from
the rest show whether the end of the clip is looked at.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from detector.inference.video import analyze_video, frame_indices, sample_frames

LEVEL_STEP = 5  # grey levels between consecutive frames: far above MJPEG's error on a flat frame


def _clip(path: Path, n: int, level=lambda i: i * LEVEL_STEP) -> Path:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (64, 48))
    assert w.isOpened()
    for i in range(n):
        w.write(np.full((48, 64, 3), level(i), np.uint8))
    w.release()
    return path


@pytest.mark.parametrize("total,max_frames", [(45, 16), (31, 16), (16, 16), (17, 16), (200, 16), (2, 16), (1, 5)])
def test_indices_run_from_the_first_to_the_last_frame_evenly(total, max_frames):
    idx = frame_indices(total, max_frames)
    assert idx[0] == 0 and idx[-1] == total - 1
    assert len(idx) == min(total, max_frames) and idx == sorted(set(idx))
    gaps = np.diff(idx)
    assert len(gaps) == 0 or gaps.max() - gaps.min() <= 1  # evenly: gaps differ by at most one frame


def test_indices_of_degenerate_requests():
    assert frame_indices(0, 16) == [] and frame_indices(10, 0) == []
    assert frame_indices(10, 1) == [0]


@pytest.mark.parametrize("n", [45, 31])
def test_sampled_frames_are_the_frames_they_claim_and_reach_the_end(tmp_path, n):
    clip = _clip(tmp_path / f"c{n}.avi", n)
    got = list(sample_frames(clip, max_frames=16))
    assert [i for i, _, _ in got] == frame_indices(n, 16)
    assert got[-1][0] == n - 1  # the last frame is looked at
    for index, t, rgb in got:
        assert abs(float(rgb.mean()) - index * LEVEL_STEP) < LEVEL_STEP / 2  # really that frame's pixels
        assert t == pytest.approx(index / 25.0)


def test_a_clip_shorter_than_max_frames_gives_every_frame_once(tmp_path):
    clip = _clip(tmp_path / "short.avi", 7)
    assert [i for i, _, _ in sample_frames(clip, max_frames=16)] == list(range(7))


def test_stride_still_takes_every_sth_frame(tmp_path):
    clip = _clip(tmp_path / "s.avi", 20)
    assert [i for i, _, _ in sample_frames(clip, max_frames=4, stride=3)] == [0, 3, 6, 9]


class _BrightIsFake:
    """Stands in for the Detector: a frame's P(fake) is its brightness, so bright frames are the fakes."""

    threshold = 0.5

    def analyze(self, image, cam_method=None, render_overlay=False):
        p = float(image.rgb.mean()) / 255.0
        return SimpleNamespace(p_fake=p, face_found=True, faces=[object()])

    def label_for(self, p):
        return "fake" if p >= self.threshold else "real"


@pytest.mark.parametrize("n", [45, 31])
def test_a_clip_faked_only_at_its_end_is_called_fake(tmp_path, n):
    # Only the last quarter of the clip is "fake" (bright); the old sampler stopped at about frame
    # 2/3 and called such a clip real.
    start = n - n // 4
    clip = _clip(tmp_path / f"end{n}.avi", n, level=lambda i: 240 if i >= start else 20)
    vr = analyze_video(_BrightIsFake(), clip, max_frames=16, top_k=3, cam_method=None)
    assert vr.frames[-1].index == n - 1
    assert vr.verdict == "fake" and vr.p_fake > 0.9


@pytest.mark.parametrize("claimed", [0, 60, 100])
def test_a_wrong_or_missing_frame_count_still_reaches_the_end(tmp_path, monkeypatch, claimed):
    # Some containers give no frame count (0) or one too high; the sample must still end at the last frame.
    real_capture = cv2.VideoCapture

    class Lying:
        def __init__(self, *a):
            self._cap = real_capture(*a)

        def get(self, prop):
            return claimed if prop == cv2.CAP_PROP_FRAME_COUNT else self._cap.get(prop)

        def __getattr__(self, name):
            return getattr(self._cap, name)

    monkeypatch.setattr("detector.inference.video.cv2.VideoCapture", Lying)
    clip = _clip(tmp_path / "lie.avi", 40)
    idx = [i for i, _, _ in sample_frames(clip, max_frames=16)]
    assert idx[0] == 0 and idx[-1] == 39 and idx == sorted(set(idx))
    assert len(idx) >= 8  # may fall short of 16 when the count was too high, never to a handful
