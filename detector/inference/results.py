"""The one result type every front end shows: Gradio, Streamlit, the REST API, the scan CLI and the JSON API.

Four verdict states, each with its own words and colour everywhere (headline, box, table, report):

* ``fake`` -- P(fake) at or above the threshold, outside the unsure band: "likely FAKE", red;
* ``real`` -- below the threshold, outside the band: "likely REAL", green;
* ``uncertain`` -- inside the band around the threshold (:func:`unsure_range`): "UNCERTAIN", amber (the
  model cannot tell).  The band is :data:`UNSURE_LOGIT` log-odds either side of the threshold: +-0.15
  around a threshold of 0.5, and narrower near 0 or 1, so a threshold of 0.85 still leaves room above it
  for a FAKE verdict (a band of +-0.15 in probability would make every face at or above it UNCERTAIN);
* ``no_face`` -- no face was found: "NO FACE", grey; the image is *not assessed as a face* (its
  centre is still scored, and that score is shown as secondary information only).

``label`` stays "fake"/"real" at the threshold (what API clients have always read); ``verdict``
is one of the four states above.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from explain.overlay import FAKE_COLOR, NOFACE_COLOR, REAL_COLOR, UNSURE_COLOR, BoxLabel

from .logodds import logit, sigmoid

UNSURE_LOGIT = 0.6  # the uncertain band: log-odds within this of the threshold's (0.354-0.646 around 0.5)
VERDICTS = ("fake", "real", "uncertain", "no_face")
VERDICT_WORDS = {"fake": "likely FAKE", "real": "likely REAL", "uncertain": "UNCERTAIN", "no_face": "NO FACE"}
VERDICT_COLORS = {"fake": FAKE_COLOR, "real": REAL_COLOR, "uncertain": UNSURE_COLOR, "no_face": NOFACE_COLOR}
# What each state means, in one phrase (headline sub-line, report legend, README).
VERDICT_MEANINGS = {
    "fake": "the model finds signs that a face was manipulated or generated",
    "real": "the model sees no sign of manipulation",
    "uncertain": "the score is too close to the threshold for the model to tell",
    "no_face": "no face was found, so nothing was assessed",
}


def unsure_range(threshold: float, band: float = UNSURE_LOGIT) -> tuple[float, float]:
    """The open interval of P(fake) called "uncertain": ``band`` log-odds either side of ``threshold``."""
    z = float(logit(threshold, 1e-6))
    return float(sigmoid(z - band)), float(sigmoid(z + band))


def unsure_words(threshold: float) -> str:
    """The band in words, e.g. "between 0.76 and 0.91" (what the texts and reports say)."""
    lo, hi = unsure_range(threshold)
    return f"between {lo:.2f} and {hi:.2f}"


def verdict_of(p_fake: float, threshold: float, face_found: bool = True, band: float = UNSURE_LOGIT) -> str:
    """The state of one score: "no_face" without a face, "uncertain" inside :func:`unsure_range`, else fake/real."""
    if not face_found:
        return "no_face"
    lo, hi = unsure_range(threshold, band)
    if lo < float(p_fake) < hi:
        return "uncertain"
    return "fake" if p_fake >= threshold else "real"


def verdict_words(verdict: str | None) -> str:
    """The verdict as every front end words it: "likely FAKE", "likely REAL", "UNCERTAIN", "NO FACE"."""
    return VERDICT_WORDS.get(verdict or "", VERDICT_WORDS["real"])


def verdict_hex(verdict: str | None) -> str:
    """The verdict's colour as CSS ``#rrggbb``."""
    r, g, b = VERDICT_COLORS.get(verdict or "", NOFACE_COLOR)
    return f"#{r:02x}{g:02x}{b:02x}"


