"""The per-face table every front end shows: one row per scored face (numbered as its box in the
picture), or one row for the image's centre when no face was found.  :func:`detector.ui.panels.face_table_html`
renders these rows, with each face's heatmap thumbnail, for the web apps."""

from __future__ import annotations

from typing import Any

from ..inference.results import DetectionResult, verdict_words

FACE_TABLE_HEADERS = ["face", "verdict", "P(fake)", "finder score", "box (x, y, w, h)"]
NO_FACE_ROW = "none found (image centre)"


def face_rows(res: DetectionResult) -> list[list[Any]]:
    """Rows under :data:`FACE_TABLE_HEADERS`; the finder score is None for the image centre."""
    rows = []
    for i, f in enumerate(res.faces, start=1):
        name = f"#{i}" if res.face_found else NO_FACE_ROW
        score = None if f.detector_score is None else round(float(f.detector_score), 3)
        rows.append([name, verdict_words(f.verdict), round(float(f.p_fake), 3), score,
                     ", ".join(str(int(v)) for v in f.box)])
    return rows
