"""What a scan yields per file, and the CSV columns: shared by the scan and its reports.

A :class:`ScanRecord` is one file's outcome; ``to_dict`` is its JSON line, ``csv_row`` its CSV row
(columns :data:`CSV_FIELDS`), and the rest feeds the HTML report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..inference.video import is_video

CSV_FIELDS = ("path", "label", "p_fake", "n_faces", "error", "verdict", "provenance", "provenance_strength")
# File names are bytes on POSIX; one that is not valid UTF-8 is written back as the same bytes
# (Python's surrogateescape) instead of ending the report with a UnicodeEncodeError.
NAME_ERRORS = "surrogateescape"


@dataclass
class ScanRecord:
    """One file's outcome; ``to_dict`` is the JSON line, the rest feeds the HTML report."""

    path: str
    kind: str  # "image" or "video"
    p_fake: float | None = None  # image: most suspicious face; video: mean of the top-k frames
    label: str | None = None  # "fake" / "real"; None when the file was not scored
    faces: list[dict[str, Any]] = field(default_factory=list)  # detected faces only
    message: str = ""
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    video: dict[str, Any] | None = None  # VideoResult.to_dict() for videos
    n_faces_override: int | None = None  # videos: most faces in one sampled frame
    timeline: str | None = None  # path of the timeline PNG (videos, --timeline)
    thumb: bytes | None = None  # JPEG thumbnail of the picture (HTML report only)
    overlay_thumb: bytes | None = None  # JPEG thumbnail of the heatmap overlay (HTML report only)
    verdict: str | None = None  # fake / real / uncertain / no_face (detector.inference.results.VERDICTS)
    provenance: dict[str, Any] | None = None  # what the file's metadata says about its origin (images)
    face_thumbs: list[tuple[bytes, str, str]] = field(default_factory=list)  # (JPEG, caption, verdict), HTML only

    @property
    def n_faces(self) -> int:
        return self.n_faces_override if self.n_faces_override is not None else len(self.faces)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"path": self.path, "kind": self.kind,
                             "p_fake": None if self.p_fake is None else round(float(self.p_fake), 4),
                             "label": self.label, "verdict": self.verdict, "n_faces": self.n_faces,
                             "faces": self.faces, "message": self.message, "notes": list(self.notes)}
        if self.kind == "image":
            d["provenance"] = self.provenance
        if self.video is not None:
            d.update({k: v for k, v in self.video.items()
                      if k not in ("path", "p_fake", "label", "verdict", "message", "notes", "error")})
        if self.timeline is not None:
            d["timeline"] = self.timeline
        d["error"] = self.error
        return d

    def csv_row(self) -> dict[str, Any]:
        return {"path": self.path, "label": self.label or "",
                "p_fake": "" if self.p_fake is None else f"{self.p_fake:.4f}",
                "n_faces": self.n_faces, "error": self.error or "", "verdict": self.verdict or "",
                "provenance": (self.provenance or {}).get("verdict", ""),
                "provenance_strength": (self.provenance or {}).get("strength", "")}


def error_record(path: str | Path, message: str) -> ScanRecord:
    kind = "video" if is_video(path) else "image"
    return ScanRecord(str(path), kind, message=message, error=message)


def missing_record(path: str | Path) -> ScanRecord:
    """The record of a path named on the command line that is not there."""
    return error_record(path, f"{path} does not exist.")