@dataclass
class FaceResult:
    box: list[int]  # x, y, w, h in the upright image
    p_fake: float  # calibrated probability that this face is fake
    label: str  # "fake" or "real" at the model's threshold
    detector_score: float | None = None  # the face finder's confidence (None = no face, whole image scored)
    landmarks: dict[str, list[int]] = field(default_factory=dict)
    crop_box: list[int] = field(default_factory=list)  # x0, y0, side of the square the model saw
    heatmap: np.ndarray | None = None  # CAM on the model grid, [0, 1]
    verdict: str | None = None  # one of VERDICTS; None = the label's state

    def __post_init__(self) -> None:
        if self.verdict is None:
            self.verdict = self.label if self.label in VERDICTS else "real"

    def to_dict(self, include_heatmap: bool = True) -> dict[str, Any]:
        d = {"box": [int(v) for v in self.box], "p_fake": round(float(self.p_fake), 4), "label": self.label,
             "verdict": self.verdict,
             "detector_score": None if self.detector_score is None else round(float(self.detector_score), 4),
             "landmarks": {k: [int(v[0]), int(v[1])] for k, v in self.landmarks.items()},
             "crop_box": [int(v) for v in self.crop_box]}
        if include_heatmap:
            d["heatmap"] = None if self.heatmap is None else np.round(self.heatmap, 3).tolist()
        return d


@dataclass
class DetectionResult:
    faces: list[FaceResult]
    label: str  # image label at the threshold: the most suspicious face decides
    p_fake: float
    face_found: bool
    message: str  # one plain sentence for a person
    notes: list[str]
    image_size: list[int]  # width, height
    model: dict[str, Any]  # name, version, threshold, temperature
    cam_method: str | None
    timings_ms: dict[str, float]
    faces_skipped: int = 0  # faces beyond the max-faces limit
    overlay: np.ndarray | None = None  # RGB uint8 picture with heatmap and boxes (not serialised)
    heatmap: np.ndarray | None = None  # full-image heatmap (H, W) (not serialised)
    verdict: str | None = None  # one of VERDICTS; None = "no_face" without a face, else the label's state
    # What the file's metadata says about its origin (detector.inference.provenance, as a dict);
    # None when the detector was given pixels rather than a file.
    provenance: dict[str, Any] | None = None
    thumbnails: list[np.ndarray] | None = None  # per face: its crop with its heatmap, RGB uint8 (not serialised)

    def __post_init__(self) -> None:
        if self.verdict is None:
            self.verdict = "no_face" if not self.face_found else (self.label if self.label in VERDICTS else "real")

    @property
    def threshold(self) -> float | None:
        t = (self.model or {}).get("threshold")
        return None if t is None else float(t)

    def to_dict(self, include_heatmaps: bool = True) -> dict[str, Any]:
        return {
            "label": self.label, "verdict": self.verdict, "p_fake": round(float(self.p_fake), 4),
            "face_found": self.face_found, "message": self.message, "notes": list(self.notes),
            "image_size": list(self.image_size),
            "faces": [f.to_dict(include_heatmaps) for f in self.faces], "faces_skipped": self.faces_skipped,
            "model": dict(self.model), "cam_method": self.cam_method,
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
            "provenance": self.provenance, "error": None,
        }


def error_dict(message: str) -> dict[str, Any]:
    """The JSON shape of a refused input: same keys a client can check, ``error`` set."""
    return {"label": None, "verdict": None, "p_fake": None, "face_found": False, "message": message, "notes": [],
            "image_size": None, "faces": [], "faces_skipped": 0, "model": None, "cam_method": None,
            "timings_ms": {}, "provenance": None, "error": message}


def face_caption(index: int, face: FaceResult) -> str:
    """The caption of face number ``index`` (1-based, the face table's row): "#1 FAKE 93%"."""
    if face.verdict == "no_face":
        return "NO FACE (centre scored)"
    word = {"fake": "FAKE", "real": "REAL", "uncertain": "UNCERTAIN"}.get(face.verdict or "", "REAL")
    return f"#{index} {word} {face.p_fake:.0%}"


def box_labels(faces: list[FaceResult]) -> list[BoxLabel]:
    """One numbered caption per face box for the overlay ("#1 FAKE 93%"), in its verdict's colour."""
    return [BoxLabel(tuple(f.box), face_caption(i, f), f.verdict == "fake", VERDICT_COLORS.get(f.verdict or "real"))
            for i, f in enumerate(faces, start=1)]
