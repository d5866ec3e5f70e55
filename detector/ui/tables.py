"""The per-face table both apps show: one row per scored face (numbered as its box in the picture),
or one row for the image's centre when no face was found."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..inference.results import DetectionResult, face_caption, verdict_words

FACE_TABLE_HEADERS = ["face", "verdict", "P(fake)", "box (x, y, w, h)"]  # the Gradio table's columns
NO_FACE_ROW = "none (image centre)"


def _cells(res: DetectionResult):
    for i, f in enumerate(res.faces, start=1):
        name = f"#{i}" if res.face_found else NO_FACE_ROW
        box = ", ".join(str(int(v)) for v in f.box)
        score = None if f.detector_score is None else round(float(f.detector_score), 3)
        yield name, verdict_words(f.verdict), round(float(f.p_fake), 3), box, score


def face_rows(res: DetectionResult) -> list[list[Any]]:
    """Rows under :data:`FACE_TABLE_HEADERS` (the Gradio table)."""
    return [[name, verdict, p, box] for name, verdict, p, box, _ in _cells(res)]


def face_records(res: DetectionResult) -> list[dict[str, Any]]:
    """The same rows as records, with the face finder's score (the Streamlit table)."""
    return [{"face": name, "verdict": verdict, "P(fake)": p, "box (x, y, w, h)": box, "finder score": score}
            for name, verdict, p, box, score in _cells(res)]


def face_gallery(res: DetectionResult) -> list[tuple[np.ndarray, str]]:
    """(thumbnail, caption) per face, captions as on the boxes ("#1 FAKE 93%"); [] without thumbnails."""
    if not res.thumbnails:
        return []
    return [(thumb, face_caption(i, f)) for i, (thumb, f) in enumerate(zip(res.thumbnails, res.faces), start=1)]
