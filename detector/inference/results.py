"""The one result type every front end shows: Gradio, Streamlit, the scan CLI and the JSON API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from explain.overlay import BoxLabel


@dataclass
class FaceResult:
    box: list[int]  # x, y, w, h in the upright image
    p_fake: float  # calibrated probability that this face is fake
    label: str  # "fake" or "real" at the model's threshold
    detector_score: float | None = None  # the face finder's confidence (None = no face, whole image scored)
    landmarks: dict[str, list[int]] = field(default_factory=dict)
    crop_box: list[int] = field(default_factory=list)  # x0, y0, side of the square the model saw
    heatmap: np.ndarray | None = None  # CAM on the model grid, [0, 1]

    def to_dict(self, include_heatmap: bool = True) -> dict[str, Any]:
        d = {"box": [int(v) for v in self.box], "p_fake": round(float(self.p_fake), 4), "label": self.label,
             "detector_score": None if self.detector_score is None else round(float(self.detector_score), 4),
             "landmarks": {k: [int(v[0]), int(v[1])] for k, v in self.landmarks.items()},
             "crop_box": [int(v) for v in self.crop_box]}
        if include_heatmap:
            d["heatmap"] = None if self.heatmap is None else np.round(self.heatmap, 3).tolist()
        return d


@dataclass
class DetectionResult:
    faces: list[FaceResult]
    label: str  # image verdict: the most suspicious face decides
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

    def to_dict(self, include_heatmaps: bool = True) -> dict[str, Any]:
        return {
            "label": self.label, "p_fake": round(float(self.p_fake), 4), "face_found": self.face_found,
            "message": self.message, "notes": list(self.notes), "image_size": list(self.image_size),
            "faces": [f.to_dict(include_heatmaps) for f in self.faces], "faces_skipped": self.faces_skipped,
            "model": dict(self.model), "cam_method": self.cam_method,
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()}, "error": None,
        }


def error_dict(message: str) -> dict[str, Any]:
    """The JSON shape of a refused input: same keys a client can check, ``error`` set."""
    return {"label": None, "p_fake": None, "face_found": False, "message": message, "notes": [],
            "image_size": None, "faces": [], "faces_skipped": 0, "model": None, "cam_method": None,
            "timings_ms": {}, "error": message}


def verdict_words(label: str | None) -> str:
    """The verdict as every front end words it: "likely FAKE" / "likely REAL"."""
    return "likely FAKE" if label == "fake" else "likely REAL"


def box_labels(faces: list[FaceResult]) -> list[BoxLabel]:
    """One caption per face box for the overlay ("FAKE 93%"), coloured by its verdict."""
    return [BoxLabel(tuple(f.box), f"{f.label.upper()} {f.p_fake:.0%}", f.label == "fake") for f in faces]
