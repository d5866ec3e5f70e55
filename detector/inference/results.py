"""The one result type every front end shows: Gradio, Streamlit, the REST API, the scan CLI and the JSON API.

Four verdict states, each with its own words and colour everywhere (headline, box, table, report):

* ``fake`` -- P(fake) at or above the threshold, outside the unsure band: "likely FAKE", red;
* ``real`` -- below the threshold, outside the band: "NO SIGN FOUND", green.  The words say what the model
  did, not what the photo is: on generators it never saw it misses most fakes (:func:`detector.inference.unseen.unseen_fakes_missed`
  reads how many from the shipped model's own evaluation), so "no sign of manipulation found" is the honest claim;
* ``uncertain`` -- inside the band around the threshold (:func:`unsure_range`): "UNCERTAIN", amber (the
  model cannot tell).  The band is :data:`UNSURE_LOGIT` log-odds either side of the threshold: +-0.15
  around a threshold of 0.5, and narrower near 0 or 1, so a threshold of 0.85 still leaves room above it
  for a FAKE verdict (a band of +-0.15 in probability would make every face at or above it UNCERTAIN);
* ``no_face`` -- no face was found: "NO FACE", grey; the image is *not assessed as a face* (its
  centre is still scored, and that score is shown as secondary information only).

``label`` stays "fake"/"real" at the threshold (what API clients have always read); ``verdict``
is one of the four states above.  Those codes are for machines; every word a person reads about a
verdict (headline, caption, table, report, REST ``message``, game) comes from this module, and no
score is ever shown as 0 or 1 (:func:`score_text`): a calibrated model is never certain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from explain.overlay import FAKE_COLOR, NOFACE_COLOR, REAL_COLOR, UNSURE_COLOR, BoxLabel

from .logodds import logit, sigmoid

UNSURE_LOGIT = 0.6  # the uncertain band: log-odds within this of the threshold's (0.354-0.646 around 0.5)
VERDICTS = ("fake", "real", "uncertain", "no_face")
# "real" is worded as what the model did ("no sign found"), never as a fact about the photo.
VERDICT_WORDS = {"fake": "likely FAKE", "real": "NO SIGN FOUND", "uncertain": "UNCERTAIN", "no_face": "NO FACE"}
VERDICT_COLORS = {"fake": FAKE_COLOR, "real": REAL_COLOR, "uncertain": UNSURE_COLOR, "no_face": NOFACE_COLOR}
# What each state means, in one phrase (headline sub-line, report legend, README).
VERDICT_MEANINGS = {
    "fake": "the model finds signs that a face was manipulated or generated",
    "real": "the model found no sign of manipulation, which does not show that the photo is genuine",
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


def score_text(p: float, digits: int = 2) -> str:
    """P(fake) as a person reads it: "0.73", but never "1.00" or "0.00" (they would claim a certainty no
    model has): "> 0.99" and "< 0.01" instead (with ``digits`` decimals)."""
    step = 10.0 ** -digits
    p = float(p)
    if p >= 1.0 - step / 2:
        return f"> {1.0 - step:.{digits}f}"
    if p < step / 2:
        return f"< {step:.{digits}f}"
    return f"{p:.{digits}f}"


def percent_text(share: float) -> str:
    """A share as a percentage, never "100 %" or "0 %": "73 %", "> 99 %", "< 1 %"."""
    share = float(share)
    if share >= 0.995:
        return "> 99 %"
    if share < 0.005:
        return "< 1 %"
    return f"{share * 100:.0f} %"


def scale_words(threshold: float) -> str:
    """What a score means, with the bands in order and not overlapping, e.g.
    "below 0.81: NO SIGN FOUND · 0.81–0.94: UNCERTAIN · 0.94 and above: likely FAKE"."""
    lo, hi = unsure_range(threshold)
    return (f"below {lo:.2f}: {VERDICT_WORDS['real']} · {lo:.2f}–{hi:.2f}: {VERDICT_WORDS['uncertain']} · "
            f"{hi:.2f} and above: {VERDICT_WORDS['fake']}")


def scale_sentence(threshold: float) -> str:
    """The score's scale where the score is shown: the bands, and that the unsure one surrounds the threshold."""
    return (f"How to read P(fake): {scale_words(threshold)}. The UNCERTAIN band surrounds the threshold "
            f"({threshold:.2f}), where the model cannot tell.")


def no_sign_worth(missed: float | None) -> str:
    """One line on what "NO SIGN FOUND" is worth: the measured share of unseen-generator fakes the model
    missed (:func:`detector.inference.unseen.unseen_fakes_missed`); "" when the model has no such figure."""
    if missed is None:
        return ""
    return (f"What {VERDICT_WORDS['real']} is worth: trained the same way but without any diffusion-made faces, "
            f"the model found no sign in {percent_text(missed)} of those fakes.")


def verdict_of(p_fake: float, threshold: float, face_found: bool = True, band: float = UNSURE_LOGIT) -> str:
    """The state of one score: "no_face" without a face, "uncertain" inside :func:`unsure_range`, else fake/real."""
    if not face_found:
        return "no_face"
    lo, hi = unsure_range(threshold, band)
    if lo < float(p_fake) < hi:
        return "uncertain"
    return "fake" if p_fake >= threshold else "real"


def verdict_words(verdict: str | None) -> str:
    """The verdict as every front end words it: "likely FAKE", "NO SIGN FOUND", "UNCERTAIN", "NO FACE"."""
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
    # full-image heatmap (H, W), signed: > 0 evidence for fake, < 0 evidence against (faces called real)
    # (not serialised; each face's own map, in [0, 1], is)
    heatmap: np.ndarray | None = None
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
    """The caption of face number ``index`` (1-based, the face table's row): "#1 likely FAKE".

    The verdict's words, not a percentage: "REAL 73%" read as "73 % real" when it meant P(fake) 0.73.
    """
    if face.verdict == "no_face":
        return "NO FACE (centre scored)"
    return f"#{index} {verdict_words(face.verdict)}"


def evidence_signs(faces: list[FaceResult]) -> list[float]:
    """Per face, which way its heatmap points: +1 (evidence for fake: the face is called fake at the
    threshold, UNCERTAIN ones above it included) or -1 (evidence against: the face is called real)."""
    return [1.0 if f.label == "fake" else -1.0 for f in faces]


def box_labels(faces: list[FaceResult]) -> list[BoxLabel]:
    """One numbered caption per face box for the overlay ("#1 likely FAKE"), in its verdict's colour."""
    return [BoxLabel(tuple(f.box), face_caption(i, f), f.verdict == "fake", VERDICT_COLORS.get(f.verdict or "real"))
            for i, f in enumerate(faces, start=1)]
