"""The per-face table both apps show: one row per scored face, or one for the whole image."""

from __future__ import annotations

from typing import Any

from ..inference.results import DetectionResult

FACE_TABLE_HEADERS = ["face #", "box (x, y, w, h)", "P(fake)", "label"]  # the Gradio table's columns
NO_FACE_ROW = "whole image (no face)"


def _cells(res: DetectionResult):
    for i, f in enumerate(res.faces, start=1):
        name = str(i) if res.face_found else NO_FACE_ROW
        box = ", ".join(str(int(v)) for v in f.box)
        score = None if f.detector_score is None else round(float(f.detector_score), 3)
        yield name, box, round(float(f.p_fake), 3), f.label, score


def face_rows(res: DetectionResult) -> list[list[Any]]:
    """Rows under :data:`FACE_TABLE_HEADERS` (the Gradio table)."""
    return [[name, box, p, label] for name, box, p, label, _ in _cells(res)]


def face_records(res: DetectionResult) -> list[dict[str, Any]]:
    """The same rows as records, verdict first and with the face finder's score (the Streamlit table)."""
    return [{"face": name, "verdict": label, "P(fake)": p, "box (x, y, w, h)": box, "detector score": score}
            for name, box, p, label, score in _cells(res)]
