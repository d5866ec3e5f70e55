"""Video: sample frames, score every face of each, and aggregate to one verdict.

Aggregation rule (documented in the README): a video's P(fake) is the **mean of the top-k frame
scores** (k = ``top_k``, default ``config.VIDEO_TOP_K`` = 3), where a frame's score is its most suspicious face.  A face
swap is often visible in only part of a clip, so the mean of all frames would dilute it, while
the single highest frame is noisy; the top-k mean sits between the two.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..config import DEFAULT_CAM_METHOD, VIDEO_FRAMES, VIDEO_TOP_K
from ..errors import CorruptImageError, UnsupportedFormatError
from .images import LoadedImage
from .results import score_text, verdict_of, verdict_words

VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}


@dataclass
class FrameScore:
    index: int  # frame number in the video
    time_s: float
    p_fake: float | None  # most suspicious face; None when no face in the frame
    n_faces: int


@dataclass
class VideoResult:
    path: str
    p_fake: float | None
    label: str | None
    frames: list[FrameScore]
    fps: float
    n_frames_total: int
    top_k: int
    message: str
    worst_frame: int | None = None  # index into ``frames``
    worst_result: Any = None  # DetectionResult of the most suspicious frame (with its heatmap)
    notes: list[str] = field(default_factory=list)
    verdict: str | None = None  # fake / real / uncertain (results.VERDICTS); "no_face" when no frame had a face
    worst_rgb: np.ndarray | None = None  # the most suspicious frame's pixels (not serialised)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "p_fake": None if self.p_fake is None else round(self.p_fake, 4),
                "label": self.label, "verdict": self.verdict, "fps": round(self.fps, 3), "n_frames_total": self.n_frames_total,
                "top_k": self.top_k, "message": self.message, "notes": self.notes,
                "frames": [{"index": f.index, "time_s": round(f.time_s, 3),
                            "p_fake": None if f.p_fake is None else round(f.p_fake, 4), "n_faces": f.n_faces}
                           for f in self.frames], "error": None}


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def frame_indices(total: int, max_frames: int) -> list[int]:
    """``max_frames`` frame numbers spread evenly from the first (0) to the last (``total - 1``).

    A clip with no more than ``max_frames`` frames gives every frame; one frame asked for gives the first.
    """
    if total <= 0 or max_frames <= 0:
        return []
    n = min(max_frames, total)
    if n == 1:
        return [0]
    # Rounded linspace: first and last frame are always taken, the gaps differ by at most one frame.
    return sorted({round(i * (total - 1) / (n - 1)) for i in range(n)})


def sample_frames(path: str | Path, max_frames: int = VIDEO_FRAMES, stride: int | None = None):
    """Yield ``(index, time_s, rgb)``: every ``stride``-th frame (at most ``max_frames``), or by default
    ``max_frames`` frames spread evenly from the first to the last frame (:func:`frame_indices`)."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise UnsupportedFormatError(f"{Path(path).name} could not be opened as a video.")
    try:
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0) or 25.0
        if stride is not None:
            yield from _every_stride(cap, fps, stride, max_frames)
            return
        if total <= 0:  # some containers do not say: count the frames first (grab decodes, nothing is copied)
            total = _count_frames(cap)
            cap.release()
            cap = cv2.VideoCapture(str(path))
        wanted = frame_indices(total, max_frames)
        given, last, read = yield from _frames_at(cap, fps, wanted)
        if 0 < read < total and last < read - 1:
            # The container's frame count was too high, so the stream ended before the last wanted
            # frames: read it again for the frames still owed, spread over the rest of the clip up to
            # its real last frame (rare, and costs one more decode of the clip).
            cap.release()
            cap = cv2.VideoCapture(str(path))
            rest = frame_indices(read - 1 - last, max(1, max_frames - given))
            yield from _frames_at(cap, fps, [last + 1 + i for i in rest])
    finally:
        cap.release()


def _every_stride(cap, fps: float, stride: int, max_frames: int):
    index = taken = 0
    while taken < max_frames and cap.grab():
        if index % stride == 0:
            ok, bgr = cap.retrieve()
            if ok:
                taken += 1
                yield index, index / fps, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        index += 1


def _frames_at(cap, fps: float, wanted: list[int]):
    """Yield the frames numbered in ``wanted`` (sorted), reading the stream in order; returns
    ``(how many were yielded, number of the last one or -1, how many frames were read)``.  Reading in order, not
    seeking: seeking is inexact in many codecs and would give neighbouring frames under the wrong number."""
    targets = iter(wanted)
    target = next(targets, None)
    index, last, given = 0, -1, 0
    while target is not None and cap.grab():
        if index == target:
            ok, bgr = cap.retrieve()
            if ok:
                last, given = index, given + 1
                yield index, index / fps, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            target = next(targets, None)
        index += 1
    return given, last, index


def _count_frames(cap) -> int:
    n = 0
    while cap.grab():
        n += 1
    return n


def video_info(path: str | Path) -> tuple[float, int]:
    cap = cv2.VideoCapture(str(path))
    try:
        return float(cap.get(cv2.CAP_PROP_FPS) or 0.0) or 25.0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        cap.release()


def aggregate(scores: list[float], top_k: int) -> float | None:
    """Mean of the ``top_k`` highest frame scores (the documented video rule)."""
    if not scores:
        return None
    s = sorted(scores, reverse=True)[:max(1, top_k)]
    return float(np.mean(s))


def analyze_video(detector, path: str | Path, max_frames: int = VIDEO_FRAMES, stride: int | None = None,
                  top_k: int = VIDEO_TOP_K, cam_method: str | None = DEFAULT_CAM_METHOD) -> VideoResult:
    """Score sampled frames with ``detector`` (a :class:`detector.inference.pipeline.Detector`)."""
    fps, total = video_info(path)
    frames: list[FrameScore] = []
    worst, worst_p = None, -1.0
    for index, t, rgb in sample_frames(path, max_frames, stride):
        res = detector.analyze(LoadedImage(rgb), cam_method=None, render_overlay=False)
        p = res.p_fake if res.face_found else None
        frames.append(FrameScore(index, t, p, len(res.faces) if res.face_found else 0))
        if p is not None and p > worst_p:
            worst, worst_p = (len(frames) - 1, rgb), p
    if not frames:
        raise CorruptImageError(f"No frame of {Path(path).name} could be decoded.")
    scored = [f.p_fake for f in frames if f.p_fake is not None]
    p_video = aggregate(scored, top_k)
    worst_result = None
    if worst is not None and cam_method is not None:
        worst_result = detector.analyze(LoadedImage(worst[1]), cam_method=cam_method)
    if p_video is None:
        label, verdict = None, "no_face"
        msg = f"No face found in {_count(len(frames), 'sampled frame')}; the video was not scored."
    else:
        label, verdict = detector.label_for(p_video), verdict_of(p_video, detector.threshold)
        k = min(top_k, len(scored))
        top = "the top frame" if k == 1 else f"the mean of the top {k} frames"
        msg = (f"{len(scored)} of {_count(len(frames), 'sampled frame')} show a face. Video verdict: "
               f"{verdict_words(verdict)} (P(fake) = {score_text(p_video)}, {top}).")
    return VideoResult(str(path), p_video, label, frames, fps, total, top_k, msg,
                       worst_frame=None if worst is None else worst[0], worst_result=worst_result, verdict=verdict,
                       worst_rgb=None if worst is None else worst[1])


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


PREVIEW_SIDE = 480  # px, longer side of the browser preview
PREVIEW_SECONDS = 60  # the preview covers at most the clip's first minute


def browser_preview(path: str | Path, out_path: str | Path, max_side: int = PREVIEW_SIDE,
                    max_seconds: float = PREVIEW_SECONDS) -> Path | None:
    """A copy of the clip that every browser plays (VP8 in WebM, no sound), or None if it cannot be made.

    Phones and OpenCV write MPEG-4 Part 2 ("mp4v") and other codecs that browsers refuse to play,
    although the detector reads them fine; the preview is re-encoded with OpenCV's own FFmpeg (no
    system ffmpeg needed), shrunk to ``max_side`` px and cut to ``max_seconds``.
    """
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        return None
    out = Path(out_path).with_suffix(".webm")
    writer = None
    try:
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        fps = fps if 1.0 <= fps <= 120.0 else 25.0
        for _ in range(int(fps * max_seconds)):
            ok, bgr = cap.read()
            if not ok:
                break
            h, w = bgr.shape[:2]
            k = min(1.0, max_side / max(h, w))
            size = (max(2, int(w * k) // 2 * 2), max(2, int(h * k) // 2 * 2))  # even sides for the encoder
            if writer is None:
                writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"VP80"), fps, size)
                if not writer.isOpened():
                    return None
            writer.write(cv2.resize(bgr, size, interpolation=cv2.INTER_AREA))
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    return out if writer is not None and out.is_file() and out.stat().st_size > 0 else None


def timeline_png(result: VideoResult, out_path: str | Path, threshold: float) -> Path:
    """Plot P(fake) per sampled frame over time, with the threshold line."""
    # A bare Figure, not pyplot: pyplot's global figure registry is not thread-safe (the web app
    # renders timelines from two request threads at once), and no GUI backend is ever needed.
    from matplotlib.figure import Figure

    t = [f.time_s for f in result.frames if f.p_fake is not None]
    p = [f.p_fake for f in result.frames if f.p_fake is not None]
    # Sized to stay legible where it is shown: about 360-600 px wide (report, web page).
    fig = Figure(figsize=(5.2, 2.4))
    ax = fig.subplots()
    ax.plot(t, p, marker="o", color="#e63946")
    ax.axhline(threshold, ls="--", color="gray", lw=1.2, label=f"threshold {threshold:.2f}")
    ax.set_ylim(0, 1)
    ax.set_xlabel("time (s)", fontsize=11)
    ax.set_ylabel("P(fake)", fontsize=11)
    ax.set_title(Path(result.path).name, fontsize=11)
    ax.tick_params(labelsize=10)
    ax.legend(loc="upper right", fontsize=10)
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    return Path(out_path)
